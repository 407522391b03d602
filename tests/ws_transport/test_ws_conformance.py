"""The 13 minimal conformance scenarios of docs/byova-websocket.md §13, against a real
``byova-media serve --plugin echo --ws-port`` process and a client built from the reference."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
import websockets
from fake_idbroker import new_signing_key
from webex_ws_client import FRAME, WebexSocket, audio_of, connect, events_of, is_event_final

from byova_media.audio.codecs import pcm_to_ulaw
from conftest import WS_SCHEMA, WSS_URL, WsServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SILENCE = b"\xff" * FRAME
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def speech_ulaw(speech: Any, ms: int, seed: int = 1) -> bytes:
    return pcm_to_ulaw(speech(ms, seed=seed))


def silence(ms: int) -> bytes:
    return SILENCE * (ms // 20)


async def open_call(server: WsServer, **kwargs: Any) -> WebexSocket:
    sock = await connect(server.url(), server.token())
    for key, value in kwargs.items():
        setattr(sock, key, value)
    return sock


async def welcomed(server: WsServer) -> WebexSocket:
    sock = await open_call(server)
    await sock.start()
    await sock.reply()
    return sock


def payload(frame: dict[str, Any]) -> dict[str, Any]:
    assert frame["type"] == "VOICE_VA_RESPONSE", frame
    result: dict[str, Any] = frame["payload"]
    return result


def assert_error(frame: dict[str, Any], code: str, status: int, conversation: str | None) -> None:
    assert frame["type"] == "ERROR", frame
    assert (frame["code"], frame["status"]) == (code, status)
    assert isinstance(frame["detail"], str) and frame["detail"]
    assert isinstance(frame["seq"], int) and frame["seq"] >= 1
    assert RFC3339.match(frame["ts"])
    if conversation is not None:
        assert frame["conversation_id"] == conversation
    assert "payload" not in frame


# --- 1. authentication at the upgrade ---------------------------------------------------------


async def test_1_valid_bearer_upgrades_and_bare_token_is_accepted(ws_server: WsServer) -> None:
    for header in (f"Bearer {ws_server.token()}", ws_server.token()):
        sock = await connect(ws_server.url(), Authorization=header)
        await sock.start()
        assert payload((await sock.reply())[-1])["response_type"] == "FINAL"
        await sock.close()


@pytest.mark.parametrize(
    "attack",
    ["missing", "expired", "wrong_schema", "grpc_schema", "wrong_url", "bad_signature", "issuer"],
)
@pytest.mark.parametrize("path", ["/v1/va", "/v1/listVirtualAgents"])
async def test_1_bad_tokens_get_401_and_no_socket(
    ws_server: WsServer, attack: str, path: str
) -> None:
    broker = ws_server.broker
    tokens = {
        "missing": None,
        "expired": ws_server.token(exp=1_000_000_000, iat=999_990_000),
        "wrong_schema": ws_server.token(schema="00000000-0000-4000-8000-000000000000"),
        "grpc_schema": ws_server.token(schema="5397013b-7920-4ffc-807c-e8a3e0a18f43"),
        "wrong_url": ws_server.token(url="wss://other.example.test"),
        "bad_signature": broker.mint(
            broker.claims(url=WSS_URL, schema=WS_SCHEMA),
            key=new_signing_key(broker.key().kid),
        ),
        "issuer": broker.mint(
            broker.claims("unlisted", url=WSS_URL, schema=WS_SCHEMA),
            name="unlisted",
        ),
    }
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(ws_server.url(path), tokens[attack])
    assert refused.value.response.status_code == 401


# --- 2. discovery -----------------------------------------------------------------------------


async def test_2_discovery_answers_one_bare_list_and_closes(ws_server: WsServer) -> None:
    ws = await websockets.connect(
        ws_server.url("/v1/listVirtualAgents"),
        additional_headers={"Authorization": f"Bearer {ws_server.token()}"},
    )
    await ws.send(json.dumps({"customer_org_id": "o-1", "is_default_virtual_agent_enabled": True}))
    answer = json.loads(await ws.recv())
    assert "type" not in answer
    assert {"id": "echo", "name": "Echo (repeats the caller)"}.items() <= answer["virtual_agents"][
        0
    ].items()
    with pytest.raises(websockets.ConnectionClosedOK):
        await ws.recv()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "VOICE_VA_REQUEST", "seq": 1, "payload": {"customer_org_id": "o-1"}},
        {"is_default_virtual_agent_enabled": True},
        "not json",
    ],
)
async def test_2_enveloped_or_malformed_discovery_is_rejected(
    ws_server: WsServer, frame: Any
) -> None:
    ws = await websockets.connect(
        ws_server.url("/v1/listVirtualAgents"),
        additional_headers={"Authorization": f"Bearer {ws_server.token()}"},
    )
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    with pytest.raises(websockets.ConnectionClosedError) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code != 1000


# --- 3. welcome -------------------------------------------------------------------------------


async def test_3_session_start_gets_one_welcome_reply(ws_server: WsServer) -> None:
    sock = await open_call(ws_server)
    await sock.start()
    frames = await sock.reply()
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    for frame in frames:
        assert frame["conversation_id"] == sock.conversation_id
        assert RFC3339.match(frame["ts"]) and datetime.fromisoformat(frame["ts"])
    final = payload(frames[-1])
    assert [payload(f)["response_type"] for f in frames[:-1]] == ["CHUNK"] * (len(frames) - 1)
    assert final["input_mode"] in {"INPUT_VOICE", "INPUT_EVENT_DTMF", "INPUT_VOICE_DTMF"}
    assert "no_input_timeout_msec" not in json.dumps(frames)
    assert sum(len(audio_of(f)) for f in frames) > 0
    await sock.close()


# --- 4. audio turns ---------------------------------------------------------------------------


async def test_4_two_audio_turns_on_one_socket(ws_server: WsServer, speech: Any) -> None:
    sock = await welcomed(ws_server)
    for turn in range(2):
        spoken = speech_ulaw(speech, 1200, seed=turn + 1)
        await sock.audio(silence(600) + spoken + silence(1200))
        frames = await sock.reply()
        kinds = [events_of(f) for f in frames]
        # Nothing answered the leading silence: the first frame of the turn is START_OF_INPUT.
        assert kinds[0] == ["START_OF_INPUT"] and is_event_final(frames[0])
        assert kinds.count(["START_OF_INPUT"]) == 1
        assert kinds.count(["END_OF_INPUT"]) == 1
        end = kinds.index(["END_OF_INPUT"])
        chunks = frames[end + 1 : -1]
        assert chunks and all(payload(f)["response_type"] == "CHUNK" for f in chunks)
        for frame in chunks:
            audio = audio_of(frame)
            assert not audio.startswith(b"RIFF")
            assert 320 <= len(audio) <= 32 * 1024
        final = payload(frames[-1])
        assert final["response_type"] == "FINAL"
        assert [p.get("audio_content_b64") for p in final["prompts"]] == [""]
        heard = sum(len(audio_of(f)) for f in chunks)
        assert abs(heard - len(spoken)) < 8 * 600  # the echo is the utterance, ±0.6 s
    await sock.close()


# --- 5. barge-in ------------------------------------------------------------------------------


async def test_5_speech_during_a_bargeable_reply_interrupts_it(
    ws_server: WsServer, speech: Any
) -> None:
    sock = await welcomed(ws_server)
    await sock.audio(silence(200) + speech_ulaw(speech, 6000, seed=3) + silence(900))
    await sock.until(lambda f: events_of(f) == ["END_OF_INPUT"])
    await sock.until(lambda f: bool(audio_of(f)))  # the 6 s echo is playing
    assert any(p.get("is_barge_in_enabled") for p in payload(sock.received[-1])["prompts"])
    spoken = speech_ulaw(speech, 1000, seed=4)
    await sock.audio(spoken + silence(1000))
    frames = await sock.until(lambda f: events_of(f) == ["START_OF_INPUT"])
    frames += await sock.until(lambda f: events_of(f) == ["END_OF_INPUT"])
    start = next(i for i, f in enumerate(frames) if events_of(f) == ["START_OF_INPUT"])
    after_start = frames[start + 1 :]
    assert not [f for f in after_start if payload(f)["response_type"] == "CHUNK"]
    answer = await sock.reply()
    heard = sum(len(audio_of(f)) for f in answer)
    assert 0 < heard < 8 * 3000  # the new 1 s utterance, not the rest of the 6 s one
    await sock.close()


# --- 6. DTMF ----------------------------------------------------------------------------------


async def test_6_dtmf_in_event_mode_without_audio(ws_server: WsServer) -> None:
    sock = await welcomed(ws_server)
    await sock.event("START_OF_DTMF")
    answer = await sock.reply()  # an empty FINAL is tolerated; nothing else may come
    assert [payload(f).get("prompts") for f in answer] == [None]
    await sock.dtmf("DTMF_DIGIT_TWO", "DTMF_DIGIT_ONE", "DTMF_DIGIT_POUND")
    reply = await sock.reply()
    texts = [p.get("text", "") for f in reply for p in payload(f).get("prompts", [])]
    assert "Digits so far: 2 1" in texts  # echo reads the keys back in order at the #
    await sock.close()


# --- 7. heartbeats ----------------------------------------------------------------------------


async def test_7_ping_gets_pong_with_the_same_seq_also_mid_stream(
    ws_server: WsServer, speech: Any
) -> None:
    sock = await open_call(ws_server)
    await sock.start()
    ping = await sock.ping()
    # The PONG and the welcome may come in either order; wait for both.
    await sock.until(lambda f: f["type"] == "PONG")
    if not any(f["type"] == "VOICE_VA_RESPONSE" and payload(f)["response_type"] == "FINAL"
               for f in sock.received):  # fmt: skip
        await sock.reply()
    (pong,) = [f for f in sock.received if f["type"] == "PONG"]
    assert pong["seq"] == ping and pong["conversation_id"] == sock.conversation_id
    assert "payload" not in pong
    await sock.audio(speech_ulaw(speech, 1500) + silence(900))
    await sock.until(lambda f: events_of(f) == ["END_OF_INPUT"])
    ping = await sock.ping()  # while the echo streams
    frames = await sock.until(lambda f: f["type"] == "PONG")
    assert frames[-1]["seq"] == ping
    if not any(f["type"] == "VOICE_VA_RESPONSE" and not is_event_final(f)
               and payload(f)["response_type"] == "FINAL" for f in frames):  # fmt: skip
        await sock.reply()
    own = [f["seq"] for f in sock.received if f["type"] != "PONG"]
    assert own == sorted(set(own)) and own[0] == 1
    await sock.close()


# --- 8. bad envelopes -------------------------------------------------------------------------


async def _bad(sock: WebexSocket, case: str) -> None:
    if case == "invalid_json":
        await sock.ws.send("{not json")
    elif case == "unknown_type":
        await sock.send("VOICE_VA_SHOUT")
    elif case == "missing_seq":
        await sock.ws.send(
            json.dumps({"type": "PING", "ts": "2026-11-20T09:00:00Z", "conversation_id": "x"})
        )
    elif case == "seq_regression":
        sock.seq = 0
        await sock.ping()
    elif case == "mismatched_conversation":
        sock.conversation_id = "another-call"
        await sock.ping()
    elif case == "binary":
        await sock.ws.send(b"\x00\x01")


@pytest.mark.parametrize(
    "case",
    [
        "invalid_json",
        "unknown_type",
        "missing_seq",
        "seq_regression",
        "mismatched_conversation",
        "binary",
    ],
)
async def test_8_bad_envelope_gets_bad_request_then_close(ws_server: WsServer, case: str) -> None:
    sock = await welcomed(ws_server)
    conversation = sock.conversation_id
    await _bad(sock, case)
    code = await sock.closed()
    error = sock.received[-1]
    assert_error(error, "bad_request", 400, conversation)
    assert error["seq"] > max(f["seq"] for f in sock.received[:-1])
    assert code is not None and code != 1000


# --- 9. unsupported media ---------------------------------------------------------------------


async def test_9_unsupported_encoding_gets_unsupported_media(ws_server: WsServer) -> None:
    sock = await welcomed(ws_server)
    await sock.audio(silence(40), encoding="OPUS_FORMAT")
    code = await sock.closed()
    assert_error(sock.received[-1], "unsupported_media", 415, sock.conversation_id)
    assert code is not None and code != 1000


# --- 10. NO_INPUT -----------------------------------------------------------------------------


async def test_10_no_input_gets_a_reprompt(ws_server: WsServer) -> None:
    sock = await welcomed(ws_server)
    await sock.event("NO_INPUT")
    reply = await sock.reply()
    texts = [p.get("text", "") for f in reply for p in payload(f).get("prompts", [])]
    assert any("did not hear" in t for t in texts)
    assert sum(len(audio_of(f)) for f in reply) > 0
    await sock.close()


# --- 11. server-side end ----------------------------------------------------------------------


@pytest.mark.parametrize(("digit", "event"), [("DTMF_DIGIT_ZERO", "TRANSFER_TO_AGENT"),
                                              ("DTMF_DIGIT_STAR", "SESSION_END")])  # fmt: skip
async def test_11_transfer_or_end_then_later_audio_is_ignored_and_close_1000(
    ws_server: WsServer, speech: Any, digit: str, event: str
) -> None:
    sock = await welcomed(ws_server)
    await sock.dtmf(digit)
    reply = await sock.reply()
    final = payload(reply[-1])
    assert [e["event_type"] for e in final["output_events"]] == [event]
    assert not any(
        p.get("is_barge_in_enabled") for f in reply for p in payload(f).get("prompts", [])
    )
    before = len(sock.received)
    await sock.audio(speech_ulaw(speech, 800) + silence(900))
    code = await sock.closed()  # the server's close timeout (1 s here): Webex did not close
    assert code == 1000
    assert sock.received[before:] == []


# --- 12. caller hang-up, and one socket per conversation --------------------------------------


async def test_12_caller_session_end_frees_the_conversation(ws_server: WsServer) -> None:
    sock = await welcomed(ws_server)
    await sock.event("SESSION_END")
    frames = await sock.until(lambda f: f["type"] != "PONG")
    assert payload(frames[-1])["response_type"] == "FINAL"  # tolerated
    assert await sock.closed() == 1000
    # Freed: a new socket for the id is not refused as a second live socket; the engine
    # refuses the ended conversation itself (no resumption on WebSocket).
    again = await open_call(ws_server, conversation_id=sock.conversation_id)
    await again.start()
    await again.closed()
    assert_error(again.received[-1], "bad_request", 409, sock.conversation_id)
    assert "ended" in again.received[-1]["detail"]


async def test_12_second_session_start_is_rejected(ws_server: WsServer) -> None:
    sock = await welcomed(ws_server)
    await sock.start()
    await sock.closed()
    assert_error(sock.received[-1], "bad_request", 400, sock.conversation_id)


async def test_12_concurrent_socket_for_a_live_conversation_is_rejected(
    ws_server: WsServer,
) -> None:
    first = await welcomed(ws_server)
    second = await open_call(ws_server, conversation_id=first.conversation_id)
    await second.start()
    await second.closed()
    assert second.received[-1]["type"] == "ERROR"
    assert second.received[-1]["code"] == "bad_request"
    ping = await first.ping()  # the first socket is unaffected
    assert (await first.until(lambda f: f["type"] == "PONG"))[-1]["seq"] == ping
    await first.close()


# --- 13. protobuf-style maps ------------------------------------------------------------------


async def test_13_maps_as_key_value_lists_and_empty_lists(ws_server: WsServer) -> None:
    sock = await open_call(ws_server)
    await sock.request(
        {
            "event_input": {
                "event_type": "SESSION_START",
                "parameters": [{"key": "lang", "value": "en-US"}],
            }
        },
        metadata=[],
        additional_info=[{"key": "k", "value": "v"}],
    )
    assert payload((await sock.reply())[-1])["response_type"] == "FINAL"
    await sock.send("PING", metadata=[])
    assert (await sock.until(lambda f: f["type"] == "PONG"))[-1]["type"] == "PONG"
    await sock.close()


async def test_other_sockets_survive_a_bad_one(ws_server: WsServer, speech: Any) -> None:
    good = await welcomed(ws_server)
    bad = await welcomed(ws_server)
    await bad.ws.send("{")
    await bad.closed()
    await good.audio(speech_ulaw(speech, 800) + silence(900))
    assert sum(len(audio_of(f)) for f in await good.reply()) > 0
    await good.close()
