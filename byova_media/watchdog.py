"""A watchdog that names the agent blocking the event loop.

One event loop serves every call, so plugin code that blocks it (``time.sleep``, a
synchronous HTTP call, a long computation) stalls every caller. A loop task stamps a
heartbeat; a daemon thread notices when the stamp goes stale, looks at the loop
thread's stack (``sys._current_frames``, CPython's documented way to read another
thread's frames) and reports the innermost agent and call on it, once per stall.

A stall with no agent on the stack is the core's when one and the same callback, with
our code on its stack, is seen at two looks (a request that costs too much: reported
with the line, counted as plugin ``core``). Otherwise the loop was starved of CPU or
had more short callbacks than CPU (capacity, not one request): counted as ``unknown``
and logged at debug when the loop runs again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from byova_media.agent import Agent
from byova_media.call import Call
from byova_media.metrics import Metrics

__all__ = ["LoopWatchdog", "Stall", "blocker_of", "conversation_on", "ours_on", "step_of"]

log = logging.getLogger(__name__)

_BEAT_S = 0.05
#: Our code (the engine and the bundled ``byova_*`` plugins), by module name: a busy loop
#: whose innermost frame of ours is in one of these is the core's doing.
_OUR_MODULES = ("byova_media.", "byova_")
#: The frames that run the event loop itself (asyncio's; uvloop calls back from C under
#: ``asyncio.runners``), where a walk up from the running callback ends.
_ASYNCIO = Path(asyncio.__file__).parent
_RUNNERS = str(_ASYNCIO / "runners.py")
_LOOP_FRAMES = {
    (str(_ASYNCIO / "events.py"), "_run"),
    *((str(_ASYNCIO / "base_events.py"), name) for name in ("_run_once", "run_forever")),
}


@dataclass(frozen=True)
class Stall:
    """Who held the loop: the agent and call found on its stack, and where it was."""

    virtual_agent_id: str
    conversation_id: str
    where: str


@dataclass
class _Lateness:
    """What the watchdog saw of the loop since its heartbeat last ran."""

    beat: float
    reported: bool = False
    late_s: float = 0.0
    #: The callback the loop was running at the last look, and since when it was seen.
    step: FrameType | None = None
    step_seen_at: float = 0.0


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
        late = _Lateness(self._beat)
        while not self._stop.wait(_BEAT_S):
            beat, now = self._beat, time.monotonic()
            if beat != late.beat:  # the loop ran again
                self._count_unexplained(late)
                late = _Lateness(beat)
            if now - beat < 1.5 * _BEAT_S or late.reported:
                continue  # on time (the heartbeat sleeps _BEAT_S between beats)
            frame = sys._current_frames().get(self._loop_thread)  # noqa: SLF001 - documented API
            step = step_of(frame)
            if step is not late.step:
                late.step, late.step_seen_at = step, now
            late.late_s = now - beat
            if late.late_s >= self.threshold_s:
                late.reported = self._report(late, frame, now)

    def _report(self, late: _Lateness, frame: FrameType | None, now: float) -> bool:
        """Warn about an agent, or a step of ours, holding the loop; True when done so."""
        stall = blocker_of(frame)
        if stall is not None:
            self.metrics.loop_stalls.labels(plugin=stall.virtual_agent_id).inc()
            log.warning(
                "event loop blocked for %.0f ms by agent %r at %s: every call waits; "
                "run blocking work in a thread (asyncio.to_thread)",
                late.late_s * 1e3,
                stall.virtual_agent_id,
                stall.where,
                extra={"conversation_id": stall.conversation_id},
            )
            return True
        # One and the same callback seen at two looks: one step held the loop, not a
        # crowd of short ones (an overloaded loop) or none (a loop starved of CPU).
        where = ours_on(frame)
        if late.step is None or where is None or now - late.step_seen_at < _BEAT_S:
            return False
        self.metrics.loop_stalls.labels(plugin="core").inc()
        log.warning(
            "event loop held for %.0f ms by one step at %s: every call waits",
            late.late_s * 1e3,
            where,
            extra={"conversation_id": conversation_on(frame)},
        )
        return True

    def _count_unexplained(self, late: _Lateness) -> None:
        """A stall no single step of ours or an agent explains: counted, logged at debug.

        The loop was starved of CPU by other processes, or had more short callbacks to
        run than CPU to run them: capacity, not a request's fault.
        """
        if late.reported or late.late_s < self.threshold_s:
            return
        self.metrics.loop_stalls.labels(plugin="unknown").inc()
        log.debug("event loop late by %.0f ms, no single step held it", late.late_s * 1e3)


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


def ours_on(frame: FrameType | None) -> str | None:
    """``file:line`` of the innermost frame of our code in the loop's current callback.

    The walk stops at the event loop's own frames: what called the loop (the CLI) is
    not what the loop is running.
    """
    while frame is not None and not _runs_the_loop(frame):
        if str(frame.f_globals.get("__name__", "")).startswith(_OUR_MODULES):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def conversation_on(frame: FrameType | None) -> str:
    """The conversation the engine was serving on a stack (a ``Call`` in its frames, such
    as a conversation's ``call``)."""
    while frame is not None and not _runs_the_loop(frame):
        for value in frame.f_locals.values():
            call = getattr(value, "call", value)
            if isinstance(call, Call):
                return call.conversation_id
        frame = frame.f_back
    return "-"


def step_of(frame: FrameType | None) -> FrameType | None:
    """The outermost frame of the callback the loop is running (None when it is idle)."""
    step = None
    while frame is not None and not _runs_the_loop(frame):
        step, frame = frame, frame.f_back
    return step


def _runs_the_loop(frame: FrameType) -> bool:
    code = frame.f_code
    return (code.co_filename, code.co_name) in _LOOP_FRAMES or code.co_filename == _RUNNERS
