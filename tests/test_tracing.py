"""OpenTelemetry spans: one per call, one per RPC as its child, captured in memory."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest

from byova_media.tracing import Tracing

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
export = pytest.importorskip("opentelemetry.sdk.trace.export")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")


@pytest.fixture
def exporter() -> Any:
    return in_memory.InMemorySpanExporter()


@pytest.fixture
def provider(exporter: Any) -> Any:
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


async def test_call_and_rpc_spans(
    byova_server: Any, webex: Any, speech: Any, provider: Any, exporter: Any
) -> None:
    server = await byova_server(plugins=["echo"])
    server.engine.tracing = Tracing.create(provider)
    call = (await webex(server)).call("echo")
    assert (await call.start()).code == grpc.StatusCode.OK
    turn = await call.say(np.asarray(speech(600)), trail_silence_ms=1200)
    assert turn.code == grpc.StatusCode.OK
    await call.dtmf("1")
    await call.hang_up()

    spans = exporter.get_finished_spans()
    calls = [s for s in spans if s.name == "byova.call"]
    assert len(calls) == 1
    root = calls[0]
    assert root.attributes["byova.conversation_id"] == call.conversation_id
    assert root.attributes["byova.virtual_agent_id"] == "echo"
    assert root.attributes["byova.end_reason"] == "caller_hangup"
    assert root.attributes["byova.turns"] == 1
    assert str(root.attributes["byova.tracking_id"]).startswith("SIM_")
    rpcs = [s for s in spans if s.name.startswith("byova.rpc")]
    assert [s.attributes["byova.rpc.kind"] for s in rpcs] == [
        "session_start",
        "audio",
        "start_of_dtmf",
        "dtmf",
        "session_end",
    ]
    assert all(s.attributes["byova.conversation_id"] == call.conversation_id for s in rpcs)
    # Turns of the live call are children of its span; the hang-up has already released it.
    for span in rpcs[:-1]:
        assert span.parent is not None and span.parent.span_id == root.context.span_id
        assert span.context.trace_id == root.context.trace_id
    assert all(s.end_time >= s.start_time for s in spans)


async def test_refused_rpc_span_records_the_error(
    byova_server: Any, webex: Any, provider: Any, exporter: Any
) -> None:
    server = await byova_server(plugins=["echo"], max_conversations=1)
    server.engine.tracing = Tracing.create(provider)
    sim = await webex(server)
    await sim.call("echo").start()
    refused = await sim.call("echo").start()
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    failed = [s for s in exporter.get_finished_spans() if s.attributes.get("byova.rpc.error")]
    assert len(failed) == 1
    assert failed[0].attributes["byova.rpc.error"] == "RESOURCE_EXHAUSTED"
    assert not failed[0].status.is_ok


async def test_without_a_tracer_everything_is_a_no_op() -> None:
    tracing = Tracing(None)
    assert not tracing.enabled
    tracing.call_started("c", "echo", "org")
    with tracing.rpc() as span:
        span.kind = "audio"
    tracing.call_ended("c", "caller_hangup", 0)
