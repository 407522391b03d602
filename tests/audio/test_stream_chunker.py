"""The streamed-chunk policy on a simulated clock: sources at, above and below real time."""

from __future__ import annotations

import random

import pytest

from byova_media.audio.framing import MIN_CHUNK_BYTES, StreamChunker

PIECE_MS = 20
PIECE_BYTES = 160  # 20 ms of 8 kHz μ-law


class Clock:
    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> float:
        return self.ms / 1000.0


def arrivals(total_ms: int, speed: float, jitter_ms: int = 0, seed: int = 7) -> list[int]:
    """Arrival time (ms) of each 20 ms piece of a source producing at ``speed``× real time,
    each piece late by up to ``jitter_ms`` (a stream keeps its order)."""
    rng = random.Random(seed)
    times, last = [], 0
    for n in range(total_ms // PIECE_MS):
        due = round((n + 1) * PIECE_MS / speed) + rng.randint(0, jitter_ms)
        last = max(last, due)
        times.append(last)
    return times


def run(times: list[int], **kwargs: float) -> list[tuple[int, bytes]]:
    """Drive a chunker millisecond by millisecond as the streaming loop does: feed what
    arrived, then cut what is due. Returns (send time in ms, chunk)."""
    clock = Clock()
    chunker = StreamChunker(8000, 1600, clock=clock, **kwargs)
    sent: list[tuple[int, bytes]] = []
    queue = list(times)
    n = 0
    while queue:
        while queue and queue[0] <= clock.ms:
            queue.pop(0)
            piece = bytes([n % 250]) * PIECE_BYTES
            n += 1
            sent += [(clock.ms, c) for c in chunker.add(piece)]
        sent += [(clock.ms, c) for c in chunker.due()]
        clock.ms += 1
    sent += [(clock.ms, c) for c in chunker.finish()]
    return sent


def underruns_ms(sent: list[tuple[int, bytes]]) -> list[int]:
    """For each chunk after the first, how late it was for a playout that started at the
    first chunk and plays 8 bytes per ms (positive: the caller heard a gap)."""
    start = sent[0][0]
    play_end = start + len(sent[0][1]) / 8
    late = []
    for at, chunk in sent[1:]:
        late.append(max(0, at - int(play_end)))
        play_end = max(play_end, at) + len(chunk) / 8
    return late


@pytest.mark.parametrize(
    ("speed", "jitter_ms"), [(1.0, 0), (2.0, 0), (1.0, 100), (2.0, 100), (1.25, 60)]
)
def test_no_gap_after_the_first_chunk(speed: float, jitter_ms: int) -> None:
    times = arrivals(4000, speed, jitter_ms)
    sent = run(times)
    assert b"".join(c for _, c in sent) == b"".join(
        bytes([n % 250]) * PIECE_BYTES for n in range(len(times))
    )
    assert all(MIN_CHUNK_BYTES <= len(c) <= 8000 + MIN_CHUNK_BYTES for _, c in sent)
    assert not any(underruns_ms(sent))
    # The first chunk never waits more than 200 ms after the first byte.
    assert sent[0][0] - times[0] <= 200


def test_each_chunk_leaves_with_playout_margin_at_real_time() -> None:
    sent = run(arrivals(3000, 1.0))
    start = sent[0][0]
    play_end = start + len(sent[0][1]) / 8
    for at, chunk in sent[1:-1]:
        assert play_end - at >= 100 - PIECE_MS  # cut at the margin, give or take a piece
        play_end += len(chunk) / 8


def test_chunks_grow_only_while_the_source_runs_ahead() -> None:
    at_real_time = [len(c) for _, c in run(arrivals(6000, 1.0))]
    ahead = [len(c) for _, c in run(arrivals(6000, 4.0))]
    assert max(at_real_time[1:]) <= 1600  # never waits for a bigger chunk: it would gap
    assert ahead[:4] == [1600, 3200, 6400, 8000]  # doubling up to chunk_bytes


def test_audio_is_held_only_until_the_playout_needs_it() -> None:
    # 400 ms arrive at once, then the source goes quiet: the first chunk leaves at once,
    # the rest just before the first has played out.
    clock = Clock()
    chunker = StreamChunker(8000, 1600, clock=clock)
    first = chunker.add(b"\x01" * 3200)
    assert [len(c) for c in first] == [1600]
    assert chunker.deadline() == pytest.approx(0.1)  # 200 ms queued, cut at 100 ms margin
    clock.ms = 99
    assert chunker.due() == []
    clock.ms = 100
    assert [len(c) for c in chunker.due()] == [1500]  # 100 B stay behind for a short tail
    # ...until they are due as well: 1500 B more play until 387.5 ms, minus the margin.
    assert chunker.deadline() == pytest.approx(0.2875)
    clock.ms = 288
    assert [len(c) for c in chunker.due()] == [100]
    assert chunker.add(b"\x02" * 40) == []
    assert chunker.deadline() is None  # under 100 B: cannot be a CHUNK yet
    assert chunker.finish() == [b"\x02" * 40 + b"\xff" * 60]  # padded with silence


def test_first_chunk_leaves_after_its_wait_with_what_it_has() -> None:
    clock = Clock()
    chunker = StreamChunker(8000, 1600, first_chunk_wait_ms=200, clock=clock)
    assert chunker.add(b"\x01" * 50) == []
    assert chunker.deadline() is None  # too little to cut with 100 B behind
    clock.ms = 150
    assert chunker.add(b"\x01" * 950) == []
    assert chunker.deadline() == pytest.approx(0.2)
    clock.ms = 200
    assert [len(c) for c in chunker.due()] == [900]


def test_after_an_underrun_the_playout_clock_restarts() -> None:
    clock = Clock()
    chunker = StreamChunker(8000, 800, clock=clock)
    chunker.add(b"\x01" * 900)  # 100 ms sent at t=0
    clock.ms = 500  # the source stalled; Webex ran dry at 100 ms
    chunker.add(b"\x02" * 300)
    assert chunker.deadline() == pytest.approx(0.0)  # overdue: goes out at once
    assert [len(c) for c in chunker.due()] == [300]
    # 300 B (37.5 ms) played from 500 ms on: the next cut is due 100 ms before 537.5 ms.
    assert chunker.deadline() == pytest.approx(0.4375)
