"""The TokenStore over both backends: tokens, encryption at rest, deliveries, leases, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from control_helpers import redis_server
from cryptography.fernet import Fernet
from pydantic import SecretStr

from byova_control.store import StoreError, TokenStore, open_store
from byova_control.tokens import OAuthTokens

KEY = SecretStr(Fernet.generate_key().decode())
TOKENS = OAuthTokens(
    access_token="ACCESS-SECRET-123", expires_at=2e9, refresh_token="REFRESH-SECRET-456"
)


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tokens.db'}"
        return
    with redis_server(tmp_path) as url:
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[TokenStore]:
    opened = open_store(store_url, key=KEY)
    yield opened
    await opened.close()


async def test_org_tokens_round_trip_and_delete(store: TokenStore) -> None:
    assert await store.get_org_tokens("org-a") is None
    await store.put_org_tokens("org-a", TOKENS)
    await store.put_org_tokens("org-b", TOKENS)
    assert await store.get_org_tokens("org-a") == TOKENS
    assert await store.list_orgs() == ["org-a", "org-b"]
    assert await store.has_org("org-b")
    assert await store.delete_org_tokens("org-a")
    assert not await store.delete_org_tokens("org-a")
    assert await store.list_orgs() == ["org-b"]


async def test_secrets_are_encrypted_at_rest(store: TokenStore, store_url: str) -> None:
    await store.put_org_tokens("org-a", TOKENS)
    await store.put_secret("webhook", SecretStr("hook-secret-789"))
    raw = await store.backend.get("org", "org-a")
    assert raw is not None
    assert b"ACCESS-SECRET" not in raw
    assert b"REFRESH-SECRET" not in raw
    assert b"hook-secret" not in (await store.backend.get("secret", "webhook") or b"")
    no_key = open_store(store_url)
    wrong_key = open_store(store_url, key=SecretStr(Fernet.generate_key().decode()))
    try:
        with pytest.raises(StoreError, match="STORE_KEY"):
            await no_key.get_org_tokens("org-a")
        with pytest.raises(StoreError, match="wrong store_key"):
            await wrong_key.get_org_tokens("org-a")
    finally:
        await no_key.close()
        await wrong_key.close()


async def test_secrets_never_in_reprs(store: TokenStore) -> None:
    assert "SECRET" not in repr(TOKENS)
    assert "SECRET" not in repr(store)
    redis_store = open_store("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in repr(redis_store)
    assert "hunter2" not in repr(redis_store.backend)
    await redis_store.close()


def test_invalid_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="Fernet"):
        open_store(f"sqlite:///{tmp_path / 'x.db'}", key=SecretStr("not-a-key"))
    with pytest.raises(StoreError, match="unknown store URL"):
        open_store("mysql://u:pw@h/db")


async def test_delivery_is_first_only_once_and_expires(store: TokenStore) -> None:
    results = await asyncio.gather(*(store.first_delivery("d1", 0.5) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    await asyncio.sleep(0.6)
    assert await store.first_delivery("d1", 10)
    await store.forget_delivery("d1")
    assert await store.first_delivery("d1", 10)


async def test_lease_has_one_holder_until_released_or_expired(store: TokenStore) -> None:
    assert await store.acquire_lease("renew", "a", 0.5)
    assert not await store.acquire_lease("renew", "b", 0.5)
    assert await store.acquire_lease("renew", "a", 0.5)  # extend
    await store.release_lease("renew", "b")  # not the holder: no effect
    assert not await store.acquire_lease("renew", "b", 0.5)
    await store.release_lease("renew", "a")
    assert await store.acquire_lease("renew", "b", 0.3)
    await asyncio.sleep(0.4)
    assert await store.acquire_lease("renew", "a", 5)


async def test_tokens_survive_a_restart(store_url: str) -> None:
    first = open_store(store_url, key=KEY)
    await first.put_org_tokens("org-a", TOKENS)
    await first.put_datasource("org-a", "grpc", {"id": "ds1", "expires_at": 1.0})
    await first.close()
    second = open_store(store_url, key=KEY)
    try:
        assert await second.get_org_tokens("org-a") == TOKENS
        assert await second.get_datasource("org-a", "grpc") == {"id": "ds1", "expires_at": 1.0}
    finally:
        await second.close()


async def test_datasources_are_tracked_per_org_and_transport(store: TokenStore) -> None:
    await store.put_datasource("org-a", "grpc", {"id": "g-a"})
    await store.put_datasource("org-a", "ws", {"id": "w-a"})
    await store.put_datasource("org-b", "ws", {"id": "w-b"})
    assert await store.get_datasource("org-a", "grpc") == {"id": "g-a"}
    assert await store.get_datasource("org-a", "ws") == {"id": "w-a"}
    assert await store.get_datasource("org-b", "grpc") is None
    assert await store.list_datasources() == [
        ("org-a", "grpc"),
        ("org-a", "ws"),
        ("org-b", "ws"),
    ]
    # The gRPC record is where the version tracking only gRPC kept it (and reads it).
    assert await store.backend.keys("datasource") == ["org-a"]
    assert await store.delete_datasources("org-a")
    assert not await store.delete_datasources("org-a")
    assert await store.list_datasources() == [("org-b", "ws")]
    with pytest.raises(ValueError, match="unknown transport"):
        await store.get_datasource("org-b", "sip")  # type: ignore[arg-type]


async def test_sqlite_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "tokens.db"
    store = open_store(f"sqlite:///{path}")
    await store.put_org_tokens("org", TOKENS)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        # WAL is a property of the file: a second, independent connection sees it.
        with contextlib.closing(sqlite3.connect(path)) as other:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        await store.close()


async def test_sqlite_concurrent_writers_from_two_processes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from byova_control.store import open_store
        async def main(tag):
            store = open_store("sqlite:///{path}")
            for i in range(40):
                await store.backend.put("org", f"{{tag}}-{{i}}", b"x")
                await store.first_delivery(f"d{{i}}", 60)
            await store.close()
        asyncio.run(main(sys.argv[1]))
        """
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, tag, stderr=asyncio.subprocess.PIPE
        )
        for tag in ("p1", "p2")
    ]
    for proc in procs:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
    store = open_store(f"sqlite:///{path}")
    try:
        assert len(await store.list_orgs()) == 80
        assert len(await store.backend.keys("delivery")) == 40
    finally:
        await store.close()
