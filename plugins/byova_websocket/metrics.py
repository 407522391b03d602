"""Prometheus counters of the websocket plugin, registered in the server's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

__all__ = ["WsMetrics"]


class WsMetrics:
    """Per-virtual-agent counters; each overflow policy has its counter here."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["virtual_agent"]
        self.caller_frames_dropped = Counter(
            "byova_ws_caller_frames_dropped",
            "Caller frames dropped because the backend did not keep up (oldest first)",
            labels,
            registry=registry,
        )
        self.control_dropped = Counter(
            "byova_ws_control_dropped",
            "Control messages dropped from a full queue",
            labels,
            registry=registry,
        )
        self.backend_audio_dropped_bytes = Counter(
            "byova_ws_backend_audio_dropped_bytes",
            "Backend audio bytes dropped from a full playout buffer (oldest first)",
            labels,
            registry=registry,
        )
        self.silence_frames = Counter(
            "byova_ws_silence_frames",
            "Silence frames sent to keep the backend's clock",
            labels,
            registry=registry,
        )
        self.reconnects = Counter(
            "byova_ws_reconnects",
            "Backend connections reopened mid-call",
            labels,
            registry=registry,
        )
        self.fallbacks = Counter(
            "byova_ws_fallbacks",
            "Calls sent to the fallback (backend down past the limit)",
            labels,
            registry=registry,
        )
        self.protocol_errors = Counter(
            "byova_ws_protocol_errors",
            "Malformed backend messages skipped",
            labels,
            registry=registry,
        )
