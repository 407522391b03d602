"""``CallInspector``: the last N calls, recorded at the RPC edge of the engine.

The engine calls :meth:`CallInspector.open_rpc` when an RPC starts (only when the
inspector is on: a ``None`` check otherwise), which wraps the request stream and
observes the :class:`~byova_media.rpc.RpcOutput`; a few more calls note turn latencies,
barge-ins and the end of a call. Old calls fall out of a bounded ring buffer.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.codecs import decode, ulaw_to_pcm
from byova_media.audio.wav import pcm_wav, ulaw_wav
from byova_media.inspector.records import BargeInRecord, CallRecord, RpcRecord, TurnRecord
from byova_media.rpc import RpcAbort
from byova_media.wire import encoding_from_wire

if TYPE_CHECKING:
    from byova_media.agent import BargeIn, TurnMetrics
    from byova_media.rpc import RpcOutput

__all__ = ["CallInspector", "RpcRecording"]

#: The RPC being served in this task; the engine's RPC task inherits it from the handler.
_current_rpc: ContextVar[RpcRecord | None] = ContextVar("byova_inspector_rpc", default=None)
#: Longer ids are refused by the engine; they are not worth a slot in the buffer either.
_MAX_ID_CHARS = 256


class RpcRecording:
    """The handle the engine holds for one recorded RPC."""

    def __init__(self, inspector: CallInspector, record: RpcRecord) -> None:
        self._inspector = inspector
        self.record = record

    async def requests(
        self, requests: AsyncIterator[pb.VoiceVARequest]
    ) -> AsyncIterator[pb.VoiceVARequest]:
        """Pass the client's messages through, noting each; mark the half-close."""
        first = True
        async for request in requests:
            if first:
                first = False
                self._inspector.attach(request, self.record)
            self.record.on_request(request)
            yield request
        self.record.half_closed_at = time.monotonic()

    def complete(self, error: BaseException | None) -> None:
        """The RPC's step is over, with ``error`` if it raised (a refusal, a cancel, a bug)."""
        self.record.completed_at = time.monotonic()
        if error is None:
            self.record.status = "OK"
        elif isinstance(error, RpcAbort):
            self.record.status = error.code
        elif isinstance(error, asyncio.CancelledError):
            self.record.status = "CANCELLED"
        else:
            self.record.status = "INTERNAL"


class CallInspector:
    """A bounded ring buffer of the last ``max_calls`` calls, keyed by ``conversation_id``."""

    def __init__(self, max_calls: int, *, record_audio: bool = False) -> None:
        if max_calls < 1:
            raise ValueError("the inspector must keep at least one call")
        self.max_calls = max_calls
        self.record_audio = record_audio
        self._calls: OrderedDict[str, CallRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._calls)

    def open_rpc(
        self, requests: AsyncIterator[pb.VoiceVARequest], out: RpcOutput
    ) -> tuple[AsyncIterator[pb.VoiceVARequest], RpcRecording]:
        """Start recording one RPC: the wrapped request stream and the recording handle."""
        record = RpcRecord(opened_at=time.monotonic(), record_audio=self.record_audio)
        out.observer = record.on_response
        _current_rpc.set(record)
        recording = RpcRecording(self, record)
        return recording.requests(requests), recording

    def attach(self, first: pb.VoiceVARequest, record: RpcRecord) -> None:
        """File an RPC under its call once its first message names the conversation."""
        conv_id = first.conversation_id
        if not conv_id or len(conv_id) > _MAX_ID_CHARS:
            return  # the engine refuses the RPC; nothing to show
        call = self._calls.get(conv_id)
        if call is None:
            call = CallRecord(
                conversation_id=conv_id,
                virtual_agent_id=first.virtual_agent_id,
                origin=record.opened_at,
                started_wall=time.time(),
            )
            self._calls[conv_id] = call
            while len(self._calls) > self.max_calls:
                self._calls.popitem(last=False)
        call.add(record)

    def turn(self, metrics: TurnMetrics, transcript: str | None) -> None:
        """Latency marks of a finished caller turn (and the transcript so far)."""
        call = self._calls.get(metrics.conversation_id)
        if call is None:
            return
        rpc = _current_rpc.get()
        call.turns.append(
            TurnRecord(
                turn=metrics.turn,
                rpc=rpc.index if rpc is not None else -1,
                speech_end=metrics.speech_end_s,
                end_of_input=metrics.end_of_input_s,
                reply_ready=metrics.reply_ready_s,
                first_audio=metrics.first_audio_sent_s,
                final=metrics.final_sent_s,
                marks=dict(metrics.marks),
            )
        )
        if transcript:
            call.transcript = transcript

    def barge_in(self, conversation_id: str, barge: BargeIn) -> None:
        call = self._calls.get(conversation_id)
        if call is not None:
            call.barge_ins.append(BargeInRecord(time.monotonic(), barge.heard_ms, barge.sent_ms))

    def ended(self, conversation_id: str, reason: str, transcript: str | None) -> None:
        call = self._calls.get(conversation_id)
        if call is not None:
            call.ended = reason
            call.transcript = transcript or call.transcript

    def calls(self) -> list[CallRecord]:
        """The recorded calls, newest first."""
        return list(reversed(self._calls.values()))

    def get(self, conversation_id: str) -> CallRecord | None:
        return self._calls.get(conversation_id)

    def audio_wav(self, conversation_id: str, rpc: int, side: str) -> bytes | None:
        """One RPC's recorded caller or agent audio as a WAV file, ``None`` if not kept."""
        call = self._calls.get(conversation_id)
        if call is None or not 0 <= rpc < len(call.rpcs):
            return None
        record = call.rpcs[rpc]
        if side == "agent":
            return ulaw_wav(bytes(record.agent_audio)) if record.agent_audio else None
        if side != "caller" or not record.caller_audio:
            return None
        encoding = encoding_from_wire(record.caller_encoding)
        data = bytes(record.caller_audio)
        pcm = decode(data, encoding) if encoding is not None else ulaw_to_pcm(data)
        return pcm_wav(pcm, record.caller_rate_hz)
