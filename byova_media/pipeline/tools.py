"""Tools the pipeline's language model can call: built-in hand-over/hang-up and your own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from byova_media.adapters import ToolSpec
from byova_media.agent import EndSession, OutputEvent, Transfer

if TYPE_CHECKING:
    from byova_media.call import Call

__all__ = ["BUILTIN_TOOLS", "Tool", "ToolHandler"]

#: A tool's work: a text result goes back to the model; an output event ends the turn with it.
ToolHandler = Callable[["Call", Mapping[str, Any]], Awaitable[str | OutputEvent]]


@dataclass(frozen=True)
class Tool:
    """A callable tool: what the model is told (``spec``) and what runs (``handler``)."""

    spec: ToolSpec
    handler: ToolHandler

    @classmethod
    def define(
        cls,
        name: str,
        description: str,
        handler: ToolHandler,
        parameters: Mapping[str, Any] | None = None,
    ) -> Tool:
        params = parameters or {"type": "object", "properties": {}}
        return cls(ToolSpec(name, description, params), handler)


_REASON = {
    "type": "object",
    "properties": {"reason": {"type": "string", "description": "Why, in a few words."}},
}


async def _transfer(call: Call, arguments: Mapping[str, Any]) -> OutputEvent:
    return Transfer(metadata=dict(arguments))


async def _end(call: Call, arguments: Mapping[str, Any]) -> OutputEvent:
    return EndSession(metadata=dict(arguments))


#: ``transfer_to_agent`` (→ TRANSFER_TO_AGENT) and ``end_call`` (→ SESSION_END); the tool's
#: arguments become the event's metadata.
BUILTIN_TOOLS: tuple[Tool, ...] = (
    Tool.define(
        "transfer_to_agent",
        "Hand the caller to a human agent. Say a short sentence first.",
        _transfer,
        _REASON,
    ),
    Tool.define(
        "end_call", "End the call when the caller is done. Say goodbye first.", _end, _REASON
    ),
)
