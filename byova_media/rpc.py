"""The output side of one ``ProcessCallerInput`` RPC: ordered sends and the one-FINAL rule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.metrics import Metrics

__all__ = ["RpcAbort", "RpcOutput", "malformed"]

_TYPE_NAMES = {v: k.lower() for k, v in pb.VoiceVAResponse.ResponseType.items()}
_EVENT_NAMES = {v: k for k, v in pb.OutputEvent.EventType.items()}


class RpcAbort(Exception):
    """End the RPC with a gRPC status (e.g. INVALID_ARGUMENT) and a message for the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def malformed(exc: Exception) -> RpcAbort:
    """A request that is not a valid ``VoiceVARequest`` (the client's error, not ours)."""
    return RpcAbort("INVALID_ARGUMENT", f"malformed request message: {type(exc).__name__}")


class RpcOutput:
    """Responses waiting to be written to one RPC.

    The servicer's generator drains :attr:`queue`; ``None`` ends the RPC. Sending a
    second FINAL is a bug in the engine and raises instead of breaking the protocol.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.queue: asyncio.Queue[pb.VoiceVAResponse | None] = asyncio.Queue()
        self.metrics = metrics
        self.final_sent = False
        self.closed = False
        self.first_audio_at: float | None = None
        #: How the step ended: after the client's ``"half-close"``, or after the ``"grace"``.
        self.completed_after: str | None = None
        #: Sees every response sent (the call inspector); ``None`` costs one check per send.
        self.observer: Callable[[pb.VoiceVAResponse], None] | None = None

    def send(self, response: pb.VoiceVAResponse) -> None:
        """Queue a response of the reply; its FINAL is the one that closes the step."""
        if self.closed:
            return
        if response.response_type == pb.VoiceVAResponse.FINAL:
            if self.final_sent:
                raise RuntimeError("a second FINAL on one RPC would break the BYOVA protocol")
            self.final_sent = True
        self._queue(response)

    def send_boundary(self, response: pb.VoiceVAResponse) -> None:
        """Queue a standalone START_OF_INPUT/END_OF_INPUT response.

        Whatever its type (``boundary_response_type``), it is a complete message of its
        own and never counts as the reply's FINAL.
        """
        if not self.closed:
            self._queue(response)

    def _queue(self, response: pb.VoiceVAResponse) -> None:
        if self.first_audio_at is None and any(p.audio_content for p in response.prompts):
            self.first_audio_at = time.monotonic()
        self.metrics.replies.labels(type=_TYPE_NAMES[response.response_type]).inc()
        for event in response.output_events[:1]:
            self.metrics.output_events.labels(event=_EVENT_NAMES[event.event_type]).inc()
        if self.observer is not None:
            self.observer(response)
        self.queue.put_nowait(response)

    def close(self) -> None:
        """Complete the RPC once everything queued has been written."""
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)
