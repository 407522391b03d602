"""``BackendLink`` against local servers: bounded queues, the silence clock, proxy and TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection, serve
from ws_backends import Backend

from byova_media.audio.formats import ULAW_SILENCE_FRAME as SILENCE_FRAME
from byova_websocket.connection import BackendLink
from byova_websocket.native import NativeProtocol
from byova_websocket.protocol import BackendEvent, SessionInfo
from byova_websocket.settings import ConnectorSettings

INFO = SessionInfo("conv-9", "websocket")


def make_link(url: str, events: list[Any] | None = None, **settings: Any) -> BackendLink:
    config = ConnectorSettings(url=url, proxy="none", **settings)
    failures: list[str] = []

    def on_event(event: BackendEvent) -> None:
        if events is not None:
            events.append(event)

    return BackendLink(
        config,
        INFO,
        NativeProtocol,
        on_event=on_event,
        on_failed=failures.append,
        on_ended=lambda: None,
    )


async def recorder(backend: Backend, ws: ServerConnection) -> None:
    async for message in ws:
        backend.received.append(message if isinstance(message, bytes) else json.loads(message))


async def test_caller_queue_is_bounded_drop_oldest(backend: Any) -> None:
    bot = await backend(recorder)
    link = make_link(bot.url, caller_queue_ms=100)  # 5 frames
    assert await link.open()
    for n in range(200):  # far faster than any socket: nothing awaits in between
        link.send_audio(bytes([n]) * 160)
    assert link.stats.caller_frames_dropped == 195
    await bot.wait_for(
        lambda: sum(1 for m in bot.received if m != SILENCE_FRAME and isinstance(m, bytes)) >= 5
    )
    kept = [m[0] for m in bot.received if isinstance(m, bytes) and m != SILENCE_FRAME]
    assert kept == [195, 196, 197, 198, 199]  # the newest frames survive
    await link.close()


async def test_silence_keeps_the_backend_clock_at_50_frames_per_second(backend: Any) -> None:
    bot = await backend(recorder)
    link = make_link(bot.url)
    assert await link.open()
    await asyncio.sleep(1.0)
    silence = link.stats.silence_frames
    assert 35 <= silence <= 55  # ~50 per second, allowing for a noisy machine
    await link.close(lambda p: p.stop("caller_hangup"))
    await bot.wait_for(
        lambda: any(isinstance(m, dict) and m["type"] == "hangup" for m in bot.received)
    )


async def test_headers_reach_the_backend(backend: Any) -> None:
    bot = await backend(recorder)
    link = make_link(bot.url, headers={"X-Api-Key": "k-123"})
    assert await link.open()
    assert bot.headers[0]["x-api-key"] == "k-123"
    assert "k-123" not in repr(link)
    await link.close()


async def test_unreachable_backend_fails_after_the_limit() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()  # nothing listens on the port now
    link = make_link(f"ws://127.0.0.1:{port}/", down_limit_ms=300, reconnect_initial_ms=20)
    assert not await link.open()
    assert link.failed
    await link.close()


async def test_connects_through_an_http_connect_proxy(backend: Any) -> None:
    bot = await backend(recorder)
    tunnels: list[str] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.split(b" ")[1].decode()
        tunnels.append(head.split(b" ")[0].decode() + " " + target)
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    proxy_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        config = ConnectorSettings(url=bot.url, proxy=proxy_url)
        link = BackendLink(
            config,
            INFO,
            NativeProtocol,
            on_event=lambda e: None,
            on_failed=lambda r: None,
            on_ended=lambda: None,
        )
        assert await link.open()
        await bot.wait_for(lambda: bool(bot.received))
        assert tunnels == [f"CONNECT 127.0.0.1:{bot.port}"]
        await link.close()
    finally:
        server.close()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_verified_against_a_custom_ca_and_refused_without(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    got: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        got.extend([m async for m in ws][:1])

    async with serve(handler, "127.0.0.1", 0, ssl=context) as server:
        url = f"wss://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        trusted = make_link(url, ca_file=cert)
        assert await trusted.open()
        await trusted.close()
        untrusted = make_link(url, down_limit_ms=200, reconnect_initial_ms=20)
        assert not await untrusted.open()  # TLS verification is on by default
        await untrusted.close()
