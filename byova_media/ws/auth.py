"""What the WebSocket port asks before it upgrades: is this ``Authorization`` header good?

A plugin provides the check through the ``byova_ws_authenticator`` hook (the control
plugin verifies the data source's JWS with the same verifier it uses for gRPC). Without
one, sockets are not authenticated, as gRPC RPCs are not without an interceptor.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["WS_SCHEMA_ID", "UpgradeAuthenticator"]

#: The BYODS schema of BYOVA over WebSocket (the data source's ``schemaId``).
WS_SCHEMA_ID = "a38a10b7-43e4-4676-a076-a7d6dce9387d"


class UpgradeAuthenticator(Protocol):
    """Decides on one upgrade request of ``/v1/va`` or ``/v1/listVirtualAgents``."""

    async def check(self, authorization: str | None, tracking_id: str) -> bool:
        """True accepts; False refuses with HTTP 401 before any socket opens.

        ``authorization`` is the raw header (``Bearer <JWS>`` or a bare JWS) or None.
        The implementation logs the reason of a refusal once (never the token) and must
        not raise: a failure of its own is a refusal (fail closed).
        """
        ...
