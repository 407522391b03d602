"""The edge side of forwarding: proxy one whole bidirectional RPC to its owner.

One peer link (:mod:`byova_media.cluster.link`) per owner address is kept for the
instance's lifetime; each forwarded RPC is one stream on it. Requests are written as the
caller sends them (audio frames are not held back) and the owner's responses, its one
FINAL included, are queued for the caller as they arrive. :class:`CallerRequests` reads
the caller's requests for the whole RPC, so a forward attempt that fails loses none.
"""

from __future__ import annotations

import asyncio
import collections
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

__all__ = ["CallerRequests", "OwnerUnreachable", "PeerLinks"]

#: Failures before the owner answered anything: unreachable (or not the owner any more),
#: draining and the call handed on, or its link cut as it stopped. The caller has seen
#: nothing, so the edge routes the RPC again (as Envoy retries a reset before any
#: response); an owner that is still alive and holds the call gets it once more.
_RETRYABLE: Final = frozenset({"UNAVAILABLE", "ABORTED", "INTERNAL", "CANCELLED"})
#: Opening a link to a peer that does not answer within this long counts as unreachable.
CONNECT_TIMEOUT_S: Final = 2.0
#: Requests read while no owner takes them (5 s of 20 ms frames) before reading pauses,
#: so gRPC's flow control holds the caller back meanwhile.
_HELD_MAX: Final = 250


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
        rest: CallerRequests,
        out: RpcOutput,
        tracking_id: str,
        replay: list[pb.VoiceVARequest] | None = None,
    ) -> None:
        """Proxy the RPC to the link at ``address`` until the owner completes it.

        Raises :class:`OwnerUnreachable` when the owner failed before its first response
        (the caller has seen nothing: the RPC can be served elsewhere), :class:`RpcAbort`
        with the owner's status when the owner refused or failed it, and what broke the
        caller's stream if it broke.
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
        rest.attach(stream)
        try:
            # Shielded: cancelling this task (the caller went away) must not cancel the
            # future itself, or the stream would look complete and never send CANCEL.
            code, details = await asyncio.shield(stream.status)
        finally:
            rest.detach()
            stream.cancel()  # nothing when the owner completed it
        rest.raise_if_broken()
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


def _usable(task: asyncio.Task[_LinkClient]) -> bool:
    return task.done() and not task.cancelled() and not task.exception() and task.result().is_open


class CallerRequests:
    """The caller's requests after the first, read by one task for the whole RPC.

    gRPC's request iterator is an async generator, and cancelling a read of it closes it,
    losing every later request; yet a forward attempt that fails ends while the caller
    is still sending. So one task reads the requests for the whole RPC and hands each to
    whoever takes the RPC now: the stream of the current attempt (written at once, as it
    comes: no hand-off between tasks on the frame path), or, between attempts and when
    this instance serves the RPC itself, this object as an async iterator.
    """

    def __init__(self, source: AsyncIterator[pb.VoiceVARequest]) -> None:
        self._stream: _Stream | None = None
        self._held: collections.deque[pb.VoiceVARequest] = collections.deque()
        #: ``StopAsyncIteration`` once the caller half-closed, or what broke its stream.
        self._end: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reader = asyncio.create_task(self._read(source))

    async def _read(self, source: AsyncIterator[pb.VoiceVARequest]) -> None:
        end: BaseException = StopAsyncIteration()
        try:
            async for request in source:
                await self._pass_on(request)
        except asyncio.CancelledError as exc:
            if self._reader.cancelling():
                raise  # closed: the RPC is over
            end = exc  # the caller's stream was cancelled under it (the server stops)
        except Exception as exc:  # a malformed message, a broken stream
            end = exc
        self._end = end
        if self._stream is not None:
            self._finish(self._stream)
        self._wake()

    async def _pass_on(self, request: pb.VoiceVARequest) -> None:
        stream = self._stream
        if stream is None:
            self._held.append(request)
            self._wake()
            while len(self._held) >= _HELD_MAX and self._stream is None:
                await self._wait()
            return
        stream.send(request)
        if not stream.conn.writable.is_set() and not stream.status.done():
            await stream.conn.writable.wait()  # the owner reads slower than the caller sends

    def _finish(self, stream: _Stream) -> None:
        """The caller is done: half-close ``stream``, or cancel it if the caller broke."""
        if isinstance(self._end, StopAsyncIteration):
            if not stream.status.done():
                stream.conn.send(link.HALF_CLOSE, stream.number)
        else:
            stream.cancel()

    def attach(self, stream: _Stream) -> None:
        """From now on requests go to ``stream``: first those read meanwhile."""
        self._stream = stream
        while self._held:
            stream.send(self._held.popleft())
        if self._end is not None:
            self._finish(stream)
        self._wake()  # a reader paused on a full buffer goes on

    def detach(self) -> None:
        """The attempt is over: requests are held for the next one (or for this instance)."""
        self._stream = None

    def raise_if_broken(self) -> None:
        """Raise what broke the caller's stream, if it broke."""
        if self._end is not None and not isinstance(self._end, StopAsyncIteration):
            raise self._end

    def __aiter__(self) -> CallerRequests:
        return self

    async def __anext__(self) -> pb.VoiceVARequest:
        while not self._held:
            if self._end is not None:
                raise self._end
            await self._wait()
        request = self._held.popleft()
        self._wake()  # room again for a reader paused on a full buffer
        return request

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        """The RPC is over: stop reading."""
        self._reader.cancel()
