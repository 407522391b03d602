"""A local server speaking Deepgram's live transcription protocol, for tests.

Binary frames of 8 kHz μ-law in; ``Results`` out (interim every 300 ms of speech,
final with ``speech_final`` after 300 ms of silence) and ``UtteranceEnd``;
``KeepAlive`` keeps the socket open (it closes with 1011 after ``idle_timeout_s`` of
nothing, as Deepgram does at 10 s); ``CloseStream`` flushes the last result, sends
``Metadata`` and closes normally. Handshakes need ``Authorization: Token <key>`` (401
otherwise) and can be refused with 429 on demand, with Deepgram's error body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from byova_media.audio.codecs import ulaw_to_pcm

__all__ = ["FakeDeepgram", "serve_fake_deepgram"]

SPEECH_RMS = 500.0


class FakeDeepgram:
    """Recognises ``says`` in any speech it hears; records what it was sent."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.says = "what are your opening hours"
        self.refuse_next: list[int] = []
        self.idle_timeout_s = 10.0
        self.queries: list[dict[str, str]] = []
        self.audio: list[bytearray] = []  # per connection
        self.controls: list[str] = []
        self.close_codes: list[int | None] = []
        self.handshakes = 0

    def handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return self._refuse(connection, 401, "INVALID_AUTH", "Invalid credentials.")
        if self.refuse_next:
            return self._refuse(
                connection, self.refuse_next.pop(0), "TOO_MANY_REQUESTS", "Too many requests."
            )
        query = parse_qs(urlsplit(request.path).query)
        self.queries.append({k: v[0] for k, v in query.items()})
        return None

    @staticmethod
    def _refuse(connection: ServerConnection, status: int, code: str, message: str) -> Response:
        body = json.dumps({"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())})
        return connection.respond(HTTPStatus(status), body)

    async def run(self, ws: ServerConnection) -> None:
        audio = bytearray()
        self.audio.append(audio)
        state = {"speech_ms": 0, "silence_ms": 0, "said": False, "t": 0.0}
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout_s):
                        message = await ws.recv()
                except TimeoutError:
                    await ws.close(1011, "NET-0001")
                    break
                if isinstance(message, bytes):
                    audio += message
                    await self._hear(ws, message, state)
                    continue
                kind = json.loads(message)["type"]
                self.controls.append(kind)
                if kind == "CloseStream":
                    if state["speech_ms"]:
                        await self._final(ws, state, speech_final=False)
                    await ws.send(
                        json.dumps(
                            {
                                "type": "Metadata",
                                "request_id": str(uuid.uuid4()),
                                "duration": state["t"],
                            }
                        )
                    )
                    await ws.close(1000)
                    break
        except ConnectionClosed:
            pass
        self.close_codes.append(ws.close_code)

    async def _hear(self, ws: ServerConnection, ulaw: bytes, state: dict[str, Any]) -> None:
        pcm = ulaw_to_pcm(ulaw).astype(np.float64)
        voiced = bool(len(pcm)) and float(np.sqrt(np.mean(pcm * pcm))) > SPEECH_RMS
        ms = len(ulaw) // 8
        state["t"] += ms / 1000
        if voiced:
            state["speech_ms"] += ms
            state["silence_ms"] = 0
            if state["speech_ms"] % 300 < ms:  # an interim hypothesis every 300 ms
                words = self.says.split()
                heard = " ".join(words[: max(1, state["speech_ms"] * len(words) // 1200)])
                await ws.send(json.dumps(self._results(heard, state, is_final=False)))
        elif state["speech_ms"]:
            state["silence_ms"] += ms
            if state["silence_ms"] >= 300:
                await self._final(ws, state, speech_final=True)
                await ws.send(
                    json.dumps(
                        {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": state["t"]}
                    )
                )

    async def _final(self, ws: ServerConnection, state: dict[str, Any], speech_final: bool) -> None:
        state["speech_ms"] = state["silence_ms"] = 0
        await ws.send(
            json.dumps(self._results(self.says, state, is_final=True, speech_final=speech_final))
        )

    @staticmethod
    def _results(
        text: str, state: dict[str, Any], is_final: bool, speech_final: bool = False
    ) -> dict[str, Any]:
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": 0.3,
            "start": state["t"],
            "is_final": is_final,
            "speech_final": speech_final,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.98, "words": []}]},
            "metadata": {"request_id": "r", "model_info": {"name": "nova-3"}},
        }


@contextlib.asynccontextmanager
async def serve_fake_deepgram(api_key: str) -> AsyncIterator[tuple[FakeDeepgram, str]]:
    """Run a :class:`FakeDeepgram` on 127.0.0.1 (free port); yields it and its listen URL."""
    fake = FakeDeepgram(api_key)
    server: Server = await serve(
        fake.run, "127.0.0.1", 0, process_request=fake.handshake, compression=None
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield fake, f"ws://127.0.0.1:{port}/v1/listen"
    finally:
        server.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await server.wait_closed()
