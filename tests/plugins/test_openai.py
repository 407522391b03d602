"""The OpenAI-compatible LLM against a real local HTTP server speaking the streaming format."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from byova_media.adapters import LanguageModel, Message, TextDelta, ToolCall, ToolSpec
from byova_media.app import App
from byova_media.config import Config
from byova_media.plugins import PluginHost
from byova_openai import LlmError, OpenAIChat, OpenAISettings

SECRET = "sk-test-very-secret-key"


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


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    server = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield server, f"http://127.0.0.1:{port}/v1"
    server.release.set()
    await runner.cleanup()


MakeChat = Callable[..., OpenAIChat]


@pytest.fixture
async def chat(fake: tuple[FakeOpenAI, str]) -> AsyncIterator[MakeChat]:
    made: list[OpenAIChat] = []

    def make(model: str, **settings: Any) -> OpenAIChat:
        settings.setdefault("retry_backoff_s", 0.0)
        llm = OpenAIChat(OpenAISettings(base_url=fake[1], model=model, api_key=SECRET, **settings))
        made.append(llm)
        return llm

    yield make
    for llm in made:
        await llm.aclose()


async def _run(llm: LanguageModel, tools: tuple[ToolSpec, ...] = ()) -> list[Any]:
    return [e async for e in llm.stream([Message("user", "hi")], tools)]


async def test_streams_text_deltas_with_the_key_in_the_header(
    fake: tuple[FakeOpenAI, str], chat: MakeChat
) -> None:
    llm = chat("plain", temperature=0.2)
    assert isinstance(llm, LanguageModel)
    events = await _run(llm)
    assert events == [TextDelta("Hello"), TextDelta(" there"), TextDelta(", how can I help?")]
    server = fake[0]
    assert server.headers[0]["Authorization"] == f"Bearer {SECRET}"
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["temperature"] == 0.2
    assert server.requests[0]["messages"] == [{"role": "user", "content": "hi"}]


async def test_tool_call_deltas_are_assembled(fake: tuple[FakeOpenAI, str], chat: MakeChat) -> None:
    tool = ToolSpec("transfer_to_agent", "Hand over", {"type": "object", "properties": {}})
    events = await _run(chat("tools"), (tool,))
    assert events == [
        TextDelta("One moment. "),
        ToolCall("transfer_to_agent", {"reason": "billing"}, "call_1"),
        ToolCall("lookup", {"q": 1}, "call_2"),
    ]
    sent = fake[0].requests[0]["tools"][0]
    assert sent["type"] == "function" and sent["function"]["name"] == "transfer_to_agent"


async def test_history_with_tool_results_goes_out_in_wire_format(
    fake: tuple[FakeOpenAI, str], chat: MakeChat
) -> None:
    history = [
        Message("system", "be brief"),
        Message("assistant", "", tool_calls=(ToolCall("lookup", {"q": 1}, "c1"),)),
        Message("tool", "42", tool_call_id="c1"),
    ]
    _ = [e async for e in chat("plain").stream(history)]
    wire = fake[0].requests[0]["messages"]
    assert wire[1]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"q": 1}'}
    assert wire[2] == {"role": "tool", "content": "42", "tool_call_id": "c1"}


async def test_429_is_retried(fake: tuple[FakeOpenAI, str], chat: MakeChat) -> None:
    events = await _run(chat("rate-limited"))
    assert events[0] == TextDelta("Hello")
    assert fake[0].attempts["rate-limited"] == 2


async def test_slow_first_token_is_retried(fake: tuple[FakeOpenAI, str], chat: MakeChat) -> None:
    events = await _run(chat("slow-first", first_token_timeout_s=0.3))
    assert events[0] == TextDelta("Hello")
    assert fake[0].attempts["slow-first"] == 2


async def test_no_retry_after_the_first_token(fake: tuple[FakeOpenAI, str], chat: MakeChat) -> None:
    llm = chat("hang-after-first", read_timeout_s=0.3, max_retries=3)
    got: list[Any] = []

    async def consume() -> None:
        async for event in llm.stream([Message("user", "hi")]):
            got.append(event)

    with pytest.raises(LlmError, match="ReadTimeout"):
        await consume()
    assert got == [TextDelta("Partial")]
    assert fake[0].attempts["hang-after-first"] == 1


async def test_errors_are_typed_and_never_show_the_key(
    fake: tuple[FakeOpenAI, str], chat: MakeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(LlmError, match="HTTP 500: boom") as failed:
        await _run(chat("always-500", max_retries=2))
    assert fake[0].attempts["always-500"] == 3
    with pytest.raises(LlmError, match="HTTP 400: unknown model") as bad:
        await _run(chat("bad-request", max_retries=2))
    assert fake[0].attempts["bad-request"] == 1  # client errors are not retried
    with pytest.raises(LlmError, match="overloaded"):
        await _run(chat("stream-error"))
    llm = chat("plain")
    for text in (str(failed.value), str(bad.value), caplog.text, repr(llm), repr(llm.settings)):
        assert SECRET not in text


async def test_connection_refused_is_retried_then_reported(chat: MakeChat) -> None:
    llm = OpenAIChat(
        OpenAISettings(base_url="http://127.0.0.1:9/v1", max_retries=1, retry_backoff_s=0.0)
    )
    with pytest.raises(LlmError, match="ConnectError"):
        await _run(llm)
    await llm.aclose()


async def test_registered_with_plugin_settings_and_agent_options(
    fake: tuple[FakeOpenAI, str],
) -> None:
    host = PluginHost.create(["openai"], discover=False)
    config = Config(plugin={"openai": {"base_url": fake[1], "api_key": SECRET, "model": "x"}})
    app = App(config, host)
    llm = host.llms(app)["openai"]({"model": "plain"})
    assert isinstance(llm, OpenAIChat)
    assert llm.settings.model == "plain"
    assert (await _run(llm))[0] == TextDelta("Hello")
    await host.stop(app)  # closes the clients the plugin made
    assert "openai" not in app.state
