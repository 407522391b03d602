"""Tone, DTMF, silence and comfort-noise synthesis for prompts and tests."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from byova_media.audio.codecs import ALAW_SILENCE, ULAW_SILENCE, Encoding, encode

__all__ = ["DTMF_FREQUENCIES", "comfort_noise", "dtmf_tones", "silence", "tone"]

DTMF_FREQUENCIES: dict[str, tuple[int, int]] = {
    key: (low, high)
    for low, row in zip((697, 770, 852, 941), ("123A", "456B", "789C", "*0#D"), strict=True)
    for high, key in zip((1209, 1336, 1477, 1633), row, strict=True)
}
"""Each DTMF key's (row, column) frequencies in Hz, from ITU-T Q.23."""

_DTMF_LEVEL_DBFS = -10.0  # per tone; the pair peaks at about -4 dBFS
_EDGE_MS = 5.0  # raised-cosine ramps so tone bursts start and stop without a click


def _amplitude(level_dbfs: float) -> float:
    return 32767.0 * math.pow(10.0, level_dbfs / 20.0)


def _samples(ms: int, sample_rate: int) -> int:
    if ms < 0 or sample_rate <= 0:
        raise ValueError(f"need ms >= 0 and sample_rate > 0, got {ms} ms at {sample_rate} Hz")
    return ms * sample_rate // 1000


def _sines(
    freqs: tuple[float, ...], n: int, sample_rate: int, amplitude: float
) -> npt.NDArray[np.float64]:
    for freq in freqs:
        if not 0.0 < freq < sample_rate / 2.0:
            raise ValueError(f"{freq} Hz cannot be played at {sample_rate} Hz (0 < f < rate/2)")
    t = np.arange(n, dtype=np.float64) / sample_rate
    wave = sum((np.sin(2.0 * np.pi * freq * t) for freq in freqs), np.zeros(n))
    edge = min(n // 2, int(_EDGE_MS * sample_rate / 1000))
    if edge:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, edge))
        wave[:edge] *= ramp
        wave[n - edge :] *= ramp[::-1]
    return wave * amplitude


def _to_pcm(wave: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    return np.clip(np.rint(wave), -32768, 32767).astype(np.int16)


def tone(
    freq_hz: float, ms: int, sample_rate: int = 8000, level_dbfs: float = -12.0
) -> npt.NDArray[np.int16]:
    """A sine of ``freq_hz`` with peak level ``level_dbfs``, with 5 ms fades at both ends."""
    n = _samples(ms, sample_rate)
    return _to_pcm(_sines((freq_hz,), n, sample_rate, _amplitude(level_dbfs)))


def dtmf_tones(
    digits: str, *, sample_rate: int = 8000, tone_ms: int = 120, gap_ms: int = 60
) -> npt.NDArray[np.int16]:
    """Dual tones for ``digits`` (0-9 * # A-D, any case), ``gap_ms`` of silence between."""
    unknown = sorted({d for d in digits.upper() if d not in DTMF_FREQUENCIES})
    if unknown:
        raise ValueError(f"not DTMF keys: {''.join(unknown)!r} (use 0-9 * # A-D)")
    if tone_ms <= 0:
        raise ValueError(f"tone_ms must be positive, got {tone_ms}")
    n_tone = _samples(tone_ms, sample_rate)
    gap = np.zeros(_samples(gap_ms, sample_rate), dtype=np.int16)
    parts: list[npt.NDArray[np.int16]] = []
    for position, digit in enumerate(digits.upper()):
        if position:
            parts.append(gap)
        freqs = DTMF_FREQUENCIES[digit]
        parts.append(_to_pcm(_sines(freqs, n_tone, sample_rate, _amplitude(_DTMF_LEVEL_DBFS))))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def silence(ms: int, encoding: Encoding = Encoding.MULAW, sample_rate: int = 8000) -> bytes:
    """``ms`` of digital silence in ``encoding`` (L16 is little-endian)."""
    n = _samples(ms, sample_rate)
    if encoding is Encoding.MULAW:
        return bytes([ULAW_SILENCE]) * n
    if encoding is Encoding.ALAW:
        return bytes([ALAW_SILENCE]) * n
    return bytes(2 * n)


def comfort_noise(
    ms: int,
    encoding: Encoding = Encoding.MULAW,
    sample_rate: int = 8000,
    level_dbfs: float = -65.0,
    seed: int | None = None,
) -> bytes:
    """``ms`` of white noise at RMS ``level_dbfs``, so a line sounds live rather than dead."""
    n = _samples(ms, sample_rate)
    noise = np.random.default_rng(seed).normal(0.0, _amplitude(level_dbfs), n)
    return encode(_to_pcm(noise), encoding)
