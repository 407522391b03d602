"""A wheel built from the repo carries the generated modules and serves from a fresh venv."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_wheel_contains_generated_modules_and_serves(
    tmp_path: Path, fresh_venv: Callable[[Path], Path]
) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("byova_media-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "voicevirtualagent_pb2.py",
        "voicevirtualagent_pb2_grpc.py",
        "byova_common_pb2.py",
    ):
        assert f"byova_media/_proto/{module}" in names
    assert "byova_echo/__init__.py" in names
    python = fresh_venv(tmp_path / "venv") / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    script = (
        "import asyncio, byova_media, sys\n"
        "assert 'site-packages' in byova_media.__file__, byova_media.__file__\n"
        "from byova_media.config import Config\n"
        "from byova_media.server import Server\n"
        "from byova_media.testing.simulator import WebexSimulator\n"
        "async def main():\n"
        "    settings = {'host': '127.0.0.1', 'port': 0, 'plugins': ('echo',)}\n"
        "    config = Config.load(overrides=settings, plugin_names=['echo'])\n"
        "    async with Server(config) as server:\n"
        "        async with WebexSimulator(f'127.0.0.1:{server.port}', realtime=False) as sim:\n"
        "            result = await sim.call('echo').start()\n"
        "            assert result.audio and result.code.name == 'OK'\n"
        "    print('served')\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(python), "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "served" in done.stdout
