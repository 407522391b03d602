"""DTMF, tones, silence and comfort noise."""

from __future__ import annotations

import numpy as np
import pytest

from byova_media.audio.codecs import Encoding, decode
from byova_media.audio.tones import DTMF_FREQUENCIES, comfort_noise, dtmf_tones, silence, tone
from byova_media.audio.vad import frame_dbfs


def peak_frequencies(signal: np.ndarray, rate: int, count: int) -> list[float]:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    freqs = np.fft.rfftfreq(signal.size, 1 / rate)
    peaks = []
    for _ in range(count):
        k = int(np.argmax(spectrum))
        peaks.append(float(freqs[k]))
        spectrum[max(0, k - 20) : k + 20] = 0
    return sorted(peaks)


@pytest.mark.parametrize("digit", list("0123456789*#ABCD"))
def test_each_dtmf_key_has_its_itu_pair(digit: str) -> None:
    signal = dtmf_tones(digit, tone_ms=200)
    low, high = peak_frequencies(signal, 8000, 2)
    expected = DTMF_FREQUENCIES[digit]
    assert abs(low - expected[0]) < 10
    assert abs(high - expected[1]) < 10


def test_dtmf_timing_gaps_and_errors() -> None:
    signal = dtmf_tones("12a", tone_ms=100, gap_ms=50)
    assert signal.size == 8 * (3 * 100 + 2 * 50)
    assert not signal[800:1200].any()  # the gap is silent
    assert np.abs(signal).max() < 32767  # two -10 dBFS tones do not clip
    assert abs(int(signal[0])) < 100  # ramps: no click at the start
    assert dtmf_tones("").size == 0
    with pytest.raises(ValueError, match="'EX'"):
        dtmf_tones("1EX")


def test_tone_level_and_range() -> None:
    signal = tone(1000, 500, 16000, level_dbfs=-6.0)
    assert signal.size == 8000
    assert np.abs(signal).max() == pytest.approx(32767 * 10 ** (-6 / 20), rel=0.01)
    with pytest.raises(ValueError, match="rate/2"):
        tone(5000, 100, 8000)


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [(Encoding.MULAW, b"\xff" * 160), (Encoding.ALAW, b"\xd5" * 160), (Encoding.L16, bytes(320))],
)
def test_silence_in_each_codec(encoding: Encoding, expected: bytes) -> None:
    assert silence(20, encoding) == expected
    assert np.abs(decode(expected, encoding)).max() <= 8


@pytest.mark.parametrize("encoding", list(Encoding))
def test_comfort_noise_level_and_reproducibility(encoding: Encoding) -> None:
    noise = comfort_noise(1000, encoding, level_dbfs=-50.0, seed=5)
    assert noise == comfort_noise(1000, encoding, level_dbfs=-50.0, seed=5)
    assert len(noise) == 8000 * (2 if encoding is Encoding.L16 else 1)
    assert frame_dbfs(decode(noise, encoding)) == pytest.approx(-50.0, abs=1.5)
