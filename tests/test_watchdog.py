"""The loop watchdog tells one step of our code holding the loop from a crowded loop.

An agent that blocks is covered against a real server in
``tests/hardening/test_engine_faults.py``; here the watchdog runs on the test's own loop
with a short threshold, and "our code" is a function whose module is named like ours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from byova_media.metrics import Metrics
from byova_media.watchdog import LoopWatchdog

_OURS = """
def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass

def nap(seconds):
    time.sleep(seconds)
"""


def _our_code(name: str) -> Callable[[float], None]:
    """A function of a module named like the engine's (how the watchdog knows our code)."""
    namespace: dict[str, Any] = {"__name__": "byova_media.busy_for_test", "time": time}
    exec(compile(_OURS, "byova_media/busy_for_test.py", "exec"), namespace)
    function: Callable[[float], None] = namespace[name]
    return function


async def _stall_with(block: Callable[[], None], metrics: Metrics) -> None:
    watchdog = LoopWatchdog(100, metrics)
    watchdog.start()
    try:
        await asyncio.sleep(0.2)  # the heartbeat runs; nothing is late
        block()
        await asyncio.sleep(0.1)  # callbacks that block() scheduled run first
        await asyncio.sleep(0.2)  # then the loop is on time again and the watchdog looks
    finally:
        await watchdog.stop()


def _stalls(metrics: Metrics) -> dict[str, float]:
    return {
        sample.labels["plugin"]: sample.value
        for family in metrics.registry.collect()
        if family.name == "byova_loop_stalls"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


@pytest.mark.parametrize("how", ["spin", "nap"])
async def test_one_step_of_ours_holding_the_loop_is_reported_with_its_line(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    # On the CPU or blocked in a system call: either way one step of ours held every call.
    metrics = Metrics()
    with caplog.at_level(logging.DEBUG, logger="byova_media.watchdog"):
        await _stall_with(lambda: _our_code(how)(0.4), metrics)
    held = [r.getMessage() for r in caplog.records if "event loop held" in r.getMessage()]
    assert len(held) == 1, caplog.text  # once per stall
    lines = ("4", "5") if how == "spin" else ("8",)  # the loop in spin(), the sleep in nap()
    assert any(f"byova_media/busy_for_test.py:{line}:" in held[0] for line in lines), held
    assert _stalls(metrics) == {"core": 1.0}


async def test_a_crowd_of_short_steps_is_counted_not_blamed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 300 callbacks of 2 ms each, all ready at once: the loop is 600 ms late, but no one
    # step of them made it so (an overloaded loop, or one starved of CPU, looks like this).
    spin = _our_code("spin")
    metrics = Metrics()

    def crowd() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(300):
            loop.call_soon(spin, 0.002)

    with caplog.at_level(logging.DEBUG, logger="byova_media.watchdog"):
        await _stall_with(crowd, metrics)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "no single step held it" in caplog.text
    assert _stalls(metrics) == {"unknown": 1.0}


async def test_a_busy_step_that_is_not_ours_is_not_blamed_on_the_core(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def spin_here() -> None:  # this test module is not engine code
        end = time.thread_time() + 0.4
        while time.thread_time() < end:
            pass

    metrics = Metrics()
    with caplog.at_level(logging.DEBUG, logger="byova_media.watchdog"):
        await _stall_with(spin_here, metrics)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert _stalls(metrics) == {"unknown": 1.0}
