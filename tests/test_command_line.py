"""The command line as users run it: `byova-media serve --plugin echo` in a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from byova_media.audio.wav import pcm_wav, read_wav
from byova_media.testing.process import ServedProcess, serve_process
from byova_media.testing.simulator import RpcResult, WebexSimulator


@pytest.fixture
async def echo_process() -> AsyncIterator[ServedProcess]:
    async with serve_process("--plugin", "echo") as served:
        yield served


def _one_final(result: RpcResult) -> None:
    assert result.code == grpc.StatusCode.OK, result.details
    assert len(result.finals) == 1 and result.responses[-1] is result.final


async def test_echo_call_welcome_two_turns_dtmf_and_transfer(
    echo_process: ServedProcess, speech: Any
) -> None:
    async with WebexSimulator(
        f"127.0.0.1:{echo_process.port}", realtime=True, token="test-token"
    ) as sim:
        call = sim.call("echo")
        welcome = await call.start()
        _one_final(welcome)
        assert welcome.audio and welcome.prompt_texts[0].startswith("Welcome")
        for seconds in (1.0, 1.6):
            said = speech(int(seconds * 1000), seed=int(seconds * 10))
            turn = await call.say(said)
            _one_final(turn)
            assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
            # The echo is the caller's utterance: its length matches what was said.
            echoed_ms = len(turn.audio) / 8
            assert seconds * 1000 - 100 <= echoed_ms <= seconds * 1000 + 500
            assert turn.time_of("END_OF_INPUT") < next(t for t, w in turn.timeline if "audio" in w)
        tones = await call.dtmf("123")
        _one_final(tones)
        assert tones.prompt_texts == ["You pressed 1 2 3"]
        assert len(tones.audio) > 3 * 8 * 100
        transfer = await call.dtmf("0")
        _one_final(transfer)
        assert transfer.events == ["TRANSFER_TO_AGENT"]
        assert transfer.event_metadata == {"reason": "caller_request"}
        assert not transfer.final.HasField("input_handling_config")
        assert all(r.kind != "start_of_dtmf" or len(r.responses) == 1 for r in call.history)
    log = "".join(echo_process.lines)
    assert "test-token" not in log


async def test_sigterm_drains_and_exits_zero(echo_process: ServedProcess) -> None:
    assert await echo_process.stop(signal.SIGTERM) == 0
    assert "draining" in echo_process.output


async def test_second_signal_forces_exit_while_an_rpc_is_open() -> None:
    env = {"BYOVA_MEDIA_DRAIN_TIMEOUT_S": "60"}
    async with (
        serve_process("--plugin", "echo", env=env) as served,
        WebexSimulator(f"127.0.0.1:{served.port}", realtime=True) as sim,
    ):
        # Silence keeps an audio RPC open (no END_OF_INPUT ever comes).
        silence = np.zeros(8 * 20_000, dtype=np.int16)
        talking = asyncio.create_task(sim.call("echo").say(silence, trail_silence_ms=0))
        await asyncio.sleep(0.5)
        served.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert served.proc.returncode is None  # draining: waiting for the open RPC
        assert await served.stop(signal.SIGTERM, timeout_s=15) == 0
        talking.cancel()
        await asyncio.gather(talking, return_exceptions=True)
    assert "second signal" in served.output


async def test_call_command_prints_a_timeline_and_saves_prompts(
    echo_process: ServedProcess, tmp_path: Path, speech: Any
) -> None:
    wav = tmp_path / "in.wav"
    wav.write_bytes(pcm_wav(speech(900, sample_rate=16000), 16000))
    out_dir = tmp_path / "prompts"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "byova_media.cli",
        "call",
        f"127.0.0.1:{echo_process.port}",
        "--wav",
        str(wav),
        "--dtmf",
        "12",
        "--save-prompts",
        str(out_dir),
        "--fast",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "START_OF_INPUT" in text and "END_OF_INPUT" in text and "completed OK" in text
    saved = sorted(out_dir.glob("*.wav"))
    assert len(saved) == 3  # welcome, echo, DTMF tones
    assert read_wav(saved[1].read_bytes()).sample_rate == 8000


def test_unknown_setting_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "byova_media.cli", "serve", "--plugin", "echo"],
        env={**os.environ, "BYOVA_MEDIA_NOPE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown setting BYOVA_MEDIA_NOPE" in done.stderr


def test_unknown_plugin_is_a_clear_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "byova_media.cli", "serve", "--plugin", "no_such_plugin_xyz"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no_such_plugin_xyz" in done.stderr and "byova-media plugins" in done.stderr


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--tls-cert-file", "cert.pem"], "tls_key_file"),
        (["--tls-key-file", "key.pem"], "tls_cert_file"),
        (["--tls-client-ca-file", "ca.pem"], "tls_client_ca_file"),
    ],
)
def test_half_a_tls_configuration_is_refused_not_served_plaintext(
    flags: list[str], named: str
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "byova_media.cli",
            "serve",
            "--plugin",
            "echo",
            "--port",
            "0",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert named in lines[0]
