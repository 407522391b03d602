"""``Server``: owns one gRPC server (and its HTTP port) from start through drain to stop.

No module-level state: two servers can run in one process, which the tests rely on.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import time
from types import TracebackType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media._proto import voicevirtualagent_pb2_grpc as pb_grpc
from byova_media.admission import AdmissionMonitor
from byova_media.app import App
from byova_media.cluster.node import ClusterNode
from byova_media.config import Config, ConfigError
from byova_media.conversation import ConversationRegistry
from byova_media.engine import Engine
from byova_media.http import HttpPort, build_http_app
from byova_media.inspector import CallInspector
from byova_media.logs import call_context
from byova_media.playground.policy import grpc_self_target, http_bind_host
from byova_media.plugins import PluginHost
from byova_media.servicer import VoiceVirtualAgentServicer
from byova_media.turn_taking import start_end_of_turn
from byova_media.watchdog import LoopWatchdog
from byova_media.ws.server import WsTransport

__all__ = ["SERVICE_NAME", "Server"]

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["VoiceVirtualAgent"].full_name
_SWEEP_INTERVAL_S = 5.0


class Server:
    """A byova-media server; use ``async with Server(config) as server`` or :meth:`run`."""

    def __init__(self, config: Config, plugins: PluginHost | None = None) -> None:
        self.config = config
        self.plugins = plugins or PluginHost.create(config.plugins, config.disable_plugins)
        self.app = App(config=config, plugins=self.plugins)
        self.port = 0
        self.http_port: int | None = None
        self.ws_port: int | None = None
        self.ws: WsTransport | None = None
        self._grpc: grpc.aio.Server | None = None
        self._http: HttpPort | None = None
        self._health = health.aio.HealthServicer()
        self._engine: Engine | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.admission: AdmissionMonitor | None = None
        self.cluster: ClusterNode | None = None
        #: The call inspector, when ``inspector`` or ``playground`` is on.
        self.inspector: CallInspector | None = None
        self._watchdog: LoopWatchdog | None = None
        self._ready = False
        self._stopped = asyncio.Event()

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "server not started"
        return self._engine

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Build everything from the plugins, bind the ports, start plugin work."""
        http_bind_host(self.config)  # refuse a playground on a public host before binding
        if self.config.inspector or self.config.playground:
            self.inspector = CallInspector(
                self.config.inspector_calls, record_audio=self.config.record_audio
            )
        self.plugins.configure(self.app)
        self.config = self.app.config  # plugins may prefer settings (App.prefer)
        self._engine = self._build_engine()
        await self._start_grpc(self._engine)
        if self.cluster is not None:
            await self.cluster.start(
                self.config.advertise_address or f"{self.config.host}:{self.port}"
            )
        await self._start_http()
        await self._start_ws(self._engine)
        await self.plugins.start(self.app)
        self._sweeper = asyncio.create_task(self._sweep())
        if self.config.loop_stall_warn_ms is not None:
            self._watchdog = LoopWatchdog(self.config.loop_stall_warn_ms, self.app.metrics)
            self._watchdog.start()
        await self._set_serving(True)
        self._ready = True
        log.info(
            "byova-media serving VoiceVirtualAgent on %s:%d%s (agents: %s)",
            self.config.host,
            self.port,
            (f", HTTP on port {self.http_port}" if self.http_port is not None else "")
            + (f", WebSocket on port {self.ws_port}" if self.ws_port is not None else ""),
            ", ".join(self._engine.registry.agents) or "none",
        )

    def _build_engine(self) -> Engine:
        """The engine over the registered agents and the configured VAD and admission."""
        app, config = self.app, self.config
        agents = self.plugins.agents(app)
        vads = self.plugins.vads(app)
        if config.vad not in vads:
            raise ConfigError(
                f"vad {config.vad!r} is not registered (known: {', '.join(sorted(vads))})"
            )
        app.end_of_turn = start_end_of_turn(app)
        if config.default_virtual_agent and config.default_virtual_agent not in agents:
            raise ConfigError(
                f"default_virtual_agent {config.default_virtual_agent!r} is not registered"
            )
        default = config.default_virtual_agent or next(
            (a.virtual_agent_id for a in agents.values() if a.is_default),
            next(iter(agents), None),
        )
        if config.max_loop_lag_ms is not None or config.max_cpu_percent is not None:
            self.admission = AdmissionMonitor(
                max_loop_lag_ms=config.max_loop_lag_ms,
                max_cpu_percent=config.max_cpu_percent,
                metrics=app.metrics,
            )
            self.admission.start()
        registry = ConversationRegistry(app, agents, default, self.admission)
        if config.cluster_redis_url:
            if not config.advertise_address and config.host in ("0.0.0.0", "::", ""):
                raise ConfigError(
                    "cluster mode on a wildcard host needs --advertise-address HOST:PORT, "
                    "the address other instances use to reach this one"
                )
            self.cluster = ClusterNode(app)
        return Engine(app, registry, vads[config.vad], self.cluster, inspector=self.inspector)

    async def _start_grpc(self, engine: Engine) -> None:
        """Bind the gRPC port (TLS when configured) with the service, health and reflection."""
        config = self.config
        options = [
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        server = grpc.aio.server(interceptors=self.plugins.interceptors(self.app), options=options)
        servicer = VoiceVirtualAgentServicer(engine, self.cluster)
        pb_grpc.add_VoiceVirtualAgentServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
        if self.cluster is not None:
            self.cluster.bind(engine)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        address = f"{config.host}:{config.port}"
        credentials = _server_credentials(config)
        if credentials is not None:
            self.port = server.add_secure_port(address, credentials)
        else:
            self.port = server.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot bind gRPC port {address}")
        self._grpc = server
        await server.start()

    async def _start_http(self) -> None:
        """Bind the HTTP port for health, metrics and plugin routes, when configured."""
        config = self.config
        if config.http_port is None:
            return
        target = grpc_self_target(config, self.port)
        http = build_http_app(
            self.app, lambda: self._ready, grpc_target=target, inspector=self.inspector
        )
        port = HttpPort(http, header_timeout_s=config.http_header_timeout_s)
        self.http_port = await port.start(http_bind_host(config), config.http_port)
        self._http = port

    async def _set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self._health.set(name, status)

    async def _start_ws(self, engine: Engine) -> None:
        """BYOVA over WebSocket on its own port, when configured (Config refuses plain
        WebSocket off loopback unless ws_allow_plain is set)."""
        config = self.config
        if config.ws_port is None:
            return
        context: ssl.SSLContext | None = None
        if config.tls_cert_file and config.tls_key_file:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
        authenticator = self.plugins.ws_authenticator(self.app)
        if authenticator is None:
            log.warning("WebSocket upgrades are not authenticated (no plugin checks the JWS)")
        self.ws = WsTransport(self.app, engine, authenticator)
        self.ws_port = await self.ws.start(config.host, config.ws_port, context)

    async def _sweep(self) -> None:
        """Expire idle conversations (Webex never said SESSION_END, or the call moved)."""
        interval = min(_SWEEP_INTERVAL_S, self.config.conversation_ttl_s / 4)
        while True:
            await asyncio.sleep(interval)
            for conv in self.engine.registry.expired():
                with call_context(conv.id, conv.call.tracking_id):
                    log.info(
                        "conversation expired after %.0f s idle", self.config.conversation_ttl_s
                    )
                await self.engine.end(conv, "expired")

    async def drain(self, timeout_s: float | None = None) -> None:
        """Stop taking new conversations; wait for open RPCs up to the drain timeout."""
        if self.app.draining:
            return
        self.app.draining = True
        await self._set_serving(False)
        if self.cluster is not None:
            await self.cluster.drain_started()
        timeout = self.config.drain_timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        log.info("draining: %d RPCs open, waiting up to %.0f s", self.engine.active_rpcs, timeout)
        try:
            await asyncio.wait_for(self._idle(), timeout)
        except TimeoutError:
            log.warning("drain timeout: %d RPCs still open", self.engine.active_rpcs)
        else:
            log.info("drained in %.1f s", time.monotonic() - started)
        if self.cluster is not None:
            await self.cluster.hand_off_all()

    async def _idle(self) -> None:
        """Until no RPC runs here: the engine's, and in a cluster those forwarded from here.

        Open WebSocket sockets too: a WebSocket call between steps has no RPC open.
        """
        await self.engine.wait_idle()
        if self.cluster is not None:
            await self.cluster.wait_idle()
            await self.engine.wait_idle()
        if self.ws is not None:
            await self.ws.wait_idle()

    async def stop(self, grace_s: float = 0.0) -> None:
        """Stop everything now (after :meth:`drain` for a graceful stop)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.app.draining = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.admission is not None:
            await self.admission.stop()
        if self._watchdog is not None:
            await self._watchdog.stop()
        if self._grpc is not None:
            # In a cluster, an RPC that a balancer or peer sent in the instant before the
            # ports close still finishes: cutting it would fail a call that could go on.
            grace = max(grace_s, 2.0) if self.cluster is not None else grace_s
            stopping = [self._grpc.stop(grace)]
            if self.cluster is not None:
                stopping.append(self.cluster.stop_serving(grace))
            await asyncio.gather(*stopping)
        if self.ws is not None:
            await self.ws.stop()
        if self._engine is not None:
            for conv in self._engine.registry.all():
                await self._engine.end(conv, "server_stop")
        if self.cluster is not None:
            await self.cluster.stop()
        if self._http is not None:
            await self._http.stop()
        if self.app.end_of_turn is not None:
            self.app.end_of_turn.close()
        await self.plugins.stop(self.app)

    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT, then drain and stop; a second signal forces the stop."""
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        forced = asyncio.Event()

        def on_signal() -> None:
            if stop_requested.is_set():
                log.warning("second signal: stopping now")
                forced.set()
            stop_requested.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        try:
            await self.start()
            await stop_requested.wait()
            drain = asyncio.create_task(self.drain())
            force = asyncio.create_task(forced.wait())
            await asyncio.wait({drain, force}, return_when=asyncio.FIRST_COMPLETED)
            drain.cancel()
            force.cancel()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()


def _server_credentials(config: Config) -> grpc.ServerCredentials | None:
    """TLS credentials when a certificate is configured (a client CA turns on mTLS)."""
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None  # Config refuses half a TLS configuration, so this means plaintext
    return grpc.ssl_server_credentials(
        [(config.tls_key_file.read_bytes(), config.tls_cert_file.read_bytes())],
        root_certificates=(
            config.tls_client_ca_file.read_bytes() if config.tls_client_ca_file else None
        ),
        require_client_auth=config.tls_client_ca_file is not None,
    )
