"""What forwarding costs: server CPU per caller frame and END_OF_INPUT → first audio.

Two real instances and a real redis-server; the same echo turns run once straight to the
call's owner (the reference, as with Envoy affinity or a single process) and once through
the other instance, which forwards them (a round-robin balancer). CPU is both servers'
process time (psutil), so the forwarding instance's work is counted; each server's own
share is recorded too, to show where forwarding costs.

    pytest benchmarks/test_cluster_forwarding.py --benchmark-enable -s
"""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path
from typing import Any

import grpc
import psutil

from byova_media.loadtest.scenario import speech_pcm
from byova_media.testing.process import ServedProcess
from byova_media.testing.simulator import RpcResult, WebexSimulator
from tests.cluster.cluster_helpers import AlternatingCall, RedisProcess
from tests.cluster.cluster_processes import instance

TURNS = 60  # per path when timed; a handful in the untimed run of the whole suite
WARM_UP = 5
SPEECH = speech_pcm(400, seed=5)


def _eoi_to_first_audio_ms(result: RpcResult) -> float:
    eoi = result.time_of("END_OF_INPUT")
    audio = next(t for t, what in result.timeline if "audio" in what)
    assert eoi is not None
    return (audio - eoi) * 1000


def _cpu_s(*served: ServedProcess) -> list[float]:
    """Process time (user + system) of each server so far."""
    return [sum(psutil.Process(s.proc.pid).cpu_times()[:2]) for s in served]


async def _turns(call: AlternatingCall, count: int) -> tuple[int, list[float]]:
    frames, latencies = 0, []
    for _ in range(count):
        result = await call.say(SPEECH, trail_silence_ms=800)
        assert result.code == grpc.StatusCode.OK, result.details
        frames += result.frames_sent
        latencies.append(_eoi_to_first_audio_ms(result))
    return frames, latencies


async def _measure(redis: RedisProcess, turns: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    async with (
        instance(redis) as owner,
        instance(redis) as edge,
        WebexSimulator(f"127.0.0.1:{owner.port}", realtime=False) as to_owner,
        WebexSimulator(f"127.0.0.1:{edge.port}", realtime=False) as to_edge,
    ):
        for path, sims in (("direct", [to_owner]), ("forwarded", [to_owner, to_edge])):
            call = AlternatingCall([to_owner])
            assert (await call.start()).code == grpc.StatusCode.OK  # owned by `owner`
            call.sims = sims[-1:]
            await _turns(call, WARM_UP)
            before = _cpu_s(owner, edge)
            frames, latencies = await _turns(call, turns)
            owner_cpu, edge_cpu = (b - a for a, b in zip(before, _cpu_s(owner, edge), strict=True))
            quantiles = statistics.quantiles(latencies, n=100)
            figures[path] = {
                "cpu_us_per_frame": (owner_cpu + edge_cpu) / frames * 1e6,
                "owner_cpu_us_per_frame": owner_cpu / frames * 1e6,
                "edge_cpu_us_per_frame": edge_cpu / frames * 1e6,
                "eoi_to_audio_p50_ms": quantiles[49],
                "eoi_to_audio_p99_ms": quantiles[98],
            }
            await call.hang_up()
    return figures


def test_forwarding_cost(benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    redis = RedisProcess(tmp_path)
    redis.start()
    try:
        benchmark.group = "cluster: forwarded vs direct turns"
        figures = benchmark.pedantic(
            lambda: loop.run_until_complete(_measure(redis, 5 if benchmark.disabled else TURNS)),
            rounds=1,
            iterations=1,
        )
    finally:
        redis.stop()
    direct, forwarded = figures["direct"], figures["forwarded"]
    added = {
        "cpu_added_percent": (forwarded["cpu_us_per_frame"] / direct["cpu_us_per_frame"] - 1) * 100,
        "latency_added_p50_ms": forwarded["eoi_to_audio_p50_ms"] - direct["eoi_to_audio_p50_ms"],
        "latency_added_p99_ms": forwarded["eoi_to_audio_p99_ms"] - direct["eoi_to_audio_p99_ms"],
    }
    benchmark.extra_info.update(
        {
            **{f"direct_{k}": v for k, v in direct.items()},
            **{f"forwarded_{k}": v for k, v in forwarded.items()},
            **added,
        }
    )
    print("\n", {k: round(v, 2) for k, v in benchmark.extra_info.items()})
    assert forwarded["cpu_us_per_frame"] > 0 and direct["cpu_us_per_frame"] > 0
