"""Data sources per transport: the renewer keeps an org's gRPC and WebSocket data sources fresh.

Each is PUT with its own schema and URL and a fresh nonce, a failing one does not hold the
other back, deauthorization untracks both, and a store written by the version that tracked
only gRPC (one record per org) is read as gRPC, on SQLite and on Redis.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from control_helpers import ORG, plane_for, redis_server, seed_integration
from fake_webex import FakeWebex, Fault

from byova_control.datasources import BYOVA_SCHEMA_ID, DataSourceRenewer
from byova_control.rest import WebexApiError
from byova_control.runtime import ControlPlane
from byova_control.webhooks import ServiceAppEvent
from byova_media.ws.auth import WS_SCHEMA_ID

if TYPE_CHECKING:
    from byova_control.store import Transport

URL = "https://media.example.com"
WS_URL = "wss://media.example.com"
START = 1_000_000.0  # the renewers' clock in these tests; Webex's expiries are far after it


@pytest.fixture
async def fake() -> AsyncIterator[FakeWebex]:
    async with FakeWebex() as server:
        server.authorized_orgs.add(ORG)
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'control.db'}"
        return
    with redis_server(tmp_path) as url:
        yield url


async def open_plane(fake: FakeWebex, tmp_path: Path, store: str, **urls: str) -> ControlPlane:
    """A plane on ``store`` whose org tokens are fetched (``urls``: the data-source URLs)."""
    plane = plane_for(fake, tmp_path, store=store, **urls)
    await seed_integration(fake, plane)
    await plane.need_tokens().fetch(ORG)
    return plane


@pytest.fixture
async def plane(fake: FakeWebex, tmp_path: Path, store_url: str) -> AsyncIterator[ControlPlane]:
    control = await open_plane(
        fake, tmp_path, store_url, datasource_url=URL, ws_datasource_url=WS_URL
    )
    yield control
    await control.close()


def renewer_at(plane: ControlPlane, now: list[float]) -> DataSourceRenewer:
    """A renewer like the plane's, on a clock the test moves."""
    assert plane.renewer is not None
    return DataSourceRenewer(
        plane.need_datasources(),
        plane.store,
        plane.renewer.specs,
        renew_before_s=3600,
        retry_s=60,
        clock=lambda: now[0],
    )


async def expire_at(plane: ControlPlane, transport: Transport, when: float) -> str:
    """Pretend the tracked data source's JWS expires at ``when``; return its id."""
    tracked = await plane.store.get_datasource(ORG, transport)
    assert tracked is not None
    tracked["expires_at"] = when
    await plane.store.put_datasource(ORG, transport, tracked)
    return str(tracked["id"])


async def test_renewer_renews_both_sources_each_with_its_own_spec(
    fake: FakeWebex, plane: ControlPlane
) -> None:
    await plane.ensure_datasource(ORG, "grpc")
    await plane.ensure_datasource(ORG, "ws")
    now = [START]
    grpc_id = await expire_at(plane, "grpc", START + 7200)
    ws_id = await expire_at(plane, "ws", START + 7200)
    nonces = {i: fake.datasources[i]["nonce"] for i in (grpc_id, ws_id)}
    renewer = renewer_at(plane, now)
    assert await renewer.run_once() == []  # two hours left: neither is due
    now[0] += 3700
    assert await renewer.run_once() == [(ORG, "grpc"), (ORG, "ws")]
    grpc_ds, ws_ds = fake.datasources[grpc_id], fake.datasources[ws_id]
    assert (grpc_ds["url"], grpc_ds["schemaId"]) == (URL, BYOVA_SCHEMA_ID)
    assert (ws_ds["url"], ws_ds["schemaId"]) == (WS_URL, WS_SCHEMA_ID)
    assert grpc_ds["nonce"] not in (nonces[grpc_id], ws_ds["nonce"])
    assert ws_ds["nonce"] != nonces[ws_id]
    assert fake.count("PUT", f"/v1/dataSources/{grpc_id}") == 1
    assert fake.count("PUT", f"/v1/dataSources/{ws_id}") == 1
    tracked_ws = await plane.store.get_datasource(ORG, "ws")
    assert tracked_ws is not None and tracked_ws["expires_at"] > now[0] + 3600
    assert await renewer.run_once() == []  # fresh again: nothing is due


async def test_a_failing_source_does_not_hold_back_the_other(
    fake: FakeWebex, plane: ControlPlane
) -> None:
    await plane.ensure_datasource(ORG, "grpc")
    await plane.ensure_datasource(ORG, "ws")
    now = [START]
    grpc_id = await expire_at(plane, "grpc", START)
    ws_id = await expire_at(plane, "ws", START)
    renewer = renewer_at(plane, now)
    # gRPC is renewed first: its failure must neither end the pass nor delay WebSocket.
    fake.faults.append(Fault("PUT", f"/v1/dataSources/{grpc_id}", 503, 100))
    assert await renewer.run_once() == [(ORG, "ws")]
    puts = fake.count("PUT", f"/v1/dataSources/{grpc_id}")
    assert await renewer.run_once() == []  # gRPC waits for retry_s, WebSocket is fresh
    assert fake.count("PUT", f"/v1/dataSources/{grpc_id}") == puts
    fake.faults.clear()
    now[0] += 61
    assert await renewer.run_once() == [(ORG, "grpc")]
    assert fake.count("PUT", f"/v1/dataSources/{ws_id}") == 1


async def test_authorization_tracks_both_and_deauthorization_untracks_both(
    fake: FakeWebex, plane: ControlPlane
) -> None:
    await plane.on_event(ServiceAppEvent("authorized", ORG, {}))
    tracked = {t: await plane.store.get_datasource(ORG, t) for t in ("grpc", "ws")}
    assert tracked["grpc"] is not None and tracked["grpc"]["schemaId"] == BYOVA_SCHEMA_ID
    assert tracked["ws"] is not None and tracked["ws"]["schemaId"] == WS_SCHEMA_ID
    assert fake.datasources[tracked["ws"]["id"]]["url"] == WS_URL
    assert await plane.store.list_datasources() == [(ORG, "grpc"), (ORG, "ws")]
    await plane.on_event(ServiceAppEvent("deauthorized", ORG, {}))
    assert await plane.store.list_datasources() == []
    assert await plane.store.get_datasource(ORG, "ws") is None
    assert plane.renewer is not None
    before = len(fake.requests)
    assert await renewer_at(plane, [START]).run_once() == []
    assert not [r for r in fake.requests[before:] if r[0] == "PUT"]


async def test_authorization_ensures_ws_when_grpc_fails_and_the_retry_completes(
    fake: FakeWebex, plane: ControlPlane
) -> None:
    fake.faults.append(Fault("POST", "/v1/dataSources", 503, 1))  # the gRPC one, first
    with pytest.raises(WebexApiError, match="503"):
        await plane.on_event(ServiceAppEvent("authorized", ORG, {}))
    assert await plane.store.list_datasources() == [(ORG, "ws")]
    # Webex retries the delivery: gRPC is created, WebSocket found again (not duplicated).
    await plane.on_event(ServiceAppEvent("authorized", ORG, {}))
    assert await plane.store.list_datasources() == [(ORG, "grpc"), (ORG, "ws")]
    assert sorted(r["schemaId"] for r in fake.datasources.values()) == sorted(
        [BYOVA_SCHEMA_ID, WS_SCHEMA_ID]
    )


async def test_ensure_ws_tracks_it_and_a_renewer_without_the_ws_url_renews_it(
    fake: FakeWebex, tmp_path: Path, store_url: str
) -> None:
    # One instance serves WebSocket and registers the source; another, configured for
    # gRPC only, holds the lease: it renews the source with the spec it was registered with.
    ws_only = await open_plane(fake, tmp_path, store_url, ws_datasource_url=WS_URL)
    ws_id = str((await ws_only.ensure_datasource(ORG, "ws")).record["id"])
    await ws_only.close()
    grpc_only = await open_plane(fake, tmp_path, store_url, datasource_url=URL)
    try:
        assert grpc_only.renewer is not None and "ws" not in grpc_only.renewer.specs
        await expire_at(grpc_only, "ws", START)
        nonce = fake.datasources[ws_id]["nonce"]
        assert await renewer_at(grpc_only, [START]).run_once() == [(ORG, "ws")]
    finally:
        await grpc_only.close()
    ws_ds = fake.datasources[ws_id]
    assert (ws_ds["url"], ws_ds["schemaId"], ws_ds["audience"]) == (
        WS_URL,
        WS_SCHEMA_ID,
        "BYOVAGateway",
    )
    assert ws_ds["nonce"] != nonce


# --- a store written by the version that tracked one (gRPC) data source per org -----------

_OLD_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at REAL,
    PRIMARY KEY (kind, key)
)
"""


def write_old_layout(store_url: str, org: str, record: dict[str, Any]) -> None:
    """Track ``record`` as the previous version did: kind ``datasource``, key = the org,
    written straight to the SQLite file or the Redis key, not through the store."""
    value = json.dumps(record).encode()
    if store_url.startswith("sqlite:///"):
        path = store_url[len("sqlite:///") :]
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute(_OLD_SQLITE_SCHEMA)
            db.execute(
                "INSERT INTO kv (kind, key, value, expires_at) VALUES ('datasource', ?, ?, NULL)",
                (org, value),
            )
        return
    with redis.Redis.from_url(store_url) as client:
        client.set(f"byova:control:datasource:{org}", value)


def read_old_layout(store_url: str, org: str) -> dict[str, Any]:
    """The record at the previous version's place (where that version still finds it)."""
    if store_url.startswith("sqlite:///"):
        path = store_url[len("sqlite:///") :]
        with contextlib.closing(sqlite3.connect(path)) as db:
            row = db.execute(
                "SELECT value FROM kv WHERE kind = 'datasource' AND key = ?", (org,)
            ).fetchone()
        return dict(json.loads(row[0]))
    with redis.Redis.from_url(store_url) as client:
        raw: Any = client.get(f"byova:control:datasource:{org}")
    return dict(json.loads(raw))


async def test_a_store_of_the_previous_version_is_read_as_grpc(
    fake: FakeWebex, tmp_path: Path, store_url: str
) -> None:
    # The data source exists at Webex (registered through a throw-away store) ...
    setup = await open_plane(fake, tmp_path, f"sqlite:///{tmp_path / 'setup.db'}")
    created = await setup.need_datasources().create(ORG, setup.spec_for("grpc", URL))
    await setup.close()
    # ... and the old version tracked it: one record per org, no transport anywhere.
    old = {k: created.get(k) for k in ("id", "url", "schemaId", "audience", "subject", "status")}
    write_old_layout(store_url, ORG, old | {"expires_at": START})
    plane = await open_plane(
        fake, tmp_path, store_url, datasource_url=URL, ws_datasource_url=WS_URL
    )
    try:
        assert await plane.store.list_datasources() == [(ORG, "grpc")]
        assert await plane.store.get_datasource(ORG, "ws") is None
        nonce = fake.datasources[created["id"]]["nonce"]
        assert await renewer_at(plane, [START]).run_once() == [(ORG, "grpc")]
    finally:
        await plane.close()
    renewed = fake.datasources[created["id"]]
    assert (renewed["url"], renewed["schemaId"]) == (URL, BYOVA_SCHEMA_ID)
    assert renewed["nonce"] != nonce
    assert read_old_layout(store_url, ORG)["expires_at"] > START
