"""Integration OAuth: authorize URL with state and PKCE, the local redirect listener, refresh."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from control_helpers import free_port, plane_for
from fake_webex import FakeWebex

from byova_control.oauth import OAuthError, pkce_pair, wait_for_redirect
from byova_control.runtime import ControlPlane
from byova_control.tokens import OAuthTokens


@pytest.fixture
async def fake() -> AsyncIterator[FakeWebex]:
    async with FakeWebex() as server:
        yield server


@pytest.fixture
async def plane(fake: FakeWebex, tmp_path: Path) -> AsyncIterator[ControlPlane]:
    redirect = f"http://127.0.0.1:{free_port()}/oauth/callback"
    control = plane_for(fake, tmp_path, integration_redirect_uri=redirect)
    yield control
    await control.close()


def test_pkce_challenge_is_s256_of_the_verifier() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_authorization_url_carries_state_scopes_and_pkce(plane: ControlPlane) -> None:
    oauth = plane.need_oauth()
    first = oauth.authorization_request()
    second = oauth.authorization_request(pkce=False)
    query = parse_qs(urlsplit(first.url).query)
    assert first.url.startswith(plane.settings.api_url + "/authorize?")
    assert query["state"] == [first.state]
    assert query["response_type"] == ["code"]
    assert "spark:applications_token" in query["scope"][0].split(" ")
    assert query["code_challenge_method"] == ["S256"]
    assert first.state != second.state
    assert "code_challenge" not in parse_qs(urlsplit(second.url).query)
    assert first.code_verifier
    assert first.code_verifier not in repr(first)


async def test_login_flow_through_the_local_listener(fake: FakeWebex, plane: ControlPlane) -> None:
    oauth = plane.need_oauth()
    request = oauth.authorization_request()
    waiting = asyncio.create_task(
        wait_for_redirect(request, redirect_uri=oauth.redirect_uri, timeout_s=10)
    )
    await asyncio.sleep(0.1)
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        # A forged redirect with the wrong state is refused and the listener keeps waiting.
        forged = await browser.get(f"{oauth.redirect_uri}?code=evil&state=wrong")
        assert forged.status_code == 400
        assert not waiting.done()
        page = await browser.get(request.url)  # the fake "logs in" and redirects back
        assert page.status_code == 200
    code = await waiting
    tokens = await oauth.exchange_code(code, code_verifier=request.code_verifier)
    assert fake.tokens[tokens.access_token]["kind"] == "integration"
    exchange = fake.forms[-1]
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["code_verifier"] == request.code_verifier


async def test_denied_authorization_raises(plane: ControlPlane) -> None:
    oauth = plane.need_oauth()
    request = oauth.authorization_request()
    waiting = asyncio.create_task(
        wait_for_redirect(request, redirect_uri=oauth.redirect_uri, timeout_s=10)
    )
    await asyncio.sleep(0.1)
    async with httpx.AsyncClient() as browser:
        await browser.get(f"{oauth.redirect_uri}?error=access_denied&state={request.state}")
    with pytest.raises(OAuthError, match="access_denied"):
        await waiting


async def test_refresh_keeps_the_old_refresh_token(fake: FakeWebex, plane: ControlPlane) -> None:
    oauth = plane.need_oauth()
    first = OAuthTokens.from_response(fake.issue("integration"))
    fake.send_refresh_token_on_refresh = False
    second = await oauth.refresh(first)
    assert second.access_token != first.access_token
    assert second.refresh_token == first.refresh_token
    fake.send_refresh_token_on_refresh = True
    third = await oauth.refresh(second)
    assert third.refresh_token != first.refresh_token


async def test_session_refreshes_an_expiring_integration_token_once(
    fake: FakeWebex, plane: ControlPlane
) -> None:
    issued = OAuthTokens.from_response(fake.issue("integration"))
    await plane.store.put_integration_tokens(
        OAuthTokens(access_token="old", expires_at=0, refresh_token=issued.refresh_token)
    )
    assert plane.integration is not None
    tokens = await asyncio.gather(*(plane.integration.access_token() for _ in range(5)))
    assert len(set(tokens)) == 1
    assert tokens[0] != "old"
    assert sum(1 for f in fake.forms if f["grant_type"] == "refresh_token") == 1


async def test_session_without_login_says_what_to_do(plane: ControlPlane) -> None:
    assert plane.integration is not None
    with pytest.raises(OAuthError, match="control login"):
        await plane.integration.access_token()
