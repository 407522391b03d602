"""Streamed PCM or WAV audio from a speech endpoint, turned into 8 kHz μ-law as it arrives.

OpenAI's ``pcm`` is headerless 16-bit little-endian mono at 24 kHz; a ``wav`` stream
starts with a RIFF header whose sizes may be placeholders (the length is unknown while
synthesis runs), so only the ``fmt `` chunk is read and everything after the ``data``
chunk header is taken as samples.
"""

from __future__ import annotations

import struct

import numpy as np

from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.resample import Resampler

__all__ = ["SpeechAudioError", "UlawConverter", "WavStreamReader"]

_RIFF_HEADER = 12
_CHUNK_HEADER = 8
#: A header larger than this is not a speech stream's (guards against garbage input).
_MAX_HEADER = 4096


class SpeechAudioError(ValueError):
    """The endpoint's audio is not in a format we can play."""


class UlawConverter:
    """16-bit little-endian PCM (mono or interleaved) at any rate in, 8 kHz μ-law out."""

    def __init__(self, sample_rate: int, channels: int = 1) -> None:
        self._channels = channels
        self._frame_bytes = 2 * channels
        self._resampler = Resampler(sample_rate, 8000)
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        data = self._carry + data
        usable = len(data) - len(data) % self._frame_bytes
        self._carry = data[usable:]
        if not usable:
            return b""
        samples = np.frombuffer(data[:usable], dtype="<i2")
        if self._channels > 1:
            samples = samples.reshape(-1, self._channels).mean(axis=1)
        return pcm_to_ulaw(self._resampler.process(samples.astype(np.int16)))

    def finish(self) -> bytes:
        return pcm_to_ulaw(self._resampler.flush())


class WavStreamReader:
    """Reads a streamed WAV's header, then hands out its 16-bit PCM as 8 kHz μ-law."""

    def __init__(self) -> None:
        self._head = b""
        self._converter: UlawConverter | None = None

    def feed(self, data: bytes) -> bytes:
        if self._converter is not None:
            return self._converter.feed(data)
        self._head += data
        parsed = self._parse_header()
        if parsed is None:
            if len(self._head) > _MAX_HEADER:
                raise SpeechAudioError("WAV header not found in the first 4 KiB of audio")
            return b""
        rate, channels, start = parsed
        self._converter = UlawConverter(rate, channels)
        rest, self._head = self._head[start:], b""
        return self._converter.feed(rest)

    def finish(self) -> bytes:
        if self._converter is None:
            raise SpeechAudioError("the audio stream ended inside its WAV header")
        return self._converter.finish()

    def _parse_header(self) -> tuple[int, int, int] | None:
        head = self._head
        if len(head) < _RIFF_HEADER:
            return None
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise SpeechAudioError("expected a RIFF/WAVE stream; set tts_format = 'pcm'")
        pos = _RIFF_HEADER
        fmt: tuple[int, int] | None = None
        while len(head) >= pos + _CHUNK_HEADER:
            chunk_id, size = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
            body = pos + _CHUNK_HEADER
            if chunk_id == b"data":
                if fmt is None:
                    raise SpeechAudioError("WAV data chunk before its fmt chunk")
                return fmt[0], fmt[1], body
            if len(head) < body + size:
                return None
            if chunk_id == b"fmt ":
                tag, channels, rate = struct.unpack_from("<HHI", head, body)
                bits = struct.unpack_from("<H", head, body + 14)[0]
                # 0xFFFE is WAVE_FORMAT_EXTENSIBLE, used by some servers for plain PCM.
                if tag not in (1, 0xFFFE) or bits != 16 or channels not in (1, 2):
                    raise SpeechAudioError(
                        f"WAV audio must be 16-bit PCM, mono or stereo (got format {tag}, "
                        f"{bits} bits, {channels} channels)"
                    )
                fmt = (rate, channels)
            pos = body + size + (size & 1)
        return None
