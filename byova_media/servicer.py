"""The ``VoiceVirtualAgent`` servicer: routes each RPC of a call to its conversation.

Every ``ProcessCallerInput`` RPC is handled by a task that reads the requests and
queues responses on an :class:`RpcOutput`; the servicer's generator writes them and
completes the RPC. Exactly one FINAL goes out per RPC, and every RPC is completed by
the server, also when the agent fails (the caller then gets the configured clean ending).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media._proto import voicevirtualagent_pb2_grpc as pb_grpc
from byova_media.agent import BargeIn, Reply, SessionStart, TurnMetrics, Utterance
from byova_media.app import App
from byova_media.audio.vad import VoiceActivityDetector
from byova_media.audio_turn import AudioTurn
from byova_media.conversation import AdmissionError, Conversation, ConversationRegistry
from byova_media.logs import conversation_id_var, tracking_id_var
from byova_media.replies import error_reply, send_reply
from byova_media.rpc import RpcAbort, RpcOutput
from byova_media.tracing import Tracing
from byova_media.wire import FINAL, digits_from_events, event_response, struct_to_dict

__all__ = ["VoiceVirtualAgentServicer"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_EV = pb.EventInput
_OE = pb.OutputEvent


class VoiceVirtualAgentServicer(pb_grpc.VoiceVirtualAgentServicer):
    """The protocol engine behind both RPCs."""

    def __init__(
        self,
        app: App,
        registry: ConversationRegistry,
        vad_factory: Callable[[], VoiceActivityDetector],
    ) -> None:
        self.app = app
        self.registry = registry
        self.vad_factory = vad_factory
        self.active_rpcs = 0
        self.tracing = Tracing.create()
        self._idle = asyncio.Event()
        self._idle.set()

    # --- ListVirtualAgents ---

    async def ListVirtualAgents(
        self, request: pb.ListVARequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListVAResponse:
        default = self.registry.default_agent
        return pb.ListVAResponse(
            virtual_agents=[
                pb.VirtualAgentInfo(
                    virtual_agent_id=spec.virtual_agent_id,
                    virtual_agent_name=spec.name or spec.virtual_agent_id,
                    is_default=spec.virtual_agent_id == default,
                    attributes=dict(spec.attributes),
                )
                for spec in self.registry.agents.values()
            ]
        )

    # --- ProcessCallerInput ---

    async def ProcessCallerInput(
        self,
        request_iterator: AsyncIterator[pb.VoiceVARequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[pb.VoiceVAResponse]:
        out = RpcOutput(self.app.metrics)
        metadata = dict(context.invocation_metadata() or ())
        tracking = str(metadata.get("trackingid", ""))[:128]
        tracking_id_var.set(tracking or "-")
        self.active_rpcs += 1
        self._idle.clear()
        self.app.metrics.active_rpcs.inc()
        kind = "unknown"
        task = asyncio.create_task(self._traced(request_iterator, out, tracking))
        task.add_done_callback(lambda _t: out.close())
        status = "OK"
        try:
            while (response := await out.queue.get()) is not None:
                yield response
            if not task.cancelled() and (exc := task.exception()) is not None:
                if isinstance(exc, RpcAbort):
                    status = exc.code
                    await context.abort(getattr(grpc.StatusCode, exc.code), exc.message)
                status = "INTERNAL"
                log.error("RPC failed", exc_info=exc)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error; see server logs")
            kind = task.result()
        except asyncio.CancelledError:
            status = "CANCELLED"
            raise
        finally:
            if not task.done():
                task.cancel()  # client went away: release the RPC's resources
            self.active_rpcs -= 1
            self.app.metrics.active_rpcs.dec()
            self.app.metrics.rpcs.labels(kind=kind, status=status).inc()
            if self.active_rpcs == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        """Return when no ``ProcessCallerInput`` RPC is open (used by the drain)."""
        await self._idle.wait()

    async def _traced(
        self, requests: AsyncIterator[pb.VoiceVARequest], out: RpcOutput, tracking: str
    ) -> str:
        """:meth:`_handle` inside an RPC span (OpenTelemetry, when installed)."""
        with self.tracing.rpc() as span:
            span.kind = await self._handle(requests, out, tracking)
            return span.kind

    async def _handle(
        self, requests: AsyncIterator[pb.VoiceVARequest], out: RpcOutput, tracking: str
    ) -> str:
        """Route the RPC, then let the client half-close before the RPC completes."""
        kind = await self._route(requests, out, tracking)
        if kind not in ("audio", "empty"):  # the audio path owns its own reader
            await self._until_half_close(self._drain(requests))
        return kind

    async def _until_half_close(self, waiting: Awaitable[None]) -> None:
        """Wait briefly for the client's half-close after our FINAL.

        Webex half-closes once it has sent everything for a step; completing the RPC
        while a client write is still in flight makes some gRPC clients report an
        error for a step that succeeded. A client that never half-closes only costs
        ``half_close_grace_ms``.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiting, self.app.config.half_close_grace_ms / 1000)

    @staticmethod
    async def _drain(requests: AsyncIterator[pb.VoiceVARequest]) -> None:
        async for _ in requests:
            pass  # nothing after the first message of a non-audio RPC means anything

    async def _route(
        self, requests: AsyncIterator[pb.VoiceVARequest], out: RpcOutput, tracking: str
    ) -> str:
        """Read the first message, route the RPC, and send its one FINAL; return its kind."""
        try:
            first = await anext(requests)
        except StopAsyncIteration:
            return "empty"  # the client half-closed without a message; complete quietly
        conv_id = first.conversation_id
        if not conv_id:
            raise RpcAbort("INVALID_ARGUMENT", "conversation_id is required on every request")
        if len(conv_id) > 256:
            raise RpcAbort("INVALID_ARGUMENT", "conversation_id is longer than 256 characters")
        conversation_id_var.set(conv_id)
        which = first.WhichOneof("voice_va_input_type")
        event = first.event_input.event_type if which == "event_input" else None
        if event == _EV.SESSION_END:
            await self._hang_up(conv_id, out)
            return "session_end"
        conv = self._conversation(first, tracking, adopt=event != _EV.SESSION_START)
        if which == "event_input":
            return await self._event(conv, first.event_input, out)
        if which == "dtmf_input":
            digits, unknown = digits_from_events(first.dtmf_input.dtmf_events)
            if unknown:
                log.warning("ignoring %d DTMF values that are not keys", unknown)
            if not digits:
                reply = await self._agent(conv, conv.agent.on_no_input(conv.call))
            else:
                reply = await self._agent(conv, conv.agent.on_dtmf(conv.call, digits))
            await self._reply(conv, out, reply)
            return "dtmf"
        if which == "audio_input":
            await self._audio(conv, first, requests, out)
            return "audio"
        raise RpcAbort(
            "INVALID_ARGUMENT", "request carries no audio_input, dtmf_input or event_input"
        )

    def _conversation(self, first: pb.VoiceVARequest, tracking: str, adopt: bool) -> Conversation:
        conv = self.registry.get(first.conversation_id)
        requested = first.virtual_agent_id
        if conv is not None:
            if requested and requested != conv.spec.virtual_agent_id:
                raise RpcAbort(
                    "INVALID_ARGUMENT",
                    f"conversation started with virtual agent {conv.spec.virtual_agent_id!r}, "
                    f"not {requested!r}",
                )
            return conv
        spec = self.registry.resolve_agent(requested)
        if spec is None:
            known = ", ".join(sorted(self.registry.agents)) or "none"
            raise RpcAbort(
                "NOT_FOUND",
                f"no virtual agent {requested!r} on this server (known: {known})"
                if requested
                else f"virtual_agent_id is empty and no default agent is set (known: {known})",
            )
        try:
            conv = self.registry.create(
                first.conversation_id, spec, first.customer_org_id, tracking
            )
        except AdmissionError as exc:
            raise RpcAbort(exc.code, str(exc)) from None
        except Exception as exc:
            self.app.metrics.plugin_errors.labels(plugin=spec.virtual_agent_id).inc()
            log.exception("agent factory of %r failed", spec.virtual_agent_id)
            raise RpcAbort("INTERNAL", "the virtual agent could not be created") from exc
        self.tracing.call_started(
            conv.call.conversation_id, spec.virtual_agent_id, first.customer_org_id
        )
        if adopt:
            # A restart or another instance started this call: carry on without a welcome.
            log.info("adopting conversation that started elsewhere")
            conv.started = True
        return conv

    async def _event(self, conv: Conversation, event: pb.EventInput, out: RpcOutput) -> str:
        call = conv.call
        if event.event_type == _EV.SESSION_START:
            if conv.started:
                log.info("duplicate SESSION_START ignored")
                await self._reply(conv, out, Reply())
                return "session_start"
            conv.started = True
            params = struct_to_dict(event.parameters)
            call.parameters = params
            start = SessionStart(name=event.name, parameters=params)
            await self._reply(conv, out, await self._agent(conv, conv.agent.on_start(call, start)))
            return "session_start"
        if event.event_type == _EV.START_OF_DTMF:
            # The first key press cuts a bargeable prompt; the digits come on the next RPC.
            await self._barge(conv)
            out.send(pb.VoiceVAResponse(response_type=FINAL))
            return "start_of_dtmf"
        if event.event_type == _EV.NO_INPUT:
            await self._reply(conv, out, await self._agent(conv, conv.agent.on_no_input(call)))
            return "no_input"
        if event.event_type == _EV.CUSTOM_EVENT:
            params = struct_to_dict(event.parameters)
            reply = await self._agent(conv, conv.agent.on_custom_event(call, event.name, params))
            await self._reply(conv, out, reply)
            return "custom_event"
        raise RpcAbort("INVALID_ARGUMENT", f"unsupported event_input type {event.event_type}")

    async def _audio(
        self,
        conv: Conversation,
        first: pb.VoiceVARequest,
        requests: AsyncIterator[pb.VoiceVARequest],
        out: RpcOutput,
    ) -> None:
        turn = AudioTurn(conv, self.vad_factory)
        conv.audio_signal = turn.signal
        reader = asyncio.create_task(turn.read(first, requests))
        metrics = TurnMetrics(conversation_id=conv.call.conversation_id, turn=conv.turns)
        conv.turns += 1
        conv.call.marks = {}
        speech_end_at: float | None = None
        try:
            started = False
            while True:
                signal = await turn.signals.get()
                if signal.kind == "start" or (signal.kind == "end" and not started):
                    if not started:
                        started = True
                        out.send(event_response(_OE.START_OF_INPUT))
                        await self._barge(conv)
                    if signal.kind == "start":
                        continue
                if signal.kind == "end" or (signal.kind == "eos" and started):
                    speech_end_at = signal.speech_end_at or signal.at
                    break
                if signal.kind == "eos":
                    break
            turn.finish()
            if not started:
                # The caller never spoke on this RPC (Webex half-closed on silence).
                await self._reply(conv, out, Reply())
                return
            eoi_at = time.monotonic()
            out.send(event_response(_OE.END_OF_INPUT))
            utterance = Utterance(
                pcm=turn.utterance(), sample_rate=8000, language_code=conv.call.language_code
            )
            reply = await self._agent(conv, conv.agent.on_utterance(conv.call, utterance))
            ready_at = time.monotonic()
            await self._reply(conv, out, reply)
            metrics = TurnMetrics(
                conversation_id=metrics.conversation_id,
                turn=metrics.turn,
                speech_end_s=speech_end_at,
                end_of_input_s=eoi_at,
                reply_ready_s=ready_at,
                first_audio_sent_s=out.first_audio_at,
                final_sent_s=time.monotonic(),
                marks=dict(conv.call.marks),
            )
            if out.first_audio_at is not None:
                self.app.metrics.turn_latency.observe(out.first_audio_at - eoi_at)
            self.app.plugins.turn_metrics(self.app, metrics)
            await self._until_half_close(asyncio.shield(reader))
        finally:
            if conv.audio_signal == turn.signal:
                conv.audio_signal = None
            turn.record_stats()
            if not reader.done():
                # Audio after END_OF_INPUT belongs to no turn and is discarded; a client
                # still sending past the grace (or gone) does not hold the RPC open.
                reader.cancel()

    async def _barge(self, conv: Conversation) -> None:
        barge: BargeIn | None = conv.barge_in()
        if barge is None:
            return
        log.info("barge-in after %d of %d ms of the reply", barge.heard_ms, barge.sent_ms)
        await self._agent(conv, conv.agent.on_barge_in(conv.call, barge))

    async def _agent(self, conv: Conversation, work: Awaitable[T]) -> T | Reply:
        """Run one agent method with the configured timeout; a failure becomes a clean ending."""
        try:
            return await asyncio.wait_for(work, self.app.config.agent_timeout_s)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            reason = "agent_timeout"
            log.error(
                "agent %r did not answer within %.1f s",
                conv.spec.virtual_agent_id,
                self.app.config.agent_timeout_s,
            )
        except Exception:
            reason = "agent_error"
            log.exception("agent %r failed", conv.spec.virtual_agent_id)
        self.app.metrics.plugin_errors.labels(plugin=conv.spec.virtual_agent_id).inc()
        return error_reply(self.app.config, reason)

    async def _reply(self, conv: Conversation, out: RpcOutput, reply: object) -> None:
        await send_reply(conv, out, reply if isinstance(reply, Reply) else None)
        if isinstance(reply, Reply) and reply.is_terminal:
            await self.end(
                conv, "transfer" if reply.event.__class__.__name__ == "Transfer" else "agent_end"
            )

    async def _hang_up(self, conv_id: str, out: RpcOutput) -> None:
        """Webex SESSION_END: the last response (with the transcript), then release everything."""
        conv = self.registry.get(conv_id)
        response = pb.VoiceVAResponse(response_type=FINAL)
        if conv is not None:
            if conv.playback and conv.playback.task and not conv.playback.task.done():
                conv.playback.task.cancel()
            if conv.call.transcript:
                response.session_transcript.text = conv.call.transcript
            if conv.call.summary:
                response.session_summary.text = conv.call.summary
        out.send(response)
        if conv is not None:
            await self.end(conv, "caller_hangup")

    async def end(self, conv: Conversation, reason: str) -> None:
        """Release a conversation once: tell its agent, drop it from the registry."""
        if conv.ended:
            return
        conv.ended = True
        self.registry.remove(conv.call.conversation_id)
        self.tracing.call_ended(conv.call.conversation_id, reason, conv.turns)
        try:
            await asyncio.wait_for(
                conv.agent.on_end(conv.call, reason), self.app.config.agent_timeout_s
            )
        except Exception:
            self.app.metrics.plugin_errors.labels(plugin=conv.spec.virtual_agent_id).inc()
            log.exception("agent.on_end failed [conversation=%s]", conv.call.conversation_id)
