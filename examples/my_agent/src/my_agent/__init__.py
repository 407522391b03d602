"""my_agent: a virtual agent shipped as its own package, as a third party would ship one.

It greets the caller by the name the Webex flow passes on SESSION_START, answers each
utterance, keeps a transcript that Webex stores with the call, transfers on ``0`` and
hangs up on ``*``. ``BYOVA_MEDIA_REQUIRES`` tells byova-media which of its versions
this package was written for; any other refuses to load it, with both versions named.
"""

from __future__ import annotations

from collections.abc import Callable

import byova_media
from byova_media import (
    Agent,
    AgentSpec,
    App,
    Call,
    EndSession,
    Reply,
    SessionStart,
    Transfer,
    Utterance,
    pcm_to_ulaw,
    tone,
)

__all__ = ["BYOVA_MEDIA_REQUIRES", "MyAgent"]

__version__ = "0.1.0"

#: The byova-media versions this plugin supports; checked when byova-media loads it.
BYOVA_MEDIA_REQUIRES = ">=0.1,<0.2"


def _audio(text: str) -> bytes:
    """Prompt audio for ``text``: a tone per word stands in for recorded speech."""
    words = max(1, len(text.split()))
    return pcm_to_ulaw(tone(440.0, 60 * words))


def _say(text: str) -> Reply:
    return Reply.say(_audio(text), text=text, barge_in=True)


class MyAgent(Agent):
    """One caller's conversation; the transcript grows with every exchange."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _agent_says(self, call: Call, text: str) -> str:
        self.lines.append(f"Agent: {text}")
        call.transcript = "\n".join(self.lines)
        return text

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        name = str(start.parameters.get("customer_name", "")).strip()
        hello = f"Hello {name}, how can I help?" if name else "Hello, how can I help?"
        return _say(self._agent_says(call, hello))

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        self.lines.append(f"Caller: ({utterance.duration_ms} ms of speech)")
        return _say(self._agent_says(call, "Thanks. Press 0 for a person or star to hang up."))

    async def on_dtmf(self, call: Call, digits: str) -> Reply:
        self.lines.append(f"Caller: pressed {digits}")
        if digits.startswith("0"):
            text = self._agent_says(call, "Connecting you to a person.")
            return Reply.say(text=text, event=Transfer(metadata={"reason": "caller_request"}))
        if digits.startswith("*"):
            text = self._agent_says(call, "Goodbye.")
            return Reply.say(text=text, event=EndSession(metadata={"reason": "caller_done"}))
        return _say(self._agent_says(call, "Press 0 for a person or star to hang up."))

    async def on_no_input(self, call: Call) -> Reply:
        return _say(self._agent_says(call, "Are you still there?"))


@byova_media.hookimpl
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    """Offer virtual agent ``my_agent`` to Webex."""
    register(AgentSpec("my_agent", lambda call: MyAgent(), name="My agent", is_default=True))
