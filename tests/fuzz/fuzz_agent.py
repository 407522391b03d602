"""A test plugin for the fuzz suite: agent ``wavfuzz`` plays back any WAV it is handed.

A CUSTOM_EVENT named ``wav`` carries base64 bytes in its ``wav`` parameter; the agent returns
them as its prompt, so the fuzzer can drive arbitrary (mostly broken) WAV prompts through the
server's reply path from the client side.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

import byova_media
from byova_media.agent import Agent, AgentSpec, Reply
from byova_media.app import App
from byova_media.call import Call


class WavFuzzAgent(Agent):
    """Replies to the ``wav`` custom event with the WAV bytes it carries."""

    async def on_custom_event(
        self, call: Call, name: str, parameters: Mapping[str, Any]
    ) -> Reply | None:
        encoded = parameters.get("wav")
        if name != "wav" or not isinstance(encoded, str):
            return None
        try:
            return Reply.say(base64.b64decode(encoded), text="fuzz")
        except binascii.Error:
            return None


@byova_media.hookimpl
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    register(AgentSpec("wavfuzz", lambda call: WavFuzzAgent(), name="WAV fuzz"))
