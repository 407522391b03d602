"""``CallerRequests``: the caller's requests reach whoever takes the RPC, none lost.

A forward attempt that fails ends while the caller is still sending; the requests read
meanwhile must reach the next attempt (or this instance) in order, and the caller's
half-close or failure must reach whoever holds the RPC then.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.cluster import link
from byova_media.cluster.forwarding import CallerRequests, _LinkClient, _Stream
from byova_media.metrics import Metrics
from byova_media.rpc import RpcOutput
from tests.cluster.test_peer_link import RecordingTransport

HEADER = struct.Struct(">IBI")


class Caller:
    """A caller's request stream, fed by the test: ``None`` half-closes, an exception breaks it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[pb.VoiceVARequest | Exception | None] = asyncio.Queue()

    async def stream(self) -> AsyncIterator[pb.VoiceVARequest]:
        while (item := await self.queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item


def request(n: int) -> pb.VoiceVARequest:
    return pb.VoiceVARequest(conversation_id=f"c-{n}")


def sent(transport: RecordingTransport) -> list[tuple[int, int, bytes]]:
    """Every frame written so far (after the link's preamble), as (kind, stream, payload)."""
    data, frames, at = b"".join(transport.writes), [], len(link.PREAMBLE)
    assert data.startswith(link.PREAMBLE)
    while at < len(data):
        length, kind, stream = HEADER.unpack_from(data, at)
        frames.append((kind, stream, data[at + HEADER.size : at + 4 + length]))
        at += 4 + length
    return frames


def requests_to(transport: RecordingTransport, stream: _Stream) -> list[str]:
    return [
        pb.VoiceVARequest.FromString(payload).conversation_id
        for kind, number, payload in sent(transport)
        if kind == link.REQUEST and number == stream.number
    ]


def attempt() -> tuple[_LinkClient, RecordingTransport]:
    conn, transport = _LinkClient(1 << 20), RecordingTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_requests_read_between_attempts_reach_the_next_one_in_order() -> None:
    caller, conn, transport = Caller(), *attempt()
    requests = CallerRequests(caller.stream())
    first = conn.open("token", "t", RpcOutput(Metrics()))
    requests.attach(first)
    caller.queue.put_nowait(request(1))
    await settle()
    requests.detach()  # the owner refused the RPC while the caller went on sending
    first.finish("ABORTED", "moved")
    for n in (2, 3):
        caller.queue.put_nowait(request(n))
    await settle()
    second = conn.open("token", "t", RpcOutput(Metrics()))
    requests.attach(second)
    caller.queue.put_nowait(request(4))
    caller.queue.put_nowait(None)
    await settle()
    assert requests_to(transport, first) == ["c-1"]
    assert requests_to(transport, second) == ["c-2", "c-3", "c-4"]
    assert (link.HALF_CLOSE, second.number, b"") in sent(transport)
    requests.close()


async def test_this_instance_reads_on_where_the_attempts_stopped() -> None:
    caller, conn, _ = Caller(), *attempt()
    requests = CallerRequests(caller.stream())
    stream = conn.open("token", "t", RpcOutput(Metrics()))
    requests.attach(stream)
    caller.queue.put_nowait(request(1))
    await settle()
    requests.detach()
    for n in (2, 3):
        caller.queue.put_nowait(request(n))
    caller.queue.put_nowait(None)
    assert [r.conversation_id async for r in requests] == ["c-2", "c-3"]
    assert stream.replay == [request(1)]  # what the failed attempt had, to send again
    requests.close()


async def test_a_broken_caller_stream_cancels_the_attempt_and_is_raised() -> None:
    caller, conn, transport = Caller(), *attempt()
    requests = CallerRequests(caller.stream())
    stream = conn.open("token", "t", RpcOutput(Metrics()))
    requests.attach(stream)
    caller.queue.put_nowait(ValueError("malformed"))
    await settle()
    assert stream.status.result()[0] == "CANCELLED"
    assert (link.CANCEL, stream.number, b"") in sent(transport)
    with pytest.raises(ValueError, match="malformed"):
        requests.raise_if_broken()
    requests.close()


async def test_reading_pauses_while_nobody_takes_the_requests() -> None:
    source_reads = 0

    async def flat_out() -> AsyncIterator[pb.VoiceVARequest]:
        nonlocal source_reads
        while True:
            source_reads += 1
            yield request(source_reads)

    requests = CallerRequests(flat_out())
    await settle()
    assert source_reads == 250  # held back: gRPC flow control stops the caller
    assert (await anext(requests)).conversation_id == "c-1"
    await settle()
    assert source_reads == 251  # one taken, one more read
    requests.close()
