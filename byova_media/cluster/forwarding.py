"""The edge side of forwarding: proxy one whole bidirectional RPC to its owner.

One gRPC channel per peer address is kept for the instance's lifetime; each forwarded
RPC is one stream on it, so requests and responses pass message by message (audio
frames are not buffered) and the owner's responses, its one FINAL included, reach the
caller unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.cluster.credential import METADATA_KEY, PeerCredential
from byova_media.cluster.metrics import ClusterMetrics
from byova_media.rpc import RpcAbort, RpcOutput

__all__ = ["FORWARD_METHOD", "OwnerUnreachable", "PeerLinks"]

#: The internal method peers forward on; the JWS interceptor guards only the public service.
FORWARD_METHOD = "/byova_media.cluster.v1.Peer/Forward"


#: Failures before the owner answered anything: unreachable (or not the owner any more),
#: draining and the call handed on, or its connection cut as it stopped. The caller has
#: seen nothing, so the edge routes the RPC again (as Envoy retries a reset before any
#: response); an owner that is still alive and holds the call gets it once more.
_RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.CANCELLED,
)


class OwnerUnreachable(Exception):
    """The owner did not take the RPC before it answered anything: safe to route it again.

    ``replay`` holds the requests already taken from the caller, to send again.
    """

    def __init__(self, replay: list[pb.VoiceVARequest]) -> None:
        super().__init__("owner unreachable")
        self.replay = replay


class PeerLinks:
    """Channels to the other instances, and the proxy loop of one forwarded RPC."""

    def __init__(
        self,
        credential: PeerCredential,
        metrics: ClusterMetrics,
        max_message_bytes: int,
        channel_credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self._credential = credential
        self._metrics = metrics
        self._channel_credentials = channel_credentials
        self._options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _method(self, address: str) -> Any:
        channel = self._channels.get(address)
        if channel is None:
            channel = (
                grpc.aio.secure_channel(address, self._channel_credentials, options=self._options)
                if self._channel_credentials is not None
                else grpc.aio.insecure_channel(address, options=self._options)
            )
            self._channels[address] = channel
        return channel.stream_stream(
            FORWARD_METHOD,
            request_serializer=pb.VoiceVARequest.SerializeToString,
            response_deserializer=pb.VoiceVAResponse.FromString,
        )

    async def forward(
        self,
        address: str,
        first: pb.VoiceVARequest,
        rest: AsyncIterator[pb.VoiceVARequest],
        out: RpcOutput,
        tracking_id: str,
        replay: list[pb.VoiceVARequest] | None = None,
    ) -> None:
        """Proxy the RPC to ``address`` until the owner completes it.

        Raises :class:`OwnerUnreachable` when the owner failed before its first response
        (the caller has seen nothing: the RPC can be served elsewhere), :class:`RpcAbort`
        with the owner's status when the owner refused or failed it.
        """
        started = time.monotonic()
        metadata = (
            (METADATA_KEY, self._credential.sign(first.conversation_id)),
            ("trackingid", tracking_id),
        )
        call = self._method(address)(metadata=metadata)
        # Until the owner answers, remember what was sent so another instance can replay it.
        sent: list[pb.VoiceVARequest] | None = [*(replay or [first])]
        answered = False

        async def pump() -> None:
            try:
                for request in replay or [first]:
                    await call.write(request)
                self._metrics.forward_latency.observe(time.monotonic() - started)
                async for request in rest:
                    if sent is not None:
                        sent.append(request)
                    await call.write(request)
                await call.done_writing()
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                pass  # the owner completed or failed the RPC; the reader reports it

        writer = asyncio.create_task(pump())
        try:
            async for response in call:
                if not answered:
                    answered, sent = True, None
                out.queue.put_nowait(response)
        except grpc.aio.AioRpcError as exc:
            if not answered and exc.code() in _RETRYABLE:
                self._metrics.forwarded.labels(status="retried").inc()
                await _stop(writer)
                raise OwnerUnreachable(list(sent or [])) from None
            self._metrics.forwarded.labels(status=exc.code().name).inc()
            raise RpcAbort(exc.code().name, exc.details() or "the owning instance failed") from None
        finally:
            if not call.done():
                call.cancel()  # the caller went away: the owner's RPC ends too
            await _stop(writer)
        self._metrics.forwarded.labels(status="OK").inc()

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


async def _stop(task: asyncio.Task[None]) -> None:
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
