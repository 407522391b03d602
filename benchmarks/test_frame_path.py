"""The per-frame inbound path (decode → jitter buffer → VAD → turn state) beside references.

Each case consumes one audio RPC of 500 frames (10 s of 20 ms μ-law) through
``AudioTurn.read``, the code the servicer runs per RPC; divide by 500 for one frame.
The references consume the same requests through the same async iteration and do only:
nothing, the bare C decode (``audioop.ulaw2lin``), or an ``asyncio.Queue`` round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio._audioop import audioop
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.vad import EnergyVAD
from byova_media.audio_turn import AudioTurn
from byova_media.conversation import Conversation
from byova_media.loadtest.scenario import speech_pcm

FRAMES = 500
RunAsync = Callable[[str, Callable[[], Awaitable[None]]], None]
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
def conversation(echo_conversation: Callable[..., Conversation]) -> Conversation:
    return echo_conversation()


@pytest.mark.parametrize("audio", ["silence", "speech"])
def test_audio_turn_read(
    run_async: RunAsync,
    conversation: Conversation,
    audio: str,
) -> None:
    requests = SPEECH if audio == "speech" else SILENCE

    async def work() -> None:
        turn = AudioTurn(conversation, EnergyVAD)
        await turn.read(requests[0], _iterate(requests[1:]))
        assert turn.frames == FRAMES
        assert turn.detector is not None and turn.detector.in_speech == (audio == "speech")

    run_async(GROUP, work)


def test_reference_iteration_only(run_async: RunAsync) -> None:
    async def work() -> None:
        async for request in _iterate(SPEECH):
            request.audio_input.caller_audio  # noqa: B018 - the field access is the work

    run_async(GROUP, work)


def test_reference_bare_ulaw2lin(run_async: RunAsync) -> None:
    async def work() -> None:
        async for request in _iterate(SPEECH):
            audioop.ulaw2lin(request.audio_input.caller_audio, 2)

    run_async(GROUP, work)


def test_reference_queue_round_trip(run_async: RunAsync) -> None:
    async def work() -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        async for request in _iterate(SPEECH):
            queue.put_nowait(request.audio_input.caller_audio)
            await queue.get()

    run_async(GROUP, work)
