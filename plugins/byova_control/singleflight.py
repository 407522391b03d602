"""Single-flight: concurrent callers for the same key share one in-progress coroutine."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Run at most one ``work()`` per key at a time; late callers await the same result.

    Used for token refreshes: ten RPCs finding an expired token must cause one refresh,
    not ten (Webex would invalidate the refresh token used by the others).
    """

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[T]] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """Await the running call for ``key``, or start ``work()`` if none is running."""
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await work()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            # Nobody else may be waiting; mark the exception as retrieved.
            future.exception()
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._running[key]
