"""The timeline chart: well-formed SVG with one lane per RPC, from the server or the simulator."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from byova_media.audio.wav import pcm_wav
from byova_media.cli import main
from byova_media.inspector import render_svg
from byova_media.inspector.simulated import call_json, write_timeline

_SVG = "{http://www.w3.org/2000/svg}"


def _lanes(svg: str) -> list[ElementTree.Element]:
    root = ElementTree.fromstring(svg)
    return [g for g in root.iter(f"{_SVG}g") if g.get("class") == "lane"]


def _events(lane: ElementTree.Element) -> list[str]:
    return [
        g.get("data-event", "") for g in lane.iter(f"{_SVG}g") if g.get("class") == "mark event"
    ]


async def test_a_simulated_call_draws_the_servers_protocol(
    byova_server: Any, webex: Any, speech: Any, tmp_path: Path
) -> None:
    await byova_server(plugins=["echo"])
    call = (await webex()).call("echo")
    await call.start()
    await call.say(speech(700))
    await call.dtmf("0")
    data = call_json(call)
    lanes = _lanes(render_svg(data))
    assert [lane.get("data-kind") for lane in lanes] == [r.kind for r in call.history]
    assert _events(lanes[1]) == ["START_OF_INPUT", "END_OF_INPUT"]
    assert _events(lanes[-1]) == ["TRANSFER_TO_AGENT"]
    [turn] = data["turns"]
    assert turn["rpc"] == 1
    assert turn["end_of_input_ms"] <= turn["first_audio_ms"]
    opens = [r["open_ms"] for r in data["rpcs"]]
    assert opens == sorted(opens)
    page = tmp_path / "call.html"
    write_timeline(call, page)
    text = page.read_text()
    assert text.startswith("<!doctype html>")
    assert text.count('class="lane"') == len(call.history)


def test_text_is_escaped_and_the_chart_stays_well_formed() -> None:
    hostile = '<b>"&'
    call = {
        "conversation_id": hostile,
        "rpcs": [
            {
                "index": 0,
                "kind": hostile,
                "open_ms": 0.0,
                "half_close_ms": None,
                "complete_ms": None,
                "status": None,
                "responses": [
                    {
                        "at_ms": 5.0,
                        "type": "FINAL",
                        "event": "CUSTOM_EVENT",
                        "metadata": {"x": hostile},
                        "prompt_text": hostile,
                        "audio_bytes": 0,
                    }
                ],
            }
        ],
    }
    svg = render_svg(call)
    [lane] = _lanes(svg)  # parses: nothing from the wire broke the markup
    assert lane.get("data-kind") == hostile
    assert "<b>" not in svg


async def test_call_command_writes_the_timeline(
    byova_server: Any, tmp_path: Path, speech: Any
) -> None:
    server = await byova_server(plugins=["echo"])
    wav = tmp_path / "in.wav"
    wav.write_bytes(pcm_wav(speech(700), 8000))
    svg = tmp_path / "call.svg"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "byova_media.cli",
        "call",
        f"127.0.0.1:{server.port}",
        "--wav",
        str(wav),
        "--fast",
        "--timeline",
        str(svg),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert f"wrote {svg}" in out.decode()
    lanes = _lanes(svg.read_text())
    assert [lane.get("data-kind") for lane in lanes] == ["session_start", "audio", "session_end"]


def test_call_command_refuses_other_timeline_formats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", "127.0.0.1:1", "--timeline", "x.png"]) == 2
    assert ".html or .svg" in capsys.readouterr().err
