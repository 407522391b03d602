"""Mapping between protobuf fields and the agent API: encodings, digits, events, input settings.

The reply's FINAL is assembled in ``replies.py`` from these pieces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

from byova_media._proto import byova_common_pb2 as common
from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.agent import (
    CustomEvent,
    EndSession,
    InputHandling,
    InputMode,
    NoMatch,
    OutputEvent,
    Transfer,
)
from byova_media.audio.codecs import Encoding
from byova_media.config import Config

__all__ = [
    "BOUNDARY_TYPES",
    "CHUNK",
    "FINAL",
    "digits_from_events",
    "encoding_from_wire",
    "event_response",
    "input_handling_config",
    "output_event",
    "struct_to_dict",
]

FINAL = pb.VoiceVAResponse.FINAL
CHUNK = pb.VoiceVAResponse.CHUNK
_OE = pb.OutputEvent

#: DTMFDigits enum value → key. Note ZERO is 10, not 0.
_DIGITS = {
    **{i: str(i) for i in range(1, 10)},
    common.DTMF_DIGIT_ZERO: "0",
    common.DTMF_DIGIT_A: "A",
    common.DTMF_DIGIT_B: "B",
    common.DTMF_DIGIT_C: "C",
    common.DTMF_DIGIT_D: "D",
    common.DTMF_DIGIT_STAR: "*",
    common.DTMF_DIGIT_POUND: "#",
}
_KEY_TO_DIGIT: dict[str, Any] = {v: k for k, v in _DIGITS.items()}

_ENCODINGS: dict[int, Encoding] = {
    pb.VoiceInput.MULAW_FORMAT: Encoding.MULAW,
    pb.VoiceInput.ALAW_FORMAT: Encoding.ALAW,
    pb.VoiceInput.LINEAR16_FORMAT: Encoding.L16,
}


def digits_from_events(events: Any) -> tuple[str, int]:
    """Turn repeated DTMFDigits into a key string; also count values that are not keys."""
    keys = [_DIGITS.get(int(e), "") for e in events]
    return "".join(keys), sum(1 for k in keys if not k)


def digit_value(key: str) -> Any:
    """The DTMFDigits value for one key (simulator side)."""
    return _KEY_TO_DIGIT[key]


def encoding_from_wire(value: int) -> Encoding | None:
    """The codec for a VoiceEncoding value; ``None`` for UNSPECIFIED or unknown values."""
    return _ENCODINGS.get(value)


def struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    return dict(json_format.MessageToDict(value))


def _struct(data: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if data:
        out.update(dict(data))
    return out


def output_event(event: OutputEvent) -> pb.OutputEvent:
    """The protobuf form of an agent's output event."""
    kinds: dict[type, Any] = {
        Transfer: _OE.TRANSFER_TO_AGENT,
        EndSession: _OE.SESSION_END,
        CustomEvent: _OE.CUSTOM_EVENT,
        NoMatch: _OE.NO_MATCH,
    }
    return _OE(event_type=kinds[type(event)], name=event.name, metadata=_struct(event.metadata))


#: ``boundary_response_type`` values → wire ResponseType.
BOUNDARY_TYPES: dict[str, Any] = {
    "final": FINAL,
    "chunk": CHUNK,
    "partial": pb.VoiceVAResponse.PARTIAL,
}


def event_response(kind: Any, response_type: Any) -> pb.VoiceVAResponse:
    """A standalone response carrying only START_OF_INPUT or END_OF_INPUT (as Cisco's samples do).

    ``response_type`` comes from ``boundary_response_type``: Cisco's samples leave it unset
    (FINAL) and their gateway sends FINAL; the engine never counts it as the reply's FINAL.
    """
    return pb.VoiceVAResponse(output_events=[_OE(event_type=kind)], response_type=response_type)


def input_handling_config(
    config: Config, override: InputHandling | None
) -> common.InputHandlingConfig:
    """The InputHandlingConfig for the next input: server defaults, overridden by the agent."""
    o = override or InputHandling()

    def pick(value: int | None, default: int) -> int:
        return default if value is None else value

    terminator = o.dtmf_terminator if o.dtmf_terminator is not None else config.dtmf_terminator
    return common.InputHandlingConfig(
        dtmf_config=common.DTMFInputConfig(
            inter_digit_timeout_msec=pick(
                o.dtmf_inter_digit_timeout_ms, config.dtmf_inter_digit_timeout_ms
            ),
            termchar=_KEY_TO_DIGIT.get(terminator or "", common.DTMF_EVENT_UNSPECIFIED),
            dtmf_input_length=pick(o.dtmf_input_length, config.dtmf_input_length),
        ),
        speech_timers=common.InputSpeechTimers(
            max_speech_timeout_msec=pick(o.max_speech_timeout_ms, config.max_speech_timeout_ms),
            complete_timeout_msec=pick(o.complete_timeout_ms, config.complete_timeout_ms),
            incomplete_timeout_msec=pick(o.incomplete_timeout_ms, config.incomplete_timeout_ms),
            no_input_timeout_msec=pick(o.no_input_timeout_ms, config.no_input_timeout_ms),
        ),
    )


def input_mode(mode: InputMode | None) -> Any:
    """The VoiceVAInputMode value; unspecified means voice and DTMF."""
    return int(mode) if mode is not None else common.INPUT_VOICE_DTMF
