"""``PeerCredential``: a token this server issues to itself, for calls it places on its own port.

The playground calls the server's gRPC port like Webex does, so its RPCs pass the same
interceptors. An interceptor that verifies Webex's JWS can also accept this credential:
an HMAC over an expiry under a random per-process key that never leaves the process, so
only code running inside this server can mint one, and it expires within minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

__all__ = ["PEER_TOKEN_PREFIX", "PeerCredential"]

#: Authorization values of this form are peer credentials, never JWS.
PEER_TOKEN_PREFIX = "byova-peer."
_TTL_S = 300.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PeerCredential:
    """Issues and verifies this process's peer tokens; the key is never shown."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._key = secrets.token_bytes(32)
        self._clock = clock

    def __repr__(self) -> str:
        return "PeerCredential(key=<redacted>)"

    def issue(self, ttl_s: float = _TTL_S) -> str:
        """A fresh token valid for ``ttl_s`` seconds."""
        payload = _b64(
            json.dumps({"exp": self._clock() + ttl_s, "n": _b64(secrets.token_bytes(8))}).encode()
        )
        return f"{PEER_TOKEN_PREFIX}{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> bool:
        """Whether ``token`` was issued by this process and has not expired."""
        if not token.startswith(PEER_TOKEN_PREFIX):
            return False
        payload, _, signature = token[len(PEER_TOKEN_PREFIX) :].partition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return False
        try:
            expires = float(json.loads(_unb64(payload))["exp"])
        except (ValueError, KeyError, TypeError):
            return False
        return self._clock() < expires

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
