"""The owner's side of the peer link: accept links from peers and serve the RPCs on them.

Each ``OPEN`` frame starts one forwarded RPC, served by the ``serve`` coroutine the
cluster node passes in (which checks the peer credential first). Its requests reach the
engine through :class:`InboundStream`, an async iterator like gRPC's request iterator;
a request is parsed only when the engine reads it, so a malformed one fails that RPC the
same way as on the gRPC port.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.cluster import link

__all__ = ["InboundStream", "PeerServer"]

log = logging.getLogger(__name__)

#: Requests queued for one RPC (5 s of 20 ms frames) before the link stops reading, as
#: gRPC's flow control would; it reads again once that RPC has caught up to :data:`_LOW`.
_HIGH: Final = 250
_LOW: Final = 50

Serve = Callable[["InboundStream"], Awaitable[None]]


class InboundStream:
    """One RPC a peer forwarded: its requests, and :meth:`respond` / :meth:`finish` back."""

    def __init__(self, conn: _LinkServer, number: int, token: str, tracking_id: str) -> None:
        self.conn = conn
        self.number = number
        self.token = token
        self.tracking_id = tracking_id
        self.finished = False
        self._items: collections.deque[bytes] = collections.deque()
        self._ended = False
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()  # not per frame: it costs a getpid() call

    def __aiter__(self) -> InboundStream:
        return self

    async def __anext__(self) -> pb.VoiceVARequest:
        items = self._items
        while not items:
            if self._ended:
                raise StopAsyncIteration
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._paused and len(items) <= _LOW:
            self._paused = False
            self.conn.caught_up(self)
        return pb.VoiceVARequest.FromString(items.popleft())

    def push(self, payload: bytes) -> None:
        self._items.append(payload)
        self._wake()
        if not self._paused and len(self._items) >= _HIGH:
            self._paused = True
            self.conn.fell_behind(self)

    def end(self) -> None:
        """The caller half-closed: the iterator stops after what is queued."""
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def respond(self, response: pb.VoiceVAResponse) -> None:
        """Send a response now; wait only while the link's write buffer is full."""
        self.conn.send(link.RESPONSE, self.number, response.SerializeToString())
        if not self.conn.writable.is_set():
            await self.conn.writable.wait()

    def finish(self, code: str, details: str = "") -> None:
        """Complete the RPC with a gRPC status (by name); only the first call counts."""
        if not self.finished:
            self.finished = True
            status = json.dumps({"code": code, "details": details}).encode()
            self.conn.send(link.STATUS, self.number, status)
            self.conn.forget(self)


class _LinkServer(link.FrameProtocol):
    """The owner's end of one link: a task per forwarded RPC."""

    def __init__(self, server: PeerServer) -> None:
        super().__init__(server.max_payload, expect_preamble=True)
        self.server = server
        self.streams: dict[int, InboundStream] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._behind: set[int] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Only now: a TLS handshake that fails never makes (nor loses) the connection.
        self.server.connections.add(self)

    def frame_received(self, kind: int, number: int, payload: bytes) -> None:
        if kind == link.OPEN:
            self._open(number, payload)
            return
        stream = self.streams.get(number)
        if stream is None:
            return  # completed here meanwhile
        if kind == link.REQUEST:
            stream.push(payload)
        elif kind == link.HALF_CLOSE:
            stream.end()
        elif kind == link.CANCEL:
            self.tasks[number].cancel()

    def _open(self, number: int, payload: bytes) -> None:
        try:
            header = json.loads(payload)
            token, tracking_id = str(header["token"]), str(header["trackingid"])[:128]
        except (ValueError, KeyError, TypeError):
            self.abort("a malformed OPEN frame")
            return
        if number in self.streams:
            self.abort(f"stream {number} opened twice")
            return
        stream = InboundStream(self, number, token, tracking_id)
        if self.server.closing:
            stream.finish("UNAVAILABLE", "this instance is stopping")
            return
        self.streams[number] = stream
        task = asyncio.create_task(self.server.run(stream))
        # Also when the task is cancelled before it ran: the stream is never left open.
        task.add_done_callback(lambda _: stream.finish("CANCELLED", "cancelled"))
        self.tasks[number] = task

    def forget(self, stream: InboundStream) -> None:
        self.streams.pop(stream.number, None)
        self.tasks.pop(stream.number, None)
        self.caught_up(stream)

    def fell_behind(self, stream: InboundStream) -> None:
        self._behind.add(stream.number)
        if self.transport is not None and len(self._behind) == 1:
            self.transport.pause_reading()

    def caught_up(self, stream: InboundStream) -> None:
        if stream.number in self._behind:
            self._behind.discard(stream.number)
            if self.transport is not None and not self._behind:
                self.transport.resume_reading()

    def closed(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        for task in self.tasks.values():
            task.cancel()  # the forwarding instance is gone: so is its caller


class PeerServer:
    """Listens for peer links; ``serve`` runs each forwarded RPC to its :meth:`finish`."""

    def __init__(self, serve: Serve, max_payload: int, tls: ssl.SSLContext | None) -> None:
        self.serve = serve
        self.max_payload = max_payload
        self.tls = tls
        self.closing = False
        self.connections: set[_LinkServer] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); return the bound port."""

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _LinkServer(self), host or None, port, ssl=self.tls
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def run(self, stream: InboundStream) -> None:
        """Serve one RPC; whatever happens, it ends with exactly one STATUS frame."""
        try:
            await self.serve(stream)
        except asyncio.CancelledError:
            stream.finish("CANCELLED", "cancelled by the forwarding instance")
        except Exception:
            log.exception("a forwarded RPC failed")
            stream.finish("INTERNAL", "internal error; see server logs")

    async def stop(self, grace_s: float) -> None:
        """Refuse new RPCs, give open ones ``grace_s`` to complete, then cut the links."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        tasks = [t for conn in self.connections for t in conn.tasks.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.flush()  # the STATUS frames of RPCs that completed in this turn
                conn.transport.abort()
        with contextlib.suppress(Exception):
            if self._server is not None:
                await self._server.wait_closed()
