"""Simulated callers of one process: Webex-faithful calls through the bundled simulator.

Audio is paced in real time against a fixed schedule (frame ``n`` is due ``20·n`` ms
after the RPC's first frame). Each frame's lateness is measured when its write has
completed, so it shows both a slow load generator and a server that pushes back
through gRPC flow control.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.formats import FRAME_MS, FRAME_SAMPLES, ULAW_SILENCE_FRAME
from byova_media.loadtest.connection import Connection
from byova_media.loadtest.scenario import Scenario, Step, speech_pcm
from byova_media.testing.simulator import CallSteps, RpcResult
from byova_media.testing.simulators import Simulator

__all__ = ["Tally", "run_callers"]

_FRAME_S = FRAME_MS / 1000
#: What grpc.aio's client reports when a write fails just after the server completed the
#: RPC (grpc/grpc#36066): the server's OK status is overwritten on the client side.
_CLIENT_WRITE_RACE = "Internal error from Core"


@dataclass
class Tally:
    """What the callers of one process measured; merged across processes by the report."""

    calls_completed: int = 0
    calls_failed: int = 0
    turns: int = 0
    frames_sent: int = 0
    frames_due: int = 0
    frames_late: int = 0
    max_lateness_ms: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    rpc_errors: Counter[str] = field(default_factory=Counter)
    #: RPCs the server completed with its FINAL whose status grpc.aio's client then lost.
    client_write_races: int = 0
    #: The first message seen for each error status (to tell causes apart).
    error_details: dict[str, str] = field(default_factory=dict)
    active: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls_completed": self.calls_completed,
            "calls_failed": self.calls_failed,
            "turns": self.turns,
            "frames_sent": self.frames_sent,
            "frames_due": self.frames_due,
            "frames_late": self.frames_late,
            "max_lateness_ms": round(self.max_lateness_ms, 3),
            "latencies_ms": [round(x, 3) for x in self.latencies_ms],
            "rpc_errors": dict(self.rpc_errors),
            "client_write_races": self.client_write_races,
            "error_details": dict(self.error_details),
        }

    def error(self, code: str, details: str, where: str) -> None:
        """Count an RPC that ended with a status other than OK."""
        self.rpc_errors[code] += 1
        self.error_details.setdefault(code, f"{where}: {details[:200]}")


def _first_audio_latency_ms(result: RpcResult) -> float | None:
    """END_OF_INPUT (or, from a server that never sends it, the half-close) → first audio."""
    end = result.time_of("END_OF_INPUT")
    if end is None:
        end = result.time_of("half-close")
    audio = next((t for t, what in result.timeline if what.endswith(" audio")), None)
    if end is None or audio is None or audio < end:
        return None
    return (audio - end) * 1000.0


class _Caller:
    """Runs one call of the script on a simulator and adds what it saw to the tally."""

    def __init__(self, scenario: Scenario, tally: Tally, frames: dict[int, list[bytes]]) -> None:
        self.scenario = scenario
        self.tally = tally
        self.frames = frames

    def _check(self, result: RpcResult) -> bool:
        if (
            result.code == grpc.StatusCode.INTERNAL
            and result.details == _CLIENT_WRITE_RACE
            and result.time_of("END_OF_INPUT") is not None
        ):
            # The server had ended the caller's input and completed the RPC while a frame
            # was still being written; grpc.aio's client then loses the server's status.
            # Webex's client does not have this bug; the server's own metrics
            # (``--metrics-url``) show how the server completed these RPCs.
            self.tally.client_write_races += 1
            return True
        if result.code != grpc.StatusCode.OK:
            self.tally.error(result.code.name, result.details, result.kind)
            return False
        return True

    async def call(self, sim: Simulator, turns: int, until: float | None) -> None:
        """Place one call: SESSION_START, ``turns`` steps of the script, hang-up.

        A long call (``scenario.long_calls``) ignores ``turns`` and goes on until ``until``.
        """
        tally = self.tally
        call = sim.call(self.scenario.virtual_agent_id)
        tally.active += 1
        ok = True
        try:
            ok = self._check(await call.start())
            done = 0
            script = self.scenario.script
            long_call = self.scenario.long_calls and until is not None
            while ok and (
                time.monotonic() < until if long_call and until is not None else done < turns
            ):
                step = script[done % len(script)]
                ok = await self._step(call, step)
                done += 1
                tally.turns += 1
            ended = await call.hang_up()
            ok = self._check(ended) and ok
        except grpc.aio.AioRpcError as exc:
            tally.error(exc.code().name, exc.details() or "", "call")
            ok = False
        finally:
            tally.active -= 1
        if ok:
            tally.calls_completed += 1
        else:
            tally.calls_failed += 1

    async def _step(self, call: CallSteps, step: Step) -> bool:
        call.history.clear()  # the tally keeps what matters; long calls stay small
        if step.kind == "dtmf":
            return self._check(await call.dtmf(step.digits))
        result = await self._say(call, self.frames[step.ms])
        if not self._check(result):
            return False
        latency = _first_audio_latency_ms(result)
        if latency is not None:
            self.tally.latencies_ms.append(latency)
        return True

    async def _say(self, call: CallSteps, frames: list[bytes]) -> RpcResult:
        """One audio RPC paced in real time until END_OF_INPUT or the end of the audio."""
        tally, late_s = self.tally, self.scenario.late_ms / 1000.0
        eoi = asyncio.Event()
        holder: dict[str, RpcResult] = {}

        async def requests() -> AsyncIterator[pb.VoiceVARequest]:
            # The simulator's own request building, as Webex sends it: settings first,
            # then a few tiny bytes, then 160 B every 20 ms.
            yield call.request(
                audio_input=pb.VoiceInput(
                    encoding=pb.VoiceInput.MULAW_FORMAT, sample_rate_hertz=8000
                )
            )
            yield call.request(audio_input=pb.VoiceInput(caller_audio=b"\xff\xff\xff"))
            start = time.monotonic()
            sent = 0
            try:
                for n, frame in enumerate(frames):
                    if eoi.is_set():
                        break
                    due = start + n * _FRAME_S
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    yield call.request(audio_input=pb.VoiceInput(caller_audio=frame))
                    # Resumed once the write of this frame has completed.
                    lateness = time.monotonic() - due
                    sent += 1
                    if lateness > late_s:
                        tally.frames_late += 1
                    tally.max_lateness_ms = max(tally.max_lateness_ms, lateness * 1000.0)
            finally:
                elapsed = time.monotonic() - start
                tally.frames_sent += sent
                tally.frames_due += max(sent, min(len(frames), int(elapsed / _FRAME_S) + 1))
                holder["r"].frames_sent = sent

        return await call.stream("audio", requests(), eoi, holder)


def _frames_for(scenario: Scenario) -> dict[int, list[bytes]]:
    """μ-law frames of each utterance length in the script, with lead and trail silence."""
    lead = [ULAW_SILENCE_FRAME] * (scenario.lead_silence_ms // FRAME_MS)
    trail = [ULAW_SILENCE_FRAME] * (scenario.trail_silence_ms // FRAME_MS)
    recorded = Path(scenario.speech_wav).read_bytes() if scenario.speech_wav else b""
    out: dict[int, list[bytes]] = {}
    for step in scenario.script:
        if step.kind == "say" and step.ms not in out:
            ulaw = pcm_to_ulaw(speech_pcm(step.ms, seed=step.ms, recorded=recorded))
            speech = [ulaw[i : i + FRAME_SAMPLES] for i in range(0, len(ulaw), FRAME_SAMPLES)]
            out[step.ms] = lead + [f for f in speech if len(f) == FRAME_SAMPLES] + trail
    return out


async def run_callers(
    target: str,
    scenario: Scenario,
    callers: int,
    *,
    offset: int = 0,
    tally: Tally | None = None,
    on_start: Callable[[], None] | None = None,
    connection: Connection | None = None,
) -> Tally:
    """Run ``callers`` concurrent callers against ``target`` for one step of ``scenario``.

    Caller ``i`` starts at ``(offset + i) / scenario.calls * ramp_s`` so that processes
    sharing a step interleave their starts. Everything is cancelled at the step's
    hard deadline; calls cut off then count as failed. With ``scenario.long_calls`` each
    caller holds one call for the whole step, cycling through the script until it ends.
    ``connection`` gives TLS and the token (default: plaintext, no token).
    """
    tally = tally or Tally()
    frames = _frames_for(scenario)
    started = time.monotonic()
    until = started + scenario.ramp_s + scenario.duration_s if scenario.duration_s else None
    budget = [scenario.max_calls]

    async def caller(index: int, sim: Simulator) -> None:
        await asyncio.sleep((offset + index) / scenario.calls * scenario.ramp_s)
        runner = _Caller(scenario, tally, frames)
        while budget[0] > 0:
            budget[0] -= 1
            await runner.call(sim, scenario.turns or len(scenario.script), until)
            if until is None or time.monotonic() >= until:
                break

    # A few channels, as Webex spreads calls over connections (one socket per call on
    # WebSocket, whatever the simulator).
    connection = connection or Connection()
    sims = [connection.simulator(target) for _ in range(max(1, min(8, callers // 50)))]
    if on_start is not None:
        on_start()
    tasks = [asyncio.create_task(caller(i, sims[i % len(sims)])) for i in range(callers)]
    try:
        _, pending = await asyncio.wait(tasks, timeout=scenario.deadline_s)
        for task in pending:
            task.cancel()
        cut = await asyncio.gather(*pending, return_exceptions=True)
        tally.calls_failed += len(cut)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                tally.error(type(exc).__name__, str(exc), "caller")
    finally:
        for sim in sims:
            await sim.close()
    return tally
