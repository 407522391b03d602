"""Jitter buffer for inbound caller audio: ordering, de-duplication and loss concealment.

Frames carrying ``audio_timestamp`` are released in timestamp order; a frame that is due
is released at once, so in-order audio is never delayed. When the frame at the playout
point is missing, later frames are held back until more than ``depth_ms`` of audio waits
behind the gap, and then the gap is concealed. The depth adapts: it grows (up to the
ceiling) when frames arrive reordered or too late, and shrinks slowly while all is well.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["JitterBuffer", "JitterStats"]

Frame = npt.NDArray[np.int16]

_HOLES_REMEMBERED = 64
_FADE_IN_MS = 5.0


@dataclass(frozen=True)
class JitterStats:
    """Counters since the buffer was created; ``depth_ms`` is the current target depth."""

    received: int
    duplicate: int
    reordered: int
    late_dropped: int
    concealed: int
    depth_ms: int
    resyncs: int = 0


class JitterBuffer:
    """Reorder, de-duplicate and conceal PCM16 frames by their timestamps (in ms).

    Frames without a timestamp are taken in arrival order with zero delay. Concealment
    frames are the previous frame played backwards (so they start where it ended) faded to
    zero, then silence; the first real frame after a gap fades in over 5 ms. A frame more
    than ``ceiling_ms`` ahead of the playout point forces out everything held (concealing
    its gaps) and, if still too far ahead, restarts the timeline at that frame: memory and
    concealment stay bounded whatever the timestamps say.
    """

    def __init__(
        self,
        frame_ms: int = 20,
        floor_ms: int = 20,
        ceiling_ms: int = 200,
        *,
        sample_rate: int = 8000,
        shrink_after_frames: int = 100,
    ) -> None:
        if frame_ms <= 0 or sample_rate <= 0 or shrink_after_frames <= 0:
            raise ValueError("frame_ms, sample_rate and shrink_after_frames must be positive")
        if not 0 <= floor_ms <= ceiling_ms:
            raise ValueError(f"need 0 <= floor_ms <= ceiling_ms, got {floor_ms}, {ceiling_ms}")
        self._frame_ms = frame_ms
        self._floor_ms = floor_ms
        self._ceiling_ms = ceiling_ms
        self._sample_rate = sample_rate
        self._ms_per_sample = 1000.0 / sample_rate
        self._half_ms_per_sample = 500.0 / sample_rate
        self._shrink_after = shrink_after_frames
        self._depth_ms: float = floor_ms
        self._next_ts: float | None = None  # the playout point: where the next frame is due
        self._pending_ts: list[float] = []
        self._pending: list[Frame] = []
        self._pending_ms = 0.0
        # Timeline ranges that were concealed or skipped: a frame arriving for one is late.
        self._holes: deque[tuple[float, float]] = deque(maxlen=_HOLES_REMEMBERED)
        self._late: deque[float] = deque(maxlen=_HOLES_REMEMBERED)  # timestamps dropped late
        self._last: Frame | None = None
        self._concealing = False
        self._stable = 0
        self._received = 0
        self._duplicate = 0
        self._reordered = 0
        self._late_dropped = 0
        self._concealed = 0
        self._resyncs = 0

    @property
    def stats(self) -> JitterStats:
        """A snapshot of the counters and the current depth."""
        return JitterStats(
            received=self._received,
            duplicate=self._duplicate,
            reordered=self._reordered,
            late_dropped=self._late_dropped,
            concealed=self._concealed,
            depth_ms=round(self._depth_ms),
            resyncs=self._resyncs,
        )

    def push(self, frame: Frame, timestamp_ms: float | None = None) -> list[Frame]:
        """Add a frame; return the frames now ready, in order (concealment included)."""
        self._received += 1
        if self._pending_ts:
            return self._push_slow(frame, timestamp_ms)
        if timestamp_ms is None:
            self._last = frame
            if self._next_ts is not None:
                self._next_ts += frame.size * self._ms_per_sample
            return [frame]
        next_ts = self._next_ts
        if next_ts is not None and not self._concealing:
            half = frame.size * self._half_ms_per_sample
            if next_ts - half <= timestamp_ms <= next_ts + half:  # due now: the common case
                self._next_ts = timestamp_ms + half + half
                self._last = frame
                self._stable += 1
                if self._stable >= self._shrink_after:
                    self._shrink()
                return [frame]
        return self._push_slow(frame, timestamp_ms)

    def flush(self) -> list[Frame]:
        """End of stream: everything held, in order, with the gaps between frames concealed."""
        return self._drain(force=True)

    def _push_slow(self, frame: Frame, ts: float | None) -> list[Frame]:
        duration = frame.size * self._ms_per_sample
        if ts is None:  # untimed frame behind timed ones: it follows the newest one
            ts = self._pending_ts[-1] + self._pending[-1].size * self._ms_per_sample
        if self._next_ts is None:
            self._next_ts = ts
            self._holes.append((-math.inf, ts))
        next_ts = self._next_ts
        half = duration / 2.0
        if ts < next_ts - half:
            in_hole = any(start - half <= ts < end - half for start, end in self._holes)
            if in_hole and all(abs(ts - late) >= half for late in self._late):
                self._late.append(ts)
                self._late_dropped += 1
                self._grow(self._depth_ms + next_ts - ts)
            else:  # a copy of a frame already played, or already dropped as late
                self._duplicate += 1
            return []
        out: list[Frame] = []
        if ts > next_ts + self._ceiling_ms:
            # Too far ahead to wait for: play out what is held (its gaps are bounded by
            # the ceiling), then jump the timeline if the frame is still too far ahead.
            out = self._drain(force=True)
            if ts > self._next_ts + self._ceiling_ms:
                self._holes.append((self._next_ts, ts))
                self._next_ts = ts
                self._resyncs += 1
        index = bisect.bisect_left(self._pending_ts, ts)
        pending_ts = self._pending_ts
        if (index and ts - pending_ts[index - 1] < half) or (
            index < len(pending_ts) and pending_ts[index] - ts < half
        ):
            self._duplicate += 1
            return out
        if index < len(pending_ts):
            self._reordered += 1
            last_end = pending_ts[-1] + self._pending[-1].size * self._ms_per_sample
            self._grow(last_end - ts)
        pending_ts.insert(index, ts)
        self._pending.insert(index, frame)
        self._pending_ms += duration
        out.extend(self._drain(force=False))
        return out

    def _drain(self, *, force: bool) -> list[Frame]:
        """Release due frames; conceal the gap at the playout point once waited long enough."""
        out: list[Frame] = []
        pending_ts, pending = self._pending_ts, self._pending
        while pending_ts:
            assert self._next_ts is not None  # set by the first timed frame
            frame = pending[0]
            duration = frame.size * self._ms_per_sample
            if pending_ts[0] <= self._next_ts + duration / 2.0:
                out.append(self._release(pending_ts.pop(0), pending.pop(0), duration))
            elif force or self._pending_ms > self._depth_ms:
                out.append(self._conceal())
            else:
                break
        return out

    def _release(self, ts: float, frame: Frame, duration: float) -> Frame:
        self._pending_ms -= duration
        if self._concealing:
            frame = self._fade_in(frame)
            self._concealing = False
        self._next_ts = ts + duration
        self._last = frame
        return frame

    def _conceal(self) -> Frame:
        assert self._next_ts is not None
        last = self._last
        size = last.size if last is not None else self._frame_ms * self._sample_rate // 1000
        if last is None or self._concealing:
            frame = np.zeros(size, dtype=np.int16)
        else:  # backwards, so it starts on the sample the caller just heard
            frame = (last[::-1] * np.linspace(1.0, 0.0, size)).astype(np.int16)
        self._concealing = True
        duration = size * self._ms_per_sample
        self._holes.append((self._next_ts, self._next_ts + duration))
        self._next_ts += duration
        self._concealed += 1
        return frame

    def _fade_in(self, frame: Frame) -> Frame:
        ramp = min(frame.size, int(_FADE_IN_MS * self._sample_rate / 1000))
        faded = frame.copy()
        faded[:ramp] = (frame[:ramp] * np.linspace(0.0, 1.0, ramp)).astype(np.int16)
        return faded

    def _grow(self, required_ms: float) -> None:
        self._depth_ms = min(self._ceiling_ms, max(self._depth_ms + self._frame_ms, required_ms))
        self._stable = 0

    def _shrink(self) -> None:
        self._depth_ms = max(self._floor_ms, self._depth_ms - self._frame_ms)
        self._stable = 0
