"""HTTP routes of the call inspector: ``/calls``, ``/calls.json`` and one call's page and JSON.

They are added to the HTTP port only when the inspector is on.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from aiohttp import web

from byova_media.inspector.recorder import CallInspector
from byova_media.inspector.timeline import render_html

__all__ = ["inspector_routes"]


def inspector_routes(inspector: CallInspector) -> list[web.RouteDef]:
    """The inspector's routes over ``inspector``."""

    def call_of(request: web.Request) -> dict[str, object]:
        conv_id = request.match_info["conversation_id"]
        call = inspector.get(conv_id)
        if call is None:
            raise web.HTTPNotFound(
                text=f"no recorded call {conv_id!r}: it never came here or fell out of the "
                f"last {inspector.max_calls} calls"
            )
        return call.to_json()

    async def calls_json(_request: web.Request) -> web.Response:
        return web.json_response({"calls": [c.summary() for c in inspector.calls()]})

    async def calls_page(_request: web.Request) -> web.Response:
        rows = "".join(
            f'<tr><td><a href="/calls/{quote(s["conversation_id"], safe="")}">'
            f"{escape(s['conversation_id'])}</a></td><td>{escape(str(s['virtual_agent_id']))}"
            f"</td><td>{s['started']}</td><td>{s['rpcs']}</td><td>{s['turns']}</td>"
            f"<td>{escape(str(s['ended'] or 'open'))}</td></tr>"
            for s in (c.summary() for c in inspector.calls())
        )
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>calls</title>'
            "<style>body{font-family:sans-serif;margin:1.5em}td,th{border:1px solid #ccc;"
            "padding:3px 6px}table{border-collapse:collapse}</style></head><body>"
            f"<h1>Last calls (up to {inspector.max_calls})</h1><table><tr><th>conversation</th>"
            "<th>agent</th><th>started (UTC)</th><th>RPCs</th><th>turns</th><th>ended</th></tr>"
            f"{rows}</table></body></html>"
        )
        return web.Response(text=page, content_type="text/html")

    async def call_json(request: web.Request) -> web.Response:
        return web.json_response(call_of(request))

    async def call_page(request: web.Request) -> web.Response:
        call = call_of(request)
        base = f"/calls/{quote(str(call['conversation_id']), safe='')}"
        return web.Response(text=render_html(call, audio_base=base), content_type="text/html")

    async def audio(request: web.Request) -> web.Response:
        side = request.match_info["side"]
        wav = inspector.audio_wav(
            request.match_info["conversation_id"], int(request.match_info["rpc"]), side
        )
        if wav is None:
            raise web.HTTPNotFound(text="no audio kept for this RPC (is record_audio on?)")
        return web.Response(body=wav, content_type="audio/wav")

    return [
        web.get("/calls", calls_page),
        web.get("/calls.json", calls_json),
        web.get("/calls/{conversation_id}.json", call_json),
        web.get(r"/calls/{conversation_id}/rpc/{rpc:\d+}/{side:caller|agent}.wav", audio),
        web.get("/calls/{conversation_id}", call_page),
    ]
