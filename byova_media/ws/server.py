"""``WsTransport``: the WebSocket port of a server, ``/v1/va`` and ``/v1/listVirtualAgents``.

Built on aiohttp's server (a core dependency, already serving the HTTP port): a handler
can answer 401 before it upgrades, and it bounds frames (``max_msg_size``) and sends RFC
6455 control pings with a pong deadline (``heartbeat``) by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
from typing import Any

import aiohttp
from aiohttp import web

from byova_media.app import App
from byova_media.engine import Engine
from byova_media.logs import RateLimitedLog
from byova_media.ws.auth import UpgradeAuthenticator
from byova_media.ws.session import VaSocket

__all__ = ["LIST_PATH", "VA_PATH", "WsTransport"]

log = logging.getLogger(__name__)

VA_PATH = "/v1/va"
LIST_PATH = "/v1/listVirtualAgents"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\-]")
_REFUSED = "missing or invalid data source token"


class WsTransport:
    """Serves BYOVA over WebSocket on its own port, on the engine gRPC also uses."""

    def __init__(
        self, app: App, engine: Engine, authenticator: UpgradeAuthenticator | None
    ) -> None:
        self.app = app
        self.engine = engine
        self.authenticator = authenticator
        self.port = 0
        #: Protocol errors of sockets: one line per ERROR code per 10 s, whatever the flood.
        self.refusals = RateLimitedLog(logging.getLogger("byova_media.ws.session"))
        self._runner: web.AppRunner | None = None
        self._live: set[str] = set()
        self._sockets: set[web.WebSocketResponse] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        """Bind and serve; return the bound port (also for port 0)."""
        http = web.Application()
        http.add_routes([web.get(VA_PATH, self._va), web.get(LIST_PATH, self._list)])
        runner = web.AppRunner(http, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        """Close every socket (1001, going away) and the port."""
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server stopping")
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_idle(self) -> None:
        """Return when no ``/v1/va`` socket is open (used by the drain)."""
        await self._idle.wait()

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    # --- one socket per live conversation ----------------------------------------------

    def claim(self, conversation_id: str) -> bool:
        """Take ``conversation_id`` for a socket; False when another socket holds it."""
        if conversation_id in self._live:
            return False
        self._live.add(conversation_id)
        return True

    def release(self, conversation_id: str) -> None:
        self._live.discard(conversation_id)

    # --- handlers ----------------------------------------------------------------------

    async def _upgrade(self, request: web.Request) -> web.WebSocketResponse | web.Response:
        """Authenticate, then upgrade; a refusal is an HTTP answer and no socket."""
        if self.authenticator is not None:
            accepted = await self.authenticator.check(
                request.headers.get("Authorization"), _tracking_id(request)[:80]
            )
            if not accepted:
                return web.Response(
                    status=401, text=_REFUSED, headers={"WWW-Authenticate": "Bearer"}
                )
        if self.app.draining:
            return web.Response(status=503, text="server is draining; retry on another instance")
        config = self.app.config
        ws = web.WebSocketResponse(
            max_msg_size=config.ws_max_frame_bytes,
            heartbeat=config.ws_heartbeat_s or None,
        )
        await ws.prepare(request)
        return ws

    async def _va(self, request: web.Request) -> web.StreamResponse:
        ws = await self._upgrade(request)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        self._sockets.add(ws)
        self._idle.clear()
        self.app.metrics.ws_sockets.inc()
        try:
            await VaSocket(ws, self, _tracking_id(request)).run()
        finally:
            self._sockets.discard(ws)
            self.app.metrics.ws_sockets.dec()
            if not self._sockets:
                self._idle.set()
        return ws

    async def _list(self, request: web.Request) -> web.StreamResponse:
        """One bare ``ListVARequest`` in, one bare ``ListVAResponse`` out, close 1000."""
        ws = await self._upgrade(request)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        try:
            msg = await ws.receive(timeout=self.app.config.ws_first_message_timeout_s)
        except TimeoutError:
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=b"timeout")
            return ws
        problem = _list_problem(msg)
        if problem is not None:
            log.warning("refused a discovery request: %s", problem)
            await ws.close(
                code=aiohttp.WSCloseCode.PROTOCOL_ERROR,
                message=f"bad_request: {problem}".encode()[:120],
            )
            return ws
        with contextlib.suppress(ConnectionError):  # Webex may close first (reference §3)
            await ws.send_str(json.dumps(self._agents(), separators=(",", ":")))
            await ws.close(code=aiohttp.WSCloseCode.OK)
        return ws

    def _agents(self) -> dict[str, Any]:
        registry = self.engine.registry
        agents = []
        for spec in registry.agents.values():
            item = {"id": spec.virtual_agent_id, "name": spec.name or spec.virtual_agent_id}
            description = spec.attributes.get("description")
            if description:
                item["description"] = description
            agents.append(item)
        return {"virtual_agents": agents}


def _tracking_id(request: web.Request) -> str:
    """Webex's ``trackingId`` upgrade header, safe for log lines (Cisco's sample copies it)."""
    return _UNSAFE.sub("?", request.headers.get("trackingId", "")[:128])


def _list_problem(msg: aiohttp.WSMessage) -> str | None:
    """Why a discovery frame is not a bare ``ListVARequest`` (None when it is)."""
    if msg.type != aiohttp.WSMsgType.TEXT:
        return "expected one JSON text frame"
    try:
        data = json.loads(msg.data)
    except (json.JSONDecodeError, RecursionError):
        return "frame is not valid JSON"
    if not isinstance(data, dict):
        return "frame is not a JSON object"
    if "type" in data or "payload" in data:
        return "ListVARequest is sent bare, without an envelope"
    if not isinstance(data.get("customer_org_id"), str):
        return "customer_org_id is required"
    flag = data.get("is_default_virtual_agent_enabled")
    if flag is not None and not isinstance(flag, bool):
        return "is_default_virtual_agent_enabled must be a boolean"
    return None
