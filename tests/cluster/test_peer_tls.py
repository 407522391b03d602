"""Peer links over TLS (and mutual TLS), with certificates made in the test.

Each instance presents one certificate: as the server of its own link and as the client
of the links it opens, so it carries both usages, and names the advertised host.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from byova_media.server import Server
from tests.certificates import issue, key_pem, pem
from tests.cluster.cluster_helpers import AlternatingCall, RedisProcess, cluster_settings, forwarded


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ca = issue("cluster test CA")
    instance = issue(
        "byova-media instance",
        ca,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        names=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    files = {"ca.pem": pem(ca[0]), "cert.pem": pem(instance[0]), "key.pem": key_pem(instance[1])}
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
