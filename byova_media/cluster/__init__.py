"""Cluster mode: many instances behind a load balancer, Redis for ownership and snapshots.

Off unless ``cluster_redis_url`` is set. See ``docs/cluster.md`` for the deployment and
:class:`~byova_media.cluster.node.ClusterNode` for how the engine uses it.
"""

from __future__ import annotations

from byova_media.cluster.credential import PeerAuthError, PeerCredential
from byova_media.cluster.node import ClusterNode

__all__ = ["ClusterNode", "PeerAuthError", "PeerCredential"]
