"""Ownership in a real Redis: atomic claims, take-over of a lost owner, renewal, release."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from byova_media.cluster.directory import Directory, InstanceInfo
from tests.cluster.cluster_helpers import RedisProcess

LEASE_MS = 5000


@pytest.fixture
async def client(redis: RedisProcess) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(redis.url)
    yield connection
    await connection.aclose()


async def _joined(client: aioredis.Redis, name: str) -> Directory:
    directory = Directory(client, name)
    await directory.heartbeat(InstanceInfo(name, f"{name}.internal:8086"), LEASE_MS)
    return directory


async def test_the_first_claim_wins_and_others_learn_the_owner(client: aioredis.Redis) -> None:
    a, b = await _joined(client, "a"), await _joined(client, "b")
    assert (await a.claim("c1", LEASE_MS)).status == "claimed"
    assert (await a.claim("c1", LEASE_MS)).status == "mine"
    seen = await b.claim("c1", LEASE_MS)
    assert seen.status == "other" and not seen.ours
    assert seen.owner == InstanceInfo("a", "a.internal:8086")


async def test_concurrent_claims_have_one_winner(client: aioredis.Redis) -> None:
    directories = [await _joined(client, f"i{n}") for n in range(8)]
    claims = await asyncio.gather(*(d.claim("c1", LEASE_MS) for d in directories))
    assert sorted(c.status for c in claims) == ["claimed"] + ["other"] * 7
    winner = next(d for d, c in zip(directories, claims, strict=True) if c.ours)
    assert {c.previous for c in claims if not c.ours} == {winner.instance_id}


async def test_a_conversation_of_a_lost_instance_is_taken_over(client: aioredis.Redis) -> None:
    a, b = await _joined(client, "a"), await _joined(client, "b")
    await a.claim("c1", LEASE_MS)
    await a.leave()  # what an expired heartbeat looks like
    taken = await b.claim("c1", LEASE_MS)
    assert (taken.status, taken.previous) == ("taken", "a")
    assert (await a.claim("c1", LEASE_MS)).status == "other"  # a (if it comes back) forwards


async def test_renewal_keeps_leases_and_reports_the_lost_ones(client: aioredis.Redis) -> None:
    a, b = await _joined(client, "a"), await _joined(client, "b")
    await a.claim("c1", 300)
    await a.claim("c2", 300)
    await b.claim("c3", LEASE_MS)
    assert await a.renew(["c1", "c2"], LEASE_MS) == []
    await asyncio.sleep(0.4)  # longer than the first leases: renewal extended them
    assert (await b.claim("c1", LEASE_MS)).status == "other"
    await client.delete("byova:owner:c2")  # expired while Redis was away
    assert await a.renew(["c1", "c2", "c3"], LEASE_MS) == ["c3"]
    assert (await b.claim("c2", LEASE_MS)).previous == "a"


async def test_release_is_for_the_owner_and_can_keep_the_snapshot(
    client: aioredis.Redis,
) -> None:
    a, b = await _joined(client, "a"), await _joined(client, "b")
    await a.claim("c1", LEASE_MS)
    await a.save_snapshot("c1", b'{"v":1}', 60)
    assert not await b.release("c1", keep_snapshot=False)
    assert await a.release("c1", keep_snapshot=True)
    assert await b.load_snapshot("c1") == {"v": 1}
    assert (await b.claim("c1", LEASE_MS)).status == "claimed"
    assert await b.release("c1", keep_snapshot=False)
    assert await b.load_snapshot("c1") is None


async def test_instances_lists_live_heartbeats(client: aioredis.Redis) -> None:
    a = await _joined(client, "a")
    await a.heartbeat(InstanceInfo("a", "a.internal:8086", draining=True), LEASE_MS)
    await _joined(client, "b")
    found = {i.instance_id: i for i in await a.instances()}
    assert set(found) == {"a", "b"}
    assert found["a"].draining and not found["b"].draining
