"""Calls driven through the Webex simulator into real WebSocket backends on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
from ws_backends import Backend, is_voiced, native_bot, twilio_echo_bot

from byova_media.audio.codecs import ulaw_to_pcm

FAST = {
    "reply_idle_ms": "300",
    "reply_wait_ms": "1500",
    "reconnect_initial_ms": "50",
    "reconnect_max_ms": "200",
}


def ws_env(backend: Backend, protocol: str = "native", **extra: str) -> dict[str, str]:
    settings = {"url": backend.url, "protocol": protocol, **FAST, **extra}
    return {f"BYOVA_MEDIA_WEBSOCKET_{k.upper()}": v for k, v in settings.items()}


async def test_native_welcome_turn_and_hang_up(
    byova_server: Any, webex: Any, backend: Any, speech: Any
) -> None:
    bot = await backend(native_bot)
    env = ws_env(bot, headers=json.dumps({"Authorization": "Bearer s3cret"}))
    server = await byova_server(plugins=["websocket"], env=env)
    call = (await webex(server)).call("websocket")

    welcome = await call.start(parameters={"department": "sales", "tier": 2})
    assert len(welcome.audio) >= 3200  # the bot's 400 ms greeting, streamed as CHUNKs
    assert welcome.final is not None
    start = bot.of_type("start")[0]
    assert start["parameters"] == {"department": "sales", "tier": 2}
    assert start["conversation_id"] == call.conversation_id
    assert bot.headers[0]["authorization"] == "Bearer s3cret"

    turn = await call.say(speech(800))
    assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert len(turn.audio) >= 2400  # the 300 ms answer
    assert bot.of_type("end_of_input")
    caller_audio = b"".join(m for m in bot.received if isinstance(m, bytes))
    assert is_voiced(caller_audio)

    bye = await call.hang_up()
    assert bye.final.session_transcript.text == "caller: (beep)"
    await bot.wait_for(lambda: bool(bot.of_type("hangup")))
    assert bot.connections == 1  # one socket for the whole call


async def test_native_dtmf_transfer_and_end(byova_server: Any, webex: Any, backend: Any) -> None:
    bot = await backend(native_bot)
    server = await byova_server(plugins=["websocket"], env=ws_env(bot))
    sim = await webex(server)
    call = sim.call("websocket")
    await call.start()
    tones = await call.dtmf("5")
    assert len(tones.audio) >= 1600
    transfer = await call.dtmf("0")
    assert transfer.events == ["TRANSFER_TO_AGENT"]
    assert transfer.event_metadata == {"queue": "billing"}
    assert bot.of_type("dtmf")[-1]["digits"] == "0"

    other = sim.call("websocket")
    await other.start()
    end = await other.dtmf("9")
    assert end.events == ["SESSION_END"]


async def test_twilio_echo_round_trip(
    byova_server: Any, webex: Any, backend: Any, speech: Any
) -> None:
    bot = await backend(twilio_echo_bot)
    env = ws_env(bot, "twilio", reply_wait_ms="100")
    server = await byova_server(plugins=["websocket"], env=env)
    call = (await webex(server, realtime=True)).call("websocket")
    await call.start(parameters={"lang": "en"})
    assert [m["event"] for m in bot.received[:2]] == ["connected", "start"]
    params = bot.received[1]["start"]["customParameters"]
    assert params["lang"] == "en" and params["byova_conversation_id"] == call.conversation_id

    said = speech(600)
    turn = await call.say(said, trail_silence_ms=1500)
    # The backend owns turn-taking: its echo is what ends the caller's turn.
    assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    echoed = ulaw_to_pcm(turn.audio)
    assert len(echoed) >= 0.8 * len(said)
    assert np.sqrt(np.mean(echoed.astype(np.float64) ** 2)) > 500
    # The bot's mark comes back once its audio has played.
    await bot.wait_for(lambda: any(m["mark"]["name"] == "reply-1" for m in bot.of_type("mark")))

    media = bot.of_type("media")
    assert [int(m["media"]["chunk"]) for m in media[:5]] == [1, 2, 3, 4, 5]
    transfer = await call.dtmf("0")
    assert transfer.events == ["TRANSFER_TO_AGENT"]
    assert bot.of_type("dtmf")[-1]["dtmf"]["digit"] == "0"
    await bot.wait_for(lambda: bool(bot.of_type("stop")))


async def test_twilio_backend_is_fed_silence_between_turns(
    byova_server: Any, webex: Any, backend: Any
) -> None:
    bot = await backend(twilio_echo_bot)
    server = await byova_server(plugins=["websocket"], env=ws_env(bot, "twilio"))
    call = (await webex(server)).call("websocket")
    await call.start()
    before = len(bot.of_type("media"))
    await asyncio.sleep(0.5)  # no RPC open: the connector keeps the 50 frames/s clock going
    fed = len(bot.of_type("media")) - before
    assert 10 <= fed <= 40
    await call.hang_up()
