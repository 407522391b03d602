"""What flows over a backend WebSocket, independent of the wire protocol.

A :class:`WireProtocol` turns call happenings into WebSocket messages and backend
messages into :data:`BackendEvent` objects; one instance per connection, because the
Twilio protocol numbers its messages.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "BackendEvent",
    "BoundaryEvent",
    "ClearEvent",
    "CustomEventMessage",
    "EndEvent",
    "MarkEvent",
    "MediaEvent",
    "Message",
    "ProtocolError",
    "ReadyEvent",
    "SessionInfo",
    "TranscriptEvent",
    "TransferEvent",
    "WireProtocol",
]

#: One WebSocket message: text (JSON) or binary.
Message = str | bytes


class ProtocolError(ValueError):
    """A backend message could not be understood (it is skipped and counted)."""


@dataclass(frozen=True)
class SessionInfo:
    """What the backend is told about the call when the socket opens."""

    conversation_id: str
    virtual_agent_id: str
    customer_org_id: str = ""
    tracking_id: str = ""
    language_code: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MediaEvent:
    """Audio to play to the caller: raw 8 kHz μ-law."""

    ulaw: bytes


@dataclass(frozen=True, slots=True)
class ClearEvent:
    """Drop the audio not yet played (the backend heard the caller interrupt)."""


@dataclass(frozen=True, slots=True)
class MarkEvent:
    """A named point in the backend's audio; echoed back once played."""

    name: str


@dataclass(frozen=True, slots=True)
class TransferEvent:
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EndEvent:
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CustomEventMessage:
    name: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    """The call's transcript (and summary) so far; the last one wins."""

    text: str | None = None
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class BoundaryEvent:
    """The backend's own turn-taking: the caller started or stopped speaking."""

    kind: Literal["start", "end"]


@dataclass(frozen=True, slots=True)
class ReadyEvent:
    """The backend's greeting; it may declare who owns turn-taking."""

    turn_taking: Literal["server", "backend"] | None = None


BackendEvent = (
    MediaEvent
    | ClearEvent
    | MarkEvent
    | TransferEvent
    | EndEvent
    | CustomEventMessage
    | TranscriptEvent
    | BoundaryEvent
    | ReadyEvent
)


class WireProtocol(abc.ABC):
    """Encoder/decoder of one backend connection's messages."""

    name: ClassVar[str]

    @abc.abstractmethod
    def opening(self, info: SessionInfo, resumed: bool) -> list[Message]:
        """Messages that start (or, after a reconnect, resume) the stream."""

    @abc.abstractmethod
    def audio(self, ulaw: bytes) -> Message:
        """One 20 ms frame of caller audio (160 B of μ-law)."""

    @abc.abstractmethod
    def dtmf(self, digits: str) -> list[Message]: ...

    @abc.abstractmethod
    def no_input(self) -> list[Message]: ...

    @abc.abstractmethod
    def custom_event(self, name: str, parameters: Mapping[str, Any]) -> list[Message]: ...

    @abc.abstractmethod
    def end_of_input(self) -> list[Message]:
        """Our VAD ended the caller's turn."""

    @abc.abstractmethod
    def barge_in(self, heard_ms: int) -> list[Message]:
        """The caller interrupted the backend's audio after hearing ``heard_ms``."""

    @abc.abstractmethod
    def mark_played(self, name: str) -> list[Message]:
        """The audio before mark ``name`` was played (or cleared)."""

    @abc.abstractmethod
    def stop(self, reason: str) -> list[Message]:
        """The call is over."""

    @abc.abstractmethod
    def decode(self, message: Message) -> list[BackendEvent]:
        """Events in one backend message; raise :class:`ProtocolError` if malformed."""


def metadata_of(value: object) -> dict[str, Any]:
    """A JSON object field, or an empty dict; anything else is a protocol error."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError("metadata must be a JSON object")
    return value
