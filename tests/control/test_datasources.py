"""DataSources: ensure (exact match, never guess), renew with a fresh nonce, the renewer lease."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from control_helpers import ORG, make_settings, plane_for, redis_server, seed_integration
from fake_webex import FakeWebex, Fault

from byova_control.datasources import (
    BYOVA_SCHEMA_ID,
    AmbiguousDataSourceError,
    DataSourceRenewer,
    DataSourceSpec,
)
from byova_control.runtime import ControlPlane

URL = "https://media.example.com"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWebex]:
    async with FakeWebex() as server:
        server.authorized_orgs.add(ORG)
        yield server


@pytest.fixture
async def plane(fake: FakeWebex, tmp_path: Path) -> AsyncIterator[ControlPlane]:
    control = plane_for(fake, tmp_path, datasource_url=URL)
    await seed_integration(fake, control)
    await control.need_tokens().fetch(ORG)
    yield control
    await control.close()


async def test_schemas_list_across_pages(plane: ControlPlane) -> None:
    schemas = await plane.need_datasources().schemas(ORG)
    assert BYOVA_SCHEMA_ID in [s["id"] for s in schemas]
    assert len(schemas) == 3


async def test_ensure_creates_once_then_finds(fake: FakeWebex, plane: ControlPlane) -> None:
    ds = plane.need_datasources()
    spec = DataSourceSpec(url=URL)
    first = await ds.ensure(ORG, spec)
    assert first.created
    assert first.record["schemaId"] == BYOVA_SCHEMA_ID
    assert first.record["tokenLifetimeMinutes"] == 1440
    second = await ds.ensure(ORG, spec)
    assert not second.created
    assert second.record["id"] == first.record["id"]
    assert fake.count("POST", "/v1/dataSources") == 1
    # The URL comparison is exact: an explicit :443 is another data source.
    third = await ds.ensure(ORG, DataSourceSpec(url=URL + ":443"))
    assert third.created


async def test_ensure_refuses_to_guess_between_several(plane: ControlPlane) -> None:
    ds = plane.need_datasources()
    spec = DataSourceSpec(url=URL)
    await ds.create(ORG, spec)
    await ds.create(ORG, spec)
    with pytest.raises(AmbiguousDataSourceError, match="2 data sources"):
        await ds.ensure(ORG, spec)


async def test_crud_and_renew_with_fresh_nonce(fake: FakeWebex, plane: ControlPlane) -> None:
    record = (await plane.ensure_datasource(ORG)).record
    nonce = fake.datasources[str(record["id"])]["nonce"]
    assert plane.renewer is not None
    renewed = await plane.renewer.renew(ORG)
    assert fake.datasources[str(record["id"])]["nonce"] != nonce
    assert renewed["status"] == "active"
    got = await plane.need_datasources().get(ORG, str(record["id"]))
    assert got["nonce"] == fake.datasources[str(record["id"])]["nonce"]
    tracked = await plane.store.get_datasource(ORG, "grpc")
    assert tracked is not None
    assert "jwsToken" not in tracked
    assert tracked["expires_at"] > 0
    await plane.need_datasources().delete(ORG, str(record["id"]))
    assert await plane.need_datasources().list_all(ORG) == []


async def test_renewer_renews_only_when_due_and_retries_failures(
    fake: FakeWebex, plane: ControlPlane
) -> None:
    now = [1_000_000.0]
    await plane.ensure_datasource(ORG)
    tracked = await plane.store.get_datasource(ORG, "grpc")
    assert tracked is not None
    tracked["expires_at"] = now[0] + 7200
    await plane.store.put_datasource(ORG, "grpc", tracked)
    renewer = DataSourceRenewer(
        plane.need_datasources(),
        plane.store,
        {"grpc": DataSourceSpec(url=URL)},
        renew_before_s=3600,
        retry_s=60,
        clock=lambda: now[0],
    )
    assert await renewer.run_once() == []  # two hours left: not due
    now[0] += 3700
    fake.faults.append(Fault("PUT", "/v1/dataSources/", 503, 100))
    assert await renewer.run_once() == []  # failed (after the client's own retries)
    puts = fake.count("PUT", f"/v1/dataSources/{tracked['id']}")
    assert await renewer.run_once() == []  # waiting for retry_s: no new attempt
    assert fake.count("PUT", f"/v1/dataSources/{tracked['id']}") == puts
    fake.faults.clear()
    now[0] += 61
    assert await renewer.run_once() == [(ORG, "grpc")]
    await renewer.untrack(ORG)
    assert await renewer.run_once() == []


async def test_only_the_lease_holder_renews(plane: ControlPlane) -> None:
    await plane.ensure_datasource(ORG)
    specs = {"grpc": DataSourceSpec(url=URL)}
    first, second = (
        DataSourceRenewer(plane.need_datasources(), plane.store, specs, renew_before_s=1e9)
        for _ in range(2)
    )
    assert await first.run_once() == [(ORG, "grpc")]
    assert await second.run_once() == []
    await first.stop()  # releases the lease
    assert await second.run_once() == [(ORG, "grpc")]


_RENEWER_PROCESS = textwrap.dedent(
    """
    import asyncio, json, sys
    from byova_control.runtime import ControlPlane
    from byova_control.settings import ControlSettings

    async def main():
        settings = ControlSettings.model_validate_json(sys.argv[1])
        plane = ControlPlane(settings)
        renewed = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + 2.0
        while loop.time() < end:
            renewed += len(await plane.renewer.run_once())
            await asyncio.sleep(0.1)
        print(json.dumps({"renewed": renewed}), flush=True)
        sys.stdin.readline()  # hold the lease until both processes reported
        await plane.close()

    asyncio.run(main())
    """
)


async def test_redis_two_processes_one_renewer(fake: FakeWebex, tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis_url:
        settings = make_settings(
            fake,
            redis_url,
            datasource_url=URL,
            datasource_renew_before_s=1e9,  # always due: the holder renews on every pass
            renew_interval_s=1.0,
        )
        plane = ControlPlane(settings)
        await seed_integration(fake, plane)
        await plane.need_tokens().fetch(ORG)
        await plane.ensure_datasource(ORG)
        await plane.close()
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _RENEWER_PROCESS,
                settings.model_dump_json(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(2)
        ]
        lines = [await asyncio.wait_for(p.stdout.readline(), 60) for p in procs]  # type: ignore[union-attr]
        puts = fake.count("PUT", f"/v1/dataSources/{next(iter(fake.datasources))}")
        outputs = [await asyncio.wait_for(p.communicate(b"\n"), 60) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    counts = sorted(json.loads(line)["renewed"] for line in lines)
    assert counts[0] == 0
    assert counts[1] >= 5
    assert puts == counts[1]
