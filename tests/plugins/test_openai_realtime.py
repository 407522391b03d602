"""The ``openai_realtime`` agent through a real server, against a local Realtime API fake."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

import byova_media
from byova_media.agent import AgentSpec
from byova_media.config import ConfigError
from byova_media.pipeline import Tool
from byova_openai_realtime import RealtimeAgent, RealtimeSettings
from tests.plugins._fake_realtime import Answer, FakeRealtime, serve_fake_realtime

SECRET = "sk-realtime-very-secret"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeRealtime, str]]:
    async with serve_fake_realtime(SECRET) as served:
        yield served


def realtime_env(url: str, **extra: str) -> dict[str, str]:
    settings = {
        "base_url": url,
        "api_key": SECRET,
        # Replies end at the model's response.done; the idle limit is only a safety net,
        # generous because a starved test host can pause the fake's stream.
        "reply_idle_ms": "2000",
        "down_limit_ms": "3000",
        "reconnect_initial_ms": "50",
        **extra,
    }
    return {f"BYOVA_MEDIA_OPENAI_REALTIME_{k.upper()}": v for k, v in settings.items()}


async def start_call(byova_server: Any, webex: Any, url: str, **extra: str) -> Any:
    server = await byova_server(plugins=["openai_realtime"], env=realtime_env(url, **extra))
    return (await webex(server)).call("openai_realtime")


@pytest.mark.parametrize("schema", ["ga", "beta"])
async def test_a_spoken_turn_is_answered_in_the_models_voice(
    byova_server: Any,
    webex: Any,
    fake: tuple[FakeRealtime, str],
    speech: Any,
    caplog: pytest.LogCaptureFixture,
    schema: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    api, url = fake
    api.script = [Answer(400, "Hello, how can I help?"), Answer(700, "We are open nine to five.")]
    call = await start_call(byova_server, webex, url, session_schema=schema)

    welcome = await call.start()
    assert welcome.audio == api.produced[0]  # μ-law from the API, unchanged
    path, headers = api.requests[0]
    assert path == "/v1/realtime?model=gpt-realtime"
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert ("openai-beta" in headers) == (schema == "beta")
    session = api.sessions[0]
    if schema == "ga":
        assert session["audio"]["input"]["turn_detection"] is None  # our VAD takes turns
        assert session["audio"]["output"]["voice"] == "alloy"
    else:
        assert session["turn_detection"] is None and session["voice"] == "alloy"
    assert {t["name"] for t in session["tools"]} == {"transfer_to_agent", "end_call"}
    assert "instructions" in api.of_type("response.create")[0]["response"]  # the greeting

    await asyncio.sleep(len(welcome.audio) / 8000)  # let it play: no barge-in
    turn = await call.say(speech(800))
    assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert turn.audio == api.produced[1]
    kinds = [e["type"] for e in api.received]
    first_append = kinds.index("input_audio_buffer.append")
    assert kinds[first_append:][-3:] == [
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "response.create",
    ]
    appended = sum(len(e["audio"]) * 3 // 4 for e in api.of_type("input_audio_buffer.append"))
    assert 800 * 8 <= appended <= 3000 * 8  # the utterance our VAD cut, with its margins

    bye = await call.hang_up()
    assert bye.final.session_transcript.text.splitlines() == [
        "Agent: Hello, how can I help?",
        "Caller: What are your opening hours?",
        "Agent: We are open nine to five.",
    ]
    # Nothing we log carries the key, at DEBUG either (the fake's own log is not ours).
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "websockets.server")
    assert ours and SECRET not in ours


async def test_barge_in_cancels_and_truncates_at_the_heard_position(
    byova_server: Any,
    webex: Any,
    fake: tuple[FakeRealtime, str],
    speech: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    api, url = fake
    # The answer streams 6 s of audio, then is still generating when the caller cuts in;
    # a short idle limit ends the turn's reply while that audio still plays.
    api.script = [Answer(200), Answer(10_000, pause_at_ms=6000), Answer(300)]
    call = await start_call(byova_server, webex, url, reply_idle_ms="300")
    welcome = await call.start()
    await asyncio.sleep(len(welcome.audio) / 8000)
    answer = await call.say(speech(600))
    assert 0 < len(answer.audio) <= 6000 * 8

    interrupt = await call.say(speech(600))  # at once, while the answer still plays
    assert interrupt.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    await api.wait_for("conversation.item.truncate")
    assert api.cancelled_while_active == 1  # response.cancel reached a running response
    truncate = api.of_type("conversation.item.truncate")[0]
    heard = [int(m) for m in re.findall(r"barge-in after (\d+) of \d+ ms", caplog.text)]
    assert len(heard) == 1
    assert truncate["audio_end_ms"] == heard[0] < 6000  # exactly what the caller heard
    assert api.item_ms[truncate["item_id"]] == 6000  # of the item that was playing
    kinds = [e["type"] for e in api.received]
    assert kinds.index("response.cancel") < kinds.index("conversation.item.truncate")
    assert interrupt.audio == api.produced[2]  # and the next turn is answered


async def test_a_transfer_requested_by_the_model_reaches_webex(
    byova_server: Any, webex: Any, fake: tuple[FakeRealtime, str], speech: Any
) -> None:
    api, url = fake
    transfer = Answer(500, "Let me connect you.", ("transfer_to_agent", {"reason": "billing"}))
    api.script = [Answer(200), transfer]
    call = await start_call(byova_server, webex, url)
    welcome = await call.start()
    await asyncio.sleep(len(welcome.audio) / 8000)
    turn = await call.say(speech(600))
    assert turn.events == ["START_OF_INPUT", "END_OF_INPUT", "TRANSFER_TO_AGENT"]
    assert turn.event_metadata == {"reason": "billing"}
    assert turn.audio == api.produced[1]  # what the model said before handing over


async def test_user_tools_answer_the_model(
    byova_server: Any, webex: Any, fake: tuple[FakeRealtime, str], speech: Any
) -> None:
    api, url = fake
    api.script = [
        Answer(200),
        Answer(0, function_call=("order_status", {"order": "42"})),
        Answer(600),
    ]
    looked_up: list[Any] = []

    async def order_status(call: Any, arguments: Any) -> str:
        looked_up.append(dict(arguments))
        return "shipped yesterday"

    tool = Tool.define("order_status", "Look up an order", order_status)
    settings = RealtimeSettings(base_url=url, api_key=SECRET, reply_idle_ms=2000)

    class Plugin:
        @byova_media.hookimpl
        def byova_register_agents(self, app: Any, register: Any) -> None:
            register(AgentSpec("orders", partial(RealtimeAgent, settings=settings, tools=[tool])))

    server = await byova_server(extra_plugins=[("orders", Plugin())])
    call = (await webex(server)).call("orders")
    welcome = await call.start()
    assert "order_status" in {t["name"] for t in api.sessions[0]["tools"]}
    await asyncio.sleep(len(welcome.audio) / 8000)
    turn = await call.say(speech(600))
    assert looked_up == [{"order": "42"}]
    outputs = [e["item"] for e in api.of_type("conversation.item.create")]
    assert outputs[0]["type"] == "function_call_output"
    assert outputs[0]["output"] == "shipped yesterday"
    assert turn.audio == api.produced[1]  # the model's answer after the tool's result


async def test_server_vad_takes_the_turns(
    byova_server: Any, webex: Any, fake: tuple[FakeRealtime, str], speech: Any
) -> None:
    api, url = fake
    api.script = [Answer(200), Answer(500)]
    call = await start_call(byova_server, webex, url, turn_detection="server")
    welcome = await call.start()
    assert api.sessions[0]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    await asyncio.sleep(len(welcome.audio) / 8000)
    turn = await call.say(speech(800))
    assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]  # from the API's VAD
    assert turn.audio == api.produced[1]
    assert not api.of_type("input_audio_buffer.commit")  # the server committed itself


async def test_rate_limits_and_error_events_are_survived(
    byova_server: Any,
    webex: Any,
    fake: tuple[FakeRealtime, str],
    speech: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, url = fake
    api.refuse_next = [429]  # the first handshake is rate limited: the link retries
    api.script = [Answer(200), Answer(error="rate_limit_exceeded"), Answer(400)]
    server = await byova_server(plugins=["openai_realtime"], env=realtime_env(url))
    call = (await webex(server)).call("openai_realtime")
    welcome = await call.start()
    assert welcome.audio == api.produced[0]
    assert len(api.requests) == 2
    await asyncio.sleep(len(welcome.audio) / 8000)
    failed = await call.say(speech(600))  # the response fails: an empty reply, no crash
    assert failed.final is not None and failed.audio == b""
    registry = server.app.metrics.registry
    labels = {"adapter": "openai_realtime", "kind": "rate_limited"}
    assert registry.get_sample_value("byova_adapter_errors_total", labels) == 1
    assert "rate_limit_exceeded" in caplog.text
    answered = await call.say(speech(600))
    assert answered.audio == api.produced[1]
    assert SECRET not in caplog.text


async def test_a_dropped_session_is_reopened_with_the_call_so_far(
    byova_server: Any, webex: Any, fake: tuple[FakeRealtime, str], speech: Any
) -> None:
    api, url = fake
    api.script = [Answer(200, "Hi."), Answer(300, "Nine to five."), Answer(300)]
    call = await start_call(byova_server, webex, url)
    welcome = await call.start()
    await asyncio.sleep(len(welcome.audio) / 8000)
    first = await call.say(speech(600))
    await asyncio.sleep(len(first.audio) / 8000)
    api.connections[0].transport.abort()  # the network drops the session
    await api.wait_for("session.update", count=2)
    context = api.of_type("conversation.item.create")[0]["item"]["content"][0]["text"]
    assert "Caller: What are your opening hours?" in context
    assert "Agent: Nine to five." in context
    again = await call.say(speech(600))
    assert again.audio == api.produced[2]


async def test_a_missing_key_stops_start_up_with_a_clear_error(byova_server: Any) -> None:
    with pytest.raises(
        ConfigError, match="needs an API key: set BYOVA_MEDIA_OPENAI_REALTIME_API_KEY"
    ):
        await byova_server(plugins=["openai_realtime"])
    with pytest.raises(ConfigError, match="turn_detection"):
        await byova_server(
            plugins=["openai_realtime"],
            env={
                "BYOVA_MEDIA_OPENAI_REALTIME_TURN_DETECTION": "sometimes",
                "BYOVA_MEDIA_OPENAI_REALTIME_API_KEY": SECRET,
            },
        )
    settings = RealtimeSettings(api_key=SECRET)
    assert SECRET not in repr(settings) and SECRET not in repr(settings.connector())
