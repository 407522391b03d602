"""A conversation's state as JSON, for the instance that carries a call on after a move.

Only what the next turn needs: the agent's own snapshot (its memory of the call), the
call's transcript and summary (Webex reads them on the last response), the SESSION_START
parameters and the turn count. Never audio. The agent part is capped at
:data:`~byova_media.agent.SNAPSHOT_MAX_BYTES`.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from byova_media.agent import SNAPSHOT_MAX_BYTES

if TYPE_CHECKING:
    from byova_media.conversation import Conversation

__all__ = ["SnapshotError", "apply_snapshot", "take_snapshot"]

log = logging.getLogger(__name__)
_VERSION = 1


class SnapshotError(ValueError):
    """The agent's snapshot cannot be stored (not JSON, or too large)."""


def take_snapshot(conv: Conversation) -> bytes:
    """The conversation's state as compact JSON; raise :class:`SnapshotError` if impossible."""
    agent_state = conv.agent.snapshot()
    try:
        agent_json = json.dumps(agent_state, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SnapshotError(f"agent snapshot is not JSON-serialisable: {exc}") from None
    if len(agent_json) > SNAPSHOT_MAX_BYTES:
        raise SnapshotError(
            f"agent snapshot is {len(agent_json)} bytes, above the {SNAPSHOT_MAX_BYTES} cap"
        )
    call = conv.call
    head = json.dumps(
        {
            "v": _VERSION,
            "virtual_agent_id": conv.spec.virtual_agent_id,
            "turns": conv.turns,
            "transcript": call.transcript,
            "summary": call.summary,
            "parameters": dict(call.parameters),
        },
        separators=(",", ":"),
        default=str,
    )
    return f'{head[:-1]},"agent":{agent_json}}}'.encode()


def apply_snapshot(conv: Conversation, data: dict[str, Any]) -> None:
    """Restore a conversation made on this instance from ``data`` (from :func:`take_snapshot`)."""
    if data.get("v") != _VERSION or data.get("virtual_agent_id") != conv.spec.virtual_agent_id:
        log.warning("ignoring a snapshot of another agent or format version")
        return
    call = conv.call
    conv.turns = int(data.get("turns", 0))
    call.transcript = data.get("transcript")
    call.summary = data.get("summary")
    call.parameters = dict(data.get("parameters") or {})
    state = data.get("agent")
    if isinstance(state, dict):
        conv.agent.restore(state)
