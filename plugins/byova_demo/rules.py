"""``RuleBasedLLM``: the demo's dialogue as a :class:`~byova_media.adapters.LanguageModel`.

It reads the last caller message, picks an intent by keywords and answers the way a
chat model with the pipeline's tools would: text deltas, and a ``transfer_to_agent``
or ``end_call`` tool call whose arguments name the intent. Because it is just a
language model, switching the demo to a real one is a configuration line.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from byova_media.adapters import LlmEvent, Message, TextDelta, ToolCall, ToolSpec
from byova_media.pipeline import no_input_note, parse_dtmf_note

__all__ = ["DemoAnswers", "RuleBasedLLM"]


class DemoAnswers(BaseModel):
    """What the demo business says (``[plugin.demo.llm_options]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hours: str = "We are open Monday to Friday, from nine in the morning to five in the evening."
    address: str = "You can find us at one hundred Main Street, Springfield."
    transfer: str = "Sure. Let me connect you to an agent, please hold."
    goodbye: str = "Thank you for calling. Goodbye!"
    fallback: str = (
        "Sorry, I did not catch that. You can ask about our opening hours or our address, "
        "or ask for an agent."
    )
    no_input: str = "Are you still there? Ask about our opening hours or our address."
    max_no_input: int = Field(2, ge=1)


@dataclass(frozen=True)
class _Intent:
    name: str
    pattern: re.Pattern[str]


_INTENTS = (
    _Intent(
        "agent_request", re.compile(r"\b(agent|representative|operator|person|human|someone)\b")
    ),
    _Intent("goodbye", re.compile(r"\b(goodbye|bye|that is all)\b")),
    _Intent("hours", re.compile(r"\b(hours|open)\b")),
    _Intent("address", re.compile(r"\b(address|where|located)\b")),
)


def classify(text: str) -> str | None:
    """The demo intent a caller's words express, if any."""
    lowered = text.lower()
    for intent in _INTENTS:
        if intent.pattern.search(lowered):
            return intent.name
    return None


class RuleBasedLLM:
    """Deterministic, instant answers streamed word by word like a chat model's."""

    def __init__(self, answers: DemoAnswers | None = None) -> None:
        self.answers = answers or DemoAnswers()

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()
    ) -> AsyncGenerator[LlmEvent, None]:
        """Answer the last caller message."""
        user = [m.content for m in messages if m.role == "user"]
        last = user[-1] if user else ""
        text, call = self._decide(last, user)
        if call is not None and call.name in {t.name for t in tools}:
            yield call
        for word in re.findall(r"\S+\s*", text):
            await asyncio.sleep(0)  # a chat model streams; let other calls run between deltas
            yield TextDelta(word)

    def _decide(self, last: str, user: Sequence[str]) -> tuple[str, ToolCall | None]:
        a = self.answers
        digits = parse_dtmf_note(last)
        if digits is not None:
            spoken = ", ".join(digits)
            return f"You pressed {spoken}.", None
        if last == no_input_note():
            silent = 0
            for message in reversed(user):
                if message != no_input_note():
                    break
                silent += 1
            if silent > a.max_no_input:
                return a.goodbye, ToolCall("end_call", {"intent": "no_input"}, "demo-end")
            return a.no_input, None
        intent = classify(last)
        if intent == "agent_request":
            return a.transfer, ToolCall("transfer_to_agent", {"intent": intent}, "demo-transfer")
        if intent == "goodbye":
            return a.goodbye, ToolCall("end_call", {"intent": intent}, "demo-end")
        if intent == "hours":
            return a.hours, None
        if intent == "address":
            return a.address, None
        return a.fallback, None
