"""HTTP routes of the playground: the page, its static files, the agent list and the call socket."""

from __future__ import annotations

import logging
from importlib import resources

import grpc
from aiohttp import web

from byova_media.app import App
from byova_media.inspector import CallInspector
from byova_media.playground.bridge import PlaygroundCall
from byova_media.testing.simulator import WebexSimulator

__all__ = ["playground_routes"]

log = logging.getLogger(__name__)

_STATIC = resources.files("byova_media.playground") / "static"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_MAX_WS_MESSAGE = 64 * 1024  # microphone audio arrives in 20-100 ms pieces


def playground_routes(
    app: App, grpc_target: str, inspector: CallInspector | None
) -> list[web.RouteDef]:
    """The playground's routes; its calls go to this server's gRPC port at ``grpc_target``."""

    async def page(_request: web.Request) -> web.Response:
        return _static_file("index.html")

    async def static(request: web.Request) -> web.Response:
        return _static_file(request.match_info["name"])

    async def agents(_request: web.Request) -> web.Response:
        async with WebexSimulator(grpc_target, token=app.peer.issue) as sim:
            try:
                listed = await sim.list_agents()
            except grpc.aio.AioRpcError as exc:
                log.warning("playground: ListVirtualAgents failed: %s", exc.code().name)
                return web.json_response(
                    {"error": f"ListVirtualAgents failed: {exc.code().name}"}, status=502
                )
        return web.json_response(
            {
                "agents": [
                    {
                        "virtual_agent_id": a.virtual_agent_id,
                        "name": a.virtual_agent_name,
                        "is_default": a.is_default,
                    }
                    for a in listed.virtual_agents
                ]
            }
        )

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=_MAX_WS_MESSAGE, heartbeat=30)
        await ws.prepare(request)
        await PlaygroundCall(ws, grpc_target, inspector, app.peer.issue).serve()
        return ws

    return [
        web.get("/playground", page),
        web.get("/playground/", page),
        web.get("/playground/agents.json", agents),
        web.get("/playground/ws", socket),
        web.get(r"/playground/static/{name:[a-z][a-z0-9-]*\.(js|css|html)}", static),
    ]


def _static_file(name: str) -> web.Response:
    item = _STATIC / name
    if not item.is_file():
        raise web.HTTPNotFound(text=f"no playground file {name!r}")
    suffix = name[name.rindex(".") :]
    return web.Response(
        body=item.read_bytes(),
        content_type=_TYPES[suffix],
        headers={"Cache-Control": "no-cache"},
    )
