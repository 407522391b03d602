"""Streaming resampler: frame-by-frame equals one-shot, pass band kept, aliases removed."""

from __future__ import annotations

import numpy as np
import pytest

from byova_media.audio.codecs import Encoding
from byova_media.audio.formats import (
    SUPPORTED_RATES,
    AudioFormat,
    UnsupportedSampleRate,
    check_sample_rate,
)
from byova_media.audio.resample import Resampler, _filter_bank, resample
from byova_media.audio.tones import tone

RATES = [
    (8000, 16000),
    (16000, 8000),
    (22050, 8000),
    (24000, 8000),
    (44100, 8000),
    (48000, 8000),
    (8000, 48000),
    (16000, 24000),
]


def sine(freq: float, rate: int, seconds: float, amplitude: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


@pytest.mark.parametrize(("in_rate", "out_rate"), RATES)
def test_frame_by_frame_equals_all_at_once(in_rate: int, out_rate: int) -> None:
    signal = sine(440, in_rate, 0.3)
    whole = resample(signal, in_rate, out_rate)
    stream = Resampler(in_rate, out_rate)
    frame = in_rate // 50
    pieces = [stream.process(signal[i : i + frame]) for i in range(0, signal.size, frame)]
    pieces.append(stream.flush())
    framed = np.concatenate(pieces)
    assert framed.size == whole.size == -(-signal.size * out_rate // in_rate)
    assert np.max(np.abs(framed.astype(np.int32) - whole)) <= 1


@pytest.mark.parametrize(("in_rate", "out_rate"), RATES)
def test_irregular_pieces_give_the_same_stream(in_rate: int, out_rate: int) -> None:
    signal = sine(300, in_rate, 0.2)
    whole = resample(signal, in_rate, out_rate)
    rng = np.random.default_rng(7)
    stream, pieces, start = Resampler(in_rate, out_rate), [], 0
    while start < signal.size:
        size = int(rng.integers(0, 700))
        pieces.append(stream.process(signal[start : start + size]))
        start += size
    pieces.append(stream.flush())
    assert np.max(np.abs(np.concatenate(pieces).astype(np.int32) - whole)) <= 1


@pytest.mark.parametrize(("in_rate", "out_rate"), RATES)
def test_pass_band_tone_is_kept_and_aligned(in_rate: int, out_rate: int) -> None:
    out = resample(sine(1000, in_rate, 0.3), in_rate, out_rate)
    ideal = sine(1000, out_rate, 0.3)
    middle = slice(out_rate // 20, -out_rate // 20)  # skip the start-up and tail ramps
    assert np.max(np.abs(out[middle].astype(np.int32) - ideal[middle])) <= 20


def test_6khz_at_48k_is_strongly_attenuated_at_8k() -> None:
    out = resample(sine(6000, 48000, 0.3), 48000, 8000)
    assert rms(out[100:-100]) < rms(sine(6000, 48000, 0.3)) * 10 ** (-60 / 20)


def test_no_click_at_frame_edges_when_upsampling() -> None:
    stream = Resampler(8000, 16000)
    signal = tone(500, 400)
    out = np.concatenate([stream.process(signal[i : i + 160]) for i in range(0, 3200, 160)])
    steps = np.abs(np.diff(out.astype(np.int32)))
    # A 500 Hz sine at 16 kHz moves at most 2π·500/16000 of its amplitude per sample.
    assert steps.max() <= 0.2 * np.abs(out).max()


def test_same_rate_is_identity_and_bad_rates_are_rejected() -> None:
    signal = sine(100, 8000, 0.05)
    assert np.array_equal(resample(signal, 8000, 8000), signal)
    stream = Resampler(8000, 8000)
    assert stream.process(signal) is signal
    assert stream.flush().size == 0


@pytest.mark.parametrize("rate", [0, -8000, 7999, 8001, 44101, 139_992, 2**31 - 1])
def test_rates_outside_the_supported_set_are_refused_before_any_design(rate: int) -> None:
    designed = _filter_bank.cache_info().currsize
    for in_rate, out_rate in ((rate, 8000), (8000, rate)):
        with pytest.raises(UnsupportedSampleRate, match="use one of 8000, 11025") as caught:
            Resampler(in_rate, out_rate)
        assert caught.value.rate == rate
    with pytest.raises(UnsupportedSampleRate):
        check_sample_rate(rate)
    with pytest.raises(UnsupportedSampleRate):
        AudioFormat(Encoding.L16, rate)
    assert _filter_bank.cache_info().currsize == designed


@pytest.mark.parametrize("rate", sorted(SUPPORTED_RATES))
def test_every_supported_rate_converts_to_and_from_8k(rate: int) -> None:
    assert check_sample_rate(rate) == rate
    for in_rate, out_rate in ((rate, 8000), (8000, rate)):
        out = resample(sine(1000, in_rate, 0.1), in_rate, out_rate)
        assert out.size == -(-int(in_rate * 0.1) * out_rate // in_rate)


def test_streams_of_one_rate_pair_share_one_filter_design() -> None:
    first = Resampler(22050, 8000)
    before = _filter_bank.cache_info()
    # Alternating rates, as a hostile settings stream would, designs nothing new.
    for _ in range(20):
        Resampler(22050, 8000)
        Resampler(48000, 8000)
    after = _filter_bank.cache_info()
    assert after.currsize <= before.currsize + 1  # 48 kHz may be new to this process
    assert after.misses <= before.misses + 1
    second = Resampler(22050, 8000)
    signal = sine(700, 22050, 0.1)
    assert np.array_equal(first.process(signal), second.process(signal))


def test_shared_filters_are_read_only() -> None:
    bank = _filter_bank(44100, 8000)
    with pytest.raises(ValueError, match="read-only"):
        bank.phases[0, 0] = 1.0


def test_the_cache_holds_every_supported_pair_without_eviction() -> None:
    maxsize = _filter_bank.cache_info().maxsize
    assert maxsize is not None and maxsize >= len(SUPPORTED_RATES) ** 2


def test_full_scale_input_saturates_instead_of_wrapping() -> None:
    square = np.where(np.arange(800) % 40 < 20, 32767, -32768).astype(np.int16)
    out = resample(square, 8000, 16000)
    # Gibbs overshoot is clipped, not wrapped: the output keeps the square wave's signs.
    assert out.max() == 32767
    assert out.min() == -32768
    ideal_sign = np.sign(np.repeat(square, 2)[100:-100].astype(np.int32))
    agreement = np.mean(np.sign(out[100:-100].astype(np.int32)) == ideal_sign)
    assert agreement > 0.9
