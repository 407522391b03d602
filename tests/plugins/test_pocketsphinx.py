"""The pocketsphinx recogniser on synthesised telephone speech: batch, streaming, options."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pydantic import ValidationError

from byova_media.adapters import SpeechToText
from byova_media.app import App
from byova_media.config import Config
from byova_media.plugins import PluginHost
from byova_pocketsphinx import PocketsphinxSettings, PocketsphinxSTT
from tests.plugins._speech import DEMO_GRAMMAR, spoken, telephone

PHRASES = ["i want to talk to an agent", "what are your opening hours", "what is your address"]


@pytest.fixture(scope="module")
def stt() -> PocketsphinxSTT:
    return PocketsphinxSTT(PocketsphinxSettings(grammar=DEMO_GRAMMAR))


@pytest.mark.parametrize("phrase", PHRASES)
async def test_grammar_recognises_telephone_speech(stt: PocketsphinxSTT, phrase: str) -> None:
    assert isinstance(stt, SpeechToText)
    pcm, rate = await spoken(phrase)
    result = await stt.transcribe(telephone(pcm, rate), 8000)
    assert result.is_final
    assert result.text == phrase


async def test_streaming_gives_growing_partials_and_the_same_final(stt: PocketsphinxSTT) -> None:
    pcm, rate = await spoken(PHRASES[0])
    # What the pipeline streams: the turn, whose end is the VAD's 700 ms of silence.
    audio = np.concatenate([telephone(pcm, rate), np.zeros(5600, np.int16)])
    stream = stt.open_stream(8000)
    partials = []
    for i in range(0, len(audio), 160):
        partial = await stream.feed(audio[i : i + 160])
        if partial is not None:
            assert not partial.is_final
            partials.append(partial.text)
    final = await stream.finish()
    assert final.is_final and final.text == PHRASES[0]
    assert partials and partials[0] != final.text  # partials came before the end


async def test_dropped_stream_returns_its_decoder(stt: PocketsphinxSTT) -> None:
    pcm, rate = await spoken("goodbye")
    audio = telephone(pcm, rate)
    stream = stt.open_stream(8000)
    for i in range(0, len(audio), 160):
        await stream.feed(audio[i : i + 160])
    await stream.aclose()
    await stream.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await stream.feed(audio[:160])
    # The pooled decoder (its utterance ended) decodes the next call correctly.
    assert (await stt.transcribe(audio, 8000)).text == "goodbye"


async def test_a_reused_decoder_hears_like_a_new_one() -> None:
    """A pooled decoder forgets what it adapted to: one call's audio never changes another's.

    Its cepstral mean follows what it hears; after a stream that heard 10 s of silence
    before the phrase, the reused decoder heard the phrase alone as "... a human".
    """
    pcm, rate = await spoken(PHRASES[0])
    audio = np.concatenate([telephone(pcm, rate), np.zeros(5600, np.int16)])

    async def stream(stt: PocketsphinxSTT, pcm: np.ndarray) -> str:
        s = stt.open_stream(8000)
        for i in range(0, len(pcm), 160):
            await s.feed(pcm[i : i + 160])
        return (await s.finish()).text

    fresh = PocketsphinxSTT(PocketsphinxSettings(grammar=DEMO_GRAMMAR, max_idle_decoders=0))
    pooled = PocketsphinxSTT(PocketsphinxSettings(grammar=DEMO_GRAMMAR, max_idle_decoders=1))
    decoder = pooled.acquire()
    initial = decoder.get_cmn(False)
    pooled.release(decoder)
    waited = np.concatenate([np.zeros(80_000, np.int16), audio])
    for pcm in (audio, waited, audio, waited):
        assert await stream(pooled, pcm) == await stream(fresh, pcm)
        decoder = pooled.acquire()
        assert decoder.get_cmn(False) == initial
        pooled.release(decoder)


async def test_decoding_does_not_block_the_event_loop(stt: PocketsphinxSTT) -> None:
    pcm, rate = await spoken("what are your opening hours. " * 6)
    audio = telephone(pcm, rate)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await stt.transcribe(audio, 8000)
    done.set()
    await task
    assert ticks > 1


async def test_without_noise_floor_the_grammar_search_fails() -> None:
    """Why ``dither_dbfs`` exists: band-limited, digitally silent audio defeats the model."""
    plain = PocketsphinxSTT(PocketsphinxSettings(grammar=DEMO_GRAMMAR, dither_dbfs=None))
    padded = []
    for phrase in PHRASES:
        pcm, rate = await spoken(phrase)
        audio = telephone(pcm, rate)
        padded.append((phrase, np.concatenate([np.zeros(1600, np.int16), audio])))
    misses = [p for p, a in padded if (await plain.transcribe(a, 8000)).text != p]
    assert misses


async def test_keyphrase_mode_runs() -> None:
    stt = PocketsphinxSTT(PocketsphinxSettings(keyphrases=("goodbye", "agent")))
    pcm, rate = await spoken("goodbye")
    result = await stt.transcribe(telephone(pcm, rate), 8000)
    assert set(result.text.split()) <= {"goodbye", "agent"}


def test_grammar_and_keyphrases_are_exclusive() -> None:
    with pytest.raises(ValidationError):
        PocketsphinxSTT.from_options({"grammar": DEMO_GRAMMAR, "keyphrases": ["agent"]})
    with pytest.raises(ValidationError):
        PocketsphinxSTT.from_options({"model": "x"})


def test_registered_as_pocketsphinx() -> None:
    host = PluginHost.create(["pocketsphinx"], discover=False)
    stt = host.stts(App(Config(), host))["pocketsphinx"]({"streaming": False})
    assert isinstance(stt, PocketsphinxSTT)
    assert stt.streaming is False
