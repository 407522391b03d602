"""Fixtures: start real WebSocket backends on 127.0.0.1 and stop them after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from ws_backends import Backend, Handler


@pytest.fixture
async def backend() -> AsyncIterator[Callable[[Handler], Awaitable[Backend]]]:
    """Factory: ``await backend(handler)`` → a running :class:`Backend`."""
    started: list[Backend] = []

    async def make(handler: Handler) -> Backend:
        b = await Backend(handler).start()
        started.append(b)
        return b

    yield make
    for b in started:
        await b.stop()
