"""Cost of verifying a data-source JWS with cached keys, beside a bare ``jwt.decode``.

Run: ``pytest benchmarks/test_jws_bench.py --benchmark-enable -q``. All cases are in one
group: ``reference: jwt.decode`` is the RS256 signature check alone, ``reference: empty
coroutine`` the cost of driving a coroutine from a synchronous benchmark, and
``JwsVerifier.verify`` the full check (unverified parse, issuer, cached key, signature,
times and BYOVA claims).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from byova_control.jws import JwsVerifier

# The fake identity broker lives with the control tests; reuse it rather than copy it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "control"))
from fake_idbroker import DATASOURCE_URL, FakeIdBroker

GROUP = "jws verify (cached keys)"


@dataclass
class Setup:
    loop: asyncio.AbstractEventLoop
    broker: FakeIdBroker
    verifier: JwsVerifier
    token: str


@pytest.fixture
def setup() -> Iterator[Setup]:
    loop = asyncio.new_event_loop()
    broker = FakeIdBroker()
    loop.run_until_complete(broker.__aenter__())
    http = httpx.AsyncClient()
    verifier = JwsVerifier(issuers=[broker.issuer()], datasource_url=DATASOURCE_URL, http=http)
    token = broker.mint()
    loop.run_until_complete(verifier.verify(token))  # warm the key cache
    try:
        yield Setup(loop, broker, verifier, token)
    finally:
        loop.run_until_complete(http.aclose())
        loop.run_until_complete(broker.__aexit__(None, None, None))
        loop.close()


def test_reference_jwt_decode(benchmark: BenchmarkFixture, setup: Setup) -> None:
    benchmark.group = GROUP
    benchmark.name = "reference: jwt.decode"
    public_key = setup.broker.key().private_key.public_key()

    def decode() -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            setup.token, public_key, algorithms=["RS256"], options={"verify_aud": False}
        )
        return claims

    assert benchmark(decode)["com.cisco.datasource.url"] == DATASOURCE_URL


def test_reference_empty_coroutine(benchmark: BenchmarkFixture, setup: Setup) -> None:
    benchmark.group = GROUP
    benchmark.name = "reference: empty coroutine"

    async def nothing() -> None:
        return None

    benchmark(lambda: setup.loop.run_until_complete(nothing()))


def test_verifier_cached_keys(benchmark: BenchmarkFixture, setup: Setup) -> None:
    benchmark.group = GROUP
    benchmark.name = "JwsVerifier.verify"
    claims = benchmark(lambda: setup.loop.run_until_complete(setup.verifier.verify(setup.token)))
    assert claims.expires_at > 0
    assert setup.broker.fetches() == 1
