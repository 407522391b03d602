"""The gRPC transport: ``VoiceVirtualAgent`` over the shared conversation engine.

Each ``ProcessCallerInput`` RPC runs as one step of :class:`~byova_media.engine.Engine`
in its own task, which queues responses on an :class:`RpcOutput`; this generator writes
them and completes the RPC with the right status. Every RPC is completed by the server,
also when the agent fails (the caller then gets the configured clean ending).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media._proto import voicevirtualagent_pb2_grpc as pb_grpc
from byova_media.cluster.node import ClusterNode
from byova_media.engine import Engine
from byova_media.logs import RateLimitedLog, tracking_id_var
from byova_media.rpc import RpcAbort, RpcOutput

__all__ = ["COMPLETED_AFTER_KEY", "VoiceVirtualAgentServicer"]

log = logging.getLogger(__name__)

_MAX_TRACKING_ID_CHARS = 128

#: Trailing metadata key: ``half-close`` or ``grace`` (see ``half_close_grace_ms``).
COMPLETED_AFTER_KEY = "byova-completed-after"


class VoiceVirtualAgentServicer(pb_grpc.VoiceVirtualAgentServicer):
    """Both RPCs of the BYOVA service, mapped onto the engine."""

    def __init__(self, engine: Engine, cluster: ClusterNode | None = None) -> None:
        self.engine = engine
        #: Cluster mode: routes each RPC to its conversation's owner before the engine.
        self.cluster = cluster
        self._client_errors = RateLimitedLog(log)

    async def ListVirtualAgents(
        self, request: pb.ListVARequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListVAResponse:
        registry = self.engine.registry
        return pb.ListVAResponse(
            virtual_agents=[
                pb.VirtualAgentInfo(
                    virtual_agent_id=spec.virtual_agent_id,
                    virtual_agent_name=spec.name or spec.virtual_agent_id,
                    is_default=spec.virtual_agent_id == registry.default_agent,
                    attributes=dict(spec.attributes),
                )
                for spec in registry.agents.values()
            ]
        )

    async def ProcessCallerInput(
        self,
        request_iterator: AsyncIterator[pb.VoiceVARequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[pb.VoiceVAResponse]:
        metrics = self.engine.app.metrics
        out = RpcOutput(metrics)
        tracking = _tracking_id(context)
        tracking_id_var.set(tracking or "-")
        step = asyncio.create_task(
            (self.cluster or self.engine).run_rpc(request_iterator, out, tracking)
        )
        step.add_done_callback(lambda _t: out.close())
        kind, status = "unknown", "OK"
        try:
            while (response := await out.queue.get()) is not None:
                yield response
            if out.completed_after is not None:
                # Shows a client (and an operator's capture) how the step ended.
                context.set_trailing_metadata(((COMPLETED_AFTER_KEY, out.completed_after),))
            if not step.cancelled() and (exc := step.exception()) is not None:
                status = exc.code if isinstance(exc, RpcAbort) else "INTERNAL"
                await self._abort(context, exc)
            kind = step.result()
        except asyncio.CancelledError:
            status = "CANCELLED"
            raise
        finally:
            if not step.done():
                step.cancel()  # client went away: release the RPC's resources
            metrics.rpcs.labels(kind=kind, status=status).inc()

    async def _abort(self, context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> None:
        """End the RPC with a client error's status (a rate-limited warning), or INTERNAL."""
        if isinstance(exc, RpcAbort):
            self._client_errors.warning(exc.code, "refused RPC: %s: %s", exc.code, exc.message)
            await context.abort(getattr(grpc.StatusCode, exc.code), exc.message)
        log.error("RPC failed", exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error; see server logs")


def _tracking_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    metadata = dict(context.invocation_metadata() or ())
    return str(metadata.get("trackingid", ""))[:_MAX_TRACKING_ID_CHARS]
