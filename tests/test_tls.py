"""TLS and mutual TLS on the gRPC port, with certificates made in the test."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from byova_media.testing.simulator import WebexSimulator
from byova_media.testing.ws_simulator import WsWebexSimulator
from tests.certificates import issue, key_pem, pem


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca = issue("test CA")
    server = issue(
        "localhost", ca, usages=[ExtendedKeyUsageOID.SERVER_AUTH], names=[x509.DNSName("localhost")]
    )
    client = issue("webex-ccai", ca, usages=[ExtendedKeyUsageOID.CLIENT_AUTH])
    files = {"ca": pem(ca[0]), "cert": pem(server[0]), "key": key_pem(server[1])}
    for name, data in files.items():
        (tmp_path / f"{name}.pem").write_bytes(data)
    return {
        "dir": tmp_path,
        "ca": pem(ca[0]),
        "client_cert": pem(client[0]),
        "client_key": key_pem(client[1]),
    }


def _options() -> dict[str, Any]:
    return {"host": "127.0.0.1"}


async def test_tls_call(byova_server: Any, pki: dict[str, Any]) -> None:
    d = pki["dir"]
    server = await byova_server(
        plugins=["echo"], tls_cert_file=d / "cert.pem", tls_key_file=d / "key.pem", **_options()
    )
    creds = grpc.ssl_channel_credentials(root_certificates=pki["ca"])
    async with WebexSimulator(f"localhost:{server.port}", realtime=False, credentials=creds) as sim:
        result = await sim.call("echo").start()
    assert result.code == grpc.StatusCode.OK and result.audio


async def test_wss_call_uses_the_same_certificate(byova_server: Any, pki: dict[str, Any]) -> None:
    d = pki["dir"]
    server = await byova_server(
        plugins=["echo"],
        tls_cert_file=d / "cert.pem",
        tls_key_file=d / "key.pem",
        ws_port=0,
        **_options(),
    )
    context = ssl.create_default_context(cadata=pki["ca"].decode())
    target = f"wss://localhost:{server.ws_port}"
    async with WsWebexSimulator(target, realtime=False, ssl_context=context) as sim:
        result = await sim.call("echo").start()
    assert result.code == grpc.StatusCode.OK and result.audio
    untrusted = ssl.create_default_context()  # the test CA is not in the system store
    async with WsWebexSimulator(target, realtime=False, ssl_context=untrusted) as sim:
        refused = await sim.call("echo").start()
    assert refused.code == grpc.StatusCode.UNAVAILABLE


async def test_mtls_requires_a_client_certificate(byova_server: Any, pki: dict[str, Any]) -> None:
    d = pki["dir"]
    server = await byova_server(
        plugins=["echo"],
        tls_cert_file=d / "cert.pem",
        tls_key_file=d / "key.pem",
        tls_client_ca_file=d / "ca.pem",
        **_options(),
    )
    target = f"localhost:{server.port}"
    anonymous = grpc.ssl_channel_credentials(root_certificates=pki["ca"])
    async with WebexSimulator(target, realtime=False, credentials=anonymous) as sim:
        refused = await sim.call("echo").start()
    assert refused.code == grpc.StatusCode.UNAVAILABLE
    with_cert = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"],
        private_key=pki["client_key"],
        certificate_chain=pki["client_cert"],
    )
    async with WebexSimulator(target, realtime=False, credentials=with_cert) as sim:
        accepted = await sim.call("echo").start()
    assert accepted.code == grpc.StatusCode.OK
