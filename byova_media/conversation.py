"""Conversation state that outlives Webex's RPCs, and the registry that holds it.

Webex opens a new ``ProcessCallerInput`` RPC for every step of a call, sometimes
while the previous one is still streaming a prompt; everything that must survive
between them (the agent, the negotiated audio format, what is playing) lives here,
keyed by ``conversation_id``. A :class:`Conversation` changes only through its own
methods; the engine and the transports call them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from byova_media.admission import AdmissionError
from byova_media.agent import Agent, AgentSpec, BargeIn, EndSession, Prompt, Reply, Transfer
from byova_media.audio.codecs import Encoding
from byova_media.audio.framing import PlayoutTracker
from byova_media.call import Call
from byova_media.turn_signals import TurnEvent

if TYPE_CHECKING:
    from byova_media.admission import AdmissionMonitor
    from byova_media.app import App
    from byova_media.config import Config

__all__ = ["Conversation", "ConversationRegistry", "Playback", "TurnListener", "clean_ending"]

log = logging.getLogger(__name__)

AgentFailure = Literal["agent_error", "agent_timeout"]


class TurnListener(Protocol):
    """The open audio stream, as far as an agent-driven turn boundary is concerned."""

    def signal(self, event: TurnEvent) -> bool:
        """Take a boundary the agent decided; return whether it was accepted."""
        ...

    @property
    def speech_started(self) -> bool:
        """The caller has begun a turn on this stream."""
        ...


@dataclass(eq=False)
class Playback:
    """One reply's audio as Webex plays it: what was sent, when, and whether it can be barged."""

    tracker: PlayoutTracker
    bargeable: bool
    task: asyncio.Task[None] | None = None
    barged: bool = False

    @property
    def streaming(self) -> bool:
        """The reply's audio is still being produced and sent."""
        return self.task is not None and not self.task.done()

    @property
    def playing(self) -> bool:
        """Still streaming, or sent audio the caller has not finished hearing."""
        return self.streaming or self.tracker.heard_ms() < self.tracker.sent_ms

    def stop(self) -> None:
        """Stop producing audio (the prompt's iterator is closed by the cancellation)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()


class Conversation:
    """Everything the engine keeps about one call."""

    def __init__(
        self,
        app: App,
        spec: AgentSpec,
        *,
        conversation_id: str,
        customer_org_id: str,
        tracking_id: str,
    ) -> None:
        self.app = app
        self.spec = spec
        self.call = Call(
            app=app,
            conversation_id=conversation_id,
            virtual_agent_id=spec.virtual_agent_id,
            customer_org_id=customer_org_id,
            tracking_id=tracking_id,
            signal=self.signal,
            heard=self.heard_ms,
            speaking=self.speech_started,
        )
        self.agent: Agent = spec.factory(self.call)
        self.reply_mode: Literal["chunk", "wav"] = self.agent.reply_mode or app.config.reply_mode
        self.encoding = Encoding.MULAW
        self.sample_rate = 8000
        self.playback: Playback | None = None
        self.turns = 0
        self.started = False
        self.ended = False
        self.last_seen = time.monotonic()
        self._listener: TurnListener | None = None

    @property
    def id(self) -> str:
        return self.call.conversation_id

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    # --- call lifecycle ---

    def begin(self) -> bool:
        """Mark SESSION_START as seen; ``False`` if it was seen before (a duplicate)."""
        first = not self.started
        self.started = True
        return first

    def adopt(self) -> None:
        """Carry on a call that started elsewhere (a restart, another instance): no welcome."""
        log.info("adopting conversation that started elsewhere")
        self.started = True

    def close(self) -> bool:
        """Mark the conversation ended and stop its audio; ``False`` if it already was."""
        if self.ended:
            return False
        self.ended = True
        if self.playback is not None:
            self.playback.stop()
        return True

    # --- turns ---

    def begin_turn(self) -> int:
        """Start a caller turn: a fresh set of latency marks; return the turn's number."""
        turn = self.turns
        self.turns += 1
        self.call.marks.clear()
        return turn

    def set_audio_format(
        self, encoding: Encoding | None, sample_rate: int | None, language_code: str | None
    ) -> None:
        """Remember what the client said about its audio; ``None`` keeps the current value."""
        if encoding is not None:
            self.encoding = encoding
        if sample_rate is not None:
            self.sample_rate = sample_rate
        if language_code:
            self.call.language_code = language_code

    @contextlib.contextmanager
    def listening(self, listener: TurnListener) -> Iterator[None]:
        """Route agent-driven turn boundaries to ``listener`` while its audio stream is open."""
        self._listener = listener
        try:
            yield
        finally:
            if self._listener is listener:
                self._listener = None

    def signal(self, event: TurnEvent) -> bool:
        """An agent-driven boundary (``call.start_of_input()``); ``False`` with no open stream."""
        return self._listener.signal(event) if self._listener is not None else False

    def speech_started(self) -> bool:
        """Whether the caller began a turn on the open audio stream (``False`` with none)."""
        return self._listener is not None and self._listener.speech_started

    # --- playback ---

    def play(self, playback: Playback) -> None:
        """Make ``playback`` the reply the caller hears now."""
        self.playback = playback

    def heard_ms(self) -> int:
        return self.playback.tracker.heard_ms() if self.playback else 0

    def barge_in(self) -> BargeIn | None:
        """Stop the playing bargeable reply, if any; return what the caller heard of it."""
        playback = self.playback
        if playback is None or not playback.bargeable or playback.barged or not playback.playing:
            return None
        playback.barged = True
        playback.stop()
        self.app.metrics.barge_ins.inc()
        return BargeIn(heard_ms=playback.tracker.heard_ms(), sent_ms=playback.tracker.sent_ms)

    # --- talking to the agent ---

    async def ask(self, work: Awaitable[Reply | None], method: str) -> Reply:
        """Run one agent method that answers; a failure becomes the clean ending.

        ``None`` means "nothing to say" (an empty reply); anything that is not a
        :class:`Reply` is an agent bug and gets the clean ending too.
        """
        try:
            result = await self._run(work)
        except _AgentFailed as failed:
            return self.agent_failed(failed.reason, f"{method} {failed.detail}", failed.exc)
        if result is None:
            return Reply()
        if not isinstance(result, Reply):
            detail = f"{method} returned {type(result).__name__}, not a Reply"
            return self.agent_failed("agent_error", detail)
        return result

    async def notify(self, work: Awaitable[None], method: str) -> None:
        """Run one agent method that only listens; a failure is counted and logged."""
        try:
            await self._run(work)
        except _AgentFailed as failed:
            self.report_failure(f"{method} {failed.detail}", failed.exc)

    async def _run(self, work: Awaitable[object]) -> object:
        """Await agent code under ``agent_timeout_s``; raise :class:`_AgentFailed` on failure."""
        timeout = self.app.config.agent_timeout_s
        try:
            return await asyncio.wait_for(work, timeout)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the RPC itself is being cancelled (client gone, barge-in)
            raise _AgentFailed("agent_error", "raised CancelledError", exc) from None
        except TimeoutError:
            raise _AgentFailed("agent_timeout", f"did not finish within {timeout:g} s") from None
        except Exception as exc:
            raise _AgentFailed("agent_error", f"failed: {exc!r}", exc) from None

    def agent_failed(
        self, reason: AgentFailure, detail: str, exc: BaseException | None = None
    ) -> Reply:
        """Count and log an agent failure once; return the caller's clean ending."""
        self.report_failure(detail, exc)
        return clean_ending(self.app.config, reason)

    def report_failure(self, detail: str, exc: BaseException | None = None) -> None:
        """Count and log one failure of this conversation's agent (no reply involved)."""
        self.app.metrics.plugin_errors.labels(plugin=self.spec.virtual_agent_id).inc()
        log.error("agent %r: %s", self.spec.virtual_agent_id, detail, exc_info=_traceback_of(exc))


def clean_ending(config: Config, reason: AgentFailure) -> Reply:
    """What a caller gets when the agent fails: the configured transfer or end, with a text."""
    prompt = Prompt(text=config.plugin_error_text)
    metadata = {"reason": reason}
    if config.on_plugin_error == "transfer":
        return Reply(prompts=[prompt], event=Transfer(metadata=metadata))
    return Reply(prompts=[prompt], event=EndSession(metadata=metadata))


class _AgentFailed(Exception):
    def __init__(self, reason: AgentFailure, detail: str, exc: BaseException | None = None):
        super().__init__(detail)
        self.reason: AgentFailure = reason
        self.detail = detail
        self.exc = exc


def _traceback_of(exc: BaseException | None) -> BaseException | None:
    """Log a traceback for real errors, not for a timeout or a cancellation."""
    return exc if isinstance(exc, Exception) else None


class ConversationRegistry:
    """Conversations by id, with an idle TTL, a maximum count and load-based admission."""

    def __init__(
        self,
        app: App,
        agents: dict[str, AgentSpec],
        default_agent: str | None,
        admission: AdmissionMonitor | None = None,
    ) -> None:
        self.app = app
        self.agents = agents
        self.default_agent = default_agent
        self.admission = admission
        self._items: dict[str, Conversation] = {}
        #: Ids of conversations that ended, oldest first, kept for ``conversation_ttl_s`` so
        #: that a late RPC cannot bring one back; at most ``max_conversations`` of them.
        self._ended: collections.OrderedDict[str, float] = collections.OrderedDict()

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

    def admit(self, carried_on: bool = False) -> None:
        """Raise :class:`AdmissionError` when a new conversation must be refused now.

        ``carried_on``: the call began on another instance of a cluster; draining does not
        refuse it (the cluster hands it here only when no live instance is left).
        """
        refused = self.refusal(carried_on)
        if refused is not None:
            reason, error = refused
            self.app.metrics.admission_rejections.labels(reason=reason).inc()
            raise error

    def refusal(self, carried_on: bool = False) -> tuple[str, AdmissionError] | None:
        """Why a new conversation would be refused now (metric reason and error), or
        ``None``; asking changes nothing, so a cluster can send the call elsewhere first."""
        config = self.app.config
        if self.app.draining and not carried_on:
            message = "server is draining; retry on another instance"
            return "draining", AdmissionError("UNAVAILABLE", message)
        if len(self._items) >= config.max_conversations:
            message = f"server holds its maximum of {config.max_conversations} conversations"
            return "max_conversations", AdmissionError("RESOURCE_EXHAUSTED", message)
        if self.admission is not None and (overload := self.admission.overload()) is not None:
            return overload.reason, AdmissionError("RESOURCE_EXHAUSTED", overload.message)
        return None

    def create(
        self,
        conversation_id: str,
        spec: AgentSpec,
        org_id: str,
        tracking_id: str,
        carried_on: bool = False,
    ) -> Conversation:
        """Admit a new conversation (or raise :class:`AdmissionError`) and hold it."""
        self.admit(carried_on)
        conv = Conversation(
            self.app,
            spec,
            conversation_id=conversation_id,
            customer_org_id=org_id,
            tracking_id=tracking_id,
        )
        self._items[conversation_id] = conv
        self.app.metrics.active_conversations.set(len(self._items))
        return conv

    def remove(self, conversation_id: str) -> Conversation | None:
        conv = self._items.pop(conversation_id, None)
        self.app.metrics.active_conversations.set(len(self._items))
        return conv

    def mark_ended(self, conversation_id: str) -> None:
        """Remember that a conversation ended, so that a late RPC for it is refused."""
        self._ended[conversation_id] = time.monotonic()
        self._ended.move_to_end(conversation_id)
        while len(self._ended) > self.app.config.max_conversations:
            self._ended.popitem(last=False)

    def has_ended(self, conversation_id: str) -> bool:
        """Whether the conversation ended within the last ``conversation_ttl_s``."""
        ended_at = self._ended.get(conversation_id)
        if ended_at is None:
            return False
        if time.monotonic() - ended_at > self.app.config.conversation_ttl_s:
            del self._ended[conversation_id]
            return False
        return True

    def expired(self, now: float | None = None) -> list[Conversation]:
        """Conversations idle for longer than the TTL, removed from the registry."""
        now = time.monotonic() if now is None else now
        ttl = self.app.config.conversation_ttl_s
        stale = [c for c in self._items.values() if now - c.last_seen > ttl]
        for conv in stale:
            self.remove(conv.id)
        return stale

    def all(self) -> list[Conversation]:
        return list(self._items.values())
