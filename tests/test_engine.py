"""Protocol rules of byova-protocol.md §1, each driven through the real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import grpc
import numpy as np
import pytest

import byova_media
from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.agent import (
    Agent,
    AgentSpec,
    BargeIn,
    CustomEvent,
    EndSession,
    InputHandling,
    InputMode,
    Prompt,
    Reply,
    SessionStart,
    Transfer,
    Utterance,
)
from byova_media.audio.codecs import Encoding, pcm_to_ulaw
from byova_media.audio.wav import read_wav
from byova_media.call import Call
from byova_media.testing.simulator import RpcResult

FINAL = pb.VoiceVAResponse.FINAL
CHUNK = pb.VoiceVAResponse.CHUNK


def assert_one_final(result: RpcResult) -> None:
    """Every RPC is completed by the server with exactly one FINAL, and it comes last."""
    assert result.code == grpc.StatusCode.OK, result.details
    assert len(result.finals) == 1
    assert result.responses[-1].response_type == FINAL


class Recorder(Agent):
    """A test agent that records what it was given and answers from a script."""

    def __init__(self, log: list[tuple[str, Any]], long_prompt_s: float = 0.0) -> None:
        self.log = log
        self.long_prompt_s = long_prompt_s

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        self.log.append(("start", dict(start.parameters)))
        call.transcript = "Agent: hello"
        if self.long_prompt_s:
            return Reply.say(_slow_stream(self.long_prompt_s, self.log), text="long", barge_in=True)
        return Reply.say(b"\x7f" * 400, text="hello", barge_in=True)

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        self.log.append(("utterance", utterance.duration_ms))
        return Reply.say(
            utterance.ulaw(),
            input_mode=InputMode.VOICE,
            input_handling=InputHandling(no_input_timeout_ms=1234),
        )

    async def on_dtmf(self, call: Call, digits: str) -> Reply:
        self.log.append(("dtmf", digits))
        return Reply(event=CustomEvent("digits", {"digits": digits}))

    async def on_no_input(self, call: Call) -> Reply:
        self.log.append(("no_input", None))
        return Reply(event=EndSession(metadata={"reason": "no_input"}), transcript="Agent: bye")

    async def on_custom_event(self, call: Call, name: str, parameters: Mapping[str, Any]) -> Reply:
        self.log.append(("custom", (name, dict(parameters))))
        return Reply(event=Transfer(metadata={"queue": parameters.get("queue", "")}))

    async def on_barge_in(self, call: Call, barge_in: BargeIn) -> None:
        self.log.append(("barge_in", barge_in))

    async def on_end(self, call: Call, reason: str) -> None:
        self.log.append(("end", reason))


async def _slow_stream(seconds: float, log: list[tuple[str, Any]]) -> Any:
    """A TTS-like stream: one second of μ-law per piece, produced on demand."""
    try:
        for n in range(int(seconds)):
            log.append(("piece", n))
            yield b"\xfe" * 8000
            await asyncio.sleep(0)
    finally:
        log.append(("stream_closed", None))


def recorder_plugin(log: list[tuple[str, Any]], **kwargs: Any) -> object:
    class Plugin:
        @byova_media.hookimpl
        def byova_register_agents(self, app: Any, register: Callable[[AgentSpec], None]) -> None:
            register(AgentSpec("rec", lambda call: Recorder(log, **kwargs), name="Recorder"))

    return Plugin()


@pytest.fixture
async def rec(byova_server: Any, webex: Any) -> Any:
    """A server with the recorder agent; yields (log, simulator, server)."""
    log: list[tuple[str, Any]] = []
    server = await byova_server(extra_plugins=[("rec", recorder_plugin(log))])
    return log, await webex(server), server


async def test_state_survives_across_rpcs(rec: Any, speech: Any) -> None:
    log, sim, _ = rec
    call = sim.call("rec")
    welcome = await call.start({"department": "sales"})
    assert_one_final(welcome)
    turn = await call.say(speech(1200))
    assert_one_final(turn)
    assert ("start", {"department": "sales"}) in log
    assert any(kind == "utterance" for kind, _ in log)
    assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert len(turn.audio) >= 8 * 1000  # the echoed utterance came back


async def test_start_of_input_never_on_silence(rec: Any) -> None:
    log, sim, _ = rec
    call = sim.call("rec")
    await call.start()
    result = await call.say(np.zeros(8 * 1500, dtype=np.int16), trail_silence_ms=0)
    assert_one_final(result)
    assert result.events == []
    assert not any(kind == "utterance" for kind, _ in log)


async def test_end_of_input_stops_the_caller_audio(rec: Any, speech: Any) -> None:
    _, sim, _ = rec
    call = sim.call("rec")
    await call.start()
    result = await call.say(speech(800), trail_silence_ms=5000)
    assert result.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    total = (200 + 800 + 5000) // 20
    assert result.frames_sent < total  # the simulator stopped at END_OF_INPUT
    eoi = result.time_of("END_OF_INPUT")
    first_audio = next(t for t, what in result.timeline if what == "CHUNK audio")
    assert eoi is not None and eoi <= first_audio


@pytest.mark.parametrize("encoding", [Encoding.MULAW, Encoding.ALAW, Encoding.L16])
async def test_every_input_encoding_is_decoded(rec: Any, speech: Any, encoding: Encoding) -> None:
    log, sim, _ = rec
    call = sim.call("rec")
    await call.start()
    result = await call.say(speech(1000), encoding=encoding)
    assert result.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    durations = [ms for kind, ms in log if kind == "utterance"]
    assert durations and 900 <= durations[0] <= 1600


async def test_chunk_mode_sends_raw_ulaw_chunks_then_an_empty_final(rec: Any, speech: Any) -> None:
    _, sim, _ = rec
    call = sim.call("rec")
    await call.start()
    result = await call.say(speech(2000))
    chunks = [r for r in result.responses if r.response_type == CHUNK and r.prompts]
    assert chunks
    for response in chunks:
        audio = response.prompts[0].audio_content
        assert 100 <= len(audio) <= 65536
        assert not audio.startswith(b"RIFF")
    final = result.final
    assert final is not None and not any(p.audio_content for p in final.prompts)
    assert (
        final.input_mode == pb.INPUT_VOICE if hasattr(pb, "INPUT_VOICE") else final.input_mode == 1
    )
    assert final.input_handling_config.speech_timers.no_input_timeout_msec == 1234


async def test_wav_mode_sends_one_final_with_whole_wavs(
    byova_server: Any, webex: Any, speech: Any
) -> None:
    log: list[tuple[str, Any]] = []
    server = await byova_server(extra_plugins=[("rec", recorder_plugin(log))], reply_mode="wav")
    call = (await webex(server)).call("rec")
    welcome = await call.start()
    assert_one_final(welcome)
    assert [r.response_type for r in welcome.responses] == [FINAL]
    wav = welcome.final.prompts[0].audio_content
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert int.from_bytes(wav[20:22], "little") == 7  # μ-law
    assert int.from_bytes(wav[24:28], "little") == 8000
    turn = await call.say(speech(1000))
    assert_one_final(turn)
    assert not any(
        p.audio_content for r in turn.responses if r.response_type == CHUNK for p in r.prompts
    )
    assert read_wav(turn.final.prompts[0].audio_content).sample_rate == 8000


async def test_dtmf_takes_two_rpcs_and_zero_is_enum_ten(rec: Any) -> None:
    log, sim, _ = rec
    call = sim.call("rec")
    await call.start()
    result = await call.dtmf("0#")
    start_of_dtmf = call.history[-2]
    assert start_of_dtmf.kind == "start_of_dtmf"
    assert_one_final(start_of_dtmf)
    assert start_of_dtmf.responses[0].prompts == []
    assert_one_final(result)
    assert ("dtmf", "0#") in log
    assert result.events == ["CUSTOM_EVENT"]
    assert result.event_metadata == {"digits": "0#"}


async def test_no_input_reaches_the_agent_and_terminal_shape(rec: Any) -> None:
    log, sim, server = rec
    call = sim.call("rec")
    await call.start()
    result = await call.no_input()
    assert_one_final(result)
    final = result.final
    assert result.events == ["SESSION_END"]
    assert not final.HasField("input_handling_config")  # terminal-only shape
    assert final.session_transcript.text == "Agent: bye"
    assert ("end", "agent_end") in log
    assert len(server.engine.registry) == 0


async def test_custom_event_reaches_the_agent(rec: Any) -> None:
    log, sim, _ = rec
    call = sim.call("rec")
    await call.start()
    result = await call.custom_event("route", {"queue": "billing"})
    assert ("custom", ("route", {"queue": "billing"})) in log
    assert result.events == ["TRANSFER_TO_AGENT"]
    assert result.event_metadata == {"queue": "billing"}


async def test_caller_hang_up_releases_the_conversation(rec: Any) -> None:
    log, sim, server = rec
    call = sim.call("rec")
    await call.start()
    assert len(server.engine.registry) == 1
    result = await call.hang_up()
    assert_one_final(result)
    assert result.final.session_transcript.text == "Agent: hello"
    assert ("end", "caller_hangup") in log
    assert len(server.engine.registry) == 0


async def test_conversation_without_session_start_is_adopted(rec: Any, speech: Any) -> None:
    log, sim, _ = rec
    call = sim.call("rec")
    result = await call.say(speech(1000))
    assert_one_final(result)
    assert result.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert not any(kind == "start" for kind, _ in log)


async def test_overlapping_rpcs_and_barge_in_stop_the_stream(
    byova_server: Any, webex: Any, speech: Any
) -> None:
    log: list[tuple[str, Any]] = []
    server = await byova_server(
        extra_plugins=[("rec", recorder_plugin(log, long_prompt_s=30))], chunk_lead_ms=1000
    )
    sim = await webex(server, realtime=True)
    call = sim.call("rec")
    welcome = asyncio.create_task(call.start())
    await asyncio.sleep(0.3)
    assert not welcome.done()  # RPC 1 is still streaming its welcome
    turn = await call.say(speech(600), lead_silence_ms=600)
    first = await welcome
    assert_one_final(first)
    assert_one_final(turn)
    barges = [b for kind, b in log if kind == "barge_in"]
    assert len(barges) == 1
    assert 500 <= barges[0].heard_ms <= barges[0].sent_ms
    pieces = [n for kind, n in log if kind == "piece"]
    assert len(pieces) < 10  # synthesis stopped long before the 30 s prompt was made
    assert ("stream_closed", None) in log


async def test_terminal_prompts_are_never_bargeable(byova_server: Any, webex: Any) -> None:
    class Bye(Agent):
        async def on_start(self, call: Call, start: SessionStart) -> Reply:
            return Reply(prompts=[Prompt(audio=b"\xff" * 800, barge_in=True)], event=EndSession())

    class Plugin:
        @byova_media.hookimpl
        def byova_register_agents(self, app: Any, register: Any) -> None:
            register(AgentSpec("bye", lambda call: Bye()))

    server = await byova_server(extra_plugins=[("bye", Plugin())])
    result = await (await webex(server)).call("bye").start()
    assert_one_final(result)
    prompts = [p for r in result.responses for p in r.prompts if p.audio_content]
    assert prompts and not any(p.is_barge_in_enabled for p in prompts)
    assert result.events == ["SESSION_END"]


async def stream_until_end_of_input(sim: Any, messages: list[pb.VoiceVARequest]) -> list[Any]:
    """Write raw requests the way Webex does: stop at END_OF_INPUT, half-close, read all."""
    call = sim.stub.ProcessCallerInput()
    responses: list[Any] = []
    eoi = asyncio.Event()

    async def read() -> None:
        async for response in call:
            responses.append(response)
            events = [e.event_type for e in response.output_events]
            if pb.OutputEvent.END_OF_INPUT in events:
                eoi.set()

    reader = asyncio.create_task(read())
    for message in messages:
        if eoi.is_set():
            break
        await call.write(message)
    await call.done_writing()
    await reader
    return responses


async def test_unspecified_encoding_falls_back_to_ulaw_8k_and_tiny_packets_are_ignored(
    rec: Any, speech: Any
) -> None:
    log, sim, _ = rec
    ulaw = pcm_to_ulaw(np.concatenate([speech(1000), np.zeros(8 * 1500, dtype=np.int16)]))
    frames = [ulaw[i : i + 160] for i in range(0, len(ulaw) - 159, 160)]

    async def requests() -> Any:
        yield pb.VoiceVARequest(
            conversation_id="fallback", virtual_agent_id="rec", audio_input=pb.VoiceInput()
        )  # no encoding, no rate
        for _ in range(3):
            yield pb.VoiceVARequest(
                conversation_id="fallback", audio_input=pb.VoiceInput(caller_audio=b"\x01\x02\x03")
            )
        for frame in frames:
            yield pb.VoiceVARequest(
                conversation_id="fallback", audio_input=pb.VoiceInput(caller_audio=frame)
            )

    messages = [m async for m in requests()]
    responses = await stream_until_end_of_input(sim, messages)
    events = [r.output_events[0].event_type for r in responses if r.output_events]
    assert events[:2] == [pb.OutputEvent.START_OF_INPUT, pb.OutputEvent.END_OF_INPUT]
    durations = [ms for kind, ms in log if kind == "utterance"]
    assert durations and 900 <= durations[0] <= 1600


async def test_l16_at_16_khz_is_resampled(rec: Any, speech: Any) -> None:
    log, sim, _ = rec
    pcm16k = speech(1000, sample_rate=16000)
    pcm16k = np.concatenate([pcm16k, np.zeros(16 * 1500, dtype=np.int16)])
    payload = pcm16k.astype("<i2").tobytes()
    frames = [payload[i : i + 640] for i in range(0, len(payload) - 639, 640)]

    async def requests() -> Any:
        yield pb.VoiceVARequest(
            conversation_id="wide",
            virtual_agent_id="rec",
            audio_input=pb.VoiceInput(
                encoding=pb.VoiceInput.LINEAR16_FORMAT, sample_rate_hertz=16000
            ),
        )
        for frame in frames:
            yield pb.VoiceVARequest(
                conversation_id="wide", audio_input=pb.VoiceInput(caller_audio=frame)
            )

    messages = [m async for m in requests()]
    responses = await stream_until_end_of_input(sim, messages)
    assert any(
        r.output_events and r.output_events[0].event_type == pb.OutputEvent.END_OF_INPUT
        for r in responses
    )
    durations = [ms for kind, ms in log if kind == "utterance"]
    assert durations and 900 <= durations[0] <= 1600  # 8 kHz samples of the same duration


async def test_reordered_timestamped_frames_are_put_back_in_order(rec: Any, speech: Any) -> None:
    log, sim, server = rec
    call = sim.call("rec")
    await call.start()

    def swap_pairs(order: list[int]) -> list[int]:
        out = list(order)
        for i in range(20, len(out) - 1, 7):
            out[i], out[i + 1] = out[i + 1], out[i]
        return out

    said = speech(1200)
    result = await call.say(said, timestamps=True, frame_order=swap_pairs)
    assert result.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert server.app.metrics.registry.get_sample_value("byova_frames_concealed_total") <= 2
    durations = [ms for kind, ms in log if kind == "utterance"]
    assert durations and 1100 <= durations[0] <= 1800
