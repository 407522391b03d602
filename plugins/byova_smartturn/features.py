"""Whisper log-mel features for Smart Turn, in numpy: 16 kHz audio → 80 × 800 floats.

Smart Turn v3 was trained on the features of Whisper's feature extractor over an 8 s
window, so they are reproduced here exactly as that recipe defines them: the last 8 s of
the turn, zero-padded at the front to 128,000 samples, normalised to zero mean and unit
variance over the whole padded buffer; a centred STFT (400-point periodic Hann window,
hop 160, reflect padding) whose power spectrum goes through 80 Slaney-style mel filters
(0–8 kHz, area-normalised); log10 floored at 1e-10, clamped to 8 below the maximum, and
scaled as (x + 4) / 4. The STFT's last frame is dropped, leaving 800 frames.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

__all__ = ["N_FRAMES", "N_MELS", "SAMPLE_RATE", "WINDOW_SAMPLES", "log_mel", "mel_filters"]

SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 8 * SAMPLE_RATE
N_FFT = 400
HOP = 160
N_MELS = 80
N_FRAMES = WINDOW_SAMPLES // HOP

# Slaney's mel scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = _F_SP * mel
    log = _MIN_LOG_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


@functools.cache
def mel_filters() -> npt.NDArray[np.float32]:
    """The 80 × 201 triangular filter bank, each filter scaled to unit area (Slaney)."""
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    top_mel = float(_hz_to_mel(np.array(SAMPLE_RATE / 2)))
    edges_hz = _mel_to_hz(np.linspace(0.0, top_mel, N_MELS + 2))
    widths = np.diff(edges_hz)
    slopes = edges_hz[:, None] - fft_hz[None, :]
    rising = -slopes[:-2] / widths[:-1, None]
    falling = slopes[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.astype(np.float32)


@functools.cache
def _hann() -> npt.NDArray[np.float64]:
    n = np.arange(N_FFT)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)  # periodic, as an STFT window


def padded_window(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The last 8 s of ``audio`` (16 kHz, float), zero-padded at the front, normalised."""
    tail = audio[-WINDOW_SAMPLES:]
    buffer = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    buffer[WINDOW_SAMPLES - len(tail) :] = tail
    mean = buffer.mean()
    var = buffer.var()
    normalised: npt.NDArray[np.float32] = ((buffer - mean) / np.sqrt(var + 1e-7)).astype(np.float32)
    return normalised


def log_mel(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Features of one turn: ``audio`` is 16 kHz float in [-1, 1]; returns (80, 800)."""
    signal = np.pad(padded_window(audio).astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(signal, N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames[:N_FRAMES] * _hann(), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = mel_filters().astype(np.float64) @ power.T
    log = np.log10(np.maximum(mel, 1e-10))
    log = np.maximum(log, log.max() - 8.0)
    scaled: npt.NDArray[np.float32] = ((log + 4.0) / 4.0).astype(np.float32)
    return scaled
