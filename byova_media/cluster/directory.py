"""Who owns which conversation, kept in Redis: instance heartbeats, leases, snapshots.

Keys (``prefix`` defaults to ``byova:``):

- ``instance:<id>``: the instance's addresses and draining flag, expiring one lease after
  its last heartbeat; a missing key means the instance is gone.
- ``owner:<conversation>``: the owning instance id, with a TTL (two leases) that the
  owner renews while the call lives.
- ``snapshot:<conversation>``: the conversation's state after its last turn.

Every decision that two instances could race on (claim, take-over, renew, release) is
one Lua script, so Redis decides it atomically; there is no consensus code of ours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["Claim", "Directory", "InstanceInfo"]

# KEYS[1] owner key; ARGV: my id, lease ms, instance key prefix.
# Returns {status, previous owner, previous owner's record}: status "mine" (already
# ours), "claimed" (nobody held it), "taken" (its owner's heartbeat is gone), "other".
_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'claimed', '', ''}
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'mine', cur, ''}
end
local record = redis.call('GET', ARGV[3] .. cur)
if not record then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'taken', cur, ''}
end
return {'other', cur, record}
"""

# KEYS: owner keys; ARGV: my id, lease ms. Extends ours, re-takes expired ones (Redis was
# away for longer than a lease but nobody else claimed them); returns the ones lost.
_RENEW = """
local lost = {}
for i, key in ipairs(KEYS) do
  local cur = redis.call('GET', key)
  if cur == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  elseif not cur then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else
    table.insert(lost, key)
  end
end
return lost
"""

# KEYS[1] owner key, KEYS[2] snapshot key; ARGV: my id, "1" to drop the snapshot too.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
  return 1
end
return 0
"""


@dataclass(frozen=True)
class InstanceInfo:
    """What an instance's heartbeat says about it."""

    instance_id: str
    #: HOST:PORT of its gRPC port (for logs and operators).
    address: str
    draining: bool = False
    #: HOST:PORT of its peer link, where other instances forward RPCs to it.
    link: str = ""
    #: It would refuse a new call for lack of room (as of its last heartbeat).
    full: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "address": self.address,
                "draining": self.draining,
                "link": self.link,
                "full": self.full,
            }
        )

    @classmethod
    def from_json(cls, instance_id: str, raw: str | bytes) -> InstanceInfo:
        data = json.loads(raw)
        return cls(
            instance_id,
            str(data["address"]),
            bool(data.get("draining", False)),
            str(data.get("link", "")),
            bool(data.get("full", False)),
        )


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a conversation; ``owner`` is set when another instance has it."""

    status: Literal["mine", "claimed", "taken", "other"]
    previous: str = ""
    owner: InstanceInfo | None = None

    @property
    def ours(self) -> bool:
        return self.status != "other"


class Directory:
    """The cluster's shared state for one instance, over one ``redis.asyncio`` client."""

    def __init__(self, redis: aioredis.Redis, instance_id: str, prefix: str = "byova:") -> None:
        self.redis = redis
        self.instance_id = instance_id
        self.prefix = prefix
        self._claim = redis.register_script(_CLAIM)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def _owner_key(self, conversation_id: str) -> str:
        return f"{self.prefix}owner:{conversation_id}"

    def _snapshot_key(self, conversation_id: str) -> str:
        return f"{self.prefix}snapshot:{conversation_id}"

    async def heartbeat(self, info: InstanceInfo, ttl_ms: int) -> None:
        """Say this instance is alive for ``ttl_ms`` more milliseconds."""
        await self.redis.set(f"{self.prefix}instance:{info.instance_id}", info.to_json(), px=ttl_ms)

    async def leave(self) -> None:
        """Remove this instance's heartbeat (a clean stop: nothing to wait for)."""
        await self.redis.delete(f"{self.prefix}instance:{self.instance_id}")

    async def instances(self) -> list[InstanceInfo]:
        """Every instance whose heartbeat is current."""
        keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}instance:*", count=100)]
        if not keys:
            return []
        values = await self.redis.mget(keys)
        start = len(f"{self.prefix}instance:")
        return [
            InstanceInfo.from_json(_text(k)[start:], v)
            for k, v in zip(keys, values, strict=True)
            if v is not None
        ]

    async def claim(self, conversation_id: str, lease_ms: int) -> Claim:
        """Own ``conversation_id`` unless a live instance does; atomic."""
        status, previous, record = await self._claim(
            keys=[self._owner_key(conversation_id)],
            args=[self.instance_id, lease_ms, f"{self.prefix}instance:"],
        )
        status, previous = _text(status), _text(previous)
        owner = InstanceInfo.from_json(previous, record) if status == "other" else None
        return Claim(status, previous, owner)  # type: ignore[arg-type]

    async def renew(self, conversation_ids: Sequence[str], lease_ms: int) -> list[str]:
        """Extend the leases of ``conversation_ids``; return those another instance holds."""
        if not conversation_ids:
            return []
        keys = [self._owner_key(c) for c in conversation_ids]
        lost = await self._renew(keys=keys, args=[self.instance_id, lease_ms])
        start = len(f"{self.prefix}owner:")
        return [_text(k)[start:] for k in lost]

    async def release(self, conversation_id: str, *, keep_snapshot: bool) -> bool:
        """Give the conversation up if it is ours; drop its snapshot unless it moves on."""
        keys = [self._owner_key(conversation_id), self._snapshot_key(conversation_id)]
        done = await self._release(
            keys=keys, args=[self.instance_id, "0" if keep_snapshot else "1"]
        )
        return bool(done)

    async def save_snapshot(self, conversation_id: str, data: bytes, ttl_s: float) -> None:
        await self.redis.set(self._snapshot_key(conversation_id), data, px=int(ttl_s * 1000))

    async def load_snapshot(self, conversation_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self._snapshot_key(conversation_id))
        if raw is None:
            return None
        data = json.loads(raw)
        return data if isinstance(data, dict) else None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
