"""Operability signals after real calls: Prometheus values on /metrics, and ids in the logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import byova_media
from byova_media.agent import Agent, AgentSpec, Reply, SessionStart, Utterance
from byova_media.call import Call
from byova_media.logs import setup_logging


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _metrics(server: Any) -> dict[Any, float]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    return _samples(response.text)


async def test_metrics_after_a_call(byova_server: Any, webex: Any, speech: Any) -> None:
    server = await byova_server(plugins=["echo"], http_port=0, max_conversations=1)
    sim = await webex(server)
    call = sim.call("echo")
    await call.start()
    during = await _metrics(server)
    assert _value(during, "byova_active_conversations") == 1
    assert _value(during, "byova_active_rpcs") == 0
    turn = await call.say(np.asarray(speech(800)), trail_silence_ms=1200)
    assert turn.code == grpc.StatusCode.OK
    refused = await sim.call("echo").start()
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    await call.dtmf("1")
    await call.hang_up()

    m = await _metrics(server)
    assert _value(m, "byova_active_conversations") == 0
    for kind in ("session_start", "audio", "start_of_dtmf", "dtmf", "session_end"):
        assert _value(m, "byova_rpcs_total", kind=kind, status="OK") == 1, kind
    assert _value(m, "byova_rpcs_total", kind="unknown", status="RESOURCE_EXHAUSTED") == 1
    assert _value(m, "byova_admission_rejections_total", reason="max_conversations") == 1
    # Every frame the server kept counts once; the three tiny start-of-call bytes do not.
    assert 0 < _value(m, "byova_frames_in_total") <= turn.frames_sent
    assert _value(m, "byova_frames_late_total") == 0
    assert _value(m, "byova_frames_concealed_total") == 0
    # One FINAL per RPC, plus START_OF_INPUT/END_OF_INPUT (FINAL-typed by default).
    assert _value(m, "byova_replies_total", type="final") == 5 + 2
    assert _value(m, "byova_replies_total", type="chunk") >= 2  # welcome + echo
    # CHUNK responses are exactly the audio chunks.
    assert _value(m, "byova_audio_chunks_out_total") == _value(
        m, "byova_replies_total", type="chunk"
    )
    assert _value(m, "byova_output_events_total", event="START_OF_INPUT") == 1
    assert _value(m, "byova_output_events_total", event="END_OF_INPUT") == 1
    assert _value(m, "byova_turn_latency_seconds_count") == 1
    assert _value(m, "byova_turn_latency_seconds_sum") > 0
    assert _value(m, "byova_plugin_errors_total", plugin="echo") == 0
    assert ("byova_jws_rejections_total", ()) not in m  # labelled: no series until a rejection


class _Failing(Agent):
    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        raise RuntimeError("boom")

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        return Reply()


class _FailingPlugin:
    @byova_media.hookimpl
    def byova_register_agents(self, app: Any, register: Any) -> None:
        register(AgentSpec("failing", lambda call: _Failing()))


async def test_plugin_errors_are_counted_per_agent(byova_server: Any, webex: Any) -> None:
    server = await byova_server(extra_plugins=[("failing", _FailingPlugin())], http_port=0)
    result = await (await webex(server)).call("failing").start()
    assert result.code == grpc.StatusCode.OK and result.events == ["TRANSFER_TO_AGENT"]
    m = await _metrics(server)
    assert _value(m, "byova_plugin_errors_total", plugin="failing") == 1


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The root logger as ``setup_logging(format="json")`` makes it, writing to a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("DEBUG", "json")
    buffer = io.StringIO()
    for handler in root.handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


async def test_json_logs_carry_conversation_and_tracking_ids(
    byova_server: Any, webex: Any, speech: Any, json_logs: io.StringIO
) -> None:
    server = await byova_server(plugins=["echo"])
    call = (await webex(server)).call("echo")
    await call.start()
    await call.say(np.asarray(speech(600)), trail_silence_ms=1200)
    await call.hang_up()
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines() if line]
    echoed = [line for line in lines if line["msg"].startswith("echoing")]
    assert len(echoed) == 1
    assert echoed[0]["conversation_id"] == call.conversation_id
    assert echoed[0]["tracking_id"].startswith("SIM_")
    assert echoed[0]["level"] == "DEBUG" and echoed[0]["logger"]
    # Lines logged outside any call carry "-" rather than another call's ids.
    outside = [line for line in lines if "serving VoiceVirtualAgent" in line["msg"]]
    assert all(line["conversation_id"] == "-" for line in outside)
