"""What forwarding costs: server CPU per caller frame and END_OF_INPUT → first audio.

Two real instances and a real redis-server; the same echo turns run straight to the
call's owner (the reference, as with Envoy affinity or a single process) and through the
other instance, which forwards them (a round-robin balancer). CPU is both servers'
process time (psutil), so the forwarding instance's work is counted; each server's own
share is recorded too, to show where forwarding costs. Two workloads:

- ``one_call``: one call's turns sent as fast as possible: every frame wakes both
  servers from idle, the worst case per frame;
- ``loaded``: 40 concurrent calls at real time (2,000 frames a second), what a server
  behind a round-robin balancer carries.

The two paths alternate (direct, forwarded, direct, forwarded) and their figures are
summed, so a change of the shared machine's load falls on both.

    pytest benchmarks/test_cluster_forwarding.py --benchmark-enable -s
"""

from __future__ import annotations

import asyncio
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest

from byova_media.loadtest.scenario import speech_pcm
from byova_media.testing.process import ServedProcess
from byova_media.testing.simulator import RpcResult, WebexSimulator
from tests.cluster.cluster_helpers import AlternatingCall, RedisProcess
from tests.cluster.cluster_processes import instance

SPEECH = speech_pcm(400, seed=5)
PATHS = ("direct", "forwarded")


@dataclass(frozen=True)
class Workload:
    """Concurrent calls, turns per call in each measured round, pacing and rounds per path."""

    calls: int
    turns: int
    realtime: bool
    rounds: int = 2

    def untimed(self) -> Workload:
        """The same, small enough for the whole suite's untimed run."""
        return Workload(min(self.calls, 4), 2, self.realtime, rounds=1)


WORKLOADS = {
    "one_call": Workload(calls=1, turns=100, realtime=False),
    "loaded": Workload(calls=40, turns=4, realtime=True),
}


@dataclass
class Tally:
    """What one path measured over its rounds."""

    owner_cpu_s: float = 0.0
    edge_cpu_s: float = 0.0
    frames: int = 0
    latencies_ms: list[float] | None = None

    def add(self, cpu: list[float], frames: int, latencies: list[float]) -> None:
        self.owner_cpu_s += cpu[0]
        self.edge_cpu_s += cpu[1]
        self.frames += frames
        self.latencies_ms = (self.latencies_ms or []) + latencies

    def figures(self) -> dict[str, float]:
        quantiles = statistics.quantiles(self.latencies_ms or [], n=100)
        return {
            "cpu_us_per_frame": (self.owner_cpu_s + self.edge_cpu_s) / self.frames * 1e6,
            "owner_cpu_us_per_frame": self.owner_cpu_s / self.frames * 1e6,
            "edge_cpu_us_per_frame": self.edge_cpu_s / self.frames * 1e6,
            "eoi_to_audio_p50_ms": quantiles[49],
            "eoi_to_audio_p99_ms": quantiles[98],
        }


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


async def _round(
    servers: tuple[ServedProcess, ServedProcess],
    calls: list[AlternatingCall],
    turns: int,
    tally: Tally,
) -> None:
    """Every call runs ``turns`` turns at once; the servers' CPU meanwhile goes to ``tally``."""
    before = _cpu_s(*servers)
    results = await asyncio.gather(*(_turns(call, turns) for call in calls))
    spent = [b - a for a, b in zip(before, _cpu_s(*servers), strict=True)]
    tally.add(spent, sum(r[0] for r in results), [ms for r in results for ms in r[1]])


async def _measure(redis: RedisProcess, work: Workload) -> dict[str, Tally]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    async with (
        instance(redis) as owner,
        instance(redis) as edge,
        WebexSimulator(f"127.0.0.1:{owner.port}", realtime=work.realtime) as to_owner,
        WebexSimulator(f"127.0.0.1:{edge.port}", realtime=work.realtime) as to_edge,
    ):
        calls = [AlternatingCall([to_owner]) for _ in range(work.calls)]
        for call in calls:
            assert (await call.start()).code == grpc.StatusCode.OK  # owned by `owner`
        for _ in range(work.rounds):
            for path in PATHS:
                for call in calls:
                    call.sims = [to_edge if path == "forwarded" else to_owner]
                await asyncio.gather(*(_turns(call, 1) for call in calls))  # warm-up
                await _round((owner, edge), calls, work.turns, tallies[path])
        for call in calls:
            await call.hang_up()
    return tallies


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_forwarding_cost(
    benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path, workload: str
) -> None:
    work = WORKLOADS[workload].untimed() if benchmark.disabled else WORKLOADS[workload]
    redis = RedisProcess(tmp_path)
    redis.start()
    try:
        benchmark.group = "cluster: forwarded vs direct turns"
        tallies = benchmark.pedantic(
            lambda: loop.run_until_complete(_measure(redis, work)), rounds=1, iterations=1
        )
    finally:
        redis.stop()
    direct, forwarded = (tallies[path].figures() for path in PATHS)
    added = {
        "cpu_added_percent": (forwarded["cpu_us_per_frame"] / direct["cpu_us_per_frame"] - 1) * 100,
        "latency_added_p50_ms": forwarded["eoi_to_audio_p50_ms"] - direct["eoi_to_audio_p50_ms"],
        "latency_added_p99_ms": forwarded["eoi_to_audio_p99_ms"] - direct["eoi_to_audio_p99_ms"],
    }
    benchmark.extra_info.update(
        {
            **{f"{path}_frames": tallies[path].frames for path in PATHS},
            **{f"direct_{k}": v for k, v in direct.items()},
            **{f"forwarded_{k}": v for k, v in forwarded.items()},
            **added,
        }
    )
    print(f"\n{workload}:", {k: round(v, 2) for k, v in benchmark.extra_info.items()})
    assert tallies["direct"].frames > 0 and tallies["forwarded"].frames > 0
    assert forwarded["cpu_us_per_frame"] > 0 and direct["cpu_us_per_frame"] > 0
