"""BYOVA over WebSocket: the second Webex transport, on the same engine as gRPC.

:class:`~byova_media.ws.server.WsTransport` serves ``/v1/va`` and
``/v1/listVirtualAgents`` on ``ws_port``; a socket maps its envelopes to virtual RPCs of
the engine (:mod:`byova_media.ws.session`). See docs/transports.md.
"""

from __future__ import annotations

from byova_media.ws.auth import WS_SCHEMA_ID, UpgradeAuthenticator
from byova_media.ws.server import LIST_PATH, VA_PATH, WsTransport

__all__ = ["LIST_PATH", "VA_PATH", "WS_SCHEMA_ID", "UpgradeAuthenticator", "WsTransport"]
