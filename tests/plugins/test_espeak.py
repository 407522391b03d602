"""The eSpeak NG synthesiser: streaming, cancellation, serialised concurrent use, registration."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pydantic import ValidationError

from byova_espeak import EspeakSettings, EspeakTTS
from byova_media.adapters import TextToSpeech
from byova_media.app import App
from byova_media.audio.codecs import Encoding
from byova_media.config import Config
from byova_media.plugins import PluginHost


async def test_speaks_pcm16_at_the_declared_rate_in_several_blocks() -> None:
    tts = EspeakTTS()
    assert isinstance(tts, TextToSpeech)
    assert tts.audio_format.encoding is Encoding.L16
    assert tts.audio_format.sample_rate == 22050
    blocks = [b async for b in tts.synthesize("Hello, this is a longer sentence to speak.")]
    assert len(blocks) > 5  # streamed while synthesised, not in one piece
    pcm = np.frombuffer(b"".join(blocks), dtype=np.int16)
    seconds = len(pcm) / 22050
    assert 1.0 < seconds < 6.0
    assert np.abs(pcm).max() > 3000  # audible, not silence


async def test_empty_text_gives_no_audio() -> None:
    assert [b async for b in EspeakTTS().synthesize("   ")] == []


async def test_closing_the_stream_stops_synthesis() -> None:
    tts = EspeakTTS()
    text = "This is a very long prompt. " * 40
    full = sum(len(b) for b in [b async for b in tts.synthesize("This is a very long prompt. ")])
    stream = tts.synthesize(text)
    got = [await anext(stream), await anext(stream)]
    await stream.aclose()
    assert sum(len(b) for b in got) < full
    # The library is free again at once: the aborted synthesis released its lock.
    again = [b async for b in tts.synthesize("Next.")]
    assert again


async def test_concurrent_calls_are_serialised_and_all_complete() -> None:
    tts = EspeakTTS()

    async def speak(text: str) -> int:
        return sum([len(b) async for b in tts.synthesize(text)])

    sizes = await asyncio.gather(*(speak(f"Caller number {n} is speaking.") for n in range(4)))
    assert all(size > 22050 for size in sizes)


async def test_voice_rate_changes_duration_and_bad_voice_is_an_error() -> None:
    slow = EspeakTTS(EspeakSettings(rate_wpm=100))
    fast = EspeakTTS(EspeakSettings(rate_wpm=300))
    text = "The quick brown fox jumps over the lazy dog."
    n_slow = sum([len(b) async for b in slow.synthesize(text)])
    n_fast = sum([len(b) async for b in fast.synthesize(text)])
    assert n_slow > 1.5 * n_fast
    with pytest.raises(RuntimeError, match="no voice"):
        [b async for b in EspeakTTS(EspeakSettings(voice="xx-nope")).synthesize("hi")]


def test_settings_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        EspeakTTS.from_options({"speed": 3})


def test_registered_as_espeak() -> None:
    host = PluginHost.create(["espeak"], discover=False)
    factories = host.ttss(App(Config(), host))
    tts = factories["espeak"]({"voice": "en-us"})
    assert isinstance(tts, EspeakTTS)
