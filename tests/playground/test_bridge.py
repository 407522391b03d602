"""The playground's WebSocket against a real server: Webex's side of a call, driven by a page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import grpc
import httpx
import numpy as np
import pytest

import byova_media
from byova_control.interceptor import JwsInterceptor
from byova_control.jws import JwsVerifier
from byova_media.app import App
from byova_media.peer import PeerCredential
from byova_media.server import Server

_FRAME = 160


class Page:
    """What a playground page does over the socket, with everything it received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.audio = bytearray()

    async def send(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    async def until(self, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read until a message satisfies ``done``; return it."""
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                self.audio += message.data
                continue
            data = json.loads(message.data)
            self.messages.append(data)
            if done(data):
                return data
        raise AssertionError(f"socket closed; received {self.messages}")

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    async def speak(self, pcm: np.ndarray) -> None:
        """Microphone audio in 20 ms pieces, a little faster than real time."""
        data = pcm.astype("<i2").tobytes()
        for i in range(0, len(data), 2 * _FRAME):
            await self.ws.send_bytes(data[i : i + 2 * _FRAME])
            await asyncio.sleep(0.004)


@pytest.fixture
async def page() -> AsyncIterator[Callable[[Server], Awaitable[Page]]]:
    async with aiohttp.ClientSession() as http:

        async def connect(server: Server) -> Page:
            ws = await http.ws_connect(f"http://127.0.0.1:{server.http_port}/playground/ws")
            return Page(ws)

        yield connect


def _audio_open(m: dict[str, Any]) -> bool:
    return m["type"] == "rpc" and m["kind"] == "audio" and m["state"] == "open"


async def test_a_spoken_turn_then_a_key_that_transfers(
    byova_server: Any, page: Any, speech: Any
) -> None:
    server = await byova_server(plugins=["echo"], http_port=0, playground=True)
    tab = await page(server)
    await tab.send(type="call", agent="echo")
    started = await tab.until(lambda m: m["type"] == "started")
    await tab.until(_audio_open)  # the welcome is bargeable: Webex listens at once
    silence = np.zeros(8 * 300, dtype=np.int16)
    await tab.speak(np.concatenate((silence, speech(700), np.zeros(8 * 1200, dtype=np.int16))))
    await tab.until(lambda m: m["type"] == "event" and m["name"] == "END_OF_INPUT")
    turn = await tab.until(lambda m: m["type"] == "turn")
    assert turn["speech_end_ms"] <= turn["end_of_input_ms"] <= turn["first_audio_ms"]
    await tab.send(type="dtmf", digits="0")
    ended = await tab.until(lambda m: m["type"] == "ended")
    assert ended == {
        "type": "ended",
        "event": "TRANSFER_TO_AGENT",
        "metadata": {"reason": "caller_request"},
    }
    events = [m["name"] for m in tab.of_type("event")]
    assert events.index("START_OF_INPUT") < events.index("END_OF_INPUT")
    assert len(tab.audio) > 2 * 8 * 500  # the welcome chime and the echo, as PCM16
    kinds = [m["kind"] for m in tab.of_type("rpc") if m["state"] == "open"]
    assert kinds[0] == "session_start"
    assert kinds[-2:] == ["start_of_dtmf", "dtmf"]
    assert server.inspector is not None
    record = server.inspector.get(started["conversation_id"])
    assert record is not None
    assert [r.kind for r in record.rpcs] == kinds
    assert record.ended == "transfer"


async def test_hang_up_sends_session_end(byova_server: Any, page: Any) -> None:
    server = await byova_server(plugins=["echo"], http_port=0, playground=True)
    tab = await page(server)
    await tab.send(type="call", agent="echo")
    started = await tab.until(lambda m: m["type"] == "started")
    await tab.until(_audio_open)
    await tab.send(type="hangup")
    ended = await tab.until(lambda m: m["type"] == "ended")
    assert ended["event"] == "caller_hangup"
    assert server.inspector is not None
    record = server.inspector.get(started["conversation_id"])
    assert record is not None
    assert record.rpcs[-1].kind == "session_end"
    assert record.ended == "caller_hangup"


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        ("not json", "JSON objects with a type"),
        (json.dumps({"type": "dance"}), "unknown message type"),
        (json.dumps({"type": "dtmf", "digits": "9x"}), "not DTMF keys"),
    ],
)
async def test_bad_messages_get_an_error_and_the_socket_stays_usable(
    byova_server: Any, page: Any, message: str, complaint: str
) -> None:
    server = await byova_server(plugins=["echo"], http_port=0, playground=True)
    tab = await page(server)
    await tab.ws.send_str(message)
    error = await tab.until(lambda m: m["type"] == "error")
    assert complaint in error["message"]
    await tab.send(type="call", agent="echo")
    await tab.until(lambda m: m["type"] == "started")


class _VerifyJws:
    """A test plugin: the control plugin's JWS interceptor, trusting no Webex issuer here."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    @byova_media.hookimpl
    def byova_grpc_interceptors(self, app: App) -> list[grpc.aio.ServerInterceptor]:
        verifier = JwsVerifier(
            issuers=["https://idbroker.invalid"],
            datasource_url="https://datasource.invalid/byova",
            http=self.http,
        )
        return [JwsInterceptor(verifier, app.metrics, peer=app.peer)]


@pytest.fixture
async def jws_server(byova_server: Any) -> AsyncIterator[Server]:
    async with httpx.AsyncClient() as http:
        yield await byova_server(
            plugins=["echo"],
            extra_plugins=[("jws", _VerifyJws(http))],
            http_port=0,
            playground=True,
        )


async def test_with_jws_on_the_playground_passes_the_interceptor_with_its_peer_credential(
    jws_server: Server, page: Any, webex: Any
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{jws_server.http_port}/playground/agents.json") as response,
    ):
        assert response.status == 200
        assert [a["virtual_agent_id"] for a in (await response.json())["agents"]] == ["echo"]
    tab = await page(jws_server)
    await tab.send(type="call", agent="echo")
    await tab.until(_audio_open)  # the welcome RPC was accepted
    await tab.send(type="hangup")
    ended = await tab.until(lambda m: m["type"] == "ended")
    assert ended["event"] == "caller_hangup"
    # The same server still refuses a caller without a valid token.
    sim = await webex(jws_server)
    assert (await sim.call("echo").start()).code == grpc.StatusCode.UNAUTHENTICATED
    forged = await webex(jws_server, token=PeerCredential().issue())
    assert (await forged.call("echo").start()).code == grpc.StatusCode.UNAUTHENTICATED
    registry = jws_server.app.metrics.registry
    for reason in ("missing", "invalid_peer"):
        rejected = registry.get_sample_value("byova_jws_rejections_total", {"reason": reason})
        assert rejected == 1, reason
