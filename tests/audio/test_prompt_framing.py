"""CHUNK framing of whole and streamed prompts, and playout tracking for barge-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from byova_media.audio.codecs import Encoding, alaw_to_pcm, pcm_to_alaw, pcm_to_ulaw
from byova_media.audio.formats import ALAW_8K, L16_16K, ULAW_8K, AudioFormat
from byova_media.audio.framing import (
    MAX_CHUNK_BYTES,
    MIN_CHUNK_BYTES,
    PlayoutTracker,
    chunk_ulaw,
    prompt_chunks,
    prompt_wav,
    stream_ulaw_chunks,
)
from byova_media.audio.resample import resample
from byova_media.audio.tones import tone
from byova_media.audio.wav import pcm_wav, ulaw_wav, wav_to_ulaw


def check_chunks(chunks: list[bytes], original: bytes) -> None:
    assert all(MIN_CHUNK_BYTES <= len(c) <= MAX_CHUNK_BYTES for c in chunks)
    joined = b"".join(chunks)
    if len(original) >= MIN_CHUNK_BYTES:
        assert joined == original
    else:
        assert joined == original.ljust(MIN_CHUNK_BYTES, b"\xff") if original else joined == b""


# No per-example deadline: on the shared 2-core host it measures the neighbours' load.
@settings(deadline=None)
@given(st.integers(0, 200_000), st.integers(MIN_CHUNK_BYTES, MAX_CHUNK_BYTES))
def test_chunks_are_within_limits_and_lossless(length: int, chunk_bytes: int) -> None:
    ulaw = bytes(i % 251 for i in range(length))
    chunks = chunk_ulaw(ulaw, chunk_bytes)
    check_chunks(chunks, ulaw)
    assert all(len(c) == chunk_bytes for c in chunks[:-2])


def test_short_tail_is_merged_and_short_prompt_padded() -> None:
    assert [len(c) for c in chunk_ulaw(b"\x01" * 8050, 8000)] == [8050]
    assert [len(c) for c in chunk_ulaw(b"\x01" * 16_050, 8000)] == [8000, 8050]
    assert chunk_ulaw(b"\x01" * 30) == [b"\x01" * 30 + b"\xff" * 70]
    assert chunk_ulaw(b"") == []
    # Merging into a 64 KiB chunk would overflow it, so the last two are rebalanced.
    assert [len(c) for c in chunk_ulaw(b"\x01" * 65_586, MAX_CHUNK_BYTES)] == [65_486, 100]


@pytest.mark.parametrize("size", [99, 65_537, 0])
def test_chunk_size_outside_limits_is_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="between 100 and 65536"):
        chunk_ulaw(b"\x00" * 1000, size)


def test_prompts_may_be_wavs_or_raw() -> None:
    pcm = tone(440, 1500, 16000)
    wav = pcm_wav(pcm, 16000)
    ulaw = wav_to_ulaw(wav)
    assert b"".join(prompt_chunks(wav)) == ulaw
    assert b"".join(prompt_chunks(ulaw)) == ulaw
    assert prompt_wav(wav) == ulaw_wav(ulaw)
    assert prompt_wav(ulaw) == ulaw_wav(ulaw)


async def feed(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


async def collect(source: AsyncIterator[bytes], fmt: AudioFormat, **kwargs: int) -> list[bytes]:
    return [chunk async for chunk in stream_ulaw_chunks(source, fmt, **kwargs)]


@settings(deadline=None)  # runs an event loop per example; see above
@given(
    st.lists(st.integers(0, 3000), max_size=30),
    st.integers(MIN_CHUNK_BYTES, 4000),
    st.integers(MIN_CHUNK_BYTES, 4000),
)
def test_streamed_ulaw_chunks_are_lossless_and_within_limits(
    sizes: list[int], chunk_bytes: int, first: int
) -> None:
    data = bytes(i % 253 for i in range(sum(sizes)))
    pieces, start = [], 0
    for size in sizes:
        pieces.append(data[start : start + size])
        start += size
    chunks = asyncio.run(
        collect(feed(pieces), ULAW_8K, chunk_bytes=chunk_bytes, first_chunk_bytes=first)
    )
    assert all(MIN_CHUNK_BYTES <= len(c) <= MAX_CHUNK_BYTES for c in chunks)
    joined = b"".join(chunks)
    # Lossless; a tail under 100 B is padded with silence when it could not be merged
    # (the chunk before it left early to keep the playout fed).
    assert joined[: len(data)] == data
    assert set(joined[len(data) :]) <= {0xFF} and len(joined) - len(data) < MIN_CHUNK_BYTES
    assert all(len(c) <= max(chunk_bytes, first) + MIN_CHUNK_BYTES for c in chunks)


async def test_first_chunk_leaves_before_the_stream_ends() -> None:
    more = asyncio.Event()

    async def tts() -> AsyncIterator[bytes]:
        yield b"\x01" * 900
        await more.wait()  # the rest only comes after the first chunk has gone out
        yield b"\x02" * 5000

    stream = stream_ulaw_chunks(tts(), ULAW_8K, chunk_bytes=4000, first_chunk_bytes=800)
    first = await asyncio.wait_for(anext(stream), timeout=5)
    assert first == b"\x01" * 800
    more.set()
    rest = [chunk async for chunk in stream]
    assert [len(c) for c in rest] == [1600, 3200, 300]  # sizes double up to chunk_bytes


async def test_l16_16k_stream_equals_resampling_the_whole() -> None:
    pcm = tone(700, 1000, 16000)
    raw = pcm.astype("<i2").tobytes()
    pieces = [raw[i : i + 333] for i in range(0, len(raw), 333)]  # odd sizes split samples
    chunks = await collect(feed(pieces), L16_16K, chunk_bytes=2000, first_chunk_bytes=400)
    assert b"".join(chunks) == pcm_to_ulaw(resample(pcm, 16000, 8000))


async def test_alaw_and_ulaw_at_other_rates_are_converted() -> None:
    pcm = tone(500, 500)
    alaw = pcm_to_alaw(pcm)
    alaw_chunks = await collect(feed([alaw[:1000], alaw[1000:]]), ALAW_8K)
    assert b"".join(alaw_chunks) == pcm_to_ulaw(alaw_to_pcm(alaw))
    pcm16 = tone(500, 500, 16000)
    ulaw16 = AudioFormat(Encoding.MULAW, 16000)
    chunks = await collect(feed([pcm_to_ulaw(pcm16)]), ulaw16)
    assert len(b"".join(chunks)) == 4000


async def test_empty_and_tiny_streams() -> None:
    assert await collect(feed([]), ULAW_8K) == []
    assert await collect(feed([b"\x05" * 10]), ULAW_8K) == [b"\x05" * 10 + b"\xff" * 90]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_playout_tracker_reports_what_was_heard() -> None:
    clock = FakeClock()
    tracker = PlayoutTracker(clock)
    assert tracker.heard_ms() == 0
    clock.now += 5  # nothing sent yet: the clock has not started
    tracker.sent(8000)  # one second of μ-law
    assert tracker.sent_ms == 1000
    clock.now += 0.25
    assert tracker.heard_ms() == 250
    tracker.sent(16000)
    clock.now += 1.0
    assert tracker.heard_ms() == 1250
    clock.now += 10.0  # playback cannot run ahead of the audio sent
    assert tracker.heard_ms() == 3000
    with pytest.raises(ValueError, match="negative"):
        tracker.sent(-1)
