"""The ``control`` plugin: the Webex side of BYOVA, from OAuth to a verified JWS on every RPC.

It mints and stores Service App tokens per customer org, registers serviceApp webhooks and
serves their receiver on the HTTP port (``/webhooks/webex``), ensures and renews the org's
BYODS data sources (gRPC and WebSocket, one of each at most), and installs a gRPC interceptor
that verifies the data source's JWS when ``BYOVA_MEDIA_CONTROL_DATASOURCE_URL`` is set.
``byova-media control ...`` drives it by hand.
Per-server objects live in ``app.state["control"]`` (a :class:`ControlPlane`, or None when
nothing is configured).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

from byova_control.runtime import ControlPlane
from byova_control.settings import ControlSettings
from byova_media import hookimpl

if TYPE_CHECKING:
    import grpc.aio
    from aiohttp import web

    from byova_media.app import App
    from byova_media.hookspecs import AddCommand
    from byova_media.ws.auth import UpgradeAuthenticator

__all__ = [
    "PLUGIN_NAME",
    "ControlPlane",
    "ControlSettings",
    "byova_add_commands",
    "byova_configure",
    "byova_grpc_interceptors",
    "byova_http_routes",
    "byova_server_start",
    "byova_server_stop",
    "byova_ws_authenticator",
]

log = logging.getLogger(__name__)

PLUGIN_NAME = "control"


def _plane(app: App) -> ControlPlane | None:
    plane = app.state.get(PLUGIN_NAME)
    return plane if isinstance(plane, ControlPlane) else None


@hookimpl
def byova_configure(app: App) -> None:
    """Validate the settings and build the control plane (None when nothing is configured)."""
    settings = ControlSettings.load(app.settings(PLUGIN_NAME), os.environ)
    configured = (
        settings.sa_client_id
        or settings.integration_client_id
        or settings.datasource_url
        or settings.ws_datasource_url
    )
    app.state[PLUGIN_NAME] = ControlPlane(settings) if configured else None
    if not configured:
        log.debug("control plugin idle: no Service App, Integration or datasource_url set")


@hookimpl
def byova_grpc_interceptors(app: App) -> Sequence[grpc.aio.ServerInterceptor] | None:
    """JWS verification for both RPCs, when ``datasource_url`` is configured."""
    plane = _plane(app)
    url = plane.settings.datasource_url if plane is not None else None
    if plane is None or not url:
        return None
    from byova_control.interceptor import JwsInterceptor
    from byova_control.jws import DEFAULT_ISSUERS, JwsVerifier

    settings = plane.settings
    verifier = JwsVerifier(
        issuers=settings.jws_issuers or DEFAULT_ISSUERS,
        datasource_url=url,
        http=plane.http,
        org_allowed=plane.org_allowed if settings.jws_org_allowlist else None,
    )
    grace_s = app.config.half_close_grace_ms / 1000
    return [JwsInterceptor(verifier, app.metrics, refused_drain_s=grace_s, peer=app.peer)]


@hookimpl
def byova_ws_authenticator(app: App) -> UpgradeAuthenticator | None:
    """JWS verification of WebSocket upgrades, when ``ws_datasource_url`` is configured."""
    plane = _plane(app)
    url = plane.settings.ws_datasource_url if plane is not None else None
    if plane is None or not url:
        return None
    from byova_control.jws import DEFAULT_ISSUERS, JwsVerifier
    from byova_control.upgrade import JwsUpgradeCheck
    from byova_media.ws.auth import WS_SCHEMA_ID

    settings = plane.settings
    verifier = JwsVerifier(
        issuers=settings.jws_issuers or DEFAULT_ISSUERS,
        datasource_url=url,
        http=plane.http,
        schema_id=WS_SCHEMA_ID,
        org_allowed=plane.org_allowed if settings.jws_org_allowlist else None,
    )
    return JwsUpgradeCheck(verifier, app.metrics)


@hookimpl
def byova_http_routes(app: App) -> Sequence[web.RouteDef] | None:
    """The serviceApp webhook receiver (``POST /webhooks/webex``)."""
    plane = _plane(app)
    return None if plane is None else plane.receiver.routes()


@hookimpl
def byova_server_start(app: App) -> Awaitable[None] | None:
    """Start DataSource renewal."""
    plane = _plane(app)
    return None if plane is None else plane.start()


@hookimpl
def byova_server_stop(app: App) -> Awaitable[None] | None:
    """Finish webhook work, stop renewal, close the store and HTTP client."""
    plane = _plane(app)
    return None if plane is None else plane.close()


@hookimpl
def byova_add_commands(add_command: AddCommand) -> None:
    """Add ``byova-media control ...``."""
    from byova_control.cli import add_control_command

    add_control_command(add_command)
