"""Cluster metrics, registered in the server's own Prometheus registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from byova_media.metrics import Metrics

__all__ = ["ClusterMetrics"]

_FORWARD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ClusterMetrics:
    """Ownership, forwarding and failover counters of one instance."""

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.owned = Gauge(
            "byova_cluster_owned_conversations", "Conversations this instance owns", registry=r
        )
        self.forwarded = Counter(
            "byova_cluster_forwarded_rpcs",
            "RPCs proxied to the owning instance, by outcome",
            ["status"],
            registry=r,
        )
        self.peer_rpcs = Counter(
            "byova_cluster_peer_rpcs", "Forwarded RPCs received from peers", registry=r
        )
        self.peer_rejections = Counter(
            "byova_cluster_peer_rejections",
            "Forwarded RPCs refused for a bad peer credential",
            ["reason"],
            registry=r,
        )
        self.takeovers = Counter(
            "byova_cluster_takeovers", "Conversations taken over from a lost owner", registry=r
        )
        self.handoffs = Counter(
            "byova_cluster_handoffs", "Conversations handed on to peers while draining", registry=r
        )
        self.lease_renew_failures = Counter(
            "byova_cluster_lease_renew_failures",
            "Heartbeat/lease renewal rounds that failed (Redis unreachable)",
            registry=r,
        )
        self.snapshot_failures = Counter(
            "byova_cluster_snapshot_failures", "Snapshots that could not be saved", registry=r
        )
        self.forward_latency = Histogram(
            "byova_cluster_forward_latency_seconds",
            "From an RPC's first message to its hand-over to the owner's stream",
            buckets=_FORWARD_BUCKETS,
            registry=r,
        )
