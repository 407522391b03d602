"""Prometheus metrics shared by the cloud speech and language adapters.

Every adapter reports the same two things under its own ``adapter`` label: how long
the vendor took to send the first byte of a result (the part of a turn's latency
that is not ours), and failures by a fixed vocabulary of kinds, so one dashboard
covers every vendor. One instance per server, kept in ``app.state``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from prometheus_client import Counter, Histogram

if TYPE_CHECKING:
    from byova_media.app import App

__all__ = ["AdapterMetrics", "ErrorKind", "adapter_metrics"]

ErrorKind = Literal[
    "rate_limited",  # HTTP 429 or the vendor's rate-limit event
    "server_error",  # HTTP 5xx or a server error event
    "client_error",  # HTTP 4xx other than 429: bad request, bad key, unknown model
    "timeout",  # no first byte (or no answer) in time
    "connection",  # could not connect, or the connection dropped
    "protocol",  # the vendor sent something we cannot read
]

_STATE_KEY = "adapter_metrics"
#: First-byte latencies of cloud services: tens of ms on a LAN up to seconds.
_BUCKETS_S = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)


class AdapterMetrics:
    """Time to first byte and errors by kind, labelled by adapter (``openai_tts``...)."""

    def __init__(self, app: App) -> None:
        registry = app.metrics.registry
        self.first_byte_seconds = Histogram(
            "byova_adapter_first_byte_seconds",
            "Seconds from a request to an adapter's vendor until its first result byte",
            ["adapter"],
            buckets=_BUCKETS_S,
            registry=registry,
        )
        self.errors = Counter(
            "byova_adapter_errors",
            "Adapter requests that failed, by kind",
            ["adapter", "kind"],
            registry=registry,
        )

    def first_byte(self, adapter: str, seconds: float) -> None:
        self.first_byte_seconds.labels(adapter=adapter).observe(seconds)

    def error(self, adapter: str, kind: ErrorKind) -> None:
        self.errors.labels(adapter=adapter, kind=kind).inc()


def adapter_metrics(app: App) -> AdapterMetrics:
    """The server's one :class:`AdapterMetrics` (made on first use)."""
    metrics = app.state.get(_STATE_KEY)
    if metrics is None:
        metrics = app.state[_STATE_KEY] = AdapterMetrics(app)
    assert isinstance(metrics, AdapterMetrics)
    return metrics
