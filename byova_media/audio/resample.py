"""Streaming sample-rate conversion with a polyphase windowed-sinc FIR (numpy only).

One Kaiser-windowed sinc low-pass, designed at the upsampled rate ``L * in_rate``, serves
both interpolation (removing images) and decimation (anti-aliasing): its cut-off sits at
the lower of the two Nyquist frequencies (pass band to 85 %, 70 dB stop band from 100 %).
The filter's input history is kept between calls, so a stream resampled frame by frame is
sample-for-sample the stream resampled at once: no clicks at frame edges.

Only rates in :data:`~byova_media.audio.formats.SUPPORTED_RATES` are converted, and each
(in, out) pair's filter is designed once per process and shared by every stream: designing
takes up to ~15 ms of CPU, which no RPC should pay (nor repeat by alternating its rate).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from byova_media.audio.formats import SUPPORTED_RATES, check_sample_rate

__all__ = ["Resampler", "resample"]

_STOPBAND_DB = 70.0
_PASSBAND_FRACTION = 0.85
_PATTERN_CACHE_SIZE = 64
# Decimating by convolving at the input rate wastes (down - 1) of every down outputs: fine
# for 2 or 3 (16 or 24 kHz → 8 kHz), worse than gathering windows beyond that.
_CONVOLVE_MAX_DOWN = 3
_GATHER_ELEMENTS = 1 << 18  # window elements gathered per block (2 MiB of float64)

FloatArray = npt.NDArray[np.float64]
Int16Array = npt.NDArray[np.int16]


def _design(up: int, down: int, in_rate: int) -> tuple[FloatArray, int]:
    """Return the prototype filter (length a multiple of ``up``) and its delay in outputs."""
    stop_hz = min(in_rate, in_rate * up / down) / 2.0
    transition_hz = stop_hz * (1.0 - _PASSBAND_FRACTION)
    cutoff = (stop_hz - transition_hz / 2.0) / (up * in_rate)  # cycles per upsampled sample
    # Kaiser's estimate of the length needed for the stop band and transition width.
    delta_omega = 2.0 * math.pi * transition_hz / (up * in_rate)
    half = math.ceil((_STOPBAND_DB - 8.0) / (2.285 * delta_omega) / 2.0)
    n = np.arange(-half, half + 1, dtype=np.float64)
    beta = 0.1102 * (_STOPBAND_DB - 8.7)
    taps = 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.kaiser(2 * half + 1, beta)
    taps *= up / taps.sum()
    # Leading zeros put the centre tap on an output instant, so the delay is whole outputs;
    # trailing zeros make the length split evenly into ``up`` phases.
    lead = -half % down
    length = lead + taps.size
    padded = np.zeros(length + (-length % up), dtype=np.float64)
    padded[lead : lead + taps.size] = taps
    return padded, (half + lead) // down


@dataclass(frozen=True)
class _FilterBank:
    """One rate pair's polyphase filter: read-only, so every stream can share it."""

    up: int
    down: int
    delay: int  # filter delay in outputs
    phases: FloatArray  # phases[p, k] = prototype[p + k*up], reversed along k


# Every ordered pair of supported rates fits, so the cache never evicts: at most 56 designs,
# the largest 37,120 coefficients (11.025 → 16 kHz), ~6 MiB in all.
@functools.lru_cache(maxsize=len(SUPPORTED_RATES) ** 2)
def _filter_bank(in_rate: int, out_rate: int) -> _FilterBank:
    common = math.gcd(in_rate, out_rate)
    up, down = out_rate // common, in_rate // common
    filt, delay = (np.ones(1), 0) if up == down else _design(up, down, in_rate)
    # Reversed so that a window of input ordered oldest → newest lines up with the taps.
    phases = filt.reshape(-1, up).T[:, ::-1].copy()
    phases.flags.writeable = False
    return _FilterBank(up=up, down=down, delay=delay, phases=phases)


def _to_int16(samples: FloatArray) -> Int16Array:
    """Round and saturate to int16 (a filter's overshoot must not wrap around)."""
    np.rint(samples, out=samples)
    np.minimum(samples, 32767.0, out=samples)
    np.maximum(samples, -32768.0, out=samples)
    return samples.astype(np.int16)


class Resampler:
    """Convert a PCM16 stream from ``in_rate`` to ``out_rate``, keeping filter state.

    Feed frames of any length to :meth:`process`; call :meth:`flush` at the end of the
    stream for the filter's tail. Outputs are aligned to the input (the filter delay is
    removed), and after ``flush`` the total output length is ``ceil(n_in * out / in)``.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        """Raise :class:`~byova_media.audio.formats.UnsupportedSampleRate` for other rates."""
        bank = _filter_bank(check_sample_rate(in_rate), check_sample_rate(out_rate))
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._up, self._down, self._delay = bank.up, bank.down, bank.delay
        self._identity = self._up == self._down
        self._phases = bank.phases
        self._taps = bank.phases.shape[1]  # taps per phase
        self._patterns: dict[tuple[int, int], tuple[npt.NDArray[np.intp], FloatArray]] = {}
        self._reset()

    def _reset(self) -> None:
        self._buf: FloatArray = np.zeros(self._taps - 1, dtype=np.float64)
        self._buf_start = 1 - self._taps  # absolute input index of _buf[0]
        self._in_count = 0
        self._next_out = 0  # absolute index of the next raw (delayed) output
        self._emitted = 0  # outputs returned since the stream started

    def process(self, pcm: Int16Array) -> Int16Array:
        """Resample the next piece of the stream; returns what is ready (may be empty)."""
        if self._identity:
            self._in_count += pcm.size
            return pcm
        self._buf = np.concatenate((self._buf, pcm))
        self._in_count += pcm.size
        return self._emit(self._run())

    def flush(self) -> Int16Array:
        """End the stream: return the filter's tail and reset for a new stream."""
        if self._identity:
            self._reset()
            return np.zeros(0, dtype=np.int16)
        target = -(-self._in_count * self._up // self._down)
        last_raw = self._delay + target - 1
        needed_in = last_raw * self._down // self._up + 1
        pad = max(0, needed_in - self._in_count)
        self._buf = np.concatenate((self._buf, np.zeros(pad)))
        self._in_count += pad
        remaining = max(0, target - self._emitted)
        tail = self._emit(self._run())[:remaining]
        self._reset()
        return tail

    def _emit(self, raw: FloatArray) -> Int16Array:
        skip = max(0, self._delay - (self._next_out - raw.size))
        if skip:
            raw = raw[skip:]
        self._emitted += raw.size
        return _to_int16(raw)

    def _run(self) -> FloatArray:
        """Compute every raw output whose newest input sample has arrived; trim history."""
        up, down, taps = self._up, self._down, self._taps
        n0 = self._next_out
        n_end = (self._in_count * up - 1) // down + 1
        if n_end <= n0:
            return np.zeros(0, dtype=np.float64)
        buf, start = self._buf, self._buf_start
        if down == 1:
            # Interpolation: output m*up + q is input history convolved with phase q.
            out = np.empty((n_end - n0) // up * up, dtype=np.float64)
            for q in range(up):
                out[q::up] = np.convolve(buf, self._phases[q, ::-1], "valid")
        elif up == 1 and down <= _CONVOLVE_MAX_DOWN:
            # Decimation: filter at the input rate, keep every down-th output.
            first = n0 * down - (taps - 1) - start
            out = np.convolve(buf, self._phases[0, ::-1], "valid")[first::down]
        else:
            # General ratio: gather each output's input window; in blocks to bound memory.
            block = max(1, _GATHER_ELEMENTS // taps)
            parts = []
            for first_out in range(n0, n_end, block):
                count = min(block, n_end - first_out)
                offset = first_out * down // up - n0 * down // up
                index, coefs = self._pattern(first_out * down % up, count)
                window = buf[offset : offset + index[-1, -1] + 1]
                parts.append(np.einsum("ij,ij->i", window[index], coefs))
            out = np.concatenate(parts)
        self._next_out = n0 + out.size
        keep_from = self._next_out * down // up - (taps - 1)
        self._buf = buf[keep_from - start :]
        self._buf_start = keep_from
        return out

    def _pattern(self, phase0: int, count: int) -> tuple[npt.NDArray[np.intp], FloatArray]:
        """Window indices and coefficients for ``count`` outputs starting at ``phase0``."""
        key = (phase0, count)
        cached = self._patterns.get(key)
        if cached is not None:
            return cached
        if len(self._patterns) >= _PATTERN_CACHE_SIZE:
            self._patterns.clear()
        position = phase0 + np.arange(count, dtype=np.intp) * self._down
        base = position // self._up
        index = base[:, None] + np.arange(self._taps, dtype=np.intp)
        pattern = (index, self._phases[position % self._up])
        self._patterns[key] = pattern
        return pattern


def resample(pcm: Int16Array, in_rate: int, out_rate: int) -> Int16Array:
    """Resample a whole PCM16 signal; same result as streaming it through :class:`Resampler`."""
    if in_rate == out_rate:
        return pcm.copy()
    resampler = Resampler(in_rate, out_rate)
    return np.concatenate((resampler.process(pcm), resampler.flush()))
