"""Webex-side checks of streamed replies: does the caller hear a gap between CHUNKs?"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from types import TracebackType

from byova_media.testing.simulator import RpcResult

__all__ = ["LoopStalls", "audio_arrivals", "paced_source", "playout_gaps_ms"]

PIECE_MS = 20


def audio_arrivals(result: RpcResult) -> list[tuple[float, int]]:
    """(arrival time in s since the RPC began, μ-law bytes) of each CHUNK carrying audio."""
    times = [t for t, what in result.timeline if what.endswith(" audio")]
    sizes = [
        sum(len(p.audio_content) for p in r.prompts)
        for r in result.responses
        if any(p.audio_content for p in r.prompts)
    ]
    assert len(times) == len(sizes)
    return list(zip(times, sizes, strict=True))


def playout_gaps_ms(arrivals: list[tuple[float, int]]) -> list[float]:
    """For each CHUNK after the first, how long Webex had nothing to play before it came
    (playback starts at the first CHUNK and runs at 8 bytes per ms)."""
    start, first = arrivals[0]
    play_end = start + first / 8000
    gaps = []
    for at, size in arrivals[1:]:
        gaps.append(max(0.0, at - play_end) * 1000)
        play_end = max(play_end, at) + size / 8000
    return gaps


async def paced_source(
    ulaw: bytes,
    speed: float = 1.0,
    jitter_ms: int = 0,
    first_byte_at: list[float] | None = None,
    seed: int = 3,
) -> AsyncIterator[bytes]:
    """``ulaw`` in 20 ms pieces produced at ``speed``× real time, each piece up to
    ``jitter_ms`` late (order kept); the first piece's send time goes to ``first_byte_at``."""
    rng = random.Random(seed)
    began = time.monotonic()
    step = 8 * PIECE_MS
    for n, cut in enumerate(range(0, len(ulaw), step)):
        due = began + ((n + 1) * PIECE_MS / speed + rng.randint(0, jitter_ms)) / 1000
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if first_byte_at is not None and not first_byte_at:
            first_byte_at.append(time.monotonic())
        yield ulaw[cut : cut + step]


class LoopStalls:
    """Measures how much time the event loop lost while the block ran (``async with``).

    The source, the server and the simulator share one loop on a shared machine: when
    the host starves the process, every party is late by the same time and the caller
    hears a gap that no framing can prevent. :attr:`longest_ms` is the most time lost
    in any one-second window (a tick that should take 5 ms and took 105 ms lost 100);
    a gap is the framing's fault only when it is longer than that.
    """

    def __init__(self, tick_s: float = 0.005, window_s: float = 1.0) -> None:
        self.tick_s = tick_s
        self.window_s = window_s
        self._lost: list[tuple[float, float]] = []  # (when, ms lost in that tick)
        self._task: asyncio.Task[None] | None = None

    @property
    def longest_ms(self) -> float:
        longest, start, total = 0.0, 0, 0.0
        for at, lost in self._lost:
            total += lost
            while self._lost[start][0] < at - self.window_s:
                total -= self._lost[start][1]
                start += 1
            longest = max(longest, total)
        return longest

    async def _watch(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            self._lost.append((now, max(0.0, (now - before - self.tick_s) * 1000)))

    async def __aenter__(self) -> LoopStalls:
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
