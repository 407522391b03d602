"""Getting the Smart Turn model: ``byova-media models fetch smart-turn`` and its cache.

The model file ships inside the ``pipecat-ai`` wheel on PyPI, but that package pins
``protobuf<7`` and cannot be installed beside byova-media. So the wheel is downloaded
with pip (no dependencies, through whatever index pip is configured to use), the one
file is taken out of it, its size and SHA-256 are checked, and it is stored in a cache
directory; nothing of pipecat is installed or imported.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

__all__ = [
    "FETCH_COMMAND",
    "MODEL_BYTES",
    "MODEL_FILE",
    "MODEL_SHA256",
    "FetchError",
    "ModelMissingError",
    "cache_dir",
    "cached_model_path",
    "extract_model",
    "fetch_model",
]

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
MODEL_BYTES = 8_679_182
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
WHEEL_REQUIREMENT = "pipecat-ai==1.14.0"
WHEEL_MEMBER = f"pipecat/audio/turn/smart_turn/data/{MODEL_FILE}"
FETCH_COMMAND = "byova-media models fetch smart-turn"


class ModelMissingError(FileNotFoundError):
    """The model file is not where the settings say; the message names the fix."""

    def __init__(self, path: Path, problem: str = "not found") -> None:
        super().__init__(
            f"Smart Turn model {path} {problem}: run `{FETCH_COMMAND}` to download it into "
            "the cache, or point [plugin.smartturn] model_path "
            "(BYOVA_MEDIA_SMARTTURN_MODEL_PATH) at a copy of " + MODEL_FILE
        )
        self.path = path


class FetchError(RuntimeError):
    """Downloading or checking the model failed; the message says which step and why."""


def cache_dir() -> Path:
    """Where fetched models live: ``$XDG_CACHE_HOME/byova-media/models`` (``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "byova-media" / "models"


def cached_model_path() -> Path:
    """The model's path in the cache (it may not be there yet)."""
    return cache_dir() / MODEL_FILE


def _check(data: bytes, source: str) -> None:
    if len(data) != MODEL_BYTES:
        raise FetchError(
            f"{source}: {MODEL_FILE} has {len(data):,} bytes, expected {MODEL_BYTES:,}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise FetchError(f"{source}: {MODEL_FILE} has SHA-256 {digest}, expected {MODEL_SHA256}")


def extract_model(wheel: Path, target: Path) -> Path:
    """Take the model out of a downloaded ``pipecat-ai`` wheel, check it, store it at ``target``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(WHEEL_MEMBER)
    except KeyError:
        raise FetchError(f"{wheel.name} does not contain {WHEEL_MEMBER}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise FetchError(f"cannot read {wheel}: {exc}") from exc
    _check(data, wheel.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, target)  # never a half-written model under the real name
    return target


def is_valid(path: Path) -> bool:
    """True when ``path`` holds exactly the expected model."""
    try:
        _check(path.read_bytes(), str(path))
    except (OSError, FetchError):
        return False
    return True


def fetch_model(target: Path | None = None, wheel: Path | None = None) -> Path:
    """Make the model available at ``target`` (default: the cache); return its path.

    A valid copy already there is kept. ``wheel`` uses a ``pipecat-ai`` wheel at hand
    instead of downloading one.
    """
    target = target or cached_model_path()
    if is_valid(target):
        return target
    if wheel is not None:
        return extract_model(wheel, target)
    with tempfile.TemporaryDirectory(prefix="byova-smart-turn-") as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            tmp,
            WHEEL_REQUIREMENT,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise FetchError(
                f"pip could not download {WHEEL_REQUIREMENT}: {' | '.join(tail) or 'no output'}"
            )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise FetchError(f"pip reported success but left no wheel of {WHEEL_REQUIREMENT}")
        return extract_model(wheels[0], target)
