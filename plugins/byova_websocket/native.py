"""The native protocol: a small JSON envelope (``"type"``) plus binary audio frames.

Documented in ``docs/websocket-protocol.md``; keep the two in step.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from byova_websocket.protocol import (
    BackendEvent,
    BoundaryEvent,
    ClearEvent,
    CustomEventMessage,
    EndEvent,
    MarkEvent,
    MediaEvent,
    Message,
    ProtocolError,
    ReadyEvent,
    SessionInfo,
    TranscriptEvent,
    TransferEvent,
    WireProtocol,
    metadata_of,
)

__all__ = ["NativeProtocol", "decode_native_object"]

VERSION = 1


def _dump(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


class NativeProtocol(WireProtocol):
    """byova-media's own envelope; caller audio as binary frames or base64 JSON."""

    name: ClassVar[str] = "native"

    def __init__(self, audio_transport: Literal["binary", "base64"] = "binary") -> None:
        self.binary = audio_transport == "binary"

    def opening(self, info: SessionInfo, resumed: bool) -> list[Message]:
        return [
            _dump(
                {
                    "type": "resume" if resumed else "start",
                    "version": VERSION,
                    "conversation_id": info.conversation_id,
                    "virtual_agent_id": info.virtual_agent_id,
                    "customer_org_id": info.customer_org_id,
                    "tracking_id": info.tracking_id,
                    "language_code": info.language_code,
                    "parameters": dict(info.parameters),
                    "audio": {
                        "encoding": "mulaw",
                        "sample_rate": 8000,
                        "frame_ms": 20,
                        "transport": "binary" if self.binary else "base64",
                    },
                }
            )
        ]

    def audio(self, ulaw: bytes) -> Message:
        if self.binary:
            return ulaw
        return _dump({"type": "audio", "audio": base64.b64encode(ulaw).decode("ascii")})

    def dtmf(self, digits: str) -> list[Message]:
        return [_dump({"type": "dtmf", "digits": digits})]

    def no_input(self) -> list[Message]:
        return [_dump({"type": "no_input"})]

    def custom_event(self, name: str, parameters: Mapping[str, Any]) -> list[Message]:
        return [_dump({"type": "custom_event", "name": name, "parameters": dict(parameters)})]

    def end_of_input(self) -> list[Message]:
        return [_dump({"type": "end_of_input"})]

    def barge_in(self, heard_ms: int) -> list[Message]:
        return [_dump({"type": "barge_in", "heard_ms": heard_ms})]

    def mark_played(self, name: str) -> list[Message]:
        return [_dump({"type": "mark", "name": name})]

    def stop(self, reason: str) -> list[Message]:
        return [_dump({"type": "hangup", "reason": reason})]

    def decode(self, message: Message) -> list[BackendEvent]:
        if isinstance(message, bytes):
            return [MediaEvent(message)] if message else []
        try:
            obj = json.loads(message)
        except json.JSONDecodeError:
            raise ProtocolError("text message is not JSON") from None
        if not isinstance(obj, dict):
            raise ProtocolError("message is not a JSON object")
        event = decode_native_object(obj)
        return [] if event is None else [event]


def _text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{key!r} must be a string")
    return value


def decode_native_object(obj: Mapping[str, Any]) -> BackendEvent | None:
    """One native backend message as an event; ``None`` for types we do not know."""
    kind = obj.get("type")
    if kind == "audio":
        try:
            return MediaEvent(base64.b64decode(_text(obj, "audio") or "", validate=True))
        except binascii.Error:
            raise ProtocolError("'audio' is not valid base64") from None
    if kind == "clear":
        return ClearEvent()
    if kind == "mark":
        return MarkEvent(_text(obj, "name") or "")
    if kind == "transfer":
        return TransferEvent(metadata_of(obj.get("metadata")))
    if kind == "end":
        return EndEvent(metadata_of(obj.get("metadata")))
    if kind == "custom_event":
        name = _text(obj, "name")
        if not name:
            raise ProtocolError("custom_event needs a 'name'")
        return CustomEventMessage(name, metadata_of(obj.get("metadata")))
    if kind == "transcript":
        return TranscriptEvent(_text(obj, "text"), _text(obj, "summary"))
    if kind in ("start_of_input", "end_of_input"):
        return BoundaryEvent("start" if kind == "start_of_input" else "end")
    if kind == "ready":
        owner = obj.get("turn_taking")
        if owner not in (None, "server", "backend"):
            raise ProtocolError("'turn_taking' must be 'server' or 'backend'")
        return ReadyEvent(owner)
    if not isinstance(kind, str):
        raise ProtocolError("message has no string 'type'")
    return None
