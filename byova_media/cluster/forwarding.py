"""The edge side of forwarding: proxy one whole bidirectional RPC to its owner.

One peer link (:mod:`byova_media.cluster.link`) per owner address is kept for the
instance's lifetime; each forwarded RPC is one stream on it. Requests are written as the
caller sends them (audio frames are not held back) and the owner's responses, its one
FINAL included, are queued for the caller as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

from google.protobuf.message import DecodeError

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.cluster import link
from byova_media.cluster.credential import PeerCredential
from byova_media.cluster.metrics import ClusterMetrics
from byova_media.rpc import RpcAbort, RpcOutput

__all__ = ["OwnerUnreachable", "PeerLinks"]

#: Failures before the owner answered anything: unreachable (or not the owner any more),
#: draining and the call handed on, or its link cut as it stopped. The caller has seen
#: nothing, so the edge routes the RPC again (as Envoy retries a reset before any
#: response); an owner that is still alive and holds the call gets it once more.
_RETRYABLE: Final = frozenset({"UNAVAILABLE", "ABORTED", "INTERNAL", "CANCELLED"})
#: Opening a link to a peer that does not answer within this long counts as unreachable.
CONNECT_TIMEOUT_S: Final = 2.0


class OwnerUnreachable(Exception):
    """The owner did not take the RPC before it answered anything: safe to route it again.

    ``replay`` holds the requests already taken from the caller, to send again.
    """

    def __init__(self, replay: list[pb.VoiceVARequest]) -> None:
        super().__init__("owner unreachable")
        self.replay = replay


class _Stream:
    """One forwarded RPC on a link: its responses go to ``deliver``, ``status`` ends it."""

    def __init__(
        self, conn: _LinkClient, number: int, deliver: Callable[[pb.VoiceVAResponse], None]
    ) -> None:
        self.conn = conn
        self.number = number
        self.deliver = deliver
        self.status: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        #: Requests sent until the owner answers, to replay elsewhere if it fails first.
        self.replay: list[pb.VoiceVARequest] | None = []

    @property
    def answered(self) -> bool:
        return self.replay is None

    def send(self, request: pb.VoiceVARequest) -> None:
        """Write a request now; once the RPC is complete, only keep it for a replay."""
        if self.replay is not None:
            self.replay.append(request)
        if not self.status.done():
            self.conn.send(link.REQUEST, self.number, request.SerializeToString())

    def finish(self, code: str, details: str) -> None:
        if not self.status.done():
            self.status.set_result((code, details))
            self.conn.streams.pop(self.number, None)

    def cancel(self) -> None:
        """The caller went away (or its stream failed): the owner's RPC ends too."""
        if not self.status.done():
            self.conn.send(link.CANCEL, self.number)
            self.finish("CANCELLED", "cancelled by the forwarding instance")


class _LinkClient(link.FrameProtocol):
    """This instance's end of a link to one owner."""

    def __init__(self, max_payload: int) -> None:
        super().__init__(max_payload, expect_preamble=False)
        self.streams: dict[int, _Stream] = {}
        self.lost = False
        self._next = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.write(link.PREAMBLE)

    def open(self, token: str, tracking_id: str, out: RpcOutput) -> _Stream:
        self._next = (self._next + 1) & 0xFFFFFFFF
        stream = _Stream(self, self._next, out.queue.put_nowait)
        self.streams[stream.number] = stream
        header = json.dumps({"token": token, "trackingid": tracking_id}).encode()
        self.send(link.OPEN, stream.number, header)
        if self.lost:
            stream.finish("UNAVAILABLE", "the link to the owning instance was lost")
        return stream

    def frame_received(self, kind: int, number: int, payload: bytes) -> None:
        stream = self.streams.get(number)
        if stream is None:
            return  # cancelled here meanwhile
        if kind == link.RESPONSE:
            try:
                response = pb.VoiceVAResponse.FromString(payload)
            except DecodeError:
                stream.replay = None  # the owner did act on the RPC: never replay it
                self.send(link.CANCEL, number)
                stream.finish("INTERNAL", "the owning instance sent a malformed response")
                return
            stream.replay = None
            stream.deliver(response)
        elif kind == link.STATUS:
            status = json.loads(payload)
            stream.finish(str(status["code"]), str(status["details"]))

    def closed(self, exc: Exception | None) -> None:
        self.lost = True
        for stream in list(self.streams.values()):
            stream.finish("UNAVAILABLE", "the link to the owning instance was lost")


class PeerLinks:
    """Links to the other instances, and the proxy loop of one forwarded RPC."""

    def __init__(
        self,
        credential: PeerCredential,
        metrics: ClusterMetrics,
        max_message_bytes: int,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._credential = credential
        self._metrics = metrics
        self._max_payload = max_message_bytes
        self._tls = tls
        self._links: dict[str, asyncio.Task[_LinkClient]] = {}

    async def _link(self, address: str) -> _LinkClient:
        """The open link to ``address``, connecting (once, for concurrent callers) if needed."""
        task = self._links.get(address)
        if task is not None and (not task.done() or _usable(task)):
            return await asyncio.shield(task)
        task = asyncio.create_task(self._connect(address))
        self._links[address] = task
        return await asyncio.shield(task)

    async def _connect(self, address: str) -> _LinkClient:
        host, _, port = address.rpartition(":")
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            _, conn = await loop.create_connection(
                lambda: _LinkClient(self._max_payload),
                host.strip("[]"),
                int(port),
                ssl=self._tls,
                server_hostname=host.strip("[]") if self._tls is not None else None,
            )
        return conn

    async def forward(
        self,
        address: str,
        first: pb.VoiceVARequest,
        rest: AsyncIterator[pb.VoiceVARequest],
        out: RpcOutput,
        tracking_id: str,
        replay: list[pb.VoiceVARequest] | None = None,
    ) -> None:
        """Proxy the RPC to the link at ``address`` until the owner completes it.

        Raises :class:`OwnerUnreachable` when the owner failed before its first response
        (the caller has seen nothing: the RPC can be served elsewhere), :class:`RpcAbort`
        with the owner's status when the owner refused or failed it.
        """
        started = time.monotonic()
        head = replay or [first]
        try:
            conn = await self._link(address)
        except (OSError, TimeoutError, ValueError):
            self._metrics.forwarded.labels(status="retried").inc()
            raise OwnerUnreachable(head) from None
        stream = conn.open(self._credential.sign(first.conversation_id), tracking_id, out)
        for request in head:
            stream.send(request)
        self._metrics.forward_latency.observe(time.monotonic() - started)
        writer = asyncio.create_task(_pump(stream, rest))
        try:
            # Shielded: cancelling this task (the caller went away) must not cancel the
            # future itself, or the stream would look complete and never send CANCEL.
            code, details = await asyncio.shield(stream.status)
        finally:
            stream.cancel()  # nothing when the owner completed it
            await _stop(writer)  # raises what broke the caller's stream, if anything did
        if code == "OK":
            self._metrics.forwarded.labels(status="OK").inc()
            return
        if not stream.answered and code in _RETRYABLE:
            self._metrics.forwarded.labels(status="retried").inc()
            raise OwnerUnreachable(list(stream.replay or []))
        self._metrics.forwarded.labels(status=code).inc()
        raise RpcAbort(code, details or "the owning instance failed")

    async def close(self) -> None:
        for task in self._links.values():
            if _usable(task):
                conn = task.result()
                assert conn.transport is not None
                conn.flush()
                conn.transport.close()
            else:
                task.cancel()
        self._links.clear()


async def _pump(stream: _Stream, rest: AsyncIterator[pb.VoiceVARequest]) -> None:
    """Write the caller's requests as they come, then its half-close."""
    conn = stream.conn
    try:
        async for request in rest:
            stream.send(request)
            if stream.status.done():
                return
            if not conn.writable.is_set():
                await conn.writable.wait()  # the owner reads slower than the caller sends
    except Exception:
        stream.cancel()
        raise
    if not stream.status.done():
        conn.send(link.HALF_CLOSE, stream.number)


def _usable(task: asyncio.Task[_LinkClient]) -> bool:
    return task.done() and not task.cancelled() and not task.exception() and task.result().is_open


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
