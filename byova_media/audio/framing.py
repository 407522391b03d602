"""Cutting prompts into Webex CHUNK payloads, and tracking how much of a prompt was heard.

Webex plays CHUNK messages of raw 8 kHz μ-law between 100 B and 64 KiB. Whole prompts and
streamed audio are cut so that no chunk falls below the minimum: a short final tail is
merged into the chunk before it (a stream holds back 100 B for that). Streamed audio is
cut by size and by age (:class:`StreamChunker`) so that the caller never hears a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

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
    "DEFAULT_FIRST_CHUNK_WAIT_MS",
    "MAX_CHUNK_BYTES",
    "MIN_CHUNK_BYTES",
    "PLAYOUT_MARGIN_MS",
    "PlayoutTracker",
    "StreamChunker",
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
DEFAULT_FIRST_CHUNK_WAIT_MS = 200.0
"""A streamed prompt's first chunk leaves at most this long after its first byte arrived,
however little audio it holds: the added latency stays under 250 ms, and the wait is the
slack a source at real time has for late pieces later on."""
PLAYOUT_MARGIN_MS = 100.0
"""Pending audio goes out when Webex has only this much left to play: the time a CHUNK
needs through gRPC and the network on a busy host."""

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


class StreamChunker:
    """When to cut streamed μ-law into CHUNK payloads: by size, and by age before a gap.

    Webex starts playing at the first CHUNK and then plays 8 bytes per ms; a CHUNK that
    arrives after the audio already sent has run out leaves the caller with silence.
    So pending audio is cut when one of these comes first:

    - the first chunk holds ``first_chunk_bytes``, or its oldest byte has waited
      ``first_chunk_wait_ms`` (a source at real time must not wait for a full chunk);
    - a later chunk holds the current target size; the target starts at
      ``first_chunk_bytes`` and doubles up to ``chunk_bytes`` only after a size cut,
      which can only happen while the source runs ahead of real time;
    - the audio queued at Webex is down to ``margin_ms`` (just in time to keep the
      playout fed, so no audio is held longer than needed).

    Cuts leave 100 B behind so a short final tail can be merged into the chunk before
    it, except a cut against the playout deadline when less than 200 B are pending: then
    all of it goes, and a final tail under 100 B is padded with silence instead (a
    proxied bot's stream ends only when it has been quiet a while, and holding its last
    100 B that long would be a gap). The clock is injected so the policy is testable
    without waiting.
    """

    def __init__(
        self,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        first_chunk_bytes: int = DEFAULT_FIRST_CHUNK_BYTES,
        *,
        first_chunk_wait_ms: float = DEFAULT_FIRST_CHUNK_WAIT_MS,
        margin_ms: float = PLAYOUT_MARGIN_MS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_size("chunk_bytes", chunk_bytes)
        _check_size("first_chunk_bytes", first_chunk_bytes)
        self._chunk_bytes = chunk_bytes
        self._target = min(first_chunk_bytes, chunk_bytes)
        self._first_wait_s = first_chunk_wait_ms / 1000.0
        self._margin_s = margin_ms / 1000.0
        self._clock = clock
        self._pending = bytearray()
        self._first_byte_at: float | None = None  # arrival of the first byte of all
        self._play_end: float | None = None  # when the audio sent so far stops playing

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)

    def add(self, ulaw: bytes) -> list[bytes]:
        """Take newly converted audio; return the chunks that are ready by size."""
        if ulaw and self._first_byte_at is None:
            self._first_byte_at = self._clock()
        self._pending += ulaw
        chunks = []
        # Cut only while 100 B stay behind, so a short tail can still be merged.
        while len(self._pending) >= self._target + MIN_CHUNK_BYTES:
            chunks.append(self._cut(self._target))
            self._target = min(self._target * 2, self._chunk_bytes)
        return chunks

    def deadline(self) -> float | None:
        """Clock time by which pending audio must go out, or ``None`` when none can."""
        if len(self._pending) < MIN_CHUNK_BYTES:
            return None  # too short for a CHUNK: wait for more or for the end
        if self._play_end is None:
            assert self._first_byte_at is not None
            return self._first_byte_at + self._first_wait_s
        return self._play_end - self._margin_s

    def due(self) -> list[bytes]:
        """The chunk that must go out now to keep the playout fed (none or one)."""
        deadline = self.deadline()
        if deadline is None or self._clock() < deadline:
            return []
        size = len(self._pending)
        if size >= 2 * MIN_CHUNK_BYTES:
            size = min(size - MIN_CHUNK_BYTES, self._target)
        # else everything goes: a gap now is worse than a later tail padded with silence
        return [self._cut(size)]

    def finish(self) -> list[bytes]:
        """The end of the stream: everything left, a short tail merged (or padded)."""
        tail, self._pending = bytes(self._pending), bytearray()
        return _final_chunks(tail)

    def _cut(self, size: int) -> bytes:
        chunk = bytes(self._pending[:size])
        del self._pending[:size]
        now = self._clock()
        # After an underrun Webex starts playing again when the next chunk arrives.
        start = now if self._play_end is None else max(self._play_end, now)
        self._play_end = start + size / (_ULAW_BYTES_PER_MS * 1000.0)
        return chunk


_Item = bytes | BaseException | None


async def _pump(source: AsyncIterable[bytes], queue: asyncio.Queue[_Item]) -> None:
    """Iterate ``source`` in a task of its own, one item ahead of the consumer; ``None``
    marks the end and an exception is handed over to be raised by the consumer."""
    try:
        async for item in source:
            await queue.put(bytes(item))
    except Exception as exc:
        await queue.put(exc)
        return
    await queue.put(None)


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def stream_ulaw_chunks(
    source: AsyncIterable[bytes],
    fmt: AudioFormat = ULAW_8K,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    first_chunk_bytes: int = DEFAULT_FIRST_CHUNK_BYTES,
    first_chunk_wait_ms: float = DEFAULT_FIRST_CHUNK_WAIT_MS,
) -> AsyncIterator[bytes]:
    """Turn streamed audio in ``fmt`` into μ-law CHUNK payloads as soon as each is due.

    Cutting follows :class:`StreamChunker`: a TTS faster than real time gets growing
    chunks, a source at real time (a realtime model, a proxied bot, a slow cloud TTS)
    gets chunks cut just before the audio already sent runs out, so there are no gaps.
    The source runs in a task of its own, at most one piece ahead (so a consumer that
    pauses still holds synthesis back), and a cut can happen while it is quiet; closing
    this iterator cancels that task.
    """
    chunker = StreamChunker(chunk_bytes, first_chunk_bytes, first_chunk_wait_ms=first_chunk_wait_ms)
    converter = _ToUlaw(fmt)
    queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=1)
    pump = asyncio.create_task(_pump(source, queue), name="audio-source")
    getter: asyncio.Task[_Item] | None = None
    try:
        while True:
            if getter is None:
                getter = asyncio.create_task(queue.get())
            deadline = chunker.deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = await asyncio.wait((getter,), timeout=timeout)
            if not done:
                for chunk in chunker.due():
                    yield chunk
                continue
            item, getter = getter.result(), None
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            for chunk in chunker.add(converter.feed(item)):
                yield chunk
        for chunk in [*chunker.add(converter.finish()), *chunker.finish()]:
            yield chunk
    finally:
        await _cancel(getter)
        await _cancel(pump)


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
