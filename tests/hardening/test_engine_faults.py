"""Hostile input and faulty agents cost no more than their own call (issue 12, engine side).

Every test drives a real ``byova-media serve`` process over gRPC on 127.0.0.1; the
faulty agents live in ``faulty_agents.py`` beside this file, loaded with ``--plugin``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.testing.process import ServedProcess, serve_process
from byova_media.testing.simulator import RpcResult, SimulatedCall, WebexSimulator

HERE = Path(__file__).resolve().parent
PIPE = "/com.cisco.wcc.ccai.media.v1.VoiceVirtualAgent/ProcessCallerInput"
QUICK = {
    "BYOVA_MEDIA_FIRST_MESSAGE_TIMEOUT_MS": "300",
    "BYOVA_MEDIA_STREAM_IDLE_TIMEOUT_MS": "300",
    "BYOVA_MEDIA_AGENT_TIMEOUT_S": "5",
    "BYOVA_MEDIA_LOOP_STALL_WARN_MS": "300",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
}


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[ServedProcess]:
    async with serve_process("--plugin", "echo", "--plugin", "faulty_agents", env=QUICK) as s:
        yield s


@pytest_asyncio.fixture(loop_scope="module")
async def sim(server: ServedProcess) -> AsyncIterator[WebexSimulator]:
    async with WebexSimulator(f"127.0.0.1:{server.port}") as simulator:
        yield simulator


def _no_traceback(server: ServedProcess) -> None:
    assert "Traceback" not in server.output, server.output[-3000:]


async def _audio(call: SimulatedCall, *messages: pb.VoiceInput, hold: bool = False) -> RpcResult:
    """An audio RPC of ``messages``; ``hold`` keeps it open without half-closing."""

    async def requests() -> AsyncIterator[pb.VoiceVARequest]:
        for message in messages:
            yield call.request(audio_input=message)
        if hold:
            await asyncio.sleep(30)

    return await call.stream("audio", requests(), None)


async def _started(sim: WebexSimulator, agent: str = "echo") -> SimulatedCall:
    call = sim.call(agent)
    assert (await call.start()).code == grpc.StatusCode.OK
    return call


# --- fault 1 and 2: sample rates ----------------------------------------------------------


@pytest.mark.parametrize("rate", [7999, 139_992, 3])
async def test_unsupported_rate_is_refused_before_any_audio_work(
    sim: WebexSimulator, server: ServedProcess, rate: int
) -> None:
    call = await _started(sim)
    settings = pb.VoiceInput(encoding=pb.VoiceInput.MULAW_FORMAT, sample_rate_hertz=rate)
    loud = pb.VoiceInput(caller_audio=bytes([0x00, 0x80] * 80))
    result = await _audio(call, settings, *[loud] * 20)
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"sample_rate_hertz {rate} is not supported" in result.details
    assert result.finals == []
    _no_traceback(server)


async def test_rate_switched_mid_turn_ends_invalid_argument_not_internal(
    sim: WebexSimulator, server: ServedProcess
) -> None:
    call = await _started(sim)
    start = pb.VoiceInput(encoding=pb.VoiceInput.MULAW_FORMAT, sample_rate_hertz=8000)
    frame = pb.VoiceInput(caller_audio=b"\xff" * 160)
    switch = pb.VoiceInput(sample_rate_hertz=7999)
    result = await _audio(call, start, frame, frame, switch, frame, frame)
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT
    _no_traceback(server)


async def test_many_concurrent_odd_rate_rpcs_cost_nothing_but_a_refusal(
    sim: WebexSimulator,
) -> None:
    calls = [await _started(sim) for _ in range(20)]
    settings = pb.VoiceInput(encoding=pb.VoiceInput.MULAW_FORMAT, sample_rate_hertz=139_992)
    frame = pb.VoiceInput(caller_audio=b"\x00" * 160)
    results = await asyncio.gather(*(_audio(c, settings, frame) for c in calls))
    assert {r.code for r in results} == {grpc.StatusCode.INVALID_ARGUMENT}
    # The server still answers a normal call at once.
    assert (await sim.call("echo").start()).code == grpc.StatusCode.OK


# --- fault 3: malformed messages ----------------------------------------------------------


async def test_random_bytes_are_invalid_argument_with_one_warning() -> None:
    async with (
        serve_process("--plugin", "echo", env=QUICK) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        method = channel.stream_stream(
            PIPE, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        codes = []
        for n in range(5):
            call = method(iter([bytes([0xFF, 0xFF, n]) * 20]))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in call:
                    pass
            codes.append(caught.value.code())
        assert set(codes) == {grpc.StatusCode.INVALID_ARGUMENT}
        await asyncio.sleep(0.2)
        refusals = [line for line in server.lines if "refused RPC" in line]
        assert len(refusals) == 1, refusals  # five refusals, one rate-limited line
        assert "malformed request message" in refusals[0]
        _no_traceback(server)


# --- fault 4: silent streams --------------------------------------------------------------


async def test_rpc_that_never_sends_a_message_gets_deadline_exceeded(
    sim: WebexSimulator,
) -> None:
    call = sim.call("echo")

    async def nothing() -> AsyncIterator[pb.VoiceVARequest]:
        await asyncio.sleep(30)
        yield call.request()

    result = await asyncio.wait_for(call.stream("audio", nothing(), None), 10)
    assert result.code == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_settings_only_audio_rpc_that_never_half_closes_is_ended(
    sim: WebexSimulator,
) -> None:
    call = await _started(sim)
    settings = pb.VoiceInput(encoding=pb.VoiceInput.MULAW_FORMAT, sample_rate_hertz=8000)
    result = await asyncio.wait_for(_audio(call, settings, hold=True), 10)
    assert result.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "no caller audio" in result.details


# --- fault 5: refused or late RPCs create no state ----------------------------------------


async def test_refused_rpc_leaves_no_conversation_behind() -> None:
    env = {**QUICK, "BYOVA_MEDIA_MAX_CONVERSATIONS": "1"}
    async with (
        serve_process("--plugin", "echo", env=env) as served,
        WebexSimulator(f"127.0.0.1:{served.port}") as sim,
    ):
        bad = sim.call("echo")
        unknown = bad.request(event_input=pb.EventInput(event_type=99))  # type: ignore[arg-type]

        async def one() -> AsyncIterator[pb.VoiceVARequest]:
            yield unknown

        refused = await bad.stream("custom_event", one(), None)
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
        # The one conversation slot is still free.
        assert (await sim.call("echo").start()).code == grpc.StatusCode.OK


async def test_audio_or_dtmf_after_session_end_does_not_bring_the_call_back(
    sim: WebexSimulator,
) -> None:
    call = await _started(sim)
    assert (await call.hang_up()).code == grpc.StatusCode.OK
    late = await _audio(call, pb.VoiceInput(caller_audio=b"\xff" * 160))
    assert late.code == grpc.StatusCode.FAILED_PRECONDITION
    digits = await call.dtmf("1")
    assert digits.code == grpc.StatusCode.FAILED_PRECONDITION


# --- fault 7: unbounded input is not echoed back ------------------------------------------


async def test_huge_unknown_agent_id_gets_a_short_not_found(sim: WebexSimulator) -> None:
    result = await sim.call("v" * 20_000).start()
    assert result.code == grpc.StatusCode.NOT_FOUND
    assert len(result.details) < 400
    assert "20000 chars" in result.details


# --- fault 8: agent faults end in the configured clean ending -----------------------------


@pytest.mark.parametrize(
    "agent",
    [
        "returns_str",
        "prompt_not_a_prompt",
        "event_as_string",
        "metadata_not_json",
        "huge_text",
        "huge_wav",
        "raises_cancelled",
        "factory_raises",
    ],
)
async def test_faulty_agent_gets_the_clean_ending(
    sim: WebexSimulator, server: ServedProcess, agent: str
) -> None:
    result = await asyncio.wait_for(sim.call(agent).start(), 20)
    assert result.code == grpc.StatusCode.OK, result.details
    assert len(result.finals) == 1
    assert result.events == ["TRANSFER_TO_AGENT"]
    assert result.event_metadata == {"reason": "agent_error"}
    await asyncio.sleep(0.1)
    assert f"agent {agent!r}" in server.output


async def test_agent_blocking_the_loop_is_named_in_the_log(
    sim: WebexSimulator, server: ServedProcess, speech: Any
) -> None:
    call = await _started(sim, "blocks_loop")
    turn = await call.say(speech(600), trail_silence_ms=1500)
    assert turn.code == grpc.StatusCode.OK
    await asyncio.sleep(0.3)
    stalls = [line for line in server.lines if "event loop blocked" in line]
    assert len(stalls) == 1, server.output[-2000:]  # once per stall
    assert "'blocks_loop'" in stalls[0] and "faulty_agents.py" in stalls[0]
    assert call.conversation_id in stalls[0]  # the line carries the call's id
