"""A plugin of deliberately faulty agents, served in a real process by the hardening tests.

Each virtual agent id names its fault; all of them misbehave in ``on_start``
(the welcome), except ``blocks_loop``, which blocks the event loop on each utterance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import byova_media
from byova_media import (
    Agent,
    AgentSpec,
    App,
    Call,
    Prompt,
    Reply,
    SessionStart,
    Transfer,
    Utterance,
)

_MIB = 2**20


class _Returns(Agent):
    """Welcomes with whatever ``make()`` builds (a wrong type, a malformed Reply...)."""

    def __init__(self, make: Callable[[], Any], reply_mode: str | None = None) -> None:
        self.make = make
        self.reply_mode = reply_mode  # type: ignore[assignment]

    async def on_start(self, call: Call, start: SessionStart) -> Any:
        return self.make()


class _RaisesCancelled(Agent):
    async def on_start(self, call: Call, start: SessionStart) -> Reply | None:
        raise asyncio.CancelledError


class _BlocksLoop(Agent):
    async def on_start(self, call: Call, start: SessionStart) -> Reply | None:
        return Reply.say(text="ready")

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply | None:
        time.sleep(1.0)  # noqa: ASYNC251 - the fault: blocks every call for a second
        return Reply.say(text="done")


def _factory_raises(call: Call) -> Agent:
    raise RuntimeError("no agent today")


FAULTS: dict[str, Callable[[Call], Agent]] = {
    "returns_str": lambda call: _Returns(lambda: "hello"),
    "prompt_not_a_prompt": lambda call: _Returns(lambda: Reply(prompts=["hello"])),  # type: ignore[list-item]
    "event_as_string": lambda call: _Returns(lambda: Reply(event="transfer")),  # type: ignore[arg-type]
    "metadata_not_json": lambda call: _Returns(
        lambda: Reply(event=Transfer(metadata={"when": object()}))
    ),
    "huge_text": lambda call: _Returns(lambda: Reply(prompts=[Prompt(text="x" * 20 * _MIB)])),
    "huge_wav": lambda call: _Returns(
        lambda: Reply.say(b"\xff" * 20 * _MIB, text="huge"), reply_mode="wav"
    ),
    "raises_cancelled": lambda call: _RaisesCancelled(),
    "factory_raises": _factory_raises,
    "blocks_loop": lambda call: _BlocksLoop(),
}


@byova_media.hookimpl
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    for name, factory in FAULTS.items():
        register(AgentSpec(name, factory))
