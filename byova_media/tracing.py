"""Optional OpenTelemetry spans: one per call, one per RPC (turn) inside it.

Active only when the ``otel`` extra is installed; spans go to whatever tracer provider
the application configured (the global one by default), so without an SDK set up
they cost next to nothing. Without OpenTelemetry every method is a no-op.

A call span (``byova.call``) runs from the conversation's creation to its release.
Each ``ProcessCallerInput`` RPC becomes a child span (``byova.rpc``) recorded when
the RPC ends, with its kind (session_start, audio, dtmf, ...) and outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from byova_media.logs import conversation_id_var, tracking_id_var

__all__ = ["RpcSpan", "Tracing"]

_TRACER_NAME = "byova_media"


class RpcSpan:
    """What an RPC learns about itself while it runs (recorded as a span at its end)."""

    def __init__(self) -> None:
        self.kind = "unknown"
        self.start_ns = time.time_ns()


class Tracing:
    """Spans of one server; build with :meth:`create`, pass a provider in tests."""

    def __init__(self, tracer: Any | None) -> None:
        self._tracer = tracer
        self._calls: dict[str, Any] = {}  # conversation id → its open call span

    @classmethod
    def create(cls, provider: Any | None = None) -> Tracing:
        """Tracing through ``provider`` (default: the global one), or a no-op without OTel."""
        try:
            from opentelemetry import trace
        except ImportError:  # the otel extra is optional
            return cls(None)
        from byova_media import __version__

        source = provider if provider is not None else trace.get_tracer_provider()
        return cls(source.get_tracer(_TRACER_NAME, __version__))

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def call_started(self, conversation_id: str, virtual_agent_id: str, org_id: str) -> None:
        """Open the call's span (called once the conversation is admitted)."""
        if self._tracer is None:
            return
        self._calls[conversation_id] = self._tracer.start_span(
            "byova.call",
            attributes={
                "byova.conversation_id": conversation_id,
                "byova.virtual_agent_id": virtual_agent_id,
                "byova.customer_org_id": org_id,
                "byova.tracking_id": tracking_id_var.get(),
            },
        )

    def call_ended(self, conversation_id: str, reason: str, turns: int) -> None:
        """Close the call's span with why it ended."""
        span = self._calls.pop(conversation_id, None)
        if span is not None:
            span.set_attribute("byova.end_reason", reason)
            span.set_attribute("byova.turns", turns)
            span.end()

    @contextmanager
    def rpc(self) -> Iterator[RpcSpan]:
        """Time one RPC; on exit record it as a child of its call's span.

        The conversation id is read from the logging context the servicer sets while
        handling the RPC, so the span needs no plumbing through the handlers.
        """
        handle = RpcSpan()
        error: BaseException | None = None
        try:
            yield handle
        except BaseException as exc:
            error = exc
            raise
        finally:
            if self._tracer is not None:
                self._record(handle, error)

    def _record(self, handle: RpcSpan, error: BaseException | None) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        assert self._tracer is not None
        conversation_id = conversation_id_var.get()
        parent = self._calls.get(conversation_id)
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self._tracer.start_span(
            f"byova.rpc {handle.kind}",
            context=context,
            start_time=handle.start_ns,
            attributes={
                "byova.conversation_id": conversation_id,
                "byova.rpc.kind": handle.kind,
                "byova.tracking_id": tracking_id_var.get(),
            },
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.set_attribute("byova.rpc.error", getattr(error, "code", type(error).__name__))
        span.end()
