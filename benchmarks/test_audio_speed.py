"""Audio engine speed, each case beside its reference in the same run.

References: the C codec (``audioop``), a per-sample pure-Python G.711 encoder, and an
``asyncio.Queue`` put/get pair. Frames cycle through many distinct buffers so the branch
predictor and caches are not flattered by one repeated buffer.
"""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest

from byova_media.audio._audioop import audioop
from byova_media.audio.codecs import pcm_to_ulaw, ulaw_to_pcm
from byova_media.audio.jitter import JitterBuffer
from byova_media.audio.resample import Resampler, _design

RNG = np.random.default_rng(1234)
N_FRAMES = 512
PCM_FRAMES = [
    RNG.normal(0, 4000, 160).clip(-32768, 32767).astype(np.int16) for _ in range(N_FRAMES)
]
PCM16K_FRAMES = [
    RNG.normal(0, 4000, 320).clip(-32768, 32767).astype(np.int16) for _ in range(N_FRAMES)
]
ULAW_FRAMES = [RNG.integers(0, 256, 160, dtype=np.uint8).tobytes() for _ in range(N_FRAMES)]
BULK_PCM = RNG.normal(0, 6000, 2**20).clip(-32768, 32767).astype(np.int16)  # → 1 MiB μ-law
BULK_ULAW = RNG.integers(0, 256, 2**20, dtype=np.uint8).tobytes()


def python_ulaw_encode(samples: list[int]) -> bytes:
    """Straightforward per-sample G.711 μ-law encoder: the pure-Python reference."""
    out = bytearray()
    for sample in samples:
        value = sample >> 2
        mask = 0xFF
        if value < 0:
            value, mask = -value, 0x7F
        value = min(value, 8159) + 33
        segment = 0
        while segment < 8 and value >= (0x40 << segment):
            segment += 1
        code = 0x7F if segment >= 8 else (segment << 4) | ((value >> (segment + 1)) & 0x0F)
        out.append(code ^ mask)
    return bytes(out)


def test_python_reference_is_correct() -> None:
    sample = BULK_PCM[:5000]
    assert python_ulaw_encode(sample.tolist()) == pcm_to_ulaw(sample)


# --- per-frame μ-law decode ------------------------------------------------------------


@pytest.mark.benchmark(group="ulaw-decode-frame")
def test_decode_frame_ours(benchmark) -> None:
    frames = itertools.cycle(ULAW_FRAMES)
    benchmark(lambda: ulaw_to_pcm(next(frames)))


@pytest.mark.benchmark(group="ulaw-decode-frame")
def test_decode_frame_c_bytes(benchmark) -> None:
    frames = itertools.cycle(ULAW_FRAMES)
    benchmark(lambda: audioop.ulaw2lin(next(frames), 2))


@pytest.mark.benchmark(group="ulaw-decode-frame")
def test_decode_frame_c_to_ndarray(benchmark) -> None:
    frames = itertools.cycle(ULAW_FRAMES)
    benchmark(lambda: np.frombuffer(audioop.ulaw2lin(next(frames), 2), dtype=np.int16))


# --- per-frame μ-law encode ------------------------------------------------------------


@pytest.mark.benchmark(group="ulaw-encode-frame")
def test_encode_frame_ours(benchmark) -> None:
    frames = itertools.cycle(PCM_FRAMES)
    benchmark(lambda: pcm_to_ulaw(next(frames)))


@pytest.mark.benchmark(group="ulaw-encode-frame")
def test_encode_frame_c(benchmark) -> None:
    frames = itertools.cycle(PCM_FRAMES)
    benchmark(lambda: audioop.lin2ulaw(next(frames), 2))


@pytest.mark.benchmark(group="ulaw-encode-frame")
def test_encode_frame_python(benchmark) -> None:
    frames = itertools.cycle([f.tolist() for f in PCM_FRAMES])
    benchmark(lambda: python_ulaw_encode(next(frames)))


# --- bulk (1 MiB of μ-law) ---------------------------------------------------------------


@pytest.mark.benchmark(group="ulaw-encode-1MiB")
def test_encode_bulk_ours(benchmark) -> None:
    benchmark(pcm_to_ulaw, BULK_PCM)


@pytest.mark.benchmark(group="ulaw-encode-1MiB")
def test_encode_bulk_c(benchmark) -> None:
    benchmark(audioop.lin2ulaw, BULK_PCM, 2)


@pytest.mark.benchmark(group="ulaw-encode-1MiB")
def test_encode_bulk_python(benchmark) -> None:
    samples = BULK_PCM.tolist()
    benchmark.pedantic(python_ulaw_encode, args=(samples,), rounds=2, iterations=1)


@pytest.mark.benchmark(group="ulaw-decode-1MiB")
def test_decode_bulk_ours(benchmark) -> None:
    benchmark(ulaw_to_pcm, BULK_ULAW)


@pytest.mark.benchmark(group="ulaw-decode-1MiB")
def test_decode_bulk_c(benchmark) -> None:
    benchmark(audioop.ulaw2lin, BULK_ULAW, 2)


# --- resampling one 20 ms frame ----------------------------------------------------------


@pytest.mark.benchmark(group="resample-8k-to-16k-frame")
def test_upsample_frame_ours(benchmark) -> None:
    frames, stream = itertools.cycle(PCM_FRAMES), Resampler(8000, 16000)
    benchmark(lambda: stream.process(next(frames)))


@pytest.mark.benchmark(group="resample-8k-to-16k-frame")
def test_upsample_frame_c_ratecv(benchmark) -> None:
    frames = itertools.cycle([f.tobytes() for f in PCM_FRAMES])
    state: list[object] = [None]

    def step() -> None:
        _, state[0] = audioop.ratecv(next(frames), 2, 1, 8000, 16000, state[0])

    benchmark(step)


@pytest.mark.benchmark(group="resample-16k-to-8k-frame")
def test_downsample_frame_ours(benchmark) -> None:
    frames, stream = itertools.cycle(PCM16K_FRAMES), Resampler(16000, 8000)
    benchmark(lambda: stream.process(next(frames)))


@pytest.mark.benchmark(group="resample-16k-to-8k-frame")
def test_downsample_frame_c_ratecv(benchmark) -> None:
    frames = itertools.cycle([f.tobytes() for f in PCM16K_FRAMES])
    state: list[object] = [None]

    def step() -> None:
        _, state[0] = audioop.ratecv(next(frames), 2, 1, 16000, 8000, state[0])

    benchmark(step)


# --- jitter buffer push + pop of one frame -----------------------------------------------


@pytest.mark.benchmark(group="jitter-push-pop")
def test_jitter_untimed(benchmark) -> None:
    frames, buffer = itertools.cycle(PCM_FRAMES), JitterBuffer()
    benchmark(lambda: buffer.push(next(frames)))


@pytest.mark.benchmark(group="jitter-push-pop")
def test_jitter_timed_in_order(benchmark) -> None:
    frames, buffer, clock = itertools.cycle(PCM_FRAMES), JitterBuffer(), itertools.count(0, 20)
    benchmark(lambda: buffer.push(next(frames), float(next(clock))))


@pytest.mark.benchmark(group="jitter-push-pop")
def test_jitter_reference_asyncio_queue(benchmark) -> None:
    frames, queue = itertools.cycle(PCM_FRAMES), asyncio.Queue[np.ndarray]()

    def step() -> np.ndarray:
        queue.put_nowait(next(frames))
        return queue.get_nowait()

    benchmark(step)


# --- opening a stream: a cached filter design against designing one --------------------


@pytest.mark.benchmark(group="resampler-open-44.1k-to-8k")
def test_open_resampler_cached_design(benchmark) -> None:
    Resampler(44100, 8000)  # the first stream of the process pays for the design
    benchmark(Resampler, 44100, 8000)


@pytest.mark.benchmark(group="resampler-open-44.1k-to-8k")
def test_open_resampler_designing_reference(benchmark) -> None:
    # What every RPC paid before designs were shared: the same design, done each time.
    benchmark(_design, 80, 441, 44100)
