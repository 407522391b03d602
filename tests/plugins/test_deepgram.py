"""The ``deepgram`` recogniser against a local server speaking Deepgram's live protocol."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from byova_deepgram import DeepgramSettings, DeepgramSTT, SttError
from byova_media.adapter_metrics import AdapterMetrics
from byova_media.adapters import SpeechToText
from byova_media.app import App
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.config import Config
from byova_media.plugins import PluginHost
from tests.plugins._fake_deepgram import FakeDeepgram, serve_fake_deepgram
from tests.plugins._fake_openai import serve_fake_openai

SECRET = "dg-very-secret-key"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeDeepgram, str]]:
    async with serve_fake_deepgram(SECRET) as served:
        yield served


@pytest.fixture
def app() -> App:
    return App(Config(), PluginHost.create([], discover=False))


Make = Callable[..., DeepgramSTT]


@pytest.fixture
def make(fake: tuple[FakeDeepgram, str], app: App) -> Make:
    metrics = AdapterMetrics(app)

    def build(**settings: Any) -> DeepgramSTT:
        settings.setdefault("api_key", SECRET)
        settings.setdefault("retry_backoff_s", 0.0)
        return DeepgramSTT(DeepgramSettings(base_url=fake[1], **settings), metrics)

    return build


def frames(pcm: np.ndarray) -> list[np.ndarray]:
    return [pcm[i : i + 160] for i in range(0, len(pcm), 160)]


async def until(predicate: Callable[[], object], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - waits on state other tasks change
            await asyncio.sleep(0.01)


async def test_a_turn_streams_partials_then_the_final_text(
    fake: tuple[FakeDeepgram, str], make: Make, app: App, speech: Any
) -> None:
    stt = make(model="nova-2", language="en-US")
    assert isinstance(stt, SpeechToText) and stt.streaming
    stream = stt.open_stream(8000)
    pcm = np.concatenate([speech(1200), np.zeros(8 * 800, np.int16)])  # 0.8 s of silence after
    partials = []
    for frame in frames(pcm):
        partial = await stream.feed(frame)
        if partial is not None:
            partials.append(partial)
        await asyncio.sleep(0.002)  # a little like real time, so results come back
    await until(lambda: stream.endpoint.is_set())  # speech_final / UtteranceEnd
    result = await stream.finish()
    assert result.text == fake[0].says and result.is_final
    assert partials and all(not p.is_final for p in partials)
    assert fake[0].says.startswith(partials[0].text)
    query = fake[0].queries[0]
    assert (query["encoding"], query["sample_rate"], query["channels"]) == ("mulaw", "8000", "1")
    assert (query["model"], query["language"], query["interim_results"]) == (
        "nova-2",
        "en-US",
        "true",
    )
    assert query["vad_events"] == "true" and query["utterance_end_ms"] == "1000"
    assert bytes(fake[0].audio[0]) == pcm_to_ulaw(pcm)  # every frame, in order
    assert fake[0].controls[-1] == "CloseStream"
    await until(lambda: fake[0].close_codes)
    assert fake[0].close_codes == [1000]  # a clean close


async def test_keepalive_holds_the_socket_while_the_caller_is_silent(
    fake: tuple[FakeDeepgram, str], make: Make, speech: Any
) -> None:
    fake[0].idle_timeout_s = 0.5  # the fake gives up sooner than Deepgram's 10 s
    stream = make(keepalive_s=0.1).open_stream(8000)
    await stream.feed(speech(100))
    await until(lambda: fake[0].controls.count("KeepAlive") >= 8)  # > 0.5 s without audio
    assert not fake[0].close_codes
    for frame in frames(speech(600)):
        await stream.feed(frame)
    assert (await stream.finish()).text == fake[0].says


async def test_a_rate_limited_handshake_is_retried_without_losing_audio(
    fake: tuple[FakeDeepgram, str], make: Make, app: App, speech: Any
) -> None:
    fake[0].refuse_next = [429]
    pcm = speech(600)
    assert (await make().transcribe(pcm, 8000)).text == fake[0].says
    assert fake[0].handshakes == 2
    assert bytes(fake[0].audio[0]) == pcm_to_ulaw(pcm)  # held while it retried
    labels = {"adapter": "deepgram", "kind": "rate_limited"}
    assert app.metrics.registry.get_sample_value("byova_adapter_errors_total", labels) == 1
    first_byte = {"adapter": "deepgram"}
    assert (
        app.metrics.registry.get_sample_value("byova_adapter_first_byte_seconds_count", first_byte)
        == 1
    )


async def test_a_bad_key_is_a_clear_error_and_never_shown(
    fake: tuple[FakeDeepgram, str], make: Make, speech: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stt = make(api_key="dg-wrong-but-secret", max_retries=3)
    with pytest.raises(SttError, match="HTTP 401: Invalid credentials") as failed:
        await stt.transcribe(speech(300), 8000)
    assert fake[0].handshakes == 1  # a refused key is not retried
    # Everything our side logged, at DEBUG too (the fake server's own log is not ours).
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "websockets.server")
    assert "Authorization" not in ours  # the websockets library's header dump is off
    for text in (str(failed.value), ours, repr(stt), repr(stt.settings)):
        assert "dg-wrong-but-secret" not in text


async def test_missing_key_and_unknown_settings_are_refused(fake: tuple[FakeDeepgram, str]) -> None:
    host = PluginHost.create(["deepgram"], discover=False)
    factory = host.stts(App(Config(plugin={"deepgram": {}}), host))["deepgram"]
    with pytest.raises(ValueError, match="needs an API key: set BYOVA_MEDIA_DEEPGRAM_API_KEY"):
        factory({})
    with pytest.raises(ValueError, match="modle: unknown setting"):
        factory({"api_key": SECRET, "modle": "x"})
    stt = factory({"base_url": fake[1], "api_key": SECRET, "model": "nova-3-phonecall"})
    assert isinstance(stt, DeepgramSTT) and stt.settings.model == "nova-3-phonecall"


async def test_the_demo_transcribes_with_deepgram_and_answers(
    byova_server: Any, webex: Any, fake: tuple[FakeDeepgram, str], speech: Any
) -> None:
    async with serve_fake_openai() as (voice, voice_url):
        env = {
            "BYOVA_MEDIA_DEMO_STT": "deepgram",
            "BYOVA_MEDIA_DEMO_TTS": "openai",
            "BYOVA_MEDIA_DEEPGRAM_BASE_URL": fake[1],
            "BYOVA_MEDIA_DEEPGRAM_API_KEY": SECRET,
            "BYOVA_MEDIA_OPENAI_BASE_URL": voice_url,
        }
        server = await byova_server(plugins=["demo", "openai", "deepgram"], env=env)
        call = (await webex(server)).call("demo")
        welcome = await call.start()
        await asyncio.sleep(len(welcome.audio) / 8000)
        turn = await call.say(speech(900))
        assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
        answer = " ".join(r["input"] for r in voice.speech_requests)
        assert "Monday to Friday" in answer  # the demo understood "opening hours"
        assert len(turn.audio) > 0
        bye = await call.hang_up()
        assert "Caller: what are your opening hours" in bye.final.session_transcript.text
