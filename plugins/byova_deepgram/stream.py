"""``DeepgramStream``: one utterance streamed to Deepgram's live transcription over WebSocket.

The socket opens when the stream is created, in a task of its own, so the handshake
overlaps the caller's speech; frames fed before it is up are held and sent once it is
(a handshake refused with 429 or 5xx is retried meanwhile, since no text has been used).
Binary frames carry 8 kHz μ-law; ``{"type": "KeepAlive"}`` goes out after
``keepalive_s`` without audio, so the socket survives the agent's turn; at the end of
the turn ``{"type": "CloseStream"}`` makes Deepgram flush its last results, send its
``Metadata`` and close the socket normally. Server messages used: ``Results`` (interim
while ``is_final`` is false; ``speech_final`` marks an endpoint) and ``UtteranceEnd``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from byova_media.adapter_metrics import ErrorKind
from byova_media.adapters import Transcript
from byova_media.audio.codecs import pcm_to_ulaw

if TYPE_CHECKING:
    from byova_deepgram.stt import DeepgramSTT

__all__ = ["DeepgramStream", "SttError"]

log = logging.getLogger(__name__)
#: The websockets library logs handshake headers (the key) at DEBUG: never let it.
wire_log = logging.getLogger(f"{__name__}.wire")
wire_log.setLevel(logging.INFO)

ADAPTER = "deepgram"
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_NORMAL_CLOSURE = 1000
#: A dropped stream (barge-in, hang-up) waits this long at most for the close handshake.
_CLOSE_TIMEOUT_S = 1.0
_KEEPALIVE = json.dumps({"type": "KeepAlive"})
_CLOSE_STREAM = json.dumps({"type": "CloseStream"})


class SttError(RuntimeError):
    """Deepgram could not transcribe the turn; the message says why (never the key)."""


class _Refused(Exception):
    def __init__(self, reason: str, kind: ErrorKind, retry: bool) -> None:
        super().__init__(reason)
        self.kind: ErrorKind = kind
        self.retry = retry


def _refusal(exc: Exception) -> _Refused:
    """What a failed handshake means, and whether another try may succeed."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        try:
            body = json.loads(exc.response.body or b"{}")
            message = body.get("err_msg") or body.get("message") or ""
        except (ValueError, AttributeError):
            message = ""
        kind: ErrorKind = (
            "rate_limited" if status == 429 else "server_error" if status >= 500 else "client_error"
        )
        return _Refused(f"HTTP {status}: {str(message)[:200]}", kind, status in _RETRY_STATUS)
    if isinstance(exc, TimeoutError):
        return _Refused("no handshake in time", "timeout", True)
    return _Refused(f"{type(exc).__name__}: {exc}", "connection", True)


class DeepgramStream:
    """Feed 8 kHz PCM16 frames; partial transcripts come back; :meth:`finish` gives the text."""

    def __init__(self, stt: DeepgramSTT) -> None:
        self._stt = stt
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.finals: list[str] = []
        #: The latest interim hypothesis (what the caller is saying right now).
        self.partial = ""
        self._reported = ""
        #: Set when Deepgram detects the end of an utterance (``speech_final`` or
        #: ``UtteranceEnd``): a turn detector for agents that take turns themselves.
        self.endpoint = asyncio.Event()
        self.error: _Refused | None = None
        self._first_audio_at: float | None = None  # for the time-to-first-result metric
        self._got_result = False
        self._task = asyncio.create_task(self._run(), name="deepgram-stream")

    async def feed(self, frame: np.ndarray) -> Transcript | None:
        self._audio.put_nowait(pcm_to_ulaw(frame))
        if self.partial != self._reported:
            self._reported = self.partial
            return Transcript(self.partial, is_final=False)
        return None

    async def finish(self) -> Transcript:
        """End the turn: flush Deepgram and return every final result, joined."""
        self._audio.put_nowait(None)
        s = self._stt.settings
        try:
            async with asyncio.timeout(s.open_timeout_s * (s.max_retries + 1) + s.finish_timeout_s):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._fail(_Refused("no final transcript in time", "timeout", False))
            await self.aclose()
        text = " ".join(t for t in self.finals if t)
        if self.error is not None and not text:
            raise SttError(f"deepgram {s.model}: {self.error}")
        return Transcript(text)

    async def aclose(self) -> None:
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # --- the socket's life ---

    async def _run(self) -> None:
        ws = await self._open()
        if ws is None:
            return
        sender = asyncio.create_task(self._send_loop(ws))
        try:
            await self._receive_loop(ws)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            await ws.close()
        code = ws.close_code
        if code not in (None, _NORMAL_CLOSURE) and not self.error:
            self._fail(
                _Refused(f"closed with {code} {ws.close_reason}"[:200], "server_error", False)
            )

    async def _open(self) -> ClientConnection | None:
        s = self._stt.settings
        headers = {}
        if s.api_key is not None:
            headers["Authorization"] = f"Token {s.api_key.get_secret_value()}"
        for attempt in range(s.max_retries + 1):
            try:
                return await connect(
                    s.url(),
                    additional_headers=headers,
                    open_timeout=s.open_timeout_s,
                    compression=None,
                    max_size=2**20,
                    close_timeout=_CLOSE_TIMEOUT_S,
                    logger=wire_log,
                )
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                refused = _refusal(exc)
                self._count(refused.kind)
                if not refused.retry or attempt == s.max_retries:
                    self._fail(refused)
                    return None
                delay = s.retry_backoff_s * (2**attempt) * random.uniform(1, 1.5)
                log.warning("deepgram handshake failed (%s); retrying in %.2f s", refused, delay)
                await asyncio.sleep(delay)
        return None

    async def _send_loop(self, ws: ClientConnection) -> None:
        keepalive = self._stt.settings.keepalive_s
        while True:
            try:
                async with asyncio.timeout(keepalive):
                    ulaw = await self._audio.get()
            except TimeoutError:
                await ws.send(_KEEPALIVE)
                continue
            if ulaw is None:
                await ws.send(_CLOSE_STREAM)
                return
            if self._first_audio_at is None:
                self._first_audio_at = time.monotonic()
            await ws.send(ulaw)

    async def _receive_loop(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                if isinstance(message, str):
                    self._on_message(message)
        except ConnectionClosed:
            pass

    def _on_message(self, message: str) -> None:
        try:
            event: Any = json.loads(message)
            kind = event.get("type")
        except (ValueError, AttributeError):
            self._count("protocol")
            return
        if kind == "Results":
            self._on_results(event)
        elif kind == "UtteranceEnd":
            self.endpoint.set()

    def _on_results(self, event: Any) -> None:
        try:
            text = str(event["channel"]["alternatives"][0]["transcript"]).strip()
        except (KeyError, IndexError, TypeError):
            self._count("protocol")
            return
        if not self._got_result and self._first_audio_at is not None:
            self._got_result = True
            if self._stt.metrics is not None:
                self._stt.metrics.first_byte(ADAPTER, time.monotonic() - self._first_audio_at)
        if event.get("is_final"):
            if text:
                self.finals.append(text)
            self.partial = ""
            if event.get("speech_final"):
                self.endpoint.set()
        elif text:
            self.partial = " ".join([*self.finals, text])

    def _fail(self, refused: _Refused) -> None:
        if self.error is None:
            self.error = refused
            log.warning("deepgram stream failed: %s", refused)

    def _count(self, kind: ErrorKind) -> None:
        if self._stt.metrics is not None:
            self._stt.metrics.error(ADAPTER, kind)
