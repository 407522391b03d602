"""The HTTP port: ``/health``, ``/ready``, ``/metrics`` and the routes plugins add.

The port is reachable by whoever can reach the server (Webex delivers webhooks to it), so it
bounds what one client can hold: a request head must arrive within ``http_header_timeout_s``
of the connection opening, a body within ``http_body_timeout_s`` and :data:`MAX_BODY_BYTES`
(chunked or not), and each connection serves one request. Without the deadlines a client
trickling a byte every few seconds (slowloris) holds a connection and its memory forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Middleware

from byova_media.app import App
from byova_media.inspector import CallInspector
from byova_media.inspector.routes import inspector_routes
from byova_media.playground.routes import playground_routes

__all__ = ["MAX_BODY_BYTES", "HttpPort", "build_http_app"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 2**20
"""Largest request body on the HTTP port (413 beyond); routes may set a lower limit."""

_END_OF_HEAD = b"\r\n\r\n"
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_http_app(
    app: App,
    ready: Callable[[], bool],
    grpc_target: str | None = None,
    inspector: CallInspector | None = None,
) -> web.Application:
    """An aiohttp application serving the core endpoints and every plugin route.

    The call inspector's routes are added when it is on, the playground's when the
    ``playground`` setting is on (it calls this server back on ``grpc_target``).
    """

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready_view(_request: web.Request) -> web.Response:
        if app.draining or not ready():
            return web.json_response(
                {"status": "draining" if app.draining else "starting"}, status=503
            )
        return web.json_response({"status": "ready"})

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=app.metrics.render(), content_type="text/plain", charset="utf-8")

    middleware = _bounded_body(app.config.http_body_timeout_s)
    http = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[middleware])
    http.add_routes(
        [
            web.get("/health", health),
            web.get("/ready", ready_view),
            web.get("/metrics", metrics),
            *app.plugins.http_routes(app),
        ]
    )
    if inspector is not None:
        http.add_routes(inspector_routes(inspector))
    if app.config.playground and grpc_target is not None:
        http.add_routes(playground_routes(app, grpc_target, inspector))
    return http


class _HeadDeadline(asyncio.Protocol):
    """Wraps aiohttp's connection protocol; closes the connection if the head is late.

    Only the bytes are watched (for the blank line ending the head); parsing stays
    aiohttp's. Once the head is complete the timer is cancelled and bytes pass straight on.
    """

    def __init__(self, inner: asyncio.Protocol, timeout_s: float) -> None:
        self._inner = inner
        self._timeout_s = timeout_s
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but are one in behaviour.
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(self._timeout_s, self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            window = self._tail + data
            if _END_OF_HEAD in window:
                self._timer.cancel()
                self._timer = None
            else:
                self._tail = window[-(len(_END_OF_HEAD) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        peer = transport.get_extra_info("peername")
        log.warning(
            "HTTP connection from %s: request head not received within %g s; closing",
            peer[0] if isinstance(peer, tuple) else "?",
            self._timeout_s,
        )
        transport.write(_TIMEOUT_RESPONSE)
        transport.close()


class HttpPort:
    """The HTTP listener: an aiohttp application behind a per-connection head deadline."""

    def __init__(self, http_app: web.Application, *, header_timeout_s: float) -> None:
        self._runner = web.AppRunner(http_app, access_log=None)
        self._header_timeout_s = header_timeout_s
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port``; return the bound port (useful with port 0)."""
        await self._runner.setup()
        connections = self._runner.server
        assert connections is not None  # set by setup()
        timeout_s = self._header_timeout_s
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _HeadDeadline(connections(), timeout_s), host, port, reuse_address=True
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, then let aiohttp finish or close open connections."""
        if self._server is not None:
            self._server.close()
        await self._runner.cleanup()
        if self._server is not None:
            await self._server.wait_closed()


def _bounded_body(body_timeout_s: float) -> Middleware:
    """Middleware: every body is read whole, under its deadline and size limit, first."""

    @web.middleware
    async def bounded_body(request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Read the whole body under the deadline and size limit before any route runs."""
        try:
            async with asyncio.timeout(body_timeout_s):
                await request.read()  # cached: the route's own read() returns it at once
        except TimeoutError:
            log.warning(
                "HTTP %s %s: body not received within %g s; closing",
                request.method,
                request.path[:100],
                body_timeout_s,
            )
            response: web.StreamResponse = web.json_response(
                {"error": "request body timed out"}, status=408
            )
        else:
            response = await handler(request)
        response.force_close()  # one request per connection: the head deadline covers each
        return response

    return bounded_body
