"""The Webex REST client against the fake API: retries, 429 storms, pagination, errors, proxies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from fake_webex import FakeWebex, Fault

from byova_control.rest import (
    RateLimitedError,
    WebexApiError,
    WebexClient,
    make_http_client,
    parse_retry_after,
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWebex]:
    async with FakeWebex() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def client_for(fake: FakeWebex, http: httpx.AsyncClient, waits: list[float]) -> WebexClient:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return WebexClient(
        http, base_url=fake.base_url, max_retries=3, backoff_s=0.5, jitter_s=0.25, sleep=sleep
    )


async def test_429_waits_retry_after_plus_jitter_then_succeeds(fake, http) -> None:
    token = fake.issue("integration")["access_token"]
    fake.faults.append(Fault("GET", "/v1/webhooks", 429, 2, {"Retry-After": "7"}))
    waits: list[float] = []
    items = await client_for(fake, http, waits).collect("webhooks", token=token)
    assert items == []
    assert fake.count("GET", "/v1/webhooks") == 3
    assert len(waits) == 2
    assert all(7 <= w <= 7.25 for w in waits)


async def test_429_storm_gives_up_with_typed_error(fake, http) -> None:
    token = fake.issue("integration")["access_token"]
    fake.faults.append(Fault("POST", "/v1/webhooks", 429, 100, {"Retry-After": "1"}))
    waits: list[float] = []
    with pytest.raises(RateLimitedError) as info:
        await client_for(fake, http, waits).post("webhooks", token=token, json={})
    # POST is retried on 429 (Webex did not process it) but only a bounded number of times.
    assert fake.count("POST", "/v1/webhooks") == 4
    assert info.value.status == 429
    assert info.value.tracking_id
    assert info.value.tracking_id.startswith("FAKE_")
    assert info.value.body["message"] == "injected fault"


async def test_5xx_retried_for_get_not_for_post(fake, http) -> None:
    token = fake.issue("integration")["access_token"]
    fake.faults.append(Fault("GET", "/v1/webhooks", 503, 2))
    waits: list[float] = []
    client = client_for(fake, http, waits)
    assert await client.collect("webhooks", token=token) == []
    assert waits[0] < waits[1]  # exponential backoff
    fake.faults.append(Fault("POST", "/v1/webhooks", 502, 1))
    with pytest.raises(WebexApiError) as info:
        await client.post("webhooks", token=token, json={})
    assert info.value.status == 502
    assert fake.count("POST", "/v1/webhooks") == 1


async def test_link_pagination_is_followed(fake, http) -> None:
    token = fake.issue("integration")["access_token"]
    for i in range(5):
        fake.webhooks[f"w{i}"] = {"id": f"w{i}", "name": str(i)}
    items = await client_for(fake, http, []).collect("webhooks", token=token)
    assert [w["id"] for w in items] == ["w0", "w1", "w2", "w3", "w4"]
    assert fake.count("GET", "/v1/webhooks") == 3


async def test_errors_carry_status_tracking_id_and_body(fake, http) -> None:
    with pytest.raises(WebexApiError) as info:
        await client_for(fake, http, []).get("webhooks", token="not-a-token")
    err = info.value
    assert err.status == 401
    assert err.tracking_id
    assert err.tracking_id.startswith("FAKE_")
    assert "valid access token" in str(err)
    assert err.tracking_id in str(err)


async def test_unreachable_host_is_a_typed_error(http) -> None:
    client = WebexClient(http, base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(WebexApiError) as info:
        await client.post("webhooks", token="t", json={})
    assert info.value.status is None


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3", now=0) == 3
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=90) == pytest.approx(10)
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None


async def test_shared_client_honours_proxy_environment(monkeypatch) -> None:
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"via": "proxy"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with make_http_client(5) as http:
            client = WebexClient(http, base_url="http://webexapis.invalid/v1")
            assert await client.get("people/me", token="t") == {"via": "proxy"}
        assert seen
        assert "webexapis.invalid" in seen[0]
    finally:
        await runner.cleanup()
