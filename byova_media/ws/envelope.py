"""Envelopes of ``/v1/va`` and their payloads: JSON in, protobuf for the engine, JSON out.

Validation uses our own pydantic models, not the published AsyncAPI schema (a strict
validator of that schema rejects every valid frame; see the protocol reference §10).
Lenient where Webex's live traffic differs from the schema: maps arrive as objects or as
``[{"key", "value"}]`` lists, ``is_single_utterance`` may be ``null``, unknown fields are
ignored. Strict where the schema is clear: ``seq`` ≥ 1, an RFC 3339 ``ts`` with a zone,
one input kind per request, enum names as strings, base64 audio, ``encoding`` and
``sample_rate_hertz`` on every audio frame.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from google.protobuf import json_format, struct_pb2
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from byova_media._proto import byova_common_pb2 as common
from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.formats import SUPPORTED_RATES
from byova_media.ws.errors import ErrorCode, WsProtocolError, bad_request

__all__ = [
    "SUPPORTED_ENCODINGS",
    "Envelope",
    "envelope_json",
    "error_json",
    "parse_envelope",
    "pong_json",
    "request_from_payload",
    "response_payload",
]

#: Caller audio the engine decodes (the reference's contract is μ-law 8 kHz; the other two
#: cost nothing to accept because the gRPC path already decodes them).
SUPPORTED_ENCODINGS = frozenset({"MULAW_FORMAT", "ALAW_FORMAT", "LINEAR16_FORMAT"})
_MAX_ID = 256
_ENCODINGS = {name: int(pb.VoiceInput.VoiceEncoding.Value(name)) for name in SUPPORTED_ENCODINGS}


def _map(value: Any) -> Any:
    """A protobuf-style map as an object; ``[{"key", "value"}]`` lists (and ``[]``) too."""
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for item in value:
            if not isinstance(item, dict) or set(item) - {"key", "value"} or "key" not in item:
                raise ValueError("map entries must be objects with 'key' and 'value'")
            if not isinstance(item["key"], str):
                raise ValueError("map keys must be strings")
            out[item["key"]] = item.get("value")
        return out
    return value


Map = Annotated[dict[str, Any], BeforeValidator(_map)]


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None


B64 = Annotated[bytes, BeforeValidator(_b64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _AudioInput(_Model):
    caller_audio_b64: B64 = b""
    encoding: StrictStr
    sample_rate_hertz: StrictInt
    language_code: StrictStr = ""
    is_single_utterance: StrictBool | None = None
    audio_timestamp: AwareDatetime | None = None


class _DtmfInput(_Model):
    dtmf_events: list[Literal[tuple(common.DTMFDigits.keys())]]  # type: ignore[valid-type]


class _EventInput(_Model):
    event_type: Literal[tuple(pb.EventInput.EventType.keys())]  # type: ignore[valid-type]
    name: StrictStr = ""
    parameters: Map | None = None


class _InputType(_Model):
    audio_input: _AudioInput | None = None
    dtmf_input: _DtmfInput | None = None
    event_input: _EventInput | None = None


class _Request(_Model):
    conversation_id: StrictStr = Field(min_length=1, max_length=_MAX_ID)
    customer_org_id: StrictStr
    virtual_agent_id: StrictStr = ""
    allow_partial_responses: StrictBool | None = None
    vendor_specific_config: StrictStr = ""
    metadata: Map | None = None
    additional_info: Map | None = None
    voice_va_input_type: _InputType


class Envelope(_Model):
    """Every ``/v1/va`` frame: the base fields, plus a payload or the ERROR fields."""

    type: Literal["VOICE_VA_REQUEST", "VOICE_VA_RESPONSE", "ERROR", "PING", "PONG"]
    seq: StrictInt = Field(ge=1)
    ts: AwareDatetime
    conversation_id: StrictStr = Field(min_length=1, max_length=_MAX_ID)
    metadata: Map | None = None
    #: A ``VoiceVARequest`` (the only payload a server receives; anything else is refused).
    payload: _Request | None = None
    code: StrictStr | None = None
    status: StrictInt | None = None
    detail: StrictStr | None = None


def _describe(exc: ValidationError, what: str) -> str:
    """The first problem, by field path (no values: they may be audio or personal data)."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or what
    return f"{what}: {where}: {err['msg']}"


def parse_envelope(text: str) -> Envelope:
    """One text frame as an envelope, or :class:`WsProtocolError` (``bad_request``).

    Parsing and validation happen in one pass in pydantic-core (the per-frame cost of
    caller audio; see benchmarks/test_ws_envelope_bench.py).
    """
    try:
        return Envelope.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise bad_request("frame is not valid JSON") from None
        if not first["loc"]:
            raise bad_request("frame is not a JSON object") from None
        if first["loc"] == ("type",) and first["type"] == "literal_error":
            raise bad_request(f"unknown envelope type {str(first['input'])[:40]!r}") from None
        raise bad_request(_describe(exc, "envelope")) from None


def request_from_payload(model: _Request | None) -> pb.VoiceVARequest:
    """A ``VOICE_VA_REQUEST`` payload as the engine's protobuf request."""
    if model is None:
        raise bad_request("VOICE_VA_REQUEST without payload")
    kinds = model.voice_va_input_type
    present = [k for k in ("audio_input", "dtmf_input", "event_input") if getattr(kinds, k)]
    if len(present) != 1:
        raise bad_request("voice_va_input_type must hold exactly one of audio_input, "
                          "dtmf_input, event_input")  # fmt: skip
    request = pb.VoiceVARequest(
        conversation_id=model.conversation_id, customer_org_id=model.customer_org_id
    )
    if model.virtual_agent_id:
        request.virtual_agent_id = model.virtual_agent_id
    if model.allow_partial_responses:
        request.allow_partial_responses = True
    if model.vendor_specific_config:
        request.vendor_specific_config = model.vendor_specific_config
    if model.additional_info:
        request.additional_info.update({k: _text(v) for k, v in model.additional_info.items()})
    if kinds.audio_input is not None:
        _audio(kinds.audio_input, request.audio_input)
    elif kinds.dtmf_input is not None:
        request.dtmf_input.CopyFrom(pb.DTMFInputs(dtmf_events=kinds.dtmf_input.dtmf_events))
    elif kinds.event_input is not None:
        event = kinds.event_input
        request.event_input.CopyFrom(pb.EventInput(event_type=event.event_type, name=event.name))
        if event.parameters:
            request.event_input.parameters.update(event.parameters)
    return request


def _audio(audio: _AudioInput, message: pb.VoiceInput) -> None:
    """Fill ``message`` in place (no copy of the frame's audio into a parent message)."""
    encoding = _ENCODINGS.get(audio.encoding)
    if encoding is None:
        raise WsProtocolError(
            ErrorCode.UNSUPPORTED_MEDIA,
            f"encoding {audio.encoding[:40]!r} is not supported "
            f"(use {', '.join(sorted(SUPPORTED_ENCODINGS))})",
        )
    if audio.sample_rate_hertz not in SUPPORTED_RATES:
        raise WsProtocolError(
            ErrorCode.UNSUPPORTED_MEDIA,
            f"sample_rate_hertz {audio.sample_rate_hertz} is not supported "
            f"(use {', '.join(str(r) for r in sorted(SUPPORTED_RATES))})",
        )
    message.caller_audio = audio.caller_audio_b64
    message.encoding = encoding  # type: ignore[assignment]
    message.sample_rate_hertz = audio.sample_rate_hertz
    if audio.language_code:
        message.language_code = audio.language_code
    if audio.is_single_utterance:
        message.is_single_utterance = True
    if audio.audio_timestamp is not None:
        message.audio_timestamp.FromDatetime(audio.audio_timestamp)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# --- outbound ------------------------------------------------------------------------------


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with milliseconds and a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _struct(value: struct_pb2.Struct) -> dict[str, Any]:
    return dict(json_format.MessageToDict(value))


def response_payload(response: pb.VoiceVAResponse, *, audio_marker: bool = False) -> dict[str, Any]:
    """A ``VoiceVAResponse`` as the WebSocket payload (only the fields that are set).

    ``audio_marker`` adds the prompt with empty audio that ends a streamed reply (a FINAL
    without any prompt may leave Webex collecting; reference §7.3).
    ``speech_timers.no_input_timeout_msec`` is left out: the WebSocket schema's
    ``InputSpeechTimers`` has no such field and is closed.
    """
    out: dict[str, Any] = {
        "response_type": pb.VoiceVAResponse.ResponseType.Name(response.response_type)
    }
    prompts = [_prompt(p) for p in response.prompts]
    if audio_marker and not any("audio_content_b64" in p for p in prompts):
        prompts.append({"audio_content_b64": ""})
    if prompts:
        out["prompts"] = prompts
    if response.output_events:
        out["output_events"] = [
            {
                "event_type": pb.OutputEvent.EventType.Name(e.event_type),
                **({"name": e.name} if e.name else {}),
                **({"metadata": _struct(e.metadata)} if e.metadata.fields else {}),
            }
            for e in response.output_events
        ]
    if response.input_sensitive:
        out["input_sensitive"] = True
    if response.input_mode:
        out["input_mode"] = common.VoiceVAInputMode.Name(response.input_mode)
    if response.HasField("input_handling_config"):
        out["input_handling_config"] = _handling(response.input_handling_config)
    for name in ("session_transcript", "session_summary"):
        content: common.TextContent = getattr(response, name)
        which = content.WhichOneof("input_content")
        if which is not None:
            out[name] = {which: getattr(content, which)}
    return out


def _prompt(prompt: pb.Prompt) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if prompt.text:
        out["text"] = prompt.text
    if prompt.audio_content:
        out["audio_content_b64"] = base64.b64encode(prompt.audio_content).decode("ascii")
    out["is_barge_in_enabled"] = prompt.is_barge_in_enabled
    return out


def _handling(config: common.InputHandlingConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if config.HasField("dtmf_config"):
        dtmf = config.dtmf_config
        out["dtmf_config"] = {
            "inter_digit_timeout_msec": dtmf.inter_digit_timeout_msec,
            "dtmf_input_length": dtmf.dtmf_input_length,
            **({"termchar": common.DTMFDigits.Name(dtmf.termchar)} if dtmf.termchar else {}),
        }
    if config.HasField("speech_timers"):
        timers = config.speech_timers
        out["speech_timers"] = {
            "max_speech_timeout_msec": timers.max_speech_timeout_msec,
            "complete_timeout_msec": timers.complete_timeout_msec,
            "incomplete_timeout_msec": timers.incomplete_timeout_msec,
        }
    return out


def envelope_json(
    kind: Literal["VOICE_VA_RESPONSE", "ERROR", "PONG"],
    seq: int,
    conversation_id: str,
    **fields: Any,
) -> str:
    """One outbound frame; ``fields`` are ``payload`` or the ERROR fields."""
    return json.dumps(
        {"type": kind, "seq": seq, "ts": now_rfc3339(), "conversation_id": conversation_id}
        | fields,
        separators=(",", ":"),
    )


def pong_json(ping_seq: int, conversation_id: str) -> str:
    """The PONG for a PING: the PING's own ``seq`` echoed (WX-TS), a fresh ``ts``."""
    return envelope_json("PONG", ping_seq, conversation_id)


def error_json(seq: int, conversation_id: str, error: WsProtocolError) -> str:
    return envelope_json(
        "ERROR",
        seq,
        conversation_id,
        code=str(error.code),
        status=error.status,
        detail=error.detail,
    )
