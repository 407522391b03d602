"""`byova-media loadtest` with --token-file and --tls-ca against a JWS-guarded TLS server."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fake_idbroker import DATASOURCE_URL, FakeIdBroker

from byova_media.testing.process import serve_process

pytestmark = pytest.mark.e2e


def _self_signed_localhost(directory: Path) -> tuple[Path, Path]:
    """A server certificate for ``localhost`` that is its own CA; returns (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def _loadtest(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "byova_media.cli", "loadtest", *args,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_long_calls_with_a_jws_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed_localhost(tmp_path)
    token_file = tmp_path / "token.jws"
    async with FakeIdBroker() as broker:
        env = {
            "BYOVA_MEDIA_CONTROL_DATASOURCE_URL": DATASOURCE_URL,
            "BYOVA_MEDIA_CONTROL_JWS_ISSUERS": broker.issuer(),
            "BYOVA_MEDIA_CONTROL_STORE": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        }
        args = ("--plugin", "echo", "--plugin", "control")
        tls = ("--tls-cert-file", str(cert), "--tls-key-file", str(key))
        async with serve_process(*args, *tls, env=env) as served:
            target = f"localhost:{served.port}"
            common = (
                "--calls", "2", "--duration", "2", "--long-calls", "--ramp", "0",
                "--script", "say:300", "--trail-ms", "800", "--no-chart", "--no-progress",
                "--tls-ca", str(cert),
            )  # fmt: skip
            # Without a token every call is refused, and the command says so.
            report = tmp_path / "refused.json"
            code, out = await _loadtest(target, *common, "--json", str(report))
            assert code == 1, out
            (step,) = json.loads(report.read_text())["steps"]
            assert set(step["rpc_errors"]) == {"UNAUTHENTICATED"}
            # With the token file, the same run is clean.
            token_file.write_text(broker.mint(broker.claims()) + "\n")
            report = tmp_path / "ok.json"
            code, out = await _loadtest(
                target, *common, "--token-file", str(token_file), "--json", str(report)
            )
            assert code == 0, out
            (step,) = json.loads(report.read_text())["steps"]
            assert step["calls_completed"] == 2 and step["rpc_errors"] == {}
            assert step["turns"] >= 2
            assert await served.stop() == 0
    assert token_file.read_text().strip() not in out + served.output
