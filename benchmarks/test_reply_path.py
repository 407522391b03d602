"""The reply path: framing a 10 s μ-law prompt into BYOVA responses, beside references.

``send_reply`` in CHUNK mode (8000 B chunks, no lead pacing) and in WAV mode, as the
servicer runs them for an agent's reply; references are plain ``bytes`` slicing, the
same slicing wrapped in protobuf messages, and a WAV header concatenation.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from typing import Literal

import pytest

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.agent import Reply
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.config import Config
from byova_media.conversation import Conversation
from byova_media.loadtest.scenario import speech_pcm
from byova_media.replies import send_reply
from byova_media.rpc import RpcOutput

PROMPT = pcm_to_ulaw(speech_pcm(10_000, seed=3))  # 80,000 B
CHUNK_BYTES = 8000
RunAsync = Callable[[str, Callable[[], Awaitable[None]]], None]
GROUP = "reply path: one 10 s prompt"


@pytest.mark.parametrize("mode", ["chunk", "wav"])
def test_send_reply(
    run_async: RunAsync,
    echo_conversation: Callable[..., Conversation],
    mode: Literal["chunk", "wav"],
) -> None:
    conv = echo_conversation(Config(reply_mode=mode, chunk_bytes=CHUNK_BYTES, chunk_lead_ms=0))

    async def work() -> None:
        out = RpcOutput(conv.app.metrics)
        await send_reply(conv, out, Reply.say(PROMPT, barge_in=True))
        expected = len(PROMPT) // CHUNK_BYTES + 1 if mode == "chunk" else 1
        assert out.queue.qsize() == expected and out.final_sent

    run_async(GROUP, work)


def test_reference_slicing(benchmark: pytest.FixtureRequest) -> None:
    benchmark.group = GROUP  # type: ignore[attr-defined]

    def work() -> None:
        chunks = [PROMPT[i : i + CHUNK_BYTES] for i in range(0, len(PROMPT), CHUNK_BYTES)]
        assert len(chunks) == len(PROMPT) // CHUNK_BYTES

    benchmark(work)  # type: ignore[operator]


def test_reference_slicing_into_messages(benchmark: pytest.FixtureRequest) -> None:
    benchmark.group = GROUP  # type: ignore[attr-defined]

    def work() -> None:
        responses = [
            pb.VoiceVAResponse(
                prompts=[pb.Prompt(audio_content=PROMPT[i : i + CHUNK_BYTES])],
                response_type=pb.VoiceVAResponse.CHUNK,
            )
            for i in range(0, len(PROMPT), CHUNK_BYTES)
        ]
        responses.append(pb.VoiceVAResponse(response_type=pb.VoiceVAResponse.FINAL))

    benchmark(work)  # type: ignore[operator]


def test_reference_wav_header(benchmark: pytest.FixtureRequest) -> None:
    benchmark.group = GROUP  # type: ignore[attr-defined]

    def work() -> None:
        n = len(PROMPT)
        header = struct.pack(
            "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + n, b"WAVE", b"fmt ", 16, 7, 1, 8000, 8000, 1,
            8, b"data", n,
        )  # fmt: skip
        pb.VoiceVAResponse(
            prompts=[pb.Prompt(audio_content=header + PROMPT)],
            response_type=pb.VoiceVAResponse.FINAL,
        )

    benchmark(work)  # type: ignore[operator]
