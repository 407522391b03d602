"""The call inspector on a real server: what it records per RPC, its routes, its limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.wav import read_wav
from byova_media.server import Server


async def _get(server: Server, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{server.http_port}{path}") as response,
    ):
        if response.content_type == "application/json":
            return response.status, await response.json()
        if response.content_type == "audio/wav":
            return response.status, await response.read()
        return response.status, await response.text()


async def _echo_call(webex: Any, speech: Any) -> Any:
    call = (await webex()).call("echo")
    await call.start()
    await call.say(speech(800))
    await call.dtmf("12")
    await call.hang_up()
    return call


async def test_off_by_default_no_routes_and_nothing_recorded(
    byova_server: Any, webex: Any, speech: Any
) -> None:
    server = await byova_server(plugins=["echo"], http_port=0)
    await _echo_call(webex, speech)
    assert server.inspector is None
    for path in ("/calls", "/calls.json", "/playground"):
        status, _ = await _get(server, path)
        assert status == 404, path


async def test_one_entry_per_rpc_in_the_order_they_opened(
    byova_server: Any, webex: Any, speech: Any
) -> None:
    server = await byova_server(plugins=["echo"], http_port=0, inspector=True)
    call = await _echo_call(webex, speech)
    status, listing = await _get(server, "/calls.json")
    assert status == 200
    assert [c["conversation_id"] for c in listing["calls"]] == [call.conversation_id]
    status, data = await _get(server, f"/calls/{call.conversation_id}.json")
    assert status == 200
    rpcs = data["rpcs"]
    assert [r["kind"] for r in rpcs] == [r.kind for r in call.history]
    assert [r["index"] for r in rpcs] == list(range(len(call.history)))
    for rpc in rpcs:
        assert rpc["status"] == "OK"
        assert rpc["open_ms"] <= rpc["half_close_ms"]
        assert rpc["open_ms"] <= rpc["complete_ms"]
        finals = [r for r in rpc["responses"] if r["type"] == "FINAL" and not r["boundary"]]
        assert len(finals) == 1
        assert rpc["responses"][-1] is finals[0]
    audio = rpcs[1]
    at = {r["event"]: r["at_ms"] for r in audio["responses"] if r["event"]}
    assert at["START_OF_INPUT"] < at["END_OF_INPUT"]
    assert any(r["audio_bytes"] and r["at_ms"] >= at["END_OF_INPUT"] for r in audio["responses"])
    assert rpcs[3]["dtmf"] == "12"
    assert "You pressed 1 2" in [r["prompt_text"] for r in rpcs[3]["responses"]]
    [turn] = data["turns"]
    assert turn["rpc"] == 1
    assert turn["speech_end_ms"] <= turn["end_of_input_ms"] <= turn["first_audio_ms"]
    assert data["ended"] == "caller_hangup"


async def test_the_page_draws_one_lane_per_rpc(byova_server: Any, webex: Any, speech: Any) -> None:
    server = await byova_server(plugins=["echo"], http_port=0, inspector=True)
    call = await _echo_call(webex, speech)
    status, page = await _get(server, f"/calls/{call.conversation_id}")
    assert status == 200
    assert page.count('class="lane"') == len(call.history)
    assert 'data-event="END_OF_INPUT"' in page
    assert "You pressed 1 2" in page
    status, index = await _get(server, "/calls")
    assert call.conversation_id in index


async def test_only_the_last_n_calls_are_kept(byova_server: Any, webex: Any) -> None:
    server = await byova_server(plugins=["echo"], http_port=0, inspector=True, inspector_calls=2)
    sim = await webex()
    calls = [sim.call("echo") for _ in range(3)]
    for call in calls:
        await call.start()
    _, listing = await _get(server, "/calls.json")
    assert [c["conversation_id"] for c in listing["calls"]] == [
        calls[2].conversation_id,
        calls[1].conversation_id,
    ]
    status, body = await _get(server, f"/calls/{calls[0].conversation_id}.json")
    assert status == 404
    assert "last 2 calls" in body


@pytest.mark.parametrize("record_audio", [False, True])
async def test_audio_is_kept_only_when_asked(
    byova_server: Any, webex: Any, speech: Any, record_audio: bool
) -> None:
    server = await byova_server(
        plugins=["echo"], http_port=0, inspector=True, record_audio=record_audio
    )
    call = await _echo_call(webex, speech)
    base = f"/calls/{call.conversation_id}"
    _, data = await _get(server, f"{base}.json")
    assert data["rpcs"][1]["audio"] == {"caller": record_audio, "agent": record_audio}
    caller_status, caller = await _get(server, f"{base}/rpc/1/caller.wav")
    agent_status, agent = await _get(server, f"{base}/rpc/1/agent.wav")
    if not record_audio:
        assert (caller_status, agent_status) == (404, 404)
        assert server.inspector is not None
        assert all(
            not r.caller_audio and not r.agent_audio for r in server.inspector.calls()[0].rpcs
        )
        return
    heard = read_wav(caller)
    assert heard.sample_rate == 8000
    assert len(heard.pcm) >= 8 * 800  # all the speech the simulator sent, and its silence
    assert len(read_wav(agent).pcm) > 0


async def test_text_from_the_wire_is_escaped_in_the_page(byova_server: Any, webex: Any) -> None:
    server = await byova_server(plugins=["echo"], http_port=0, inspector=True)
    sim = await webex()
    call = sim.call("echo", conversation_id="<script>alert(1)</script>")
    await call.start()
    status, page = await _get(server, "/calls")
    assert status == 200
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;" in page


async def test_refused_rpcs_leave_no_call_and_the_server_keeps_serving(
    byova_server: Any, webex: Any
) -> None:
    server = await byova_server(plugins=["echo"], http_port=0, inspector=True)
    sim = await webex()
    no_id = pb.VoiceVARequest(
        event_input=pb.EventInput(event_type=pb.EventInput.SESSION_START), virtual_agent_id="echo"
    )

    async def requests() -> AsyncIterator[pb.VoiceVARequest]:
        yield no_id

    result = await sim.call("echo").stream("session_start", requests(), None)
    assert result.code.name == "INVALID_ARGUMENT"
    good = sim.call("echo")
    assert (await good.start()).code.name == "OK"
    _, listing = await _get(server, "/calls.json")
    assert [c["conversation_id"] for c in listing["calls"]] == [good.conversation_id]


async def test_barge_in_is_marked_on_the_call(byova_server: Any, webex: Any, speech: Any) -> None:
    server = await byova_server(
        plugins=["echo"], http_port=0, inspector=True, chunk_lead_ms=0, first_chunk_bytes=100
    )
    sim = await webex(realtime=True)
    call = sim.call("echo")
    await call.start()  # the welcome chime is bargeable and still playing
    await call.say(speech(400), lead_silence_ms=40)
    await call.hang_up()
    _, data = await _get(server, f"/calls/{call.conversation_id}.json")
    [barge] = data["barge_ins"]
    assert 0 <= barge["heard_ms"] <= barge["sent_ms"]
    start_of_input = next(
        r["at_ms"] for r in data["rpcs"][1]["responses"] if r["event"] == "START_OF_INPUT"
    )
    assert barge["at_ms"] >= start_of_input
