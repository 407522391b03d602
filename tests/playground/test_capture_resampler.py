"""The capture worklet's resampler, run in Node on generated tones at the device rates.

The worklet turns the microphone (at whatever rate the browser's AudioContext runs) into
8 kHz PCM16. It must keep the voice band as it is and keep everything above 4 kHz from
folding back into it: the box average it once used let a 5 kHz tone through at -6 dB, as
3 kHz. Each test feeds ``process()`` 128-frame blocks, as Web Audio does.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.playground.capture import (
    NODE,
    OUT_RATE,
    level_db,
    peak_hz,
    residual,
    run_capture,
    steady,
    tone,
)

pytestmark = pytest.mark.skipif(
    NODE is None, reason="needs Node.js (`node` on PATH) to run the capture worklet"
)

DEVICE_RATES = (44100, 48000)
# Also 22,050 Hz (160 phases) and 44,101 Hz, whose ratio to 8 kHz needs 8,000 phases: the
# worklet then rounds each output instant to the nearest 1/1024 of an input sample.
ALL_RATES = (16000, 22050, 44100, 44101, 48000, 96000)


@pytest.mark.parametrize("rate", ALL_RATES)
def test_a_1khz_tone_keeps_its_level_and_frequency(rate: int) -> None:
    out = run_capture(tone(1000, rate), rate)
    assert abs(level_db(out, 1000)) <= 0.5
    assert peak_hz(out) == pytest.approx(1000, abs=1.0)
    # Nothing but the tone: a click at a block edge or a jittered output instant would show
    # here (the box filter's uneven 5- and 6-sample averages at 44.1 kHz left 0.016).
    assert np.max(np.abs(residual(out, 1000))) < 1e-3


@pytest.mark.parametrize("rate", DEVICE_RATES)
def test_a_3khz_tone_keeps_its_level(rate: int) -> None:
    assert abs(level_db(run_capture(tone(3000, rate), rate), 3000)) <= 1.0


@pytest.mark.parametrize("rate", DEVICE_RATES)
@pytest.mark.parametrize("freq", [300, 2000, 3400])
def test_the_voice_band_is_flat(rate: int, freq: int) -> None:
    assert abs(level_db(run_capture(tone(freq, rate), rate), freq)) <= 0.5


@pytest.mark.parametrize(
    ("rate", "freq"),
    [(r, f) for r in ALL_RATES for f in (4000, 5000, 6000, 10000, 15000) if f < r / 2],
)
def test_tones_above_4khz_come_out_at_least_50db_down(rate: int, freq: int) -> None:
    amplitude = 0.5
    out = steady(run_capture(tone(freq, rate, amplitude=amplitude), rate))
    # Everything that comes out, wherever it folded to, against the tone's own RMS.
    rms = np.sqrt(np.mean(out**2))
    assert rms <= amplitude / np.sqrt(2) * 10 ** (-50 / 20)


@pytest.mark.parametrize("rate", ALL_RATES)
@pytest.mark.parametrize("seconds", [1.0, 2.5])
def test_the_output_lasts_as_long_as_the_input(rate: int, seconds: float) -> None:
    out = run_capture(tone(1000, rate, seconds), rate)
    assert out.size % 160 == 0, "whole 20 ms frames only"
    assert abs(out.size - seconds * OUT_RATE) <= 160


@pytest.mark.parametrize("rate", DEVICE_RATES)
def test_block_edges_leave_no_trace(rate: int) -> None:
    # A chirp through the voice band and beyond, so every block edge meets a changing signal.
    t = np.arange(2 * rate) / rate
    chirp = 0.5 * np.sin(2 * np.pi * (200 * t + 2000 * t**2))
    whole = run_capture(chirp, rate, block=0)
    assert whole.size > 0
    for block in (128, 127, 1):
        assert np.array_equal(run_capture(chirp, rate, block=block), whole), block


def test_the_channels_are_averaged() -> None:
    rate = 48000
    left = tone(1000, rate)
    assert level_db(run_capture(np.stack((left, left)), rate), 1000) == pytest.approx(0, abs=0.1)
    half = level_db(run_capture(np.stack((left, np.zeros_like(left))), rate), 1000)
    assert half == pytest.approx(20 * np.log10(0.5), abs=0.1)
