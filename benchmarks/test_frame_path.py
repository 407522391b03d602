"""The per-frame inbound path (decode → jitter buffer → VAD → turn state) beside references.

Each case consumes one audio RPC of 500 frames (10 s of 20 ms μ-law) through
``AudioTurn.read``, the code the servicer runs per RPC; divide by 500 for one frame.
The references consume the same requests through the same async iteration and do only:
nothing, the bare C decode (``audioop.ulaw2lin``), or an ``asyncio.Queue`` round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import numpy as np
import pytest

from byova_echo import EchoAgent
from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.agent import AgentSpec
from byova_media.app import App
from byova_media.audio._audioop import audioop
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.vad import EnergyVAD
from byova_media.audio_turn import AudioTurn
from byova_media.config import Config
from byova_media.conversation import Conversation, ConversationRegistry
from byova_media.loadtest.scenario import speech_pcm
from byova_media.plugins import PluginHost

FRAMES = 500
GROUP = "frame path: 500 frames (10 s) of one audio RPC"


def _requests(speech: bool) -> list[pb.VoiceVARequest]:
    pcm = np.zeros(160 * FRAMES, dtype=np.int16)
    if speech:  # 200 ms of silence, then speech to the end: no END_OF_INPUT cuts it short
        pcm[1600:] = speech_pcm(20 * FRAMES - 200, seed=7)
    ulaw = pcm_to_ulaw(pcm)
    first = pb.VoiceVARequest(
        conversation_id="bench",
        audio_input=pb.VoiceInput(encoding=pb.VoiceInput.MULAW_FORMAT, sample_rate_hertz=8000),
    )
    return [first] + [
        pb.VoiceVARequest(
            conversation_id="bench", audio_input=pb.VoiceInput(caller_audio=ulaw[i : i + 160])
        )
        for i in range(0, len(ulaw), 160)
    ]


SILENCE = _requests(speech=False)
SPEECH = _requests(speech=True)


async def _iterate(requests: list[pb.VoiceVARequest]) -> AsyncIterator[pb.VoiceVARequest]:
    for request in requests:
        yield request


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def conversation() -> Conversation:
    app = App(config=Config(), plugins=PluginHost.create(discover=False))
    spec = AgentSpec("echo", lambda call: EchoAgent())
    return ConversationRegistry(app, {"echo": spec}, "echo").create("bench", spec, "org", "trk")


def _run(
    benchmark: pytest.FixtureRequest,
    loop: asyncio.AbstractEventLoop,
    work: Callable[[], Awaitable[None]],
) -> None:
    benchmark.group = GROUP  # type: ignore[attr-defined]
    benchmark(lambda: loop.run_until_complete(work()))  # type: ignore[operator]


@pytest.mark.parametrize("audio", ["silence", "speech"])
def test_audio_turn_read(
    benchmark: pytest.FixtureRequest,
    loop: asyncio.AbstractEventLoop,
    conversation: Conversation,
    audio: str,
) -> None:
    requests = SPEECH if audio == "speech" else SILENCE

    async def work() -> None:
        turn = AudioTurn(conversation, EnergyVAD)
        await turn.read(requests[0], _iterate(requests[1:]))
        assert turn.frames == FRAMES
        assert turn.detector is not None and turn.detector.in_speech == (audio == "speech")

    _run(benchmark, loop, work)


def test_reference_iteration_only(
    benchmark: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop
) -> None:
    async def work() -> None:
        async for request in _iterate(SPEECH):
            request.audio_input.caller_audio  # noqa: B018 - the field access is the work

    _run(benchmark, loop, work)


def test_reference_bare_ulaw2lin(
    benchmark: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop
) -> None:
    async def work() -> None:
        async for request in _iterate(SPEECH):
            audioop.ulaw2lin(request.audio_input.caller_audio, 2)

    _run(benchmark, loop, work)


def test_reference_queue_round_trip(
    benchmark: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop
) -> None:
    async def work() -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        async for request in _iterate(SPEECH):
            queue.put_nowait(request.audio_input.caller_audio)
            await queue.get()

    _run(benchmark, loop, work)
