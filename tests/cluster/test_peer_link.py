"""The peer link: its wire format, its credential check, cancellation, and the edge's retries.

``RawLink`` speaks the frame format by hand, as docs/cluster.md describes it, so these
tests pin the protocol itself and not only this package's two ends of it.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.cluster import link as peer_link
from byova_media.cluster.credential import PeerCredential
from byova_media.cluster.forwarding import CallerRequests, OwnerUnreachable, PeerLinks
from byova_media.cluster.metrics import ClusterMetrics
from byova_media.cluster.peer_server import InboundStream
from byova_media.metrics import Metrics
from byova_media.rpc import RpcAbort, RpcOutput
from byova_media.server import Server
from tests.cluster.cluster_helpers import (
    SECRET,
    RedisProcess,
    cluster_settings,
    free_port,
    until,
)

HEADER = struct.Struct(">IBI")
PREAMBLE = b"BYOVAPL1"
OPEN, REQUEST, HALF_CLOSE, CANCEL, RESPONSE, STATUS = range(1, 7)
FINAL = pb.VoiceVAResponse.FINAL


def frame(kind: int, stream: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(len(payload) + 5, kind, stream) + payload


def open_payload(token: str) -> bytes:
    return json.dumps({"token": token, "trackingid": "test"}).encode()


def session_start(conversation_id: str) -> pb.VoiceVARequest:
    return pb.VoiceVARequest(
        conversation_id=conversation_id,
        virtual_agent_id="echo",
        event_input=pb.EventInput(event_type=pb.EventInput.SESSION_START),
    )


class RawLink:
    """One connection to an owner's peer link, frames written and read by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, server: Server, preamble: bytes = PREAMBLE) -> RawLink:
        assert server.cluster is not None
        port = int(server.cluster.link_address.rpartition(":")[2])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(preamble)
        return cls(reader, writer)

    def send(self, kind: int, stream: int, payload: bytes = b"") -> None:
        self.writer.write(frame(kind, stream, payload))

    def call(self, stream: int, token: str, *requests: pb.VoiceVARequest) -> None:
        """Open ``stream``, send ``requests`` and half-close."""
        self.send(OPEN, stream, open_payload(token))
        for request in requests:
            self.send(REQUEST, stream, request.SerializeToString())
        self.send(HALF_CLOSE, stream)

    async def results(self, count: int) -> dict[int, tuple[list[pb.VoiceVAResponse], str]]:
        """Responses and status code of the next ``count`` streams to complete."""
        responses: dict[int, list[pb.VoiceVAResponse]] = {}
        done: dict[int, tuple[list[pb.VoiceVAResponse], str]] = {}
        async with asyncio.timeout(10):
            while len(done) < count:
                length, kind, stream = HEADER.unpack(await self.reader.readexactly(HEADER.size))
                payload = await self.reader.readexactly(length - 5)
                if kind == RESPONSE:
                    responses.setdefault(stream, []).append(pb.VoiceVAResponse.FromString(payload))
                else:
                    assert kind == STATUS
                    done[stream] = (responses.pop(stream, []), json.loads(payload)["code"])
        return done

    async def closed_by_peer(self) -> bool:
        async with asyncio.timeout(10):
            return await self.reader.read() == b""

    def close(self) -> None:
        self.writer.close()


async def test_a_forwarded_rpc_without_a_valid_peer_credential_is_refused(
    redis: RedisProcess, byova_server: Any
) -> None:
    a = await byova_server(plugins=["echo"], **cluster_settings(redis))
    link = await RawLink.connect(a)
    first = session_start("c-1")
    forged = PeerCredential("some-other-secret-entirely").sign("c-1")
    stolen = PeerCredential(SECRET).sign("another-conversation")
    expired = PeerCredential(SECRET, clock=lambda: 0.0).sign("c-1")
    for number, token in enumerate(("", forged, stolen, expired, "v1.x.y"), start=1):
        link.call(number, token, first)
    refused = await link.results(5)
    assert {code for _, code in refused.values()} == {"UNAUTHENTICATED"}
    assert all(responses == [] for responses, _ in refused.values())
    link.call(9, PeerCredential(SECRET).sign("c-1"), first)
    (responses, code), *_ = (await link.results(1)).values()
    assert code == "OK" and responses[-1].response_type == FINAL
    assert len(a.engine.registry) == 1  # only the signed RPC reached the engine
    value = a.app.metrics.registry.get_sample_value
    assert (
        sum(
            value("byova_cluster_peer_rejections_total", {"reason": r}) or 0.0
            for r in ("missing", "malformed", "expired", "bad_signature")
        )
        == 5
    )
    link.close()


async def test_a_connection_that_is_not_a_peer_link_is_cut(
    redis: RedisProcess, byova_server: Any
) -> None:
    a = await byova_server(plugins=["echo"], **cluster_settings(redis))
    stray = await RawLink.connect(a, preamble=b"GET / HTTP/1.1\r\n\r\n")
    assert await stray.closed_by_peer()
    stray.close()
    oversized = await RawLink.connect(a)
    oversized.writer.write(HEADER.pack(a.config.max_message_bytes + 6, REQUEST, 1))
    assert await oversized.closed_by_peer()
    oversized.close()


@pytest.mark.parametrize("how", ["cancel", "disconnect"])
async def test_a_cancelled_forward_ends_the_owners_rpc(
    redis: RedisProcess, byova_server: Any, how: str
) -> None:
    a = await byova_server(plugins=["echo"], **cluster_settings(redis))
    token = PeerCredential(SECRET).sign("c-2")
    link = await RawLink.connect(a)
    link.call(1, token, session_start("c-2"))
    await link.results(1)
    link.send(OPEN, 2, open_payload(token))
    audio = pb.VoiceInput(encoding=pb.VoiceInput.MULAW_FORMAT, sample_rate_hertz=8000)
    request = pb.VoiceVARequest(conversation_id="c-2", audio_input=audio)
    link.send(REQUEST, 2, request.SerializeToString())
    await until(lambda: a.engine.active_rpcs == 1)  # the owner is listening to the caller
    if how == "cancel":
        link.send(CANCEL, 2)
    else:
        link.close()
    await until(lambda: a.engine.active_rpcs == 0)
    link.close()
    assert len(a.engine.registry) == 1  # the call goes on; only the RPC ended


class FakeOwner:
    """A peer link server that plays one scripted answer to the first RPC it is sent."""

    def __init__(self, answer: Callable[[asyncio.StreamWriter, int], Awaitable[None]]) -> None:
        self.answer = answer
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeOwner:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readexactly(len(PREAMBLE)) == PREAMBLE
        length, kind, stream = HEADER.unpack(await reader.readexactly(HEADER.size))
        await reader.readexactly(length - 5)
        assert kind == OPEN
        await self.answer(writer, stream)
        writer.close()


async def _forward(port: int, out: RpcOutput | None = None) -> None:
    metrics = Metrics()
    links = PeerLinks(PeerCredential(SECRET), ClusterMetrics(metrics), 1 << 20)
    out = out or RpcOutput(metrics)

    async def nothing_more() -> Any:
        await asyncio.Event().wait()
        yield  # pragma: no cover

    rest = CallerRequests(nothing_more())
    try:
        await links.forward(f"127.0.0.1:{port}", session_start("c-3"), rest, out, "t")
    finally:
        rest.close()
        await links.close()


async def _hang_up(writer: asyncio.StreamWriter, stream: int) -> None:
    pass


async def _hand_on(writer: asyncio.StreamWriter, stream: int) -> None:
    status = {"code": "ABORTED", "details": "the call moved on"}
    writer.write(frame(STATUS, stream, json.dumps(status).encode()))


async def _answer_then_hang_up(writer: asyncio.StreamWriter, stream: int) -> None:
    response = pb.VoiceVAResponse(response_type=pb.VoiceVAResponse.CHUNK)
    writer.write(frame(RESPONSE, stream, response.SerializeToString()))
    await writer.drain()


@pytest.mark.parametrize("answer", [_hang_up, _hand_on])
async def test_an_owner_that_fails_before_answering_gets_the_rpc_routed_again(
    answer: Callable[[asyncio.StreamWriter, int], Awaitable[None]],
) -> None:
    async with FakeOwner(answer) as owner:
        with pytest.raises(OwnerUnreachable) as info:
            await _forward(owner.port)
    assert info.value.replay == [session_start("c-3")]


async def test_an_unreachable_owner_gets_the_rpc_routed_again() -> None:
    with pytest.raises(OwnerUnreachable) as info:
        await _forward(free_port())
    assert info.value.replay == [session_start("c-3")]


async def test_an_owner_lost_after_answering_fails_the_rpc() -> None:
    out = RpcOutput(Metrics())
    async with FakeOwner(_answer_then_hang_up) as owner:
        with pytest.raises(RpcAbort) as info:
            await _forward(owner.port, out)
    assert info.value.code == "UNAVAILABLE"
    assert out.queue.qsize() == 1  # the caller got what the owner sent before it went


class FakeConn:
    """Records what an inbound stream asks of its link."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def fell_behind(self, stream: InboundStream) -> None:
        self.events.append("behind")

    def caught_up(self, stream: InboundStream) -> None:
        self.events.append("caught up")


async def test_a_stream_that_falls_behind_pauses_its_link_until_it_caught_up() -> None:
    conn = FakeConn()
    stream = InboundStream(conn, 1, "", "")  # type: ignore[arg-type]
    request = session_start("c-4")
    for _ in range(250):  # 5 s of frames the owner has not read
        stream.push(request.SerializeToString())
    assert conn.events == ["behind"]
    for _ in range(150):
        assert await anext(stream) == request
    assert conn.events == ["behind"]
    stream.end()
    assert [r async for r in stream] == [request] * 100
    assert conn.events == ["behind", "caught up"]


class RecordingTransport:
    """Stands in for a socket transport: keeps each write, closes on demand."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing


class Sender(peer_link.FrameProtocol):
    def frame_received(self, kind: int, stream: int, payload: bytes) -> None:
        raise AssertionError("this side only sends")

    def closed(self, exc: Exception | None) -> None:
        pass


async def test_frames_sent_in_one_loop_turn_go_out_in_order_in_one_write() -> None:
    sender, transport = Sender(1 << 20, expect_preamble=False), RecordingTransport()
    sender.connection_made(transport)  # type: ignore[arg-type]
    sender.send(REQUEST, 1, b"first")
    sender.send(REQUEST, 2, b"second")
    sender.send(HALF_CLOSE, 1)
    assert transport.writes == []  # held only until this turn of the loop ends
    await asyncio.sleep(0)
    together = frame(REQUEST, 1, b"first") + frame(REQUEST, 2, b"second") + frame(HALF_CLOSE, 1)
    assert transport.writes == [together]
    sender.send(REQUEST, 1, b"next turn")
    await asyncio.sleep(0)
    assert transport.writes[1:] == [frame(REQUEST, 1, b"next turn")]
    sender.send(HALF_CLOSE, 1)
    sender.flush()  # as before closing the link: written at once, and only once
    await asyncio.sleep(0)
    assert transport.writes[2:] == [frame(HALF_CLOSE, 1)]
    sender.send(REQUEST, 1, b"too late")
    transport.closing = True  # the link closes before the turn ends: nothing is written
    await asyncio.sleep(0)
    assert len(transport.writes) == 3
