"""gRPC server interceptor that requires a valid data-source JWS on every BYOVA RPC.

Verification runs once per RPC, before the servicer sees the first message. The verified
claims are then available to the servicer through :data:`current_claims`::

    from byova_control.interceptor import current_claims

    claims = current_claims.get()  # VerifiedClaims, or None when no interceptor ran

Only the ``VoiceVirtualAgent`` service is guarded: health checks and reflection carry no
JWS (Webex never calls them) and are passed through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc

from byova_control.jws import JwsError, JwsVerifier, VerifiedClaims
from byova_media.metrics import Metrics
from byova_media.peer import PEER_TOKEN_PREFIX, PeerCredential

__all__ = [
    "PEER_ISSUER",
    "PROTECTED_SERVICE_PREFIX",
    "REFUSED_DRAIN_MESSAGES",
    "JwsInterceptor",
    "current_claims",
]

#: The ``issuer`` of the claims of an RPC the server placed on itself (the playground).
PEER_ISSUER = "byova-media:peer"

log = logging.getLogger(__name__)

#: Method paths starting with this need a JWS.
PROTECTED_SERVICE_PREFIX = "/com.cisco.wcc.ccai.media.v1.VoiceVirtualAgent/"

#: Claims of the JWS that authorized the RPC being served (set for the RPC's duration).
current_claims: ContextVar[VerifiedClaims | None] = ContextVar(
    "byova_control_current_claims", default=None
)

_DETAIL = "missing or invalid data source token"
#: Requests of a refused stream read (and dropped) at most, waiting for the half-close.
REFUSED_DRAIN_MESSAGES = 100
_UNSAFE_LOG_CHARS = re.compile(r"[^A-Za-z0-9_.:\-]")


class JwsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses ``VoiceVirtualAgent`` RPCs whose ``authorization`` metadata fails verification.

    A refusal ends the RPC with ``UNAUTHENTICATED`` and a generic detail; the reason goes
    to the log (once, with Webex's ``trackingid``) and to ``jws_rejections{reason}``
    (:class:`JwsError` reasons, or ``error`` when the verifier itself failed).

    A refused client-streaming RPC is ended only after the client half-closes (its requests
    are read and dropped), or after ``refused_drain_s`` or :data:`REFUSED_DRAIN_MESSAGES`
    requests: ending it while the client's first write is in flight makes grpc's client
    report ``INTERNAL`` instead of our status (a third to all of a flood of refused calls).
    """

    def __init__(
        self,
        verifier: JwsVerifier,
        metrics: Metrics | None = None,
        *,
        refused_drain_s: float = 1.0,
        peer: PeerCredential | None = None,
    ) -> None:
        self._verifier = verifier
        self._metrics = metrics
        self._refused_drain_s = refused_drain_s
        self._peer = peer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(PROTECTED_SERVICE_PREFIX):
            return handler
        metadata = tuple(handler_call_details.invocation_metadata or ())
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._guard_unary(handler.unary_unary, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._guard_stream(handler.stream_stream, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._guard_stream(handler.unary_stream, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_unary_rpc_method_handler(
            self._guard_unary(handler.stream_unary, method, metadata),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _guard_unary(
        self, behavior: Callable[..., Any], method: str, metadata: tuple[Any, ...]
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        """Wrap a behavior that returns one response (unary-unary, stream-unary)."""

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            claims = await self._authenticate(method, metadata, request, context)
            token = current_claims.set(claims)
            try:
                result = behavior(request, context)
                return await result if inspect.isawaitable(result) else result
            finally:
                current_claims.reset(token)

        return guarded

    def _guard_stream(
        self, behavior: Callable[..., Any], method: str, metadata: tuple[Any, ...]
    ) -> Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]:
        """Wrap a behavior that streams responses (an async generator or ``context.write``)."""

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            claims = await self._authenticate(method, metadata, request, context)
            token = current_claims.set(claims)
            try:
                result = behavior(request, context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        yield response
                elif inspect.isawaitable(result):
                    await result
            finally:
                current_claims.reset(token)

        return guarded

    async def _authenticate(
        self,
        method: str,
        metadata: tuple[Any, ...],
        request: Any,
        context: grpc.aio.ServicerContext,
    ) -> VerifiedClaims:
        """The verified claims, or abort the RPC with ``UNAUTHENTICATED``."""
        value = _metadata_value(metadata, "authorization")
        try:
            if value is None:
                raise JwsError("missing")
            if value.startswith(PEER_TOKEN_PREFIX):
                return _peer_claims_of(self._peer, value)
            return await self._verifier.verify(value)
        except JwsError as exc:
            reason = exc.reason
        except Exception as exc:
            # Fail closed on a verifier bug. Only the type is logged: a library's message or
            # traceback locals could quote the token.
            log.error("JWS verification failed unexpectedly on %s (%s)", method, type(exc).__name__)
            reason = "error"
        tracking = _metadata_value(metadata, "trackingid")
        log.warning(
            "refused %s: JWS %s (trackingid=%s)",
            method,
            reason,
            _UNSAFE_LOG_CHARS.sub("?", tracking[:80]) if tracking else "-",
        )
        if self._metrics is not None:
            self._metrics.jws_rejections.labels(reason=reason).inc()
        if isinstance(request, AsyncIterable):
            await self._drain(request)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DETAIL)
        raise AssertionError("context.abort returned")  # pragma: no cover

    async def _drain(self, requests: AsyncIterable[Any]) -> None:
        """Read and drop a refused stream's requests until it half-closes, within bounds."""
        # Whatever the stream does now (a malformed message, a reset) changes nothing: it is
        # refused, and the refusal was logged above.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._refused_drain_s):
                count = 0
                async for _ in requests:
                    count += 1
                    if count >= REFUSED_DRAIN_MESSAGES:
                        return


def _peer_claims_of(peer: PeerCredential | None, value: str) -> VerifiedClaims:
    """Claims for this server's own peer credential (the playground); ``JwsError`` otherwise."""
    if peer is None or not peer.verify(value):
        raise JwsError("invalid_peer")
    return VerifiedClaims(
        org_id="",
        issuer=PEER_ISSUER,
        subject="playground",
        audience="",
        jti="",
        expires_at=0.0,
        raw={},
    )


def _metadata_value(metadata: tuple[Any, ...], key: str) -> str | None:
    """The first text value of ``key`` (gRPC lower-cases keys); binary values are ignored."""
    for item in metadata:
        if item[0] == key and isinstance(item[1], str):
            return str(item[1])
    return None
