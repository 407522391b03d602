"""The HTTP port: ``/health``, ``/ready``, ``/metrics`` and the routes plugins add."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from byova_media.app import App
from byova_media.inspector import CallInspector
from byova_media.inspector.routes import inspector_routes
from byova_media.playground.routes import playground_routes

__all__ = ["build_http_app"]


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

    http = web.Application(client_max_size=2 * 2**20)
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
