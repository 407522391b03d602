"""Adapter protocols for the parts of a voice agent: VAD, speech-to-text, LLM, text-to-speech.

Plugins register factories for these by name (``byova_register_vads``,
``byova_register_stt_engines``, ``byova_register_llms``, ``byova_register_tts_engines``);
the pipeline agent picks them by name from its configuration. A factory receives the options of
the virtual agent that uses it (a plain mapping the plugin validates itself), so two
virtual agents can run the same engine with different settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from byova_media.audio.formats import AudioFormat
from byova_media.audio.vad import VoiceActivityDetector

__all__ = [
    "LanguageModel",
    "LlmEvent",
    "LlmFactory",
    "Message",
    "SpeechStream",
    "SpeechToText",
    "SttFactory",
    "TextDelta",
    "TextToSpeech",
    "ToolCall",
    "ToolSpec",
    "Transcript",
    "TtsFactory",
    "VoiceActivityDetector",
]


# --- speech-to-text ---------------------------------------------------------------


@dataclass(frozen=True)
class Transcript:
    """What a recogniser heard; ``is_final`` is false for partial hypotheses."""

    text: str
    is_final: bool = True
    confidence: float | None = None


class SpeechStream(Protocol):
    """One utterance being recognised while it is spoken (8 kHz PCM16 frames in)."""

    async def feed(self, frame: np.ndarray) -> Transcript | None:
        """Add a frame; return a partial transcript when the hypothesis changed."""
        ...

    async def finish(self) -> Transcript:
        """End of the utterance: return the final transcript."""
        ...

    async def aclose(self) -> None:
        """Drop the stream without a result (barge-in, hang-up)."""
        ...


@runtime_checkable
class SpeechToText(Protocol):
    """A recogniser: streaming when ``streaming`` is true, batch (:meth:`transcribe`) always."""

    streaming: bool

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> Transcript:
        """Recognise one whole utterance (the batch fallback)."""
        ...

    def open_stream(self, sample_rate: int) -> SpeechStream:
        """Start recognising one utterance frame by frame."""
        ...


# --- language model -----------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """The model asks to run tool ``name`` with JSON ``arguments``."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass(frozen=True)
class TextDelta:
    """A piece of the model's answer text, in order."""

    text: str


LlmEvent = TextDelta | ToolCall


@dataclass(frozen=True)
class Message:
    """One chat message (the OpenAI chat-completions vocabulary)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: name, description and JSON-schema ``parameters``."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


@runtime_checkable
class LanguageModel(Protocol):
    """Streaming chat: messages in, text deltas and tool calls out."""

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LlmEvent]:
        """Answer the conversation so far; closing the iterator cancels the request."""
        ...


# --- text-to-speech -----------------------------------------------------------------


@runtime_checkable
class TextToSpeech(Protocol):
    """Streaming synthesis: text in, audio chunks in ``audio_format`` out as they are made."""

    audio_format: AudioFormat

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Speak ``text``; closing the iterator stops synthesis at once."""
        ...


SttFactory = Callable[[Mapping[str, Any]], SpeechToText]
LlmFactory = Callable[[Mapping[str, Any]], LanguageModel]
TtsFactory = Callable[[Mapping[str, Any]], TextToSpeech]
