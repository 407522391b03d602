"""Admission control by load: refuse new calls while the event loop lags or CPU is high.

A sampler task sleeps a fixed interval and records how late it woke up (event-loop
lag) and how much CPU the process used meanwhile. While the worst of the recent
samples is above a threshold, :meth:`AdmissionMonitor.overload` explains why, and the
conversation registry answers new SESSION_STARTs with RESOURCE_EXHAUSTED; RPCs of
calls already admitted are not affected. Measurements can be fed directly with
:meth:`AdmissionMonitor.record` (tests inject lag that way, deterministically).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from byova_media.metrics import Metrics

__all__ = ["AdmissionError", "AdmissionMonitor", "Overload"]

_INTERVAL_S = 0.1
_WINDOW = 10  # samples: about one second of history


class AdmissionError(Exception):
    """A new conversation was refused; ``code`` names the gRPC status to answer with."""

    def __init__(self, code: Literal["RESOURCE_EXHAUSTED", "UNAVAILABLE"], message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Overload:
    """Why new conversations are refused right now."""

    reason: str  # metric label: "loop_lag" or "cpu"
    message: str


class AdmissionMonitor:
    """Tracks loop lag and process CPU; thresholds of ``None`` switch a check off."""

    def __init__(
        self,
        *,
        max_loop_lag_ms: float | None = None,
        max_cpu_percent: float | None = None,
        metrics: Metrics | None = None,
        interval_s: float = _INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.max_loop_lag_ms = max_loop_lag_ms
        self.max_cpu_percent = max_cpu_percent
        self.metrics = metrics
        self.interval_s = interval_s
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._lag_ms: collections.deque[float] = collections.deque(maxlen=_WINDOW)
        self._cpu: collections.deque[float] = collections.deque(maxlen=_WINDOW)
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.max_loop_lag_ms is not None or self.max_cpu_percent is not None

    @property
    def lag_ms(self) -> float:
        """The worst event-loop lag of the recent samples."""
        return max(self._lag_ms, default=0.0)

    @property
    def cpu_percent(self) -> float:
        """The highest process CPU (percent of one core) of the recent samples."""
        return max(self._cpu, default=0.0)

    def record(self, lag_ms: float, cpu_percent: float | None = None) -> None:
        """Add one measurement (the sampler's, or an injected one)."""
        self._lag_ms.append(max(0.0, lag_ms))
        if cpu_percent is not None:
            self._cpu.append(max(0.0, cpu_percent))
        if self.metrics is not None:
            self.metrics.loop_lag.set(self.lag_ms / 1000.0)

    def overload(self) -> Overload | None:
        """Why a new conversation must be refused now, or ``None`` to admit it."""
        if self.max_loop_lag_ms is not None and self.lag_ms > self.max_loop_lag_ms:
            return Overload(
                "loop_lag",
                f"server overloaded: event-loop lag {self.lag_ms:.0f} ms is above "
                f"max_loop_lag_ms={self.max_loop_lag_ms:g}; retry on another instance",
            )
        if self.max_cpu_percent is not None and self.cpu_percent > self.max_cpu_percent:
            return Overload(
                "cpu",
                f"server overloaded: CPU {self.cpu_percent:.0f}% is above "
                f"max_cpu_percent={self.max_cpu_percent:g}; retry on another instance",
            )
        return None

    def start(self) -> None:
        """Start sampling on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        """Stop sampling; injected measurements stay until replaced."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sample(self) -> None:
        while True:
            wall, cpu = self._clock(), self._cpu_clock()
            await asyncio.sleep(self.interval_s)
            elapsed = self._clock() - wall
            used = self._cpu_clock() - cpu
            self.record(
                (elapsed - self.interval_s) * 1000.0,
                100.0 * used / elapsed if elapsed > 0 else None,
            )
