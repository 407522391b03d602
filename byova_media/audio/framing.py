"""Cutting prompts into Webex CHUNK payloads, and tracking how much of a prompt was heard.

Webex plays CHUNK messages of raw 8 kHz μ-law between 100 B and 64 KiB. Whole prompts and
streamed TTS audio are cut so that no chunk falls below the minimum: a short final tail is
merged into the chunk before it (a stream holds back 100 B so that is always possible).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Callable

from byova_media.audio.codecs import (
    ULAW_SILENCE,
    Encoding,
    alaw_to_ulaw,
    decode,
    pcm_to_ulaw,
)
from byova_media.audio.formats import ULAW_8K, AudioFormat
from byova_media.audio.resample import Resampler
from byova_media.audio.wav import is_wav, ulaw_wav, wav_to_ulaw

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_FIRST_CHUNK_BYTES",
    "MAX_CHUNK_BYTES",
    "MIN_CHUNK_BYTES",
    "PlayoutTracker",
    "chunk_ulaw",
    "prompt_chunks",
    "prompt_ulaw",
    "prompt_wav",
    "stream_ulaw_chunks",
]

MIN_CHUNK_BYTES = 100
"""Webex's smallest CHUNK payload (12.5 ms of 8 kHz μ-law)."""
MAX_CHUNK_BYTES = 65536
"""Webex's largest CHUNK payload (8.192 s of 8 kHz μ-law)."""
DEFAULT_CHUNK_BYTES = 8000
"""One second of μ-law: Cisco asks for large chunks, and at one message per second the
per-message cost is negligible, while a prompt cancelled by barge-in has at most a second
queued in each message still in flight."""
DEFAULT_FIRST_CHUNK_BYTES = 1600
"""200 ms of μ-law: a streamed prompt starts playing after this much TTS audio."""

_ULAW_BYTES_PER_MS = 8


def _check_size(name: str, size: int) -> None:
    if not MIN_CHUNK_BYTES <= size <= MAX_CHUNK_BYTES:
        raise ValueError(
            f"{name} must be between {MIN_CHUNK_BYTES} and {MAX_CHUNK_BYTES} bytes, got {size}"
        )


def _final_chunks(tail: bytes) -> list[bytes]:
    """Chunks for what is left at the end: under a chunk plus 100 B, and under 100 B only
    when nothing came before (every cut leaves at least 100 B behind)."""
    if not tail:
        return []
    if len(tail) < MIN_CHUNK_BYTES:  # the whole prompt is short: pad it with silence
        return [tail + bytes([ULAW_SILENCE]) * (MIN_CHUNK_BYTES - len(tail))]
    if len(tail) > MAX_CHUNK_BYTES:  # the merged tail would be too long: split it
        cut = len(tail) - MIN_CHUNK_BYTES
        return [tail[:cut], tail[cut:]]
    return [tail]


def chunk_ulaw(ulaw: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[bytes]:
    """Cut raw μ-law into CHUNK payloads of ``chunk_bytes`` (100 B - 64 KiB).

    A final piece under 100 B is merged into the one before it; a whole prompt under 100 B
    is padded with μ-law silence to 100 B; empty input gives no chunks.
    """
    _check_size("chunk_bytes", chunk_bytes)
    data = bytes(ulaw)
    cut = 0
    chunks: list[bytes] = []
    while len(data) - cut >= chunk_bytes + MIN_CHUNK_BYTES:
        chunks.append(data[cut : cut + chunk_bytes])
        cut += chunk_bytes
    return chunks + _final_chunks(data[cut:])


def prompt_ulaw(prompt: bytes) -> bytes:
    """A prompt as raw 8 kHz μ-law: WAVs (any readable format) are converted, else as is."""
    return wav_to_ulaw(prompt) if is_wav(prompt) else bytes(prompt)


def prompt_chunks(prompt: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[bytes]:
    """CHUNK payloads for a prompt given as raw μ-law or as any readable WAV."""
    return chunk_ulaw(prompt_ulaw(prompt), chunk_bytes)


def prompt_wav(prompt: bytes) -> bytes:
    """The single WAV for WAV mode, from raw μ-law or any readable WAV."""
    return ulaw_wav(prompt_ulaw(prompt))


class _ToUlaw:
    """Stateful conversion of a chunked byte stream in ``fmt`` to 8 kHz μ-law."""

    def __init__(self, fmt: AudioFormat) -> None:
        self._fmt = fmt
        self._carry = b""  # an odd trailing L16 byte waiting for its partner
        rate = fmt.sample_rate
        self._resampler = None if rate == ULAW_8K.sample_rate else Resampler(rate, 8000)

    def feed(self, data: bytes) -> bytes:
        fmt = self._fmt
        if self._resampler is None:
            if fmt.encoding is Encoding.MULAW:
                return data
            if fmt.encoding is Encoding.ALAW:
                return alaw_to_ulaw(data)
        if fmt.encoding is Encoding.L16:
            data = self._carry + data
            self._carry = data[len(data) & ~1 :]
        pcm = decode(data, fmt.encoding)
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        return pcm_to_ulaw(pcm)

    def finish(self) -> bytes:
        return b"" if self._resampler is None else pcm_to_ulaw(self._resampler.flush())


async def stream_ulaw_chunks(
    source: AsyncIterable[bytes],
    fmt: AudioFormat = ULAW_8K,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    first_chunk_bytes: int = DEFAULT_FIRST_CHUNK_BYTES,
) -> AsyncIterator[bytes]:
    """Turn streamed audio in ``fmt`` into μ-law CHUNK payloads as soon as each is ready.

    The first chunk goes out once ``first_chunk_bytes`` (plus the 100 B held back for a
    possible short tail) have arrived; later chunks double in size up to ``chunk_bytes``,
    so playback that started early never waits on a TTS producing faster than real time.
    """
    _check_size("chunk_bytes", chunk_bytes)
    _check_size("first_chunk_bytes", first_chunk_bytes)
    converter = _ToUlaw(fmt)
    target = min(first_chunk_bytes, chunk_bytes)
    pending = bytearray()
    finished = False
    iterator = aiter(source)
    while not finished:
        try:
            pending += converter.feed(await anext(iterator))
        except StopAsyncIteration:
            pending += converter.finish()
            finished = True
        # Cut only while 100 B stay behind, so a short tail can still be merged.
        while len(pending) >= target + MIN_CHUNK_BYTES:
            yield bytes(pending[:target])
            del pending[:target]
            target = min(target * 2, chunk_bytes)
    for chunk in _final_chunks(bytes(pending)):
        yield chunk


class PlayoutTracker:
    """Estimate how much of a prompt the caller has heard, for barge-in reporting.

    Webex plays μ-law at 8 bytes per millisecond from the moment the first bytes are handed
    over, so the heard duration is the elapsed time, capped at the audio sent so far.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started: float | None = None
        self._sent_bytes = 0

    def sent(self, nbytes: int) -> None:
        """Record ``nbytes`` of μ-law handed to Webex; the first non-empty send starts the clock."""
        if nbytes < 0:
            raise ValueError(f"nbytes must not be negative, got {nbytes}")
        if nbytes and self._started is None:
            self._started = self._clock()
        self._sent_bytes += nbytes

    @property
    def sent_ms(self) -> int:
        """Milliseconds of audio sent so far."""
        return self._sent_bytes // _ULAW_BYTES_PER_MS

    def heard_ms(self) -> int:
        """Milliseconds the caller has heard: min(time since playback began, audio sent)."""
        if self._started is None:
            return 0
        elapsed_ms = int((self._clock() - self._started) * 1000.0)
        return max(0, min(elapsed_ms, self.sent_ms))
