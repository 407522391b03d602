"""Embedded SQLite backend: one file, created 0600, WAL mode, safe for several processes.

Every call runs in a worker thread on its own short-lived transaction; ``busy_timeout``
makes concurrent writers (another process, another instance) wait instead of failing, and
lease changes use ``BEGIN IMMEDIATE`` so that two processes cannot both take a lease.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["SqliteBackend"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at REAL,
    PRIMARY KEY (kind, key)
)
"""
_BUSY_TIMEOUT_MS = 10_000


class SqliteBackend:
    """Byte storage in one SQLite file (see :class:`byova_control.store.StoreBackend`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Create the file ourselves so it is never world-readable, even for an instant;
        # SQLite gives its -wal/-shm files the same permissions as the database.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        with self._lock:
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._set_up()

    def _set_up(self) -> None:
        """WAL mode and the schema. Switching a new file to WAL while another process does
        the same can fail with "database is locked" without waiting on ``busy_timeout``
        (SQLite takes no busy handler there), so that step is retried within the timeout."""
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
                self._conn.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def __repr__(self) -> str:
        return f"SqliteBackend({str(self.path)!r})"

    async def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        def work() -> list[tuple[Any, ...]]:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()

        return await asyncio.to_thread(work)

    async def get(self, kind: str, key: str) -> bytes | None:
        """The value, or None when missing or expired."""
        rows = await self._run(
            "SELECT value FROM kv WHERE kind = ? AND key = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (kind, key, time.time()),
        )
        return bytes(rows[0][0]) if rows else None

    async def put(self, kind: str, key: str, value: bytes) -> None:
        """Create or replace a value."""
        await self._run(
            "INSERT INTO kv (kind, key, value, expires_at) VALUES (?, ?, ?, NULL) "
            "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires_at = NULL",
            (kind, key, value),
        )

    async def delete(self, kind: str, key: str) -> bool:
        """Remove a value; True if it existed."""
        rows = await self._run("DELETE FROM kv WHERE kind = ? AND key = ? RETURNING 1", (kind, key))
        return bool(rows)

    async def keys(self, kind: str) -> list[str]:
        """Every live key of one kind, sorted."""
        rows = await self._run(
            "SELECT key FROM kv WHERE kind = ? AND (expires_at IS NULL OR expires_at > ?) "
            "ORDER BY key",
            (kind, time.time()),
        )
        return [str(r[0]) for r in rows]

    async def add_once(self, kind: str, key: str, ttl_s: float) -> bool:
        """Insert a marker unless a live one exists; True for the first caller."""

        def work() -> bool:
            now = time.time()
            with self._lock:
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "DELETE FROM kv WHERE kind = ? AND key = ? AND expires_at <= ?",
                        (kind, key, now),
                    )
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO kv (kind, key, value, expires_at) "
                        "VALUES (?, ?, x'', ?)",
                        (kind, key, now + ttl_s),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return cur.rowcount == 1

        return await asyncio.to_thread(work)

    async def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take the lease when free or expired, or extend it when ``owner`` holds it."""

        def work() -> bool:
            now = time.time()
            with self._lock:
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute(
                        "SELECT value, expires_at FROM kv WHERE kind = 'lease' AND key = ?",
                        (name,),
                    ).fetchone()
                    holder = bytes(row[0]).decode() if row else None
                    if row is not None and holder != owner and row[1] > now:
                        conn.execute("COMMIT")
                        return False
                    conn.execute(
                        "INSERT INTO kv (kind, key, value, expires_at) VALUES ('lease', ?, ?, ?) "
                        "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, "
                        "expires_at = excluded.expires_at",
                        (name, owner.encode(), now + ttl_s),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return True

        return await asyncio.to_thread(work)

    async def release_lease(self, name: str, owner: str) -> None:
        """Delete the lease if ``owner`` holds it."""
        await self._run(
            "DELETE FROM kv WHERE kind = 'lease' AND key = ? AND value = ?",
            (name, owner.encode()),
        )

    async def close(self) -> None:
        """Close the connection."""

        def work() -> None:
            with self._lock:
                self._conn.close()

        await asyncio.to_thread(work)
