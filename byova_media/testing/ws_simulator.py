"""The Webex simulator over WebSocket: the same calls as :mod:`.simulator`, on ``/v1/va``.

One socket per call, opened by the first step; each step's requests go out as
``VOICE_VA_REQUEST`` envelopes (encoding and rate on every audio frame, as the reference
requires) and the step's result collects the ``VOICE_VA_RESPONSE`` frames up to the
step's answer: the first FINAL that is not a standalone START_OF_INPUT/END_OF_INPUT. An
audio step in which the server heard no speech has no answer on WebSocket and returns
when its audio is sent. Results are the same :class:`RpcResult` objects as over gRPC
(an ERROR envelope becomes the matching gRPC status), so tests and the load generator
read both transports alike.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import aiohttp
import grpc
from google.protobuf import json_format

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.testing.simulator import CallSteps, RpcResult

__all__ = ["WsSimulatedCall", "WsWebexSimulator", "is_ws_target"]

_EVENT_NAMES = {v: k for k, v in pb.OutputEvent.EventType.items()}
_BOUNDARIES = frozenset({"START_OF_INPUT", "END_OF_INPUT"})
#: ERROR code (and status) of the socket → the gRPC status a gRPC step would have ended with.
_STATUS = {
    "unauthorized": grpc.StatusCode.UNAUTHENTICATED,
    "bad_request": grpc.StatusCode.INVALID_ARGUMENT,
    "unsupported_media": grpc.StatusCode.INVALID_ARGUMENT,
    "upstream_error": grpc.StatusCode.INTERNAL,
    "rate_limit": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "timeout": grpc.StatusCode.DEADLINE_EXCEEDED,
}
_STEP_TIMEOUT_S = 120.0
#: After an audio step's last frame and a PING barrier: how long to wait for the server to
#: report speech it has not reached yet (frames sent faster than real time queue up).
_SPEECH_GRACE_S = 1.0


def is_ws_target(target: str) -> bool:
    """A ``ws://`` or ``wss://`` address (anything else is a gRPC ``HOST:PORT``)."""
    return target.startswith(("ws://", "wss://"))


class _Clock:
    """RFC 3339 UTC timestamps with milliseconds, the date part formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{int(now * 1000) % 1000:03d}Z"


_now = _Clock()


def request_payload(request: pb.VoiceVARequest, audio_format: dict[str, Any]) -> dict[str, Any]:
    """A protobuf request as the WebSocket payload; ``audio_format`` fills every audio frame."""
    data = json_format.MessageToDict(request, preserving_proto_field_name=True)
    which = request.WhichOneof("voice_va_input_type")
    if which is not None:
        inner = data.pop(which, {})
        if which == "audio_input":
            if "caller_audio" in inner:
                inner["caller_audio_b64"] = inner.pop("caller_audio")
            inner = {**audio_format, **inner}
        elif which == "dtmf_input":
            inner.setdefault("dtmf_events", [])
        elif which == "event_input":
            inner.setdefault("event_type", "UNSPECIFIED_INPUT")
        data["voice_va_input_type"] = {which: inner}
    return data


def response_from_payload(payload: dict[str, Any]) -> pb.VoiceVAResponse:
    """A WebSocket response payload as the protobuf message (``_b64`` fields decoded)."""
    data = dict(payload)
    prompts = []
    for prompt in data.get("prompts", []):
        prompt = dict(prompt)
        if "audio_content_b64" in prompt:
            prompt["audio_content"] = prompt.pop("audio_content_b64")
        prompts.append(prompt)
    if prompts:
        data["prompts"] = prompts
    response = pb.VoiceVAResponse()
    json_format.ParseDict(data, response, ignore_unknown_fields=True)
    return response


def _answers(response: pb.VoiceVAResponse) -> bool:
    """Whether a response ends a step: a FINAL that is not a boundary event of its own."""
    if response.response_type != pb.VoiceVAResponse.FINAL:
        return False
    events = [_EVENT_NAMES[e.event_type] for e in response.output_events]
    return bool(response.prompts) or not events or not set(events) <= _BOUNDARIES


@dataclass
class _Step:
    """The step in progress: its result, END_OF_INPUT and speech signals, its answer."""

    result: RpcResult
    eoi: asyncio.Event | None
    started: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    speech: asyncio.Event = field(default_factory=asyncio.Event)


def _plain_audio(request: pb.VoiceVARequest) -> bool:
    """Only ids and caller audio: no timestamp, language or extra maps to carry."""
    audio = request.audio_input
    return not (
        audio.HasField("audio_timestamp")
        or audio.language_code
        or audio.is_single_utterance
        or request.additional_info
        or request.allow_partial_responses
        or request.vendor_specific_config
    )


class WsSimulatedCall(CallSteps):
    """One call on one socket; steps run one after another."""

    def __init__(
        self, sim: WsWebexSimulator, conversation_id: str, virtual_agent_id: str, org_id: str
    ) -> None:
        super().__init__(sim.realtime, conversation_id, virtual_agent_id, org_id)
        self.sim = sim
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._seq = 0
        self._format: dict[str, Any] = {"encoding": "MULAW_FORMAT", "sample_rate_hertz": 8000}
        self._step: _Step | None = None
        self._closed: str | None = None
        self._pongs: dict[int, asyncio.Event] = {}
        self._ids: tuple[str, str, str] | None = None

    async def _socket(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is None:
            self._ws = await self.sim.connect()
            self._reader = asyncio.create_task(self._read(self._ws))
        return self._ws

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, request: pb.VoiceVARequest) -> None:
        if request.WhichOneof("voice_va_input_type") == "audio_input":
            audio = request.audio_input
            if audio.encoding:
                self._format["encoding"] = pb.VoiceInput.VoiceEncoding.Name(audio.encoding)
            if audio.sample_rate_hertz:
                self._format["sample_rate_hertz"] = audio.sample_rate_hertz
            if not audio.caller_audio:
                return  # gRPC's settings-only message: on WebSocket every frame carries them
            if _plain_audio(request):
                self._seq += 1
                await ws.send_str(self._audio_frame(audio.caller_audio))
                return
        self._seq += 1
        frame = {
            "type": "VOICE_VA_REQUEST",
            "seq": self._seq,
            "ts": _now(),
            "conversation_id": self.conversation_id,
            "payload": request_payload(request, self._format),
        }
        await ws.send_str(json.dumps(frame, separators=(",", ":")))

    def _audio_frame(self, audio: bytes) -> str:
        """The text of a plain caller-audio frame, built without a JSON encoder.

        The load generator sends fifty of these a second per call; the ids are encoded
        once per call and base64 needs no JSON escaping.
        """
        if self._ids is None:
            self._ids = (
                json.dumps(self.conversation_id),
                json.dumps(self.org_id),
                json.dumps(self.virtual_agent_id),
            )
        conversation, org, agent = self._ids
        b64 = base64.b64encode(audio).decode("ascii")
        fmt = self._format
        return (
            f'{{"type":"VOICE_VA_REQUEST","seq":{self._seq},"ts":"{_now()}",'
            f'"conversation_id":{conversation},"payload":{{"conversation_id":{conversation},'
            f'"customer_org_id":{org},"virtual_agent_id":{agent},"voice_va_input_type":'
            f'{{"audio_input":{{"caller_audio_b64":"{b64}","encoding":"{fmt["encoding"]}",'
            f'"sample_rate_hertz":{int(fmt["sample_rate_hertz"])}}}}}}}}}'
        )

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(msg.data)
            if frame.get("type") == "PONG":
                if (waiting := self._pongs.pop(frame.get("seq"), None)) is not None:
                    waiting.set()
                continue
            step = self._step
            if step is None:
                continue  # e.g. a PONG or a late frame between steps
            result, eoi, done = step.result, step.eoi, step.done
            now = time.monotonic() - step.started
            if frame.get("type") == "ERROR":
                result.code = _STATUS.get(frame.get("code"), grpc.StatusCode.UNKNOWN)
                if frame.get("status") == 404:
                    result.code = grpc.StatusCode.NOT_FOUND
                result.details = str(frame.get("detail", ""))
                result.timeline.append((now, f"ERROR {frame.get('code')}"))
                done.set()
                continue
            if frame.get("type") != "VOICE_VA_RESPONSE":
                continue
            response = response_from_payload(frame.get("payload") or {})
            result.responses.append(response)
            label = pb.VoiceVAResponse.ResponseType.Name(response.response_type)
            if response.output_events:
                label = _EVENT_NAMES[response.output_events[0].event_type]
                if label == "START_OF_INPUT":
                    step.speech.set()
                if label == "END_OF_INPUT" and eoi is not None:
                    eoi.set()
            elif any(p.audio_content for p in response.prompts):
                label = f"{label} audio"
            result.timeline.append((now, label))
            if _answers(response):
                done.set()
        self._closed = f"socket closed ({ws.close_code})"
        if self._step is not None:
            self._step.done.set()

    async def stream(
        self,
        kind: str,
        requests: AsyncIterator[pb.VoiceVARequest],
        eoi: asyncio.Event | None,
        holder: dict[str, RpcResult] | None = None,
    ) -> RpcResult:
        started = time.monotonic()
        result = RpcResult(kind=kind, started_at=started)
        if holder is not None:
            holder["r"] = result
        self.history.append(result)
        step = self._step = _Step(result, eoi, started)
        done = step.done
        try:
            ws = await self._socket()
            async for request in requests:
                if done.is_set():
                    break
                await self._send(ws, request)
            result.timeline.append((time.monotonic() - started, "half-close"))
            heard = kind != "audio" or await self._speech_heard(ws, step)
            if heard and not done.is_set():
                await asyncio.wait_for(done.wait(), _STEP_TIMEOUT_S)
            lost = self._closed and not result.finals and kind != "session_end"
            if result.code == grpc.StatusCode.OK and lost:
                result.code, result.details = grpc.StatusCode.UNAVAILABLE, str(self._closed)
        except aiohttp.WSServerHandshakeError as exc:
            result.code = (
                grpc.StatusCode.UNAUTHENTICATED
                if exc.status == 401
                else grpc.StatusCode.UNAVAILABLE
            )
            result.details = f"upgrade refused with HTTP {exc.status}"
        except (aiohttp.ClientError, ConnectionError) as exc:
            result.code, result.details = grpc.StatusCode.UNAVAILABLE, str(exc)
        except TimeoutError:
            result.code, result.details = grpc.StatusCode.DEADLINE_EXCEEDED, "no answer"
        finally:
            self._step = None
        result.timeline.append((time.monotonic() - started, f"completed {result.code.name}"))
        return result

    async def _speech_heard(self, ws: aiohttp.ClientWebSocketResponse, step: _Step) -> bool:
        """Whether the server heard speech in the audio just sent (so an answer will come).

        WebSocket has no half-close: a PING answered means every frame before it was read;
        the engine may still be working through them, hence a short grace for its
        START_OF_INPUT.
        """
        if step.speech.is_set():
            return True
        self._seq += 1
        pong = self._pongs[self._seq] = asyncio.Event()
        ping = {"type": "PING", "seq": self._seq, "ts": _now()}
        await ws.send_str(json.dumps(ping | {"conversation_id": self.conversation_id}))
        await asyncio.wait_for(pong.wait(), _STEP_TIMEOUT_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(step.speech.wait(), _SPEECH_GRACE_S)
        return step.speech.is_set()

    async def hang_up(self) -> RpcResult:
        """SESSION_END, its answer (if any), then the socket is closed as Webex does."""
        result = await super().hang_up()
        await self.close()
        return result

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


class WsWebexSimulator:
    """Places calls on ``ws://HOST:PORT`` (or ``wss://``) the way Webex does; ``async with`` it."""

    def __init__(
        self,
        target: str,
        *,
        realtime: bool = True,
        token: str | Callable[[], str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.target = target.rstrip("/")
        self.realtime = realtime
        self._token = token
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._calls: list[WsSimulatedCall] = []

    async def __aenter__(self) -> WsWebexSimulator:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._session

    def headers(self) -> dict[str, str]:
        headers = {"trackingId": f"SIM_{uuid.uuid4()}"}
        token = self._token() if callable(self._token) else self._token
        if token:
            headers["Authorization"] = token if token.startswith("Bearer ") else f"Bearer {token}"
        return headers

    async def connect(self, path: str = "/v1/va") -> aiohttp.ClientWebSocketResponse:
        return await self._client().ws_connect(
            self.target + path,
            headers=self.headers(),
            ssl=self._ssl if self._ssl is not None else True,
            max_msg_size=64 * 2**20,
            autoping=True,
        )

    def call(
        self,
        virtual_agent_id: str = "",
        *,
        conversation_id: str | None = None,
        org_id: str = "00000000-0000-4000-8000-000000000000",
    ) -> WsSimulatedCall:
        call = WsSimulatedCall(self, conversation_id or str(uuid.uuid4()), virtual_agent_id, org_id)
        self._calls.append(call)
        return call

    async def list_agents(self, org_id: str = "") -> pb.ListVAResponse:
        """Discovery on ``/v1/listVirtualAgents``, as the gRPC message (no default flag)."""
        ws = await self.connect("/v1/listVirtualAgents")
        try:
            await ws.send_str(json.dumps({"customer_org_id": org_id}))
            answer = json.loads(await ws.receive_str(timeout=30))
        finally:
            await ws.close()
        return pb.ListVAResponse(
            virtual_agents=[
                pb.VirtualAgentInfo(virtual_agent_id=a["id"], virtual_agent_name=a.get("name", ""))
                for a in answer.get("virtual_agents", [])
            ]
        )

    async def close(self) -> None:
        for call in self._calls:
            await call.close()
        self._calls.clear()
        if self._session is not None:
            await self._session.close()
