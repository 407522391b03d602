"""Two instances, one Redis: RPCs of a call land on either instance and the call goes on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

import byova_media
from byova_control.interceptor import JwsInterceptor
from byova_control.jws import JwsError, VerifiedClaims
from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.agent import Agent, AgentSpec, BargeIn, Reply, SessionStart, Utterance
from byova_media.call import Call
from tests.cluster.cluster_helpers import (
    AlternatingCall,
    RedisProcess,
    cluster_settings,
    forwarded,
    until,
)

FINAL = pb.VoiceVAResponse.FINAL


def assert_completed(result: Any) -> None:
    assert result.code == grpc.StatusCode.OK, result.details
    assert len(result.finals) == 1
    assert result.responses[-1].response_type == FINAL


async def test_alternating_rpcs_keep_the_digit_history(
    redis: RedisProcess, byova_server: Any, webex: Any, speech: Any
) -> None:
    a = await byova_server(plugins=["echo"], **cluster_settings(redis))
    b = await byova_server(plugins=["echo"], **cluster_settings(redis))
    call = AlternatingCall([await webex(a), await webex(b)])
    results = [await call.start()]
    for key in "42":
        results.append(await call.dtmf(key))
    results.append(await call.say(speech(800)))
    results.append(await call.dtmf("7"))
    answer = await call.dtmf("#")
    results += [answer, await call.hang_up()]
    for result in results:
        assert_completed(result)
    assert answer.prompt_texts == ["Digits so far: 4 2 7"]
    assert forwarded(b) > 0
    assert len(a.engine.registry) == len(b.engine.registry) == 0


class LongWelcome(Agent):
    """A 30 s bargeable welcome streamed as it is made; records barge-ins."""

    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        async def pieces() -> AsyncIterator[bytes]:
            for _ in range(30):
                yield b"\xfe" * 8000
                await asyncio.sleep(0)

        return Reply.say(pieces(), text="long welcome", barge_in=True)

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        return Reply.say(b"\xff" * 800, text="heard you")

    async def on_barge_in(self, call: Call, barge_in: BargeIn) -> None:
        self.log.append(("barge_in", barge_in))


def long_welcome_plugin(log: list[tuple[str, Any]]) -> object:
    class Plugin:
        @byova_media.hookimpl
        def byova_register_agents(self, app: Any, register: Callable[[AgentSpec], None]) -> None:
            register(AgentSpec("long", lambda call: LongWelcome(log)))

    return Plugin()


async def test_a_barge_in_on_another_instance_stops_the_owners_prompt(
    redis: RedisProcess, byova_server: Any, webex: Any, speech: Any, record_property: Any
) -> None:
    log: list[tuple[str, Any]] = []
    plugin = [("long", long_welcome_plugin(log))]
    settings = cluster_settings(redis, chunk_lead_ms=1000)
    a = await byova_server(extra_plugins=plugin, **settings)
    b = await byova_server(extra_plugins=plugin, **settings)
    call = AlternatingCall([await webex(a, realtime=True), await webex(b, realtime=True)], "long")
    welcome_started = time.monotonic()
    welcome = asyncio.create_task(call.start())  # on A
    await asyncio.sleep(0.3)
    assert not welcome.done()  # A is streaming its 30 s welcome
    turn_started = time.monotonic()
    turn = await call.say(speech(600), lead_silence_ms=600)  # on B, forwarded to A
    first = await welcome
    assert_completed(first)
    assert_completed(turn)
    assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert turn.prompt_texts == ["heard you"]
    assert [kind for kind, _ in log] == ["barge_in"]
    assert len(first.audio) < 30 * 8000  # the welcome stopped early
    # From the caller's speech start (START_OF_INPUT on B) to the end of A's prompt RPC.
    speech_at = turn_started + (turn.time_of("START_OF_INPUT") or 0.0)
    stopped_at = welcome_started + (first.time_of("FINAL") or 0.0)
    record_property("barge_in_across_instances_ms", round((stopped_at - speech_at) * 1000, 1))
    assert forwarded(b) == 1


async def test_a_caller_that_goes_away_ends_the_forwarded_rpc_at_the_owner(
    redis: RedisProcess, byova_server: Any, webex: Any, speech: Any
) -> None:
    a = await byova_server(plugins=["echo"], **cluster_settings(redis))
    b = await byova_server(plugins=["echo"], **cluster_settings(redis))
    call = AlternatingCall([await webex(a), await webex(b, realtime=True)])
    assert_completed(await call.start())  # on A, which owns the call
    turn = asyncio.create_task(call.say(speech(5000)))  # on B, forwarded to A as it comes
    await until(lambda: a.engine.active_rpcs == 1 and forwarded(b) == 0)
    turn.cancel()  # the caller hangs up mid-sentence: its RPC on B is cancelled
    await asyncio.gather(turn, return_exceptions=True)
    await until(lambda: a.engine.active_rpcs == 0 and b.engine.active_rpcs == 0)
    assert len(a.engine.registry) == 1  # only the RPC ended, not the call


async def test_lost_redis_keeps_owned_calls_and_refuses_new_ones(
    redis: RedisProcess, byova_server: Any, webex: Any, caplog: pytest.LogCaptureFixture
) -> None:
    a = await byova_server(plugins=["echo"], **cluster_settings(redis, lease_s=0.6))
    sim = await webex(a)
    owned = sim.call("echo")
    assert_completed(await owned.start())
    redis.stop()
    refused = await sim.call("echo").start()
    assert refused.code == grpc.StatusCode.UNAVAILABLE
    assert "Redis" in refused.details
    await owned.dtmf("3")
    assert (await owned.dtmf("#")).prompt_texts == ["Digits so far: 3"]
    redis.start()
    for _ in range(50):  # the next heartbeat notices Redis is back
        if a.cluster is not None and a.cluster.redis_ok:
            break
        await asyncio.sleep(0.1)
    assert_completed(await sim.call("echo").start())
    assert_completed(await owned.hang_up())
    errors = [r for r in caplog.records if "refusing the RPC" in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelname == "ERROR"


class FixedVerifier:
    """Accepts one token: stands in for the control plugin's JWS verifier."""

    async def verify(self, token: str) -> VerifiedClaims:
        if token != "good-token":
            raise JwsError("bad_signature")
        return VerifiedClaims("org", "issuer", "subject", "audience", "jti", 2e9, {})


def jws_plugin() -> object:
    class Plugin:
        @byova_media.hookimpl
        def byova_grpc_interceptors(self, app: Any) -> list[Any]:
            return [JwsInterceptor(FixedVerifier(), app.metrics)]  # type: ignore[arg-type]

    return Plugin()


async def test_the_edge_checks_the_callers_token_before_forwarding(
    redis: RedisProcess, byova_server: Any, webex: Any
) -> None:
    plugins = [("jws", jws_plugin())]
    a = await byova_server(plugins=["echo"], extra_plugins=plugins, **cluster_settings(redis))
    b = await byova_server(plugins=["echo"], extra_plugins=plugins, **cluster_settings(redis))
    call = AlternatingCall([await webex(a, token="good-token"), await webex(b, token="good-token")])
    assert_completed(await call.start())  # on A
    assert_completed(await call.dtmf("4"))  # START_OF_DTMF on B (forwarded), digits on A
    assert forwarded(b) == 1  # the peer hop itself needs no caller token
    intruder = AlternatingCall([await webex(b, token="stolen")])
    intruder.conversation_id = call.conversation_id
    refused = await intruder.dtmf("9")
    assert refused.code == grpc.StatusCode.UNAUTHENTICATED
    assert forwarded(b) == 1  # refused at the edge: nothing reached the owner
    assert (await call.dtmf("#")).prompt_texts == ["Digits so far: 4"]


async def test_a_full_instance_passes_a_new_call_to_a_peer_with_room(
    redis: RedisProcess, byova_server: Any, webex: Any
) -> None:
    a = await byova_server(plugins=["echo"], max_conversations=1, **cluster_settings(redis))
    b = await byova_server(plugins=["echo"], **cluster_settings(redis))
    on_a = await webex(a)
    assert_completed(await AlternatingCall([on_a]).start())  # A is full now
    call = AlternatingCall([on_a])
    assert_completed(await call.start())  # reached A, started on B
    assert_completed(await call.dtmf("7"))  # reaches A again: forwarded to the owner
    call.sims = [await webex(b)]
    assert (await call.dtmf("#")).prompt_texts == ["Digits so far: 7"]
    assert call.conversation_id in {c.id for c in b.engine.registry.all()}
    assert len(a.engine.registry) == 1 and forwarded(a) == 3  # START_OF_DTMF, "7", start
    rejections = a.app.metrics.registry.get_sample_value
    assert rejections("byova_admission_rejections_total", {"reason": "max_conversations"}) is None


async def test_a_full_instance_keeps_a_new_call_when_every_peer_is_full_too(
    redis: RedisProcess, byova_server: Any, webex: Any
) -> None:
    """Passing the call on would only move the refusal (and cost a hop): it is refused
    where it arrived, from the peers' heartbeats, without forwarding."""
    a = await byova_server(plugins=["echo"], max_conversations=1, **cluster_settings(redis))
    b = await byova_server(plugins=["echo"], max_conversations=1, **cluster_settings(redis))
    assert a.cluster is not None
    assert_completed(await AlternatingCall([await webex(a)]).start())
    assert_completed(await AlternatingCall([await webex(b)]).start())
    async with asyncio.timeout(10):  # until B's next heartbeat says it is full
        for _ in iter(int, 1):  # polling Redis: no event here announces a peer's heartbeat
            if all(i.full for i in await a.cluster.directory.instances()):
                break
            await asyncio.sleep(0.05)
    refused = await AlternatingCall([await webex(a)]).start()
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.details
    assert forwarded(a) == 0


async def test_a_call_a_full_instance_refused_is_free_for_the_next(
    redis: RedisProcess, byova_server: Any, webex: Any
) -> None:
    """A full instance with no peer claims a new call, then refuses it: the claim must not
    keep the call there (every later RPC would be forwarded to that refusal until the
    lease lapsed); the caller's retry on an instance that came meanwhile starts it."""
    a = await byova_server(plugins=["echo"], max_conversations=1, **cluster_settings(redis))
    on_a = await webex(a)
    assert_completed(await AlternatingCall([on_a]).start())  # A is full now
    call = AlternatingCall([on_a])
    refused = await call.start()
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.details
    b = await byova_server(plugins=["echo"], **cluster_settings(redis))
    call.sims = [await webex(b)]
    assert_completed(await call.start())  # Webex retries elsewhere
    assert_completed(await call.dtmf("#"))
    assert call.conversation_id in {c.id for c in b.engine.registry.all()}
    assert forwarded(b) == 0
