"""TLS and mutual TLS on the gRPC port, with certificates made in the test."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from byova_media.testing.simulator import WebexSimulator
from byova_media.testing.ws_simulator import WsWebexSimulator


def _cert(
    name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    signer = issuer[1] if issuer else key
    return builder.sign(signer, hashes.SHA256()), key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca = _cert("test CA", None, ca=True)
    server = _cert("localhost", ca, server=True)
    client = _cert("webex-ccai", ca)
    files = {"ca": _pem(ca[0]), "cert": _pem(server[0]), "key": _key_pem(server[1])}
    for name, data in files.items():
        (tmp_path / f"{name}.pem").write_bytes(data)
    return {
        "dir": tmp_path,
        "ca": _pem(ca[0]),
        "client_cert": _pem(client[0]),
        "client_key": _key_pem(client[1]),
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
