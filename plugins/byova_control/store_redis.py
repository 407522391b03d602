"""Redis backend, for several instances sharing tokens, deliveries and the renewal lease.

Keys are ``byova:control:<kind>:<key>``; once-only markers use ``SET NX EX``; leases are
``SET NX PX`` plus small Lua scripts so that only the holder can extend or release one.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from byova_control.store import redact_url

__all__ = ["RedisBackend"]

_PREFIX = "byova:control"
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisBackend:
    """Byte storage in Redis (see :class:`byova_control.store.StoreBackend`)."""

    def __init__(self, url: str, *, prefix: str = _PREFIX) -> None:
        self._url = redact_url(url)
        self._redis: aioredis.Redis = aioredis.Redis.from_url(url)
        self._prefix = prefix

    def __repr__(self) -> str:
        return f"RedisBackend({self._url!r})"

    def _key(self, kind: str, key: str) -> str:
        return f"{self._prefix}:{kind}:{key}"

    async def get(self, kind: str, key: str) -> bytes | None:
        """The value, or None."""
        value: Any = await self._redis.get(self._key(kind, key))
        return None if value is None else bytes(value)

    async def put(self, kind: str, key: str, value: bytes) -> None:
        """Create or replace a value."""
        await self._redis.set(self._key(kind, key), value)

    async def delete(self, kind: str, key: str) -> bool:
        """Remove a value; True if it existed."""
        return bool(await self._redis.delete(self._key(kind, key)))

    async def keys(self, kind: str) -> list[str]:
        """Every key of one kind, sorted (SCAN, never KEYS, to stay non-blocking)."""
        start = len(self._key(kind, ""))
        found = [
            bytes(k).decode()[start:]
            async for k in self._redis.scan_iter(match=self._key(kind, "*"), count=500)
        ]
        return sorted(found)

    async def add_once(self, kind: str, key: str, ttl_s: float) -> bool:
        """``SET NX`` with an expiry; True for the first caller."""
        ms = max(1, int(ttl_s * 1000))
        return bool(await self._redis.set(self._key(kind, key), b"1", nx=True, px=ms))

    async def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take the lease if free, extend it if ``owner`` holds it."""
        key = self._key("lease", name)
        ms = max(1, int(ttl_s * 1000))
        if await self._redis.set(key, owner.encode(), nx=True, px=ms):
            return True
        extended: Any = await self._redis.eval(_EXTEND, 1, key, owner, str(ms))
        return bool(extended)

    async def release_lease(self, name: str, owner: str) -> None:
        """Delete the lease if ``owner`` holds it."""
        await self._redis.eval(_RELEASE, 1, self._key("lease", name), owner)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
