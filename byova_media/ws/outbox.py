"""The per-socket send queue: frames written in order by one task, bounded in bytes.

The engine queues responses synchronously (``RpcOutput.send``), so the bound cannot block
it; instead the socket's reader waits for :meth:`Outbox.writable` before it takes the next
request, which stops reading from a peer that does not read (TCP back-pressure), and a
queue that still grows past ``4 × max_bytes`` is a dead peer: :attr:`overflowed` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

__all__ = ["Outbox"]

log = logging.getLogger(__name__)

_HARD_FACTOR = 4


class Outbox:
    """Text frames for one WebSocket, then an optional close code; :meth:`run` writes them."""

    def __init__(self, ws: web.WebSocketResponse, max_bytes: int) -> None:
        self._ws = ws
        self._max_bytes = max_bytes
        self._queue: asyncio.Queue[str | int] = asyncio.Queue()
        self._bytes = 0
        self._writable = asyncio.Event()
        self._writable.set()
        self.closing = False
        self.overflowed = False

    def put(self, frame: str) -> None:
        """Queue one frame (dropped once the socket is closing)."""
        if self.closing:
            return
        self._bytes += len(frame)
        if self._bytes > self._max_bytes:
            self._writable.clear()
            if self._bytes > _HARD_FACTOR * self._max_bytes:
                self.overflowed = True
        self._queue.put_nowait(frame)

    def close(self, code: int) -> None:
        """Write what is queued, then close the socket with ``code``."""
        if not self.closing:
            self.closing = True
            self._queue.put_nowait(code)
            self._writable.set()  # a reader waiting for room must see the close

    async def writable(self) -> None:
        """Return when the queue is below its bound (or the socket is closing)."""
        await self._writable.wait()

    async def run(self) -> None:
        """Write frames until the close code; a write failure ends the socket."""
        ws = self._ws
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, int):
                    await ws.close(code=item)
                    return
                await ws.send_str(item)
                self._bytes -= len(item)
                if self._bytes <= self._max_bytes:
                    self._writable.set()
        except (ConnectionError, RuntimeError) as exc:
            # The peer went away mid-write (aiohttp raises ConnectionResetError, or
            # RuntimeError once the transport is closing); nothing more can be sent.
            log.info("socket write failed (%s); closing", type(exc).__name__)
            self.closing = True
            self._writable.set()
            with contextlib.suppress(Exception):
                await ws.close(code=1011)
