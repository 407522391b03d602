"""A Webex-side simulator: places calls the way Webex Contact Center does.

It opens one RPC per step of a call with the same ``conversation_id``: SESSION_START,
then audio RPCs that send a settings-only message, a few tiny bytes (as Webex does at
call start) and 160 B of μ-law every 20 ms (wall-clock paced with drift correction, or
as fast as possible for tests), stop sending at END_OF_INPUT and half-close; DTMF as
two RPCs (START_OF_DTMF, then the digits); NO_INPUT, custom events and hang-up. It
sends ``authorization`` and ``trackingid`` metadata and records everything received.
"""

from __future__ import annotations

import abc
import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import numpy as np
from google.protobuf import struct_pb2

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media._proto import voicevirtualagent_pb2_grpc as pb_grpc
from byova_media.audio.codecs import Encoding, encode, ulaw_to_pcm
from byova_media.audio.formats import FRAME_MS, FRAME_SAMPLES
from byova_media.audio.resample import resample
from byova_media.audio.wav import is_wav, read_wav, ulaw_wav, wav_to_ulaw
from byova_media.servicer import COMPLETED_AFTER_KEY
from byova_media.wire import digit_value

__all__ = ["CallSteps", "RpcResult", "SimulatedCall", "WebexSimulator", "is_boundary"]

_EVENT_NAMES = {v: k for k, v in pb.OutputEvent.EventType.items()}
_WIRE_ENCODING = {
    Encoding.MULAW: pb.VoiceInput.MULAW_FORMAT,
    Encoding.ALAW: pb.VoiceInput.ALAW_FORMAT,
    Encoding.L16: pb.VoiceInput.LINEAR16_FORMAT,
}
FRAME_S = FRAME_MS / 1000


_BOUNDARY_EVENTS = {pb.OutputEvent.START_OF_INPUT, pb.OutputEvent.END_OF_INPUT}


def is_boundary(response: pb.VoiceVAResponse) -> bool:
    """A standalone START_OF_INPUT/END_OF_INPUT: a complete message of its own, whatever its
    type, as the WebSocket reference's reading rule has it."""
    return (
        not response.prompts
        and len(response.output_events) == 1
        and response.output_events[0].event_type in _BOUNDARY_EVENTS
    )


@dataclass
class RpcResult:
    """Everything one RPC brought back, with timings relative to its start."""

    kind: str
    responses: list[pb.VoiceVAResponse] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    code: grpc.StatusCode = grpc.StatusCode.OK
    details: str = ""
    frames_sent: int = 0
    #: What the server says ended the RPC: ``half-close``, ``grace``, or ``""`` if unsaid.
    completed_after: str = ""
    #: ``time.monotonic()`` when the RPC was opened (to line RPCs up on one time axis).
    started_at: float = 0.0

    @property
    def events(self) -> list[str]:
        """Names of the output events in the order received (first event of each response)."""
        return [
            _EVENT_NAMES[r.output_events[0].event_type] for r in self.responses if r.output_events
        ]

    @property
    def finals(self) -> list[pb.VoiceVAResponse]:
        """The FINALs that close a reply; a standalone START/END_OF_INPUT is not one."""
        return [
            r
            for r in self.responses
            if r.response_type == pb.VoiceVAResponse.FINAL and not is_boundary(r)
        ]

    @property
    def final(self) -> pb.VoiceVAResponse | None:
        finals = self.finals
        return finals[-1] if finals else None

    @property
    def audio(self) -> bytes:
        """All prompt audio as raw 8 kHz μ-law (WAV prompts are unwrapped)."""
        parts = []
        for response in self.responses:
            for prompt in response.prompts:
                data = prompt.audio_content
                parts.append(wav_to_ulaw(data) if is_wav(data) else data)
        return b"".join(parts)

    @property
    def prompt_texts(self) -> list[str]:
        return [p.text for r in self.responses for p in r.prompts if p.text]

    @property
    def event_metadata(self) -> dict[str, Any]:
        """Metadata of the last response's event (transfer reason and the like)."""
        from google.protobuf import json_format

        for response in reversed(self.responses):
            if response.output_events:
                return dict(json_format.MessageToDict(response.output_events[0].metadata))
        return {}

    def time_of(self, what: str) -> float | None:
        return next((t for t, w in self.timeline if w == what), None)


class CallSteps(abc.ABC):
    """The steps of one call (start, say, DTMF, events, hang-up), whatever the transport.

    A transport implements :meth:`stream`: run one step's requests and collect what came
    back. ``realtime`` paces caller audio at 20 ms per frame.
    """

    def __init__(
        self, realtime: bool, conversation_id: str, virtual_agent_id: str, org_id: str
    ) -> None:
        self.realtime = realtime
        self.conversation_id = conversation_id
        self.virtual_agent_id = virtual_agent_id
        self.org_id = org_id
        self.history: list[RpcResult] = []

    def request(self, **fields: Any) -> pb.VoiceVARequest:
        """A request of this call (ids filled in) carrying ``fields``; for custom flows."""
        return pb.VoiceVARequest(
            conversation_id=self.conversation_id,
            customer_org_id=self.org_id,
            virtual_agent_id=self.virtual_agent_id,
            **fields,
        )

    def _event(
        self, kind: Any, name: str = "", params: Mapping[str, Any] | None = None
    ) -> pb.VoiceVARequest:
        parameters = struct_pb2.Struct()
        if params:
            parameters.update(dict(params))
        return self.request(
            event_input=pb.EventInput(event_type=kind, name=name, parameters=parameters)
        )

    async def start(self, parameters: Mapping[str, Any] | None = None, name: str = "") -> RpcResult:
        """The first RPC of a call: SESSION_START; the answer is the welcome."""
        return await self._simple(
            "session_start", self._event(pb.EventInput.SESSION_START, name, parameters)
        )

    async def no_input(self) -> RpcResult:
        return await self._simple("no_input", self._event(pb.EventInput.NO_INPUT))

    async def custom_event(
        self, name: str, parameters: Mapping[str, Any] | None = None
    ) -> RpcResult:
        return await self._simple(
            "custom_event", self._event(pb.EventInput.CUSTOM_EVENT, name, parameters)
        )

    async def hang_up(self) -> RpcResult:
        return await self._simple("session_end", self._event(pb.EventInput.SESSION_END))

    async def dtmf(self, digits: str) -> RpcResult:
        """Two RPCs, as Webex does: START_OF_DTMF (completed at once), then the digits."""
        await self._simple("start_of_dtmf", self._event(pb.EventInput.START_OF_DTMF))
        events: list[Any] = [digit_value(d) for d in digits]
        return await self._simple(
            "dtmf", self.request(dtmf_input=pb.DTMFInputs(dtmf_events=events))
        )

    async def _simple(self, kind: str, request: pb.VoiceVARequest) -> RpcResult:
        async def requests() -> AsyncIterator[pb.VoiceVARequest]:
            yield request

        return await self.stream(kind, requests(), None)

    async def say(
        self,
        audio: np.ndarray | bytes,
        *,
        sample_rate: int = 8000,
        encoding: Encoding = Encoding.MULAW,
        lead_silence_ms: int = 200,
        trail_silence_ms: int = 2000,
        tiny_prefix: bool = True,
        timestamps: bool = False,
        frame_order: Callable[[list[int]], Sequence[int]] | None = None,
    ) -> RpcResult:
        """An audio RPC carrying ``audio`` (PCM16 at ``sample_rate``, or a WAV file).

        Silence is streamed before it and after it, as Webex does, until the server
        sends END_OF_INPUT (or ``trail_silence_ms`` passes); then the RPC half-closes.
        ``frame_order`` may permute frame indices to exercise the jitter buffer.
        """
        frames = caller_frames(audio, sample_rate, encoding, lead_silence_ms, trail_silence_ms)
        order = list(frame_order(list(range(len(frames))))) if frame_order else range(len(frames))
        eoi = asyncio.Event()
        result_holder: dict[str, RpcResult] = {}

        async def requests() -> AsyncIterator[pb.VoiceVARequest]:
            yield self.request(
                audio_input=pb.VoiceInput(encoding=_WIRE_ENCODING[encoding], sample_rate_hertz=8000)
            )
            if tiny_prefix:
                yield self.request(audio_input=pb.VoiceInput(caller_audio=b"\xff\xff\xff"))
            started = time.monotonic()
            for n, index in enumerate(order):
                if eoi.is_set():
                    break
                message = pb.VoiceInput(caller_audio=frames[index])
                if timestamps:
                    message.audio_timestamp.FromMilliseconds(1_700_000_000_000 + 20 * index)
                yield self.request(audio_input=message)
                result_holder["r"].frames_sent += 1
                if self.realtime:
                    delay = started + (n + 1) * FRAME_S - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif n % 10 == 9:
                    await asyncio.sleep(0)

        return await self.stream("audio", requests(), eoi, result_holder)

    @abc.abstractmethod
    async def stream(
        self,
        kind: str,
        requests: AsyncIterator[pb.VoiceVARequest],
        eoi: asyncio.Event | None,
        holder: dict[str, RpcResult] | None = None,
    ) -> RpcResult:
        """Run one step: send ``requests``, collect every response, return the result.

        ``eoi`` is set when END_OF_INPUT arrives (a request generator stops on it, as
        Webex does); ``holder["r"]`` receives the result object before the step starts.
        """

    def save_prompts(self, directory: Path) -> list[Path]:
        """Write the audio each step received as a WAV file; return the paths."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for n, result in enumerate(self.history):
            if result.audio:
                path = directory / f"{n:02d}-{result.kind}.wav"
                path.write_bytes(ulaw_wav(result.audio))
                paths.append(path)
        return paths

    def timeline(self) -> str:
        """A readable account of the call, one line per received message."""
        lines = []
        for n, result in enumerate(self.history):
            lines.append(f"RPC {n + 1} {result.kind}:")
            lines.extend(f"  {t * 1000:8.1f} ms  {what}" for t, what in result.timeline)
        return "\n".join(lines)

    def report(self) -> str:
        """One line per RPC: status, when this client half-closed, when the server completed,
        and what the server says it completed after (``half-close`` or the ``grace``)."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.1f} ms"

        lines = [f"{'RPC':<4} {'kind':<14} {'status':<18} {'half-close':>11} "
                 f"{'completed':>11}  completed after"]  # fmt: skip
        for n, result in enumerate(self.history):
            completed = result.timeline[-1][0] if result.timeline else None
            lines.append(
                f"{n + 1:<4} {result.kind:<14} {result.code.name:<18} "
                f"{ms(result.time_of('half-close')):>11} {ms(completed):>11}  "
                f"{result.completed_after or 'not said'}"
            )
        return "\n".join(lines)


class SimulatedCall(CallSteps):
    """One call over gRPC: a conversation id and the RPCs placed for it so far."""

    def __init__(
        self, sim: WebexSimulator, conversation_id: str, virtual_agent_id: str, org_id: str
    ) -> None:
        super().__init__(sim.realtime, conversation_id, virtual_agent_id, org_id)
        self.sim = sim

    async def stream(
        self,
        kind: str,
        requests: AsyncIterator[pb.VoiceVARequest],
        eoi: asyncio.Event | None,
        holder: dict[str, RpcResult] | None = None,
        on_response: Callable[[pb.VoiceVAResponse], None] | None = None,
    ) -> RpcResult:
        """Run one RPC: send ``requests``, collect every response, return the result.

        ``eoi`` is set when END_OF_INPUT arrives (a request generator stops on it, as
        Webex does); ``holder["r"]`` receives the result object before the RPC starts;
        ``on_response`` sees each response as it arrives (to play prompts live).
        """
        started = time.monotonic()
        result = RpcResult(kind=kind, started_at=started)
        if holder is not None:
            holder["r"] = result
        self.history.append(result)
        stream = self.sim.stub.ProcessCallerInput(metadata=self.sim.metadata())

        async def write() -> None:
            try:
                async for request in requests:
                    await stream.write(request)
                result.timeline.append((time.monotonic() - started, "half-close"))
                await stream.done_writing()
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                pass  # the server completed or failed the RPC first

        writer = asyncio.create_task(write())
        try:
            while True:
                response = await stream.read()
                if response is grpc.aio.EOF:
                    break
                result.responses.append(response)
                label = _label(response)
                if label == "END_OF_INPUT" and eoi is not None:
                    eoi.set()
                result.timeline.append((time.monotonic() - started, label))
                if on_response is not None:
                    on_response(response)
            code = await stream.code()
            result.code = code
            result.details = await stream.details() or ""
            trailers = await stream.trailing_metadata()
        except grpc.aio.AioRpcError as exc:
            result.code = exc.code()
            result.details = exc.details() or ""
            trailers = exc.trailing_metadata()
        finally:
            if not writer.done():
                writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        result.completed_after = str(dict(trailers or ()).get(COMPLETED_AFTER_KEY, ""))
        result.timeline.append((time.monotonic() - started, f"completed {result.code.name}"))
        return result


class WebexSimulator:
    """A client channel to a BYOVA server, playing Webex; ``async with`` it."""

    def __init__(
        self,
        target: str,
        *,
        realtime: bool = True,
        token: str | Callable[[], str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        max_message_bytes: int = 64 * 2**20,
    ) -> None:
        self.target = target
        self.realtime = realtime
        self._token = token
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self.channel = (
            grpc.aio.secure_channel(target, credentials, options=options)
            if credentials is not None
            else grpc.aio.insecure_channel(target, options=options)
        )
        self.stub = pb_grpc.VoiceVirtualAgentStub(self.channel)  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> WebexSimulator:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        md = [("trackingid", f"SIM_{uuid.uuid4()}")]
        token = self._token() if callable(self._token) else self._token
        if token:
            md.append(("authorization", token))
        return tuple(md)

    def call(
        self,
        virtual_agent_id: str = "",
        *,
        conversation_id: str | None = None,
        org_id: str = "00000000-0000-4000-8000-000000000000",
    ) -> SimulatedCall:
        return SimulatedCall(self, conversation_id or str(uuid.uuid4()), virtual_agent_id, org_id)

    async def list_agents(self, org_id: str = "") -> pb.ListVAResponse:
        response: pb.ListVAResponse = await self.stub.ListVirtualAgents(
            pb.ListVARequest(customer_org_id=org_id), metadata=self.metadata()
        )
        return response


def _label(response: pb.VoiceVAResponse) -> str:
    """How a response shows in a timeline: its event, or its type (and whether it has audio)."""
    kind_name = pb.VoiceVAResponse.ResponseType.Name(response.response_type)
    if response.output_events:
        return _EVENT_NAMES[response.output_events[0].event_type]
    if any(p.audio_content for p in response.prompts):
        return f"{kind_name} audio"
    return kind_name


def pcm_of(result: RpcResult) -> np.ndarray:
    """The audio an RPC brought back, as 8 kHz PCM16 (for assertions)."""
    return ulaw_to_pcm(result.audio)


def caller_frames(
    audio: np.ndarray | bytes,
    sample_rate: int,
    encoding: Encoding,
    lead_silence_ms: int,
    trail_silence_ms: int,
) -> list[bytes]:
    """The 20 ms messages a caller sends for ``audio`` (PCM16 or a WAV), silence around it.

    Each message holds 20 ms whatever the codec (160 B of G.711, 320 B of L16).
    """
    if isinstance(audio, bytes):
        if not is_wav(audio):
            raise ValueError("bytes given to say() must be a WAV file; pass PCM as an ndarray")
        wav = read_wav(audio)
        pcm, sample_rate = wav.pcm, wav.sample_rate
    else:
        pcm = audio
    if sample_rate != 8000:
        pcm = resample(pcm, sample_rate, 8000)
    lead = np.zeros(FRAME_SAMPLES * lead_silence_ms // FRAME_MS, dtype=np.int16)
    trail = np.zeros(FRAME_SAMPLES * trail_silence_ms // FRAME_MS, dtype=np.int16)
    pcm = np.concatenate((lead, pcm.astype(np.int16), trail))
    return [
        encode(pcm[i : i + FRAME_SAMPLES], encoding)
        for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES)
    ]
