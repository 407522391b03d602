"""Shared fixtures: generated caller speech and a recording test agent."""

from __future__ import annotations

import numpy as np
import pytest


def speech_like(
    ms: int, *, sample_rate: int = 8000, seed: int = 1, level: float = 6000.0
) -> np.ndarray:
    """A voiced, syllable-modulated signal the energy VAD treats as speech (no files needed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(sample_rate * ms // 1000) / sample_rate
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 2.0 * t))
    noise = rng.normal(0, 0.02, len(t))
    signal = level * (voice / 3.0) * envelope + level * noise
    return np.clip(signal, -32768, 32767).astype(np.int16)


@pytest.fixture
def speech() -> type[object]:
    """``speech(ms)`` makes caller speech at 8 kHz."""
    return speech_like  # type: ignore[return-value]
