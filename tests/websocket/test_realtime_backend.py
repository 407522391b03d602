"""A backend that streams its audio at real time reaches Webex without gaps."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from ws_backends import Backend, beep

from tests._playout import LoopStalls, audio_arrivals, paced_source, playout_gaps_ms
from tests.websocket.test_calls import ws_env

GREETING_MS = 2000


@pytest.mark.slow
async def test_real_time_backend_plays_without_gaps(
    byova_server: Any, webex: Any, backend: Any
) -> None:
    first_byte_at: list[float] = []

    async def speaking_bot(b: Backend, ws: ServerConnection) -> None:
        async for message in ws:
            if isinstance(message, str) and json.loads(message)["type"] == "start":
                await ws.send(json.dumps({"type": "ready"}))
                async for piece in paced_source(beep(GREETING_MS), 1.0, 0, first_byte_at):
                    await ws.send(piece)

    bot = await backend(speaking_bot)
    # A generous idle limit: on a starved host the bot itself can pause for a while.
    server = await byova_server(plugins=["websocket"], env=ws_env(bot, reply_idle_ms="2000"))
    call = (await webex(server)).call("websocket")
    began = time.monotonic()
    async with LoopStalls() as stalls:
        welcome = await call.start()
    arrivals = audio_arrivals(welcome)
    assert sum(size for _, size in arrivals) == 8 * GREETING_MS
    # No gap, except as long as the shared host froze the whole process (then the
    # source was late too); on a quiet machine that is a few ms.
    gaps = playout_gaps_ms(arrivals)
    assert max(gaps) <= stalls.longest_ms, (gaps, stalls.longest_ms, arrivals)
    assert began + arrivals[0][0] - first_byte_at[0] <= 0.250 + stalls.longest_ms / 1000
