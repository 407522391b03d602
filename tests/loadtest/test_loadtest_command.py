"""`byova-media loadtest` against a real `serve --plugin echo` process, a few calls, bounded."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from byova_media.audio.wav import pcm_wav
from byova_media.loadtest.caller import run_callers
from byova_media.loadtest.scenario import Scenario, parse_script, speech_pcm
from byova_media.loadtest.sink import serve_sink

READY = re.compile(r"serving VoiceVirtualAgent on [\d.]+:(\d+), HTTP on port (\d+)")


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[int, int, int]]:
    """A real `byova-media serve --plugin echo` on 127.0.0.1; yields (port, pid, http port)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "byova_media.cli", "serve", "--plugin", "echo",
        "--host", "127.0.0.1", "--port", "0", "--http-port", "0",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    port = http_port = 0
    while not port:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "server exited before it was ready"
        if match := READY.search(line):
            port, http_port = int(match.group(1)), int(match.group(2))

    async def drain() -> None:
        assert proc.stdout is not None
        async for _ in proc.stdout:
            pass

    pump = asyncio.create_task(drain())
    yield port, proc.pid, http_port
    proc.terminate()
    await asyncio.wait_for(proc.wait(), 30)
    await pump


async def _loadtest(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "byova_media.cli", "loadtest", *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow  # two steps against two servers in real time: about 15 s
async def test_loadtest_against_echo_with_baseline(
    echo_server: tuple[int, int, int], tmp_path: Path
) -> None:
    port, pid, _ = echo_server
    report, chart = tmp_path / "report.json", tmp_path / "chart.png"
    code, out, err = await _loadtest(
        f"127.0.0.1:{port}", "--calls", "2,3", "--duration", "2.5", "--ramp", "0.3",
        "--script", "say:700,dtmf:1", "--server-pid", str(pid), "--baseline",
        "--idle-conversations", "20", "--json", str(report), "--chart", str(chart),
    )  # fmt: skip
    assert code == 0, out + err
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "x3" in err  # the progress bar went to stderr
    doc = json.loads(report.read_text())
    assert doc["machine"]["cpus"] and doc["scenario"]["script"] == ["say:700", "dtmf:1"]
    steps = {(s["label"], s["concurrency"]): s for s in doc["steps"]}
    assert set(steps) == {("byova", 2), ("byova", 3), ("sink", 2), ("sink", 3)}
    for (_label, calls), step in steps.items():
        assert step["calls_completed"] >= calls and step["calls_failed"] == 0, step
        assert step["rpc_errors"] == {}
        assert step["frames_sent"] > 50 * calls  # at least a second of audio per call
        assert step["frames_sent"] <= step["frames_due"]
        assert step["latency_ms"]["n"] >= calls
        assert 0 <= step["latency_ms"]["p50"] <= step["latency_ms"]["p99"]
        server = step["server"]
        assert server["cpu_s"] > 0 and server["cpu_us_per_frame"] > 0
        assert server["rss_peak_mb"] > 10
    # Calls of one script pass (speech, then a key) are placed back to back.
    assert steps[("byova", 3)]["turns"] == 2 * steps[("byova", 3)]["calls_completed"]
    assert doc["idle"]["conversations"] == 20
    ratios = {r["concurrency"]: r for r in doc["summary"]["vs_sink"]}
    assert set(ratios) == {2, 3} and ratios[3]["cpu_per_frame_ratio"] > 0
    assert set(doc["summary"]["max_clean_concurrency"]) == {"byova", "sink"}
    assert re.search(r"byova x3 +calls ok +\d+ failed +0", out)


async def test_loadtest_turns_mode_without_chart(
    echo_server: tuple[int, int, int], tmp_path: Path
) -> None:
    port, _, http_port = echo_server
    report = tmp_path / "turns.json"
    code, out, _ = await _loadtest(
        f"127.0.0.1:{port}", "--calls", "2", "--turns", "2", "--script", "say:600",
        "--ramp", "0", "--no-chart", "--no-progress", "--json", str(report),
        "--metrics-url", f"http://127.0.0.1:{http_port}/metrics",
    )  # fmt: skip
    assert code == 0, out
    (step,) = json.loads(report.read_text())["steps"]
    assert step["turns"] == 4 and step["calls_completed"] == 2
    assert "server" not in step  # no --server-pid: no server figures
    # The server's own account of the step, from its /metrics.
    counters = step["server_metrics"]
    assert counters["byova_rpcs_total{kind=audio,status=OK}"] == 4
    assert counters["byova_rpcs_total{kind=session_start,status=OK}"] == 2
    assert 0 < counters["byova_frames_in_total"] <= step["frames_sent"]
    assert not (tmp_path / "loadtest.png").exists()


async def test_failed_calls_make_the_command_fail(tmp_path: Path) -> None:
    # Nothing listens on this port once the sink has stopped: every call fails, fast.
    server, port = await serve_sink()
    await server.stop(0)
    code, _, _ = await _loadtest(
        f"127.0.0.1:{port}", "--calls", "1", "--turns", "1", "--ramp", "0", "--no-chart",
        "--no-progress", "--json", str(tmp_path / "r.json"),
    )  # fmt: skip
    assert code == 1
    (step,) = json.loads((tmp_path / "r.json").read_text())["steps"]
    # SESSION_START and the hang-up were both refused at the transport.
    assert step["calls_failed"] == 1 and step["rpc_errors"] == {"UNAVAILABLE": 2}
    assert "session_start" in step["error_details"]["UNAVAILABLE"]


async def test_bad_arguments_are_refused_before_any_call(tmp_path: Path) -> None:
    code, _, err = await _loadtest("127.0.0.1:1", "--calls", "0")
    assert code == 2 and "1..5000" in err
    code, _, err = await _loadtest("127.0.0.1:1", "--script", "sing:100")
    assert code == 2 and "say:<ms" in err
    code, _, err = await _loadtest("127.0.0.1:1", "--idle-conversations", "5")
    assert code == 2 and "--server-pid" in err
    code, _, err = await _loadtest("127.0.0.1:1", "--turns", "2", "--long-calls")
    assert code == 2 and "--long-calls needs --duration" in err
    code, _, err = await _loadtest("127.0.0.1:1", "--tls-cert", str(tmp_path / "c.pem"))
    assert code == 2 and "both a client certificate and its key" in err
    code, _, err = await _loadtest("127.0.0.1:1", "--token-file", str(tmp_path / "none"))
    assert code == 2 and "is not a readable file" in err
    code, _, err = await _loadtest("127.0.0.1:1", "--token", "a", "--token-file", "b")
    assert code == 2 and "not allowed with" in err
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    code, _, err = await _loadtest("127.0.0.1:1", "--speech-wav", str(broken))
    assert code == 2 and f"--speech-wav {broken}:" in err


def test_recorded_speech_is_resampled_and_repeated_to_the_step_length() -> None:
    tone = (8000 * np.sin(2 * np.pi * 400 * np.arange(1600) / 16000)).astype(np.int16)
    pcm = speech_pcm(250, recorded=pcm_wav(tone, 16000))  # 100 ms of 16 kHz audio
    assert pcm.dtype == np.int16 and len(pcm) == 2000  # 250 ms at 8 kHz
    np.testing.assert_array_equal(pcm[:800], pcm[800:1600])  # the recording, repeated
    spectrum = np.abs(np.fft.rfft(pcm[:800]))
    assert np.argmax(spectrum) * 8000 / 800 == 400  # still a 400 Hz tone at 8 kHz
    assert not np.array_equal(pcm, speech_pcm(250))  # not the synthetic voice


async def test_long_calls_hold_one_call_per_caller_for_the_whole_step() -> None:
    server, port = await serve_sink()
    try:
        scenario = Scenario(
            calls=2,
            duration_s=2.0,
            script=parse_script("say:200,dtmf:1"),
            ramp_s=0,
            lead_silence_ms=0,
            trail_silence_ms=100,
            long_calls=True,
        )
        tally = await run_callers(f"127.0.0.1:{port}", scenario, scenario.calls)
    finally:
        await server.stop(0)
    # One call per caller, many passes through the two-step script in each.
    assert tally.calls_completed == 2 and tally.calls_failed == 0
    assert tally.turns > 2 * 2 * 2


async def test_callers_in_process_against_the_sink() -> None:
    server, port = await serve_sink()
    try:
        scenario = Scenario(
            calls=3, duration_s=None, turns=2, script=parse_script("say:300,dtmf:12#"), ramp_s=0
        )
        tally = await run_callers(f"127.0.0.1:{port}", scenario, scenario.calls)
    finally:
        await server.stop(0)
    assert tally.calls_completed == 3 and tally.calls_failed == 0 and tally.turns == 6
    # No END_OF_INPUT from the sink: every frame of lead, speech and trail is sent.
    assert tally.frames_sent == 3 * (10 + 15 + 75)
    assert len(tally.latencies_ms) == 3 and tally.active == 0
