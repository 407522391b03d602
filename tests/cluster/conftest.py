"""Fixtures of the cluster tests: a real redis-server per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.cluster_helpers import RedisProcess


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A running redis-server (the test is skipped when the binary is missing)."""
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()
