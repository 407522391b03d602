"""What one call's Realtime session knows that must outlive a reconnect.

A reconnect opens a new server session with an empty conversation, so the transcript
lives here (and is replayed to the new session as context), not in the protocol
object of one connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CallState"]


@dataclass
class CallState:
    """Transcript lines of the call, and whether a tool result waits for a response."""

    lines: list[tuple[Literal["Caller", "Agent"], str]] = field(default_factory=list)
    #: A tool result went in while a response was running: ask for one when it ends.
    response_wanted: bool = False

    def add(self, who: Literal["Caller", "Agent"], text: str) -> None:
        text = text.strip()
        if text:
            self.lines.append((who, text))

    def transcript(self) -> str:
        """``Caller: ...`` / ``Agent: ...`` lines, for Webex's session transcript."""
        return "\n".join(f"{who}: {text}" for who, text in self.lines)
