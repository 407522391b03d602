"""Reading any common WAV into PCM16 mono, and writing the μ-law WAV that Webex plays.

The reader is defensive: prompts may come from plugins and remote TTS services, so every
malformation (truncation, lying sizes, missing chunks, unsupported formats) raises one
:class:`WavError` saying what was wrong. Sizes are checked against the bytes actually
present before anything is sliced, so a huge declared size never allocates memory.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from byova_media.audio import _g711
from byova_media.audio.codecs import ULAW_SILENCE, pcm_to_ulaw
from byova_media.audio.resample import resample

__all__ = [
    "DEFAULT_MAX_WAV_BYTES",
    "WavAudio",
    "WavError",
    "is_wav",
    "pcm_wav",
    "read_wav",
    "to_ulaw8k",
    "ulaw_wav",
    "wav_to_ulaw",
]

DEFAULT_MAX_WAV_BYTES = 64 * 2**20
"""Largest WAV accepted by default: over an hour of 8 kHz μ-law, ~6 min of 44.1 kHz stereo."""

_TAG_PCM = 1
_TAG_FLOAT = 3
_TAG_ALAW = 6
_TAG_MULAW = 7
_TAG_EXTENSIBLE = 0xFFFE
# Every KSDATAFORMAT_SUBTYPE GUID for a classic tag is the tag followed by these 14 bytes.
_EXTENSIBLE_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_UNKNOWN_SIZE = 0xFFFFFFFF  # written by streaming encoders that cannot seek back
_MAX_CHANNELS = 32
_MAX_RATE = 768_000
_SUPPORTED = {
    (_TAG_PCM, 8),
    (_TAG_PCM, 16),
    (_TAG_PCM, 24),
    (_TAG_PCM, 32),
    (_TAG_FLOAT, 32),
    (_TAG_FLOAT, 64),
    (_TAG_ALAW, 8),
    (_TAG_MULAW, 8),
}
_WEBEX_RATE = 8000


class WavError(ValueError):
    """The bytes are not a WAV file this reader can decode; the message says why."""


@dataclass(frozen=True)
class WavAudio:
    """Decoded WAV audio: mono PCM16 samples at ``sample_rate`` Hz."""

    pcm: npt.NDArray[np.int16]
    sample_rate: int

    @property
    def duration_ms(self) -> float:
        """Length of the audio in milliseconds."""
        return self.pcm.size * 1000.0 / self.sample_rate


@dataclass(frozen=True)
class _Format:
    tag: int
    channels: int
    sample_rate: int
    bits: int
    block_align: int


def is_wav(data: bytes) -> bool:
    """True when ``data`` starts like a RIFF/WAVE file (it may still be malformed)."""
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def _parse_fmt(body: bytes) -> _Format:
    if len(body) < 16:
        raise WavError(f"fmt chunk is {len(body)} bytes; it needs at least 16")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _TAG_EXTENSIBLE:
        if len(body) < 40:
            raise WavError(f"WAVE_FORMAT_EXTENSIBLE fmt chunk is {len(body)} bytes, needs 40")
        guid = body[24:40]
        if guid[2:] != _EXTENSIBLE_GUID_TAIL:
            raise WavError(f"unsupported WAVE_FORMAT_EXTENSIBLE sub-format {guid.hex()}")
        tag = int.from_bytes(guid[:2], "little")
    if channels == 0 or channels > _MAX_CHANNELS:
        raise WavError(f"unsupported channel count {channels} (1 to {_MAX_CHANNELS})")
    if rate == 0 or rate > _MAX_RATE:
        raise WavError(f"unsupported sample rate {rate} Hz (1 to {_MAX_RATE})")
    if (tag, bits) not in _SUPPORTED:
        raise WavError(
            f"unsupported encoding: format tag {tag} with {bits} bits per sample "
            "(supported: PCM 8/16/24/32-bit, IEEE float 32/64-bit, A-law, μ-law)"
        )
    if block_align != channels * bits // 8:
        raise WavError(f"block align {block_align} does not match {channels} × {bits}-bit")
    return _Format(tag, channels, rate, bits, block_align)


def _parse(data: bytes, max_bytes: int) -> tuple[_Format, bytes]:
    """Validate the RIFF structure; return the format and the data chunk's bytes."""
    if len(data) > max_bytes:
        raise WavError(f"WAV is {len(data)} bytes, over the {max_bytes}-byte limit")
    if not is_wav(data):
        raise WavError("not a WAV file: missing RIFF/WAVE header")
    riff_size = int.from_bytes(data[4:8], "little")
    end = len(data) if riff_size == _UNKNOWN_SIZE else 8 + riff_size
    if end > len(data):
        raise WavError(
            f"truncated WAV: RIFF header declares {riff_size} bytes but {len(data) - 8} follow"
        )
    fmt: _Format | None = None
    samples: bytes | None = None
    pos = 12
    while pos + 8 <= end and (fmt is None or samples is None):
        chunk_id = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk_id == b"data" and size == _UNKNOWN_SIZE:
            size = end - body
        if size > end - body:
            raise WavError(
                f"chunk {chunk_id!r} at byte {pos} declares {size} bytes but only "
                f"{end - body} remain (truncated file or wrong chunk size)"
            )
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(data[body : body + size])
        elif chunk_id == b"data" and samples is None:
            samples = data[body : body + size]
        pos = body + size + (size & 1)  # chunks are padded to an even length
    if fmt is None:
        raise WavError("WAV has no fmt chunk")
    if samples is None:
        raise WavError("WAV has no data chunk")
    if len(samples) % fmt.block_align:
        raise WavError(
            f"data chunk is {len(samples)} bytes, not a whole number of "
            f"{fmt.block_align}-byte sample frames"
        )
    return fmt, samples


def _to_int16(fmt: _Format, raw: bytes) -> npt.NDArray[np.int16]:
    """Decode interleaved samples of any supported encoding to int16 (still interleaved)."""
    if fmt.tag == _TAG_MULAW:
        return _g711.ULAW_DECODE.take(np.frombuffer(raw, dtype=np.uint8))
    if fmt.tag == _TAG_ALAW:
        return _g711.ALAW_DECODE.take(np.frombuffer(raw, dtype=np.uint8))
    if fmt.tag == _TAG_FLOAT:
        floats = np.frombuffer(raw, dtype="<f4" if fmt.bits == 32 else "<f8")
        scaled = np.nan_to_num(floats.astype(np.float64), nan=0.0) * 32767.0
        return np.rint(np.clip(scaled, -32768.0, 32767.0)).astype(np.int16)
    if fmt.bits == 8:  # 8-bit PCM is unsigned with 128 as zero
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    if fmt.bits == 16:
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)
    if fmt.bits == 24:  # keep the two most significant bytes of each 3-byte sample
        return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)[:, 1:].copy().view("<i2")[:, 0]
    return (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)


def _mono(samples: npt.NDArray[np.int16], channels: int) -> npt.NDArray[np.int16]:
    if channels == 1:
        return samples
    frames = samples.reshape(-1, channels).astype(np.int32)
    mixed: npt.NDArray[np.int32] = frames.sum(axis=1) // channels
    return mixed.astype(np.int16)


def read_wav(data: bytes, *, max_bytes: int = DEFAULT_MAX_WAV_BYTES) -> WavAudio:
    """Decode a WAV (PCM, float, A-law, μ-law; mono or multi-channel) to mono PCM16."""
    fmt, raw = _parse(data, max_bytes)
    return WavAudio(_mono(_to_int16(fmt, raw), fmt.channels), fmt.sample_rate)


def to_ulaw8k(pcm: npt.NDArray[np.int16], sample_rate: int) -> bytes:
    """Resample PCM16 to 8 kHz and encode it as μ-law (what Webex plays)."""
    return pcm_to_ulaw(resample(pcm, sample_rate, _WEBEX_RATE))


def wav_to_ulaw(data: bytes, *, max_bytes: int = DEFAULT_MAX_WAV_BYTES) -> bytes:
    """Convert any readable WAV to raw 8 kHz μ-law (8 kHz μ-law mono passes through as is)."""
    fmt, raw = _parse(data, max_bytes)
    if fmt.tag == _TAG_MULAW and fmt.channels == 1 and fmt.sample_rate == _WEBEX_RATE:
        return raw
    pcm = _mono(_to_int16(fmt, raw), fmt.channels)
    try:
        return to_ulaw8k(pcm, fmt.sample_rate)
    except ValueError as exc:  # a sample rate the resampler cannot convert
        raise WavError(str(exc)) from exc


def _wav(
    tag: int, sample_rate: int, bits: int, payload: bytes, pad: bytes, fact: bool = False
) -> bytes:
    """A mono WAV: RIFF, a 16-byte ``fmt `` chunk, an optional ``fact`` chunk, ``data``."""
    block_align = bits // 8
    padding = pad if len(payload) % 2 else b""
    fmt = struct.pack(
        "<4sIHHIIHH", b"fmt ", 16, tag, 1, sample_rate, sample_rate * block_align, block_align, bits
    )
    # The fact chunk holds the sample count; the WAV spec asks for it with non-PCM formats.
    extra = struct.pack("<4sII", b"fact", 4, len(payload) // block_align) if fact else b""
    data = struct.pack("<4sI", b"data", len(payload))
    body = b"WAVE" + fmt + extra + data + payload + padding
    return struct.pack("<4sI", b"RIFF", len(body)) + body


def ulaw_wav(ulaw: bytes, fact: bool = False) -> bytes:
    """Wrap raw 8 kHz μ-law in the WAV Webex plays: tag 7, 8000 Hz, 8-bit, mono.

    The header is 44 bytes as Cisco's gateway writes it; ``fact`` adds the 12-byte
    ``fact`` chunk (setting ``wav_fact_chunk``). An odd-length payload gets RIFF's pad
    byte, written as μ-law silence so that a player ignoring the data size hears nothing.
    """
    return _wav(_TAG_MULAW, _WEBEX_RATE, 8, bytes(ulaw), bytes([ULAW_SILENCE]), fact)


def pcm_wav(pcm: npt.NDArray[np.int16], sample_rate: int) -> bytes:
    """Write mono PCM16 samples as a canonical 16-bit PCM WAV."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return _wav(_TAG_PCM, sample_rate, 16, pcm.astype("<i2", copy=False).tobytes(), b"")
