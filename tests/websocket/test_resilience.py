"""Barge-in from a backend ``clear``, backend restarts, deaf and silent backends."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import numpy as np
from test_calls import ws_env
from websockets.asyncio.server import ServerConnection
from ws_backends import Backend, beep, frames, is_voiced, native_bot, twilio_message


async def long_talker(backend: Backend, ws: ServerConnection) -> None:
    """Twilio bot: answers the first utterance with 8 s of audio; speech over it → ``clear``."""
    voiced = quiet = replies = 0
    talking = False
    async for message in ws:
        obj = json.loads(message)
        backend.received.append(obj)
        if obj.get("event") != "media":
            continue
        if is_voiced(base64.b64decode(obj["media"]["payload"])):
            voiced += 1
            quiet = 0
            if talking:
                talking = False
                await ws.send(twilio_message("clear"))
            continue
        quiet += 1
        if voiced and quiet >= 10:
            replies += 1
            audio = beep(8000) if replies == 1 else beep(400, 300.0)
            for f in frames(audio):
                payload = base64.b64encode(f).decode()
                await ws.send(twilio_message("media", media={"payload": payload}))
            await ws.send(twilio_message("mark", mark={"name": f"reply-{replies}"}))
            talking = replies == 1
            voiced = 0


async def test_backend_clear_barges_in_the_playing_reply(
    byova_server: Any, webex: Any, backend: Any, speech: Any
) -> None:
    bot = await backend(long_talker)
    env = ws_env(bot, "twilio", reply_wait_ms="50")
    server = await byova_server(plugins=["websocket"], env=env)
    call = (await webex(server, realtime=True)).call("websocket")
    await call.start()

    first = asyncio.create_task(call.say(speech(600), trail_silence_ms=1000))
    await bot.wait_for(lambda: len(call.history) > 1 and "END_OF_INPUT" in call.history[1].events)
    await asyncio.sleep(0.5)  # the 8 s answer is playing; the caller talks over it
    second = await call.say(speech(600), lead_silence_ms=100, trail_silence_ms=1500)
    interrupted = await first

    assert len(interrupted.audio) < 8 * 8000  # the long answer was cut short
    assert second.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert len(second.audio) >= 8 * 300  # the bot's answer to the interruption
    barged = server.app.metrics.registry.get_sample_value("byova_barge_ins_total")
    assert barged == 1.0
    # Cleared audio's mark is echoed at once, as Twilio does.
    await bot.wait_for(lambda: any(m["mark"]["name"] == "reply-1" for m in bot.of_type("mark")))


async def test_backend_killed_and_restarted_mid_call(
    byova_server: Any, webex: Any, backend: Any, speech: Any
) -> None:
    bot = await backend(native_bot)
    server = await byova_server(plugins=["websocket"], env=ws_env(bot, down_limit_ms="8000"))
    call = (await webex(server)).call("websocket")
    await call.start()
    await bot.kill()
    await asyncio.sleep(0.4)  # the connector retries with backoff meanwhile
    await bot.start()  # same port
    await bot.wait_for(lambda: bool(bot.of_type("resume")))
    resume = bot.of_type("resume")[0]
    assert resume["conversation_id"] == call.conversation_id
    assert bot.connections == 2

    turn = await call.say(speech(800))
    assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert len(turn.audio) >= 2400  # the restarted bot answered; the caller was told nothing
    assert "TRANSFER_TO_AGENT" not in turn.events
    await call.hang_up()


async def test_backend_down_past_the_limit_transfers_mid_call(
    byova_server: Any, webex: Any, backend: Any
) -> None:
    bot = await backend(native_bot)
    env = ws_env(bot, down_limit_ms="300", fallback="transfer")
    server = await byova_server(plugins=["websocket"], env=env)
    call = (await webex(server, realtime=True)).call("websocket")
    await call.start()
    await bot.kill()
    turn = await call.say(np.zeros(8 * 200, dtype=np.int16), trail_silence_ms=3000)
    assert turn.events == ["START_OF_INPUT", "END_OF_INPUT", "TRANSFER_TO_AGENT"]
    assert turn.event_metadata == {"reason": "backend_unavailable"}


async def test_backend_that_never_answers_gets_the_fallback(byova_server: Any, webex: Any) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def mute(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept TCP, never answer the WebSocket handshake

    tcp = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    env = {
        "BYOVA_MEDIA_WEBSOCKET_URL": f"ws://127.0.0.1:{port}/",
        "BYOVA_MEDIA_WEBSOCKET_OPEN_TIMEOUT_MS": "200",
        "BYOVA_MEDIA_WEBSOCKET_DOWN_LIMIT_MS": "600",
        "BYOVA_MEDIA_WEBSOCKET_FALLBACK": "end",
        "BYOVA_MEDIA_WEBSOCKET_FALLBACK_TEXT": "We are closed.",
    }
    try:
        server = await byova_server(plugins=["websocket"], env=env)
        call = (await webex(server)).call("websocket")
        welcome = await call.start()
        assert welcome.events == ["SESSION_END"]
        assert welcome.event_metadata == {"reason": "backend_unavailable"}
        assert "We are closed." in welcome.prompt_texts
        assert len(accepted) >= 2  # it retried before giving up
        fallbacks = server.app.metrics.registry.get_sample_value(
            "byova_ws_fallbacks_total", {"virtual_agent": "websocket"}
        )
        assert fallbacks == 1.0
    finally:
        for writer in accepted:
            writer.close()
        tcp.close()
        await tcp.wait_closed()


async def deaf_bot(backend: Backend, ws: ServerConnection) -> None:
    """Reads the opening messages, then never reads again."""
    backend.received.append(json.loads(await ws.recv()))
    await ws.wait_closed()


async def test_deaf_backend_stays_bounded_and_other_calls_are_unaffected(
    byova_server: Any, webex: Any, backend: Any, speech: Any
) -> None:
    deaf = await backend(deaf_bot)
    good = await backend(native_bot)
    agents = {
        "deaf": {"url": deaf.url, "caller_queue_ms": 200, "reply_wait_ms": 200},
        "good": {"url": good.url},
    }
    env = {
        "BYOVA_MEDIA_WEBSOCKET_AGENTS": json.dumps(agents),
        **{k: v for k, v in ws_env(good).items() if not k.endswith("_URL")},
    }
    server = await byova_server(plugins=["websocket"], env=env)
    sim = await webex(server)
    stuck, fine = sim.call("deaf"), sim.call("good")
    await asyncio.gather(stuck.start(), fine.start())
    stuck_turn, fine_turn = await asyncio.gather(stuck.say(speech(4000)), fine.say(speech(800)))
    assert fine_turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert len(fine_turn.audio) >= 2400
    assert stuck_turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert stuck_turn.code.name == "OK"
    await asyncio.gather(stuck.hang_up(), fine.hang_up())
