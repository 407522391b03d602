"""Shared fixtures: generated caller speech and a recording test agent."""

from __future__ import annotations

import subprocess
import sysconfig
import venv
from collections.abc import Callable
from pathlib import Path

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


def _fresh_venv(where: Path) -> Path:
    """A new venv that sees this interpreter's packages (no network) but not byova-media.

    This interpreter's site directories are added as plain paths, so the .pth files in
    them (which hold the editable install of byova-media) are not processed: byova-media
    itself has to be installed into the venv, as the tutorial's first step does.
    """
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    # ensurepip's setuptools would shadow this interpreter's newer one.
    subprocess.run(
        [str(python), "-m", "pip", "uninstall", "-q", "-y", "setuptools"],
        check=True,
        capture_output=True,
    )
    site_dir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site_dir) / "outer_deps.pth").write_text("\n".join(sorted(outer)) + "\n")
    return where / "bin"


@pytest.fixture
def fresh_venv() -> Callable[[Path], Path]:
    """``fresh_venv(path)`` makes a venv without byova-media and returns its bin directory."""
    return _fresh_venv
