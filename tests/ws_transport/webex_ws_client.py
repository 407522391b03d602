"""A Webex-side ``/v1/va`` client written from docs/byova-websocket.md alone.

It deliberately imports nothing of the server's WebSocket code: envelopes are plain dicts
built and checked here from the reference, so a test using it checks the server against
the reference rather than against itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

__all__ = ["FRAME", "WebexSocket", "connect", "is_event_final", "rfc3339"]

#: 20 ms of 8 kHz μ-law.
FRAME = 160
Frame = dict[str, Any]


def rfc3339(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def events_of(frame: Frame) -> list[str]:
    payload = frame.get("payload") or {}
    return [e["event_type"] for e in payload.get("output_events", [])]


def is_event_final(frame: Frame) -> bool:
    """A standalone START_OF_INPUT/END_OF_INPUT FINAL: a logical reply of its own (§7)."""
    payload = frame.get("payload") or {}
    return (
        payload.get("response_type") == "FINAL"
        and not payload.get("prompts")
        and events_of(frame) in (["START_OF_INPUT"], ["END_OF_INPUT"])
    )


def audio_of(frame: Frame) -> bytes:
    payload = frame.get("payload") or {}
    return b"".join(
        base64.b64decode(p.get("audio_content_b64", "")) for p in payload.get("prompts", [])
    )


async def connect(url: str, token: str | None = None, **headers: str) -> WebexSocket:
    """Open ``url`` (…/v1/va) with ``Authorization: Bearer <token>`` when a token is given."""
    extra = dict(headers)
    if token is not None:
        extra.setdefault("Authorization", f"Bearer {token}")
    ws = await websockets.connect(url, additional_headers=extra, max_size=2**24)
    return WebexSocket(ws)


class WebexSocket:
    """One socket of one conversation; every received frame is kept in :attr:`received`."""

    def __init__(
        self, ws: ClientConnection, conversation_id: str | None = None, org_id: str = "o-1"
    ) -> None:
        self.ws = ws
        self.conversation_id = conversation_id or f"c-{uuid.uuid4()}"
        self.org_id = org_id
        self.seq = 0
        self.received: list[Frame] = []

    # --- sending -----------------------------------------------------------------------

    async def send(self, kind: str, payload: dict[str, Any] | None = None, **extra: Any) -> int:
        self.seq += 1
        frame: Frame = {
            "type": kind,
            "seq": self.seq,
            "ts": rfc3339(),
            "conversation_id": self.conversation_id,
        }
        if payload is not None:
            frame["payload"] = payload
        frame.update(extra)
        await self.ws.send(json.dumps(frame))
        return self.seq

    async def request(self, input_type: dict[str, Any], agent: str = "echo", **more: Any) -> int:
        payload = {
            "conversation_id": self.conversation_id,
            "customer_org_id": self.org_id,
            "virtual_agent_id": agent,
            "voice_va_input_type": input_type,
            **more,
        }
        return await self.send("VOICE_VA_REQUEST", payload)

    async def event(self, event_type: str, **fields: Any) -> int:
        return await self.request({"event_input": {"event_type": event_type, **fields}})

    async def start(self, **fields: Any) -> int:
        return await self.event("SESSION_START", **fields)

    async def audio(
        self, ulaw: bytes, encoding: str = "MULAW_FORMAT", sample_rate_hertz: int = 8000
    ) -> None:
        """``ulaw`` as 20 ms frames, each carrying the encoding and rate (§5)."""
        for i in range(0, len(ulaw) - FRAME + 1, FRAME):
            audio = base64.b64encode(ulaw[i : i + FRAME]).decode()
            await self.request(
                {
                    "audio_input": {
                        "caller_audio_b64": audio,
                        "encoding": encoding,
                        "sample_rate_hertz": sample_rate_hertz,
                    }
                }
            )

    async def dtmf(self, *digits: str) -> int:
        return await self.request({"dtmf_input": {"dtmf_events": list(digits)}})

    async def ping(self) -> int:
        return await self.send("PING")

    # --- receiving ---------------------------------------------------------------------

    async def recv(self, timeout_s: float = 10.0) -> Frame:
        raw = await asyncio.wait_for(self.ws.recv(), timeout_s)
        assert isinstance(raw, str), "the server sent a binary frame"
        frame: Frame = json.loads(raw)
        self.received.append(frame)
        return frame

    async def until(self, done: Callable[[Frame], bool], timeout_s: float = 20.0) -> list[Frame]:
        """Frames up to and including the first for which ``done`` is true."""
        frames: list[Frame] = []
        async with asyncio.timeout(timeout_s):
            while True:
                frame = await self.recv(timeout_s)
                frames.append(frame)
                if done(frame):
                    return frames

    async def reply(self, timeout_s: float = 20.0) -> list[Frame]:
        """One answer to an input: frames up to the first FINAL that is not a boundary event."""
        return await self.until(
            lambda f: (
                f["type"] == "ERROR"
                or (
                    f["type"] == "VOICE_VA_RESPONSE"
                    and f["payload"]["response_type"] == "FINAL"
                    and not is_event_final(f)
                )
            ),
            timeout_s,
        )

    async def closed(self, timeout_s: float = 10.0) -> int | None:
        """Wait for the server's close, keeping frames that come first; the close code."""
        async with asyncio.timeout(timeout_s):
            try:
                while True:
                    await self.recv(timeout_s)
            except websockets.ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd is not None else None

    async def close(self) -> None:
        await self.ws.close()
