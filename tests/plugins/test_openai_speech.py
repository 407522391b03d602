"""The OpenAI-compatible speech adapters against a real local server speaking the audio API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from byova_media.adapter_metrics import AdapterMetrics
from byova_media.adapters import SpeechToText, TextToSpeech
from byova_media.app import App
from byova_media.audio.codecs import pcm_to_ulaw, ulaw_to_pcm
from byova_media.audio.resample import resample
from byova_media.config import Config
from byova_media.plugins import PluginHost
from byova_openai import OpenAISettings, OpenAISpeech, OpenAITranscriber, SttError, TtsError
from tests.plugins._fake_openai import SPEECH_RATE, FakeOpenAI, serve_fake_openai, speech_pcm

SECRET = "sk-test-very-secret-key"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    async with serve_fake_openai() as served:
        served[0].api_key = SECRET
        yield served


@pytest.fixture
def app() -> App:
    return App(Config(), PluginHost.create([], discover=False))


Make = Callable[..., Any]


@pytest.fixture
async def make(fake: tuple[FakeOpenAI, str], app: App) -> AsyncIterator[Make]:
    made: list[Any] = []
    metrics = AdapterMetrics(app)

    def build(kind: type[Any], **settings: Any) -> Any:
        settings.setdefault("retry_backoff_s", 0.0)
        settings.setdefault("api_key", SECRET)
        adapter = kind(OpenAISettings(base_url=fake[1], **settings), metrics)
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        await adapter.aclose()


def metric(app: App, name: str, **labels: str) -> float:
    return app.metrics.registry.get_sample_value(name, labels) or 0.0


# --- speech-to-text ---------------------------------------------------------------


async def test_turn_audio_is_sent_as_a_wav_and_the_text_comes_back(
    fake: tuple[FakeOpenAI, str], make: Make, app: App, speech: Any
) -> None:
    stt = make(OpenAITranscriber, stt_model="whisper-1", language="en", stt_prompt="Springfield")
    assert isinstance(stt, SpeechToText)
    pcm = speech(600)
    fake[0].transcript = "  What is your address?  "
    assert (await stt.transcribe(pcm, 8000)).text == "What is your address?"
    sent = fake[0].transcriptions[0]
    assert (sent["model"], sent["language"], sent["prompt"]) == ("whisper-1", "en", "Springfield")
    assert sent["response_format"] == "json"
    assert sent["wav"].sample_rate == 8000
    assert np.array_equal(sent["wav"].pcm, pcm)  # 16-bit PCM: exactly the turn's samples
    assert metric(app, "byova_adapter_first_byte_seconds_count", adapter="openai_stt") == 1


async def test_ulaw_wav_and_other_rates_are_converted(
    fake: tuple[FakeOpenAI, str], make: Make, speech: Any
) -> None:
    stt = make(OpenAITranscriber, stt_wav="ulaw")
    pcm16k = resample(speech(400), 8000, 16000)
    await stt.transcribe(pcm16k, 16000)
    wav = fake[0].transcriptions[0]["wav"]
    assert wav.sample_rate == 8000 and len(wav.pcm) == 3200
    assert (await stt.transcribe(np.zeros(0, np.int16), 8000)).text == ""
    assert len(fake[0].transcriptions) == 1  # an empty turn is not sent


async def test_the_streaming_interface_transcribes_at_the_end(
    fake: tuple[FakeOpenAI, str], make: Make, speech: Any
) -> None:
    stt = make(OpenAITranscriber)
    stream = stt.open_stream(8000)
    pcm = speech(400)
    for cut in range(0, len(pcm), 160):
        assert await stream.feed(pcm[cut : cut + 160]) is None
    assert (await stream.finish()).text == fake[0].transcript
    assert np.array_equal(fake[0].transcriptions[0]["wav"].pcm, pcm)


async def test_stt_retries_rate_limits_and_server_errors_then_reports(
    fake: tuple[FakeOpenAI, str], make: Make, app: App, speech: Any
) -> None:
    pcm = speech(300)
    assert (await make(OpenAITranscriber, stt_model="rate-limited").transcribe(pcm, 8000)).text
    assert fake[0].attempts["rate-limited"] == 2
    assert metric(app, "byova_adapter_errors_total", adapter="openai_stt", kind="rate_limited") == 1
    with pytest.raises(SttError, match="HTTP 500: The server had an error"):
        await make(OpenAITranscriber, stt_model="always-500", max_retries=1).transcribe(pcm, 8000)
    assert fake[0].attempts["always-500"] == 2
    with pytest.raises(SttError, match="HTTP 400: Invalid file format"):
        await make(OpenAITranscriber, stt_model="bad-request").transcribe(pcm, 8000)
    assert fake[0].attempts["bad-request"] == 1  # a client error is not retried
    with pytest.raises(SttError, match="unreadable transcription"):
        await make(OpenAITranscriber, stt_model="garbage").transcribe(pcm, 8000)
    assert metric(app, "byova_adapter_errors_total", adapter="openai_stt", kind="protocol") == 1


async def test_wrong_key_is_a_clear_error_that_never_shows_a_key(
    fake: tuple[FakeOpenAI, str], make: Make, speech: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stt = make(OpenAITranscriber, api_key="sk-wrong-but-secret")
    with pytest.raises(SttError, match="HTTP 401: Incorrect API key") as failed:
        await stt.transcribe(speech(300), 8000)
    tts = make(OpenAISpeech, api_key="sk-wrong-but-secret")
    with pytest.raises(TtsError, match="HTTP 401") as failed_tts:
        _ = [a async for a in tts.synthesize("Hello.")]
    for text in (str(failed.value), str(failed_tts.value), caplog.text, repr(stt), repr(tts)):
        assert "sk-wrong-but-secret" not in text
        assert "secret" not in repr(stt.settings)


# --- text-to-speech ---------------------------------------------------------------


def expected_ulaw(text: str, fake: FakeOpenAI) -> bytes:
    pcm = np.frombuffer(speech_pcm(text, fake.ms_per_char), dtype="<i2")
    return pcm_to_ulaw(resample(pcm, SPEECH_RATE, 8000))


@pytest.mark.parametrize("tts_format", ["pcm", "wav"])
async def test_speech_streams_in_and_is_resampled_to_ulaw(
    fake: tuple[FakeOpenAI, str], make: Make, app: App, tts_format: str
) -> None:
    tts = make(OpenAISpeech, tts_format=tts_format, voice="coral", tts_speed=1.25)
    assert isinstance(tts, TextToSpeech)
    assert tts.audio_format.sample_rate == 8000
    text = "We are open Monday to Friday, from nine to five, at one hundred Main Street."
    pieces = [piece async for piece in tts.synthesize(text)]
    assert len(pieces) > 3  # converted as it arrived, not at the end
    audio = b"".join(pieces)
    want = expected_ulaw(text, fake[0])
    assert len(audio) == len(want)
    # Streamed resampling equals resampling the whole (to μ-law rounding).
    diff = np.abs(ulaw_to_pcm(audio).astype(int) - ulaw_to_pcm(want).astype(int))
    assert np.percentile(diff, 99) <= 64
    body = fake[0].speech_requests[0]
    assert body == {
        "model": "gpt-4o-mini-tts",
        "input": text,
        "voice": "coral",
        "response_format": tts_format,
        "speed": 1.25,
    }
    assert metric(app, "byova_adapter_first_byte_seconds_count", adapter="openai_tts") == 1


async def test_first_audio_leaves_before_synthesis_finishes(
    fake: tuple[FakeOpenAI, str], make: Make
) -> None:
    fake[0].speech_speed = 1.0  # the fake speaks at real time
    tts = make(OpenAISpeech)
    stream = tts.synthesize("A sentence long enough to take a second or more to speak aloud.")
    await anext(stream)
    first_at = time.monotonic()
    _ = [piece async for piece in stream]
    assert first_at < fake[0].speech_done_at[0]


async def test_speech_retries_only_before_the_first_byte(
    fake: tuple[FakeOpenAI, str], make: Make, app: App
) -> None:
    audio = b"".join(
        [a async for a in make(OpenAISpeech, tts_model="rate-limited").synthesize("Hi.")]
    )
    assert audio and fake[0].attempts["rate-limited"] == 2
    assert metric(app, "byova_adapter_errors_total", adapter="openai_tts", kind="rate_limited") == 1
    with pytest.raises(TtsError, match="HTTP 500"):
        _ = [a async for a in make(OpenAISpeech, tts_model="always-500").synthesize("Hi.")]
    assert fake[0].attempts["always-500"] == 3
    tts = make(OpenAISpeech, tts_model="hang-after-first", read_timeout_s=0.3, max_retries=3)
    got: list[bytes] = []

    async def consume() -> None:
        async for piece in tts.synthesize("A longer sentence that hangs half way."):
            got.append(piece)

    with pytest.raises(TtsError, match="stalled"):
        await consume()
    assert got  # the first audio was used: a retry would repeat it
    assert fake[0].attempts["hang-after-first"] == 1
    assert metric(app, "byova_adapter_errors_total", adapter="openai_tts", kind="timeout") == 1


async def test_closing_the_stream_ends_the_request(
    fake: tuple[FakeOpenAI, str], make: Make
) -> None:
    fake[0].speech_speed = 1.0
    tts = make(OpenAISpeech)
    stream = tts.synthesize("A sentence long enough to take a second or more to speak aloud.")
    await anext(stream)
    await stream.aclose()  # barge-in
    await asyncio.sleep(0.3)
    assert fake[0].speech_done_at == []  # the server's write failed: the client hung up


async def test_registered_parts_take_plugin_settings_and_a_missing_key_is_refused(
    fake: tuple[FakeOpenAI, str],
) -> None:
    host = PluginHost.create(["openai"], discover=False)
    settings = {"base_url": fake[1], "api_key": SECRET, "voice": "sage", "stt_model": "w"}
    app = App(Config(plugin={"openai": settings}), host)
    stt = host.stts(app)["openai"]({})
    tts = host.ttss(app)["openai"]({"model": "tts-1"})
    assert isinstance(stt, OpenAITranscriber) and stt.settings.stt_model == "w"
    assert isinstance(tts, OpenAISpeech) and tts.settings.tts_model == "tts-1"
    assert tts.settings.voice == "sage"
    await stt.aclose()
    await tts.aclose()
    cloud = App(Config(plugin={"openai": {}}), host)
    for factories in (host.stts(cloud), host.ttss(cloud), host.llms(cloud)):
        with pytest.raises(ValueError, match="needs an API key: set BYOVA_MEDIA_OPENAI_API_KEY"):
            factories["openai"]({})
