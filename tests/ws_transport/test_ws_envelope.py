"""Envelope validation, payload mapping and reply framing of the WebSocket transport."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from byova_media._proto import byova_common_pb2 as common
from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.ws.envelope import parse_envelope, request_from_payload, response_payload
from byova_media.ws.errors import ErrorCode, WsProtocolError
from byova_media.ws.framing import MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, ReplyFramer


def _payload(input_type: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "conversation_id": "c-1",
        "customer_org_id": "o-1",
        "voice_va_input_type": input_type,
        **more,
    }


def _parse(payload: dict[str, Any]) -> pb.VoiceVARequest:
    """A payload through the whole inbound path: envelope, validation, protobuf."""
    frame = {"type": "VOICE_VA_REQUEST", "seq": 1, "ts": "2026-11-20T09:00:00Z",
             "conversation_id": "c-1", "payload": payload}  # fmt: skip
    return request_from_payload(parse_envelope(json.dumps(frame)).payload)


def _refused(call: Any, code: ErrorCode = ErrorCode.BAD_REQUEST) -> str:
    with pytest.raises(WsProtocolError) as refused:
        call()
    assert refused.value.code is code
    return refused.value.detail


def test_envelope_requires_the_base_fields_and_an_aware_timestamp() -> None:
    good = {"type": "PING", "seq": 1, "ts": "2026-11-20T09:00:00.5+01:00", "conversation_id": "c"}
    assert parse_envelope(json.dumps(good)).seq == 1
    for broken in (
        {**good, "seq": 0},
        {**good, "seq": "1"},
        {**good, "ts": "2026-11-20T09:00:00"},  # no zone: not RFC 3339
        {**good, "ts": "yesterday"},
        {**good, "conversation_id": ""},
        {k: v for k, v in good.items() if k != "ts"},
    ):
        _refused(lambda b=broken: parse_envelope(json.dumps(b)))
    assert "unknown envelope type" in _refused(lambda: parse_envelope('{"type": "HELLO"}'))
    assert "not a JSON object" in _refused(lambda: parse_envelope("[1]"))


def test_maps_are_accepted_as_objects_or_key_value_lists() -> None:
    for params in ({"lang": "en"}, [{"key": "lang", "value": "en"}]):
        request = _parse(
            _payload(
                {"event_input": {"event_type": "SESSION_START", "parameters": params}},
                additional_info=[{"key": "k", "value": "v"}],
                metadata=[],
            )
        )
        assert dict(request.event_input.parameters) == {"lang": "en"}
        assert dict(request.additional_info) == {"k": "v"}
    _refused(
        lambda: _parse(
            _payload({"event_input": {"event_type": "NO_INPUT", "parameters": [{"k": 1}]}})
        )
    )


def test_audio_frames_carry_their_format_and_base64_audio() -> None:
    audio = {"caller_audio_b64": "//////////8=", "encoding": "MULAW_FORMAT"}
    request = _parse(
        _payload({"audio_input": {**audio, "sample_rate_hertz": 8000, "is_single_utterance": None}})
    )
    assert request.audio_input.caller_audio == b"\xff" * 8
    assert request.audio_input.encoding == pb.VoiceInput.MULAW_FORMAT
    assert "sample_rate_hertz" in _refused(lambda: _parse(_payload({"audio_input": audio})))
    assert "base64" in _refused(
        lambda: _parse(
            _payload({"audio_input": {**audio, "sample_rate_hertz": 8000, "caller_audio_b64": "*"}})
        )
    )
    for media in ({"encoding": "OPUS"}, {"sample_rate_hertz": 7999}):
        frame = {**audio, "sample_rate_hertz": 8000, **media}
        _refused(
            lambda f=frame: _parse(_payload({"audio_input": f})),
            ErrorCode.UNSUPPORTED_MEDIA,
        )


def test_exactly_one_input_kind_and_known_enum_names() -> None:
    both = {"event_input": {"event_type": "NO_INPUT"}, "dtmf_input": {"dtmf_events": []}}
    assert "exactly one" in _refused(lambda: _parse(_payload(both)))
    _refused(lambda: _parse(_payload({})))
    _refused(lambda: _parse(_payload({"dtmf_input": {"dtmf_events": ["ONE"]}})))
    _refused(lambda: _parse(_payload({"event_input": {"event_type": 1}})))
    digits = _parse(
        _payload({"dtmf_input": {"dtmf_events": ["DTMF_DIGIT_ONE", "DTMF_DIGIT_POUND"]}})
    )
    assert list(digits.dtmf_input.dtmf_events) == [
        common.DTMF_DIGIT_ONE,
        common.DTMF_DIGIT_POUND,
    ]


def test_response_payload_uses_names_base64_and_no_no_input_timer() -> None:
    response = pb.VoiceVAResponse(
        response_type=pb.VoiceVAResponse.FINAL,
        prompts=[pb.Prompt(audio_content=b"\x01\x02", text="hi", is_barge_in_enabled=True)],
        output_events=[pb.OutputEvent(event_type=pb.OutputEvent.TRANSFER_TO_AGENT, name="x")],
        input_mode=common.INPUT_VOICE_DTMF,
    )
    response.input_handling_config.dtmf_config.termchar = common.DTMF_DIGIT_POUND
    response.input_handling_config.speech_timers.no_input_timeout_msec = 10_000
    response.session_transcript.text = "Caller: hi"
    out = response_payload(response)
    assert out["response_type"] == "FINAL" and out["input_mode"] == "INPUT_VOICE_DTMF"
    assert out["prompts"] == [
        {"text": "hi", "audio_content_b64": base64.b64encode(b"\x01\x02").decode(),
         "is_barge_in_enabled": True}
    ]  # fmt: skip
    assert out["output_events"] == [{"event_type": "TRANSFER_TO_AGENT", "name": "x"}]
    assert out["input_handling_config"]["dtmf_config"]["termchar"] == "DTMF_DIGIT_POUND"
    assert "no_input_timeout_msec" not in json.dumps(out)
    assert out["session_transcript"] == {"text": "Caller: hi"}


def _chunk(audio: bytes, barge: bool = True) -> pb.VoiceVAResponse:
    return pb.VoiceVAResponse(
        response_type=pb.VoiceVAResponse.CHUNK,
        prompts=[pb.Prompt(audio_content=audio, is_barge_in_enabled=barge)],
    )


@settings(deadline=None, max_examples=60)  # no timing on a shared machine
@given(st.lists(st.integers(min_value=1, max_value=70_000), min_size=1, max_size=12))
def test_framer_sends_every_byte_in_chunks_of_320_b_to_32_kib(sizes: list[int]) -> None:
    framer = ReplyFramer()
    audio = bytes(i % 251 for i in range(sum(sizes)))
    sent: list[tuple[pb.VoiceVAResponse, bool]] = []
    offset = 0
    for size in sizes:
        sent += framer.frame(_chunk(audio[offset : offset + size]))
        offset += size
    sent += framer.frame(pb.VoiceVAResponse(response_type=pb.VoiceVAResponse.FINAL))
    chunks = [r.prompts[0].audio_content for r, _ in sent[:-1]]
    assert all(MIN_CHUNK_BYTES <= len(c) <= MAX_CHUNK_BYTES for c in chunks)
    joined = b"".join(chunks)
    assert joined[: len(audio)] == audio
    assert set(joined[len(audio) :]) <= {0xFF} and len(joined) - len(audio) < MIN_CHUNK_BYTES
    final, marker = sent[-1]
    assert final.response_type == pb.VoiceVAResponse.FINAL and marker


def test_boundary_events_become_standalone_finals_and_barge_drops_the_tail() -> None:
    framer = ReplyFramer()
    start = pb.VoiceVAResponse(
        response_type=pb.VoiceVAResponse.CHUNK,
        output_events=[pb.OutputEvent(event_type=pb.OutputEvent.START_OF_INPUT)],
    )
    ((event, marker),) = framer.frame(start)
    assert event.response_type == pb.VoiceVAResponse.FINAL and not marker
    assert framer.frame(_chunk(b"\x00" * 100)) == []
    framer.drop_bargeable_tail()
    ((final, marker),) = framer.frame(pb.VoiceVAResponse(response_type=pb.VoiceVAResponse.FINAL))
    assert final.response_type == pb.VoiceVAResponse.FINAL and marker is False
