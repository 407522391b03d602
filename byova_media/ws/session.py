"""One ``/v1/va`` socket: envelopes in, virtual RPCs on the shared engine, envelopes out.

Each Webex step becomes a *virtual RPC* run by the engine exactly as a gRPC
``ProcessCallerInput`` would be: an event or DTMF request is a one-message stream; caller
audio feeds the current audio stream, which is half-closed as soon as the engine sends
END_OF_INPUT on it (later audio opens the next stream, as Webex's overlapping barge-in
RPCs do on gRPC); SESSION_END is its own stream. Every response the engine queues is
written as a ``VOICE_VA_RESPONSE`` envelope; an RPC's completion is not sent.

Protocol violations are fatal (reference §9, our choice): one ERROR envelope, logged once
with the conversation id, then the close code of the error. A dropped socket ends the
conversation (no resumption).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
from aiohttp import web

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.logs import conversation_id_var, tracking_id_var
from byova_media.rpc import RpcAbort, RpcOutput
from byova_media.ws.envelope import (
    envelope_json,
    error_json,
    parse_envelope,
    pong_json,
    request_from_payload,
    response_payload,
)
from byova_media.ws.errors import ErrorCode, WsProtocolError, bad_request
from byova_media.ws.framing import ReplyFramer
from byova_media.ws.outbox import Outbox

if TYPE_CHECKING:
    from byova_media.ws.server import WsTransport

__all__ = ["VaSocket"]

log = logging.getLogger(__name__)

_EV = pb.EventInput
_TERMINAL_EVENTS = frozenset({pb.OutputEvent.TRANSFER_TO_AGENT, pb.OutputEvent.SESSION_END})
_END_OF_INPUT = pb.OutputEvent.END_OF_INPUT
_START_OF_INPUT = pb.OutputEvent.START_OF_INPUT
#: RpcAbort status → the ERROR it becomes on the socket (code, HTTP-style status).
_ABORTS: dict[str, tuple[ErrorCode, int]] = {
    "INVALID_ARGUMENT": (ErrorCode.BAD_REQUEST, 400),
    "NOT_FOUND": (ErrorCode.BAD_REQUEST, 404),
    "RESOURCE_EXHAUSTED": (ErrorCode.RATE_LIMIT, 429),
    "UNAVAILABLE": (ErrorCode.RATE_LIMIT, 503),
    "FAILED_PRECONDITION": (ErrorCode.BAD_REQUEST, 409),
    "DEADLINE_EXCEEDED": (ErrorCode.TIMEOUT, 408),
}
#: Caller audio frames queued for the engine before the socket stops reading (160 ms).
_AUDIO_QUEUE_FRAMES = 8


class _AudioStream:
    """The requests of one audio virtual RPC; :meth:`close` is the client's half-close."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[pb.VoiceVARequest | None] = asyncio.Queue(_AUDIO_QUEUE_FRAMES)
        self.closed = False

    async def put(self, request: pb.VoiceVARequest) -> None:
        if not self.closed:
            await self._queue.put(request)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)  # a full queue is drained and then ends

    async def requests(self) -> AsyncIterator[pb.VoiceVARequest]:
        while not (self.closed and self._queue.empty()):
            request = await self._queue.get()
            if request is None:
                return
            yield request


class _VirtualOutput(RpcOutput):
    """An RpcOutput whose responses go straight to the socket, in the order sent."""

    def __init__(self, rpc: _VirtualRpc, deliver: Callable[[_VirtualRpc, Any], None]) -> None:
        super().__init__(rpc.metrics)
        self.queue = _Forward(lambda item: deliver(rpc, item))


class _Forward(asyncio.Queue[pb.VoiceVAResponse | None]):
    """A queue that hands each item on at once (the engine's sends stay synchronous)."""

    def __init__(self, deliver: Callable[[pb.VoiceVAResponse | None], None]) -> None:
        super().__init__()
        self._deliver = deliver

    def put_nowait(self, item: pb.VoiceVAResponse | None) -> None:
        self._deliver(item)


@dataclass(eq=False)
class _VirtualRpc:
    """One virtual RPC: its framer, its audio stream (audio RPCs) and its task."""

    metrics: Any
    audio: _AudioStream | None
    framer: ReplyFramer
    task: asyncio.Task[None] | None = None


class VaSocket:
    """Serves one accepted ``/v1/va`` WebSocket until it closes."""

    def __init__(self, ws: web.WebSocketResponse, transport: WsTransport, tracking_id: str) -> None:
        self.ws = ws
        self.transport = transport
        self.config = transport.app.config
        self.metrics = transport.app.metrics
        self.tracking_id = tracking_id
        self.outbox = Outbox(ws, self.config.ws_send_queue_bytes)
        self.conversation_id: str | None = None
        self._owner = False
        self._seq = 0
        self._last_seq = 0
        self._started = False
        self._terminal: Literal["agent", "caller"] | None = None
        self._audio: _VirtualRpc | None = None
        self._rpcs: set[_VirtualRpc] = set()
        self._closer: asyncio.Task[None] | None = None
        self.ignored_after_end = 0

    # --- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Read until the peer closes or the protocol breaks; then release everything."""
        tracking_id_var.set(self.tracking_id or "-")
        writer = asyncio.create_task(self.outbox.run())
        try:
            await self._read()
        except WsProtocolError as exc:
            self._fail(exc)
        finally:
            await self._release()
            self.outbox.close(1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(writer, self.config.ws_close_timeout_s)
            if not writer.done():
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)

    async def _release(self) -> None:
        if self._closer is not None:
            self._closer.cancel()
        tasks = [rpc.task for rpc in self._rpcs if rpc.task is not None and not rpc.task.done()]
        for task in tasks:
            task.cancel()  # the peer is gone: as when a gRPC client goes away
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owner and self.conversation_id is not None:
            conv = self.transport.engine.registry.get(self.conversation_id)
            if conv is not None and not conv.ended:
                # No resumption on WebSocket: the call is over with its socket.
                await self.transport.engine.end(conv, "socket_closed")
            self.transport.release(self.conversation_id)
        if self.ignored_after_end:
            log.info("ignored %d requests after the session ended", self.ignored_after_end)

    def _fail(self, error: WsProtocolError) -> None:
        """Answer ERROR and close with its code (once; later failures are only logged)."""
        if self.outbox.closing:
            log.debug("after close: %s", error.detail)
            return
        self.transport.refusals.warning(
            str(error.code),
            "closing /v1/va socket: %s/%d %s [conversation=%s]",
            error.code,
            error.status,
            error.detail,
            self.conversation_id or "-",
        )
        self.metrics.ws_errors.labels(code=str(error.code)).inc()
        self._seq += 1
        self.outbox.put(error_json(self._seq, self.conversation_id or "-", error))
        self.outbox.close(error.close_code)

    # --- reading -----------------------------------------------------------------------

    async def _read(self) -> None:
        config = self.config
        while not self.outbox.closing:
            if self._started:
                timeout, what = config.ws_idle_timeout_s, "no frame"
            else:
                timeout, what = config.ws_first_message_timeout_s, "no SESSION_START"
            try:
                msg = await self.ws.receive(timeout=timeout)
            except TimeoutError:
                raise WsProtocolError(ErrorCode.TIMEOUT, f"{what} within {timeout:g} s") from None
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self._frame(msg.data)
                # receive() returns buffered frames without yielding: a burst from one
                # socket would hold the loop (and every other call's reply) for its length.
                await asyncio.sleep(0)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                raise bad_request("binary frames are not used on /v1/va; send JSON text frames")
            else:
                if msg.type == aiohttp.WSMsgType.ERROR:
                    log.info("socket error: %s [conversation=%s]", msg.data, self.conversation_id)
                return

    async def _frame(self, text: str) -> None:
        env = parse_envelope(text)
        if env.seq <= self._last_seq:
            raise bad_request(f"seq {env.seq} does not increase (last was {self._last_seq})")
        self._last_seq = env.seq
        if self.conversation_id is None:
            self._claim(env.conversation_id)
        elif env.conversation_id != self.conversation_id:
            raise bad_request("conversation_id differs from the one this socket started with")
        if env.type == "PING":
            self.outbox.put(pong_json(env.seq, env.conversation_id))
        elif env.type == "ERROR":
            log.warning(
                "peer sent ERROR %s/%s: %s",
                (env.code or "-")[:40],
                env.status,
                (env.detail or "")[:200],
            )
        elif env.type == "VOICE_VA_REQUEST":
            request = request_from_payload(env.payload)
            if request.conversation_id != env.conversation_id:
                raise bad_request("payload.conversation_id differs from the envelope's")
            await self.outbox.writable()
            if self.outbox.overflowed:
                raise WsProtocolError(ErrorCode.RATE_LIMIT, "send queue full: peer is not reading")
            await self._request(request)
        else:
            raise bad_request(f"{env.type} is sent by the server, never to it")

    def _claim(self, conversation_id: str) -> None:
        if not self.transport.claim(conversation_id):
            raise bad_request("this conversation already has a live socket", status=409)
        self.conversation_id = conversation_id
        self._owner = True
        conversation_id_var.set(conversation_id)

    async def _request(self, request: pb.VoiceVARequest) -> None:
        if self._terminal is not None:
            self.ignored_after_end += 1  # audio still arrives after a terminal event
            return
        which = request.WhichOneof("voice_va_input_type")
        event = request.event_input.event_type if which == "event_input" else None
        if not self._started:
            if event != _EV.SESSION_START:
                raise bad_request("the first request on a socket must be event SESSION_START")
            self._started = True
        elif event == _EV.SESSION_START:
            raise bad_request("SESSION_START was already received on this socket")
        if which == "audio_input":
            if self._audio is None or self._audio.audio is None or self._audio.audio.closed:
                stream = _AudioStream()
                self._audio = self._start(stream.requests(), stream)
            assert self._audio.audio is not None
            await self._audio.audio.put(request)
            return
        if event == _EV.SESSION_END:
            self._terminal = "caller"
            self._stop_listening()
            rpc = self._start(_one(request), None)
            assert rpc.task is not None
            rpc.task.add_done_callback(lambda _t: self._close_soon())
            return
        self._start(_one(request), None)

    # --- virtual RPCs ------------------------------------------------------------------

    def _start(
        self, requests: AsyncIterator[pb.VoiceVARequest], audio: _AudioStream | None
    ) -> _VirtualRpc:
        rpc = _VirtualRpc(metrics=self.metrics, audio=audio, framer=ReplyFramer())
        out = _VirtualOutput(rpc, self._deliver)
        rpc.task = asyncio.create_task(self._run(rpc, requests, out))
        self._rpcs.add(rpc)
        return rpc

    async def _run(
        self, rpc: _VirtualRpc, requests: AsyncIterator[pb.VoiceVARequest], out: RpcOutput
    ) -> None:
        # The engine names the kind when the step returns; a stream cut short keeps this one.
        kind, status = ("audio" if rpc.audio is not None else "unknown"), "OK"
        try:
            kind = await self.transport.engine.run_rpc(requests, out, self.tracking_id)
        except RpcAbort as exc:
            status = exc.code
            if exc.code == "DEADLINE_EXCEEDED" and rpc.audio is not None:
                # Caller audio paused (e.g. DTMF-only input): that stream ends, the socket
                # lives on and the next frame opens a new one; its idle timeout governs.
                log.debug("audio stream idle: %s", exc.message)
            else:
                code, http_status = _ABORTS.get(exc.code, (ErrorCode.UPSTREAM_ERROR, 502))
                self._fail(WsProtocolError(code, exc.message, status=http_status))
        except asyncio.CancelledError:
            status = "CANCELLED"
            raise
        except Exception:
            status = "INTERNAL"
            log.exception("virtual RPC failed [conversation=%s]", self.conversation_id)
            self._fail(WsProtocolError(ErrorCode.UPSTREAM_ERROR, "internal error; see server logs"))
        finally:
            out.close()
            if rpc.audio is not None:
                rpc.audio.close()
            self._rpcs.discard(rpc)
            self.metrics.rpcs.labels(kind=kind, status=status).inc()

    def _deliver(self, rpc: _VirtualRpc, response: pb.VoiceVAResponse | None) -> None:
        """Write one response the engine sent on ``rpc`` (``None``: the RPC is complete)."""
        if response is None:
            return
        events = {e.event_type for e in response.output_events}
        if _START_OF_INPUT in events:
            for other in self._rpcs:
                if other is not rpc:
                    other.framer.drop_bargeable_tail()
        for framed, marker in rpc.framer.frame(response):
            self._seq += 1
            payload = response_payload(framed, audio_marker=marker)
            assert self.conversation_id is not None
            self.outbox.put(
                envelope_json("VOICE_VA_RESPONSE", self._seq, self.conversation_id, payload=payload)
            )
        if _END_OF_INPUT in events and rpc.audio is not None:
            rpc.audio.close()  # the client's half-close: later audio opens the next stream
        if response.response_type == pb.VoiceVAResponse.FINAL and events & _TERMINAL_EVENTS:
            self._terminal = self._terminal or "agent"
            self._stop_listening(keep=rpc)
            self._close_soon()

    def _stop_listening(self, keep: _VirtualRpc | None = None) -> None:
        """The call is ending: no turn may start; cancel the audio RPC that waits for one."""
        listening = self._audio
        self._audio = None
        if listening is not None and listening is not keep and listening.task is not None:
            listening.task.cancel()

    def _close_soon(self) -> None:
        """After the call's last reply: close 1000 when Webex has not closed in time."""
        if self._closer is None and not self.outbox.closing:
            self._closer = asyncio.create_task(self._close_after(self.config.ws_close_timeout_s))

    async def _close_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self.outbox.close(1000)


async def _one(request: pb.VoiceVARequest) -> AsyncIterator[pb.VoiceVARequest]:
    yield request
