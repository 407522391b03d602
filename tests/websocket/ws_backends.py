"""Real WebSocket backends on 127.0.0.1 for the connector tests (native and Twilio bots)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from byova_media.audio.codecs import pcm_to_ulaw, ulaw_to_pcm
from byova_media.audio.tones import tone

Handler = Callable[["Backend", ServerConnection], Awaitable[None]]


def beep(ms: int, freq: float = 660.0) -> bytes:
    """``ms`` of a tone as 8 kHz μ-law."""
    return pcm_to_ulaw(tone(freq, ms))


def frames(ulaw: bytes) -> list[bytes]:
    return [ulaw[i : i + 160] for i in range(0, len(ulaw), 160)]


def is_voiced(ulaw: bytes) -> bool:
    pcm = ulaw_to_pcm(ulaw).astype(np.float64)
    return bool(len(pcm)) and float(np.sqrt(np.mean(pcm * pcm))) > 500.0


@dataclass
class Backend:
    """A WebSocket server whose behaviour is a handler coroutine; records what it got."""

    handler: Handler
    port: int = 0
    received: list[Any] = field(default_factory=list)
    connections: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    server: Server | None = None
    live: set[ServerConnection] = field(default_factory=set)

    async def start(self) -> Backend:
        async def run(ws: ServerConnection) -> None:
            self.connections += 1
            self.live.add(ws)
            assert ws.request is not None
            self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
            try:
                await self.handler(self, ws)
            except ConnectionClosed:
                pass
            finally:
                self.live.discard(ws)

        self.server = await serve(run, "127.0.0.1", self.port, compression=None, close_timeout=1)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/bot"

    async def kill(self) -> None:
        """Drop every connection abruptly (no close frame) and stop listening."""
        assert self.server is not None
        self.server.close(close_connections=False)
        for ws in list(self.live):
            ws.transport.abort()
        await self.server.wait_closed()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await self.server.wait_closed()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        key = "type" if any("type" in m for m in self.received if isinstance(m, dict)) else "event"
        return [m for m in self.received if isinstance(m, dict) and m.get(key) == kind]

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():  # noqa: ASYNC110 - polls state that other tasks change
                await asyncio.sleep(0.01)


def _record(backend: Backend, message: str | bytes) -> Any:
    if isinstance(message, bytes):
        backend.received.append(message)
        return message
    obj = json.loads(message)
    backend.received.append(obj)
    return obj


async def native_bot(backend: Backend, ws: ServerConnection) -> None:
    """Greets with 400 ms of beep, answers each turn with 300 ms, handles DTMF 0/9."""
    async for message in ws:
        obj = _record(backend, message)
        if isinstance(obj, bytes):
            continue
        kind = obj["type"]
        if kind == "start":
            await ws.send(json.dumps({"type": "ready"}))
            for f in frames(beep(400)):
                await ws.send(f)
            await ws.send(json.dumps({"type": "mark", "name": "welcome"}))
        elif kind == "end_of_input":
            await ws.send(json.dumps({"type": "transcript", "text": "caller: (beep)"}))
            for f in frames(beep(300, 440.0)):
                await ws.send(json.dumps({"type": "audio", "audio": base64.b64encode(f).decode()}))
            await ws.send(json.dumps({"type": "mark", "name": "answer"}))
        elif kind == "dtmf" and obj["digits"] == "0":
            await ws.send(json.dumps({"type": "transfer", "metadata": {"queue": "billing"}}))
        elif kind == "dtmf" and obj["digits"] == "9":
            await ws.send(json.dumps({"type": "end", "metadata": {"reason": "bye"}}))
        elif kind == "dtmf":
            for f in frames(beep(200, 880.0)):
                await ws.send(f)


def twilio_message(event: str, **body: Any) -> str:
    return json.dumps({"event": event, "streamSid": "MZtest", **body})


async def twilio_echo_bot(backend: Backend, ws: ServerConnection) -> None:
    """A Twilio-protocol bot with its own VAD: echoes each utterance after 200 ms of quiet.

    DTMF ``0`` asks for a transfer with a ``byova:transfer`` mark.
    """
    voiced: list[bytes] = []
    quiet = 0
    replies = 0
    async for message in ws:
        obj = _record(backend, message)
        event = obj.get("event")
        if event == "media":
            payload = base64.b64decode(obj["media"]["payload"])
            if is_voiced(payload):
                voiced.append(payload)
                quiet = 0
            elif voiced:
                quiet += 1
                if quiet >= 10:
                    replies += 1
                    for f in voiced:
                        payload64 = base64.b64encode(f).decode()
                        await ws.send(twilio_message("media", media={"payload": payload64}))
                    await ws.send(twilio_message("mark", mark={"name": f"reply-{replies}"}))
                    voiced.clear()
        elif event == "dtmf" and obj["dtmf"]["digit"] == "0":
            await ws.send(twilio_message("mark", mark={"name": "byova:transfer"}))
