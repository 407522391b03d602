"""Integration OAuth: authorization URL (state + PKCE), code exchange, refresh, redirect listener.

The Integration's token (scope ``spark:applications_token``) is what mints per-org Service
App tokens; ``byova-media control login`` obtains it once and the store keeps it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from pydantic import SecretStr

from byova_control.rest import WebexClient
from byova_control.singleflight import SingleFlight
from byova_control.store import TokenStore
from byova_control.tokens import OAuthTokens

__all__ = [
    "AuthorizationRequest",
    "IntegrationOAuth",
    "IntegrationSession",
    "OAuthError",
    "pkce_pair",
    "wait_for_redirect",
]

log = logging.getLogger(__name__)


class OAuthError(RuntimeError):
    """The OAuth flow failed (denied, wrong state, no stored tokens, ...)."""


def pkce_pair() -> tuple[str, str]:
    """A PKCE ``code_verifier`` and its S256 ``code_challenge`` (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the user's browser, and what must come back."""

    url: str
    state: str = field(repr=False)
    code_verifier: str | None = field(default=None, repr=False)


class IntegrationOAuth:
    """The Integration's OAuth endpoints (``/authorize`` and ``/access_token``)."""

    def __init__(
        self,
        client: WebexClient,
        *,
        client_id: str,
        client_secret: SecretStr,
        redirect_uri: str,
        scopes: Sequence[str],
    ) -> None:
        self.client = client
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.scopes = tuple(scopes)

    def __repr__(self) -> str:
        return f"IntegrationOAuth(client_id={self.client_id!r}, redirect_uri={self.redirect_uri!r})"

    def authorization_request(
        self, *, pkce: bool = True, login_hint: str | None = None
    ) -> AuthorizationRequest:
        """Build the authorize URL with a fresh ``state`` (and PKCE challenge)."""
        state = secrets.token_urlsafe(24)
        params = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
        }
        verifier = None
        if pkce:
            verifier, challenge = pkce_pair()
            params["code_challenge"] = challenge
            params["code_challenge_method"] = "S256"
        if login_hint:
            params["login_hint"] = login_hint
        url = f"{self.client.url('authorize')}?{urlencode(params)}"
        return AuthorizationRequest(url=url, state=state, code_verifier=verifier)

    async def exchange_code(self, code: str, *, code_verifier: str | None = None) -> OAuthTokens:
        """Trade an authorization code for tokens."""
        form = {
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "client_secret": self._client_secret.get_secret_value(),
            "code": code,
            "redirect_uri": self.redirect_uri,
        }
        if code_verifier is not None:
            form["code_verifier"] = code_verifier
        return OAuthTokens.from_response(await self.client.form("access_token", form))

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        """Refresh; keep the old refresh token when Webex does not send a new one."""
        if not tokens.refresh_token:
            raise OAuthError("no refresh token: run `byova-media control login` again")
        body = await self.client.form(
            "access_token",
            {
                "grant_type": "refresh_token",
                "client_id": self.client_id,
                "client_secret": self._client_secret.get_secret_value(),
                "refresh_token": tokens.refresh_token,
            },
        )
        return OAuthTokens.from_response(body, previous=tokens)


class IntegrationSession:
    """A valid Integration access token from the store, refreshed (single-flight) when due."""

    def __init__(
        self, oauth: IntegrationOAuth, store: TokenStore, *, refresh_margin_s: float = 300.0
    ) -> None:
        self.oauth = oauth
        self.store = store
        self.refresh_margin_s = refresh_margin_s
        self._flight: SingleFlight[OAuthTokens] = SingleFlight()

    async def access_token(self) -> str:
        """The current Integration access token, refreshing it if it is about to expire."""
        tokens = await self.store.get_integration_tokens()
        if tokens is None:
            raise OAuthError("no Integration token stored: run `byova-media control login`")
        if tokens.expires_within(self.refresh_margin_s):
            tokens = await self._flight.run("integration", self._refresh)
        return tokens.access_token

    async def _refresh(self) -> OAuthTokens:
        current = await self.store.get_integration_tokens()
        if current is None:
            raise OAuthError("no Integration token stored: run `byova-media control login`")
        if not current.expires_within(self.refresh_margin_s):
            return current  # another instance refreshed it meanwhile
        fresh = await self.oauth.refresh(current)
        await self.store.put_integration_tokens(fresh)
        log.info("refreshed the Integration access token")
        return fresh


_DONE_PAGE = (
    "<!doctype html><title>byova-media</title><p>Authorization received. "
    "You can close this window and return to the terminal.</p>"
)


async def wait_for_redirect(
    request: AuthorizationRequest, *, redirect_uri: str, timeout_s: float = 300.0
) -> str:
    """Serve ``redirect_uri`` locally until the browser comes back; return the code.

    The ``state`` must match (constant-time compare); an ``error`` parameter or a timeout
    raises :class:`OAuthError`.
    """
    target = urlsplit(redirect_uri)
    host = target.hostname or "127.0.0.1"
    port = target.port or 80
    path = target.path or "/"
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[str] = loop.create_future()

    async def callback(req: web.Request) -> web.Response:
        query = req.rel_url.query
        if outcome.done():
            return web.Response(status=410, text="this login already finished")
        if "error" in query:
            outcome.set_exception(OAuthError(f"authorization refused: {query['error']}"))
            return web.Response(status=400, text="authorization refused")
        state = query.get("state", "")
        if not hmac.compare_digest(state.encode(), request.state.encode()):
            return web.Response(status=400, text="state does not match; start the login again")
        code = query.get("code")
        if not code:
            return web.Response(status=400, text="no code in the redirect")
        outcome.set_result(code)
        return web.Response(text=_DONE_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get(path, callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        return await asyncio.wait_for(outcome, timeout_s)
    except TimeoutError:
        raise OAuthError(f"no redirect to {redirect_uri} within {timeout_s:.0f} s") from None
    finally:
        await runner.cleanup()
