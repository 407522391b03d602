"""Audio format descriptors: an encoding plus a sample rate, with byte/duration arithmetic.

Sample rates come from one fixed set (:data:`SUPPORTED_RATES`): a rate is chosen by the
caller's settings message or by a WAV header, and an arbitrary one (139,992 Hz, 7,999 Hz)
would make the resampler design a huge filter or none at all. Everything else is refused
with :class:`UnsupportedSampleRate`, before any state or filter exists for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from byova_media.audio.codecs import ULAW_SILENCE, Encoding

__all__ = [
    "ALAW_8K",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "L16_8K",
    "L16_16K",
    "SUPPORTED_RATES",
    "ULAW_8K",
    "ULAW_SILENCE_FRAME",
    "AudioFormat",
    "UnsupportedSampleRate",
    "check_sample_rate",
    "ulaw_silence",
]


SUPPORTED_RATES = frozenset({8000, 16000, 11025, 22050, 24000, 32000, 44100, 48000})
"""Caller audio rates the engine accepts: telephone and wideband, and the common media rates.

Anything else is refused: a client-chosen odd rate would make every RPC design its own
resampling filter (cost grows with the rates' ratio), and Webex itself sends 8 kHz.
"""


class UnsupportedSampleRate(ValueError):
    """A sample rate outside :data:`SUPPORTED_RATES`; the message names the accepted ones."""

    def __init__(self, rate: int) -> None:
        accepted = ", ".join(str(r) for r in sorted(SUPPORTED_RATES))
        super().__init__(f"unsupported sample rate {rate} Hz; use one of {accepted}")
        self.rate = rate


def check_sample_rate(rate: int) -> int:
    """Return ``rate`` if it is in :data:`SUPPORTED_RATES`, else raise
    :class:`UnsupportedSampleRate` (the resampler and WAV decoding use this too)."""
    if rate not in SUPPORTED_RATES:
        raise UnsupportedSampleRate(rate)
    return rate


@dataclass(frozen=True)
class AudioFormat:
    """How a byte stream of audio is encoded: mono, ``encoding`` at ``sample_rate`` Hz."""

    encoding: Encoding
    sample_rate: int

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate)

    @property
    def bytes_per_sample(self) -> int:
        """Bytes per mono sample: 2 for L16, 1 for the G.711 codes."""
        return 2 if self.encoding is Encoding.L16 else 1

    def bytes_for_ms(self, ms: float) -> int:
        """Whole samples' worth of bytes for ``ms`` milliseconds of audio."""
        return int(ms * self.sample_rate // 1000) * self.bytes_per_sample

    def duration_ms(self, nbytes: int) -> float:
        """Duration in milliseconds of ``nbytes`` of audio in this format."""
        return nbytes / self.bytes_per_sample * 1000.0 / self.sample_rate


ULAW_8K = AudioFormat(Encoding.MULAW, 8000)
"""What Webex sends and plays: 8 kHz G.711 μ-law."""
ALAW_8K = AudioFormat(Encoding.ALAW, 8000)
L16_8K = AudioFormat(Encoding.L16, 8000)
L16_16K = AudioFormat(Encoding.L16, 16000)


FRAME_MS = 20
"""The unit of the whole audio path: Webex sends, and the engine processes, 20 ms frames."""
FRAME_SAMPLES = ULAW_8K.bytes_for_ms(FRAME_MS)
"""Samples in one frame at 8 kHz (160; also its size in G.711 bytes)."""


def ulaw_silence(ms: float) -> bytes:
    """``ms`` milliseconds of 8 kHz μ-law silence."""
    return bytes([ULAW_SILENCE]) * ULAW_8K.bytes_for_ms(ms)


ULAW_SILENCE_FRAME = ulaw_silence(FRAME_MS)
"""One 20 ms frame of μ-law silence, as a client sends while it waits for speech."""
