"""A real ``byova-media serve --plugin echo --ws-port 0`` process with JWS checks, per module.

The control plugin verifies tokens minted by the fake identity broker of ``tests/control``;
the process lives for one test module to keep the suite fast on two cores.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "control"))

from fake_idbroker import FakeIdBroker

from byova_media.testing.process import ServedProcess, serve_process

WS_SCHEMA = "a38a10b7-43e4-4676-a076-a7d6dce9387d"
WSS_URL = "wss://media.example.test"


@dataclass
class WsServer:
    """The served process, its broker, and helpers to address and authenticate to it."""

    served: ServedProcess
    broker: FakeIdBroker

    def url(self, path: str = "/v1/va") -> str:
        return f"ws://127.0.0.1:{self.served.ws_port}{path}"

    def token(self, **overrides: Any) -> str:
        claims = {"url": WSS_URL, "schema": WS_SCHEMA, **overrides}
        return self.broker.mint(self.broker.claims(**claims))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ws_server(tmp_path_factory: Any) -> AsyncIterator[WsServer]:
    store = tmp_path_factory.mktemp("store") / "control.sqlite3"
    async with FakeIdBroker() as broker:
        env = {
            "BYOVA_MEDIA_CONTROL_WS_DATASOURCE_URL": WSS_URL,
            "BYOVA_MEDIA_CONTROL_JWS_ISSUERS": broker.issuer(),
            "BYOVA_MEDIA_CONTROL_STORE": f"sqlite:///{store}",
            "BYOVA_MEDIA_WS_CLOSE_TIMEOUT_S": "1",
            # A test that fails with a socket open must not hold the module's teardown.
            "BYOVA_MEDIA_DRAIN_TIMEOUT_S": "2",
        }
        args = ("--plugin", "echo", "--plugin", "control", "--ws-port", "0")
        async with serve_process(*args, env=env) as served:
            assert served.ws_port, served.output
            yield WsServer(served, broker)
            await served.stop()
