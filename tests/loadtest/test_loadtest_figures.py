"""Pure parts of the load generator: scripts, scenarios, percentiles, summaries."""

from __future__ import annotations

from typing import Any

import pytest

from byova_media.loadtest.command import summarize_runs
from byova_media.loadtest.generator import rss_slope_mb_per_min
from byova_media.loadtest.report import percentile, summarize
from byova_media.loadtest.scenario import Scenario, Step, parse_script


def test_parse_script() -> None:
    assert parse_script("say:1200, dtmf:12#,say:800") == (
        Step("say", ms=1200),
        Step("dtmf", digits="12#"),
        Step("say", ms=800),
    )
    for bad in ("", "say:0", "say:abc", "dtmf:", "dtmf:9x", "hum:1"):
        with pytest.raises(ValueError, match="script"):
            parse_script(bad)


def test_scenario_caps_and_round_trip() -> None:
    with pytest.raises(ValueError, match="calls"):
        Scenario(calls=0)
    with pytest.raises(ValueError, match="calls"):
        Scenario(calls=5001)
    with pytest.raises(ValueError, match="exactly one"):
        Scenario(calls=1, duration_s=None)
    with pytest.raises(ValueError, match="duration_s"):
        Scenario(calls=1, duration_s=4000)
    scenario = Scenario(calls=3, duration_s=None, turns=2, script=parse_script("say:500,dtmf:1"))
    assert Scenario.from_dict(scenario.to_dict()) == scenario
    assert 0 < scenario.deadline_s <= 3600


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)


def _tally(late: int = 0, failed: int = 0, latencies: tuple[float, ...] = (1.0,)) -> dict[str, Any]:
    return {
        "calls_completed": 1, "calls_failed": failed, "turns": 1, "frames_sent": 100,
        "frames_due": 100, "frames_late": late, "max_lateness_ms": 1.0,
        "latencies_ms": list(latencies), "rpc_errors": {"INTERNAL": failed} if failed else {},
    }  # fmt: skip


def _step(label: str, calls: int, cpu_us: float, p99: float, late: int = 0) -> dict[str, Any]:
    step = summarize(label, calls, [_tally(late=late, latencies=(p99,))], 1.0)
    step["server"] = {"cpu_us_per_frame": cpu_us}
    return step


def test_summary_medians_ratios_and_knee() -> None:
    merged = summarize("byova", 2, [_tally(failed=1, latencies=(1.0, 3.0)), _tally()], 2.0)
    assert merged["calls_failed"] == 1 and merged["rpc_errors"] == {"INTERNAL": 1}
    assert merged["frames_sent"] == 200 and merged["latency_ms"]["n"] == 3

    steps = [
        _step("byova", 100, 60.0, 4.0),
        _step("byova", 100, 80.0, 6.0),
        _step("byova", 100, 70.0, 5.0),
        _step("sink", 100, 50.0, 2.5),
        _step("byova", 300, 90.0, 40.0, late=12),
        _step("sink", 300, 45.0, 8.0),
    ]
    summary = summarize_runs(steps)
    row = next(r for r in summary["rows"] if r["label"] == "byova" and r["concurrency"] == 100)
    assert row["runs"] == 3
    assert row["cpu_us_per_frame"] == {"median": 70.0, "min": 60.0, "max": 80.0}
    ratios = {r["concurrency"]: r for r in summary["vs_sink"]}
    assert ratios[100]["cpu_per_frame_ratio"] == pytest.approx(1.4)
    assert ratios[100]["latency_p99_ratio"] == pytest.approx(2.0)
    assert summary["max_clean_concurrency"] == {"byova": 100, "sink": 300}
    # 12 late frames of 100 is above the 0.1 % tolerance too.
    assert summary["max_concurrency_late_under_0_1_percent"] == {"byova": 100, "sink": 300}
    steps.append(_step("sink", 500, 45.0, 8.0, late=1))
    assert summarize_runs(steps)["max_clean_concurrency"]["sink"] == 300


def test_rss_slope() -> None:
    assert rss_slope_mb_per_min([(0.0, 1.0), (1.0, 1.0)]) is None
    flat = [(float(t), 100.0) for t in range(10)]
    assert rss_slope_mb_per_min(flat) == pytest.approx(0.0)
    growing = [(float(t), 100.0 + 0.5 * t) for t in range(10)]  # 0.5 MiB per second
    assert rss_slope_mb_per_min(growing) == pytest.approx(30.0)
