"""examples/long_reply: a streamed story, a barge-in that stops it, and the resumed telling."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import grpc
import pytest

from byova_media.testing.simulator import RpcResult, SimulatedCall

pytestmark = pytest.mark.slow  # real-time pacing: about seven seconds

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "long_reply"
SENTENCES = 4
SENTENCE_BYTES = 8000  # one second of 8 kHz μ-law per sentence


def one_final(result: RpcResult) -> None:
    assert result.code == grpc.StatusCode.OK, result.details
    assert len(result.finals) == 1 and result.responses[-1] is result.final


async def first_audio(call: SimulatedCall, rpc: int) -> None:
    """Wait (up to 10 s) until RPC number ``rpc`` (from 0) of ``call`` has received audio."""
    for _ in range(500):
        if len(call.history) > rpc and any("audio" in w for _, w in call.history[rpc].timeline):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no reply audio arrived")


async def test_barge_in_stops_the_story_and_the_next_turn_resumes_it(
    byova_server: Any, webex: Any, speech: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    await byova_server(
        plugins=["long_reply"],
        env={"BYOVA_MEDIA_LONG_REPLY_SENTENCES": str(SENTENCES)},
        chunk_lead_ms=500,
        speech_end_silence_ms=300,
    )
    call = (await webex(realtime=True)).call("long_reply")
    one_final(await call.start())

    telling = asyncio.create_task(call.say(speech(400)))
    await first_audio(call, 1)
    await asyncio.sleep(1.5)  # the caller hears about two sentences, then talks over them
    stop = await call.say(speech(400, seed=2), lead_silence_ms=100)
    story = await telling
    one_final(story)
    one_final(stop)
    assert story.prompt_texts == ["Once upon a time."]
    assert stop.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert len(story.audio) < SENTENCES * SENTENCE_BYTES  # the stream was cut short
    match = re.fullmatch(r"You stopped me after (\d+\.\d) seconds\. .*", stop.prompt_texts[0])
    assert match, stop.prompt_texts
    heard_s = float(match.group(1))
    assert 1.0 <= heard_s < SENTENCES - 1

    resumed = await call.say(speech(400, seed=3))
    one_final(resumed)
    first = int(heard_s) + 1
    assert resumed.prompt_texts == [f"Picking up at sentence {first}."]
    # The rest of the story, from the sentence the caller was cut off in, to the end.
    assert len(resumed.audio) == (SENTENCES - first + 1) * SENTENCE_BYTES
