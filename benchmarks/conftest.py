"""Shared pieces of the async benchmarks: one event loop per module, an echo conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from byova_echo import EchoAgent
from byova_media.agent import AgentSpec
from byova_media.app import App
from byova_media.config import Config
from byova_media.conversation import Conversation, ConversationRegistry
from byova_media.plugins import PluginHost


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One loop for all rounds of a module, so loop start-up is not measured."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _echo_conversation(config: Config | None = None) -> Conversation:
    app = App(config=config or Config(), plugins=PluginHost.create(discover=False))
    spec = AgentSpec("echo", lambda call: EchoAgent())
    return ConversationRegistry(app, {"echo": spec}, "echo").create("bench", spec, "org", "trk")


@pytest.fixture(scope="session")
def echo_conversation() -> Callable[..., Conversation]:
    """``echo_conversation(config=None)``: a conversation with the echo agent, no server."""
    return _echo_conversation


@pytest.fixture
def run_async(
    benchmark: Any, loop: asyncio.AbstractEventLoop
) -> Callable[[str, Callable[[], Awaitable[None]]], None]:
    """``run_async(group, work)`` benchmarks one coroutine per round on the module's loop."""

    def run(group: str, work: Callable[[], Awaitable[None]]) -> None:
        benchmark.group = group
        benchmark(lambda: loop.run_until_complete(work()))

    return run
