"""The pipeline agent with scripted parts: streaming, tools, events, barge-in, DTMF."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, Mapping
from typing import Any

import numpy as np
import pytest

import byova_media
from byova_media.adapters import LlmEvent, Message, TextDelta, ToolCall
from byova_media.agent import (
    AgentSpec,
    BargeIn,
    CustomEvent,
    EndSession,
    Reply,
    Transfer,
    Utterance,
)
from byova_media.audio.codecs import pcm_to_ulaw, ulaw_to_pcm
from byova_media.call import Call
from byova_media.pipeline import (
    PipelineAgent,
    PipelineParts,
    PipelineSettings,
    Tool,
    dtmf_note,
    no_input_note,
)
from tests.pipeline._fakes import CountingTTS, FixedSTT, HearingSTT, ScriptedLLM, make_call

UTTERANCE = Utterance(pcm=np.zeros(1600, dtype=np.int16), sample_rate=8000)


def _agent(llm: ScriptedLLM, tts: CountingTTS | None = None, **settings: Any) -> PipelineAgent:
    parts = PipelineParts(stt=FixedSTT("hello"), llm=llm, tts=tts or CountingTTS())
    tools = settings.pop("tools", ())
    return PipelineAgent(parts, PipelineSettings(**settings), tools=tools)


def _words(text: str) -> list[LlmEvent]:
    return [TextDelta(w + " ") for w in text.split()]


async def _drain(reply: Reply) -> bytes:
    audio = reply.prompts[0].audio
    assert isinstance(audio, AsyncIterable)
    return b"".join([chunk async for chunk in audio])


async def test_first_audio_before_the_model_finishes() -> None:
    gate = asyncio.Event()
    llm = ScriptedLLM(
        [_words("First sentence here. Second sentence follows.")], gate=gate, gate_at=3
    )
    tts = CountingTTS()
    agent = _agent(llm, tts)
    call = make_call()
    reply = await agent.on_utterance(call, UTTERANCE)
    audio = reply.prompts[0].audio
    assert isinstance(audio, AsyncIterable)
    stream = aiter(audio)
    # The model is paused after its first sentence, yet that sentence is already audio.
    assert reply.prompts[0].barge_in and reply.event is None
    first = await anext(stream)
    assert first and tts.texts == ["First sentence here."]
    assert len(llm.requests) == 1 and llm.closed == 0  # still generating
    gate.set()
    rest = b"".join([chunk async for chunk in stream])
    assert tts.texts == ["First sentence here.", "Second sentence follows."]
    assert len(first) + len(rest) == sum(len(t) for t in tts.texts) * 80
    assert agent.history.messages[-1].content == "First sentence here. Second sentence follows."
    assert {"stt_final", "llm_first_token", "tts_first_audio"} <= call.marks.keys()
    assert call.marks["stt_final"] <= call.marks["llm_first_token"] <= call.marks["tts_first_audio"]


async def test_transfer_tool_makes_a_non_bargeable_terminal_reply() -> None:
    llm = ScriptedLLM([[ToolCall("transfer_to_agent", {"intent": "x"}), *_words("Hold on.")]])
    agent = _agent(llm)
    call = make_call()
    reply = await agent.on_utterance(call, UTTERANCE)
    assert reply.event == Transfer(metadata={"intent": "x"})
    assert not reply.prompts[0].barge_in
    await _drain(reply)
    assert call.transcript == "Caller: hello\nAgent: Hold on."
    assert call.summary is not None and "transferred" in call.summary


async def test_end_call_without_words_has_no_prompt() -> None:
    agent = _agent(ScriptedLLM([[ToolCall("end_call", {"reason": "done"})]]))
    reply = await agent.on_utterance(make_call(), UTTERANCE)
    assert reply.event == EndSession(metadata={"reason": "done"})
    assert reply.prompts == []


async def test_an_event_chosen_after_streaming_began_lands_on_the_reply() -> None:
    llm = ScriptedLLM([[*_words("Goodbye now."), ToolCall("end_call", {})]])
    agent = _agent(llm)
    reply = await agent.on_utterance(make_call(), UTTERANCE)
    await _drain(reply)
    assert isinstance(reply.event, EndSession)


async def test_user_tool_results_go_back_to_the_model() -> None:
    seen: list[Mapping[str, Any]] = []

    async def balance(call: Call, arguments: Mapping[str, Any]) -> str:
        seen.append(arguments)
        return "42 dollars"

    async def escalate(call: Call, arguments: Mapping[str, Any]) -> CustomEvent:
        return CustomEvent("escalate", dict(arguments))

    llm = ScriptedLLM(
        [
            [ToolCall("balance", {"account": "7"}, "c1")],
            [*_words("Your balance is 42 dollars."), ToolCall("escalate", {"level": 2}, "c2")],
        ]
    )
    tools = [Tool.define("balance", "Balance", balance), Tool.define("escalate", "Up", escalate)]
    agent = _agent(llm, tools=tools)
    reply = await agent.on_utterance(make_call(), UTTERANCE)
    await _drain(reply)
    assert seen == [{"account": "7"}]
    second = llm.requests[1]
    assert second[-1].role == "tool" and second[-1].content == "42 dollars"
    assert second[-1].tool_call_id == "c1"
    assert reply.event == CustomEvent("escalate", {"level": 2})


async def test_unknown_tool_is_reported_to_the_model() -> None:
    llm = ScriptedLLM([[ToolCall("nope", {}, "z")], _words("Sorry.")])
    reply = await _agent(llm).on_utterance(make_call(), UTTERANCE)
    await _drain(reply)
    assert "no tool named nope" in llm.requests[1][-1].content


async def test_model_failure_before_any_text_raises_for_the_engine() -> None:
    class Broken(ScriptedLLM):
        async def stream(self, messages: Any, tools: Any = ()) -> Any:
            raise RuntimeError("model down")
            yield  # pragma: no cover

    with pytest.raises(RuntimeError, match="model down"):
        await _agent(Broken([])).on_utterance(make_call(), UTTERANCE)


async def test_dtmf_no_input_and_events_reach_the_model_as_notes() -> None:
    llm = ScriptedLLM([_words("a"), _words("b"), _words("c")])
    agent = _agent(llm)
    call = make_call()
    for reply in (
        await agent.on_dtmf(call, "42#"),
        await agent.on_no_input(call),
        await agent.on_custom_event(call, "vip", {"tier": "gold"}),
    ):
        await _drain(reply)
    notes = [r[-1].content for r in llm.requests]
    assert notes == [dtmf_note("42#"), no_input_note(), "[Event vip: {'tier': 'gold'}]"]
    assert notes[0] == "[The caller pressed the keys: 4 2 #]"


async def test_barge_in_stops_synthesis_and_keeps_only_what_was_heard() -> None:
    text = " ".join(f"Sentence number {n} is here." for n in range(20))
    tts = CountingTTS(ms_per_char=50)  # each sentence about 1.2 s of audio
    llm = ScriptedLLM([_words(text)])
    agent = _agent(llm, tts)
    call = make_call()
    reply = await agent.on_utterance(call, UTTERANCE)
    audio = reply.prompts[0].audio
    assert isinstance(audio, AsyncIterable)
    stream = aiter(audio)
    got = 0
    while got < 8000 * 2:  # the engine pulled about two seconds of audio
        got += len(await anext(stream))
    await audio.aclose()  # type: ignore[attr-defined]  # what the engine does on barge-in
    await agent.on_barge_in(call, BargeIn(heard_ms=1500, sent_ms=2000))
    assert len(tts.texts) < 5  # synthesis stopped long before the 20 sentences
    assert tts.closed == len(tts.texts)
    heard = agent.history.messages[-1].content
    assert heard.startswith("Sentence number 0 is here. Sentence")
    assert "number 3" not in heard
    assert call.transcript is not None and call.transcript.endswith(heard)


async def test_welcome_is_spoken_from_settings() -> None:
    tts = CountingTTS()
    agent = _agent(ScriptedLLM([]), tts, welcome_text="Hi. How can I help?")
    reply = await agent.on_start(make_call(), None)  # type: ignore[arg-type]
    await _drain(reply)
    assert tts.texts == ["Hi.", "How can I help?"]
    assert reply.prompts[0].barge_in


async def test_snapshot_carries_history_and_transcript_to_a_new_agent() -> None:
    async def balance(call: Call, arguments: Mapping[str, Any]) -> str:
        return "42 dollars"

    llm = ScriptedLLM([[ToolCall("balance", {"account": "7"}, "c1")], _words("It is 42.")])
    agent = _agent(llm, tools=[Tool.define("balance", "Balance", balance)])
    await _drain(await agent.on_utterance(make_call(), UTTERANCE))
    state = json.loads(json.dumps(agent.snapshot()))  # what Redis would store

    later = ScriptedLLM([_words("Still 42.")])
    moved = _agent(later, tools=[Tool.define("balance", "Balance", balance)])
    moved.restore(state)
    call = make_call()
    await _drain(await moved.on_dtmf(call, "1"))
    assert later.requests[0][:-1] == llm.requests[1] + [Message("assistant", "It is 42.")]
    assert call.transcript is not None
    assert call.transcript.startswith("Caller: hello\nAgent: It is 42.\n")


async def test_a_streaming_recogniser_hears_the_turn_not_the_wait_before_it(
    byova_server: Any, webex: Any, speech: Any
) -> None:
    """Only the turn's frames, from its pre-roll on, reach the stream (issue 14).

    A recogniser fed the seconds of silence Webex streams before the caller speaks adapts
    to them: pocketsphinx then heard "i want to talk to an agent" as "i want to when are
    you open".
    """
    stt = HearingSTT("hello")
    llm = ScriptedLLM([_words("Hi.")] * 3)
    parts = PipelineParts(stt=stt, llm=llm, tts=CountingTTS())

    class Plugin:
        @byova_media.hookimpl
        def byova_register_agents(self, app: Any, register: Any) -> None:
            register(AgentSpec("pipe", lambda call: PipelineAgent(parts)))

    await byova_server(extra_plugins=[("pipe", Plugin())], vad="energy", turn_detector="none")
    call = (await webex()).call("pipe")
    await call.start()
    voice = speech(1000)
    result = await call.say(voice, lead_silence_ms=6000, trail_silence_ms=2000)
    assert result.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    (heard,) = stt.streams
    pcm = np.concatenate(heard)
    # Pre-roll and attack (300 ms), the speech, the 700 ms of silence that ended the turn.
    assert len(pcm) <= (300 + 40 + 1000 + 700 + 40) * 8
    assert np.count_nonzero(pcm[: 8 * 400] == 0) >= 8 * 200  # it starts with the pre-roll
    sent = ulaw_to_pcm(pcm_to_ulaw(voice))  # what the simulator's μ-law frames carry
    start = int(np.flatnonzero(pcm)[0])
    assert np.array_equal(pcm[start : start + len(sent) // 2], sent[: len(sent) // 2])
