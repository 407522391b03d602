"""JWS verification of WebSocket upgrades (``/v1/va``, ``/v1/listVirtualAgents``).

The same :class:`~byova_control.jws.JwsVerifier` as for gRPC, configured with the
WebSocket schema id and the registered ``wss://`` URL as the expected claims. Refusals
are logged once with Webex's ``trackingId`` and counted in ``jws_rejections{reason}``,
exactly as the gRPC interceptor does.
"""

from __future__ import annotations

import logging

from byova_control.jws import JwsError, JwsVerifier
from byova_media.metrics import Metrics

__all__ = ["JwsUpgradeCheck"]

log = logging.getLogger(__name__)


class JwsUpgradeCheck:
    """An ``UpgradeAuthenticator``: accept an upgrade only with a valid data-source JWS."""

    def __init__(self, verifier: JwsVerifier, metrics: Metrics | None = None) -> None:
        self._verifier = verifier
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"JwsUpgradeCheck({self._verifier!r})"

    async def check(self, authorization: str | None, tracking_id: str) -> bool:
        try:
            if authorization is None:
                raise JwsError("missing")
            await self._verifier.verify(authorization)
        except JwsError as exc:
            reason = exc.reason
        except Exception as exc:
            # Fail closed; only the type is logged, a message could quote the token.
            log.error("JWS verification failed unexpectedly (%s)", type(exc).__name__)
            reason = "error"
        else:
            return True
        log.warning("refused WebSocket upgrade: JWS %s (trackingId=%s)", reason, tracking_id or "-")
        if self._metrics is not None:
            self._metrics.jws_rejections.labels(reason=reason).inc()
        return False
