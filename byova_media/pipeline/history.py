"""The chat history of one call, and mapping what the caller heard back to text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from byova_media.adapters import Message, ToolCall

__all__ = ["History", "SpokenPiece", "heard_text"]


@dataclass(frozen=True)
class SpokenPiece:
    """One synthesised piece of a reply and where its audio sits in the reply, in ms."""

    text: str
    start_ms: float
    end_ms: float


def heard_text(pieces: Sequence[SpokenPiece], heard_ms: int) -> str:
    """The text the caller heard of a reply cut after ``heard_ms`` of its audio.

    Whole pieces played before the cut count in full; the piece playing at the cut
    counts word by word in proportion to how much of its audio was played.
    """
    words: list[str] = []
    for piece in pieces:
        if piece.end_ms <= heard_ms:
            words.extend(piece.text.split())
            continue
        if piece.start_ms < heard_ms:
            share = (heard_ms - piece.start_ms) / max(piece.end_ms - piece.start_ms, 1.0)
            piece_words = piece.text.split()
            words.extend(piece_words[: int(len(piece_words) * share)])
        break
    return " ".join(words)


class History:
    """System prompt plus the last ``max_messages`` chat messages."""

    def __init__(self, system_prompt: str, max_messages: int = 40) -> None:
        self._system = Message("system", system_prompt) if system_prompt else None
        self._max = max_messages
        self.messages: list[Message] = []

    def add(self, message: Message) -> None:
        """Append ``message``, dropping the oldest beyond the limit."""
        self.messages.append(message)
        excess = len(self.messages) - self._max
        if excess > 0:
            del self.messages[:excess]

    def replace_last_assistant(self, content: str) -> None:
        """Rewrite the latest assistant message (a barge-in cut it short)."""
        for index in range(len(self.messages) - 1, -1, -1):
            message = self.messages[index]
            if message.role == "assistant" and not message.tool_calls:
                self.messages[index] = Message("assistant", content)
                return

    def to_json(self) -> list[dict[str, Any]]:
        """The messages (not the system prompt, which comes from settings) as JSON data."""
        return [
            {
                "role": m.role,
                "content": m.content,
                "tool_calls": [
                    {"name": c.name, "arguments": dict(c.arguments), "id": c.id}
                    for c in m.tool_calls
                ],
                "tool_call_id": m.tool_call_id,
            }
            for m in self.messages
        ]

    def load_json(self, data: Sequence[Mapping[str, Any]]) -> None:
        """Replace the messages with what :meth:`to_json` returned."""
        self.messages = []
        for item in data:
            calls = tuple(
                ToolCall(name=c["name"], arguments=c.get("arguments", {}), id=c.get("id", ""))
                for c in item.get("tool_calls", ())
            )
            self.add(
                Message(
                    item["role"],
                    item.get("content", ""),
                    tool_calls=calls,
                    tool_call_id=item.get("tool_call_id", ""),
                )
            )

    def for_model(self) -> list[Message]:
        return ([self._system] if self._system else []) + list(self.messages)

    def transcript(self) -> str:
        """Caller and agent lines, for Webex's session transcript."""
        lines = []
        for message in self.messages:
            if message.role == "user":
                lines.append(f"Caller: {message.content}")
            elif message.role == "assistant" and message.content:
                lines.append(f"Agent: {message.content}")
        return "\n".join(lines)
