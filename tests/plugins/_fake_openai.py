"""A local chat-completions server speaking OpenAI's streaming format, for tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

__all__ = ["FakeOpenAI", "serve_fake_openai"]


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    event = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


class FakeOpenAI:
    """A chat-completions server whose behaviour is picked by the requested model name."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.attempts: dict[str, int] = {}
        self.release = asyncio.Event()

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
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield server, f"http://127.0.0.1:{port}/v1"
    finally:
        server.release.set()
        await runner.cleanup()
