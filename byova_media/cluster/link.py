"""The peer link: one TCP (TLS when configured) connection carries many forwarded RPCs.

An instance forwards an RPC to the call's owner over a link it keeps open to that owner.
The link is a plain length-prefixed frame protocol on asyncio rather than a gRPC stream
because gRPC's asyncio API costs a completion round trip per message on each side, which
for 20 ms audio frames was as much CPU as the owner's whole per-frame work (see
``benchmarks/README.md``); here the frames sent in one turn of the event loop (often
several calls' audio) share one ``transport.write`` and arrive as slices of one socket
read. No frame waits longer than the turn it was sent in.

After the client's :data:`PREAMBLE`, both directions carry frames::

    length (4 bytes, big-endian, of what follows) | kind (1 byte) | stream (4 bytes) | payload

Edge to owner: ``OPEN`` (JSON: the peer token and Webex's tracking id), ``REQUEST`` (a
serialised ``VoiceVARequest``), ``HALF_CLOSE``, ``CANCEL``. Owner to edge: ``RESPONSE``
(a serialised ``VoiceVAResponse``) and one ``STATUS`` (JSON: gRPC code name and details)
that completes the stream. Frames of a stream the receiver does not know are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from typing import Final, cast

from byova_media.config import Config

__all__ = ["PREAMBLE", "FrameProtocol", "client_tls", "server_tls"]

log = logging.getLogger(__name__)

#: Sent by the connecting side first: a stray client or another version is cut at once.
PREAMBLE: Final = b"BYOVAPL1"
_HEADER = struct.Struct(">IBI")  # length of kind + stream + payload, kind, stream id
_KIND_AND_STREAM = 5

OPEN: Final = 1
REQUEST: Final = 2
HALF_CLOSE: Final = 3
CANCEL: Final = 4
RESPONSE: Final = 5
STATUS: Final = 6


class FrameProtocol(asyncio.Protocol):
    """Frames in and out of one connection, with the transport's write flow control.

    Subclasses handle :meth:`frame_received` and :meth:`closed`. ``max_payload`` bounds a
    frame (the server's ``max_message_bytes``): a larger length cuts the connection, so
    a broken or hostile peer cannot make this side buffer without limit.
    """

    def __init__(self, max_payload: int, expect_preamble: bool) -> None:
        self.transport: asyncio.Transport | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self._max_frame = max_payload + _KIND_AND_STREAM
        self._buffer = bytearray()
        self._awaiting_preamble = expect_preamble
        #: Frames sent in this turn of the event loop, written together at its end.
        self._outgoing: list[bytes] = []

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but are one in behaviour.
        self.transport = cast(asyncio.Transport, transport)
        # Kept: asyncio.get_running_loop() per frame costs a getpid() system call.
        self._loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._awaiting_preamble:
            if len(buffer) < len(PREAMBLE):
                return
            if buffer[: len(PREAMBLE)] != PREAMBLE:
                self.abort("not a byova-media peer link (or another version)")
                return
            del buffer[: len(PREAMBLE)]
            self._awaiting_preamble = False
        start, available = 0, len(buffer)
        while available - start >= _HEADER.size and self.is_open:
            length, kind, stream = _HEADER.unpack_from(buffer, start)
            if length > self._max_frame or length < _KIND_AND_STREAM:
                self.abort(f"a frame of {length} bytes is over the limit")
                return
            end = start + 4 + length
            if end > available:
                break
            self.frame_received(kind, stream, bytes(buffer[start + _HEADER.size : end]))
            start = end
        if start:
            del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()  # wake writers: they see the link is closed
        self.closed(exc)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    # --- for subclasses ---

    def frame_received(self, kind: int, stream: int, payload: bytes) -> None:
        raise NotImplementedError

    def closed(self, exc: Exception | None) -> None:
        raise NotImplementedError

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, kind: int, stream: int, payload: bytes = b"") -> None:
        """Send one frame (dropped once the connection is closing).

        It is written at the end of this turn of the event loop, together with every
        other frame sent on the link in the same turn: one system call (and one wake-up
        of the peer) for all of them. Nothing waits longer than the turn.
        """
        if self.transport is not None and not self.transport.is_closing():
            if not self._outgoing:
                self._loop.call_soon(self.flush)
            self._outgoing.append(_HEADER.pack(len(payload) + _KIND_AND_STREAM, kind, stream))
            self._outgoing.append(payload)

    def flush(self) -> None:
        """Write the frames sent so far in this turn now (before closing the link)."""
        frames, self._outgoing = self._outgoing, []
        if frames and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(frames))

    def abort(self, reason: str) -> None:
        log.warning("peer link closed: %s", reason)
        if self.transport is not None:
            self.transport.abort()


def server_tls(config: Config) -> ssl.SSLContext | None:
    """The link's server side of TLS, as the gRPC port's: a client CA turns on mTLS."""
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    if config.tls_client_ca_file is not None:
        context.load_verify_locations(config.tls_client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_tls(config: Config) -> ssl.SSLContext | None:
    """TLS to peers when this instance serves TLS: its own certificate is the client
    certificate (peers that require mTLS check it), the client CA (else the system
    roots) verifies theirs, and the advertised host must match their certificates."""
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None
    ca = config.tls_client_ca_file
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    return context
