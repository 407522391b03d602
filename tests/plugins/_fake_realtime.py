"""A local server speaking OpenAI's Realtime WebSocket protocol (GA and beta), for tests.

It follows the documented event flow: ``session.created`` on connect, ``session.update``
validated for μ-law both ways, an input audio buffer filled by
``input_audio_buffer.append`` and committed by ``input_audio_buffer.commit`` (or by its
own energy VAD when ``turn_detection`` is ``server_vad``), responses streamed as audio
deltas with transcripts and function calls, ``response.cancel`` and
``conversation.item.truncate`` checked against what it produced, error events in the
API's shape, and handshake refusals (401 for a wrong key, 429 when told to).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from byova_media.audio.codecs import pcm_to_ulaw, ulaw_to_pcm
from byova_media.audio.tones import tone

__all__ = ["Answer", "FakeRealtime", "serve_fake_realtime"]

SPEECH_RMS = 500.0
#: Silence after speech that ends a turn for the fake's server VAD.
VAD_SILENCE_MS = 400


@dataclass
class Answer:
    """One scripted response: ``audio_ms`` of tone (streamed at ``speed``× real time),
    holding after ``pause_at_ms`` until cancelled, then an optional function call, or
    an ``error`` code instead of everything."""

    audio_ms: int = 600
    text: str = "Happy to help."
    function_call: tuple[str, dict[str, Any]] | None = None
    pause_at_ms: int | None = None
    error: str | None = None


@dataclass
class Session:
    """One connection's state."""

    ws: ServerConnection
    beta: bool
    config: dict[str, Any] = field(default_factory=dict)
    buffer: bytearray = field(default_factory=bytearray)
    response: asyncio.Task[None] | None = None
    speaking_ms: int = 0
    silence_ms: int = 0


class FakeRealtime:
    """Records every client event; answers from ``script`` (then with ``Answer()``)."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.script: list[Answer] = []
        self.caller_says = "What are your opening hours?"
        self.speed = 4.0
        #: HTTP statuses to refuse the next handshakes with (429, 500...).
        self.refuse_next: list[int] = []
        self.received: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.sessions: list[dict[str, Any]] = []
        self.produced: list[bytes] = []  # the audio of each response, in order
        self.item_ms: dict[str, int] = {}
        self.cancelled_while_active = 0
        self.connections: list[ServerConnection] = []
        self._ids = itertools.count(1)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e.get("type") == kind]

    async def wait_for(self, kind: str, count: int = 1, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.of_type(kind)) < count:  # noqa: ASYNC110 - state other tasks change
                await asyncio.sleep(0.01)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids)}"

    # --- handshake ------------------------------------------------------------------

    def handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        self.requests.append((request.path, {k.lower(): v for k, v in request.headers.raw_items()}))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._refuse(connection, 401, "invalid_api_key", "Incorrect API key provided.")
        if self.refuse_next:
            status = self.refuse_next.pop(0)
            return self._refuse(connection, status, "rate_limit_exceeded", "Rate limit reached.")
        return None

    @staticmethod
    def _refuse(connection: ServerConnection, status: int, code: str, message: str) -> Response:
        body = json.dumps(
            {"error": {"type": "invalid_request_error", "code": code, "message": message}}
        )
        response = connection.respond(HTTPStatus(status), body)
        response.headers = Headers(
            {**dict(response.headers.raw_items()), "Content-Type": "application/json"}
        )
        if status == 429:
            response.headers["Retry-After"] = "0"
        return response

    # --- one connection -------------------------------------------------------------

    async def run(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        assert ws.request is not None
        session = Session(ws, beta=ws.request.headers.get("OpenAI-Beta") == "realtime=v1")
        await self._send(session, "session.created", session={"id": self._id("sess")})
        try:
            async for message in ws:
                event = json.loads(message)
                self.received.append(event)
                await self._handle(session, event)
        except ConnectionClosed:
            pass
        finally:
            if session.response is not None:
                session.response.cancel()

    async def _send(self, conn: Session, kind: str, **fields: Any) -> None:
        await conn.ws.send(json.dumps({"type": kind, "event_id": self._id("event"), **fields}))

    async def _error(
        self, session: Session, code: str, message: str, kind: str = "invalid_request_error"
    ) -> None:
        await self._send(session, "error", error={"type": kind, "code": code, "message": message})

    async def _handle(self, session: Session, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "session.update":
            await self._update(session, event["session"])
        elif kind == "input_audio_buffer.append":
            await self._append(session, base64.b64decode(event["audio"]))
        elif kind == "input_audio_buffer.commit":
            if not session.buffer:
                await self._error(session, "input_audio_buffer_commit_empty", "Buffer too small.")
            else:
                await self._commit(session)
        elif kind == "response.create":
            if session.response is not None and not session.response.done():
                await self._error(session, "conversation_already_has_active_response", "Busy.")
            else:
                session.response = asyncio.create_task(self._respond(session))
        elif kind == "response.cancel":
            await self._cancel(session)
        elif kind == "conversation.item.truncate":
            item, end = event["item_id"], event["audio_end_ms"]
            if item not in self.item_ms or not 0 <= end <= self.item_ms[item]:
                await self._error(session, "invalid_value", f"cannot truncate {item} at {end}")
            else:
                await self._send(
                    session,
                    "conversation.item.truncated",
                    item_id=item,
                    content_index=0,
                    audio_end_ms=end,
                )
        elif kind == "conversation.item.create":
            await self._send(
                session, "conversation.item.created", item={**event["item"], "id": self._id("item")}
            )

    async def _update(self, session: Session, config: dict[str, Any]) -> None:
        if session.beta:
            formats = (config.get("input_audio_format"), config.get("output_audio_format"))
            ok = formats == ("g711_ulaw", "g711_ulaw")
        else:
            audio = config.get("audio", {})
            formats = (audio.get("input", {}).get("format"), audio.get("output", {}).get("format"))
            ok = config.get("type") == "realtime" and formats == ({"type": "audio/pcmu"},) * 2
        if not ok:
            await self._error(session, "invalid_value", f"unsupported audio formats {formats}")
            return
        session.config = config
        self.sessions.append(config)
        await self._send(session, "session.updated", session=config)

    def _turn_detection(self, session: Session) -> Any:
        if session.beta:
            return session.config.get("turn_detection")
        return session.config.get("audio", {}).get("input", {}).get("turn_detection")

    async def _append(self, session: Session, ulaw: bytes) -> None:
        session.buffer += ulaw
        if self._turn_detection(session) is None:
            return
        pcm = ulaw_to_pcm(ulaw).astype(np.float64)
        voiced = bool(len(pcm)) and float(np.sqrt(np.mean(pcm * pcm))) > SPEECH_RMS
        ms = len(ulaw) // 8
        if voiced:
            if not session.speaking_ms:
                await self._send(
                    session,
                    "input_audio_buffer.speech_started",
                    audio_start_ms=0,
                    item_id=self._id("item"),
                )
                await self._cancel(session, quiet=True)  # interrupt_response
            session.speaking_ms += ms
            session.silence_ms = 0
        elif session.speaking_ms:
            session.silence_ms += ms
            if session.silence_ms >= VAD_SILENCE_MS:
                session.speaking_ms = session.silence_ms = 0
                await self._send(
                    session,
                    "input_audio_buffer.speech_stopped",
                    audio_end_ms=0,
                    item_id=self._id("item"),
                )
                await self._commit(session)
                session.response = asyncio.create_task(self._respond(session))
        else:
            session.buffer.clear()  # silence before speech is not kept

    async def _commit(self, session: Session) -> None:
        item = self._id("item")
        session.buffer.clear()
        await self._send(session, "input_audio_buffer.committed", item_id=item)
        await self._send(
            session,
            "conversation.item.input_audio_transcription.completed",
            item_id=item,
            content_index=0,
            transcript=self.caller_says,
        )

    async def _cancel(self, session: Session, quiet: bool = False) -> None:
        task = session.response
        if task is None or task.done():
            if not quiet:
                await self._error(session, "response_cancel_not_active", "No active response.")
            return
        self.cancelled_while_active += 0 if quiet else 1
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._send(
            session, "response.done", response={"id": self._id("resp"), "status": "cancelled"}
        )

    async def _respond(self, session: Session) -> None:
        answer = self.script.pop(0) if self.script else Answer()
        response_id = self._id("resp")
        await self._send(
            session, "response.created", response={"id": response_id, "status": "in_progress"}
        )
        if answer.error is not None:
            await self._error(session, answer.error, "Rate limit reached for tokens.", "tokens")
            details = {"type": "failed", "error": {"code": answer.error}}
            await self._send(
                session,
                "response.done",
                response={"id": response_id, "status": "failed", "status_details": details},
            )
            return
        if answer.audio_ms:
            await self._speak(session, answer, response_id)
        if answer.function_call is not None:
            name, arguments = answer.function_call
            item = {
                "id": self._id("item"),
                "type": "function_call",
                "name": name,
                "call_id": self._id("call"),
                "arguments": json.dumps(arguments),
            }
            await self._send(
                session, "response.output_item.added", response_id=response_id, item=item
            )
            await self._send(
                session, "response.output_item.done", response_id=response_id, item=item
            )
        await self._send(
            session, "response.done", response={"id": response_id, "status": "completed"}
        )

    async def _speak(self, session: Session, answer: Answer, response_id: str) -> None:
        item_id = self._id("item")
        self.item_ms[item_id] = 0
        audio = pcm_to_ulaw(tone(500 + 50 * len(self.produced) % 400, answer.audio_ms))
        self.produced.append(audio)
        await self._send(
            session,
            "response.output_item.added",
            response_id=response_id,
            item={"id": item_id, "type": "message", "role": "assistant"},
        )
        delta = "response.audio.delta" if session.beta else "response.output_audio.delta"
        for sent_ms, cut in enumerate(range(0, len(audio), 800)):
            if answer.pause_at_ms is not None and sent_ms * 100 >= answer.pause_at_ms:
                await asyncio.Event().wait()  # holds until cancelled
            piece = audio[cut : cut + 800]
            await self._send(
                session,
                delta,
                response_id=response_id,
                item_id=item_id,
                content_index=0,
                delta=base64.b64encode(piece).decode(),
            )
            self.item_ms[item_id] += len(piece) // 8
            await asyncio.sleep(0.1 / self.speed)
        done = (
            "response.audio_transcript.done"
            if session.beta
            else "response.output_audio_transcript.done"
        )
        await self._send(
            session, done, response_id=response_id, item_id=item_id, transcript=answer.text
        )
        await self._send(
            session,
            "response.output_item.done",
            response_id=response_id,
            item={"id": item_id, "type": "message", "status": "completed"},
        )


@contextlib.asynccontextmanager
async def serve_fake_realtime(api_key: str) -> AsyncIterator[tuple[FakeRealtime, str]]:
    """Run a :class:`FakeRealtime` on 127.0.0.1 (free port); yields it and its base URL."""
    fake = FakeRealtime(api_key)
    server: Server = await serve(
        fake.run, "127.0.0.1", 0, process_request=fake.handshake, compression=None
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield fake, f"ws://127.0.0.1:{port}/v1/realtime"
    finally:
        for ws in fake.connections:
            ws.transport.abort()
        server.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await server.wait_closed()
