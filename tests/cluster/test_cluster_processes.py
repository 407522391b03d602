"""The cluster as deployed: real instances, a real redis-server and Envoy with the shipped config.

Each call is a whole Webex call: welcome, three spoken turns, a barge-in, a key, ``#``
and the hang-up; every RPC must complete with its one FINAL.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from byova_media.testing.simulator import RpcResult, SimulatedCall, WebexSimulator
from tests.cluster.cluster_helpers import AlternatingCall, RedisProcess, until
from tests.cluster.cluster_processes import envoy_proxy, instance, metric

pytestmark = pytest.mark.e2e

#: Echo prompts go out in 0.2 s chunks, 0.2 s ahead of the caller: a barge-in has a prompt to cut.
ECHO_PACING = {"BYOVA_MEDIA_CHUNK_LEAD_MS": "200", "BYOVA_MEDIA_CHUNK_BYTES": "1600"}


def ok(result: RpcResult) -> RpcResult:
    assert result.code == grpc.StatusCode.OK, f"{result.kind}: {result.code} {result.details}"
    assert len(result.finals) == 1 and result.responses[-1] is result.final, result.kind
    return result


async def whole_call(
    call: SimulatedCall, speech: Callable[..., np.ndarray], key: str, *, barge: bool = True
) -> None:
    """Welcome, three spoken turns, a barge-in, a key, # (checked), hang-up.

    Without ``barge`` the barge-in is replaced by two more plain turns.
    """
    try:
        await _whole_call(call, speech, key, barge)
    except Exception as exc:
        raise AssertionError(f"call {call.conversation_id}:\n{call.timeline()}") from exc


async def _whole_call(
    call: SimulatedCall, speech: Callable[..., np.ndarray], key: str, barge: bool
) -> None:
    ok(await call.start())
    for n in range(3 if barge else 5):
        turn = ok(await call.say(speech(300, seed=n)))
        assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    if barge:
        await _barge_in(call, speech)
    ok(await call.dtmf(key))
    assert ok(await call.dtmf("#")).prompt_texts == [f"Digits so far: {key}"]
    ok(await call.hang_up())
    for result in call.history:  # dtmf() places two RPCs and returns the second
        ok(result)


async def _barge_in(call: SimulatedCall, speech: Callable[..., np.ndarray]) -> None:
    """A long turn whose echo the caller interrupts with another turn."""
    before = len(call.history)
    long_turn = asyncio.create_task(call.say(speech(6000, seed=7)))
    await until(
        lambda: (
            long_turn.done()
            or (
                len(call.history) > before
                and any("audio" in what for _, what in call.history[before].timeline)
            )
        ),
        timeout_s=30.0,  # a loaded box: 50 calls against two real processes
    )  # the echo of the long turn is playing
    interruption = ok(await call.say(speech(400, seed=8)))
    assert interruption.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    cut = ok(await long_turn)
    assert len(cut.audio) < 6000 * 8  # the prompt stopped before its end


async def test_fifty_calls_behind_envoy_stay_on_their_instance(
    redis: RedisProcess, tmp_path: Path, speech: Any
) -> None:
    async with instance(redis, **ECHO_PACING) as a, instance(redis, **ECHO_PACING) as b:
        async with (
            envoy_proxy(tmp_path, [a.port, b.port]) as port,
            WebexSimulator(f"127.0.0.1:{port}", realtime=False) as sim,
        ):
            calls = [sim.call("echo") for _ in range(50)]
            await asyncio.gather(
                *(whole_call(c, speech, str(1 + n % 9)) for n, c in enumerate(calls))
            )
        forwarded = [await metric(p, "byova_cluster_forwarded_rpcs_total") for p in (a, b)]
        owned = [await metric(p, "byova_rpcs_total") for p in (a, b)]
    assert forwarded == [0, 0]
    assert min(owned) > 0  # both instances took calls


async def test_calls_alternating_between_instances_are_forwarded_to_their_owner(
    redis: RedisProcess, speech: Any
) -> None:
    async with instance(redis, **ECHO_PACING) as a, instance(redis, **ECHO_PACING) as b:
        async with (
            WebexSimulator(f"127.0.0.1:{a.port}", realtime=False) as sim_a,
            WebexSimulator(f"127.0.0.1:{b.port}", realtime=False) as sim_b,
        ):
            calls = [
                AlternatingCall([sim_a, sim_b] if n % 2 else [sim_b, sim_a]) for n in range(20)
            ]
            await asyncio.gather(
                *(whole_call(c, speech, str(1 + n % 9)) for n, c in enumerate(calls))
            )
        forwarded = [await metric(p, "byova_cluster_forwarded_rpcs_total") for p in (a, b)]
    assert min(forwarded) > 0


async def test_calls_of_a_killed_owner_go_on_at_the_survivor_with_their_digits(
    redis: RedisProcess, speech: Any, record_property: Any
) -> None:
    lease_s = 2.0
    async with instance(redis, lease_s) as a, instance(redis, lease_s) as b:
        async with (
            WebexSimulator(f"127.0.0.1:{a.port}", realtime=False) as sim_a,
            WebexSimulator(f"127.0.0.1:{b.port}", realtime=False) as sim_b,
        ):
            calls = [AlternatingCall([sim_a]) for _ in range(5)]
            for n, call in enumerate(calls):
                ok(await call.start())
                ok(await call.dtmf(str(n + 1)))
                ok(await call.say(speech(400)))
            await a.stop(signal.SIGKILL)
            killed_at = time.monotonic()
            for call in calls:
                call.sims = [sim_b]

            async def next_turn(call: AlternatingCall, n: int) -> float:
                answer = ok(await call.dtmf("#"))
                assert answer.prompt_texts == [f"Digits so far: {n + 1}"]
                return time.monotonic() - killed_at

            waits = await asyncio.gather(*(next_turn(c, n) for n, c in enumerate(calls)))
            for call in calls:
                ok(await call.say(speech(400)))
                ok(await call.hang_up())
        takeovers = await metric(b, "byova_cluster_takeovers_total")
    assert takeovers == 5
    record_property("failover_next_turn_s", round(max(waits), 2))


async def test_sigterm_during_twenty_active_calls_fails_no_rpc(
    redis: RedisProcess, tmp_path: Path, speech: Any
) -> None:
    async with (
        instance(redis, **ECHO_PACING) as a,
        instance(redis, **ECHO_PACING) as b,
        envoy_proxy(tmp_path, [a.port, b.port]) as port,
        WebexSimulator(f"127.0.0.1:{port}", realtime=False) as sim,
    ):
        calls = [sim.call("echo") for _ in range(20)]
        running = [
            asyncio.create_task(whole_call(c, speech, str(1 + n % 9), barge=False))
            for n, c in enumerate(calls)
        ]
        await asyncio.sleep(1.0)  # every call is under way
        assert not any(t.done() for t in running)
        assert await a.stop(signal.SIGTERM) == 0
        await asyncio.gather(*running)
    assert "draining" in a.output
