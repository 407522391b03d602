"""Summaries of load steps: percentiles, the JSON document, and the PNG chart."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["machine", "percentile", "summarize", "write_chart", "write_json"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def summarize(
    label: str, concurrency: int, tallies: Sequence[dict[str, Any]], wall_s: float
) -> dict[str, Any]:
    """Merge the tallies of one step's processes into the step's figures."""
    latencies = [x for t in tallies for x in t["latencies_ms"]]
    errors: dict[str, int] = {}
    details: dict[str, str] = {}
    for tally in tallies:
        for name, count in tally["rpc_errors"].items():
            errors[name] = errors.get(name, 0) + count
        for name, text in tally.get("error_details", {}).items():
            details.setdefault(name, text)

    def total(key: str) -> int:
        return sum(int(t[key]) for t in tallies)

    return {
        "label": label,
        "concurrency": concurrency,
        "wall_s": round(wall_s, 3),
        "calls_completed": total("calls_completed"),
        "calls_failed": total("calls_failed"),
        "turns": total("turns"),
        "frames_sent": total("frames_sent"),
        "frames_due": total("frames_due"),
        "frames_late": total("frames_late"),
        "client_write_races": sum(int(t.get("client_write_races", 0)) for t in tallies),
        "max_lateness_ms": max((float(t["max_lateness_ms"]) for t in tallies), default=0.0),
        "latency_ms": {
            "n": len(latencies),
            "p50": _round(percentile(latencies, 50)),
            "p95": _round(percentile(latencies, 95)),
            "p99": _round(percentile(latencies, 99)),
            "max": _round(max(latencies, default=None)),
        },
        "rpc_errors": errors,
        "error_details": details,
    }


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in load] if load else None,
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def write_chart(path: Path, steps: Sequence[dict[str, Any]]) -> None:
    """Latency percentiles and server CPU against concurrency, one line per server."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (lat_ax, cpu_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = list(dict.fromkeys(s["label"] for s in steps))

    def series(label: str, value: Any) -> tuple[list[int], list[float], list[tuple[int, float]]]:
        """Median per concurrency (the line) and every run (the dots) of one server."""
        runs: dict[int, list[float]] = {}
        for step in steps:
            v = value(step) if step["label"] == label else None
            if v is not None:
                runs.setdefault(step["concurrency"], []).append(float(v))
        xs = sorted(runs)
        points = [(x, v) for x in xs for v in runs[x]]
        return xs, [statistics.median(runs[x]) for x in xs], points

    for n, label in enumerate(labels):
        style = "-" if n == 0 else "--"
        plots: list[tuple[Any, str, Any, str]] = [
            (lat_ax, f"{label} {q}", lambda s, q=q: s["latency_ms"][q], marker)
            for q, marker in (("p50", "o"), ("p95", "s"), ("p99", "^"))
        ]
        plots.append((cpu_ax, label, lambda s: s.get("server", {}).get("cpu_percent"), "o"))
        for ax, name, value, marker in plots:
            xs, medians, points = series(label, value)
            if not xs:
                continue
            (line,) = ax.plot(xs, medians, style, marker=marker, label=name)
            if len(points) > len(xs):  # repeated runs: show each one faintly
                ax.scatter(*zip(*points, strict=True), color=line.get_color(), alpha=0.3, s=12)
    lat_ax.set(xlabel="concurrent calls", ylabel="ms", title="END_OF_INPUT → first reply audio")
    cpu_ax.set(xlabel="concurrent calls", ylabel="% of one core", title="server CPU")
    for ax in (lat_ax, cpu_ax):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
