"""The bounded buffer between a backend's audio and the gRPC replies that carry it.

Backend audio, marks and output events queue here in arrival order; the reply
streams of successive turns take from it. Audio is capped at ``max_bytes``: when full
the oldest audio is dropped (and counted) — stale speech is the least useful — while
marks and events are kept, because losing a transfer would strand the caller.
"""

from __future__ import annotations

import asyncio
import collections
import time

from byova_media.agent import CustomEvent, EndSession, Transfer
from byova_websocket.protocol import MarkEvent

__all__ = ["Item", "PlayoutBuffer"]

#: μ-law audio, a mark to echo once played, or an output event that ends the reply.
Item = bytes | MarkEvent | Transfer | EndSession | CustomEvent


class PlayoutBuffer:
    """FIFO of backend items with a byte cap on audio (drop-oldest audio)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.audio_bytes = 0
        self.dropped_bytes = 0
        self.last_audio_at = 0.0
        self._items: collections.deque[Item] = collections.deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Item) -> None:
        self._items.append(item)
        if isinstance(item, bytes):
            self.audio_bytes += len(item)
            self.last_audio_at = time.monotonic()
            if self.audio_bytes > self.max_bytes:
                self._trim()
        self._ready.set()

    def _trim(self) -> None:
        kept: list[Item] = []
        while self.audio_bytes > self.max_bytes and self._items:
            item = self._items.popleft()
            if isinstance(item, bytes):
                self.audio_bytes -= len(item)
                self.dropped_bytes += len(item)
            else:
                kept.append(item)
        self._items.extendleft(reversed(kept))

    def pop(self) -> Item | None:
        if not self._items:
            return None
        item = self._items.popleft()
        if isinstance(item, bytes):
            self.audio_bytes -= len(item)
        return item

    async def wait(self, timeout_s: float) -> None:
        """Return when an item arrives, :meth:`wake` is called, or the timeout passes."""
        if self._items or timeout_s <= 0:
            return
        self._ready.clear()
        try:
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        except TimeoutError:
            pass

    def wake(self) -> None:
        self._ready.set()

    def clear(self) -> list[str]:
        """Drop audio and marks (not events); return the names of the dropped marks."""
        marks = [i.name for i in self._items if isinstance(i, MarkEvent)]
        events = [i for i in self._items if isinstance(i, Transfer | EndSession | CustomEvent)]
        self._items.clear()
        self._items.extend(events)
        self.audio_bytes = 0
        return marks
