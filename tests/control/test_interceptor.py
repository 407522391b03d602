"""JwsInterceptor on a real grpc.aio server on 127.0.0.1, with a fake identity broker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest
from fake_idbroker import DATASOURCE_URL, ORG_ID, FakeIdBroker
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from byova_control.interceptor import JwsInterceptor, current_claims
from byova_control.jws import JwsVerifier, VerifiedClaims
from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media._proto import voicevirtualagent_pb2_grpc as pb_grpc
from byova_media.metrics import Metrics


class CountingVerifier(JwsVerifier):
    """Counts verifications, to prove there is one per RPC and not one per message."""

    calls = 0

    async def verify(self, token: str) -> VerifiedClaims:
        self.calls += 1
        return await super().verify(token)


class BrokenVerifier(CountingVerifier):
    """A verifier with a bug: it raises something other than JwsError."""

    async def verify(self, token: str) -> VerifiedClaims:
        raise RuntimeError(f"bug while reading {token}")


class EchoAgent(pb_grpc.VoiceVirtualAgentServicer):
    """Answers with the org id it finds in ``current_claims``."""

    async def ListVirtualAgents(
        self, request: pb.ListVARequest, context: grpc.aio.ServicerContext
    ) -> pb.ListVAResponse:
        claims = current_claims.get()
        assert claims is not None
        return pb.ListVAResponse(
            virtual_agents=[pb.VirtualAgentInfo(virtual_agent_id=claims.org_id)]
        )

    async def ProcessCallerInput(
        self, request_iterator: AsyncIterator[pb.VoiceVARequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.VoiceVAResponse]:
        async for request in request_iterator:
            claims = current_claims.get()
            assert claims is not None
            text = f"{claims.org_id}/{request.conversation_id}"
            yield pb.VoiceVAResponse(prompts=[pb.Prompt(text=text)])


class WriterAgent(EchoAgent):
    """Streams with ``context.write`` instead of yielding (the other servicer style)."""

    async def ProcessCallerInput(  # type: ignore[override]
        self, request_iterator: AsyncIterator[pb.VoiceVARequest], context: grpc.aio.ServicerContext
    ) -> None:
        async for request in request_iterator:
            claims = current_claims.get()
            assert claims is not None
            text = f"{claims.org_id}/{request.conversation_id}"
            await context.write(pb.VoiceVAResponse(prompts=[pb.Prompt(text=text)]))


@dataclass
class Harness:
    broker: FakeIdBroker
    verifier: CountingVerifier
    metrics: Metrics
    stub: pb_grpc.VoiceVirtualAgentStub
    channel: grpc.aio.Channel
    calls: list[str] = field(default_factory=list)

    def token(self, **overrides: Any) -> str:
        return self.broker.mint(self.broker.claims(**overrides))

    def rejections(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "byova_jws_rejections_total", {"reason": reason}
        )
        return value or 0.0

    async def list_agents(self, metadata: tuple[tuple[str, str], ...]) -> pb.ListVAResponse:
        response: pb.ListVAResponse = await self.stub.ListVirtualAgents(
            pb.ListVARequest(customer_org_id=ORG_ID), metadata=metadata
        )
        return response

    async def converse(
        self, metadata: tuple[tuple[str, str], ...], turns: int = 3
    ) -> list[pb.VoiceVAResponse]:
        """Stream ``turns`` requests; with 0, open the stream and only listen.

        Rejection tests use 0: the server refuses before reading, and a grpc-python client
        still writing to a call the server has closed may report INTERNAL instead of the
        server's status (a client-side race unrelated to the interceptor).
        """
        if turns:
            requests = [pb.VoiceVARequest(conversation_id=f"c{i}") for i in range(turns)]
            call = self.stub.ProcessCallerInput(iter(requests), metadata=metadata)
        else:
            call = self.stub.ProcessCallerInput(metadata=metadata)
        return [response async for response in call]


@pytest.fixture
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    agent: EchoAgent = getattr(request, "param", EchoAgent)()
    async with FakeIdBroker() as broker, httpx.AsyncClient() as http:
        verifier = CountingVerifier(
            issuers=[broker.issuer()], datasource_url=DATASOURCE_URL, http=http
        )
        metrics = Metrics()
        server = grpc.aio.server(interceptors=[JwsInterceptor(verifier, metrics)])
        pb_grpc.add_VoiceVirtualAgentServicer_to_server(agent, server)  # type: ignore[no-untyped-call]
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.VoiceVirtualAgentStub(channel)  # type: ignore[no-untyped-call]
                yield Harness(broker, verifier, metrics, stub, channel)
        finally:
            await server.stop(None)


def auth(token: str, tracking: str = "track-1") -> tuple[tuple[str, str], ...]:
    return (("authorization", token), ("trackingid", tracking))


async def status_of(call: Callable[[], Awaitable[object]]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call()
    return caught.value


@pytest.mark.parametrize("harness", [EchoAgent, WriterAgent], indirect=True)
@pytest.mark.parametrize("prefix", ["", "Bearer "])
async def test_valid_token_is_accepted_on_both_rpcs(harness: Harness, prefix: str) -> None:
    metadata = auth(prefix + harness.token())
    listed = await harness.list_agents(metadata)
    assert [agent.virtual_agent_id for agent in listed.virtual_agents] == [ORG_ID]
    responses = await harness.converse(metadata, turns=3)
    assert [r.prompts[0].text for r in responses] == [f"{ORG_ID}/c{i}" for i in range(3)]
    # One verification per RPC, whatever the number of streamed messages.
    assert harness.verifier.calls == 2
    assert harness.broker.fetches() == 1


async def test_missing_header_is_unauthenticated(harness: Harness) -> None:
    no_auth = (("trackingid", "t-missing"),)
    unary = await status_of(lambda: harness.list_agents(no_auth))
    stream = await status_of(lambda: harness.converse(no_auth, turns=0))
    for error in (unary, stream):
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert harness.rejections("missing") == 2
    assert harness.verifier.calls == 0


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": 1_000_000_000}, "expired"),
        ({"url": "https://media.example.test:443/byova"}, "datasource_url"),
        ({"schema": "a38a10b7-43e4-4676-a076-a7d6dce9387d"}, "schema"),
        ({"iss": "https://attacker.example/idb"}, "issuer"),
    ],
)
async def test_invalid_token_is_unauthenticated_on_both_rpcs(
    harness: Harness, overrides: dict[str, Any], reason: str
) -> None:
    metadata = auth(harness.token(**overrides))
    unary = await status_of(lambda: harness.list_agents(metadata))
    stream = await status_of(lambda: harness.converse(metadata, turns=0))
    for error in (unary, stream):
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        # The detail is generic: the reason is for our logs, not for the caller.
        assert reason not in (error.details() or "")
    assert harness.rejections(reason) == 2


async def test_garbage_authorization_is_unauthenticated(harness: Harness) -> None:
    error = await status_of(lambda: harness.converse(auth("Bearer not.a.jws"), turns=0))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert harness.rejections("malformed") == 1


async def test_rejection_is_logged_once_with_reason_and_tracking_id_but_no_token(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = harness.token(exp=1_000_000_000)
    await status_of(lambda: harness.list_agents(auth(token, tracking="abc-123 forged;line")))
    refusals = [r for r in caplog.records if r.name == "byova_control.interceptor"]
    assert len(refusals) == 1
    message = refusals[0].getMessage()
    assert "expired" in message
    assert "abc-123?forged?line" in message
    for part in token.split("."):
        assert part not in caplog.text


async def test_unprotected_services_pass_through(harness: Harness) -> None:
    health_stub = health_pb2_grpc.HealthStub(harness.channel)
    reply = await health_stub.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert harness.verifier.calls == 0


async def test_claims_do_not_leak_outside_the_rpc(harness: Harness) -> None:
    await harness.list_agents(auth(harness.token()))
    assert current_claims.get() is None


async def test_verifier_failure_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeIdBroker() as broker, httpx.AsyncClient() as http:
        verifier = BrokenVerifier(
            issuers=[broker.issuer()], datasource_url=DATASOURCE_URL, http=http
        )
        metrics = Metrics()
        server = grpc.aio.server(interceptors=[JwsInterceptor(verifier, metrics)])
        pb_grpc.add_VoiceVirtualAgentServicer_to_server(EchoAgent(), server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.VoiceVirtualAgentStub(channel)  # type: ignore[no-untyped-call]
                token = broker.mint()
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.ListVirtualAgents(pb.ListVARequest(), metadata=auth(token))
        finally:
            await server.stop(None)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    sample = metrics.registry.get_sample_value("byova_jws_rejections_total", {"reason": "error"})
    assert sample == 1
    assert "RuntimeError" in caplog.text
    assert token.split(".")[2] not in caplog.text
