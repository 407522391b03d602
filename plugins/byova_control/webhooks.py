"""serviceApp webhooks: idempotent registration, and the receiver Webex posts deliveries to.

The receiver verifies ``X-Spark-Signature`` (hex HMAC-SHA1 of the raw body) in constant time,
answers at once and processes each delivery once in the background, even when Webex
retries it or several instances share the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import SecretStr

from byova_control.oauth import IntegrationSession
from byova_control.rest import WebexClient
from byova_control.service_app import decode_org_id
from byova_control.store import TokenStore

__all__ = [
    "EVENTS",
    "WEBHOOK_PATH",
    "EnsuredWebhook",
    "ServiceAppEvent",
    "WebhookReceiver",
    "Webhooks",
    "delivery_key",
    "sign",
    "verify_signature",
]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/webex"
EVENTS: tuple[str, ...] = ("authorized", "deauthorized")
_PATH = "webhooks"
_MAX_BODY_BYTES = 256 * 1024


def sign(secret: str, body: bytes) -> str:
    """The ``X-Spark-Signature`` Webex computes: hex HMAC-SHA1 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def verify_signature(secrets: Sequence[SecretStr], body: bytes, signature: str | None) -> bool:
    """True when ``signature`` matches the body under one of ``secrets`` (constant time)."""
    if not signature:
        return False
    given = signature.strip().lower().encode()
    ok = False
    for secret in secrets:
        expected = sign(secret.get_secret_value(), body).encode()
        ok |= hmac.compare_digest(expected, given)
    return ok


def delivery_key(payload: dict[str, Any]) -> str:
    """A stable id for one delivery, identical across Webex's retries of it.

    The envelope ``id`` is the *webhook's* id (shared by all its deliveries), so it is
    combined with the event, the org, the creation time and the resource data.
    """
    parts = [payload.get(k) for k in ("id", "event", "resource", "orgId", "created")]
    parts.append(payload.get("data"))
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ServiceAppEvent:
    """An authorization change of our Service App in a customer org."""

    event: Literal["authorized", "deauthorized"]
    org_id: str
    payload: dict[str, Any]


def _event_from(payload: dict[str, Any]) -> ServiceAppEvent | None:
    if payload.get("resource") != "serviceApp" or payload.get("event") not in EVENTS:
        return None
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    # The authorizing customer org is in data.orgId; the envelope's orgId is the fallback.
    raw_org = (data or {}).get("orgId") or payload.get("orgId")
    if not isinstance(raw_org, str):
        return None
    try:
        org = decode_org_id(raw_org)
    except ValueError:
        return None
    event: Literal["authorized", "deauthorized"] = (
        "authorized" if payload["event"] == "authorized" else "deauthorized"
    )
    return ServiceAppEvent(event=event, org_id=org, payload=payload)


class WebhookReceiver:
    """The aiohttp handler behind ``POST /webhooks/webex``."""

    def __init__(
        self,
        store: TokenStore,
        secrets: Callable[[], Awaitable[Sequence[SecretStr]]],
        handler: Callable[[ServiceAppEvent], Awaitable[None]],
        *,
        dedupe_ttl_s: float = 7 * 86400.0,
    ) -> None:
        self.store = store
        self._secrets = secrets
        self._handler = handler
        self.dedupe_ttl_s = dedupe_ttl_s
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.RouteDef]:
        """The routes to serve on the HTTP port."""
        return [web.post(WEBHOOK_PATH, self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        """Verify, de-duplicate, acknowledge; the work runs in the background."""
        # Content-Length is checked before reading; a chunked body has none, so its length
        # is checked once read (the HTTP port bounds that read at MAX_BODY_BYTES).
        if request.content_length is not None and request.content_length > _MAX_BODY_BYTES:
            return web.json_response({"error": "body too large"}, status=413)
        body = await request.read()
        if len(body) > _MAX_BODY_BYTES:
            return web.json_response({"error": "body too large"}, status=413)
        secrets = await self._secrets()
        if not secrets:
            log.warning("webhook refused: no webhook secret is configured or stored")
            return web.json_response({"error": "signature required"}, status=401)
        if not verify_signature(secrets, body, request.headers.get("X-Spark-Signature")):
            log.warning("webhook refused: bad or missing X-Spark-Signature")
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(payload, dict):
            return web.json_response({"error": "body is not a JSON object"}, status=400)
        event = _event_from(payload)
        if event is None:
            return web.json_response({"status": "ignored"})
        key = delivery_key(payload)
        if not await self.store.first_delivery(key, self.dedupe_ttl_s):
            log.info("webhook delivery %s already processed; ignoring the retry", key[:12])
            return web.json_response({"status": "duplicate"})
        task = asyncio.create_task(self._process(event, key), name=f"webhook-{event.event}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({"status": "accepted"}, status=202)

    async def _process(self, event: ServiceAppEvent, key: str) -> None:
        try:
            await self._handler(event)
        except Exception:
            log.exception("processing %s for org %s failed", event.event, event.org_id)
            # Let Webex's retry (or a re-delivery) try again.
            await self.store.forget_delivery(key)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for background work to finish, then cancel what is left."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True)
class EnsuredWebhook:
    """One webhook after ``ensure`` and what was done to it."""

    webhook: dict[str, Any]
    action: Literal["created", "updated", "unchanged"]


class Webhooks:
    """Webhook REST calls made with the Integration token."""

    def __init__(self, client: WebexClient, integration: IntegrationSession) -> None:
        self.client = client
        self.integration = integration

    async def list_all(self) -> list[dict[str, Any]]:
        """Every webhook of the Integration (all pages)."""
        token = await self.integration.access_token()
        return await self.client.collect(_PATH, token=token, params={"max": 100})

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Register a webhook."""
        token = await self.integration.access_token()
        return dict(await self.client.post(_PATH, token=token, json=body))

    async def update(self, webhook_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace a webhook's name, target, secret or status."""
        token = await self.integration.access_token()
        return dict(await self.client.put(f"{_PATH}/{webhook_id}", token=token, json=body))

    async def delete(self, webhook_id: str) -> None:
        """Remove a webhook."""
        token = await self.integration.access_token()
        await self.client.delete(f"{_PATH}/{webhook_id}", token=token)

    async def ensure(
        self,
        target_url: str,
        *,
        secret: SecretStr,
        filter: str | None = None,
        name: str = "byova-media",
    ) -> list[EnsuredWebhook]:
        """Make sure one active serviceApp webhook per event targets ``target_url``.

        Existing ones (same resource, event and target) are re-used, and updated when
        they are inactive or their secret differs. Filters cannot be changed by PUT, so
        a webhook with another filter is deleted and re-created.
        """
        existing = await self.list_all()
        out = []
        for event in EVENTS:
            body: dict[str, Any] = {
                "name": f"{name} serviceApp {event}",
                "targetUrl": target_url,
                "resource": "serviceApp",
                "event": event,
                "secret": secret.get_secret_value(),
            }
            if filter:
                body["filter"] = filter
            matches = [
                w
                for w in existing
                if w.get("resource") == "serviceApp"
                and w.get("event") == event
                and w.get("targetUrl") == target_url
            ]
            keep = next((w for w in matches if (w.get("filter") or None) == filter), None)
            for extra in matches:
                if extra is not keep:
                    await self.delete(str(extra["id"]))
            if keep is None:
                out.append(EnsuredWebhook(await self.create(body), "created"))
            elif keep.get("status", "active") != "active" or not _same_secret(keep, secret):
                update = {k: body[k] for k in ("name", "targetUrl", "secret")}
                update["status"] = "active"
                out.append(EnsuredWebhook(await self.update(str(keep["id"]), update), "updated"))
            else:
                out.append(EnsuredWebhook(keep, "unchanged"))
        return out


def _same_secret(webhook: dict[str, Any], secret: SecretStr) -> bool:
    """True only when Webex returned the webhook's secret and it equals ours."""
    theirs = webhook.get("secret")
    if not isinstance(theirs, str):
        return False
    return hmac.compare_digest(theirs.encode(), secret.get_secret_value().encode())
