"""The control plugin under attack, against a real ``byova-media serve`` process.

Issue 12's fault 9 (a weak key published by the issuer), fault 10 (a flood of refused tokens
must end UNAUTHENTICATED, never INTERNAL, and never disturb an authorized call) and the
webhook half of fault 11 (a chunked body obeys the same limit as a Content-Length one).
"""

from __future__ import annotations

import asyncio
import collections
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import jwt
import pytest
from fake_idbroker import DATASOURCE_URL, FakeIdBroker, new_signing_key

from byova_control.webhooks import WEBHOOK_PATH
from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.testing.process import ServedProcess, serve_process
from byova_media.testing.simulator import SimulatedCall, WebexSimulator

pytestmark = pytest.mark.e2e


def _env(broker: FakeIdBroker, tmp_path: Path) -> dict[str, str]:
    return {
        "BYOVA_MEDIA_CONTROL_DATASOURCE_URL": DATASOURCE_URL,
        "BYOVA_MEDIA_CONTROL_JWS_ISSUERS": broker.issuer(),
        "BYOVA_MEDIA_CONTROL_STORE": f"sqlite:///{tmp_path / 'store.sqlite3'}",
    }


async def _audio_rpc(call: SimulatedCall, frames: int, half_close: bool = True) -> grpc.StatusCode:
    """An audio RPC as Webex opens it: settings, then ``frames`` 20 ms frames."""

    async def requests() -> AsyncIterator[pb.VoiceVARequest]:
        settings = pb.VoiceInput(encoding=pb.VoiceInput.MULAW_FORMAT, sample_rate_hertz=8000)
        yield call.request(audio_input=settings)
        for _ in range(frames):
            yield call.request(audio_input=pb.VoiceInput(caller_audio=b"\xff" * 160))
        if not half_close:
            await asyncio.Event().wait()  # the server must end the RPC on its own

    return (await call.stream("audio", requests(), None)).code


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[FakeIdBroker, ServedProcess]]:
    async with (
        FakeIdBroker() as broker,
        serve_process("--plugin", "echo", "--plugin", "control", env=_env(broker, tmp_path)) as s,
    ):
        yield broker, s


async def test_flood_of_refused_tokens_ends_unauthenticated_and_spares_valid_calls(
    guarded: tuple[FakeIdBroker, ServedProcess],
) -> None:
    broker, served = guarded
    target = f"127.0.0.1:{served.port}"
    forged = broker.mint(broker.claims(), key=new_signing_key(broker.key().kid))
    async with (
        WebexSimulator(target, realtime=False, token=forged) as attacker,
        WebexSimulator(target, realtime=False, token=lambda: broker.mint(broker.claims())) as webex,
    ):
        good = webex.call("echo")
        assert (await good.start()).code == grpc.StatusCode.OK
        refused = [
            _audio_rpc(attacker.call("echo"), frames=n % 8, half_close=n % 50 != 0)
            for n in range(150)
        ]
        codes = await asyncio.gather(*refused, *(_audio_rpc(good, 5) for _ in range(5)))
    refused_codes = collections.Counter(codes[:150])
    assert refused_codes == {grpc.StatusCode.UNAUTHENTICATED: 150}, refused_codes
    assert codes[150:] == [grpc.StatusCode.OK] * 5
    assert await served.stop() == 0
    assert "Traceback" not in served.output
    assert served.output.count("JWS signature") == 150


async def test_weak_key_in_the_issuers_jwks_is_refused(tmp_path: Path) -> None:
    weak = new_signing_key(key_size=1024)
    async with (
        FakeIdBroker(key=weak) as broker,
        serve_process("--plugin", "echo", "--plugin", "control", env=_env(broker, tmp_path)) as s,
    ):
        with pytest.warns(jwt.InsecureKeyLengthWarning):
            token = broker.mint(broker.claims())
        async with WebexSimulator(f"127.0.0.1:{s.port}", realtime=False, token=token) as sim:
            result = await sim.call("echo").start()
        assert result.code == grpc.StatusCode.UNAUTHENTICATED
        assert await s.stop() == 0
    assert "1024-bit RSA is under the 2048-bit minimum" in s.output
    assert "JWS key_size" in s.output


@pytest.mark.parametrize("chunked", [True, False])
async def test_webhook_body_limit_holds_for_chunked_deliveries(
    tmp_path: Path, chunked: bool
) -> None:
    """Fault 11: a chunked delivery used to bypass the limit a Content-Length body gets."""
    env = {
        "BYOVA_MEDIA_CONTROL_DATASOURCE_URL": DATASOURCE_URL,
        "BYOVA_MEDIA_CONTROL_WEBHOOK_SECRET": "a-webhook-secret",
        "BYOVA_MEDIA_CONTROL_STORE": f"sqlite:///{tmp_path / 'store.sqlite3'}",
    }
    args = ("--plugin", "echo", "--plugin", "control", "--http-port", "0")
    async with serve_process(*args, env=env) as served:
        port = re.search(r"HTTP on port (\d+)", served.output)
        assert port, served.output
        url = f"http://127.0.0.1:{port.group(1)}{WEBHOOK_PATH}"
        big = b'{"resource": "' + b"x" * (300 * 1024) + b'"}'

        async def pieces(body: bytes) -> AsyncIterator[bytes]:
            for start in range(0, len(body), 8192):
                yield body[start : start + 8192]

        async with aiohttp.ClientSession() as session:
            for body, expected in ((big, 413), (b"{}", 401)):
                data = pieces(body) if chunked else io.BytesIO(body)
                async with session.post(url, data=data) as response:
                    assert response.status == expected, await response.text()
        assert await served.stop() == 0
    assert "Traceback" not in served.output
