"""The command-line tools over WebSocket: ``call`` and ``loadtest`` with ``--transport ws``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.wav import ulaw_wav


async def _cli(*args: str, timeout_s: float = 120) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "byova_media.cli", *args,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_call_over_websocket_prints_the_timeline(
    byova_server: Any, speech: Any, tmp_path: Path
) -> None:
    server = await byova_server(plugins=["echo"], ws_port=0)
    wav = tmp_path / "hello.wav"
    wav.write_bytes(ulaw_wav(pcm_to_ulaw(speech(900))))
    code, out = await _cli(
        "call", f"127.0.0.1:{server.ws_port}", "--transport", "ws", "--fast",
        "--wav", str(wav), "--dtmf", "12", "--save-prompts", str(tmp_path / "prompts"),
    )  # fmt: skip
    assert code == 0, out
    assert "START_OF_INPUT" in out and "END_OF_INPUT" in out
    assert "completed OK" in out and "completed UNAVAILABLE" not in out
    assert sorted(p.name for p in (tmp_path / "prompts").iterdir())[:2] == [
        "00-session_start.wav",
        "01-audio.wav",
    ]


async def test_call_over_websocket_fails_on_a_refused_upgrade(byova_server: Any) -> None:
    server = await byova_server(plugins=["echo"], ws_port=0, host="127.0.0.1")
    # No such port: the upgrade cannot happen and the command says so with status 1.
    code, out = await _cli("call", f"127.0.0.1:{server.port}", "--transport", "ws", "--fast")
    assert code == 1, out
    assert "UNAVAILABLE" in out


@pytest.mark.slow  # two real-time calls of one turn: a few seconds
async def test_loadtest_over_websocket(byova_server: Any, tmp_path: Path) -> None:
    server = await byova_server(plugins=["echo"], ws_port=0)
    report = tmp_path / "report.json"
    code, out = await _cli(
        "loadtest", f"127.0.0.1:{server.ws_port}", "--transport", "ws", "--calls", "2",
        "--turns", "2", "--script", "say:700,dtmf:1", "--ramp", "0.2", "--json", str(report),
        "--no-chart", "--no-progress",
    )  # fmt: skip
    assert code == 0, out
    doc = json.loads(report.read_text())
    assert doc["transport"] == "ws" and doc["target"].startswith("ws://")
    (step,) = doc["steps"]
    assert step["calls_completed"] == 2 and step["calls_failed"] == 0
    assert step["rpc_errors"] == {}
    assert step["frames_sent"] > 0 and step["latency_ms"]["n"] == 2
