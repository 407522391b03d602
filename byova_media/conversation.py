"""Conversation state that outlives Webex's RPCs, and the registry that holds it.

Webex opens a new ``ProcessCallerInput`` RPC for every step of a call, sometimes
while the previous one is still streaming a prompt; everything that must survive
between them (the agent, the negotiated audio format, what is playing) lives here,
keyed by ``conversation_id``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from byova_media.agent import Agent, AgentSpec, BargeIn
from byova_media.audio.codecs import Encoding
from byova_media.audio.framing import PlayoutTracker
from byova_media.call import Call

if TYPE_CHECKING:
    from byova_media.admission import AdmissionMonitor
    from byova_media.app import App

__all__ = ["AdmissionError", "Conversation", "ConversationRegistry", "Playback"]

log = logging.getLogger(__name__)


class AdmissionError(Exception):
    """A new conversation was refused; ``code`` names the gRPC status to answer with."""

    def __init__(self, code: Literal["RESOURCE_EXHAUSTED", "UNAVAILABLE"], message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(eq=False)
class Playback:
    """One reply's audio as Webex plays it: what was sent, when, and whether it can be barged."""

    tracker: PlayoutTracker
    bargeable: bool
    task: asyncio.Task[None] | None = None
    barged: bool = False

    @property
    def playing(self) -> bool:
        """Still streaming, or sent audio the caller has not finished hearing."""
        if self.task is not None and not self.task.done():
            return True
        return self.tracker.heard_ms() < self.tracker.sent_ms


@dataclass(eq=False)
class Conversation:
    """Everything the engine keeps about one call."""

    app: App
    spec: AgentSpec
    call: Call
    agent: Agent = field(init=False)
    encoding: Encoding = Encoding.MULAW
    sample_rate: int = 8000
    reply_mode: Literal["chunk", "wav"] = "chunk"
    playback: Playback | None = None
    #: Signals for the open audio RPC (agent-driven turn-taking); set by the servicer.
    audio_signal: Callable[[str], bool] | None = None
    turns: int = 0
    started: bool = False
    ended: bool = False
    last_seen: float = field(default_factory=time.monotonic)

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def heard_ms(self) -> int:
        return self.playback.tracker.heard_ms() if self.playback else 0

    def signal(self, kind: str) -> bool:
        return self.audio_signal(kind) if self.audio_signal is not None else False

    def barge_in(self) -> BargeIn | None:
        """Stop the playing bargeable reply, if any; return what the caller heard of it."""
        playback = self.playback
        if playback is None or not playback.bargeable or playback.barged or not playback.playing:
            return None
        playback.barged = True
        if playback.task is not None and not playback.task.done():
            playback.task.cancel()
        self.app.metrics.barge_ins.inc()
        return BargeIn(heard_ms=playback.tracker.heard_ms(), sent_ms=playback.tracker.sent_ms)


class ConversationRegistry:
    """Conversations by id, with an idle TTL and a maximum count."""

    def __init__(self, app: App, agents: dict[str, AgentSpec], default_agent: str | None) -> None:
        self.app = app
        self.agents = agents
        self.default_agent = default_agent
        self._items: dict[str, Conversation] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.on_expire: Callable[[Conversation], object] | None = None
        #: Load-based admission (loop lag / CPU); the server sets it when configured.
        self.admission: AdmissionMonitor | None = None

    def __len__(self) -> int:
        return len(self._items)

    def get(self, conversation_id: str) -> Conversation | None:
        conv = self._items.get(conversation_id)
        if conv is not None:
            conv.touch()
        return conv

    def resolve_agent(self, virtual_agent_id: str) -> AgentSpec | None:
        """The spec for an id; an empty id means the default agent."""
        if virtual_agent_id:
            return self.agents.get(virtual_agent_id)
        return self.agents.get(self.default_agent or "")

    def create(
        self, conversation_id: str, spec: AgentSpec, org_id: str, tracking_id: str
    ) -> Conversation:
        """Admit a new conversation or raise :class:`AdmissionError`."""
        config = self.app.config
        if self.app.draining:
            self.app.metrics.admission_rejections.labels(reason="draining").inc()
            raise AdmissionError("UNAVAILABLE", "server is draining; retry on another instance")
        if len(self._items) >= config.max_conversations:
            self.app.metrics.admission_rejections.labels(reason="max_conversations").inc()
            raise AdmissionError(
                "RESOURCE_EXHAUSTED",
                f"server holds its maximum of {config.max_conversations} conversations",
            )
        if self.admission is not None and (overload := self.admission.overload()) is not None:
            self.app.metrics.admission_rejections.labels(reason=overload.reason).inc()
            raise AdmissionError("RESOURCE_EXHAUSTED", overload.message)
        call = Call(
            app=self.app,
            conversation_id=conversation_id,
            virtual_agent_id=spec.virtual_agent_id,
            customer_org_id=org_id,
            tracking_id=tracking_id,
        )
        conv = Conversation(app=self.app, spec=spec, call=call)
        call._signal = conv.signal
        call._heard = conv.heard_ms
        conv.agent = spec.factory(call)
        conv.reply_mode = conv.agent.reply_mode or config.reply_mode
        self._items[conversation_id] = conv
        self.app.metrics.active_conversations.set(len(self._items))
        return conv

    def remove(self, conversation_id: str) -> Conversation | None:
        conv = self._items.pop(conversation_id, None)
        self.app.metrics.active_conversations.set(len(self._items))
        return conv

    def expired(self, now: float | None = None) -> list[Conversation]:
        """Conversations idle for longer than the TTL, removed from the registry."""
        now = time.monotonic() if now is None else now
        ttl = self.app.config.conversation_ttl_s
        stale = [c for c in self._items.values() if now - c.last_seen > ttl]
        for conv in stale:
            self.remove(conv.call.conversation_id)
        return stale

    def all(self) -> list[Conversation]:
        return list(self._items.values())
