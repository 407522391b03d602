"""The OpenAI-compatible LLM against a real local HTTP server speaking the streaming format."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from byova_media.adapters import LanguageModel, Message, TextDelta, ToolCall, ToolSpec
from byova_media.app import App
from byova_media.config import Config
from byova_media.plugins import PluginHost
from byova_openai import LlmError, OpenAIChat, OpenAISettings
from tests.plugins._fake_openai import FakeOpenAI, serve_fake_openai

SECRET = "sk-test-very-secret-key"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    async with serve_fake_openai() as served:
        yield served


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
