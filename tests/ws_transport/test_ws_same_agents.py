"""One engine, two transports: the same echo and demo conversations over gRPC and WebSocket.

The agents are unchanged and cannot tell which transport serves them; the assertions are
the same for both, on what the caller gets back.
"""

from __future__ import annotations

from typing import Any

import pytest

import byova_media
from byova_media.agent import Agent, AgentSpec, EndSession, Reply
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.tones import tone
from tests.plugins._speech import spoken, telephone

TRANSPORTS = pytest.mark.parametrize("transport", ["grpc", "ws"])


@TRANSPORTS
async def test_echo_conversation(
    byova_server: Any, webex: Any, speech: Any, transport: str
) -> None:
    await byova_server(plugins=["echo"], ws_port=0)
    sim = await webex(transport=transport)
    assert [a.virtual_agent_id for a in (await sim.list_agents()).virtual_agents] == ["echo"]
    call = sim.call("echo")
    welcome = await call.start()
    assert welcome.final is not None and welcome.audio
    assert welcome.prompt_texts[0].startswith("Welcome to the echo agent")
    said = speech(1000)
    echoed = await call.say(said)
    assert echoed.events == ["START_OF_INPUT", "END_OF_INPUT"]
    assert abs(len(echoed.audio) - len(said)) < 8 * 600
    digits = await call.dtmf("12")
    assert digits.prompt_texts == ["You pressed 1 2"]
    assert (await call.no_input()).prompt_texts[0].startswith("I did not hear")
    transfer = await call.dtmf("0")
    assert transfer.events == ["TRANSFER_TO_AGENT"]
    assert transfer.event_metadata == {"reason": "caller_request"}
    for result in call.history:
        assert result.code.name == "OK", (result.kind, result.details)


@TRANSPORTS
async def test_demo_conversation(byova_server: Any, webex: Any, transport: str) -> None:
    await byova_server(plugins=["demo"], ws_port=0)
    call = (await webex(transport=transport)).call("demo")
    welcome = await call.start()
    assert "opening hours" in welcome.prompt_texts[0]
    digits = await call.dtmf("42")
    assert digits.prompt_texts[0].startswith("You pressed 4, 2")
    pcm, rate = await spoken("What are your opening hours?")
    hours = await call.say(telephone(pcm, rate), sample_rate=8000)
    assert hours.events == ["START_OF_INPUT", "END_OF_INPUT"]
    assert "Monday to Friday" in " ".join(hours.prompt_texts)
    ended = await call.hang_up()
    assert ended.code.name == "OK"
    assert "Caller: what are your opening hours" in ended.final.session_transcript.text


class Goodbye(Agent):
    """Ends the call at once with a prompt it asks to be bargeable (the rule forbids it)."""

    async def on_start(self, call: Any, start: Any) -> Reply:
        prompt = Reply.say(pcm_to_ulaw(tone(440, 400)), text="Goodbye", barge_in=True)
        return Reply(prompts=prompt.prompts, event=EndSession(metadata={"reason": "done"}))


class GoodbyePlugin:
    @byova_media.hookimpl
    def byova_register_agents(self, app: Any, register: Any) -> None:
        register(AgentSpec("goodbye", lambda call: Goodbye(), name="Goodbye"))


@TRANSPORTS
async def test_terminal_prompt_is_never_bargeable(
    byova_server: Any, webex: Any, transport: str
) -> None:
    await byova_server(extra_plugins=[("goodbye", GoodbyePlugin())], ws_port=0)
    result = await (await webex(transport=transport)).call("goodbye").start()
    assert result.events == ["SESSION_END"]
    prompts = [p for r in result.responses for p in r.prompts]
    assert prompts and result.audio
    assert not any(p.is_barge_in_enabled for p in prompts)
