"""``WebSocketAgent``: a BYOVA conversation bridged to one backend WebSocket.

Caller frames go to the backend as they arrive (``on_audio`` only queues them). Each
turn's reply is a streamed prompt fed by the backend's audio; it ends when the backend
goes quiet for ``reply_idle_ms``, at a mark (if configured), at an output event, or
when the caller barges in. When the backend owns turn-taking, the agent calls
``call.start_of_input()`` when the backend clears its audio (the caller interrupted)
and ``call.end_of_input()`` when the backend starts answering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from functools import partial
from typing import Any

import numpy as np

from byova_media.agent import (
    Agent,
    BargeIn,
    CustomEvent,
    EndSession,
    Prompt,
    Reply,
    SessionStart,
    Transfer,
    Utterance,
)
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.call import Call
from byova_websocket.connection import BackendLink
from byova_websocket.metrics import WsMetrics
from byova_websocket.native import NativeProtocol
from byova_websocket.playout import PlayoutBuffer
from byova_websocket.protocol import (
    BackendEvent,
    BoundaryEvent,
    ClearEvent,
    CustomEventMessage,
    EndEvent,
    MarkEvent,
    MediaEvent,
    Message,
    ReadyEvent,
    SessionInfo,
    TranscriptEvent,
    TransferEvent,
    WireProtocol,
)
from byova_websocket.settings import ConnectorSettings
from byova_websocket.twilio import TwilioProtocol

__all__ = ["WebSocketAgent", "protocol_factory"]


def protocol_factory(settings: ConnectorSettings) -> Callable[[], WireProtocol]:
    """A new protocol object per connection (Twilio numbers its messages per stream)."""
    if settings.protocol == "twilio":
        return TwilioProtocol
    return lambda: NativeProtocol(settings.audio_transport)


class WebSocketAgent(Agent):
    """Bridges one conversation to its backend over the configured wire protocol."""

    wants_audio = True
    reply_mode = "chunk"

    def __init__(
        self,
        call: Call,
        settings: ConnectorSettings,
        metrics: WsMetrics | None = None,
        fallback_audio: bytes = b"",
        protocol: Callable[[], WireProtocol] | None = None,
    ) -> None:
        self.call = call
        self.settings = settings
        #: Makes the wire protocol of each connection (default: the one settings name).
        self.protocol = protocol or protocol_factory(settings)
        self.metrics = metrics
        self.fallback_audio = fallback_audio
        self.turn_taking = "agent" if settings.backend_turns else "server"
        self.buffer = PlayoutBuffer(settings.playout_buffer_ms * 8)
        self.link: BackendLink | None = None
        self._reply_id = 0
        self._active: int | None = None  # id of the reply whose stream is open
        self._caller_turn = False  # we sent START_OF_INPUT on the open audio RPC
        self._want_slot = False  # the backend has something to deliver and no reply is open
        self._slot_asked = False
        self._backend_cleared = False
        self._opening = True
        self._ended = False
        self._marks: dict[str, asyncio.TimerHandle] = {}

    def __repr__(self) -> str:
        return f"WebSocketAgent({self.settings.virtual_agent_id!r}, {self.settings.safe_url})"

    @property
    def _streaming(self) -> bool:
        """Whether the current turn's reply stream is open (backend output goes there)."""
        return self._active is not None and self._active == self._reply_id

    # --- the engine's calls ---

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        info = SessionInfo(
            conversation_id=call.conversation_id,
            virtual_agent_id=call.virtual_agent_id,
            customer_org_id=call.customer_org_id,
            tracking_id=call.tracking_id,
            language_code=call.language_code,
            parameters=dict(start.parameters),
        )
        self.link = BackendLink(
            self.settings,
            info,
            self.protocol,
            on_event=self._on_event,
            on_failed=self._on_failed,
            on_ended=self._on_backend_ended,
        )
        connected = await self.link.open()
        self._opening = False
        if not connected:
            return self._fallback_reply("backend_unavailable")
        return self._reply()

    async def on_audio(self, call: Call, frame: np.ndarray) -> None:
        link = self.link
        if link is not None:
            link.send_audio(pcm_to_ulaw(frame))
        if self._want_slot and not self._slot_asked:
            self._ask_slot()

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        if not self.settings.backend_turns:
            self._send(lambda p: p.end_of_input())
        return self._reply()

    async def on_dtmf(self, call: Call, digits: str) -> Reply:
        self._send(lambda p: p.dtmf(digits))
        return self._reply()

    async def on_no_input(self, call: Call) -> Reply:
        self._send(lambda p: p.no_input())
        return self._reply()

    async def on_custom_event(self, call: Call, name: str, parameters: Mapping[str, Any]) -> Reply:
        self._send(lambda p: p.custom_event(name, parameters))
        return self._reply()

    async def on_barge_in(self, call: Call, barge_in: BargeIn) -> None:
        self._reply_id += 1
        self.buffer.wake()
        if self._backend_cleared:
            self._backend_cleared = False  # the backend asked for it and already knows
            return
        self._flush_marks(self.buffer.clear())
        self._send(lambda p: p.barge_in(barge_in.heard_ms))

    async def on_end(self, call: Call, reason: str) -> None:
        self._ended = True
        self.buffer.wake()
        for handle in self._marks.values():
            handle.cancel()
        self._marks.clear()
        link = self.link
        if link is None:
            return
        await link.close(lambda p: p.stop(reason))
        self._record(link)

    # --- replies ---

    def _reply(self) -> Reply:
        """A reply whose one prompt streams the backend's audio for this turn."""
        self._reply_id += 1
        self._active = self._reply_id
        self._want_slot = self._slot_asked = self._caller_turn = False
        self.buffer.wake()  # an older reply stream still waiting gives way
        reply = Reply()
        reply.prompts.append(
            Prompt(audio=self._stream(self._reply_id, reply), barge_in=self.settings.barge_in)
        )
        return reply

    async def _stream(self, reply_id: int, reply: Reply) -> AsyncIterator[bytes]:
        s = self.settings
        started = time.monotonic()
        got_audio = False
        sent_bytes = 0
        try:
            while reply_id == self._reply_id and not self._ended:
                item = self.buffer.pop()
                if item is None:
                    now = time.monotonic()
                    if got_audio:
                        # Idle time counts from the backend's last audio, not our last pull:
                        # the engine may have paused pulling to pace the playout.
                        last = max(started, self.buffer.last_audio_at)
                        remaining = last + s.reply_idle_ms / 1000 - now
                    else:
                        remaining = started + s.reply_wait_ms / 1000 - now
                    remaining = min(remaining, started + s.reply_max_ms / 1000 - now)
                    if remaining <= 0:
                        return
                    await self.buffer.wait(remaining)
                    continue
                if isinstance(item, bytes):
                    got_audio = True
                    sent_bytes += len(item)
                    yield item
                elif isinstance(item, MarkEvent):
                    self._schedule_mark(item.name, sent_bytes)
                    if s.end_reply_on_mark and got_audio:
                        return
                else:
                    reply.event = item
                    return
        finally:
            if self._active == reply_id:
                self._active = None

    def _fallback_reply(self, reason: str) -> Reply:
        if self.metrics is not None:
            self.metrics.fallbacks.labels(virtual_agent=self.settings.virtual_agent_id).inc()
        self.call.log.warning(
            "backend down past %d ms: %s with a prompt",
            self.settings.down_limit_ms,
            self.settings.fallback,
        )
        prompt = Prompt(audio=self.fallback_audio or None, text=self.settings.fallback_text)
        return Reply(prompts=[prompt], event=self._fallback_event(reason))

    def _fallback_event(self, reason: str) -> Transfer | EndSession:
        if self.settings.fallback == "transfer":
            return Transfer(metadata={"reason": reason})
        return EndSession(metadata={"reason": reason})

    # --- backend events (called from the link's receiver task) ---

    def _on_event(self, event: BackendEvent) -> None:
        if isinstance(event, MediaEvent):
            if event.ulaw:
                self.buffer.put(event.ulaw)
                self._deliver(urgent=False)
        elif isinstance(event, ClearEvent):
            self._on_clear()
        elif isinstance(event, MarkEvent):
            self.buffer.put(event)
        elif isinstance(event, TransferEvent):
            self.buffer.put(Transfer(metadata=dict(event.metadata)))
            self._deliver(urgent=True)
        elif isinstance(event, EndEvent):
            self.buffer.put(EndSession(metadata=dict(event.metadata)))
            self._deliver(urgent=True)
        elif isinstance(event, CustomEventMessage):
            self.buffer.put(CustomEvent(name=event.name, metadata=dict(event.metadata)))
            self._deliver(urgent=True)
        elif isinstance(event, TranscriptEvent):
            if event.text is not None:
                self.call.transcript = event.text
            if event.summary is not None:
                self.call.summary = event.summary
        elif isinstance(event, BoundaryEvent):
            if event.kind == "start":
                self._start_input()
            else:
                self._want_slot = True
                self._ask_slot()
        elif isinstance(event, ReadyEvent) and event.turn_taking is not None:
            self.turn_taking = "agent" if event.turn_taking == "backend" else "server"

    def _on_clear(self) -> None:
        """The backend heard the caller interrupt: stop its audio, tell Webex if we can."""
        self._reply_id += 1
        self.buffer.wake()
        self._flush_marks(self.buffer.clear())
        if self.turn_taking == "agent":
            self._backend_cleared = True
            self._start_input()

    def _start_input(self) -> None:
        if not self._caller_turn and self.call.start_of_input():
            self._caller_turn = True

    def _deliver(self, urgent: bool) -> None:
        """Open a reply slot for backend output when no reply is streaming.

        Audio needs one only when the backend owns turn-taking (its audio means the
        caller's turn is over); events always do, or the call could not end.
        """
        if self._streaming or self._ended or self._opening:
            return
        if urgent or self.turn_taking == "agent":
            self._want_slot = True
            self._ask_slot()

    def _ask_slot(self) -> None:
        """END_OF_INPUT on the open audio RPC makes the engine ask us for a reply."""
        if self._slot_asked or not self._want_slot or self._streaming:
            return
        if not self._caller_turn:
            if not self.call.start_of_input():
                return  # no audio RPC open; on_audio retries when the next one opens
            self._caller_turn = True
        if self.call.end_of_input():
            self._slot_asked = True

    def _on_failed(self, reason: str) -> None:
        if self._opening or self._ended:
            return  # on_start answers with the fallback itself
        if self.metrics is not None:
            self.metrics.fallbacks.labels(virtual_agent=self.settings.virtual_agent_id).inc()
        self.call.log.warning(
            "backend down past %d ms: %s", self.settings.down_limit_ms, self.settings.fallback
        )
        if self.fallback_audio:
            self.buffer.put(self.fallback_audio)
        self.buffer.put(self._fallback_event(reason))
        self._deliver(urgent=True)

    def _on_backend_ended(self) -> None:
        if self._ended:
            return
        self.buffer.put(EndSession(metadata={"reason": "backend_closed"}))
        self._deliver(urgent=True)

    # --- marks ---

    def _schedule_mark(self, name: str, offset_bytes: int) -> None:
        """Echo a mark once the audio before it has played (as Twilio does)."""
        delay_ms = max(0, offset_bytes // 8 - self.call.heard_ms())
        loop = asyncio.get_running_loop()
        old = self._marks.pop(name, None)
        if old is not None:
            old.cancel()
            self._echo_mark(name)
        self._marks[name] = loop.call_later(delay_ms / 1000, self._echo_mark, name)

    def _echo_mark(self, name: str) -> None:
        self._marks.pop(name, None)
        self._send(lambda p: p.mark_played(name))

    def _flush_marks(self, dropped: list[str]) -> None:
        """Cleared audio: echo its marks now, as Twilio does after a ``clear``."""
        for name in [*self._marks, *dropped]:
            handle = self._marks.pop(name, None)
            if handle is not None:
                handle.cancel()
            self._send(partial(_mark_played, name=name))

    # --- helpers ---

    def _send(self, build: Callable[[WireProtocol], list[Message]]) -> None:
        if self.link is not None and not self.link.failed:
            self.link.send(build)

    def _record(self, link: BackendLink) -> None:
        m = self.metrics
        if m is None:
            return
        agent = self.settings.virtual_agent_id
        stats = link.stats
        m.caller_frames_dropped.labels(virtual_agent=agent).inc(stats.caller_frames_dropped)
        m.control_dropped.labels(virtual_agent=agent).inc(stats.control_dropped)
        m.silence_frames.labels(virtual_agent=agent).inc(stats.silence_frames)
        m.reconnects.labels(virtual_agent=agent).inc(stats.reconnects)
        m.protocol_errors.labels(virtual_agent=agent).inc(stats.protocol_errors)
        m.backend_audio_dropped_bytes.labels(virtual_agent=agent).inc(self.buffer.dropped_bytes)


def _mark_played(protocol: WireProtocol, name: str) -> list[Message]:
    return protocol.mark_played(name)
