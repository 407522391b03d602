"""Run ``byova-media serve`` as a real process for tests: start, read its port, stop it.

Tests a plugin exactly the way it is deployed (entry points, console script, signals)::

    async with serve_process("--plugin", "my_agent") as served:
        async with WebexSimulator(f"127.0.0.1:{served.port}") as sim: ...
        assert await served.stop() == 0      # SIGTERM: drain, then exit
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["READY_LINE", "ServedProcess", "serve_process"]

#: The log line a server prints once it takes calls; group 1 is the bound port.
READY_LINE = re.compile(r"serving VoiceVirtualAgent on [\d.]+:(\d+)")
#: In the ready line when ``--ws-port`` is given; group 1 is the bound WebSocket port.
WS_READY = re.compile(r"WebSocket on port (\d+)")


@dataclass
class ServedProcess:
    """A running server process, its bound port and everything it has logged."""

    proc: asyncio.subprocess.Process
    port: int = 0
    #: The bound WebSocket port (``--ws-port``), or None.
    ws_port: int | None = None
    lines: list[str] = field(default_factory=list)
    _pump: asyncio.Task[None] | None = None

    def follow(self) -> None:
        """Keep collecting the process's output in :attr:`lines` until it exits."""
        self._pump = asyncio.create_task(_pump(self))

    async def unfollow(self) -> None:
        """Stop collecting output (the process is gone or about to be)."""
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send ``sig`` and wait for the exit status (the process drains on SIGTERM)."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), timeout_s)
        if self._pump is not None:
            await asyncio.wait_for(self._pump, timeout_s)
        return code


@contextlib.asynccontextmanager
async def serve_process(
    *args: str,
    command: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    inherit_env: bool = True,
    ready_timeout_s: float = 60.0,
    interpreter: Sequence[str] = (),
) -> AsyncIterator[ServedProcess]:
    """Start ``byova-media serve ARGS --host 127.0.0.1 --port 0``; kill it on exit if alive.

    ``command`` is the console script to run (default: this interpreter's
    ``python -m byova_media.cli``); ``env`` is added to the current environment, or
    replaces it when ``inherit_env`` is false. ``interpreter`` runs the default program
    instead of this interpreter (a profiler that runs it in-process, e.g.
    ``python -m memray run --native -o FILE``).
    """
    runner = [*interpreter] or [sys.executable]
    program = [str(command)] if command else [*runner, "-m", "byova_media.cli"]
    proc = await asyncio.create_subprocess_exec(
        *program, "serve", "--host", "127.0.0.1", "--port", "0", *args,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**(os.environ if inherit_env else {}), **(env or {})}, cwd=cwd,
    )  # fmt: skip
    served = ServedProcess(proc)
    try:
        served.port = await _wait_ready(served, ready_timeout_s)
        served.follow()
        yield served
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await served.unfollow()


async def _wait_ready(served: ServedProcess, timeout_s: float) -> int:
    stdout = served.proc.stdout
    assert stdout is not None
    async with asyncio.timeout(timeout_s):
        while raw := await stdout.readline():
            served.lines.append(raw.decode(errors="replace"))
            if match := READY_LINE.search(served.lines[-1]):
                if ws := WS_READY.search(served.lines[-1]):
                    served.ws_port = int(ws.group(1))
                return int(match.group(1))
    raise RuntimeError("byova-media serve exited before it was ready:\n" + served.output)


async def _pump(served: ServedProcess) -> None:
    stdout = served.proc.stdout
    assert stdout is not None
    async for raw in stdout:
        served.lines.append(raw.decode(errors="replace"))
