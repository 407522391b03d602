"""Streamed replies from sources at real time play without gaps at the Webex side.

The server runs on 127.0.0.1 and the simulator records when each CHUNK arrives; a gap
is a CHUNK that arrives after the audio sent before it has finished playing.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import byova_media
from byova_media.agent import Agent, AgentSpec, Reply, SessionStart
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.tones import tone
from byova_media.call import Call
from tests._playout import LoopStalls, audio_arrivals, paced_source, playout_gaps_ms

REPLY_MS = 2000


class PacedAgent(Agent):
    """Welcomes the caller with a tone produced at ``speed``× real time with jitter."""

    def __init__(self, speed: float, jitter_ms: int, first_byte_at: list[float]) -> None:
        self.speed = speed
        self.jitter_ms = jitter_ms
        self.first_byte_at = first_byte_at

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        audio = pcm_to_ulaw(tone(440, REPLY_MS))
        source = paced_source(audio, self.speed, self.jitter_ms, self.first_byte_at)
        return Reply.say(source, text="paced")


def paced_plugin(speed: float, jitter_ms: int, first_byte_at: list[float]) -> object:
    class Plugin:
        @byova_media.hookimpl
        def byova_register_agents(self, app: Any, register: Any) -> None:
            register(AgentSpec("paced", lambda call: PacedAgent(speed, jitter_ms, first_byte_at)))

    return Plugin()


@pytest.mark.slow
@pytest.mark.parametrize(("speed", "jitter_ms"), [(1.0, 0), (2.0, 0), (1.0, 100)])
async def test_no_underrun_after_the_first_chunk(
    byova_server: Any, webex: Any, speed: float, jitter_ms: int
) -> None:
    first_byte_at: list[float] = []
    await byova_server(extra_plugins=[("paced", paced_plugin(speed, jitter_ms, first_byte_at))])
    call = (await webex()).call("paced")
    began = time.monotonic()
    async with LoopStalls() as stalls:
        welcome = await call.start()
    arrivals = audio_arrivals(welcome)
    assert sum(size for _, size in arrivals) == 8 * REPLY_MS
    assert len(arrivals) > 2  # streamed, not sent whole at the end
    # No gap, except as long as the shared host froze the whole process (then the
    # source was late too); on a quiet machine that is a few ms.
    gaps = playout_gaps_ms(arrivals)
    assert max(gaps) <= stalls.longest_ms, (gaps, stalls.longest_ms, arrivals)
    added_latency_s = began + arrivals[0][0] - first_byte_at[0]
    assert added_latency_s <= 0.250 + stalls.longest_ms / 1000
