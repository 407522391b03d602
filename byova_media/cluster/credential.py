"""Peer credentials: an HMAC that lets an instance accept an RPC another instance forwards.

A forwarded RPC skips the caller checks of the edge (JWS), so the owner must know it
came from a peer: the edge signs ``conversation_id`` and an expiry with the shared
``cluster_secret``. The token is bound to one conversation, so a captured token cannot
open other calls, and it expires after :data:`TOKEN_TTL_S`, so it cannot be replayed
later. Rejection reasons are a fixed vocabulary (the metric label and the log word).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Literal

__all__ = ["TOKEN_TTL_S", "PeerAuthError", "PeerCredential"]

#: Lifetime of a token: it is checked once, when the forwarded RPC opens.
TOKEN_TTL_S = 30.0
_VERSION = "v1"

Reason = Literal["missing", "malformed", "expired", "bad_signature"]


class PeerAuthError(Exception):
    """A forwarded RPC's peer token was refused; ``reason`` says why."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"peer credential {reason}")
        self.reason: Reason = reason


class PeerCredential:
    """Signs and checks peer tokens with the cluster's shared secret (never logged)."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._key = secret.encode()
        self._clock = clock

    def __repr__(self) -> str:
        return "PeerCredential(secret=<redacted>)"

    def sign(self, conversation_id: str) -> str:
        """A token for forwarding one RPC of ``conversation_id``."""
        expiry_ms = int((self._clock() + TOKEN_TTL_S) * 1000)
        return f"{_VERSION}.{expiry_ms}.{self._mac(conversation_id, expiry_ms)}"

    def verify(self, token: str | None, conversation_id: str) -> None:
        """Return if ``token`` was signed for ``conversation_id`` and is still valid."""
        if not token:
            raise PeerAuthError("missing")
        version, _, rest = token.partition(".")
        expiry, _, mac = rest.partition(".")
        if version != _VERSION or not expiry.isdigit() or not mac:
            raise PeerAuthError("malformed")
        # Signature first: an unsigned expiry says nothing.
        if not hmac.compare_digest(mac, self._mac(conversation_id, int(expiry))):
            raise PeerAuthError("bad_signature")
        if int(expiry) < self._clock() * 1000:
            raise PeerAuthError("expired")

    def _mac(self, conversation_id: str, expiry_ms: int) -> str:
        message = f"{_VERSION}|{expiry_ms}|{conversation_id}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
