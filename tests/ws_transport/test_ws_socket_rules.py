"""Bounds and lifecycle of a ``/v1/va`` socket on an in-process server: timeouts, frame
size, drain, paused audio, plain WebSocket off loopback, secrets kept out of the logs."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import websockets
from webex_ws_client import FRAME, WebexSocket, audio_of, connect, events_of

from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.config import Config, ConfigError

SILENCE = b"\xff" * FRAME


async def _server(byova_server: Any, **settings: Any) -> str:
    server = await byova_server(plugins=["echo"], ws_port=0, **settings)
    return f"ws://127.0.0.1:{server.ws_port}/v1/va"


async def test_no_session_start_in_time_is_a_timeout(byova_server: Any) -> None:
    sock = await connect(await _server(byova_server, ws_first_message_timeout_s=0.2))
    code = await sock.closed()
    error = sock.received[-1]
    assert (error["type"], error["code"], error["status"]) == ("ERROR", "timeout", 408)
    assert code == 1008


async def test_a_silent_peer_is_closed_after_the_idle_timeout(byova_server: Any) -> None:
    sock = await connect(await _server(byova_server, ws_idle_timeout_s=0.3))
    await sock.start()
    code = await sock.closed()
    assert sock.received[-1]["code"] == "timeout" and code == 1008


async def test_a_frame_over_the_limit_closes_with_1009(byova_server: Any) -> None:
    sock = await connect(await _server(byova_server, ws_max_frame_bytes=64 * 1024))
    await sock.start()
    await sock.reply()
    await sock.ws.send(json.dumps({"padding": "x" * 70_000}))
    assert await sock.closed() == 1009


async def test_paused_caller_audio_ends_only_its_stream(byova_server: Any, speech: Any) -> None:
    sock = await connect(await _server(byova_server, stream_idle_timeout_ms=200))
    metrics = byova_server.last.app.metrics
    await sock.start()
    await sock.reply()
    await sock.audio(SILENCE * 10)  # then nothing: the engine ends that quiet stream
    for _ in range(200):
        if 'status="DEADLINE_EXCEEDED"' in metrics.render().decode():
            break
        await asyncio.sleep(0.05)
    assert 'status="DEADLINE_EXCEEDED"' in metrics.render().decode()
    ping = await sock.ping()  # the socket lives on
    await sock.until(lambda f: f["type"] == "PONG" and f["seq"] == ping)
    await sock.audio(pcm_to_ulaw(speech(800)) + SILENCE * 45)
    reply = await sock.reply()
    assert ["START_OF_INPUT"] in [events_of(f) for f in reply]
    assert sum(len(audio_of(f)) for f in reply) > 0
    assert not [f for f in sock.received if f["type"] == "ERROR"]
    await sock.close()


async def test_draining_refuses_new_sockets_with_503(byova_server: Any) -> None:
    url = await _server(byova_server)
    server = byova_server.last
    server.app.draining = True
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(url)
    assert refused.value.response.status_code == 503


def test_plain_websocket_off_loopback_needs_tls_or_the_allow_setting() -> None:
    with pytest.raises(ConfigError, match=r"ws_port on host 0\.0\.0\.0 needs TLS"):
        Config.load(overrides={"ws_port": 9443})
    assert Config.load(overrides={"ws_port": 9443, "ws_allow_plain": True}).ws_allow_plain
    assert Config.load(overrides={"ws_port": 9443, "host": "127.0.0.1"}).ws_port == 9443


async def test_errors_are_logged_once_with_the_conversation_and_no_token(
    byova_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = await _server(byova_server)
    sock = await connect(url, "secret-token-value")
    await sock.start()
    await sock.reply()
    with caplog.at_level(logging.INFO):
        await sock.ws.send("{broken")
        await sock.closed()
    closing = [r for r in caplog.records if "closing /v1/va socket" in r.getMessage()]
    assert len(closing) == 1 and sock.conversation_id in closing[0].getMessage()
    assert "secret-token-value" not in caplog.text


async def test_wrong_direction_types_are_refused(byova_server: Any) -> None:
    sock: WebexSocket = await connect(await _server(byova_server))
    await sock.start()
    await sock.reply()
    await sock.send("VOICE_VA_RESPONSE", {"response_type": "FINAL"})
    await sock.closed()
    assert sock.received[-1]["code"] == "bad_request"


async def test_wav_reply_mode_is_streamed_as_raw_ulaw_chunks(byova_server: Any) -> None:
    sock = await connect(await _server(byova_server, reply_mode="wav"))
    await sock.start()
    frames = await sock.reply()
    chunks = [f for f in frames if f["payload"]["response_type"] == "CHUNK"]
    assert chunks and all(not audio_of(f).startswith(b"RIFF") for f in chunks)
    assert all(320 <= len(audio_of(f)) <= 32 * 1024 for f in chunks)
    final = frames[-1]["payload"]
    assert [p.get("audio_content_b64") for p in final["prompts"]] == [""]
    await sock.close()
