"""The native and Twilio message codecs, and the plugin's settings."""

from __future__ import annotations

import base64
import json

import pytest

from byova_media.config import ConfigError
from byova_websocket.native import NativeProtocol
from byova_websocket.protocol import (
    BoundaryEvent,
    ClearEvent,
    CustomEventMessage,
    EndEvent,
    MarkEvent,
    MediaEvent,
    ProtocolError,
    ReadyEvent,
    SessionInfo,
    TranscriptEvent,
    TransferEvent,
)
from byova_websocket.settings import load_connectors
from byova_websocket.twilio import TwilioProtocol

INFO = SessionInfo("conv-1", "websocket", "org-1", "track-1", "en-US", {"a": "b", "n": 3})


def test_native_start_and_resume_carry_the_session() -> None:
    proto = NativeProtocol()
    start = json.loads(proto.opening(INFO, resumed=False)[0])
    assert start["type"] == "start"
    assert start["parameters"] == {"a": "b", "n": 3}
    assert start["audio"] == {
        "encoding": "mulaw",
        "sample_rate": 8000,
        "frame_ms": 20,
        "transport": "binary",
    }
    resume = json.loads(proto.opening(INFO, resumed=True)[0])
    assert resume["type"] == "resume" and resume["conversation_id"] == "conv-1"


def test_native_caller_audio_binary_or_base64() -> None:
    assert NativeProtocol("binary").audio(b"\x01\x02") == b"\x01\x02"
    text = NativeProtocol("base64").audio(b"\x01\x02")
    assert isinstance(text, str)
    assert base64.b64decode(json.loads(text)["audio"]) == b"\x01\x02"


@pytest.mark.parametrize(
    ("message", "event"),
    [
        (b"\xff\x7f", MediaEvent(b"\xff\x7f")),
        ('{"type":"audio","audio":"/38="}', MediaEvent(b"\xff\x7f")),
        ('{"type":"clear"}', ClearEvent()),
        ('{"type":"mark","name":"m1"}', MarkEvent("m1")),
        ('{"type":"transfer","metadata":{"q":"x"}}', TransferEvent({"q": "x"})),
        ('{"type":"end"}', EndEvent({})),
        ('{"type":"custom_event","name":"pay","metadata":{}}', CustomEventMessage("pay", {})),
        ('{"type":"transcript","text":"hi"}', TranscriptEvent("hi", None)),
        ('{"type":"start_of_input"}', BoundaryEvent("start")),
        ('{"type":"end_of_input"}', BoundaryEvent("end")),
        ('{"type":"ready","turn_taking":"backend"}', ReadyEvent("backend")),
    ],
)
def test_native_decodes_every_backend_message(message: str | bytes, event: object) -> None:
    assert NativeProtocol().decode(message) == [event]


def test_native_ignores_unknown_types_and_rejects_garbage() -> None:
    proto = NativeProtocol()
    assert proto.decode('{"type":"future_thing"}') == []
    for bad in (
        "not json",
        "[1]",
        '{"type":"audio","audio":"***"}',
        '{"type":"end","metadata":3}',
        '{"no":"type"}',
        '{"type":"custom_event"}',
        '{"type":"ready","turn_taking":"x"}',
    ):
        with pytest.raises(ProtocolError):
            proto.decode(bad)


def test_twilio_stream_messages_are_numbered() -> None:
    proto = TwilioProtocol()
    connected, start = (json.loads(m) for m in proto.opening(INFO, resumed=False))
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    body = start["start"]
    assert body["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert body["customParameters"]["a"] == "b"
    assert body["customParameters"]["n"] == "3"  # Twilio parameters are strings
    assert body["customParameters"]["byova_resumed"] == "false"
    first, second = (json.loads(proto.audio(bytes([n]) * 160)) for n in (1, 2))
    assert (first["sequenceNumber"], second["sequenceNumber"]) == ("2", "3")
    assert (first["media"]["chunk"], second["media"]["chunk"]) == ("1", "2")
    assert (first["media"]["timestamp"], second["media"]["timestamp"]) == ("0", "20")
    assert base64.b64decode(second["media"]["payload"]) == b"\x02" * 160
    assert first["streamSid"] == body["streamSid"]
    digits = [json.loads(m)["dtmf"]["digit"] for m in proto.dtmf("12#")]
    assert digits == ["1", "2", "#"]
    assert json.loads(proto.stop("caller_hangup")[0])["event"] == "stop"
    assert json.loads(proto.mark_played("m")[0])["mark"] == {"name": "m"}


def test_twilio_decodes_media_mark_clear_and_byova_extensions() -> None:
    proto = TwilioProtocol()
    media = json.dumps({"event": "media", "streamSid": "s", "media": {"payload": "/38="}})
    assert proto.decode(media) == [MediaEvent(b"\xff\x7f")]
    assert proto.decode('{"event":"clear","streamSid":"s"}') == [ClearEvent()]
    assert proto.decode('{"event":"mark","mark":{"name":"x"}}') == [MarkEvent("x")]
    assert proto.decode('{"event":"mark","mark":{"name":"byova:transfer"}}') == [TransferEvent()]
    assert proto.decode('{"event":"mark","mark":{"name":"byova:end"}}') == [EndEvent()]
    ext = '{"event":"byova","byova":{"type":"custom_event","name":"n","metadata":{"k":1}}}'
    assert proto.decode(ext) == [CustomEventMessage("n", {"k": 1})]
    assert proto.decode('{"event":"something_else"}') == []
    for bad in (b"\x00", "{", '{"event":"media","media":{}}', '{"event":"mark","mark":1}'):
        with pytest.raises(ProtocolError):
            proto.decode(bad)


def test_settings_from_environment_strings() -> None:
    (only,) = load_connectors(
        {
            "url": "wss://bot.example/ws?token=abc",
            "protocol": "twilio",
            "headers": '{"Authorization": "Bearer s3cret"}',
            "reply_idle_ms": "500",
        }
    )
    assert only.virtual_agent_id == "websocket"
    assert only.backend_turns  # the Twilio default
    assert only.reply_idle_ms == 500
    assert only.headers["Authorization"].get_secret_value() == "Bearer s3cret"
    assert "s3cret" not in repr(only)
    assert only.safe_url == "wss://bot.example/ws"  # no query: it may carry a token


def test_settings_per_agent_sections_inherit_the_top_level() -> None:
    found = load_connectors(
        {
            "protocol": "twilio",
            "agents": {
                "sales": {"url": "ws://a/"},
                "care": {"url": "ws://b/", "protocol": "native"},
            },
        }
    )
    assert [(c.virtual_agent_id, c.protocol) for c in found] == [
        ("sales", "twilio"),
        ("care", "native"),
    ]
    assert not found[1].backend_turns
    assert load_connectors({}) == []


@pytest.mark.parametrize(
    "raw",
    [
        {"url": "http://not-a-websocket/"},
        {"url": "ws://h/", "protocol": "sip"},
        {"url": "ws://h/", "headers": "{not json"},
        {"url": "ws://h/", "headers": "[1]"},
        {"url": "ws://h/", "unknown_key": 1},
        {"url": "ws://h/", "proxy": "ftp://p"},
    ],
)
def test_bad_settings_are_config_errors(raw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        load_connectors(raw)


def test_header_values_never_appear_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load_connectors({"url": "ws://h/", "headers": {"X-Token": ["s3cret-list"]}})
    assert "s3cret" not in str(info.value)
