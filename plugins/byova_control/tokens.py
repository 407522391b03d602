"""OAuth token pairs as the store keeps them; the secrets never show in a repr."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["OAuthTokens"]


@dataclass(frozen=True)
class OAuthTokens:
    """An access token (and its refresh token) with absolute expiry times in epoch seconds."""

    access_token: str = field(repr=False)
    expires_at: float
    refresh_token: str | None = field(default=None, repr=False)
    refresh_expires_at: float | None = None
    token_type: str = "Bearer"

    @classmethod
    def from_response(
        cls, body: dict[str, Any], *, now: float | None = None, previous: OAuthTokens | None = None
    ) -> OAuthTokens:
        """Build from a Webex token answer; keep ``previous``'s refresh token when none is sent."""
        now = time.time() if now is None else now
        try:
            access = str(body["access_token"])
            expires_in = float(body.get("expires_in", 0))
        except (KeyError, TypeError, ValueError):
            raise ValueError("token answer has no usable access_token/expires_in") from None
        refresh = body.get("refresh_token")
        refresh_in = body.get("refresh_token_expires_in")
        tokens = cls(
            access_token=access,
            expires_at=now + expires_in,
            refresh_token=str(refresh) if refresh else None,
            refresh_expires_at=now + float(refresh_in) if refresh_in is not None else None,
            token_type=str(body.get("token_type") or "Bearer"),
        )
        if tokens.refresh_token is None and previous is not None:
            tokens = replace(
                tokens,
                refresh_token=previous.refresh_token,
                refresh_expires_at=previous.refresh_expires_at,
            )
        return tokens

    def expires_within(self, seconds: float, *, now: float | None = None) -> bool:
        """True when the access token is expired or expires in less than ``seconds``."""
        return self.expires_at - (time.time() if now is None else now) < seconds

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for storage (contains the secrets: encrypt before writing)."""
        return {
            "access_token": self.access_token,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "refresh_expires_at": self.refresh_expires_at,
            "token_type": self.token_type,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OAuthTokens:
        """Inverse of :meth:`to_dict`."""
        return cls(
            access_token=str(data["access_token"]),
            expires_at=float(data["expires_at"]),
            refresh_token=data.get("refresh_token"),
            refresh_expires_at=data.get("refresh_expires_at"),
            token_type=str(data.get("token_type") or "Bearer"),
        )
