"""The playground's capture worklet run in Node, and the measurements its tests make.

``run_capture`` feeds generated audio through the shipped ``capture-worklet.js`` (by way of
``run_capture_worklet.js``, which stubs the few Web Audio globals it uses) and returns the
8 kHz PCM16 it posts. Run as a module it prints a worklet's pass band and stop band, so the
figures quoted for a filter can be reproduced::

    python -m tests.playground.capture                    # the worklet in this tree
    python -m tests.playground.capture path/to/other.js   # e.g. an older version from git
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "NODE",
    "OUT_RATE",
    "WORKLET",
    "fidelity_db",
    "level_db",
    "peak_hz",
    "residual",
    "run_capture",
    "steady",
    "tone",
]

FloatArray = npt.NDArray[np.float64]

NODE = shutil.which("node")
HERE = Path(__file__).resolve().parent
HARNESS = HERE / "run_capture_worklet.js"
WORKLET = HERE.parent.parent / "byova_media" / "playground" / "static" / "capture-worklet.js"
OUT_RATE = 8000
SETTLE = 160  # outputs skipped at the start: the filter fills with the tone's abrupt onset

PASS_HZ = (300, 1000, 2000, 3000, 3400)
TRANSITION_HZ = (3700, 4000, 4300, 4600)
STOP_HZ = (5000, 6000, 8000, 10000, 15000, 20000)


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> FloatArray:
    """A sine of ``freq`` Hz sampled at ``rate``.

    It starts 1 radian into its cycle: a tone at a multiple of 4 kHz starting at 0 would be
    sampled at its zero crossings by an output that has no delay, and look perfectly removed.
    """
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t + 1.0)


def run_capture(
    signal: npt.ArrayLike, rate: int, block: int = 128, worklet: Path = WORKLET
) -> FloatArray:
    """The worklet's output for ``signal`` (one row per channel), as floats in [-1, 1].

    ``block`` frames reach each ``process()`` call; 0 hands over everything at once.
    """
    if NODE is None:
        raise RuntimeError("node is not on PATH")
    planes = np.atleast_2d(np.asarray(signal, dtype=np.float32))
    result = subprocess.run(
        [NODE, str(HARNESS), str(worklet), str(rate), str(planes.shape[0]), str(block)],
        input=planes.tobytes(),
        capture_output=True,
        check=True,
    )
    return np.frombuffer(result.stdout, dtype="<i2").astype(np.float64) / 32767


def steady(out: FloatArray) -> FloatArray:
    """The output past the onset transient."""
    return out[SETTLE:]


def _fit(out: FloatArray, freq: float) -> tuple[FloatArray, FloatArray]:
    """The least-squares sine at ``freq`` through the steady output: (basis, coefficients)."""
    part = steady(out)
    t = np.arange(part.size) / OUT_RATE
    basis = np.stack((np.cos(2 * np.pi * freq * t), np.sin(2 * np.pi * freq * t)), axis=1)
    coef, *_ = np.linalg.lstsq(basis, part, rcond=None)
    return basis, coef


def level_db(out: FloatArray, freq: float, amplitude: float = 0.5) -> float:
    """The amplitude of the ``freq`` component of the steady output, in dB re ``amplitude``.

    It measures that frequency only, whatever else (aliases, noise) the output holds.
    """
    _, coef = _fit(out, freq)
    return float(20 * np.log10(np.hypot(*coef) / amplitude))


def residual(out: FloatArray, freq: float) -> FloatArray:
    """The steady output less its ``freq`` component: distortion, aliases, clicks, noise."""
    basis, coef = _fit(out, freq)
    return steady(out) - basis @ coef


def fidelity_db(out: FloatArray, freq: float) -> float:
    """The steady output's power over the power of its :func:`residual`, in dB."""
    rest = float(np.mean(residual(out, freq) ** 2))
    return float(10 * np.log10(np.mean(steady(out) ** 2) / max(rest, 1e-20)))


def total_db(out: FloatArray, amplitude: float = 0.5) -> float:
    """Everything in the steady output (any alias included), in dB re a sine of ``amplitude``.

    An output that rounds to silence reads as the level of half a PCM16 step, the floor.
    """
    rms = max(float(np.sqrt(np.mean(steady(out) ** 2))), 0.5 / 32767)
    return float(20 * np.log10(rms / (amplitude / np.sqrt(2))))


def peak_hz(out: FloatArray) -> float:
    """The frequency of the steady output's strongest component (Hann window, 0.06 Hz bins)."""
    part = steady(out)
    spectrum = np.abs(np.fft.rfft(part * np.hanning(part.size), n=1 << 17))
    return float(np.argmax(spectrum) * OUT_RATE / (1 << 17))


def report(worklet: Path, rate: int) -> None:
    """Print the worklet's gain for pass-band tones and its output for stop-band tones."""
    print(f"{worklet.name} at {rate} Hz")
    gains = [level_db(run_capture(tone(f, rate), rate, worklet=worklet), f) for f in PASS_HZ]
    for f, gain in zip(PASS_HZ, gains, strict=True):
        print(f"  pass  {f:>5} Hz  gain   {gain:+7.2f} dB")
    print(f"  pass band 300-3400 Hz: {min(gains):+.2f} to {max(gains):+.2f} dB")
    fidelity = fidelity_db(run_capture(tone(1000, rate), rate, worklet=worklet), 1000)
    print(f"  1 kHz tone over everything else in the output: {fidelity:.1f} dB")
    for f in (*TRANSITION_HZ, *STOP_HZ):
        if f < rate / 2:
            level = total_db(run_capture(tone(f, rate), rate, worklet=worklet))
            print(f"  {'stop' if f in STOP_HZ else 'edge'}  {f:>5} Hz  output {level:+7.1f} dB")
    sweep = range(4000, min(20000, rate // 2), 100)
    levels = [total_db(run_capture(tone(f, rate, 0.25), rate, worklet=worklet)) for f in sweep]
    worst = int(np.argmax(levels))
    print(f"  stop band 4-20 kHz, 100 Hz steps: worst {levels[worst]:+.1f} dB at {sweep[worst]} Hz")


def main(argv: list[str]) -> None:
    """Print the report for the worklet named on the command line (default: this tree's)."""
    worklet = Path(argv[0]) if argv else WORKLET
    for rate in (44100, 48000):
        report(worklet, rate)


if __name__ == "__main__":
    main(sys.argv[1:])
