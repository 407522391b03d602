"""BYODS DataSources: CRUD, ``ensure`` (find or create, never guess), and background renewal.

Webex stops calling a data source once its JWS lapses (``tokenLifetimeMinutes`` ≤ 1440), so
the renewer PUTs a fresh nonce well before ``tokenExpiryTime`` and retries on failure. An org
may have one tracked data source per transport (gRPC and WebSocket, each with its own schema
and URL); each is renewed on its own. With several instances on one Redis store, a lease
makes exactly one of them the renewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt

from byova_control.jws import BYOVA_SCHEMA_ID
from byova_control.rest import WebexClient
from byova_control.service_app import ServiceAppTokens, decode_org_id
from byova_control.store import TRANSPORTS, TokenStore, Transport

__all__ = [
    "BYOVA_SCHEMA_ID",
    "AmbiguousDataSourceError",
    "DataSourceRenewer",
    "DataSourceSpec",
    "DataSources",
    "EnsureResult",
    "spec_from_tracking",
    "token_expiry",
    "track",
]

log = logging.getLogger(__name__)

_PATH = "dataSources"


class AmbiguousDataSourceError(RuntimeError):
    """Several data sources match; the operator must delete the extra ones (we never guess)."""


@dataclass(frozen=True)
class DataSourceSpec:
    """What to register: the URL Webex calls, and the claims it will put in the JWS."""

    url: str
    audience: str = "BYOVAGateway"
    subject: str = "callAudioData"
    schema_id: str = BYOVA_SCHEMA_ID
    token_lifetime_minutes: int = 1440

    def body(self, *, nonce: str) -> dict[str, Any]:
        """The create/update JSON body."""
        return {
            "schemaId": self.schema_id,
            "url": self.url,
            "audience": self.audience,
            "subject": self.subject,
            "nonce": nonce,
            "tokenLifetimeMinutes": self.token_lifetime_minutes,
        }

    def matches(self, record: dict[str, Any]) -> bool:
        """Exact match on url, schema, audience and subject (``https://h`` ≠ ``https://h:443``)."""
        return (
            record.get("url") == self.url
            and record.get("schemaId") == self.schema_id
            and record.get("audience") == self.audience
            and record.get("subject") == self.subject
        )


@dataclass(frozen=True)
class EnsureResult:
    """The data source ``ensure`` found or created."""

    record: dict[str, Any]
    created: bool


def token_expiry(record: dict[str, Any]) -> float | None:
    """When the record's JWS expires (epoch s): ``tokenExpiryTime``, else the JWS ``exp``."""
    when = record.get("tokenExpiryTime")
    if isinstance(when, str) and when:
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
    token = record.get("jwsToken")
    if isinstance(token, str) and token:
        with contextlib.suppress(jwt.PyJWTError):
            exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
            return float(exp) if isinstance(exp, int | float) else None
    return None


def _tracking(record: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps about a data source: never the JWS itself."""
    keep = ("id", "url", "schemaId", "audience", "subject", "status", "tokenLifetimeMinutes")
    out = {k: record.get(k) for k in keep}
    out["expires_at"] = token_expiry(record)
    return out


async def track(
    store: TokenStore, org_id: str, transport: Transport, record: dict[str, Any]
) -> None:
    """Record the org's data source of ``transport`` for renewal, by whichever process renews.

    A plain store write, so a CLI command tracks what it creates for the server's renewer.
    """
    await store.put_datasource(decode_org_id(org_id), transport, _tracking(record))


def spec_from_tracking(tracked: dict[str, Any]) -> DataSourceSpec:
    """The spec a tracked data source was registered with, for a transport this process has
    no URL configured for (another instance serves it; this one may hold the lease)."""
    url, schema_id = tracked.get("url"), tracked.get("schemaId")
    if not url or not schema_id:
        raise LookupError(
            f"the tracked data source {tracked.get('id')} records no URL or schema, and "
            "none is configured for its transport"
        )
    lifetime = tracked.get("tokenLifetimeMinutes")
    default = DataSourceSpec(url=str(url), schema_id=str(schema_id))
    return DataSourceSpec(
        url=default.url,
        schema_id=default.schema_id,
        audience=str(tracked.get("audience") or default.audience),
        subject=str(tracked.get("subject") or default.subject),
        token_lifetime_minutes=lifetime if isinstance(lifetime, int) else 1440,
    )


class DataSources:
    """DataSource REST calls made with the org's Service App token."""

    def __init__(self, client: WebexClient, tokens: ServiceAppTokens) -> None:
        self.client = client
        self.tokens = tokens

    async def schemas(self, org_id: str) -> list[dict[str, Any]]:
        """Every schema Webex offers."""
        token = await self.tokens.access_token(org_id)
        return await self.client.collect(f"{_PATH}/schemas", token=token)

    async def list_all(self, org_id: str) -> list[dict[str, Any]]:
        """The org's data sources created by this Service App."""
        token = await self.tokens.access_token(org_id)
        return await self.client.collect(_PATH, token=token)

    async def get(self, org_id: str, datasource_id: str) -> dict[str, Any]:
        """One data source."""
        token = await self.tokens.access_token(org_id)
        return dict(await self.client.get(f"{_PATH}/{datasource_id}", token=token))

    async def create(
        self, org_id: str, spec: DataSourceSpec, *, nonce: str | None = None
    ) -> dict[str, Any]:
        """Register a data source."""
        token = await self.tokens.access_token(org_id)
        body = spec.body(nonce=nonce or str(uuid.uuid4()))
        return dict(await self.client.post(_PATH, token=token, json=body))

    async def update(
        self,
        org_id: str,
        datasource_id: str,
        spec: DataSourceSpec,
        *,
        nonce: str | None = None,
        status: str = "active",
    ) -> dict[str, Any]:
        """Replace a data source; a fresh nonce renews its JWS and re-activates it."""
        token = await self.tokens.access_token(org_id)
        body = spec.body(nonce=nonce or str(uuid.uuid4())) | {"status": status}
        return dict(await self.client.put(f"{_PATH}/{datasource_id}", token=token, json=body))

    async def delete(self, org_id: str, datasource_id: str) -> None:
        """Remove a data source (Webex stops calling it)."""
        token = await self.tokens.access_token(org_id)
        await self.client.delete(f"{_PATH}/{datasource_id}", token=token)

    async def ensure(self, org_id: str, spec: DataSourceSpec) -> EnsureResult:
        """Find the data source matching ``spec`` exactly, or create it; refuse on several."""
        found = [r for r in await self.list_all(org_id) if spec.matches(r)]
        if len(found) > 1:
            ids = ", ".join(str(r.get("id")) for r in found)
            raise AmbiguousDataSourceError(
                f"{len(found)} data sources match {spec.url} (ids {ids}); delete the extra "
                "ones with `byova-media control datasources delete`"
            )
        if found:
            return EnsureResult(record=found[0], created=False)
        return EnsureResult(record=await self.create(org_id, spec), created=True)


class DataSourceRenewer:
    """Keeps every tracked data source's JWS fresh, per org and transport; one renewer per
    store (lease).

    Each transport is PUT with its own spec: the one configured for it in ``specs`` (the
    URL the JWS verifier of that transport expects), else the one the tracked record was
    registered with. A failure backs off that one data source only.
    """

    LEASE = "datasource-renewer"

    def __init__(
        self,
        datasources: DataSources,
        store: TokenStore,
        specs: Mapping[Transport, DataSourceSpec],
        *,
        owner: str | None = None,
        renew_before_s: float = 3600.0,
        retry_s: float = 60.0,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.datasources = datasources
        self.store = store
        self.specs = dict(specs)
        self.owner = owner or f"renewer-{uuid.uuid4()}"
        self.renew_before_s = renew_before_s
        self.retry_s = retry_s
        self.interval_s = interval_s
        self.lease_ttl_s = max(3 * interval_s, 5.0)
        self._clock = clock
        self._retry_at: dict[tuple[str, Transport], float] = {}
        self._task: asyncio.Task[None] | None = None

    async def untrack(self, org_id: str) -> None:
        """Stop renewing every data source of the org (deauthorized)."""
        org = decode_org_id(org_id)
        for transport in TRANSPORTS:
            self._retry_at.pop((org, transport), None)
        await self.store.delete_datasources(org)

    def spec_for(self, transport: Transport, tracked: dict[str, Any]) -> DataSourceSpec:
        """The spec to PUT: configured for the transport, else the tracked registration."""
        return self.specs.get(transport) or spec_from_tracking(tracked)

    async def renew(self, org_id: str, transport: Transport = "grpc") -> dict[str, Any]:
        """PUT a fresh nonce for the org's tracked data source of ``transport`` now."""
        org = decode_org_id(org_id)
        tracked = await self.store.get_datasource(org, transport)
        if tracked is None or not tracked.get("id"):
            raise LookupError(f"no {transport} data source tracked for org {org}")
        spec = self.spec_for(transport, tracked)
        record = await self.datasources.update(org, str(tracked["id"]), spec)
        # A deauthorization may have untracked the org while the PUT was in flight.
        if await self.store.get_datasource(org, transport) is not None:
            await self.store.put_datasource(org, transport, _tracking(record))
        log.info("renewed %s data source %s of org %s", transport, tracked["id"], org)
        return record

    def due(self, tracked: dict[str, Any], now: float) -> bool:
        """True when the tracked token is unknown, expired or within ``renew_before_s``."""
        expires_at = tracked.get("expires_at")
        return expires_at is None or float(expires_at) - now <= self.renew_before_s

    async def run_once(self) -> list[tuple[str, Transport]]:
        """One pass: if we hold the lease, renew every due data source; return what was
        renewed as ``(org, transport)``."""
        if not await self.store.acquire_lease(self.LEASE, self.owner, self.lease_ttl_s):
            return []
        renewed = []
        for org, transport in await self.store.list_datasources():
            now = self._clock()
            tracked = await self.store.get_datasource(org, transport)
            if tracked is None or not self.due(tracked, now):
                continue
            if self._retry_at.get((org, transport), 0.0) > now:
                continue
            if await self._try_renew(org, transport, now):
                renewed.append((org, transport))
        return renewed

    async def _try_renew(self, org: str, transport: Transport, now: float) -> bool:
        """Renew one data source; on failure, retry it (and only it) after ``retry_s``."""
        try:
            await self.renew(org, transport)
        except Exception as exc:
            self._retry_at[(org, transport)] = now + self.retry_s
            log.warning(
                "renewing the %s data source of org %s failed (%s); retrying in %.0f s",
                transport,
                org,
                exc,
                self.retry_s,
            )
            return False
        self._retry_at.pop((org, transport), None)
        return True

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("data-source renewal pass failed")
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Run passes every ``interval_s`` in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="byova-datasource-renewer")

    async def stop(self) -> None:
        """Stop the loop and hand the lease to another instance."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.store.release_lease(self.LEASE, self.owner)
        except Exception as exc:  # the lease then simply expires after lease_ttl_s
            log.warning("could not release the renewal lease: %s", exc)
