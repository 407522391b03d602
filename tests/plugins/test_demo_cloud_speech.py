"""The demo agent switched to cloud speech by settings, through a real server call.

The recogniser and the voice are the ``openai`` adapters talking to a local fake of the
audio API; the demo's rules answer. A spoken turn is transcribed, answered and spoken back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.plugins._fake_openai import FakeOpenAI, serve_fake_openai

SECRET = "sk-demo-secret"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    async with serve_fake_openai() as served:
        served[0].api_key = SECRET
        yield served


def cloud_env(base_url: str) -> dict[str, str]:
    return {
        "BYOVA_MEDIA_DEMO_STT": "openai",
        "BYOVA_MEDIA_DEMO_TTS": "openai",
        "BYOVA_MEDIA_OPENAI_BASE_URL": base_url,
        "BYOVA_MEDIA_OPENAI_API_KEY": SECRET,
    }


async def test_spoken_turn_is_transcribed_answered_and_spoken_back(
    byova_server: Any, webex: Any, fake: tuple[FakeOpenAI, str], speech: Any
) -> None:
    server_fake, url = fake
    server_fake.speech_speed = 2.0  # a cloud voice twice as fast as real time
    server_fake.ms_per_char = 10.0
    server = await byova_server(plugins=["demo", "openai"], env=cloud_env(url))
    call = (await webex(server)).call("demo")
    began = time.monotonic()
    welcome = await call.start()
    welcome_text = " ".join(r["input"] for r in server_fake.speech_requests)
    assert "opening hours" in welcome_text  # synthesised sentence by sentence
    # The first CHUNK reached Webex before the fake had finished speaking the welcome.
    first_chunk_at = began + min(t for t, what in welcome.timeline if what.endswith("audio"))
    assert first_chunk_at < server_fake.speech_done_at[-1]
    welcome_requests = len(server_fake.speech_requests)
    await asyncio.sleep(len(welcome.audio) / 8000)  # let it play: no barge-in

    turn = await call.say(speech(800))
    assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert len(server_fake.transcriptions) == 1
    assert server_fake.transcriptions[0]["model"] == "gpt-4o-mini-transcribe"
    spoken = " ".join(r["input"] for r in server_fake.speech_requests[welcome_requests:])
    assert "Monday to Friday" in spoken
    # The answer as synthesised, every byte streamed back (8 B of μ-law per ms).
    answer_ms = [
        max(100, int(len(r["input"]) * 10.0))
        for r in server_fake.speech_requests[welcome_requests:]
    ]
    assert len(turn.audio) == 8 * sum(answer_ms)

    await asyncio.sleep(len(turn.audio) / 8000)
    server_fake.transcript = "I want to talk to an agent."
    transfer = await call.say(speech(800))
    assert transfer.events == ["START_OF_INPUT", "END_OF_INPUT", "TRANSFER_TO_AGENT"]
    assert transfer.final is not None
    transcript = transfer.final.session_transcript.text
    assert "Caller: What are your opening hours?" in transcript
    assert "Caller: I want to talk to an agent." in transcript


async def test_vendor_failure_ends_the_turn_cleanly(
    byova_server: Any,
    webex: Any,
    fake: tuple[FakeOpenAI, str],
    speech: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        **cloud_env(fake[1]),
        "BYOVA_MEDIA_OPENAI_STT_MODEL": "always-500",
        "BYOVA_MEDIA_OPENAI_MAX_RETRIES": "0",
    }
    server = await byova_server(plugins=["demo", "openai"], env=env)
    call = (await webex(server)).call("demo")
    welcome = await call.start()
    await asyncio.sleep(len(welcome.audio) / 8000)
    turn = await call.say(speech(600))
    assert turn.final is not None
    assert turn.events[-1] in ("TRANSFER_TO_AGENT", "SESSION_END")  # the plugin-error ending
    assert SECRET not in caplog.text
    failures = [
        r
        for r in caplog.records
        if "HTTP 500" in r.getMessage() or "HTTP 500" in (r.exc_text or "")
    ]
    assert len(failures) == 1  # logged once, by the engine, with the call's context
    # The server still takes calls.
    again = await (await webex(server)).call("demo").start()
    assert again.final is not None
