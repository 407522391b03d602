"""Audio format descriptors: an encoding plus a sample rate, with byte/duration arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

from byova_media.audio.codecs import Encoding

__all__ = ["ALAW_8K", "L16_8K", "L16_16K", "ULAW_8K", "AudioFormat"]


@dataclass(frozen=True)
class AudioFormat:
    """How a byte stream of audio is encoded: mono, ``encoding`` at ``sample_rate`` Hz."""

    encoding: Encoding
    sample_rate: int

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")

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
