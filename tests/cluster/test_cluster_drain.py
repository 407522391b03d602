"""Drain in a cluster: claim nothing new, hand calls on with their snapshots, fail nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from byova_media.testing.simulator import RpcResult
from tests.cluster.cluster_helpers import AlternatingCall, RedisProcess, cluster_settings


def ok(result: RpcResult) -> RpcResult:
    assert result.code == grpc.StatusCode.OK, result.details
    assert len(result.finals) == 1
    return result


async def test_a_draining_instance_hands_its_calls_to_a_peer(
    redis: RedisProcess, byova_server: Any, webex: Any
) -> None:
    a = await byova_server(plugins=["echo"], **cluster_settings(redis))
    b = await byova_server(plugins=["echo"], **cluster_settings(redis))
    on_a, on_b = await webex(a), await webex(b)
    calls = [AlternatingCall([on_a]) for _ in range(5)]
    for n, call in enumerate(calls):
        ok(await call.start())
        ok(await call.dtmf(str(n + 1)))
    assert len(a.engine.registry) == 5
    await a.drain(timeout_s=5)
    assert a.app.draining and len(a.engine.registry) == 0  # all handed on, none ended
    # The balancer still sends some RPCs to A: they are forwarded to B, which restores.
    for n, call in enumerate(calls):
        ok(await call.dtmf("8"))
        call.sims = [on_b]
        assert ok(await call.dtmf("#")).prompt_texts == [f"Digits so far: {n + 1} 8"]
    assert len(b.engine.registry) == 5
    new = AlternatingCall([on_a])
    ok(await new.start())  # a new call reaching A is started on B
    assert len(a.engine.registry) == 0 and len(b.engine.registry) == 6


async def test_draining_keeps_a_call_with_an_open_rpc_until_it_completes(
    redis: RedisProcess, byova_server: Any, webex: Any, speech: Any
) -> None:
    a = await byova_server(plugins=["echo"], **cluster_settings(redis))
    b = await byova_server(plugins=["echo"], **cluster_settings(redis))
    call = AlternatingCall([await webex(a, realtime=True)])
    ok(await call.start())
    ok(await call.dtmf("5"))
    turn = asyncio.create_task(call.say(speech(800)))
    await asyncio.sleep(0.3)  # the caller is speaking on A
    await a.drain(timeout_s=10)
    assert turn.done()  # the drain waited for the open RPC
    assert ok(turn.result()).events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    call.sims = [await webex(b)]
    assert ok(await call.dtmf("#")).prompt_texts == ["Digits so far: 5"]


async def test_a_renewal_in_flight_does_not_undo_a_release(
    redis: RedisProcess, byova_server: Any, webex: Any
) -> None:
    a = await byova_server(plugins=["echo"], **cluster_settings(redis))
    assert a.cluster is not None
    directory = a.cluster.directory
    call = AlternatingCall([await webex(a)])
    ok(await call.start())
    heartbeat, resume = directory.heartbeat, asyncio.Event()

    async def slow_heartbeat(*args: Any) -> None:
        await resume.wait()
        await heartbeat(*args)

    directory.heartbeat = slow_heartbeat  # type: ignore[method-assign]
    beat = asyncio.create_task(a.cluster.drain_started())  # a renewal that lists the call
    await asyncio.sleep(0.05)
    hang_up = asyncio.create_task(call.hang_up())  # releases the call's lease meanwhile
    await asyncio.sleep(0.05)
    resume.set()
    await beat
    ok(await hang_up)
    await a.cluster.released()
    assert await directory.redis.get(f"byova:owner:{call.conversation_id}") is None
