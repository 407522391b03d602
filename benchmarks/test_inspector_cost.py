"""What the call inspector costs on the frame path, off and on, beside the bare path.

Each case consumes one audio RPC of 500 frames (10 s of 20 ms μ-law) through
``AudioTurn.read`` as the servicer runs it. Off, the servicer hands ``AudioTurn`` the
request stream untouched (the reference); on, the stream is the inspector's wrapper,
which notes each message (and keeps the caller audio with ``record_audio``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.vad import EnergyVAD
from byova_media.audio_turn import AudioTurn
from byova_media.conversation import Conversation
from byova_media.inspector import CallInspector
from byova_media.loadtest.scenario import speech_pcm
from byova_media.metrics import Metrics
from byova_media.rpc import RpcOutput

FRAMES = 500
RunAsync = Callable[[str, Callable[[], Awaitable[None]]], None]
GROUP = "inspector: 500 frames (10 s) of one audio RPC"


def _requests() -> list[pb.VoiceVARequest]:
    pcm = np.zeros(160 * FRAMES, dtype=np.int16)
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


REQUESTS = _requests()
METRICS = Metrics()


async def _iterate(requests: list[pb.VoiceVARequest]) -> AsyncIterator[pb.VoiceVARequest]:
    for request in requests:
        yield request


@pytest.fixture(scope="module")
def conversation(echo_conversation: Callable[..., Conversation]) -> Conversation:
    return echo_conversation()


@pytest.mark.parametrize("inspector", ["off (reference)", "on", "on, record_audio"])
def test_frame_path_with_inspector(
    run_async: RunAsync, conversation: Conversation, inspector: str
) -> None:
    async def work() -> None:
        requests = _iterate(REQUESTS)
        if inspector != "off (reference)":
            recorder = CallInspector(10, record_audio=inspector == "on, record_audio")
            requests, _ = recorder.open_rpc(requests, RpcOutput(METRICS))
        first = await anext(requests)
        turn = AudioTurn(conversation, EnergyVAD)
        await turn.read(first, requests)
        assert turn.frames == FRAMES

    run_async(GROUP, work)
