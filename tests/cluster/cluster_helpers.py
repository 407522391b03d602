"""A real redis-server for cluster tests, and servers that join it as one cluster."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from byova_media.server import Server
from byova_media.testing.simulator import RpcResult, SimulatedCall, WebexSimulator

SECRET = "cluster-test-secret-0123456789"
ORG = "00000000-0000-4000-8000-000000000000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """redis-server on a fixed free port in a temp dir; stop and start it again at will."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def cluster_settings(redis: RedisProcess, lease_s: float = 2.0, **more: Any) -> dict[str, Any]:
    """Settings for ``byova_server(...)`` that make it an instance of the test cluster."""
    return {
        "cluster_redis_url": redis.url,
        "cluster_lease_s": lease_s,
        "env": {"BYOVA_MEDIA_CLUSTER_SECRET": SECRET},
        **more,
    }


class AlternatingCall(SimulatedCall):
    """A call whose RPCs go to each simulator in turn: a balancer with no affinity."""

    def __init__(self, sims: list[WebexSimulator], virtual_agent_id: str = "echo") -> None:
        super().__init__(sims[0], str(uuid.uuid4()), virtual_agent_id, ORG)
        self.sims = sims
        self.rpcs = 0

    async def stream(self, *args: Any, **kwargs: Any) -> RpcResult:
        self.sim = self.sims[self.rpcs % len(self.sims)]
        self.rpcs += 1
        return await super().stream(*args, **kwargs)


def forwarded(server: Server) -> float:
    """How many RPCs ``server`` forwarded to an owner (all outcomes)."""
    value = server.app.metrics.registry.get_sample_value
    return sum(
        value("byova_cluster_forwarded_rpcs_total", {"status": s}) or 0.0
        for s in ("OK", "retried", "INTERNAL", "UNAUTHENTICATED")
    )


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait (polling every 10 ms) until ``condition()`` holds; time out after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        for _ in iter(int, 1):  # polling a state no event announces
            if condition():
                return
            await asyncio.sleep(0.01)
