"""Streamed-prompt chunking for sources at real time: added latency and gaps.

A 2 s tone is produced in 20 ms pieces at 1×, 2× and 1× with up to 100 ms of jitter per
piece, and cut into CHUNK payloads three ways in the same run, concurrently on one loop:
``stream_ulaw_chunks`` (the framework), the policy it replaced (first chunk at 200 ms,
then doubling up to 1 s, each waiting to fill), and the reference that forwards every
piece the moment it arrives (the least latency possible, at 50 messages a second). For
each: the first chunk's delay after the source's first byte, the silence a caller would
hear after the first chunk (playout at 8 bytes per ms from the first chunk), and the
number of chunks. Run::

    pytest benchmarks/test_stream_chunking.py --benchmark-enable -q -s -p no:randomly
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.framing import stream_ulaw_chunks
from byova_media.audio.tones import tone
from tests._playout import paced_source, playout_gaps_ms

Chunker = Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]]
CASES = {"1x": (1.0, 0), "2x": (2.0, 0), "1x, 100 ms jitter": (1.0, 100)}


async def doubling(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The replaced policy: 1600 B first, then twice the size up to 8000 B, by size only."""
    target, pending = 1600, bytearray()
    async for piece in source:
        pending += piece
        while len(pending) >= target + 100:
            yield bytes(pending[:target])
            del pending[:target]
            target = min(target * 2, 8000)
    if pending:
        yield bytes(pending)


async def immediate(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The latency reference: every piece forwarded as it arrives."""
    async for piece in source:
        yield piece


async def _measure(chunker: Chunker, speed: float, jitter_ms: int) -> dict[str, float]:
    first_byte: list[float] = []
    source = paced_source(pcm_to_ulaw(tone(440, 2000)), speed, jitter_ms, first_byte)
    arrivals = [(time.monotonic(), len(chunk)) async for chunk in chunker(source)]
    return {
        "first_chunk_ms": (arrivals[0][0] - first_byte[0]) * 1000,
        "gaps_ms": sum(playout_gaps_ms(arrivals)),
        "chunks": len(arrivals),
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_chunking_of_real_time_sources(
    benchmark: Any, loop: asyncio.AbstractEventLoop, case: str
) -> None:
    speed, jitter_ms = CASES[case]
    results: dict[str, dict[str, float]] = {}

    async def run() -> None:
        policies: dict[str, Chunker] = {
            "stream_ulaw_chunks": stream_ulaw_chunks,
            "replaced doubling": doubling,
            "immediate (reference)": immediate,
        }
        measured = await asyncio.gather(*(_measure(c, speed, jitter_ms) for c in policies.values()))
        results.update(zip(policies, measured, strict=True))

    benchmark.group = f"chunking a {case} source"
    benchmark.pedantic(lambda: loop.run_until_complete(run()), rounds=1)
    ours = results["stream_ulaw_chunks"]
    assert ours["first_chunk_ms"] >= results["immediate (reference)"]["first_chunk_ms"]
    benchmark.extra_info.update({f"{p}: {k}": v for p, r in results.items() for k, v in r.items()})
    print()
    for policy, r in results.items():
        print(
            f"{case:18s} {policy:22s} first chunk +{r['first_chunk_ms']:6.1f} ms, "
            f"gaps {r['gaps_ms']:6.1f} ms, {r['chunks']:3.0f} chunks"
        )
