"""One WebSocket to a backend for one call: reconnects, keepalive, bounded queues, two clocks.

Nothing here is awaited by the gRPC side: caller audio and control messages go into
bounded deques (drop-oldest, counted) that a sender task drains. The sender also keeps
the backend's clock running: when no caller audio is queued it sends 20 ms frames of
μ-law silence at real-time pace, because Webex streams caller audio only while an
audio RPC is open and Twilio-style bots expect 50 frames/s for the whole call.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from byova_media import __version__
from byova_media.audio.formats import FRAME_MS, ULAW_SILENCE_FRAME
from byova_websocket.protocol import (
    BackendEvent,
    Message,
    ProtocolError,
    SessionInfo,
    WireProtocol,
)
from byova_websocket.settings import ConnectorSettings

__all__ = ["BackendLink", "LinkStats", "connect_options"]

log = logging.getLogger(__name__)
#: The websockets library logs every handshake header at DEBUG, secret ones included:
#: its connections log here, where DEBUG never goes.
wire_log = logging.getLogger(f"{__name__}.wire")
wire_log.setLevel(logging.INFO)

FRAME_S = FRAME_MS / 1000
#: After a stall, forget at most this much owed silence instead of bursting it.
_MAX_SILENCE_DEBT_S = 0.2
_CLOSE_S = 1.0
_NORMAL_CLOSURE = 1000


@dataclass
class LinkStats:
    """Counters of one connection's life (read by tests and added to the metrics)."""

    caller_frames_sent: int = 0
    caller_frames_dropped: int = 0
    control_dropped: int = 0
    silence_frames: int = 0
    connects: int = 0
    reconnects: int = 0
    protocol_errors: int = 0


def connect_options(settings: ConnectorSettings) -> dict[str, Any]:
    """Keyword arguments for ``websockets`` ``connect``: headers, timeouts, proxy, TLS."""
    options: dict[str, Any] = {
        "additional_headers": {k: v.get_secret_value() for k, v in settings.headers.items()},
        "open_timeout": settings.open_timeout_ms / 1000,
        "ping_interval": settings.ping_interval_ms / 1000 or None,
        "ping_timeout": settings.ping_timeout_ms / 1000 or None,
        "close_timeout": _CLOSE_S,
        "max_size": 2**20,
        "max_queue": 64,
        "compression": None,  # μ-law does not compress; save the CPU
        "user_agent_header": f"byova-media/{__version__}",
        "proxy": {"auto": True, "none": None}.get(settings.proxy, settings.proxy),
        "logger": wire_log,
    }
    if settings.url.startswith("wss:"):
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )
        if not settings.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        options["ssl"] = context
    return options


class BackendLink:
    """The call's connection to its backend, reopened after drops until ``down_limit_ms``.

    ``on_event`` receives decoded backend events; ``on_failed(reason)`` is called once
    when the backend stays unreachable past the limit; ``on_ended()`` when the backend
    closes the socket normally (code 1000), which means it ended the call.
    """

    def __init__(
        self,
        settings: ConnectorSettings,
        info: SessionInfo,
        protocol_factory: Callable[[], WireProtocol],
        *,
        on_event: Callable[[BackendEvent], None],
        on_failed: Callable[[str], None],
        on_ended: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.info = info
        self._factory = protocol_factory
        self._on_event = on_event
        self._on_failed = on_failed
        self._on_ended = on_ended
        self.stats = LinkStats()
        self._audio: collections.deque[bytes] = collections.deque(
            maxlen=max(1, settings.caller_queue_ms // FRAME_MS)
        )
        self._control: collections.deque[Message | Callable[[WireProtocol], list[Message]]] = (
            collections.deque(maxlen=settings.control_queue)
        )
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._settled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._protocol: WireProtocol | None = None
        self._closing = False
        self.failed = False

    def __repr__(self) -> str:
        return f"BackendLink({self.settings.safe_url}, conversation={self.info.conversation_id!r})"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def open(self) -> bool:
        """Connect (retrying until ``down_limit_ms``); return whether it succeeded."""
        if self._task is None:
            name = f"ws-link {self.info.conversation_id}"
            self._task = asyncio.create_task(self._run(), name=name)
        await self._settled.wait()
        return self.connected

    # --- from the gRPC side: never blocks ---

    def send_audio(self, ulaw: bytes) -> None:
        """Queue one caller frame; when the queue is full the oldest frame is dropped."""
        if len(self._audio) == self._audio.maxlen:
            self.stats.caller_frames_dropped += 1
        self._audio.append(ulaw)
        self._wake.set()

    def send(self, build: Callable[[WireProtocol], list[Message]]) -> None:
        """Queue control messages, built against the live connection's protocol when sent."""
        if len(self._control) == self._control.maxlen:
            self.stats.control_dropped += 1
        self._control.append(build)
        self._wake.set()

    async def close(self, build: Callable[[WireProtocol], list[Message]] | None = None) -> None:
        """Send the final messages (best effort, bounded in time) and close the socket."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        ws, protocol = self._ws, self._protocol
        self._ws = None
        self._settled.set()
        if ws is None or protocol is None:
            return
        try:
            async with asyncio.timeout(_CLOSE_S):
                for message in build(protocol) if build else ():
                    await ws.send(message)
                await ws.close()
        except (ConnectionClosed, TimeoutError, OSError):
            pass

    # --- the connection's life ---

    async def _run(self) -> None:
        """Connect, serve, and reconnect (resuming the call) until the call or backend ends."""
        resumed = False
        while not self._closing:
            ws = await self._connect()
            if ws is None:
                return  # down past the limit: the fallback took over
            protocol = self._factory()
            self._ws, self._protocol = ws, protocol
            try:
                for message in protocol.opening(self.info, resumed):
                    await ws.send(message)
            except ConnectionClosed:
                continue
            self.stats.connects += 1
            if resumed:
                self.stats.reconnects += 1
                log.info("backend %s reconnected; conversation resumed", self.settings.safe_url)
            resumed = True
            self._connected.set()
            self._settled.set()
            code = await self._serve(ws, protocol)
            if self._closing:
                return
            self._connected.clear()
            self._ws = None
            if code == _NORMAL_CLOSURE:
                log.info("backend closed the call's socket")
                self._settled.set()
                self._on_ended()
                return
            log.warning(
                "backend %s dropped (%s); reconnecting",
                self.settings.safe_url,
                code or "no close frame",
            )

    async def _connect(self) -> ClientConnection | None:
        """Open the socket, retrying with backoff; ``None`` once down past ``down_limit_ms``."""
        loop = asyncio.get_running_loop()
        s = self.settings
        delay = s.reconnect_initial_ms / 1000
        down_since = loop.time()
        options = connect_options(s)
        while not self._closing:
            try:
                return await connect(s.url, **options)
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ValueError) as exc:
                waited = loop.time() - down_since
                log.warning(
                    "backend %s unreachable (%s) for %.1f s",
                    s.safe_url,
                    type(exc).__name__,
                    waited,
                )
                if waited * 1000 >= s.down_limit_ms:
                    self._fail("backend_unavailable")
                    return None
                # Exponential backoff with jitter, never sleeping past the limit.
                pause = min(delay * random.uniform(0.5, 1.0), s.down_limit_ms / 1000 - waited)
                await asyncio.sleep(max(pause, 0.0))
                delay = min(delay * 2, s.reconnect_max_ms / 1000)
        return None

    def _fail(self, reason: str) -> None:
        self.failed = True
        self._settled.set()
        self._on_failed(reason)

    async def _serve(self, ws: ClientConnection, protocol: WireProtocol) -> int | None:
        """Run sender and receiver until the socket closes; return the backend's close code."""
        tasks = {
            asyncio.create_task(self._send_loop(ws, protocol)),
            asyncio.create_task(self._receive_loop(ws, protocol)),
        }
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        received = ws.protocol.close_rcvd
        if not self._closing:
            try:
                async with asyncio.timeout(_CLOSE_S):
                    await ws.close()
            except (TimeoutError, OSError):
                pass
        return received.code if received is not None else None

    async def _receive_loop(self, ws: ClientConnection, protocol: WireProtocol) -> None:
        try:
            async for message in ws:
                try:
                    events = protocol.decode(message)
                except ProtocolError as exc:
                    self.stats.protocol_errors += 1
                    if self.stats.protocol_errors <= 3:
                        log.warning("ignoring a malformed backend message: %s", exc)
                    continue
                for event in events:
                    try:
                        self._on_event(event)
                    except Exception:
                        log.exception("handling a backend event failed")
        except ConnectionClosed:
            pass

    async def _send_loop(self, ws: ClientConnection, protocol: WireProtocol) -> None:
        loop = asyncio.get_running_loop()
        slack = self.settings.silence_slack_ms / 1000
        origin = loop.time()
        frames = 0  # frames sent on this connection: the backend's clock
        audio, control, wake = self._audio, self._control, self._wake
        try:
            while True:
                wake.clear()
                if control:
                    build = control.popleft()
                    for message in build(protocol) if callable(build) else (build,):
                        await ws.send(message)
                    continue
                if audio:
                    await ws.send(protocol.audio(audio.popleft()))
                    self.stats.caller_frames_sent += 1
                    frames += 1
                    continue
                if not self.settings.silence_frames:
                    await wake.wait()
                    continue
                now = loop.time()
                due = origin + frames * FRAME_S + slack
                if now >= due:
                    if now - due > _MAX_SILENCE_DEBT_S:
                        origin += now - due - _MAX_SILENCE_DEBT_S
                    await ws.send(protocol.audio(ULAW_SILENCE_FRAME))
                    self.stats.silence_frames += 1
                    frames += 1
                    continue
                try:
                    async with asyncio.timeout(due - now):
                        await wake.wait()
                except TimeoutError:
                    pass
        except ConnectionClosed:
            pass
