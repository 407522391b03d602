"""Drain in a cluster: claim nothing new, hand calls on with their snapshots, fail nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.codecs import Encoding
from byova_media.cluster import node
from byova_media.server import Server
from byova_media.testing.simulator import RpcResult, SimulatedCall, caller_frames
from tests.cluster.cluster_helpers import (
    AlternatingCall,
    RedisProcess,
    cluster_settings,
    until,
)


def ok(result: RpcResult) -> RpcResult:
    assert result.code == grpc.StatusCode.OK, result.details
    assert len(result.finals) == 1
    return result


def retried(server: Server) -> float:
    """How many RPCs ``server`` forwarded to an owner that did not take them."""
    value = server.app.metrics.registry.get_sample_value
    return value("byova_cluster_forwarded_rpcs_total", {"status": "retried"}) or 0.0


def every_rpc_ok(call: SimulatedCall) -> None:
    """Every RPC of ``call`` so far (``dtmf()`` places two) completed OK with one FINAL."""
    for result in call.history:
        assert result.code == grpc.StatusCode.OK, f"{result.kind}: {result.details}"
        assert len(result.finals) == 1, result.kind


@pytest.fixture
async def held_drain(
    byova_server: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[[Server], Awaitable[None]]]:
    """``await held_drain(server)``: start its drain and keep it in its first phase.

    The drain waits for quiet much longer than the test, so the server holds the calls
    that have no RPC open (as in the first moments of every drain) until the test ends.
    """
    monkeypatch.setattr(node, "DRAIN_QUIET_S", 3600.0)
    drains: list[asyncio.Task[None]] = []

    async def start(server: Server) -> None:
        cluster = server.cluster
        assert cluster is not None
        told, tell_peers = asyncio.Event(), cluster.drain_started

        async def drain_started() -> None:
            await tell_peers()
            told.set()

        monkeypatch.setattr(cluster, "drain_started", drain_started)
        drains.append(asyncio.create_task(server.drain(timeout_s=3600)))
        await told.wait()  # its heartbeat says "draining": its peers see it so

    yield start
    for drain in drains:
        drain.cancel()
    await asyncio.gather(*drains, return_exceptions=True)


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


async def test_a_turn_its_draining_owner_refuses_goes_on_with_all_its_audio(
    redis: RedisProcess, byova_server: Any, webex: Any, speech: Any, held_drain: Any
) -> None:
    """B forwards a turn to the owner A; A, draining, hands the call on and refuses it.

    B then serves the turn itself, with the requests A saw and every one still to come.
    """
    a = await byova_server(plugins=["echo"], **cluster_settings(redis))
    b = await byova_server(plugins=["echo"], **cluster_settings(redis))
    call = AlternatingCall([await webex(a)])
    ok(await call.start())
    ok(await call.dtmf("5"))
    await held_drain(a)
    call.sims = [await webex(b)]
    frames = caller_frames(speech(800), 8000, Encoding.MULAW, 200, 2000)
    eoi = asyncio.Event()

    async def requests() -> AsyncIterator[pb.VoiceVARequest]:
        yield call.request(audio_input=pb.VoiceInput(sample_rate_hertz=8000))
        for frame in frames[:5]:
            yield call.request(audio_input=pb.VoiceInput(caller_audio=frame))
        # The caller's next frame is late: B is waiting for it when A refuses the turn.
        await until(lambda: retried(b) > 0)
        for frame in frames[5:]:
            if eoi.is_set():
                return
            yield call.request(audio_input=pb.VoiceInput(caller_audio=frame))

    turn = ok(await call.stream("audio", requests(), eoi))
    assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert len(turn.audio) >= 700 * 8  # the echo of the whole utterance
    assert ok(await call.dtmf("#")).prompt_texts == ["Digits so far: 5"]
    every_rpc_ok(call)
    assert a.engine.registry.get(call.conversation_id) is None
    assert b.engine.registry.get(call.conversation_id) is not None


async def test_a_draining_edge_that_wins_a_call_back_passes_it_to_a_live_peer(
    redis: RedisProcess, byova_server: Any, webex: Any, held_drain: Any
) -> None:
    """A forwards to the owner B; B, draining too, hands the call on; A claims it, gives it to C."""
    a, b, c = [await byova_server(plugins=["echo"], **cluster_settings(redis)) for _ in range(3)]
    call = AlternatingCall([await webex(b)])
    ok(await call.start())
    ok(await call.dtmf("4"))
    await held_drain(a)
    await held_drain(b)
    call.sims = [await webex(a)]
    assert ok(await call.dtmf("#")).prompt_texts == ["Digits so far: 4"]
    every_rpc_ok(call)
    assert a.engine.registry.get(call.conversation_id) is None
    assert c.engine.registry.get(call.conversation_id) is not None


async def test_the_last_instance_left_draining_carries_a_handed_on_call(
    redis: RedisProcess, byova_server: Any, webex: Any, held_drain: Any
) -> None:
    """Every instance is draining: a call its owner handed on is carried on, not refused.

    A new call still is refused: a draining instance takes nothing new.
    """
    a = await byova_server(plugins=["echo"], **cluster_settings(redis))
    b = await byova_server(plugins=["echo"], **cluster_settings(redis))
    on_a, on_b = await webex(a), await webex(b)
    call = AlternatingCall([on_b])
    ok(await call.start())
    ok(await call.dtmf("4"))
    await held_drain(a)  # A drains, and holds on
    await b.drain(timeout_s=1)  # B drains and stops taking calls: it hands this one on
    assert len(b.engine.registry) == 0
    call.sims = [on_a]
    assert ok(await call.dtmf("#")).prompt_texts == ["Digits so far: 4"]
    every_rpc_ok(call)
    assert len(a.engine.registry) == 1
    new = AlternatingCall([on_a])
    assert (await new.start()).code == grpc.StatusCode.UNAVAILABLE
