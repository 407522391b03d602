"""Scripted pipeline parts for unit tests: an LLM that follows a script, a counting TTS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

import numpy as np

from byova_media.adapters import LlmEvent, Message, SpeechStream, ToolSpec, Transcript
from byova_media.app import App
from byova_media.audio.codecs import Encoding
from byova_media.audio.formats import AudioFormat
from byova_media.call import Call
from byova_media.config import Config
from byova_media.plugins import PluginHost

__all__ = ["CountingTTS", "FixedSTT", "HearingSTT", "ScriptedLLM", "make_call"]


def make_call() -> Call:
    host = PluginHost.create(discover=False)
    return Call(
        app=App(Config(), host), conversation_id="c-1", virtual_agent_id="t", customer_org_id="o"
    )


@dataclass
class ScriptedLLM:
    """Answers each request with the next script; ``gate`` pauses it before event ``gate_at``."""

    scripts: list[list[LlmEvent]]
    requests: list[list[Message]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    gate_at: int = 1
    closed: int = 0

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()
    ) -> AsyncGenerator[LlmEvent, None]:
        self.requests.append(list(messages))
        script = self.scripts.pop(0) if self.scripts else []
        try:
            for n, event in enumerate(script):
                if n == self.gate_at and self.gate is not None:
                    await self.gate.wait()
                await asyncio.sleep(0)
                yield event
        finally:
            self.closed += 1


class CountingTTS:
    """Makes ``ms_per_char`` of μ-law per character, in 100 ms blocks; counts pieces."""

    def __init__(self, ms_per_char: int = 10) -> None:
        self.audio_format = AudioFormat(Encoding.MULAW, 8000)
        self.ms_per_char = ms_per_char
        self.texts: list[str] = []
        self.closed = 0

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        self.texts.append(text)
        total = len(text) * self.ms_per_char * 8
        try:
            for offset in range(0, total, 800):
                await asyncio.sleep(0)
                yield b"\x7f" * min(800, total - offset)
        finally:
            self.closed += 1


@dataclass
class FixedSTT:
    """Hears ``text`` whatever the audio."""

    text: str
    streaming: bool = False

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> Transcript:
        return Transcript(self.text)

    def open_stream(self, sample_rate: int) -> SpeechStream:
        raise NotImplementedError


@dataclass
class HearingSTT:
    """A streaming recogniser that keeps every frame each stream was fed; hears ``text``."""

    text: str
    streaming: bool = True
    streams: list[list[np.ndarray]] = field(default_factory=list)

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> Transcript:
        return Transcript(self.text)

    def open_stream(self, sample_rate: int) -> SpeechStream:
        self.streams.append([])
        return _HeardStream(self, self.streams[-1])


@dataclass
class _HeardStream:
    stt: HearingSTT
    frames: list[np.ndarray]

    async def feed(self, frame: np.ndarray) -> Transcript | None:
        self.frames.append(frame)
        return None

    async def finish(self) -> Transcript:
        return Transcript(self.stt.text)

    async def aclose(self) -> None:
        return None
