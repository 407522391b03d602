"""The reply path: framing a 10 s μ-law prompt into BYOVA responses, beside references.

``send_reply`` in CHUNK mode (8000 B chunks, no lead pacing) and in WAV mode, as the
servicer runs them for an agent's reply; references are plain ``bytes`` slicing, the
same slicing wrapped in protobuf messages, and a WAV header concatenation.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable, Iterator
from typing import Literal

import pytest

from byova_echo import EchoAgent
from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.agent import AgentSpec, Reply
from byova_media.app import App
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.config import Config
from byova_media.conversation import Conversation, ConversationRegistry
from byova_media.loadtest.scenario import speech_pcm
from byova_media.plugins import PluginHost
from byova_media.replies import send_reply
from byova_media.rpc import RpcOutput

PROMPT = pcm_to_ulaw(speech_pcm(10_000, seed=3))  # 80,000 B
CHUNK_BYTES = 8000
GROUP = "reply path: one 10 s prompt"


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _conversation(mode: Literal["chunk", "wav"]) -> Conversation:
    config = Config(reply_mode=mode, chunk_bytes=CHUNK_BYTES, chunk_lead_ms=0)
    app = App(config=config, plugins=PluginHost.create(discover=False))
    spec = AgentSpec("echo", lambda call: EchoAgent())
    return ConversationRegistry(app, {"echo": spec}, "echo").create("bench", spec, "org", "trk")


def _run(
    benchmark: pytest.FixtureRequest,
    loop: asyncio.AbstractEventLoop,
    work: Callable[[], Awaitable[None]],
) -> None:
    benchmark.group = GROUP  # type: ignore[attr-defined]
    benchmark(lambda: loop.run_until_complete(work()))  # type: ignore[operator]


@pytest.mark.parametrize("mode", ["chunk", "wav"])
def test_send_reply(
    benchmark: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop, mode: Literal["chunk", "wav"]
) -> None:
    conv = _conversation(mode)

    async def work() -> None:
        out = RpcOutput(conv.app.metrics)
        await send_reply(conv, out, Reply.say(PROMPT, barge_in=True))
        expected = len(PROMPT) // CHUNK_BYTES + 1 if mode == "chunk" else 1
        assert out.queue.qsize() == expected and out.final_sent

    _run(benchmark, loop, work)


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
