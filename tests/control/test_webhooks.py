"""serviceApp webhooks: idempotent ensure, and the signed, de-duplicated receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from control_helpers import ORG, plane_for, seed_integration
from fake_webex import FakeWebex
from pydantic import SecretStr

from byova_control.runtime import ControlPlane
from byova_control.webhooks import (
    WEBHOOK_PATH,
    ServiceAppEvent,
    WebhookReceiver,
    sign,
    verify_signature,
)

SECRET = "whsec-test-1"
TARGET = "https://media.example.com/webhooks/webex"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWebex]:
    async with FakeWebex() as server:
        yield server


@pytest.fixture
async def plane(fake: FakeWebex, tmp_path: Path) -> AsyncIterator[ControlPlane]:
    control = plane_for(fake, tmp_path, webhook_secret=SECRET)
    await seed_integration(fake, control)
    yield control
    await control.close()


class Receiver:
    """A webhook receiver on the plane's store, served on 127.0.0.1, recording events."""

    receiver: WebhookReceiver

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.events: list[ServiceAppEvent] = []
        self.fail_next = 0
        self.url = ""

    async def handler(self, event: ServiceAppEvent) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("boom")
        self.events.append(event)


@pytest.fixture
async def receiver(plane: ControlPlane) -> AsyncIterator[Receiver]:
    rec = Receiver(plane)
    rec.receiver = WebhookReceiver(plane.store, plane.webhook_secrets, rec.handler)
    app = web.Application()
    app.add_routes(rec.receiver.routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}{WEBHOOK_PATH}"
    yield rec
    await runner.cleanup()


def delivery(event: str = "authorized", created: str = "2026-01-01T00:00:00.000Z") -> bytes:
    payload: dict[str, Any] = {
        "id": "Y2lzY29zcGFyazovL3VzL1dFQkhPT0svd2gx",
        "name": "byova-media serviceApp authorized",
        "resource": "serviceApp",
        "event": event,
        "orgId": "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9kZXY",
        "created": created,
        "data": {"orgId": f"{ORG}", "applicationId": "app"},
    }
    return json.dumps(payload).encode()


async def post(url: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Spark-Signature"] = signature
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=body, headers=headers)


async def settle(rec: Receiver) -> None:
    await rec.receiver.drain(5)


def test_signature_check() -> None:
    body = b'{"a": 1}'
    good = sign(SECRET, body)
    assert verify_signature([SecretStr(SECRET)], body, good)
    assert verify_signature([SecretStr("other"), SecretStr(SECRET)], body, good.upper())
    assert not verify_signature([SecretStr(SECRET)], body + b" ", good)
    assert not verify_signature([SecretStr(SECRET)], body, None)
    assert not verify_signature([], body, good)


async def test_signed_delivery_is_processed_in_the_background(receiver: Receiver) -> None:
    body = delivery()
    response = await post(receiver.url, body, sign(SECRET, body))
    assert response.status_code == 202
    await settle(receiver)
    assert [(e.event, e.org_id) for e in receiver.events] == [("authorized", ORG)]


@pytest.mark.parametrize("signature", [None, "0" * 40, sign("wrong", delivery())])
async def test_bad_signature_is_401(receiver: Receiver, signature: str | None) -> None:
    response = await post(receiver.url, delivery(), signature)
    assert response.status_code == 401
    await settle(receiver)
    assert receiver.events == []


async def test_replayed_delivery_is_processed_once(receiver: Receiver) -> None:
    body = delivery()
    answers = await asyncio.gather(
        *(post(receiver.url, body, sign(SECRET, body)) for _ in range(4))
    )
    assert sorted(r.json()["status"] for r in answers) == ["accepted"] + ["duplicate"] * 3
    other = delivery(created="2026-01-02T00:00:00.000Z")
    assert (await post(receiver.url, other, sign(SECRET, other))).status_code == 202
    await settle(receiver)
    assert len(receiver.events) == 2


async def test_failed_processing_lets_the_retry_through(receiver: Receiver) -> None:
    receiver.fail_next = 1
    body = delivery()
    assert (await post(receiver.url, body, sign(SECRET, body))).status_code == 202
    await settle(receiver)
    assert receiver.events == []
    assert (await post(receiver.url, body, sign(SECRET, body))).status_code == 202
    await settle(receiver)
    assert len(receiver.events) == 1


async def test_other_resources_and_bad_bodies(receiver: Receiver) -> None:
    other = json.dumps({"resource": "messages", "event": "created", "id": "x"}).encode()
    response = await post(receiver.url, other, sign(SECRET, other))
    assert response.json() == {"status": "ignored"}
    broken = b"{not json"
    assert (await post(receiver.url, broken, sign(SECRET, broken))).status_code == 400


async def test_registration_secret_is_generated_once(fake: FakeWebex, tmp_path: Path) -> None:
    plane = plane_for(fake, tmp_path)
    try:
        assert await plane.webhook_secrets() == []
        secret = await plane.registration_secret()  # generated and stored
        assert await plane.registration_secret() == secret
        assert [s.get_secret_value() for s in await plane.webhook_secrets()] == [
            secret.get_secret_value()
        ]
    finally:
        await plane.close()


async def test_ensure_is_idempotent(fake: FakeWebex, plane: ControlPlane) -> None:
    for i in range(3):  # unrelated webhooks so that the listing spans several pages
        fake.webhooks[f"other{i}"] = {"id": f"other{i}", "resource": "messages", "event": "all"}
    webhooks = plane.need_webhooks()
    secret = await plane.registration_secret()
    first = await webhooks.ensure(TARGET, secret=secret)
    assert [d.action for d in first] == ["created", "created"]
    assert {d.webhook["event"] for d in first} == {"authorized", "deauthorized"}
    second = await webhooks.ensure(TARGET, secret=secret)
    assert [d.action for d in second] == ["unchanged", "unchanged"]
    assert fake.count("POST", "/v1/webhooks") == 2
    fake.webhooks[first[0].webhook["id"]]["status"] = "inactive"
    third = await webhooks.ensure(TARGET, secret=SecretStr("rotated"))
    assert [d.action for d in third] == ["updated", "updated"]
    assert fake.webhooks[first[0].webhook["id"]]["status"] == "active"
    filtered = await webhooks.ensure(TARGET, secret=secret, filter="id=abc")
    assert [d.action for d in filtered] == ["created", "created"]
    service_app_hooks = [w for w in fake.webhooks.values() if w.get("resource") == "serviceApp"]
    assert len(service_app_hooks) == 2
    assert all(w["filter"] == "id=abc" for w in service_app_hooks)
    await webhooks.delete(filtered[0].webhook["id"])
    assert len(await webhooks.list_all()) == 4
