"""The conversation engine: one Webex step (an RPC, or its equivalent on another transport).

A transport hands :meth:`Engine.run_rpc` the step's request stream and an
:class:`~byova_media.rpc.RpcOutput`; the engine routes the first message to the
conversation, talks to the agent and queues the responses, exactly one FINAL per step.
Every step reads as its recipe: route, then answer. The turn of an audio step is two
named steps: wait for the turn's end, then answer it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Literal

from google.protobuf.message import DecodeError

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.admission import AdmissionError
from byova_media.agent import Reply, SessionStart, Transfer, TurnMetrics, Utterance
from byova_media.app import App
from byova_media.audio.vad import VoiceActivityDetector
from byova_media.audio_turn import AudioTurn
from byova_media.conversation import Conversation, ConversationRegistry, clean_ending
from byova_media.logs import call_context, conversation_id_var
from byova_media.replies import ending_response, send_reply
from byova_media.rpc import RpcAbort, RpcOutput, malformed
from byova_media.tracing import Tracing
from byova_media.turn_signals import TurnEvent
from byova_media.wire import (
    BOUNDARY_TYPES,
    FINAL,
    digits_from_events,
    event_response,
    struct_to_dict,
)

if TYPE_CHECKING:
    from byova_media.cluster.node import ClusterNode
    from byova_media.inspector import CallInspector

__all__ = ["Engine", "RpcKind", "check_conversation_id", "kind_of"]

log = logging.getLogger(__name__)

_EV = pb.EventInput
_OE = pb.OutputEvent
_MAX_ID_CHARS = 256

RpcKind = Literal[
    "empty",
    "session_start",
    "session_end",
    "start_of_dtmf",
    "dtmf",
    "no_input",
    "custom_event",
    "audio",
]


class Engine:
    """Conversations and their turns, shared by every transport."""

    def __init__(
        self,
        app: App,
        registry: ConversationRegistry,
        vad_factory: Callable[[], VoiceActivityDetector],
        cluster: ClusterNode | None = None,
        inspector: CallInspector | None = None,
    ) -> None:
        self.app = app
        self.registry = registry
        self.vad_factory = vad_factory
        #: Cluster mode: restores conversations that move here, releases them at the end.
        self.cluster = cluster
        #: Records every step when the ``inspector`` setting is on; ``None`` costs one check.
        self.inspector = inspector
        self.tracing = Tracing.create()
        self.active_rpcs = 0
        self._boundary_type = BOUNDARY_TYPES[app.config.boundary_response_type]
        self._grace_warned = False
        self._idle = asyncio.Event()
        self._idle.set()

    # --- one step ---

    async def run_rpc(
        self, requests: AsyncIterator[pb.VoiceVARequest], out: RpcOutput, tracking_id: str
    ) -> RpcKind:
        """Run one step to its FINAL, then let the client half-close; return its kind.

        Raises :class:`RpcAbort` for client errors. The caller completes the step when
        ``out.queue`` yields ``None``.
        """
        recording = None
        if self.inspector is not None:
            requests, recording = self.inspector.open_rpc(requests, out)
        self.active_rpcs += 1
        self._idle.clear()
        self.app.metrics.active_rpcs.inc()
        try:
            with self.tracing.rpc() as span:
                span.kind = kind = await self._route(requests, out, tracking_id)
            if kind != "audio":  # an audio step waits for its own reader
                await self._until_half_close(_drain(requests), out)
            return kind
        except RpcAbort:
            # Refuse only once the client stopped writing (or the grace passed): a status
            # sent while its writes are in flight reaches some clients as INTERNAL.
            await self._until_half_close(_drain(requests), out)
            raise
        finally:
            self.active_rpcs -= 1
            self.app.metrics.active_rpcs.dec()
            if self.active_rpcs == 0:
                self._idle.set()
            if recording is not None:
                recording.complete(sys.exc_info()[1])

    async def wait_idle(self) -> None:
        """Return when no step is running (used by the drain)."""
        await self._idle.wait()

    async def _until_half_close(self, waiting: Awaitable[None], out: RpcOutput) -> None:
        """Wait briefly for the client's half-close after our FINAL; record which came first.

        Webex half-closes once it has sent everything for a step; completing the RPC
        while a client write is still in flight makes some gRPC clients report an
        error for a step that succeeded. A client that never half-closes only costs
        ``half_close_grace_ms``, but if Webex half-closes only after the server
        completes, every step ends that much late: the metric and the first warning
        say so (docs/webex-compatibility.md).
        """
        grace_s = self.app.config.half_close_grace_ms / 1000
        try:
            await asyncio.wait_for(waiting, grace_s)
        except TimeoutError:
            out.completed_after = "grace"
            if not self._grace_warned:
                self._grace_warned = True
                log.warning(
                    "an RPC completed after half_close_grace_ms=%d without the client's "
                    "half-close; if every RPC does, see docs/webex-compatibility.md",
                    self.app.config.half_close_grace_ms,
                )
        else:
            out.completed_after = "half-close"
        self.app.metrics.rpc_completions.labels(after=out.completed_after).inc()

    async def _route(
        self, requests: AsyncIterator[pb.VoiceVARequest], out: RpcOutput, tracking_id: str
    ) -> RpcKind:
        """Read and check the first message, then hand the step to the handler of its kind.

        Everything is validated before a conversation is created or touched, so a
        refused step leaves no state behind.
        """
        first = await self.first_message(requests)
        if first is None:
            return "empty"  # the client half-closed without a message; complete quietly
        check_conversation_id(first.conversation_id)
        conversation_id_var.set(first.conversation_id)
        kind = kind_of(first)
        if kind == "session_end":
            await self._hang_up(first.conversation_id, out)
            return kind
        try:
            conv = self._conversation(first, tracking_id, adopt=kind != "session_start")
        except _AgentUnavailable:
            out.send(ending_response(clean_ending(self.app.config, "agent_error")))
            return kind
        match kind:
            case "audio":
                await self._audio(conv, first, requests, out)
            case "dtmf":
                await self._dtmf(conv, first.dtmf_input, out)
            case _:
                await self._event(conv, kind, first.event_input, out)
        return kind

    async def first_message(
        self, requests: AsyncIterator[pb.VoiceVARequest]
    ) -> pb.VoiceVARequest | None:
        """The step's first message, ``None`` if the client half-closed without one."""
        timeout_s = self.app.config.first_message_timeout_ms / 1000
        try:
            async with asyncio.timeout(timeout_s):
                return await anext(requests)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise RpcAbort(
                "DEADLINE_EXCEEDED", f"no request message within {timeout_s:g} s"
            ) from None
        except DecodeError as exc:
            raise malformed(exc) from None

    def _conversation(
        self, first: pb.VoiceVARequest, tracking_id: str, adopt: bool
    ) -> Conversation:
        """The step's conversation: the known one, or a new one (adopted unless it starts)."""
        requested = first.virtual_agent_id
        conv = self.registry.get(first.conversation_id)
        if conv is not None:
            if requested and requested != conv.spec.virtual_agent_id:
                raise RpcAbort(
                    "INVALID_ARGUMENT",
                    f"conversation started with virtual agent {conv.spec.virtual_agent_id!r}, "
                    f"not {_quote(requested)}",
                )
            return conv
        if self.registry.has_ended(first.conversation_id):
            raise RpcAbort("FAILED_PRECONDITION", "this conversation has ended")
        spec = self.registry.resolve_agent(requested)
        if spec is None:
            known = ", ".join(sorted(self.registry.agents)) or "none"
            raise RpcAbort(
                "NOT_FOUND",
                f"no virtual agent {_quote(requested)} on this server (known: {known})"
                if requested
                else f"virtual_agent_id is empty and no default agent is set (known: {known})",
            )
        carried_on = self.cluster is not None and self.cluster.carries_on(first.conversation_id)
        try:
            conv = self.registry.create(
                first.conversation_id, spec, first.customer_org_id, tracking_id, carried_on
            )
        except AdmissionError as exc:
            raise RpcAbort(exc.code, str(exc)) from None
        except Exception as exc:
            self.app.metrics.plugin_errors.labels(plugin=spec.virtual_agent_id).inc()
            log.exception("agent %r: its factory failed", spec.virtual_agent_id)
            raise _AgentUnavailable from exc
        self.tracing.call_started(conv.id, spec.virtual_agent_id, first.customer_org_id)
        if adopt:
            conv.adopt()
        if self.cluster is not None:
            self.cluster.adopted(conv)
        return conv

    # --- event and DTMF steps ---

    async def _event(
        self, conv: Conversation, kind: RpcKind, event: pb.EventInput, out: RpcOutput
    ) -> None:
        call, agent = conv.call, conv.agent
        match kind:
            case "session_start":
                if not conv.begin():
                    log.info("duplicate SESSION_START ignored")
                    await self._reply(conv, out, Reply())
                    return
                call.parameters = struct_to_dict(event.parameters)
                start = SessionStart(name=event.name, parameters=call.parameters)
                reply = await conv.ask(agent.on_start(call, start), "on_start")
                await self._reply(conv, out, reply)
            case "start_of_dtmf":
                # The first key press cuts a bargeable prompt; the digits come on the next RPC.
                await self._barge(conv)
                out.send(pb.VoiceVAResponse(response_type=FINAL))
            case "no_input":
                await self._reply(conv, out, await conv.ask(agent.on_no_input(call), "on_no_input"))
            case "custom_event":
                params = struct_to_dict(event.parameters)
                work = agent.on_custom_event(call, event.name, params)
                await self._reply(conv, out, await conv.ask(work, "on_custom_event"))

    async def _dtmf(self, conv: Conversation, dtmf: pb.DTMFInputs, out: RpcOutput) -> None:
        digits, unknown = digits_from_events(dtmf.dtmf_events)
        if unknown:
            log.warning("ignoring %d DTMF values that are not keys", unknown)
        call, agent = conv.call, conv.agent
        if digits:
            reply = await conv.ask(agent.on_dtmf(call, digits), "on_dtmf")
        else:
            reply = await conv.ask(agent.on_no_input(call), "on_no_input")
        await self._reply(conv, out, reply)

    # --- the audio step: a caller turn ---

    async def _audio(
        self,
        conv: Conversation,
        first: pb.VoiceVARequest,
        requests: AsyncIterator[pb.VoiceVARequest],
        out: RpcOutput,
    ) -> None:
        """Read the caller's audio until the turn ends, then answer it on the same step."""
        turn = AudioTurn(conv, self.vad_factory)
        number = conv.begin_turn()
        reader = asyncio.create_task(turn.read(first, requests))
        turn.watch_idle(self.app.config.stream_idle_timeout_ms / 1000)
        try:
            with conv.listening(turn):
                speech_end_at = await self._wait_for_turn_end(conv, turn, out)
            turn.finish()
            if speech_end_at is None:
                # The caller never spoke on this RPC (Webex half-closed on silence).
                await self._reply(conv, out, Reply())
                return
            await self._answer_turn(conv, turn, out, number, speech_end_at)
            await self._until_half_close(asyncio.shield(reader), out)
        finally:
            turn.finish()
            turn.record_stats()
            if not reader.done():
                # Audio after END_OF_INPUT belongs to no turn and is discarded; a client
                # still sending past the grace (or gone) does not hold the RPC open.
                reader.cancel()

    async def _wait_for_turn_end(
        self, conv: Conversation, turn: AudioTurn, out: RpcOutput
    ) -> float | None:
        """Follow the turn's signals; return when the caller stopped, ``None`` if never spoke.

        START_OF_INPUT goes out once, on the first sign of speech (also when the end of
        speech comes first, as an agent doing its own turn-taking may signal).
        """
        spoke = False
        while True:
            signal = await turn.signals.get()
            if not spoke and signal.event is not TurnEvent.STREAM_END:
                spoke = True
                out.send_boundary(event_response(_OE.START_OF_INPUT, self._boundary_type))
                await self._barge(conv)
            match signal.event:
                case TurnEvent.SPEECH_START:
                    continue
                case TurnEvent.SPEECH_END:
                    return signal.speech_end_at or signal.at
                case TurnEvent.STREAM_END:
                    if signal.error is not None:
                        raise signal.error
                    return signal.at if spoke else None

    async def _answer_turn(
        self,
        conv: Conversation,
        turn: AudioTurn,
        out: RpcOutput,
        number: int,
        speech_end_at: float,
    ) -> None:
        """END_OF_INPUT, the agent's answer to the utterance, and the turn's latency figures."""
        call = conv.call
        eoi_at = time.monotonic()
        out.send_boundary(event_response(_OE.END_OF_INPUT, self._boundary_type))
        utterance = Utterance(
            pcm=turn.utterance(), sample_rate=8000, language_code=call.language_code
        )
        reply = await conv.ask(conv.agent.on_utterance(call, utterance), "on_utterance")
        ready_at = time.monotonic()
        await self._reply(conv, out, reply)
        if out.first_audio_at is not None:
            self.app.metrics.turn_latency.observe(out.first_audio_at - eoi_at)
        metrics = TurnMetrics(
            conversation_id=conv.id,
            turn=number,
            speech_end_s=speech_end_at,
            end_of_input_s=eoi_at,
            reply_ready_s=ready_at,
            first_audio_sent_s=out.first_audio_at,
            final_sent_s=time.monotonic(),
            marks=dict(call.marks),
        )
        self.app.plugins.turn_metrics(self.app, metrics)
        if self.inspector is not None:
            self.inspector.turn(metrics, call.transcript)

    # --- shared steps ---

    async def _barge(self, conv: Conversation) -> None:
        """Stop a playing bargeable reply and tell the agent what the caller heard."""
        barge = conv.barge_in()
        if barge is None:
            return
        log.info("barge-in after %d of %d ms of the reply", barge.heard_ms, barge.sent_ms)
        if self.inspector is not None:
            self.inspector.barge_in(conv.id, barge)
        await conv.notify(conv.agent.on_barge_in(conv.call, barge), "on_barge_in")

    async def _reply(self, conv: Conversation, out: RpcOutput, reply: Reply) -> None:
        """Send the reply; a transfer or an end releases the conversation after its FINAL."""
        await send_reply(conv, out, reply)
        if reply.is_terminal:
            await self.end(conv, "transfer" if isinstance(reply.event, Transfer) else "agent_end")

    async def _hang_up(self, conversation_id: str, out: RpcOutput) -> None:
        """Webex SESSION_END: the last response (with the transcript), then release everything."""
        conv = self.registry.get(conversation_id)
        response = pb.VoiceVAResponse(response_type=FINAL)
        if conv is None or not conv.close():
            out.send(response)  # unknown or already ending: nothing to release here
            return
        if conv.call.transcript:
            response.session_transcript.text = conv.call.transcript
        if conv.call.summary:
            response.session_summary.text = conv.call.summary
        out.send(response)
        await self._release(conv, "caller_hangup")

    async def end(self, conv: Conversation, reason: str) -> None:
        """End a conversation once: stop its audio, drop it, tell its agent why."""
        if conv.close():
            await self._release(conv, reason)

    async def _release(self, conv: Conversation, reason: str) -> None:
        with call_context(conv.id, conv.call.tracking_id):
            self.registry.remove(conv.id)
            self.registry.mark_ended(conv.id)
            if self.cluster is not None:
                self.cluster.ended(conv, reason)
            self.tracing.call_ended(conv.id, reason, conv.turns)
            if self.inspector is not None:
                self.inspector.ended(conv.id, reason, conv.call.transcript)
            await conv.notify(conv.agent.on_end(conv.call, reason), "on_end")


class _AgentUnavailable(Exception):
    """The agent factory failed: the caller gets the clean ending without a conversation."""


_EVENT_KINDS: dict[int, RpcKind] = {
    _EV.SESSION_START: "session_start",
    _EV.SESSION_END: "session_end",
    _EV.START_OF_DTMF: "start_of_dtmf",
    _EV.NO_INPUT: "no_input",
    _EV.CUSTOM_EVENT: "custom_event",
}


def kind_of(first: pb.VoiceVARequest) -> RpcKind:
    """What the step is, from its first message; INVALID_ARGUMENT for what no step is."""
    which = first.WhichOneof("voice_va_input_type")
    if which == "audio_input":
        return "audio"
    if which == "dtmf_input":
        return "dtmf"
    if which == "event_input":
        kind = _EVENT_KINDS.get(first.event_input.event_type)
        if kind is None:
            raise RpcAbort(
                "INVALID_ARGUMENT", f"unsupported event_input type {first.event_input.event_type}"
            )
        return kind
    raise RpcAbort("INVALID_ARGUMENT", "request carries no audio_input, dtmf_input or event_input")


def check_conversation_id(conversation_id: str) -> None:
    if not conversation_id:
        raise RpcAbort("INVALID_ARGUMENT", "conversation_id is required on every request")
    if len(conversation_id) > _MAX_ID_CHARS:
        raise RpcAbort(
            "INVALID_ARGUMENT", f"conversation_id is longer than {_MAX_ID_CHARS} characters"
        )


def _quote(value: str, limit: int = 64) -> str:
    """An untrusted value for an error message: repr'd and cut to ``limit`` characters."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value)} chars)"


async def _drain(requests: AsyncIterator[pb.VoiceVARequest]) -> None:
    """Read to the half-close: nothing after the first message of a non-audio step counts."""
    # Not even a malformed straggler after our answer counts; a stream whose reader was
    # cancelled mid-read ends here too.
    with contextlib.suppress(DecodeError, StopAsyncIteration, asyncio.InvalidStateError):
        async for _ in requests:
            pass
