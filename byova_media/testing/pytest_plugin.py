"""pytest fixtures for testing byova-media agents offline (registered via ``pytest11``).

``byova_server`` starts real servers on 127.0.0.1 with a free port and stops them after
the test; ``webex`` connects simulators to the last server started::

    async def test_welcome(byova_server, webex):
        await byova_server(plugins=["echo"])
        call = (await webex()).call("echo")
        result = await call.start()
        assert result.final is not None
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal

import pytest

from byova_media.config import Config
from byova_media.plugins import PluginHost
from byova_media.server import Server
from byova_media.testing.simulator import WebexSimulator
from byova_media.testing.simulators import Simulator
from byova_media.testing.ws_simulator import WsWebexSimulator

__all__ = ["ServerPool", "Simulator", "SimulatorFactory", "byova_server", "webex"]

SimulatorFactory = Callable[..., Awaitable[Simulator]]


class ServerPool:
    """Starts servers for one test and stops them after it; call it to start one."""

    def __init__(self) -> None:
        self.servers: list[Server] = []

    async def __call__(
        self,
        plugins: Sequence[str] = (),
        extra_plugins: Sequence[tuple[str, object]] = (),
        env: dict[str, str] | None = None,
        **settings: Any,
    ) -> Server:
        """Start a server with the named plugins (and plugin objects) and these settings."""
        settings.setdefault("host", "127.0.0.1")
        settings.setdefault("port", 0)
        names = list(plugins)
        config = Config.load(
            env=env or {}, overrides={**settings, "plugins": tuple(names)}, plugin_names=names
        )
        server = Server(config, PluginHost.create(names, discover=False, extra=extra_plugins))
        await server.start()
        self.servers.append(server)
        return server

    @property
    def last(self) -> Server:
        if not self.servers:
            raise RuntimeError("start a server with byova_server(...) first")
        return self.servers[-1]

    async def stop_all(self) -> None:
        for server in reversed(self.servers):
            await server.stop()


@pytest.fixture
async def byova_server() -> AsyncIterator[ServerPool]:
    """``await byova_server(plugins=[...], extra_plugins=[(name, obj)], **settings)`` → Server."""
    pool = ServerPool()
    yield pool
    await pool.stop_all()


@pytest.fixture
async def webex(byova_server: ServerPool) -> AsyncIterator[SimulatorFactory]:
    """``await webex(server=None, realtime=False, token=None, transport="grpc")`` → a
    simulator connected to ``server`` (default: the last server this test started).

    ``transport="ws"`` places calls over WebSocket; start that server with ``ws_port=0``.
    """
    sims: list[Simulator] = []

    async def connect(
        server: Server | None = None,
        *,
        realtime: bool = False,
        transport: Literal["grpc", "ws"] = "grpc",
        **kwargs: Any,
    ) -> Simulator:
        server = server or byova_server.last
        sim: Simulator
        if transport == "ws":
            if server.ws_port is None:
                raise RuntimeError("start the server with ws_port=0 to call it over WebSocket")
            sim = WsWebexSimulator(f"ws://127.0.0.1:{server.ws_port}", realtime=realtime, **kwargs)
        else:
            sim = WebexSimulator(f"127.0.0.1:{server.port}", realtime=realtime, **kwargs)
        sims.append(sim)
        return sim

    yield connect
    for sim in sims:
        await sim.close()
