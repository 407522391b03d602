"""What the inspector keeps about one call and each of its RPCs, and their JSON form.

Times are ``time.monotonic()`` seconds while recording; the JSON gives milliseconds
since the call's first RPC opened, so a chart needs no clock of its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.wav import is_wav, wav_to_ulaw
from byova_media.wire import digits_from_events

__all__ = [
    "MAX_AUDIO_BYTES",
    "BargeInRecord",
    "CallRecord",
    "ResponseRecord",
    "RpcRecord",
    "TurnRecord",
]

#: Audio kept per RPC and direction when ``record_audio`` is on: two minutes of G.711.
MAX_AUDIO_BYTES = 8000 * 120

_TYPE_NAMES = {v: k for k, v in pb.VoiceVAResponse.ResponseType.items()}
_EVENT_NAMES = {v: k for k, v in pb.OutputEvent.EventType.items()}
_INPUT_EVENTS = {v: k for k, v in pb.EventInput.EventType.items()}


_BOUNDARY_EVENTS = frozenset({pb.OutputEvent.START_OF_INPUT, pb.OutputEvent.END_OF_INPUT})


def _is_boundary(response: pb.VoiceVAResponse) -> bool:
    """A standalone START/END_OF_INPUT (``RpcOutput.send_boundary``): never the reply's FINAL."""
    return (
        not response.prompts
        and len(response.output_events) == 1
        and response.output_events[0].event_type in _BOUNDARY_EVENTS
    )


def _ms(at: float | None, origin: float) -> float | None:
    return None if at is None else round((at - origin) * 1000.0, 1)


@dataclass
class ResponseRecord:
    """One response the server sent on an RPC."""

    at: float
    type: str
    event: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    prompt_text: str = ""
    audio_bytes: int = 0
    bargeable: bool = False
    #: A standalone START/END_OF_INPUT: complete on its own, never the reply's FINAL.
    boundary: bool = False

    @classmethod
    def of(cls, response: pb.VoiceVAResponse, at: float) -> ResponseRecord:
        event = response.output_events[0] if response.output_events else None
        return cls(
            at=at,
            type=_TYPE_NAMES.get(response.response_type, str(response.response_type)),
            event=_EVENT_NAMES.get(event.event_type, str(event.event_type)) if event else None,
            metadata=dict(json_format.MessageToDict(event.metadata)) if event else {},
            prompt_text=" ".join(p.text for p in response.prompts if p.text),
            audio_bytes=sum(len(p.audio_content) for p in response.prompts),
            bargeable=any(p.is_barge_in_enabled for p in response.prompts),
            boundary=_is_boundary(response),
        )

    def to_json(self, origin: float) -> dict[str, Any]:
        return {
            "at_ms": _ms(self.at, origin),
            "type": self.type,
            "event": self.event,
            "metadata": self.metadata,
            "prompt_text": self.prompt_text,
            "audio_bytes": self.audio_bytes,
            "bargeable": self.bargeable,
            "boundary": self.boundary,
        }


@dataclass
class TurnRecord:
    """The latency marks of one caller turn (from the engine's ``TurnMetrics``)."""

    turn: int
    rpc: int
    speech_end: float | None
    end_of_input: float | None
    reply_ready: float | None
    first_audio: float | None
    final: float | None
    marks: dict[str, float] = field(default_factory=dict)

    def to_json(self, origin: float) -> dict[str, Any]:
        return {
            "turn": self.turn,
            "rpc": self.rpc,
            "speech_end_ms": _ms(self.speech_end, origin),
            "end_of_input_ms": _ms(self.end_of_input, origin),
            "reply_ready_ms": _ms(self.reply_ready, origin),
            "first_audio_ms": _ms(self.first_audio, origin),
            "final_ms": _ms(self.final, origin),
            "marks": {name: _ms(at, origin) for name, at in self.marks.items()},
        }


@dataclass(eq=False)
class RpcRecord:
    """One ``ProcessCallerInput`` RPC: open, first message, half-close, responses, completion."""

    opened_at: float
    record_audio: bool = False
    index: int = -1
    kind: str = "empty"
    dtmf: str = ""
    half_closed_at: float | None = None
    completed_at: float | None = None
    status: str | None = None
    responses: list[ResponseRecord] = field(default_factory=list)
    caller_encoding: int = pb.VoiceInput.MULAW_FORMAT
    caller_rate_hz: int = 8000
    caller_audio: bytearray = field(default_factory=bytearray)
    agent_audio: bytearray = field(default_factory=bytearray)

    def on_response(self, response: pb.VoiceVAResponse) -> None:
        """Observer of :meth:`RpcOutput.send`: note one response (and its audio, if kept)."""
        self.responses.append(ResponseRecord.of(response, time.monotonic()))
        if self.record_audio:
            for prompt in response.prompts:
                data = prompt.audio_content
                if data and len(self.agent_audio) < MAX_AUDIO_BYTES:
                    self.agent_audio += wav_to_ulaw(data) if is_wav(data) else data

    def on_request(self, request: pb.VoiceVARequest) -> None:
        """Note what a client message says (the first one names the RPC's kind)."""
        which = request.WhichOneof("voice_va_input_type")
        if which == "audio_input":
            audio = request.audio_input
            if self.kind == "empty":
                self.kind = "audio"
                if audio.encoding:
                    self.caller_encoding = audio.encoding
                if audio.sample_rate_hertz:
                    self.caller_rate_hz = audio.sample_rate_hertz
            if self.record_audio and len(self.caller_audio) < MAX_AUDIO_BYTES:
                self.caller_audio += audio.caller_audio
        elif which == "dtmf_input":
            self.kind = "dtmf" if self.kind == "empty" else self.kind
            self.dtmf += digits_from_events(request.dtmf_input.dtmf_events)[0]
        elif which == "event_input" and self.kind == "empty":
            name = _INPUT_EVENTS.get(request.event_input.event_type, "event")
            self.kind = name.lower()

    def to_json(self, origin: float) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "dtmf": self.dtmf,
            "open_ms": _ms(self.opened_at, origin),
            "half_close_ms": _ms(self.half_closed_at, origin),
            "complete_ms": _ms(self.completed_at, origin),
            "status": self.status,
            "responses": [r.to_json(origin) for r in self.responses],
            "audio": {"caller": bool(self.caller_audio), "agent": bool(self.agent_audio)},
        }


@dataclass(frozen=True)
class BargeInRecord:
    """The caller cut a bargeable reply after hearing ``heard_ms`` of ``sent_ms``."""

    at: float
    heard_ms: int
    sent_ms: int


@dataclass(eq=False)
class CallRecord:
    """One call: its RPCs in the order they opened, its turns, barge-ins and ending."""

    conversation_id: str
    virtual_agent_id: str
    origin: float
    started_wall: float
    rpcs: list[RpcRecord] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    barge_ins: list[BargeInRecord] = field(default_factory=list)
    ended: str | None = None
    transcript: str | None = None

    def add(self, rpc: RpcRecord) -> None:
        rpc.index = len(self.rpcs)
        self.rpcs.append(rpc)

    def summary(self) -> dict[str, Any]:
        """The row of ``/calls.json``."""
        last = max((r.completed_at or r.opened_at for r in self.rpcs), default=self.origin)
        return {
            "conversation_id": self.conversation_id,
            "virtual_agent_id": self.virtual_agent_id,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_wall)),
            "rpcs": len(self.rpcs),
            "turns": len(self.turns),
            "duration_ms": _ms(last, self.origin),
            "ended": self.ended,
        }

    def to_json(self) -> dict[str, Any]:
        """The whole call, one entry per RPC (``/calls/<conversation_id>.json``)."""
        origin = self.origin
        return {
            **self.summary(),
            "transcript": self.transcript,
            "rpcs": [r.to_json(origin) for r in self.rpcs],
            "turns": [t.to_json(origin) for t in self.turns],
            "barge_ins": [
                {"at_ms": _ms(b.at, origin), "heard_ms": b.heard_ms, "sent_ms": b.sent_ms}
                for b in self.barge_ins
            ],
        }
