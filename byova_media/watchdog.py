"""A watchdog that names the agent blocking the event loop.

One event loop serves every call, so plugin code that blocks it (``time.sleep``, a
synchronous HTTP call, a long computation) stalls every caller. A loop task stamps a
heartbeat; a daemon thread notices when the stamp goes stale, looks at the loop
thread's stack (``sys._current_frames``, CPython's documented way to read another
thread's frames) and reports the innermost agent and call on it, once per stall. A late
loop with no agent on its stack (CPU starvation, a long step of the core) is only counted.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType

from byova_media.agent import Agent
from byova_media.call import Call
from byova_media.metrics import Metrics

__all__ = ["LoopWatchdog", "Stall", "blocker_of"]

log = logging.getLogger(__name__)

_BEAT_S = 0.05


@dataclass(frozen=True)
class Stall:
    """Who held the loop: the agent and call found on its stack, and where it was."""

    virtual_agent_id: str
    conversation_id: str
    where: str


class LoopWatchdog:
    """Warns (once per stall) when the loop has not run for ``threshold_ms``."""

    def __init__(self, threshold_ms: float, metrics: Metrics) -> None:
        self.threshold_s = threshold_ms / 1000
        self.metrics = metrics
        self._beat = time.monotonic()
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._task = asyncio.create_task(self._heartbeat())
        self._thread = threading.Thread(target=self._watch, name="byova-watchdog", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 1.0)

    async def _heartbeat(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(_BEAT_S)

    def _watch(self) -> None:
        reported_beat = 0.0
        while not self._stop.wait(_BEAT_S):
            beat = self._beat
            stalled_s = time.monotonic() - beat
            if stalled_s < self.threshold_s or beat == reported_beat:
                continue
            reported_beat = beat
            frame = sys._current_frames().get(self._loop_thread)  # noqa: SLF001 - documented API
            self._report(stalled_s, blocker_of(frame) if frame is not None else None)

    def _report(self, stalled_s: float, stall: Stall | None) -> None:
        plugin = stall.virtual_agent_id if stall else "unknown"
        self.metrics.loop_stalls.labels(plugin=plugin).inc()
        if stall is None:
            # No agent on the stack: the loop was idle but starved of CPU, or busy in the
            # core; the metric counts it, the log keeps to what a plugin author can fix.
            log.debug("event loop late by %.0f ms outside any agent", stalled_s * 1e3)
            return
        log.warning(
            "event loop blocked for %.0f ms by agent %r at %s: every call waits; "
            "run blocking work in a thread (asyncio.to_thread)",
            stalled_s * 1e3,
            stall.virtual_agent_id,
            stall.where,
            extra={"conversation_id": stall.conversation_id},
        )


def blocker_of(frame: FrameType | None) -> Stall | None:
    """The innermost agent method on a stack, with its call and the blocking line."""
    where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "?"
    while frame is not None:
        owner = frame.f_locals.get("self")
        call = frame.f_locals.get("call")
        if isinstance(owner, Agent) and isinstance(call, Call):
            return Stall(call.virtual_agent_id, call.conversation_id, where)
        frame = frame.f_back
    return None
