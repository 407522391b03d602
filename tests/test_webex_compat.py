"""The Webex compatibility switches (docs/webex-compatibility.md), each value tested.

Whatever the switches, the one-FINAL rule holds: the reply's FINAL is the only
turn-closing FINAL on an RPC, and it comes last.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.wav import read_wav
from byova_media.testing.simulator import RpcResult, is_boundary

TYPES = {"final": pb.VoiceVAResponse.FINAL, "chunk": pb.VoiceVAResponse.CHUNK,
         "partial": pb.VoiceVAResponse.PARTIAL}  # fmt: skip


def _one_reply_final(result: RpcResult) -> None:
    assert result.code == grpc.StatusCode.OK, result.details
    closing = [r for r in result.responses if r.response_type == pb.VoiceVAResponse.FINAL]
    closing = [r for r in closing if not is_boundary(r)]
    assert len(closing) == 1
    assert result.responses[-1] is closing[0]


@pytest.mark.parametrize("boundary", ["final", "chunk", "partial"])
@pytest.mark.parametrize("reply_mode", ["chunk", "wav"])
async def test_boundary_events_take_the_configured_type_and_never_close_the_turn(
    byova_server: Any, webex: Any, speech: Any, boundary: str, reply_mode: str
) -> None:
    server = await byova_server(
        plugins=["echo"], boundary_response_type=boundary, reply_mode=reply_mode
    )
    call = (await webex(server)).call("echo")
    _one_reply_final(await call.start())
    turn = await call.say(speech(900))
    _one_reply_final(turn)
    events = [r for r in turn.responses if is_boundary(r)]
    assert [r.output_events[0].event_type for r in events] == [
        pb.OutputEvent.START_OF_INPUT,
        pb.OutputEvent.END_OF_INPUT,
    ]
    assert {r.response_type for r in events} == {TYPES[boundary]}
    assert turn.audio  # the echo came back after the boundary events
    # A barge-in RPC over the welcome of a second call holds the rule too.
    second = (await webex(server)).call("echo")
    await second.start()
    _one_reply_final(await second.say(speech(700)))


@pytest.mark.parametrize("fact", [False, True])
async def test_wav_prompts_carry_a_fact_chunk_only_when_asked(
    byova_server: Any, webex: Any, fact: bool
) -> None:
    server = await byova_server(plugins=["echo"], reply_mode="wav", wav_fact_chunk=fact)
    welcome = await (await webex(server)).call("echo").start()
    _one_reply_final(welcome)
    wav = next(p.audio_content for p in welcome.final.prompts if p.audio_content)
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt "
    tag, channels, rate = struct.unpack_from("<HHI", wav, 20)
    assert (tag, channels, rate) == (7, 1, 8000)
    assert struct.unpack_from("<I", wav, 4)[0] == len(wav) - 8
    if fact:
        assert wav[36:40] == b"fact"
        (samples,) = struct.unpack_from("<I", wav, 44)
        assert wav[48:52] == b"data"
        assert samples == struct.unpack_from("<I", wav, 52)[0]  # one μ-law byte per sample
    else:
        assert wav[36:40] == b"data"  # the 44-byte header
    assert len(read_wav(wav).pcm) > 0  # both shapes decode


async def test_completion_after_half_close_is_reported_and_counted(
    byova_server: Any, webex: Any
) -> None:
    server = await byova_server(plugins=["echo"])
    call = (await webex(server)).call("echo")
    welcome = await call.start()
    assert welcome.completed_after == "half-close"
    report = call.report()
    assert "session_start" in report and "half-close" in report
    metrics = server.app.metrics.registry
    assert metrics.get_sample_value("byova_rpc_completions_total", {"after": "half-close"}) == 1


async def test_completion_after_the_grace_warns_once_and_is_counted(
    byova_server: Any, webex: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await byova_server(plugins=["echo"], half_close_grace_ms=100)
    call = (await webex(server)).call("echo")

    async def never_half_close(kind: Any) -> AsyncIterator[pb.VoiceVARequest]:
        yield call.request(event_input=pb.EventInput(event_type=kind))
        await asyncio.sleep(30)

    caplog.set_level(logging.WARNING, logger="byova_media.engine")
    first = await call.stream("start", never_half_close(pb.EventInput.SESSION_START), None)
    second = await call.stream("no_input", never_half_close(pb.EventInput.NO_INPUT), None)
    assert first.code == second.code == grpc.StatusCode.OK
    assert first.completed_after == second.completed_after == "grace"
    warnings = [r for r in caplog.records if "half_close_grace_ms" in r.getMessage()]
    assert len(warnings) == 1  # the first time per process only
    metrics = server.app.metrics.registry
    assert metrics.get_sample_value("byova_rpc_completions_total", {"after": "grace"}) == 2
    assert "grace" in call.report()
