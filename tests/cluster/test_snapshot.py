"""Conversation snapshots: JSON, capped, restored into a new agent on another instance."""

from __future__ import annotations

import json
from typing import Any

import pytest

from byova_echo import EchoAgent
from byova_media.agent import SNAPSHOT_MAX_BYTES, Agent, AgentSpec
from byova_media.app import App
from byova_media.cluster.snapshot import SnapshotError, apply_snapshot, take_snapshot
from byova_media.config import Config
from byova_media.conversation import Conversation, ConversationRegistry
from byova_media.plugins import PluginHost


class Holding(Agent):
    def __init__(self, state: Any) -> None:
        self.state = state

    def snapshot(self) -> Any:
        return self.state


def conversation(agent: Agent, agent_id: str = "a") -> Conversation:
    app = App(config=Config(), plugins=PluginHost.create(discover=False))
    spec = AgentSpec(agent_id, lambda call: agent)
    return ConversationRegistry(app, {agent_id: spec}, agent_id).create("c1", spec, "org", "trk")


def test_a_call_moves_with_its_agent_memory_and_transcript() -> None:
    source = EchoAgent()
    source.digits = "42"
    conv = conversation(source, "echo")
    conv.turns = 3
    conv.call.transcript = "Caller: hi"
    conv.call.parameters = {"lang": "en-US"}
    data = json.loads(take_snapshot(conv))
    moved = conversation(EchoAgent(), "echo")
    apply_snapshot(moved, data)
    assert isinstance(moved.agent, EchoAgent) and moved.agent.digits == "42"
    assert (moved.turns, moved.call.transcript) == (3, "Caller: hi")
    assert moved.call.parameters == {"lang": "en-US"}


def test_a_snapshot_of_another_agent_is_ignored() -> None:
    source = EchoAgent()
    source.digits = "7"
    data = json.loads(take_snapshot(conversation(source, "echo")))
    other = conversation(EchoAgent(), "other")
    apply_snapshot(other, data)
    assert isinstance(other.agent, EchoAgent) and other.agent.digits == ""


@pytest.mark.parametrize(
    ("state", "message"),
    [({"x": object()}, "not JSON"), ({"x": "a" * SNAPSHOT_MAX_BYTES}, "above the")],
)
def test_unstorable_snapshots_are_refused_with_the_reason(state: Any, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        take_snapshot(conversation(Holding(state)))


def test_an_agent_without_memory_snapshots_none() -> None:
    data = json.loads(take_snapshot(conversation(Holding(None))))
    assert data["agent"] is None
