"""Fault 11: the HTTP port bounds slow and oversized requests (real server process)."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from byova_media.http import MAX_BODY_BYTES
from byova_media.testing.process import ServedProcess, serve_process

pytestmark = pytest.mark.e2e

# Short deadlines so the test waits little; the defaults (10 s, 30 s) are what production gets.
HEAD_TIMEOUT_S = 0.5
BODY_TIMEOUT_S = 0.5
ENV = {
    "BYOVA_MEDIA_HTTP_HEADER_TIMEOUT_S": str(HEAD_TIMEOUT_S),
    "BYOVA_MEDIA_HTTP_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
}
# A bound on waiting for the server, far above the deadlines: reaching it fails the test.
GIVE_UP_S = 30.0


@pytest.fixture
async def served() -> AsyncIterator[tuple[ServedProcess, int]]:
    async with serve_process("--plugin", "echo", "--http-port", "0", env=ENV) as process:
        match = re.search(r"HTTP on port (\d+)", process.output)
        assert match, process.output
        yield process, int(match.group(1))


async def _send_then_read(port: int, head: bytes, trickle: bytes = b"") -> bytes:
    """Send ``head``, then ``trickle`` one byte per 100 ms; return what the server wrote.

    Fails if the server has not closed the connection within ``GIVE_UP_S``. A reset counts
    as closed: bytes still trickling in after the server's close make its kernel answer RST,
    which can overtake the 408 (so callers accept an empty answer after a trickle).
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()
    try:
        writer.write(head)

        async def dribble() -> None:
            for byte in trickle:
                await asyncio.sleep(0.1)
                writer.write(bytes([byte]))
                await writer.drain()

        dribbler = asyncio.create_task(dribble())
        try:
            async with asyncio.timeout(GIVE_UP_S):
                while chunk := await reader.read(4096):
                    received += chunk
        except ConnectionResetError:
            pass
        finally:
            dribbler.cancel()
            await asyncio.gather(dribbler, return_exceptions=True)
    finally:
        writer.close()
    return bytes(received)


def _timed_out(answer: bytes) -> bool:
    return answer.startswith(b"HTTP/1.1 408") or answer == b""


async def test_incomplete_head_is_answered_408_and_closed(
    served: tuple[ServedProcess, int],
) -> None:
    process, port = served
    answer = await _send_then_read(port, b"GET /health HTTP/1.1\r\nHost: x\r\n")
    assert answer.startswith(b"HTTP/1.1 408")
    assert "request head not received within 0.5 s" in process.output


async def test_trickled_head_is_cut_at_the_deadline_not_kept_alive_by_each_byte(
    served: tuple[ServedProcess, int],
) -> None:
    _, port = served
    header = b"X-Slow: " + b"a" * 200  # 20 s at one byte per 100 ms
    answer = await _send_then_read(port, b"GET /health HTTP/1.1\r\nHost: x\r\n", header)
    assert _timed_out(answer), answer


async def test_trickled_body_is_answered_408(served: tuple[ServedProcess, int]) -> None:
    process, port = served
    head = b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n"
    answer = await _send_then_read(port, head, b"b" * 400)
    assert _timed_out(answer), answer
    assert "body not received within 0.5 s" in process.output


@pytest.mark.parametrize("chunked", [True, False])
async def test_oversized_body_is_413_chunked_or_not(
    served: tuple[ServedProcess, int], chunked: bool
) -> None:
    _, port = served
    block = b"x" * 65536
    blocks = MAX_BODY_BYTES // len(block) + 2

    async def body() -> AsyncIterator[bytes]:
        for _ in range(blocks):
            yield block

    async with aiohttp.ClientSession() as session:
        data = body() if chunked else io.BytesIO(block * blocks)
        async with session.post(f"http://127.0.0.1:{port}/health", data=data) as response:
            assert response.status == 413


async def test_slow_clients_do_not_starve_others(served: tuple[ServedProcess, int]) -> None:
    process, port = served
    slow = [
        asyncio.create_task(_send_then_read(port, b"GET /health HTTP/1.1\r\n", b"H" * 100))
        for _ in range(50)
    ]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/health") as response,
    ):
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
        # One request per connection: the deadline above applies to every request.
        assert response.headers.get("Connection", "").lower() == "close"
    answers = await asyncio.gather(*slow)
    assert all(_timed_out(answer) for answer in answers), answers
    assert await process.stop() == 0
    assert "Traceback" not in process.output, process.output
