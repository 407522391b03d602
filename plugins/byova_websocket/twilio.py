"""Twilio Media Streams (bidirectional), as Pipecat, Vocode and most telephony bots speak it.

To the backend: ``connected``, ``start`` (call ids and SESSION_START parameters as
``customParameters``), ``media`` (base64 μ-law, 8 kHz, 20 ms), ``dtmf`` (one per digit),
``mark`` (echo of a played mark), ``stop``. From it: ``media``, ``mark``, ``clear``.
Twilio has no transfer or end message; see ``docs/websocket-protocol.md`` for how a
backend asks for them (``byova:`` marks or a ``byova`` event carrying a native message).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from byova_websocket.native import decode_native_object
from byova_websocket.protocol import (
    BackendEvent,
    ClearEvent,
    EndEvent,
    MarkEvent,
    MediaEvent,
    Message,
    ProtocolError,
    SessionInfo,
    TransferEvent,
    WireProtocol,
)

__all__ = ["MARK_END", "MARK_TRANSFER", "TwilioProtocol", "custom_parameters"]

MARK_TRANSFER = "byova:transfer"
MARK_END = "byova:end"
_FRAME_MS = 20


def _sid(prefix: str, seed: str) -> str:
    """A Twilio-shaped id (2 letters + 32 hex), stable for one conversation."""
    return prefix + hashlib.sha256(f"{prefix}:{seed}".encode()).hexdigest()[:32]


def custom_parameters(info: SessionInfo, resumed: bool) -> dict[str, str]:
    """SESSION_START parameters as Twilio's string-only ``customParameters``."""
    params = {
        k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        for k, v in info.parameters.items()
    }
    params.update(
        byova_conversation_id=info.conversation_id,
        byova_virtual_agent_id=info.virtual_agent_id,
        byova_customer_org_id=info.customer_org_id,
        byova_language_code=info.language_code,
        byova_resumed="true" if resumed else "false",
    )
    return params


class TwilioProtocol(WireProtocol):
    """One Media Streams connection; numbers messages and media chunks as Twilio does."""

    name: ClassVar[str] = "twilio"

    def __init__(self) -> None:
        self.stream_sid = ""
        self.call_sid = ""
        self.account_sid = "AC" + "0" * 32
        self._sequence = 0
        self._chunk = 0

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def _dump(self, event: str, **body: Any) -> str:
        return json.dumps(
            {"event": event, "sequenceNumber": self._next(), "streamSid": self.stream_sid, **body},
            separators=(",", ":"),
        )

    def opening(self, info: SessionInfo, resumed: bool) -> list[Message]:
        self.stream_sid = _sid("MZ", info.conversation_id)
        self.call_sid = _sid("CA", info.conversation_id)
        connected = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        start = self._dump(
            "start",
            start={
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": custom_parameters(info, resumed),
            },
        )
        return [connected, start]

    def audio(self, ulaw: bytes) -> Message:
        self._chunk += 1
        return self._dump(
            "media",
            media={
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str((self._chunk - 1) * _FRAME_MS),
                "payload": base64.b64encode(ulaw).decode("ascii"),
            },
        )

    def dtmf(self, digits: str) -> list[Message]:
        return [self._dump("dtmf", dtmf={"track": "inbound_track", "digit": d}) for d in digits]

    def no_input(self) -> list[Message]:
        return []  # the backend hears the silence itself

    def custom_event(self, name: str, parameters: Mapping[str, Any]) -> list[Message]:
        return []  # no Twilio equivalent

    def end_of_input(self) -> list[Message]:
        return []  # Twilio bots run their own VAD on the continuous stream

    def barge_in(self, heard_ms: int) -> list[Message]:
        return []

    def mark_played(self, name: str) -> list[Message]:
        return [self._dump("mark", mark={"name": name})]

    def stop(self, reason: str) -> list[Message]:
        return [self._dump("stop", stop={"accountSid": self.account_sid, "callSid": self.call_sid})]

    def decode(self, message: Message) -> list[BackendEvent]:
        if isinstance(message, bytes):
            raise ProtocolError("Twilio Media Streams messages are JSON text, not binary")
        try:
            obj = json.loads(message)
        except json.JSONDecodeError:
            raise ProtocolError("text message is not JSON") from None
        if not isinstance(obj, dict):
            raise ProtocolError("message is not a JSON object")
        event = obj.get("event")
        if event == "media":
            media = obj.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            if not isinstance(payload, str):
                raise ProtocolError("media message without a string media.payload")
            try:
                return [MediaEvent(base64.b64decode(payload, validate=True))]
            except binascii.Error:
                raise ProtocolError("media.payload is not valid base64") from None
        if event == "clear":
            return [ClearEvent()]
        if event == "mark":
            mark = obj.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                raise ProtocolError("mark message without a string mark.name")
            if name == MARK_TRANSFER:
                return [TransferEvent()]
            if name == MARK_END:
                return [EndEvent()]
            return [MarkEvent(name)]
        if event == "byova":
            body = obj.get("byova")
            if not isinstance(body, dict):
                raise ProtocolError("byova message without a 'byova' object")
            decoded = decode_native_object(body)
            return [] if decoded is None else [decoded]
        return []  # other Twilio events (e.g. a bot's own keepalives) carry nothing for us
