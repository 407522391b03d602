"""Service App tokens per org: application id, org-id decoding, fetch, single-flight refresh."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from control_helpers import ORG, plane_for, seed_integration
from fake_webex import FakeWebex

from byova_control.rest import WebexApiError
from byova_control.runtime import ControlPlane
from byova_control.service_app import OrgNotAuthorizedError, application_id, decode_org_id
from byova_control.tokens import OAuthTokens


@pytest.fixture
async def fake() -> AsyncIterator[FakeWebex]:
    async with FakeWebex() as server:
        server.authorized_orgs.add(ORG)
        yield server


@pytest.fixture
async def plane(fake: FakeWebex, tmp_path: Path) -> AsyncIterator[ControlPlane]:
    control = plane_for(fake, tmp_path)
    await seed_integration(fake, control)
    yield control
    await control.close()


def b64(text: str, *, pad: bool = False) -> str:
    out = base64.urlsafe_b64encode(text.encode()).decode()
    return out if pad else out.rstrip("=")


def test_application_id_matches_the_documented_shape() -> None:
    # The Webex docs' example application id starts with these characters.
    assert application_id("C279cb0000").startswith("Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL0MyNzlj")
    assert "=" not in application_id("C1")
    assert application_id("Cx", region="eu") == b64("ciscospark://eu/APPLICATION/Cx")


@pytest.mark.parametrize(
    "value",
    [
        ORG,
        ORG.upper(),
        b64(ORG),
        b64(ORG, pad=True),
        b64(f"ciscospark://us/ORGANIZATION/{ORG}"),
        base64.b64encode(f"ciscospark://eu/ORGANIZATION/{ORG}".encode()).decode(),
    ],
)
def test_org_id_decoding_is_tolerant(value: str) -> None:
    assert decode_org_id(value) == ORG


@pytest.mark.parametrize("value", ["", "not base64!", b64("ciscospark://us/PEOPLE/abc")])
def test_org_id_decoding_rejects_garbage(value: str) -> None:
    with pytest.raises(ValueError, match="org id"):
        decode_org_id(value)


async def test_fetch_mints_and_stores_org_tokens(fake: FakeWebex, plane: ControlPlane) -> None:
    tokens = await plane.need_tokens().fetch(b64(ORG))
    assert await plane.store.get_org_tokens(ORG) == tokens
    assert fake.tokens[tokens.access_token] == {"kind": "org", "org": ORG}
    assert await plane.need_tokens().access_token(ORG) == tokens.access_token


async def test_unauthorized_org_is_refused(fake: FakeWebex, plane: ControlPlane) -> None:
    other = "11111111-2222-4333-8444-555555555555"
    with pytest.raises(WebexApiError) as info:
        await plane.need_tokens().fetch(other)
    assert info.value.status == 403
    with pytest.raises(OrgNotAuthorizedError):
        await plane.need_tokens().access_token(other)


async def test_concurrent_callers_share_one_refresh(fake: FakeWebex, plane: ControlPlane) -> None:
    tokens = await plane.need_tokens().fetch(ORG)
    expiring = OAuthTokens(
        access_token=tokens.access_token,
        expires_at=0.0,
        refresh_token=tokens.refresh_token,
    )
    await plane.store.put_org_tokens(ORG, expiring)
    fake.send_refresh_token_on_refresh = False
    results = await asyncio.gather(*(plane.need_tokens().access_token(ORG) for _ in range(10)))
    assert len(set(results)) == 1
    assert results[0] != tokens.access_token
    refreshes = [f for f in fake.forms if f["grant_type"] == "refresh_token"]
    assert len(refreshes) == 1
    assert refreshes[0]["client_id"] == fake.sa_client[0]
    stored = await plane.store.get_org_tokens(ORG)
    assert stored is not None
    assert stored.refresh_token == tokens.refresh_token  # kept: none was returned


async def test_refresh_after_deauthorization_does_not_resurrect(
    fake: FakeWebex, plane: ControlPlane
) -> None:
    await plane.need_tokens().fetch(ORG)
    await plane.store.delete_org_tokens(ORG)
    with pytest.raises(OrgNotAuthorizedError):
        await plane.need_tokens().refresh(ORG)
    assert await plane.store.get_org_tokens(ORG) is None
