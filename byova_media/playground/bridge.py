"""One playground call: a browser tab's WebSocket on one side, Webex's side of a call on the other.

The server plays Webex against its own gRPC port with the simulator, so the agent
cannot tell the playground from Webex: SESSION_START, then one audio RPC per turn
(settings message, 20 ms μ-law frames of the microphone, half-close at END_OF_INPUT),
the next audio RPC opened while a bargeable prompt plays, DTMF as START_OF_DTMF and a
digits RPC, SESSION_END on hang-up.

WebSocket messages (JSON text unless noted):

============  ==================================================================
from page     ``{"type": "call", "agent": id}``, ``{"type": "dtmf", "digits": "12#"}``,
              ``{"type": "hangup"}``; binary: microphone audio, PCM16 LE, 8 kHz mono
to page       ``started``, ``rpc`` (open/complete), ``event`` (name, metadata),
              ``prompt`` (text, bargeable), ``final``, ``turn`` (latency marks),
              ``transcript``, ``ended`` (event, metadata), ``error`` (message);
              binary: prompt audio, PCM16 LE, 8 kHz mono
============  ==================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from google.protobuf import json_format

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.codecs import pcm_to_ulaw, ulaw_to_pcm
from byova_media.audio.formats import FRAME_MS, ULAW_SILENCE_FRAME
from byova_media.audio.wav import is_wav, wav_to_ulaw
from byova_media.inspector import CallInspector
from byova_media.testing.simulator import (
    RpcResult,
    SimulatedCall,
    WebexSimulator,
    is_boundary,
)
from byova_media.wire import digit_value

__all__ = ["PlaygroundCall"]

_MIC_QUIET_S = 2.0  # no microphone frame for this long: send that much silence

log = logging.getLogger(__name__)

_FRAME_BYTES = 320  # 20 ms of 8 kHz PCM16, what the page sends and Webex's frame size
_MAX_QUEUED_FRAMES = 250  # 5 s: a stalled RPC drops the oldest microphone audio
_EVENT_NAMES = {v: k for k, v in pb.OutputEvent.EventType.items()}
_TERMINAL = frozenset({"TRANSFER_TO_AGENT", "SESSION_END"})
_KEYS = frozenset("0123456789*#ABCD")


class PlaygroundCall:
    """Bridges one WebSocket to one simulated Webex call on ``target``.

    Every RPC carries a fresh ``token()`` as its ``authorization`` (the server's own peer
    credential), so interceptors check the playground's calls like any other.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        target: str,
        inspector: CallInspector | None,
        token: Callable[[], str],
    ) -> None:
        self._ws = ws
        self._target = target
        self._token = token
        self._inspector = inspector
        self._outbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._mic: asyncio.Queue[bytes] = asyncio.Queue(_MAX_QUEUED_FRAMES)
        self._pending = bytearray()
        self._listening = False
        self._digits: list[str] = []
        self._keys = asyncio.Event()  # DTMF keys are waiting in _digits
        self._hangup = asyncio.Event()
        self._ended: tuple[str, dict[str, Any]] | None = None
        self._call: SimulatedCall | None = None
        self._task: asyncio.Task[None] | None = None
        self._turns_reported = 0

    @property
    def conversation_id(self) -> str:
        return self._call.conversation_id if self._call is not None else "-"

    async def serve(self) -> None:
        """Run until the page closes its WebSocket."""
        writer = asyncio.create_task(self._write())
        try:
            async for message in self._ws:
                if message.type == WSMsgType.BINARY:
                    self._on_audio(message.data)
                elif message.type == WSMsgType.TEXT:
                    self._on_text(message.data)
        finally:
            if self._task is not None and not self._task.done():
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._outbox.put_nowait(None)
            await writer

    # --- from the page ---

    def _on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
            kind = message["type"]
        except (ValueError, KeyError, TypeError):
            self._error("messages must be JSON objects with a type")
            return
        if kind == "call":
            if self._task is not None:
                self._error("this page already placed its call; reload to place another")
                return
            self._task = asyncio.create_task(self._place(str(message.get("agent") or "")))
        elif kind == "dtmf":
            digits = str(message.get("digits", ""))
            if not digits or not set(digits) <= _KEYS:
                self._error(f"not DTMF keys: {digits[:16]!r} (use 0-9, *, #, A-D)")
                return
            self._digits.append(digits)
            self._keys.set()
        elif kind == "hangup":
            self._hangup.set()
        else:
            self._error(f"unknown message type {str(kind)[:32]!r}")

    def _on_audio(self, data: bytes) -> None:
        """Microphone audio: cut into 20 ms frames; kept only while an audio RPC is open."""
        if not self._listening:
            self._pending.clear()
            return
        self._pending += data
        while len(self._pending) >= _FRAME_BYTES:
            frame = bytes(self._pending[:_FRAME_BYTES])
            del self._pending[:_FRAME_BYTES]
            if self._mic.full():
                self._mic.get_nowait()
            self._mic.put_nowait(frame)

    # --- to the page ---

    def _send(self, **message: Any) -> None:
        self._outbox.put_nowait(json.dumps(message))

    def _error(self, message: str) -> None:
        log.warning("playground: %s [conversation=%s]", message, self.conversation_id)
        self._send(type="error", message=message)

    async def _write(self) -> None:
        while (item := await self._outbox.get()) is not None:
            if self._ws.closed:
                continue
            with contextlib.suppress(ConnectionError):
                if isinstance(item, bytes):
                    await self._ws.send_bytes(item)
                else:
                    await self._ws.send_str(item)

    def _forward(self, rpc: int) -> Callable[[pb.VoiceVAResponse], None]:
        """Relay one RPC's responses to the page as they arrive."""

        def on_response(response: pb.VoiceVAResponse) -> None:
            for event in response.output_events[:1]:
                name = _EVENT_NAMES.get(event.event_type, str(event.event_type))
                metadata = dict(json_format.MessageToDict(event.metadata))
                self._send(type="event", rpc=rpc, name=name, metadata=metadata)
                if name in _TERMINAL:
                    self._ended = (name, metadata)
            for prompt in response.prompts:
                if prompt.text or prompt.audio_content:
                    self._send(
                        type="prompt",
                        rpc=rpc,
                        text=prompt.text,
                        bargeable=prompt.is_barge_in_enabled,
                    )
                if prompt.audio_content:
                    data = prompt.audio_content
                    ulaw = wav_to_ulaw(data) if is_wav(data) else data
                    self._outbox.put_nowait(ulaw_to_pcm(ulaw).astype("<i2").tobytes())
            if response.session_transcript.text:
                self._send(type="transcript", text=response.session_transcript.text)
            if response.response_type == pb.VoiceVAResponse.FINAL and not is_boundary(response):
                self._send(type="final", rpc=rpc)

        return on_response

    # --- the Webex side ---

    async def _place(self, agent: str) -> None:
        try:
            async with WebexSimulator(self._target, realtime=True, token=self._token) as sim:
                self._call = call = sim.call(agent)
                self._send(type="started", conversation_id=call.conversation_id, agent=agent)
                await self._converse(call)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("playground call failed [conversation=%s]", self.conversation_id)
            self._send(type="error", message="the call failed; see the server log")

    async def _converse(self, call: SimulatedCall) -> None:
        """Webex's loop: the welcome, then listen, answer, listen... until someone ends it."""
        bargeable = asyncio.Event()
        start = _event(call, pb.EventInput.SESSION_START)
        reply = self._rpc(call, "session_start", start, bargeable)
        while True:
            # The next input opens once the reply is over, or at once when it may be barged.
            await _first_of(reply, bargeable.wait(), self._hangup.wait())
            if self._hangup.is_set():
                break
            if self._over(reply):
                return
            bargeable = asyncio.Event()
            eoi, stop = asyncio.Event(), asyncio.Event()
            microphone = self._microphone(call, eoi, stop)
            audio = self._rpc(call, "audio", None, bargeable, requests=microphone, eoi=eoi)
            while not (eoi.is_set() or audio.done() or self._keys.is_set()):
                waits = [audio, eoi.wait(), self._keys.wait(), self._hangup.wait()]
                await _first_of(*waits, *([] if reply.done() else [reply]))
                if self._hangup.is_set() or (reply.done() and self._ended is not None):
                    break  # the caller hung up, or the agent ended the call while we listened
            if eoi.is_set():
                reply = audio
                continue
            stop.set()  # a key press or an ending closes the audio RPC without input
            await audio
            if self._hangup.is_set():
                break
            if self._over(reply) or self._over(audio):
                return
            if not self._keys.is_set():
                reply = audio
                continue
            self._keys.clear()
            digits = "".join(self._digits)
            self._digits.clear()
            dtmf = _event(call, pb.EventInput.START_OF_DTMF)
            await self._rpc(call, "start_of_dtmf", dtmf, asyncio.Event())
            keys = pb.DTMFInputs(dtmf_events=[digit_value(d) for d in digits])
            reply = self._rpc(call, "dtmf", call.request(dtmf_input=keys), bargeable)
        end = _event(call, pb.EventInput.SESSION_END)
        await self._rpc(call, "session_end", end, asyncio.Event())
        self._send(type="ended", event="caller_hangup", metadata={})

    def _over(self, rpc: asyncio.Task[RpcResult]) -> bool:
        """Whether a finished RPC ended the call (an ending event or an error); tell the page."""
        if not rpc.done():
            return False
        result = rpc.result()
        if result.code.name != "OK":
            self._send(
                type="ended",
                event="error",
                metadata={"status": result.code.name, "detail": result.details},
            )
            return True
        if self._ended is not None:
            event, metadata = self._ended
            self._send(type="ended", event=event, metadata=metadata)
            return True
        return False

    def _rpc(
        self,
        call: SimulatedCall,
        kind: str,
        request: pb.VoiceVARequest | None,
        bargeable: asyncio.Event,
        *,
        requests: AsyncIterator[pb.VoiceVARequest] | None = None,
        eoi: asyncio.Event | None = None,
    ) -> asyncio.Task[RpcResult]:
        """Open one RPC as a task; ``bargeable`` is set once it streams a bargeable prompt."""
        rpc = len(call.history)
        forward = self._forward(rpc)

        def on_response(response: pb.VoiceVAResponse) -> None:
            forward(response)
            if any(p.is_barge_in_enabled for p in response.prompts):
                bargeable.set()

        if requests is None:
            requests = _one(request)

        async def run() -> RpcResult:
            self._send(type="rpc", rpc=rpc, kind=kind, state="open")
            result = await call.stream(kind, requests, eoi, on_response=on_response)
            self._send(type="rpc", rpc=rpc, kind=kind, state="complete", status=result.code.name)
            if kind == "audio":
                self._report_turn(call)
            return result

        return asyncio.create_task(run())

    async def _microphone(
        self, call: SimulatedCall, eoi: asyncio.Event, stop: asyncio.Event
    ) -> AsyncIterator[pb.VoiceVARequest]:
        """An audio RPC's messages: settings, then the microphone until END_OF_INPUT."""
        yield call.request(
            audio_input=pb.VoiceInput(encoding=pb.VoiceInput.MULAW_FORMAT, sample_rate_hertz=8000)
        )
        while not self._mic.empty():
            self._mic.get_nowait()  # audio from before this RPC opened belongs to no turn
        self._listening = True
        heard_at = time.monotonic()
        try:
            while not (eoi.is_set() or stop.is_set()):
                try:
                    frame = await asyncio.wait_for(self._mic.get(), 0.1)
                except TimeoutError:
                    # Webex streams silence while it waits for speech; so does the bridge
                    # once the browser's microphone has been quiet for long enough to be
                    # muted or ended (shorter gaps are the browser's own batching).
                    if time.monotonic() - heard_at >= _MIC_QUIET_S:
                        heard_at = time.monotonic()
                        silence = ULAW_SILENCE_FRAME * int(_MIC_QUIET_S * 1000 // FRAME_MS)
                        yield call.request(audio_input=pb.VoiceInput(caller_audio=silence))
                    continue
                heard_at = time.monotonic()
                pcm = np.frombuffer(frame, dtype="<i2")
                yield call.request(audio_input=pb.VoiceInput(caller_audio=pcm_to_ulaw(pcm)))
        finally:
            self._listening = False

    def _report_turn(self, call: SimulatedCall) -> None:
        """Send the latest turn's latency marks and transcript, as the inspector holds them."""
        record = self._inspector.get(call.conversation_id) if self._inspector else None
        if record is None:
            return
        data = record.to_json()
        for turn in data["turns"][self._turns_reported :]:
            self._send(type="turn", **turn)
        self._turns_reported = len(data["turns"])
        if record.transcript:
            self._send(type="transcript", text=record.transcript)


def _event(call: SimulatedCall, kind: Any) -> pb.VoiceVARequest:
    return call.request(event_input=pb.EventInput(event_type=kind))


async def _one(request: pb.VoiceVARequest | None) -> AsyncIterator[pb.VoiceVARequest]:
    if request is not None:
        yield request


async def _first_of(*waits: Awaitable[Any]) -> None:
    """Return when the first of these finishes; the others are cancelled (tasks kept)."""
    tasks = [w if isinstance(w, asyncio.Task) else asyncio.ensure_future(w) for w in waits]
    owned = [t for t, w in zip(tasks, waits, strict=True) if t is not w]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in owned:
            task.cancel()
