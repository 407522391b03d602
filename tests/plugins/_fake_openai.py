"""A local OpenAI-compatible server for tests: streamed chat completions, batch
transcriptions (multipart WAV in, ``{"text"}`` out) and streamed speech (``pcm`` at 24 kHz
or ``wav``), with OpenAI's error bodies and rate-limit responses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from byova_media.audio.tones import tone
from byova_media.audio.wav import read_wav

__all__ = ["FakeOpenAI", "serve_fake_openai"]


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    event = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    """An error in OpenAI's shape; 429s carry ``Retry-After`` as the API does."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    headers = {"Retry-After": "0"} if status == 429 else {}
    return web.json_response(body, status=status, headers=headers)


SPEECH_RATE = 24000


def speech_pcm(text: str, ms_per_char: float) -> bytes:
    """What the fake "says" for ``text``: a 24 kHz tone as long as the text, 16-bit LE."""
    ms = max(100, int(len(text) * ms_per_char))
    return tone(300 + 7 * (len(text) % 50), ms, SPEECH_RATE).astype("<i2").tobytes()


def streaming_wav_header(sample_rate: int) -> bytes:
    """A WAV header as streaming servers send it: sizes unknown (0xFFFFFFFF), a LIST chunk."""
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    info = b"INFOISFT\x06\x00\x00\x00fake\x00\x00"
    return (
        b"RIFF\xff\xff\xff\xffWAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"LIST"
        + struct.pack("<I", len(info))
        + info
        + b"data\xff\xff\xff\xff"
    )


class FakeOpenAI:
    """A chat-completions server whose behaviour is picked by the requested model name."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.attempts: dict[str, int] = {}
        self.release = asyncio.Event()
        #: When set, requests without ``Authorization: Bearer <api_key>`` get a 401.
        self.api_key: str | None = None
        #: What every transcription returns (a test sets what the caller "said").
        self.transcript = "What are your opening hours?"
        self.transcriptions: list[dict[str, Any]] = []
        self.speech_requests: list[dict[str, Any]] = []
        #: Monotonic time each speech response finished streaming.
        self.speech_done_at: list[float] = []
        #: Speech length per input character, and how fast it streams (1.0 = real time).
        self.ms_per_char = 5.0
        self.speech_speed = 0.0  # 0: as fast as the socket takes it

    def _refused(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        return None

    def _attempt(self, model: str) -> int:
        attempt = self.attempts[model] = self.attempts.get(model, 0) + 1
        return attempt

    async def transcribe(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        wav = read_wav(upload.file.read())
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        self.transcriptions.append({**fields, "filename": upload.filename, "wav": wav})
        model = fields["model"]
        attempt = self._attempt(model)
        if model == "rate-limited" and attempt == 1:
            return _error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
        if model == "always-500":
            return _error(
                500, "The server had an error while processing your request.", "server_error"
            )
        if model == "bad-request":
            return _error(400, "Invalid file format.", "invalid_request_error")
        if model == "garbage":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        return web.json_response({"text": self.transcript})

    async def speak(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        self.speech_requests.append(body)
        model = body["model"]
        attempt = self._attempt(model)
        if model == "rate-limited" and attempt == 1:
            return _error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
        if model == "always-500":
            return _error(
                500, "The server had an error while processing your request.", "server_error"
            )
        if body.get("response_format") not in ("pcm", "wav"):
            return _error(400, "Unsupported response_format.", "invalid_request_error")
        pcm = speech_pcm(body["input"], self.ms_per_char)
        response = web.StreamResponse(
            headers={
                "Content-Type": "audio/pcm" if body["response_format"] == "pcm" else "audio/wav"
            }
        )
        await response.prepare(request)
        if body["response_format"] == "wav":
            await response.write(streaming_wav_header(SPEECH_RATE))
        # 100 ms per write, cut one byte off the sample grid: clients must carry half samples.
        piece = SPEECH_RATE * 2 // 10
        cuts = [0, *range(piece + 1, len(pcm), piece), len(pcm)]
        began = time.monotonic()
        for n in range(len(cuts) - 1):
            if model == "hang-after-first" and n == 1:
                await self.release.wait()
            if self.speech_speed:
                delay = began + n * 0.1 / self.speech_speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await response.write(pcm[cuts[n] : cuts[n + 1]])
        self.speech_done_at.append(time.monotonic())
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        model = body["model"]
        attempt = self.attempts[model] = self.attempts.get(model, 0) + 1
        if model == "rate-limited" and attempt == 1:
            return web.json_response(
                {"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "0"}
            )
        if model == "always-500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if model == "bad-request":
            return web.json_response({"error": {"message": "unknown model"}}, status=400)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if model == "slow-first" and attempt == 1:
            await self.release.wait()  # never answers in time; the client retries
            return response
        if model == "hang-after-first":
            await response.write(_chunk({"role": "assistant", "content": "Partial"}))
            await self.release.wait()
            return response
        if model == "stream-error":
            await response.write(_chunk({"content": "Hi"}))
            await response.write(b'data: {"error": {"message": "overloaded"}}\n\n')
            return response
        if model == "transfer":
            call = {
                "index": 0,
                "id": "t1",
                "function": {"name": "transfer_to_agent", "arguments": '{"intent": "llm"}'},
            }
            await response.write(_chunk({"tool_calls": [call]}))
            await response.write(_chunk({"content": "Connecting you now."}))
            await response.write(b"data: [DONE]\n\n")
            return response
        if model == "tools":
            await response.write(_chunk({"role": "assistant", "content": "One moment. "}))
            calls = [
                {"index": 0, "id": "call_1", "function": {"name": "transfer_to_agent"}},
                {"index": 0, "function": {"arguments": '{"reason": '}},
                {"index": 1, "id": "call_2", "function": {"name": "lookup", "arguments": ""}},
                {"index": 0, "function": {"arguments": '"billing"}'}},
                {"index": 1, "function": {"arguments": '{"q": 1}'}},
            ]
            for call in calls:
                await response.write(_chunk({"tool_calls": [call]}))
            await response.write(_chunk({}, "tool_calls"))
            await response.write(b"data: [DONE]\n\n")
            return response
        await response.write(b": keep-alive comment\n\n")
        for piece in ["Hello", " there", ", how can I help?"]:
            await response.write(_chunk({"content": piece}))
        await response.write(_chunk({}, "stop"))
        await response.write(b"data: [DONE]\n\n")
        return response


@contextlib.asynccontextmanager
async def serve_fake_openai() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    """Run a :class:`FakeOpenAI` on 127.0.0.1 (free port); yields it and its base URL."""
    server = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    app.router.add_post("/v1/audio/transcriptions", server.transcribe)
    app.router.add_post("/v1/audio/speech", server.speak)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield server, f"http://127.0.0.1:{port}/v1"
    finally:
        server.release.set()
        await runner.cleanup()
