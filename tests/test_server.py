"""Server behaviour around the protocol: bad input, failing plugins, limits, health, reflection."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import byova_media
from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media._proto import voicevirtualagent_pb2_grpc as pb_grpc
from byova_media.agent import Agent, AgentSpec, Reply, SessionStart, Utterance
from byova_media.call import Call
from byova_media.server import SERVICE_NAME


def agent_plugin(agent_id: str, make: Any, **spec: Any) -> object:
    class Plugin:
        @byova_media.hookimpl
        def byova_register_agents(self, app: Any, register: Any) -> None:
            register(AgentSpec(agent_id, make, **spec))

    return Plugin()


class Broken(Agent):
    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        raise RuntimeError("boom")

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        await asyncio.sleep(3600)
        return Reply()


async def _raw_rpc(
    port: int, *requests: pb.VoiceVARequest
) -> tuple[list[pb.VoiceVAResponse], grpc.StatusCode, str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.VoiceVirtualAgentStub(channel)
        out: list[pb.VoiceVAResponse] = []
        try:
            async for response in stub.ProcessCallerInput(iter(requests)):
                out.append(response)
        except grpc.aio.AioRpcError as exc:
            return out, exc.code(), exc.details() or ""
        return out, grpc.StatusCode.OK, ""


def _start(conv: str = "c1", agent: str = "echo") -> pb.VoiceVARequest:
    return pb.VoiceVARequest(
        conversation_id=conv,
        virtual_agent_id=agent,
        event_input=pb.EventInput(event_type=pb.EventInput.SESSION_START),
    )


async def test_missing_conversation_id_is_invalid_argument(byova_server: Any) -> None:
    server = await byova_server(plugins=["echo"])
    request = _start(conv="")
    _, code, details = await _raw_rpc(server.port, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "conversation_id" in details


async def test_message_without_input_is_invalid_argument(byova_server: Any) -> None:
    server = await byova_server(plugins=["echo"])
    _, code, _ = await _raw_rpc(
        server.port, pb.VoiceVARequest(conversation_id="x", virtual_agent_id="echo")
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_oversized_message_is_resource_exhausted(byova_server: Any) -> None:
    server = await byova_server(plugins=["echo"], max_message_bytes=4 * 2**20)
    big = pb.VoiceVARequest(
        conversation_id="big",
        virtual_agent_id="echo",
        audio_input=pb.VoiceInput(caller_audio=b"\x00" * (5 * 2**20)),
    )
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{server.port}", options=[("grpc.max_send_message_length", 64 * 2**20)]
    ) as channel:
        stub = pb_grpc.VoiceVirtualAgentStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in stub.ProcessCallerInput(iter([big])):
                pass
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_unknown_and_mismatched_virtual_agents(byova_server: Any, webex: Any) -> None:
    server = await byova_server(plugins=["echo"])
    sim = await webex(server)
    unknown = await sim.call("nope").start()
    assert unknown.code == grpc.StatusCode.NOT_FOUND
    assert "echo" in unknown.details
    _, _, _ = await _raw_rpc(server.port, _start("m1"))
    _, code, _ = await _raw_rpc(server.port, _start("m1", agent="other"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    listed = await sim.list_agents()
    assert [a.virtual_agent_id for a in listed.virtual_agents] == ["echo"]
    assert listed.virtual_agents[0].is_default


async def test_empty_agent_id_uses_the_default(byova_server: Any, webex: Any) -> None:
    server = await byova_server(plugins=["echo"])
    result = await (await webex(server)).call("").start()
    assert result.code == grpc.StatusCode.OK
    assert result.prompt_texts and "echo" in result.prompt_texts[0]


async def test_max_conversations_answers_resource_exhausted(byova_server: Any, webex: Any) -> None:
    server = await byova_server(plugins=["echo"], max_conversations=1)
    sim = await webex(server)
    first = await sim.call("echo").start()
    assert first.code == grpc.StatusCode.OK
    second = await sim.call("echo").start()
    assert second.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "maximum of 1" in second.details


async def test_failing_agent_gets_a_clean_ending_and_others_continue(
    byova_server: Any, webex: Any, speech: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await byova_server(
        plugins=["echo"],
        extra_plugins=[("broken", agent_plugin("broken", lambda c: Broken()))],
        agent_timeout_s=0.5,
    )
    sim = await webex(server)
    with caplog.at_level(logging.ERROR):
        failed = await sim.call("broken").start()
    assert failed.code == grpc.StatusCode.OK
    assert failed.events == ["TRANSFER_TO_AGENT"]
    assert failed.event_metadata == {"reason": "agent_error"}
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1
    hung = sim.call("broken", conversation_id="hung")
    hang = await hung.say(speech(800))
    assert hang.events[-1] == "TRANSFER_TO_AGENT"
    assert hang.event_metadata == {"reason": "agent_timeout"}
    ok = await sim.call("echo").start()
    assert ok.code == grpc.StatusCode.OK and ok.audio
    assert (
        server.app.metrics.registry.get_sample_value(
            "byova_plugin_errors_total", {"plugin": "broken"}
        )
        == 2
    )


async def test_factory_that_raises_gets_the_clean_ending_and_no_state(
    byova_server: Any, webex: Any
) -> None:
    def explode(call: Call) -> Agent:
        raise ValueError("no agent today")

    server = await byova_server(extra_plugins=[("x", agent_plugin("x", explode))])
    result = await (await webex(server)).call("x").start()
    assert result.code == grpc.StatusCode.OK
    assert len(result.finals) == 1
    assert result.events == ["TRANSFER_TO_AGENT"]  # on_plugin_error = "transfer"
    assert result.final is not None
    assert dict(result.final.output_events[0].metadata) == {"reason": "agent_error"}
    assert [p.text for p in result.final.prompts] == [server.config.plugin_error_text]
    assert len(server.engine.registry) == 0
    errors = server.app.metrics.registry.get_sample_value(
        "byova_plugin_errors_total", {"plugin": "x"}
    )
    assert errors == 1


async def test_idle_conversations_expire(byova_server: Any, webex: Any) -> None:
    ended: list[str] = []

    class Quiet(Agent):
        async def on_end(self, call: Call, reason: str) -> None:
            ended.append(reason)

    server = await byova_server(
        extra_plugins=[("q", agent_plugin("q", lambda c: Quiet()))], conversation_ttl_s=0.2
    )
    await (await webex(server)).call("q").start()
    for _ in range(100):
        if ended:
            break
        await asyncio.sleep(0.05)
    assert ended == ["expired"]
    assert len(server.engine.registry) == 0


async def test_client_that_disappears_releases_the_rpc(byova_server: Any, speech: Any) -> None:
    server = await byova_server(plugins=["echo"])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.VoiceVirtualAgentStub(channel)
        call = stub.ProcessCallerInput()
        await call.write(
            pb.VoiceVARequest(
                conversation_id="gone",
                virtual_agent_id="echo",
                audio_input=pb.VoiceInput(encoding=2, sample_rate_hertz=8000),
            )
        )
        await call.write(
            pb.VoiceVARequest(
                conversation_id="gone", audio_input=pb.VoiceInput(caller_audio=b"\xff" * 160)
            )
        )
        await asyncio.sleep(0.2)
        assert server.engine.active_rpcs == 1
        call.cancel()
    for _ in range(100):
        if server.engine.active_rpcs == 0:
            break
        await asyncio.sleep(0.02)
    assert server.engine.active_rpcs == 0


async def test_garbage_and_odd_length_l16_are_handled(
    byova_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await byova_server(plugins=["echo"])
    settings = pb.VoiceVARequest(
        conversation_id="odd",
        virtual_agent_id="echo",
        audio_input=pb.VoiceInput(encoding=1, sample_rate_hertz=8000),
    )
    odd = [
        pb.VoiceVARequest(
            conversation_id="odd", audio_input=pb.VoiceInput(caller_audio=bytes(range(201)))
        )
        for _ in range(5)
    ]
    with caplog.at_level(logging.WARNING):
        responses, code, _ = await _raw_rpc(server.port, settings, *odd)
    assert code == grpc.StatusCode.OK
    assert [r.response_type for r in responses][-1] == pb.VoiceVAResponse.FINAL
    assert len([r for r in caplog.records if "odd length" in r.getMessage()]) == 1


async def test_health_and_drain(byova_server: Any) -> None:
    server = await byova_server(plugins=["echo"])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE_NAME):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await server.drain(timeout_s=1)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        _, code, details = await _raw_rpc(server.port, _start("late"))
        assert code == grpc.StatusCode.UNAVAILABLE and "draining" in details


async def test_reflection_lists_the_service(byova_server: Any) -> None:
    server = await byova_server(plugins=["echo"])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in stub.ServerReflectionInfo(iter([request])):
            names = {s.name for s in reply.list_services_response.service}
            break
    assert SERVICE_NAME in names and "grpc.health.v1.Health" in names


async def test_http_port_serves_health_ready_and_metrics(byova_server: Any, webex: Any) -> None:
    import httpx

    server = await byova_server(plugins=["echo"], http_port=0)
    await (await webex(server)).call("echo").start()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/ready")).json() == {"status": "ready"}
        metrics = (await client.get("/metrics")).text
        assert "byova_active_conversations 1.0" in metrics
        assert 'byova_replies_total{type="final"}' in metrics
        await server.drain(timeout_s=0)
        assert (await client.get("/ready")).status_code == 503
