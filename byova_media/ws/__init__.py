"""BYOVA over WebSocket: the second Webex transport, on the same engine as gRPC.

:class:`~byova_media.ws.server.WsTransport` serves ``/v1/va`` and
``/v1/listVirtualAgents`` on ``ws_port``; a socket maps its envelopes to virtual RPCs of
the engine (:mod:`byova_media.ws.session`). See docs/transports.md. The package itself
exports only what plugins need (the upgrade check), so importing it stays cheap.
"""

from __future__ import annotations

from byova_media.ws.auth import WS_SCHEMA_ID, UpgradeAuthenticator

__all__ = ["WS_SCHEMA_ID", "UpgradeAuthenticator"]
