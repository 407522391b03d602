"""``ClusterNode``: this instance's part in a cluster (ownership, routing, failover, drain).

The engine asks it three things: where an RPC goes (:meth:`route`, at the RPC edge),
what to do when a conversation is made, has finished a turn or ends (restore, snapshot,
release), and the server tells it when to start, drain and stop. Redis decides every
race (see :mod:`byova_media.cluster.directory`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.cluster.credential import PeerAuthError, PeerCredential
from byova_media.cluster.directory import Claim, Directory, InstanceInfo
from byova_media.cluster.forwarding import CallerRequests, OwnerUnreachable, PeerLinks
from byova_media.cluster.link import client_tls, server_tls
from byova_media.cluster.metrics import ClusterMetrics
from byova_media.cluster.peer_server import InboundStream, PeerServer
from byova_media.cluster.snapshot import SnapshotError, apply_snapshot, take_snapshot
from byova_media.engine import check_conversation_id, kind_of
from byova_media.logs import conversation_id_var, tracking_id_var
from byova_media.rpc import RpcAbort, RpcOutput

if TYPE_CHECKING:
    from byova_media.app import App
    from byova_media.conversation import Conversation, ConversationRegistry
    from byova_media.engine import Engine

__all__ = ["ClusterNode", "Forward"]

log = logging.getLogger(__name__)

#: True while serving an RPC a peer forwarded: it is never forwarded again.
_forwarded: contextvars.ContextVar[bool] = contextvars.ContextVar("byova_forwarded", default=False)
_RETRY_S = 0.1
#: A draining instance stops only after this long without a new RPC: a balancer notices
#: NOT_SERVING within its health-check interval, and until then still sends RPCs here.
DRAIN_QUIET_S = 1.5
_MOVED = "this instance is draining and has handed the call on; retry it elsewhere"


@dataclass(frozen=True)
class Forward:
    """Route decision: proxy the RPC to ``owner``."""

    owner: InstanceInfo


def redact_url(url: str) -> str:
    """``url`` without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    return f"{scheme}{sep}***@{host}" if at and creds else url


class ClusterNode:
    """One instance of a cluster; made by the server when ``cluster_redis_url`` is set."""

    def __init__(self, app: App) -> None:
        import redis.asyncio as aioredis  # only cluster mode needs Redis
        from redis.exceptions import RedisError

        config = app.config
        assert config.cluster_redis_url and config.cluster_secret, "validated by Config"
        self.app = app
        self.instance_id = uuid.uuid4().hex[:12]
        self.lease_ms = int(config.cluster_lease_s * 1000)
        # Conversation leases outlive the heartbeat, so a crashed owner is seen as lost
        # (heartbeat gone: a take-over) before its leases could lapse on their own.
        self._owner_ttl_ms = 2 * self.lease_ms
        self.metrics = ClusterMetrics(app.metrics)
        self.credential = PeerCredential(config.cluster_secret.get_secret_value())
        self._redis = aioredis.Redis.from_url(
            config.cluster_redis_url, socket_timeout=config.cluster_lease_s / 3
        )
        self.directory = Directory(self._redis, self.instance_id)
        self.links = PeerLinks(
            self.credential, self.metrics, config.max_message_bytes, client_tls(config)
        )
        self.peer_server = PeerServer(self.serve_peer, config.max_message_bytes, server_tls(config))
        self.address = ""
        self.link_address = ""
        self.redis_ok = True
        self._redis_errors: tuple[type[Exception], ...] = (RedisError, OSError)
        self._redis_url = redact_url(config.cluster_redis_url)
        self._pending: dict[str, dict[str, Any]] = {}
        #: Calls claimed here that began on another instance (a snapshot was saved, or the
        #: owner was lost): a draining instance with no live peer still carries them on.
        self._carried: set[str] = set()
        self._open: Counter[str] = Counter()
        self._engine: Engine | None = None
        self._forwarding = 0
        self._last_rpc_at = 0.0
        self._idle = asyncio.Event()
        self._idle.set()
        self._ticker: asyncio.Task[None] | None = None
        self._release_tasks: set[asyncio.Task[None]] = set()
        #: A renewal re-takes an owned lease that has lapsed, so one must never run with
        #: a list of calls taken before a release that it would then undo.
        self._leases = asyncio.Lock()

    def __repr__(self) -> str:
        return f"ClusterNode(instance={self.instance_id}, redis={self._redis_url})"

    # --- lifecycle --------------------------------------------------------------------

    def bind(self, engine: Engine) -> None:
        """The engine this node routes RPCs to (its own and those peers forward)."""
        self._engine = engine

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "ClusterNode.bind() was not called"
        return self._engine

    @property
    def registry(self) -> ConversationRegistry:
        return self.engine.registry

    async def start(self, address: str) -> None:
        """Open the peer link port and join the cluster as ``address`` (the gRPC HOST:PORT).

        Peers reach the link at the host of ``address`` and the link's bound port.
        """
        config = self.app.config
        port = await self.peer_server.start(config.host, config.cluster_peer_port)
        self.address = address
        self.link_address = f"{address.rpartition(':')[0]}:{port}"
        await self._beat()
        self._ticker = asyncio.create_task(self._tick())
        log.info(
            "cluster instance %s at %s (peer link %s) joined (Redis %s, lease %.1f s)",
            self.instance_id,
            address,
            self.link_address,
            self._redis_url,
            self.lease_ms / 1000,
        )

    async def stop_serving(self, grace_s: float) -> None:
        """Refuse new forwarded RPCs; let open ones complete for up to ``grace_s``."""
        await self.peer_server.stop(grace_s)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        await self.released()
        await self.peer_server.stop(0.0)  # closed already after a normal stop
        try:
            await self.directory.leave()
        except Exception as exc:
            log.warning("could not remove this instance's heartbeat: %s", type(exc).__name__)
        await self.links.close()
        await self._redis.aclose()

    async def _tick(self) -> None:
        """Heartbeat and renew owned leases every third of a lease."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            await self._beat()

    async def _beat(self) -> None:
        try:
            async with self._leases:
                owned = [c.id for c in self.registry.all() if not c.ended]
                self.metrics.owned.set(len(owned))
                info = InstanceInfo(
                    self.instance_id,
                    self.address,
                    self.app.draining,
                    self.link_address,
                    self._full(),
                )
                await self.directory.heartbeat(info, self.lease_ms)
                lost = await self.directory.renew(owned, self._owner_ttl_ms)
        except Exception as exc:
            self.metrics.lease_renew_failures.inc()
            if self.redis_ok:
                self.redis_ok = False
                log.error(
                    "Redis %s unreachable (%s): keeping the %d calls this instance owns, "
                    "refusing new conversations until it is back",
                    self._redis_url,
                    type(exc).__name__,
                    len(owned),
                )
            return
        if not self.redis_ok:
            self.redis_ok = True
            log.info("Redis %s is back: taking new conversations again", self._redis_url)
        for conversation_id in lost:
            conv = self.registry.get(conversation_id)
            if conv is not None:
                log.warning("lease of conversation %s lost to another instance", conversation_id)
                await self.engine.end(conv, "lease_lost")

    # --- the RPC edge -----------------------------------------------------------------

    async def run_rpc(
        self, requests: AsyncIterator[pb.VoiceVARequest], out: RpcOutput, tracking_id: str
    ) -> str:
        """One RPC: in this engine when the call is (or becomes) ours, else at its owner.

        Same contract as :meth:`Engine.run_rpc`; a forwarded RPC's kind is ``forwarded``.
        """
        self._last_rpc_at = time.monotonic()
        first = await self.engine.first_message(requests)
        if first is None:
            return await self.engine.run_rpc(requests, out, tracking_id)  # completes quietly
        return await self._run_routed(first, requests, out, tracking_id)

    async def _run_routed(
        self,
        first: pb.VoiceVARequest,
        rest: AsyncIterator[pb.VoiceVARequest],
        out: RpcOutput,
        tracking_id: str,
    ) -> str:
        """The RPC whose ``first`` message was read: here, or at its owner."""
        # Validated once, here at the edge, before anything is claimed or forwarded.
        check_conversation_id(first.conversation_id)
        conversation_id_var.set(first.conversation_id)
        route = await self.route(first, kind_of(first) == "session_end")
        if route is None:
            return await self._run_here([first], rest, out, tracking_id)
        self._forwarding += 1
        self._idle.clear()
        try:
            await self.forward(route, first, rest, out, tracking_id)
        finally:
            self._forwarding -= 1
            if not self._forwarding:
                self._idle.set()
        return "forwarded"

    async def wait_idle(self) -> None:
        """Return when nothing is forwarded from here and no RPC came for a while (drain)."""
        while True:
            await self._idle.wait()
            quiet = time.monotonic() - self._last_rpc_at
            if quiet >= DRAIN_QUIET_S and self._idle.is_set():
                return
            await asyncio.sleep(max(DRAIN_QUIET_S - quiet, 0.05))

    async def _run_here(
        self,
        head: list[pb.VoiceVARequest],
        rest: AsyncIterator[pb.VoiceVARequest],
        out: RpcOutput,
        tracking_id: str,
    ) -> str:
        """Run the RPC in this engine (its first messages already read); snapshot after it."""

        async def requests() -> AsyncIterator[pb.VoiceVARequest]:
            for request in head:
                yield request
            async for request in rest:
                yield request

        conversation_id = head[0].conversation_id
        try:
            kind = await self.engine.run_rpc(requests(), out, tracking_id)
        except Exception:
            await self._let_go_unheld(conversation_id)
            raise
        if kind not in ("empty", "session_end"):
            await self.turn_done(conversation_id)
        return kind

    async def _let_go_unheld(self, conversation_id: str) -> None:
        """The engine refused an RPC of a call this instance claimed (full, draining, an
        unknown agent...): release the claim at once, snapshot kept, so that the next RPC
        can be served by another instance instead of meeting this refusal until the lease
        lapses."""
        if self.registry.get(conversation_id) is None and not self.registry.has_ended(
            conversation_id
        ):
            await self._let_go(conversation_id)

    async def _let_go(self, conversation_id: str) -> None:
        """Give up a call claimed here but not made here: the lease (its snapshot stays for
        whoever takes it) and what the claim loaded for it."""
        self._pending.pop(conversation_id, None)
        self._carried.discard(conversation_id)
        await self._release(conversation_id, keep_snapshot=True)

    async def route(self, first: pb.VoiceVARequest, session_end: bool) -> Forward | None:
        """Where the RPC whose first message is ``first`` runs: ``None`` for here.

        Claims the conversation when nobody (alive) owns it; raises :class:`RpcAbort`
        when that cannot be decided (Redis unreachable for a conversation not held here).
        """
        conversation_id = first.conversation_id
        forwarded = _forwarded.get()
        conv = self.registry.get(conversation_id)
        if conv is not None:
            if self.app.draining and not self._open[conversation_id]:
                return await self._move_on(conv, forwarded)
            self._hold(conversation_id)
            return None
        try:
            claim = await self._claim(conversation_id, session_end)
        except self._redis_errors as exc:
            log.error(
                "Redis %s unreachable (%s): refusing the RPC of a conversation not held here",
                self._redis_url,
                type(exc).__name__,
            )
            raise RpcAbort(
                "UNAVAILABLE",
                "cluster state (Redis) is unreachable; new conversations are refused until "
                "it is back",
            ) from None
        if claim.ours:
            # Draining, or full here (a call a peer sent is refused: it tried already):
            # a live peer takes the call instead.
            passing_on = self.app.draining or (not forwarded and self._full())
            if passing_on and (moved := await self._give_back(conversation_id, forwarded)):
                return moved
            self._hold(conversation_id)
            return None
        assert claim.owner is not None
        if forwarded:
            raise RpcAbort("UNAVAILABLE", f"conversation is owned by instance {claim.previous}")
        return Forward(claim.owner)

    async def _move_on(self, conv: Conversation, forwarded: bool) -> Forward | None:
        """Draining, and the call has no open RPC here: hand it on to a peer.

        A peer's forwarded RPC is refused with ABORTED once the call is released; that
        peer then claims the call and serves the RPC itself.
        """
        peer = None if forwarded else await self._live_peer()
        if not forwarded and peer is None:
            self._hold(conv.id)
            return None  # nobody to take it: keep serving it here
        await self._hand_off(conv)
        if peer is None:
            raise RpcAbort("ABORTED", _MOVED)
        return Forward(peer)

    def _full(self) -> bool:
        """Whether this instance would refuse a new call for lack of room now."""
        refused = self.registry.refusal()
        return refused is not None and refused[1].code == "RESOURCE_EXHAUSTED"

    async def _give_back(self, conversation_id: str, forwarded: bool) -> Forward | None:
        """Draining or full, and the RPC just claimed a call: release it so that a live
        peer takes it (``None``: there is none, keep it)."""
        peer = None if forwarded else await self._live_peer(need_room=not self.app.draining)
        if not forwarded and peer is None:
            return None
        await self._let_go(conversation_id)
        if peer is None:
            raise RpcAbort("ABORTED", _MOVED)
        log.info(
            "passing the call to instance %s (this one is %s)",
            peer.instance_id,
            "draining" if self.app.draining else "full",
            extra={"owner_instance": peer.instance_id},
        )
        return Forward(peer)

    async def _claim(self, conversation_id: str, session_end: bool) -> Claim:
        if session_end:
            # Hanging up never claims: it goes to a live owner, or ends here quietly.
            return await self.directory.claim(conversation_id, 1)
        claim = await self.directory.claim(conversation_id, self._owner_ttl_ms)
        if claim.status in ("claimed", "taken"):
            snapshot = await self.directory.load_snapshot(conversation_id)
            if snapshot is not None:
                self._pending[conversation_id] = snapshot
            if snapshot is not None or claim.status == "taken":
                self._carried.add(conversation_id)
            if claim.status == "taken":
                self.metrics.takeovers.inc()
                log.warning(
                    "took over conversation %s from lost instance %s (%s)",
                    conversation_id,
                    claim.previous,
                    "with its snapshot" if snapshot is not None else "no snapshot",
                )
        return claim

    def _hold(self, conversation_id: str) -> None:
        """Count this RPC as open on the conversation until its task ends."""
        self._open[conversation_id] += 1
        task = asyncio.current_task()

        def done(_: object) -> None:
            self._open[conversation_id] -= 1
            if self._open[conversation_id] <= 0:
                del self._open[conversation_id]

        if task is not None:
            task.add_done_callback(done)

    async def _live_peer(self, need_room: bool = False) -> InstanceInfo | None:
        """A live peer that is not draining, at random: one with room for a new call when
        there is one, and only such a one when ``need_room`` (a full instance passing a
        call on would otherwise only move the refusal)."""
        try:
            peers = [
                i
                for i in await self.directory.instances()
                if i.instance_id != self.instance_id and not i.draining
            ]
        except Exception:
            return None
        roomy = [i for i in peers if not i.full]
        choices = roomy if roomy or need_room else peers
        return random.choice(choices) if choices else None

    async def forward(
        self,
        route: Forward,
        first: pb.VoiceVARequest,
        rest: AsyncIterator[pb.VoiceVARequest],
        out: RpcOutput,
        tracking_id: str,
    ) -> None:
        """Proxy the RPC to its owner; if the owner does not take it, route it again.

        Then it goes to whoever holds the call by then, or runs here once this instance
        claims it (a draining one passes it on to a live peer). Waiting is bounded by one
        lease plus a second: by then the owner's heartbeat has expired and the claim
        succeeds (or another live instance holds the call).
        """
        owner: InstanceInfo | None = route.owner
        replay = [first]
        deadline = time.monotonic() + self.lease_ms / 1000 + 1.0
        requests = CallerRequests(rest)  # a failed attempt must not lose what comes next
        try:
            while owner is not None:
                log.info(
                    "forwarding to owner %s at %s", owner.instance_id, owner.link,
                    extra={"owner_instance": owner.instance_id},
                )  # fmt: skip
                try:
                    await self.links.forward(owner.link, first, requests, out, tracking_id, replay)
                    return
                except OwnerUnreachable as exc:
                    replay = exc.replay
                log.warning("owner %s did not take the RPC; routing it again", owner.instance_id)
                owner = await self._reroute(first.conversation_id, owner, deadline)
            self._hold(first.conversation_id)
            await self._run_here(replay, requests, out, tracking_id)
        finally:
            requests.close()

    async def _reroute(
        self, conversation_id: str, failed: InstanceInfo, deadline: float
    ) -> InstanceInfo | None:
        """Where an RPC goes after ``failed`` did not take it: another instance, or ``None``.

        ``None`` (serve it here) once this instance claims the call; a draining instance
        passes the call on to a live peer instead, as :meth:`route` does.
        """
        while True:
            if time.monotonic() > deadline:
                raise RpcAbort("UNAVAILABLE", "the instance owning this call is unreachable")
            await asyncio.sleep(_RETRY_S)
            try:
                claim = await self._claim(conversation_id, False)
            except Exception:
                continue
            if claim.ours:
                moved = await self._give_back(conversation_id, False) if self.app.draining else None
                return None if moved is None else moved.owner
            assert claim.owner is not None
            if claim.owner.instance_id != failed.instance_id:
                return claim.owner

    # --- the owner's side of forwarding ------------------------------------------------

    async def serve_peer(self, stream: InboundStream) -> None:
        """A peer forwards an RPC: check its credential, then serve it as if it came here."""
        self._last_rpc_at = time.monotonic()
        tracking_id_var.set(stream.tracking_id or "-")
        try:
            first = await self.engine.first_message(stream)
            if first is None:
                stream.finish("OK")
                return
            self.credential.verify(stream.token, first.conversation_id)
        except RpcAbort as exc:
            stream.finish(exc.code, exc.message)
            return
        except PeerAuthError as exc:
            self.metrics.peer_rejections.labels(reason=exc.reason).inc()
            log.warning("refused a forwarded RPC: peer credential %s", exc.reason)
            stream.finish("UNAUTHENTICATED", "invalid peer credential")
            return
        self.metrics.peer_rpcs.inc()
        _forwarded.set(True)  # in this task and the step's: never forwarded again
        out = RpcOutput(self.app.metrics)
        step = asyncio.create_task(self._run_routed(first, stream, out, stream.tracking_id))
        step.add_done_callback(lambda _t: out.close())
        kind, status = "unknown", "CANCELLED"
        try:
            while (response := await out.queue.get()) is not None:
                await stream.respond(response)
            status, details = _outcome(step)
            kind = step.result() if status == "OK" else kind
            stream.finish(status, details)
        finally:
            if not step.done():
                step.cancel()  # the forwarding instance cancelled it, or its link is gone
            self.app.metrics.rpcs.labels(kind=kind, status=status).inc()

    # --- conversation life --------------------------------------------------------------

    def carries_on(self, conversation_id: str) -> bool:
        """Whether a conversation about to be made here began on another instance.

        Asked once, as the engine makes it: a draining instance refuses new calls, but a
        call handed to it when no live peer is left is carried on, not failed.
        """
        if conversation_id in self._carried:
            self._carried.discard(conversation_id)
            return True
        return False

    def adopted(self, conv: Conversation) -> None:
        """A conversation was made here: restore it from the snapshot its last owner saved."""
        snapshot = self._pending.pop(conv.id, None)
        if snapshot is not None:
            apply_snapshot(conv, snapshot)
            log.info("restored conversation from its snapshot (%d turns)", conv.turns)

    async def turn_done(self, conversation_id: str) -> None:
        """Save the conversation's snapshot after a turn, for whoever carries it on."""
        conv = self.registry.get(conversation_id)
        if conv is None or conv.ended:
            return
        await self._save(conv)

    async def _save(self, conv: Conversation) -> bool:
        try:
            data = take_snapshot(conv)
        except SnapshotError as exc:
            self.metrics.snapshot_failures.inc()
            log.error("%s; a move would lose this agent's memory", exc)
            return False
        except Exception:
            self.metrics.snapshot_failures.inc()
            log.exception("agent %r snapshot() failed", conv.spec.virtual_agent_id)
            return False
        try:
            await self.directory.save_snapshot(conv.id, data, self.app.config.conversation_ttl_s)
        except Exception as exc:
            self.metrics.snapshot_failures.inc()
            if self.redis_ok:  # during a known outage the heartbeat has said so once
                log.warning("snapshot not saved: Redis %s", type(exc).__name__)
            return False
        return True

    def ended(self, conv: Conversation, reason: str) -> None:
        """A conversation ended here: release its lease (keeping the snapshot if it moves on)."""
        if reason == "lease_lost":
            return
        keep = reason in ("moved", "server_stop")
        task = asyncio.create_task(self._release(conv.id, keep))
        self._release_tasks.add(task)
        task.add_done_callback(self._release_tasks.discard)

    async def released(self) -> None:
        """Return once the leases of every call that ended here so far are released."""
        await asyncio.gather(*self._release_tasks, return_exceptions=True)

    async def _release(self, conversation_id: str, keep_snapshot: bool) -> None:
        try:
            async with self._leases:
                await self.directory.release(conversation_id, keep_snapshot=keep_snapshot)
        except Exception as exc:
            log.warning(
                "lease of %s not released (Redis %s); it expires on its own",
                conversation_id,
                type(exc).__name__,
            )

    async def _hand_off(self, conv: Conversation) -> None:
        """Draining: save the conversation and let it go, so a peer carries it on."""
        saved = await self._save(conv)
        self.metrics.handoffs.inc()
        log.info("handing conversation on to a peer (snapshot %s)", "saved" if saved else "lost")
        await self.engine.end(conv, "moved")
        await self.released()

    async def drain_started(self) -> None:
        """Tell peers at once that this instance is draining (they stop sending it calls)."""
        await self._beat()

    async def hand_off_all(self) -> None:
        """End of a drain: every conversation still held moves on with its snapshot."""
        for conv in self.registry.all():
            if not conv.ended:
                await self._hand_off(conv)


def _outcome(step: asyncio.Task[str]) -> tuple[str, str]:
    """The gRPC status (name and details) of a finished RPC step, as the servicer gives it."""
    if step.cancelled():
        return "CANCELLED", "the RPC was cancelled"
    exc = step.exception()
    if exc is None:
        return "OK", ""
    if isinstance(exc, RpcAbort):
        return exc.code, exc.message
    log.error("forwarded RPC failed", exc_info=exc)
    return "INTERNAL", "internal error; see server logs"
