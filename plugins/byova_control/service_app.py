"""Service App tokens per customer org: application id, fetch, refresh (single-flight), org ids.

A customer's Full Admin authorizes our Service App; we then mint that org's tokens with the
Integration token (``POST /applications/{applicationId}/token``) and refresh them with the
Service App's own client credentials before they expire.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from collections.abc import Callable

from pydantic import SecretStr

from byova_control.oauth import IntegrationSession
from byova_control.rest import WebexClient
from byova_control.singleflight import SingleFlight
from byova_control.store import TokenStore
from byova_control.tokens import OAuthTokens

__all__ = [
    "OrgNotAuthorizedError",
    "ServiceAppTokens",
    "application_id",
    "decode_org_id",
]

log = logging.getLogger(__name__)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class OrgNotAuthorizedError(LookupError):
    """No tokens are stored for this org (it never authorized us, or it deauthorized)."""


def application_id(client_id: str, region: str = "us") -> str:
    """The Service App's application id: base64url of ``ciscospark://<region>/APPLICATION/<id>``.

    Webex ids are unpadded base64url, which is what the docs' examples decode from.
    """
    uri = f"ciscospark://{region}/APPLICATION/{client_id}"
    return base64.urlsafe_b64encode(uri.encode()).rstrip(b"=").decode("ascii")


def decode_org_id(value: str) -> str:
    """The org UUID from what Webex sends: a UUID, base64 of a UUID, or of a ciscospark:// URI.

    Raises ``ValueError`` when the value is none of these.
    """
    value = value.strip()
    if _UUID.match(value):
        return value.lower()
    padded = value + "=" * (-len(value) % 4)
    try:
        decoded = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_")).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("org id is neither a UUID nor base64 of one") from None
    if decoded.startswith("ciscospark://"):
        decoded = decoded.rstrip("/").rsplit("/", 1)[-1]
    if _UUID.match(decoded):
        return decoded.lower()
    raise ValueError("org id is neither a UUID nor base64 of one")


class ServiceAppTokens:
    """Fetch, store and hand out each org's Service App access token."""

    def __init__(
        self,
        client: WebexClient,
        store: TokenStore,
        integration: IntegrationSession | None,
        *,
        client_id: str,
        client_secret: SecretStr,
        refresh_margin_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.store = store
        self.integration = integration
        self.client_id = client_id
        self._client_secret = client_secret
        self.application_id = application_id(client_id)
        self.refresh_margin_s = refresh_margin_s
        self._clock = clock
        self._flight: SingleFlight[OAuthTokens] = SingleFlight()

    def __repr__(self) -> str:
        return f"ServiceAppTokens(client_id={self.client_id!r})"

    async def fetch(self, org_id: str) -> OAuthTokens:
        """Mint the org's tokens with the Integration token and store them."""
        if self.integration is None:
            raise OrgNotAuthorizedError(
                "cannot mint Service App tokens: the Integration is not configured"
            )
        org = decode_org_id(org_id)
        integration_token = await self.integration.access_token()
        body = await self.client.post(
            f"applications/{self.application_id}/token",
            token=integration_token,
            json={
                "clientId": self.client_id,
                "clientSecret": self._client_secret.get_secret_value(),
                "targetOrgId": org,
            },
        )
        tokens = OAuthTokens.from_response(body, now=self._clock())
        await self.store.put_org_tokens(org, tokens)
        log.info("stored Service App tokens for org %s", org)
        return tokens

    async def access_token(self, org_id: str) -> str:
        """A valid access token for the org, refreshed first when it is about to expire."""
        org = decode_org_id(org_id)
        tokens = await self.store.get_org_tokens(org)
        if tokens is None:
            raise OrgNotAuthorizedError(f"org {org} has not authorized the Service App")
        if tokens.expires_within(self.refresh_margin_s, now=self._clock()):
            tokens = await self._flight.run(org, lambda: self._refresh(org))
        return tokens.access_token

    async def refresh(self, org_id: str) -> OAuthTokens:
        """Refresh the org's tokens now (shared with any refresh already running)."""
        org = decode_org_id(org_id)
        return await self._flight.run(org, lambda: self._refresh(org, force=True))

    async def _refresh(self, org: str, *, force: bool = False) -> OAuthTokens:
        current = await self.store.get_org_tokens(org)
        if current is None:
            raise OrgNotAuthorizedError(f"org {org} has not authorized the Service App")
        if not force and not current.expires_within(self.refresh_margin_s, now=self._clock()):
            return current  # refreshed by another instance meanwhile
        if not current.refresh_token:
            return await self.fetch(org)
        body = await self.client.form(
            "access_token",
            {
                "grant_type": "refresh_token",
                "client_id": self.client_id,
                "client_secret": self._client_secret.get_secret_value(),
                "refresh_token": current.refresh_token,
            },
        )
        fresh = OAuthTokens.from_response(body, now=self._clock(), previous=current)
        # A deauthorization may have removed the org while we were refreshing.
        if await self.store.get_org_tokens(org) is None:
            raise OrgNotAuthorizedError(f"org {org} deauthorized during a refresh")
        await self.store.put_org_tokens(org, fresh)
        log.info("refreshed Service App tokens for org %s", org)
        return fresh

    async def forget(self, org_id: str) -> bool:
        """Drop the org's tokens (deauthorized)."""
        return await self.store.delete_org_tokens(decode_org_id(org_id))
