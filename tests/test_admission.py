"""Load-based admission: new calls refused above the loop-lag/CPU threshold, existing ones go on."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import grpc
import numpy as np
import pytest

from byova_media.admission import AdmissionMonitor
from byova_media.metrics import Metrics


def test_off_by_default_and_thresholds() -> None:
    monitor = AdmissionMonitor()
    monitor.record(10_000.0, 400.0)
    assert not monitor.enabled and monitor.overload() is None

    monitor = AdmissionMonitor(max_loop_lag_ms=50, max_cpu_percent=90, metrics=Metrics())
    monitor.record(20.0, 50.0)
    assert monitor.overload() is None
    monitor.record(120.0, 50.0)
    overload = monitor.overload()
    assert overload is not None and overload.reason == "loop_lag"
    assert "120 ms" in overload.message and "max_loop_lag_ms=50" in overload.message
    # The worst of the last ten samples counts: one good sample does not clear it.
    monitor.record(1.0, 10.0)
    assert monitor.overload() is not None
    for _ in range(10):
        monitor.record(1.0, 95.0)
    overload = monitor.overload()
    assert overload is not None and overload.reason == "cpu"
    for _ in range(10):
        monitor.record(1.0, 10.0)
    assert monitor.overload() is None


async def test_sampler_measures_lag_and_cpu_from_its_clocks() -> None:
    wall = itertools.count(0.0, 0.31)  # each reading 310 ms after the previous one
    cpu = itertools.count(0.0, 0.155)  # half of that in CPU
    monitor = AdmissionMonitor(
        max_loop_lag_ms=100,
        interval_s=0.01,
        clock=lambda: next(wall),
        cpu_clock=lambda: next(cpu),
    )
    monitor.start()
    await asyncio.sleep(0.1)
    await monitor.stop()
    assert monitor.lag_ms == pytest.approx(300.0)
    assert monitor.cpu_percent == pytest.approx(50.0)
    assert monitor.overload() is not None


async def test_lagging_server_refuses_new_calls_while_existing_call_continues(
    byova_server: Any, webex: Any, speech: Any
) -> None:
    server = await byova_server(plugins=["echo"], max_loop_lag_ms=50)
    assert server.admission is not None
    await server.admission.stop()  # measurements come from the test from here on
    sim = await webex(server)
    existing = sim.call("echo")
    assert (await existing.start()).code == grpc.StatusCode.OK

    server.admission.record(250.0)
    refused = await sim.call("echo").start()
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "event-loop lag 250 ms" in refused.details and "max_loop_lag_ms=50" in refused.details

    turn = await existing.say(np.asarray(speech(800)), trail_silence_ms=1200)
    assert turn.code == grpc.StatusCode.OK
    assert "END_OF_INPUT" in turn.events and len(turn.audio) > 0
    assert (await existing.dtmf("1")).code == grpc.StatusCode.OK
    assert (await existing.hang_up()).code == grpc.StatusCode.OK

    for _ in range(10):
        server.admission.record(2.0)
    assert (await sim.call("echo").start()).code == grpc.StatusCode.OK
    registry = server.app.metrics.registry
    assert (
        registry.get_sample_value("byova_admission_rejections_total", {"reason": "loop_lag"}) == 1
    )
    assert registry.get_sample_value("byova_event_loop_lag_seconds") == pytest.approx(0.002)


async def test_no_monitor_unless_configured(byova_server: Any) -> None:
    server = await byova_server(plugins=["echo"])
    assert server.admission is None
