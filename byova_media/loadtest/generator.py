"""One load step: callers (in this process or several) plus the server's CPU and memory.

Server figures come from psutil when the server runs on this machine and its pid is
known: CPU seconds (user + system, all threads) over the step, CPU per inbound frame,
and RSS sampled once a second (its slope over a long step is the soak figure).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from byova_media.loadtest.caller import Tally, run_callers
from byova_media.loadtest.connection import Connection
from byova_media.loadtest.report import summarize
from byova_media.loadtest.scenario import Scenario

__all__ = ["ServerProbe", "StepRunner", "rss_slope_mb_per_min", "scrape_counters"]

#: Server counters worth comparing before and after a step (Prometheus sample names).
_COUNTERS = (
    "byova_rpcs_total",
    "byova_frames_in_total",
    "byova_frames_late_total",
    "byova_frames_concealed_total",
    "byova_admission_rejections_total",
    "byova_plugin_errors_total",
)


async def scrape_counters(url: str) -> dict[str, float]:
    """The server's counters from its ``/metrics``, keyed ``name{label=value,...}``."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(url)
    response.raise_for_status()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name in _COUNTERS:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


class ServerProbe:
    """CPU time and memory of a local server process, read with psutil."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.pid = pid
        self._proc = psutil.Process(pid)

    def cpu_s(self) -> float:
        times = self._proc.cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> float:
        return float(self._proc.memory_info().rss) / 2**20


def rss_slope_mb_per_min(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of RSS over time, in MiB per minute (``None`` under 3 samples)."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return cov / var * 60.0


def _worker(
    target: str, scenario: dict[str, Any], callers: int, offset: int, connection: Connection
) -> dict[str, Any]:
    """Entry point of a caller process: run its share of a step and return its tally."""
    calls = run_callers(
        target, Scenario.from_dict(scenario), callers, offset=offset, connection=connection
    )
    return _run_loop(calls).to_dict()


def _run_loop(coro: Any) -> Tally:
    try:
        import uvloop
    except ImportError:  # the default loop works, at a higher cost per frame
        return asyncio.run(coro)  # type: ignore[no-any-return]
    return uvloop.run(coro)  # type: ignore[no-any-return]


@dataclass
class StepRunner:
    """Runs steps against one target with ``processes`` caller processes."""

    target: str
    processes: int = 1
    probe: ServerProbe | None = None
    progress: bool = True
    metrics_url: str | None = None
    connection: Connection = dataclasses.field(default_factory=Connection)

    async def run(self, label: str, scenario: Scenario) -> dict[str, Any]:
        """Run one step and return its summary (see :func:`report.summarize`)."""
        probe = self.probe
        before = await scrape_counters(self.metrics_url) if self.metrics_url else None
        cpu0 = probe.cpu_s() if probe else 0.0
        rss0 = probe.rss_mb() if probe else 0.0
        rss: list[tuple[float, float]] = []
        started = time.monotonic()
        local = Tally()
        stop = asyncio.Event()
        watcher = asyncio.create_task(self._watch(label, scenario, local, started, rss, stop))
        try:
            tallies = await self._callers(scenario, local)
        finally:
            stop.set()
            await watcher
        wall = time.monotonic() - started
        step = summarize(label, scenario.calls, tallies, wall)
        if self.metrics_url and before is not None:
            after = await scrape_counters(self.metrics_url)
            step["server_metrics"] = {
                key: round(value - before.get(key, 0.0), 3)
                for key, value in sorted(after.items())
                if value != before.get(key, 0.0)
            }
        if probe is not None:
            cpu = probe.cpu_s() - cpu0
            frames = step["frames_sent"]
            peak = max((m for _, m in rss), default=probe.rss_mb())
            step["server"] = {
                "pid": probe.pid,
                "cpu_s": round(cpu, 3),
                "cpu_percent": round(100.0 * cpu / wall, 1) if wall else None,
                "cpu_us_per_frame": round(cpu / frames * 1e6, 2) if frames else None,
                "rss_start_mb": round(rss0, 2),
                "rss_peak_mb": round(peak, 2),
                "rss_end_mb": round(probe.rss_mb(), 2),
                "rss_slope_mb_per_min": _round(rss_slope_mb_per_min(rss)),
                # At most 120 points of (seconds into the step, MiB), for soak plots.
                "rss_samples": [
                    [round(t, 1), round(m, 2)] for t, m in rss[:: max(1, len(rss) // 120)]
                ],
            }
        if self.progress:
            print(file=sys.stderr)
        return step

    async def _callers(self, scenario: Scenario, local: Tally) -> list[dict[str, Any]]:
        if self.processes <= 1:
            return [
                (
                    await run_callers(
                        self.target,
                        scenario,
                        scenario.calls,
                        tally=local,
                        connection=self.connection,
                    )
                ).to_dict()
            ]
        # The cap on calls is shared out like the callers.
        scenario = dataclasses.replace(
            scenario, max_calls=max(1, -(-scenario.max_calls // self.processes))
        )
        shares = [scenario.calls // self.processes] * self.processes
        for i in range(scenario.calls % self.processes):
            shares[i] += 1
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")  # no gRPC state crosses a fork
        with ProcessPoolExecutor(self.processes, mp_context=context) as pool:
            futures = []
            offset = 0
            for share in shares:
                if share:
                    futures.append(
                        loop.run_in_executor(
                            pool,
                            _worker,
                            self.target,
                            scenario.to_dict(),
                            share,
                            offset,
                            self.connection,
                        )
                    )
                offset += share
            return list(await asyncio.gather(*futures))

    async def _watch(
        self,
        label: str,
        scenario: Scenario,
        local: Tally,
        started: float,
        rss: list[tuple[float, float]],
        stop: asyncio.Event,
    ) -> None:
        """Sample server memory each second and draw the progress bar on stderr."""
        total = (
            scenario.deadline_s
            if scenario.duration_s is None
            else (scenario.duration_s + scenario.ramp_s)
        )
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if self.probe is not None:
                try:
                    rss.append((elapsed, self.probe.rss_mb()))
                except Exception:  # the server exited; the step will report what it has
                    self.probe = None
            if self.progress:
                filled = min(30, int(30 * elapsed / total)) if total else 30
                detail = (
                    f"active {local.active:4d}  done {local.calls_completed:5d}  "
                    f"failed {local.calls_failed:4d}  late {local.frames_late:5d}"
                    if self.processes <= 1
                    else f"{self.processes} processes"
                )
                print(
                    f"\r{label:>6} x{scenario.calls:<5d} [{'#' * filled:<30}] "
                    f"{elapsed:6.1f}s  {detail}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
