"""How load callers reach the server: plaintext or TLS (mTLS), with or without a JWS.

A :class:`Connection` is plain data (paths and strings), so it crosses into the caller
processes of a multi-process step, where each builds its own channel credentials.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from byova_media.testing.simulator import WebexSimulator
from byova_media.testing.simulators import Simulator, simulator_for
from byova_media.testing.ws_simulator import is_ws_target

__all__ = ["TOKEN_ENV", "Connection"]

TOKEN_ENV = "BYOVA_MEDIA_LOADTEST_TOKEN"
"""Environment variable read for the token when no ``--token``/``--token-file`` is given
(a token on the command line is visible to every user of the machine through ``ps``)."""


@dataclass(frozen=True)
class Connection:
    """Channel security and ``authorization`` metadata for the callers of a load run.

    ``token_file`` is read again whenever it changes, so a long soak can outlive one
    token: rewrite the file with a fresh JWS and the next RPC carries it.
    """

    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("give both a client certificate and its key for mutual TLS")
        if self.tls_cert_file is not None and self.tls_ca_file is None:
            raise ValueError("a client certificate needs --tls-ca to trust the server")
        if self.token is not None and self.token_file is not None:
            raise ValueError("give a token or a token file, not both")

    @classmethod
    def from_options(
        cls,
        *,
        token: str | None,
        token_file: Path | None,
        tls_ca_file: Path | None,
        tls_cert_file: Path | None,
        tls_key_file: Path | None,
    ) -> Connection:
        """From the command line's options; the token falls back to :data:`TOKEN_ENV`."""
        if token is None and token_file is None:
            token = os.environ.get(TOKEN_ENV) or None
        return cls(token, token_file, tls_ca_file, tls_cert_file, tls_key_file)

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS channel credentials, or ``None`` for plaintext."""
        if self.tls_ca_file is None:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=self.tls_ca_file.read_bytes(),
            private_key=self.tls_key_file.read_bytes() if self.tls_key_file else None,
            certificate_chain=self.tls_cert_file.read_bytes() if self.tls_cert_file else None,
        )

    def token_source(self) -> str | Callable[[], str] | None:
        """What the simulator sends as ``authorization``: a string or a file's current text."""
        if self.token_file is None:
            return self.token
        return _FileToken(self.token_file)

    def simulator(self, target: str, realtime: bool = True) -> Simulator:
        """A simulator for ``target`` with this security: WebSocket for ``ws://``/``wss://``
        (the token on the upgrade), gRPC on a channel with these credentials otherwise."""
        if is_ws_target(target):
            return simulator_for(target, realtime=realtime, token=self.token_source())
        return WebexSimulator(
            target, realtime=realtime, token=self.token_source(), credentials=self.credentials()
        )


class _FileToken:
    """The stripped text of a file, re-read only when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._mtime = -1
        self._value = ""

    def __call__(self) -> str:
        mtime = self._path.stat().st_mtime_ns
        if mtime != self._mtime:
            self._value = self._path.read_text().strip()
            self._mtime = mtime
        return self._value

    def __repr__(self) -> str:
        return f"_FileToken({str(self._path)!r})"
