"""The agent API: what a virtual agent receives and what it answers.

An agent is one object per conversation, made by the factory of an :class:`AgentSpec`
that a plugin registers. The engine turns Webex's RPCs into calls of its ``on_*``
methods and turns the :class:`Reply` objects they return into protocol messages;
agents never see protobuf.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.formats import ULAW_8K, AudioFormat

if TYPE_CHECKING:
    from byova_media.call import Call

__all__ = [
    "SNAPSHOT_MAX_BYTES",
    "Agent",
    "AgentSpec",
    "BargeIn",
    "CustomEvent",
    "EndSession",
    "InputHandling",
    "InputMode",
    "NoMatch",
    "OutputEvent",
    "Prompt",
    "Reply",
    "SessionStart",
    "Transfer",
    "TurnMetrics",
    "Utterance",
]

#: Largest agent snapshot (as compact JSON) that cluster mode stores; larger ones are
#: skipped with an error log, so a failover then restarts that agent's memory.
SNAPSHOT_MAX_BYTES = 64 * 1024

#: Raw μ-law at 8 kHz, a whole WAV file, or a stream of chunks in ``Prompt.audio_format``.
AudioSource = bytes | AsyncIterable[bytes]


class InputMode(enum.IntEnum):
    """What Webex accepts for the next input (``VoiceVAInputMode``)."""

    VOICE = 1
    DTMF = 2
    VOICE_DTMF = 3


@dataclass(frozen=True)
class InputHandling:
    """Timers and DTMF collection for the next input; ``None`` keeps the server default."""

    dtmf_input_length: int | None = None
    dtmf_inter_digit_timeout_ms: int | None = None
    dtmf_terminator: str | None = None
    max_speech_timeout_ms: int | None = None
    complete_timeout_ms: int | None = None
    incomplete_timeout_ms: int | None = None
    no_input_timeout_ms: int | None = None


@dataclass
class Prompt:
    """One prompt to play. ``audio`` bytes are raw 8 kHz μ-law unless they are a WAV file."""

    audio: AudioSource | None = None
    text: str = ""
    barge_in: bool = False
    audio_format: AudioFormat = ULAW_8K
    audio_uri: str = ""


@dataclass(frozen=True)
class Transfer:
    """Hand the caller to a human agent (``TRANSFER_TO_AGENT``)."""

    metadata: Mapping[str, Any] = field(default_factory=dict)
    name: str = "transfer_to_agent"


@dataclass(frozen=True)
class EndSession:
    """End the call (``SESSION_END``)."""

    metadata: Mapping[str, Any] = field(default_factory=dict)
    name: str = "session_end"


@dataclass(frozen=True)
class CustomEvent:
    """A named event the Webex flow handles (``CUSTOM_EVENT``)."""

    name: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NoMatch:
    """The input was not understood (``NO_MATCH``)."""

    metadata: Mapping[str, Any] = field(default_factory=dict)
    name: str = "no_match"


OutputEvent = Transfer | EndSession | CustomEvent | NoMatch


@dataclass
class Reply:
    """What an agent answers to one input.

    Only one output event is possible because Webex honours only the first. Prompts
    that go with a transfer or an end are never bargeable (the protocol forbids it).
    ``transcript``/``summary`` count only on the last response of a call.

    While streamed prompts play, the agent may still set ``event`` (e.g. a model that
    decides to transfer mid-answer): the engine reads it when it builds the FINAL,
    after the streams end. Chunks already sent keep their barge-in flag.
    """

    prompts: list[Prompt] = field(default_factory=list)
    event: OutputEvent | None = None
    input_mode: InputMode | None = None
    input_handling: InputHandling | None = None
    input_sensitive: bool = False
    transcript: str | None = None
    summary: str | None = None

    @classmethod
    def say(
        cls,
        audio: AudioSource | None = None,
        text: str = "",
        *,
        barge_in: bool = False,
        audio_format: AudioFormat = ULAW_8K,
        **fields: Any,
    ) -> Reply:
        """A reply with one prompt; other keyword arguments are :class:`Reply` fields."""
        prompt = Prompt(audio=audio, text=text, barge_in=barge_in, audio_format=audio_format)
        return cls(prompts=[prompt], **fields)

    @property
    def is_terminal(self) -> bool:
        """Whether this reply ends the agent's part of the call."""
        return isinstance(self.event, Transfer | EndSession)


@dataclass(frozen=True)
class SessionStart:
    """What Webex said when the call reached the agent."""

    name: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class Utterance:
    """One caller utterance, from speech start (with pre-roll) to end of speech."""

    pcm: np.ndarray
    sample_rate: int
    language_code: str = ""

    @property
    def duration_ms(self) -> int:
        return int(len(self.pcm) * 1000 // self.sample_rate)

    def ulaw(self) -> bytes:
        """The utterance as raw 8 kHz μ-law (the engine decodes to 8 kHz PCM)."""
        return pcm_to_ulaw(self.pcm)


@dataclass(frozen=True)
class BargeIn:
    """The caller interrupted a prompt after hearing ``heard_ms`` of the reply's audio."""

    heard_ms: int
    sent_ms: int


@dataclass(frozen=True)
class TurnMetrics:
    """Milestones of one turn, in ``time.monotonic()`` seconds; ``None`` when not reached.

    Agents add their own (STT, LLM, TTS) through ``call.mark(name)``; they land in
    ``marks``.
    """

    conversation_id: str
    turn: int
    speech_end_s: float | None = None
    end_of_input_s: float | None = None
    reply_ready_s: float | None = None
    first_audio_sent_s: float | None = None
    final_sent_s: float | None = None
    marks: Mapping[str, float] = field(default_factory=dict)

    def latency_ms(self, start: str, end: str) -> float | None:
        """Milliseconds between two milestones (fields or marks), ``None`` if either is missing."""
        a = getattr(self, start, None) if start.endswith("_s") else self.marks.get(start)
        b = getattr(self, end, None) if end.endswith("_s") else self.marks.get(end)
        if a is None or b is None:
            return None
        return (b - a) * 1000.0


class Agent:
    """Base class of agents: override the methods you need; defaults reply with nothing.

    ``turn_taking = "agent"`` makes the engine skip its own voice activity detection:
    the agent then calls ``call.start_of_input()`` / ``call.end_of_input()`` itself
    (e.g. a backend that does its own turn-taking). ``wants_audio = True`` makes the
    engine call :meth:`on_audio` with every 20 ms frame of caller audio.
    """

    turn_taking: Literal["server", "agent"] = "server"
    wants_audio: bool = False
    reply_mode: Literal["chunk", "wav"] | None = None

    async def on_start(self, call: Call, start: SessionStart) -> Reply | None:
        """SESSION_START: return the welcome."""
        return None

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply | None:
        """End of a caller utterance: return the answer (streamed prompts allowed)."""
        return None

    async def on_dtmf(self, call: Call, digits: str) -> Reply | None:
        """Digits Webex collected (``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``)."""
        return None

    async def on_no_input(self, call: Call) -> Reply | None:
        """Webex's no-input timer fired."""
        return None

    async def on_custom_event(
        self, call: Call, name: str, parameters: Mapping[str, Any]
    ) -> Reply | None:
        """A CUSTOM_EVENT input from the Webex flow."""
        return None

    async def on_audio(self, call: Call, frame: np.ndarray) -> None:
        """One 20 ms frame of caller audio, 8 kHz PCM16 (only when ``wants_audio``)."""

    async def on_barge_in(self, call: Call, barge_in: BargeIn) -> None:
        """The caller interrupted the playing reply; streaming has already been stopped."""

    async def on_end(self, call: Call, reason: str) -> None:
        """The conversation is over (hang-up, transfer, end, expiry); release resources."""

    def snapshot(self) -> dict[str, Any] | None:
        """The agent's memory of the call as JSON-serialisable data, or ``None`` for none.

        Cluster mode saves it after every turn (at most :data:`SNAPSHOT_MAX_BYTES`) so
        that another instance can carry the call on when this one is lost or drained.
        """
        return None

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`snapshot` returned, on the instance taking the call over."""


@dataclass(frozen=True)
class AgentSpec:
    """A virtual agent as listed by ``ListVirtualAgents``, with its per-conversation factory."""

    virtual_agent_id: str
    factory: Callable[[Call], Agent]
    name: str = ""
    is_default: bool = False
    attributes: Mapping[str, str] = field(default_factory=dict)
