"""Shared helpers for the control-plane tests: a real redis-server, settings, free ports."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_webex import FakeWebex

from byova_control.runtime import ControlPlane
from byova_control.settings import ControlSettings

__all__ = ["free_port", "make_settings", "plane_for", "redis_server", "seed_integration"]

ORG = "9a1b2c3d-0000-4000-8000-00000000abcd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A throw-away redis-server on a free port; skips the test when the binary is absent."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def make_settings(fake: FakeWebex, store: str, **overrides: Any) -> ControlSettings:
    data: dict[str, Any] = {
        "api_url": fake.base_url,
        "integration_client_id": fake.integration_client[0],
        "integration_client_secret": fake.integration_client[1],
        "sa_client_id": fake.sa_client[0],
        "sa_client_secret": fake.sa_client[1],
        "store": store,
        "max_retries": 2,
    }
    data.update(overrides)
    return ControlSettings.load(data, {})


async def seed_integration(fake: FakeWebex, plane: ControlPlane) -> None:
    """Store an Integration token as ``control login`` would."""
    from byova_control.tokens import OAuthTokens

    await plane.store.put_integration_tokens(OAuthTokens.from_response(fake.issue("integration")))


def plane_for(fake: FakeWebex, tmp_path: Path, **overrides: Any) -> ControlPlane:
    """A ControlPlane on a fresh SQLite store with fast retries."""
    store = overrides.pop("store", f"sqlite:///{tmp_path / 'control.db'}")
    plane = ControlPlane(make_settings(fake, store, **overrides))
    plane.client.jitter_s = 0.01
    plane.client.backoff_s = 0.01
    return plane
