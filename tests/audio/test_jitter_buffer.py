"""Jitter buffer: ordering, duplicates, late frames, concealment, depth and bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from byova_media.audio.jitter import JitterBuffer
from byova_media.audio.tones import tone

FRAME = 160  # 20 ms at 8 kHz


def frame(index: int) -> np.ndarray:
    """A frame whose last sample identifies it (index + 1; concealment ends at 0)."""
    return np.full(FRAME, index + 1, dtype=np.int16)


def ident(out: np.ndarray) -> int:
    return int(out[-1]) - 1  # -1 for a concealment frame


def run(buffer: JitterBuffer, arrivals: list[int]) -> list[int]:
    out = []
    for index in arrivals:
        out += buffer.push(frame(index), 1000.0 + 20.0 * index)
    out += buffer.flush()
    return [ident(f) for f in out]


def test_no_timestamps_means_zero_delay_and_the_same_objects() -> None:
    buffer = JitterBuffer()
    frames = [frame(i) for i in range(50)]
    for f in frames:
        out = buffer.push(f)
        assert len(out) == 1
        assert out[0] is f
    assert buffer.flush() == []
    stats = buffer.stats
    assert stats.received == 50
    assert stats.concealed == stats.duplicate == stats.reordered == stats.late_dropped == 0


def test_in_order_timestamps_are_released_at_once() -> None:
    buffer = JitterBuffer()
    for i in range(20):
        f = frame(i)
        assert buffer.push(f, 20.0 * i + 0.3) == [f]


def test_swapped_pair_is_reordered() -> None:
    buffer = JitterBuffer()
    assert run(buffer, [0, 2, 1, 3]) == [0, 1, 2, 3]
    assert buffer.stats.reordered == 1
    assert buffer.stats.depth_ms > 20  # reordering grows the depth


def test_lost_frame_is_concealed_once_depth_is_exceeded() -> None:
    buffer = JitterBuffer(floor_ms=20)
    out = []
    for index in [0, 1, 3]:
        out += buffer.push(frame(index), 20.0 * index)
    assert [ident(f) for f in out] == [0, 1]  # frame 3 waits: maybe frame 2 is late
    out = buffer.push(frame(4), 80.0)
    assert [ident(f) for f in out] == [-1, 3, 4]
    assert buffer.stats.concealed == 1


def test_late_frame_is_dropped_and_duplicates_counted() -> None:
    buffer = JitterBuffer()
    assert run(buffer, [0, 1, 3, 4, 2, 4, 1, 2]) == [0, 1, -1, 3, 4]
    stats = buffer.stats
    assert stats.late_dropped == 1
    assert stats.duplicate == 3  # the second copy of the late frame 2 included
    assert stats.depth_ms >= 40


def test_depth_shrinks_slowly_when_stable() -> None:
    buffer = JitterBuffer(shrink_after_frames=10, ceiling_ms=200)
    run(buffer, [0, 3, 2, 1])
    grown = buffer.stats.depth_ms
    for i in range(4, 14):
        buffer.push(frame(i), 1000.0 + 20.0 * i)
    assert buffer.stats.depth_ms == grown - 20
    for i in range(14, 400):
        buffer.push(frame(i), 1000.0 + 20.0 * i)
    assert buffer.stats.depth_ms == 20


def test_far_future_frame_resyncs_instead_of_growing() -> None:
    buffer = JitterBuffer(ceiling_ms=200)
    buffer.push(frame(0), 0.0)
    buffer.push(frame(2), 40.0)  # held: frame 1 missing
    out = buffer.push(frame(9), 3_600_000.0)  # an hour ahead
    # The held frame is forced out (its gap concealed); no hour of audio is invented.
    assert [ident(f) for f in out] == [-1, 2, 9]
    assert buffer.stats.resyncs == 1
    assert ident(buffer.push(frame(10), 3_600_020.0)[0]) == 10


def test_concealment_never_clicks() -> None:
    signal = tone(300, 400)  # a loud sine: abrupt cuts would jump by thousands
    frames = [signal[i : i + FRAME] for i in range(0, signal.size, FRAME)]
    buffer = JitterBuffer()
    out = []
    for i, f in enumerate(frames):
        if i in (5, 6, 7, 12):
            continue  # lost
        out += buffer.push(f, 20.0 * i)
    out += buffer.flush()
    played = np.concatenate(out).astype(np.int32)
    assert played.size == signal.size
    assert buffer.stats.concealed == 4
    natural_step = np.abs(np.diff(signal.astype(np.int32))).max()
    assert np.abs(np.diff(played)).max() <= natural_step * 1.5


def test_untimed_frame_behind_held_frames_goes_after_them() -> None:
    buffer = JitterBuffer()
    buffer.push(frame(0), 0.0)
    buffer.push(frame(2), 40.0)
    out = buffer.push(frame(3))  # no timestamp: arrival order
    out += buffer.flush()
    assert [ident(f) for f in out] == [-1, 2, 3]


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="floor_ms"):
        JitterBuffer(floor_ms=300, ceiling_ms=200)
    with pytest.raises(ValueError, match="positive"):
        JitterBuffer(frame_ms=0)


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[int], int]:
    """Frames 0..n-1 (within the 200 ms ceiling), shuffled, some lost, some duplicated."""
    n = draw(st.integers(1, 10))
    order = draw(st.permutations(range(n)))
    kept = [i for i in order if draw(st.booleans()) or i == order[0]]
    dups = draw(st.lists(st.sampled_from(kept), max_size=4))
    sequence = list(kept)
    for dup in dups:
        sequence.insert(draw(st.integers(sequence.index(dup) + 1, len(sequence))), dup)
    return sequence, n


@given(arrivals())
def test_any_arrival_order_gives_ordered_output_and_consistent_counters(
    case: tuple[list[int], int],
) -> None:
    sequence, _ = case
    buffer = JitterBuffer(ceiling_ms=200)
    out = run(buffer, sequence)
    stats = buffer.stats
    real = [i for i in out if i >= 0]
    assert real == sorted(set(real))  # in order, each frame once
    assert stats.received == len(sequence)
    assert len(real) + stats.duplicate + stats.late_dropped == stats.received
    assert stats.concealed == out.count(-1)
    # The output is a gapless timeline from the first frame played to the last.
    assert len(out) == real[-1] - real[0] + 1
    for position, index in enumerate(out):
        assert index in (-1, real[0] + position)
    # Each distinct frame is played once or dropped as late; every copy is a duplicate.
    unique = set(sequence)
    assert len(unique) - len(real) == stats.late_dropped
    assert stats.duplicate == len(sequence) - len(unique)
    assert stats.depth_ms <= 200


@given(st.lists(st.integers(0, 8), min_size=1, max_size=40))
def test_in_order_stream_with_losses_conceals_exactly_the_losses(gaps: list[int]) -> None:
    """Runs of up to 8 lost frames (160 ms, inside the ceiling) are all concealed."""
    indices = list(np.cumsum(np.array(gaps) + 1) - gaps[0] - 1)
    buffer = JitterBuffer()
    out = run(buffer, indices)
    assert [i for i in out if i >= 0] == indices
    assert buffer.stats.concealed == (indices[-1] + 1) - len(indices)
    assert buffer.stats.late_dropped == 0
    assert buffer.stats.resyncs == 0


def test_gap_beyond_the_ceiling_resyncs_rather_than_concealing() -> None:
    buffer = JitterBuffer(ceiling_ms=200)
    assert run(buffer, [0, 12]) == [0, 12]
    assert buffer.stats.resyncs == 1
    assert buffer.stats.concealed == 0
