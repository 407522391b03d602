"""Peer links over TLS (and mutual TLS), with certificates made in the test.

Each instance presents one certificate: as the server of its own link and as the client
of the links it opens, so it carries both usages, and names the advertised host.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from byova_media.server import Server
from tests.cluster.cluster_helpers import AlternatingCall, RedisProcess, cluster_settings, forwarded


def _issue(
    name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA (no ``issuer``) or an instance certificate for localhost and 127.0.0.1."""
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
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(
            x509.SubjectAlternativeName(names), critical=False
        ).add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ca = _issue("cluster test CA", None)
    instance = _issue("byova-media instance", ca)
    files = {
        "ca.pem": ca[0].public_bytes(serialization.Encoding.PEM),
        "cert.pem": instance[0].public_bytes(serialization.Encoding.PEM),
        "key.pem": instance[1].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


def _tls(pki: Path, mutual: bool) -> dict[str, Any]:
    files = {"tls_cert_file": pki / "cert.pem", "tls_key_file": pki / "key.pem"}
    return {**files, "tls_client_ca_file": pki / "ca.pem"} if mutual else files


async def _refuses(server: Server, context: ssl.SSLContext | None) -> bool:
    """True when a client with ``context`` (``None``: plain TCP) cannot use the link."""
    assert server.cluster is not None
    port = int(server.cluster.link_address.rpartition(":")[2])
    try:
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1" if context else None
            )
            writer.write(b"BYOVAPL1")
            data = await reader.read()
            with contextlib.suppress(OSError, ssl.SSLError):
                writer.close()
    except (OSError, ssl.SSLError):
        return True
    return data == b""


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mtls"])
async def test_calls_are_forwarded_over_tls_links(
    redis: RedisProcess, byova_server: Any, webex: Any, pki: Path, mutual: bool
) -> None:
    settings = {**cluster_settings(redis), **_tls(pki, mutual)}
    a = await byova_server(plugins=["echo"], **settings)
    b = await byova_server(plugins=["echo"], **settings)
    client = {"root_certificates": (pki / "ca.pem").read_bytes()}
    if mutual:
        client |= {
            "private_key": (pki / "key.pem").read_bytes(),
            "certificate_chain": (pki / "cert.pem").read_bytes(),
        }
    sims = [await webex(s, credentials=grpc.ssl_channel_credentials(**client)) for s in (a, b)]
    call = AlternatingCall(sims)
    for step in (call.start(), call.dtmf("5"), call.dtmf("6"), call.dtmf("#")):
        result = await step
        assert result.code == grpc.StatusCode.OK, result.details
    assert result.prompt_texts == ["Digits so far: 5 6"]
    assert forwarded(a) + forwarded(b) >= 2
    assert await _refuses(a, None)  # plain TCP to a TLS link
    if mutual:
        anonymous = ssl.create_default_context(cafile=pki / "ca.pem")
        assert await _refuses(a, anonymous)  # no client certificate
