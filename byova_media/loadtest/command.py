"""``byova-media loadtest HOST:PORT``: steps of concurrent real-time calls, JSON and a chart.

Every run is bounded (step deadlines, a cap on calls, concurrency and duration) and
talks only to the address it is given, plus the bare sink it starts itself on
127.0.0.1 when ``--baseline`` asks for a side-by-side reference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from byova_media.loadtest.connection import TOKEN_ENV, Connection
from byova_media.loadtest.generator import ServerProbe, StepRunner
from byova_media.loadtest.report import machine, write_chart, write_json
from byova_media.loadtest.scenario import (
    MAX_CALLS,
    MAX_CONCURRENCY,
    MAX_DURATION_S,
    Scenario,
    parse_script,
    speech_pcm,
)

__all__ = ["add_loadtest_parser", "run_loadtest", "start_sink_process", "summarize_runs"]

_SINK_READY_TIMEOUT_S = 30.0
#: Late frames a step may have and still count as holding its load "nearly clean".
_LATE_TOLERANCE = 0.001


def _concurrency(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of counts"
        ) from None
    if not values or any(not 0 < v <= MAX_CONCURRENCY for v in values):
        raise argparse.ArgumentTypeError(f"each count must be 1..{MAX_CONCURRENCY}")
    return values


def _script(text: str) -> tuple[Any, ...]:
    try:
        return parse_script(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_loadtest_parser(sub: Any) -> None:
    """Register the ``loadtest`` sub-command on the ``byova-media`` parser."""
    p = sub.add_parser(
        "loadtest",
        help="place many concurrent real-time simulated calls and report capacity",
        description=__doc__,
    )
    p.add_argument("target", help="HOST:PORT of the BYOVA server under test")
    _add_load_options(p)
    _add_measure_options(p)
    _add_security_options(p)
    _add_output_options(p)
    p.set_defaults(func=run_loadtest)


def _add_load_options(p: argparse.ArgumentParser) -> None:
    """What load to place: how many calls, for how long, doing what."""
    p.add_argument(
        "--transport",
        choices=["grpc", "ws"],
        default="grpc",
        help="call over gRPC (HOST:PORT is the gRPC port) or WebSocket (the --ws-port)",
    )
    p.add_argument(
        "--calls",
        type=_concurrency,
        default=[10],
        metavar="N[,N...]",
        help="concurrent calls; a list runs one step per value (default 10)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--duration", type=float, metavar="S", help="seconds per step (default 10)")
    mode.add_argument(
        "--turns", type=int, metavar="N", help="one call of N script steps per caller"
    )
    p.add_argument(
        "--long-calls",
        action="store_true",
        help="with --duration: each caller holds one call for the whole step (a soak)",
    )
    p.add_argument(
        "--script",
        type=_script,
        default=parse_script("say:1200"),
        help="what each caller does per turn, e.g. say:1200,dtmf:12# (default say:1200)",
    )
    p.add_argument(
        "--speech-wav",
        type=Path,
        metavar="WAV",
        help="say steps play this recording (cut or repeated to their length), not a buzz",
    )
    p.add_argument("--agent", default="", help="virtual_agent_id (default: the server's default)")
    p.add_argument(
        "--ramp", type=float, default=2.0, metavar="S", help="spread call starts over S s"
    )
    p.add_argument("--processes", type=int, default=1, help="caller processes (default 1)")
    p.add_argument("--repeat", type=int, default=1, help="run every step this many times")
    p.add_argument(
        "--trail-ms",
        type=int,
        default=1500,
        help="silence after each utterance; the call stops sooner on END_OF_INPUT",
    )
    p.add_argument("--max-calls", type=int, default=100_000, help="cap on calls per step")


def _add_measure_options(p: argparse.ArgumentParser) -> None:
    """What to measure beside the callers' own timings, and against which reference."""
    p.add_argument("--late-ms", type=float, default=40.0, help="a frame this late is late")
    p.add_argument("--server-pid", type=int, help="pid of a local server: report its CPU and RSS")
    p.add_argument(
        "--metrics-url",
        help="the server's /metrics URL: report its RPC statuses and frame counters per step",
    )
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also run every step against a bare grpc.aio sink started on 127.0.0.1",
    )
    p.add_argument(
        "--idle-conversations",
        type=int,
        default=0,
        metavar="N",
        help="first open N idle conversations and report RSS per conversation",
    )


def _add_security_options(p: argparse.ArgumentParser) -> None:
    """How to reach a server that wants a data-source token or TLS, as production does."""
    secure = p.add_argument_group("authentication and TLS (the --baseline sink stays plaintext)")
    token = secure.add_mutually_exclusive_group()
    token.add_argument(
        "--token",
        help=f"authorization sent on every RPC (a data-source JWS); default ${TOKEN_ENV}",
    )
    token.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help="read the token from PATH, again whenever the file changes (long soaks)",
    )
    secure.add_argument("--tls-ca", type=Path, metavar="PEM", help="trust this CA: use TLS")
    secure.add_argument("--tls-cert", type=Path, metavar="PEM", help="client cert (mTLS)")
    secure.add_argument("--tls-key", type=Path, metavar="PEM", help="client key (mTLS)")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", type=Path, default=Path("loadtest.json"), help="JSON report path")
    p.add_argument("--chart", type=Path, default=Path("loadtest.png"), help="PNG chart path")
    p.add_argument("--no-chart", action="store_true")
    p.add_argument("--no-progress", action="store_true")


@contextmanager
def start_sink_process() -> Iterator[tuple[str, int]]:
    """Run the bare sink in its own process (so its CPU is its own); yield target and pid."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "byova_media.loadtest.sink", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + _SINK_READY_TIMEOUT_S
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("sink listening on ") or not line:
                break
        if not line.startswith("sink listening on "):
            raise OSError("the baseline sink did not start")
        yield line.rsplit(" ", 1)[1].strip(), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _scenario(args: argparse.Namespace, calls: int) -> Scenario:
    turns = args.turns
    duration = None if turns is not None else (args.duration or 10.0)
    return Scenario(
        calls=calls,
        duration_s=duration,
        turns=turns,
        script=args.script,
        virtual_agent_id=args.agent,
        ramp_s=args.ramp,
        late_ms=args.late_ms,
        trail_silence_ms=args.trail_ms,
        max_calls=args.max_calls,
        long_calls=args.long_calls,
        speech_wav=str(args.speech_wav or ""),
    )


def _median_spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def summarize_runs(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians with spread per server and concurrency, the ratios, and each server's knee."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for step in steps:
        groups.setdefault((step["label"], step["concurrency"]), []).append(step)
    rows = [_summary_row(label, calls, runs) for (label, calls), runs in sorted(groups.items())]
    return {
        "rows": rows,
        "max_clean_concurrency": _knee(rows, "clean"),
        "max_concurrency_late_under_0_1_percent": _knee(rows, "nearly_clean"),
        "vs_sink": _ratios_to_sink(rows),
    }


def _summary_row(label: str, calls: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One server at one concurrency: medians with spread over its repeated runs."""

    def values(*path: str) -> list[float]:
        out = []
        for run in runs:
            value: Any = run
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                out.append(float(value))
        return out

    return {
        "label": label,
        "concurrency": calls,
        "runs": len(runs),
        "clean": all(r["frames_late"] == 0 and r["calls_failed"] == 0 for r in runs),
        "nearly_clean": all(
            r["calls_failed"] == 0
            and r["frames_late"] <= _LATE_TOLERANCE * max(1, r["frames_sent"])
            for r in runs
        ),
        "frames_late": _median_spread(values("frames_late")),
        "latency_p50_ms": _median_spread(values("latency_ms", "p50")),
        "latency_p99_ms": _median_spread(values("latency_ms", "p99")),
        "cpu_us_per_frame": _median_spread(values("server", "cpu_us_per_frame")),
        "cpu_percent": _median_spread(values("server", "cpu_percent")),
        "rss_peak_mb": _median_spread(values("server", "rss_peak_mb")),
    }


def _knee(rows: list[dict[str, Any]], flag: str) -> dict[str, int]:
    """Per server, the highest concurrency whose runs all satisfied ``flag``."""
    labels = dict.fromkeys(r["label"] for r in rows)
    return {
        label: max((r["concurrency"] for r in rows if r["label"] == label and r[flag]), default=0)
        for label in labels
    }


def _ratios_to_sink(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CPU per frame and p99 latency of each server over the bare sink's at the same load."""
    by_key = {(r["label"], r["concurrency"]): r for r in rows}

    def ratio(row: dict[str, Any], sink: dict[str, Any], key: str) -> float | None:
        a, b = row.get(key), sink.get(key)
        if not a or not b or not b["median"]:
            return None
        return round(float(a["median"]) / float(b["median"]), 3)

    return [
        {
            "concurrency": calls,
            "cpu_per_frame_ratio": ratio(row, sink, "cpu_us_per_frame"),
            "latency_p99_ratio": ratio(row, sink, "latency_p99_ms"),
        }
        for (label, calls), row in by_key.items()
        if label != "sink" and (sink := by_key.get(("sink", calls))) is not None
    ]


async def _idle_rss(
    target: str, probe: ServerProbe, count: int, agent: str, connection: Connection
) -> dict[str, Any]:
    """RSS the server adds per conversation that has started and sits idle."""
    async with connection.simulator(target, realtime=False) as sim:
        calls = [sim.call(agent) for _ in range(count)]
        before = probe.rss_mb()
        for batch in range(0, count, 100):
            await asyncio.gather(*(c.start() for c in calls[batch : batch + 100]))
        await asyncio.sleep(0.5)
        after = probe.rss_mb()
        for batch in range(0, count, 100):
            await asyncio.gather(*(c.hang_up() for c in calls[batch : batch + 100]))
    return {
        "conversations": count,
        "rss_before_mb": round(before, 2),
        "rss_after_mb": round(after, 2),
        "kib_per_conversation": round((after - before) * 1024 / count, 2),
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from byova_media.testing.simulators import target_for

    args.target = target_for(args.target, args.transport)
    probe = ServerProbe(args.server_pid) if args.server_pid else None
    progress = not args.no_progress
    document: dict[str, Any] = {
        "target": args.target,
        "transport": args.transport,
        "machine": machine(),
        "processes": args.processes,
        "scenario": _scenario(args, args.calls[0]).to_dict() | {"calls": args.calls},
        "steps": [],
    }
    if probe is not None and args.idle_conversations:
        document["idle"] = await _idle_rss(
            args.target, probe, args.idle_conversations, args.agent, _connection(args)
        )
    runner = StepRunner(
        args.target, args.processes, probe, progress, args.metrics_url, _connection(args)
    )
    with start_sink_process() if args.baseline else _no_sink() as sink:
        sink_runner = (
            StepRunner(sink[0], args.processes, ServerProbe(sink[1]), progress) if sink else None
        )
        for _ in range(args.repeat):
            for calls in args.calls:
                scenario = _scenario(args, calls)
                document["steps"].append(await runner.run("byova", scenario))
                if sink_runner is not None:
                    document["steps"].append(await sink_runner.run("sink", scenario))
    document["machine"]["load_average_after"] = machine()["load_average"]
    document["summary"] = summarize_runs(document["steps"])
    return document


@contextmanager
def _no_sink() -> Iterator[None]:
    yield None


def _connection(args: argparse.Namespace) -> Connection:
    return Connection.from_options(
        token=args.token,
        token_file=args.token_file,
        tls_ca_file=args.tls_ca,
        tls_cert_file=args.tls_cert,
        tls_key_file=args.tls_key,
    )


def _validate_connection(args: argparse.Namespace) -> str | None:
    """The token and TLS options: consistent, and naming files that exist."""
    try:
        _connection(args)
    except ValueError as exc:
        return str(exc)
    for path in (args.token_file, args.tls_ca, args.tls_cert, args.tls_key):
        if path is not None and not path.is_file():
            return f"{path} is not a readable file"
    return None


def _validate(args: argparse.Namespace) -> str | None:
    if args.duration is not None and not 0 < args.duration <= MAX_DURATION_S:
        return f"--duration must be in (0, {MAX_DURATION_S:.0f}]"
    if not 1 <= args.processes <= 64:
        return "--processes must be 1..64"
    if not 0 <= args.trail_ms <= 60_000:
        return "--trail-ms must be 0..60000"
    if not 1 <= args.repeat <= 100:
        return "--repeat must be 1..100"
    if not 1 <= args.max_calls <= MAX_CALLS:
        return f"--max-calls must be 1..{MAX_CALLS}"
    if args.idle_conversations and not args.server_pid:
        return "--idle-conversations needs --server-pid to read the server's memory"
    if not 0 <= args.idle_conversations <= 100_000:
        return "--idle-conversations must be 0..100000"
    if args.long_calls and args.duration is None:
        return "--long-calls needs --duration (each call lasts the whole step)"
    if args.speech_wav is not None:
        try:
            speech_pcm(20, recorded=args.speech_wav.read_bytes())
        except (OSError, ValueError) as exc:
            return f"--speech-wav {args.speech_wav}: {exc}"
    return _validate_connection(args)


def run_loadtest(args: argparse.Namespace) -> int:
    """Run the steps, write JSON (and the chart), print one line per step; 1 if calls failed."""
    if (problem := _validate(args)) is not None:
        print(f"byova-media loadtest: error: {problem}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:  # the default loop works, at a higher cost per frame
        document = asyncio.run(_run(args))
    else:
        document = uvloop.run(_run(args))
    write_json(args.json, document)
    if not args.no_chart:
        write_chart(args.chart, document["steps"])
    for step in document["steps"]:
        latency, server = step["latency_ms"], step.get("server", {})
        print(
            f"{step['label']:>6} x{step['concurrency']:<5d} calls ok {step['calls_completed']:5d} "
            f"failed {step['calls_failed']:4d}  frames {step['frames_sent']}/{step['frames_due']} "
            f"late {step['frames_late']}  p50/p95/p99 {latency['p50']}/{latency['p95']}/"
            f"{latency['p99']} ms  cpu {server.get('cpu_percent', '-')}% "
            f"{server.get('cpu_us_per_frame', '-')} µs/frame  errors {step['rpc_errors'] or '-'}"
        )
    print(f"wrote {args.json}" + ("" if args.no_chart else f" and {args.chart}"))
    failed = sum(step["calls_failed"] for step in document["steps"])
    return 1 if failed else 0
