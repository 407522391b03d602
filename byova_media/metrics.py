"""Prometheus metrics of one server, in their own registry (two servers, two registries)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class Metrics:
    """The counters the core keeps; plugins may add theirs to :attr:`registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.active_conversations = Gauge(
            "byova_active_conversations", "Conversations held in memory", registry=r
        )
        self.active_rpcs = Gauge("byova_active_rpcs", "ProcessCallerInput RPCs open", registry=r)
        self.rpcs = Counter(
            "byova_rpcs", "RPCs finished, by kind and status", ["kind", "status"], registry=r
        )
        self.rpc_completions = Counter(
            "byova_rpc_completions",
            "RPCs completed after the client's half-close, or after half_close_grace_ms",
            ["after"],
            registry=r,
        )
        self._add_audio_metrics(r)
        self.replies = Counter("byova_replies", "Responses sent, by type", ["type"], registry=r)
        self.output_events = Counter(
            "byova_output_events", "Output events sent, by type", ["event"], registry=r
        )
        self.plugin_errors = Counter(
            "byova_plugin_errors", "Agent/plugin failures during calls", ["plugin"], registry=r
        )
        self.jws_rejections = Counter(
            "byova_jws_rejections", "RPCs refused for a bad or missing JWS", ["reason"], registry=r
        )
        self.admission_rejections = Counter(
            "byova_admission_rejections", "New conversations refused", ["reason"], registry=r
        )
        self.loop_stalls = Counter(
            "byova_loop_stalls",
            "Times the event loop was blocked past loop_stall_warn_ms, by the agent on its stack",
            ["plugin"],
            registry=r,
        )
        self.ws_sockets = Gauge("byova_ws_sockets", "Open /v1/va WebSocket sockets", registry=r)
        self.ws_errors = Counter(
            "byova_ws_errors", "/v1/va sockets closed with an ERROR, by code", ["code"], registry=r
        )
        self.barge_ins = Counter("byova_barge_ins", "Prompts interrupted by the caller", registry=r)
        self.loop_lag = Gauge(
            "byova_event_loop_lag_seconds",
            "Worst recent event-loop lag (sampled when admission control is on)",
            registry=r,
        )
        self.turn_latency = Histogram(
            "byova_turn_latency_seconds",
            "END_OF_INPUT to first reply audio sent",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def _add_audio_metrics(self, r: CollectorRegistry) -> None:
        """Frame counters of the caller-audio path and the reply path."""
        self.frames_in = Counter("byova_frames_in", "Caller audio frames received", registry=r)
        self.frames_out = Counter("byova_audio_chunks_out", "Audio CHUNK payloads sent", registry=r)
        self.frames_late = Counter("byova_frames_late", "Caller frames dropped as late", registry=r)
        self.frames_tiny = Counter(
            "byova_frames_tiny",
            "Caller audio payloads under min_audio_bytes, ignored (Webex sends some at call start)",
            registry=r,
        )
        self.frames_duplicate = Counter(
            "byova_frames_duplicate", "Caller frames dropped as duplicates", registry=r
        )
        self.frames_concealed = Counter(
            "byova_frames_concealed", "Missing caller frames concealed", registry=r
        )

    def render(self) -> bytes:
        """The text exposition format served on ``/metrics``."""
        return generate_latest(self.registry)
