"""One ``TokenStore`` for tokens, data-source records, webhook deliveries and leases.

Backends (embedded SQLite by default, Redis for several instances) only move bytes; this
facade serialises, encrypts secrets with Fernet when a key is configured, and is what the
rest of the plugin uses. The backend is chosen by URL: ``sqlite:///path`` or
``redis://host:port/db`` (``rediss://`` for TLS).
"""

from __future__ import annotations

import json
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from byova_control.tokens import OAuthTokens

__all__ = [
    "TRANSPORTS",
    "StoreBackend",
    "StoreError",
    "TokenStore",
    "Transport",
    "datasource_kind",
    "open_store",
    "redact_url",
]

_ENCRYPTED = b"enc1:"
_INTEGRATION_KEY = "default"

#: What a data source serves: Webex calls the gRPC server or the WebSocket server.
Transport = Literal["grpc", "ws"]
#: Every transport; an org has at most one tracked data source per transport.
TRANSPORTS: tuple[Transport, ...] = ("grpc", "ws")


def datasource_kind(transport: str) -> str:
    """The store kind holding one transport's data-source records, keyed by org.

    The gRPC records keep the kind ``datasource`` they had when only they were tracked, so
    an SQLite file or Redis keys written by an earlier version are read as gRPC unchanged
    (and an earlier version still reads its own records); other transports get a kind of
    their own (``datasource-ws``), which an earlier version never lists.
    """
    if transport == "grpc":
        return "datasource"
    if transport in TRANSPORTS:
        return f"datasource-{transport}"
    raise ValueError(f"unknown transport {transport!r}: use one of {', '.join(TRANSPORTS)}")


class StoreError(RuntimeError):
    """The store is misconfigured or holds data it cannot read."""


class StoreBackend(Protocol):
    """Byte storage with namespaces ("kinds"), once-only markers and owner leases."""

    async def get(self, kind: str, key: str) -> bytes | None:
        """The value, or None."""

    async def put(self, kind: str, key: str, value: bytes) -> None:
        """Create or replace a value."""

    async def delete(self, kind: str, key: str) -> bool:
        """Remove a value; True if it existed."""

    async def keys(self, kind: str) -> list[str]:
        """Every key of one kind, sorted."""

    async def add_once(self, kind: str, key: str, ttl_s: float) -> bool:
        """Record a marker for ``ttl_s``; True only for the first caller while it lives."""

    async def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take the lease or extend it if ``owner`` already holds it; False if someone else does."""

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it."""

    async def close(self) -> None:
        """Release connections."""


def redact_url(url: str) -> str:
    """The store URL with any password replaced, for logs and reprs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class TokenStore:
    """Typed access to everything the control plane persists."""

    def __init__(self, backend: StoreBackend, *, url: str, key: SecretStr | None = None) -> None:
        self.backend = backend
        self.url = redact_url(url)
        self._fernet: Fernet | None = None
        if key is not None:
            try:
                self._fernet = Fernet(key.get_secret_value().encode())
            except (ValueError, TypeError):
                raise StoreError(
                    "store_key is not a Fernet key (32 url-safe base64 bytes); generate one "
                    "with: python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'"
                ) from None

    def __repr__(self) -> str:
        return f"TokenStore({self.url!r}, encrypted={self._fernet is not None})"

    @property
    def encrypted(self) -> bool:
        """True when secrets are encrypted at rest."""
        return self._fernet is not None

    # --- secret (de)serialisation ---------------------------------------------------

    def _seal(self, data: Any) -> bytes:
        raw = json.dumps(data, separators=(",", ":")).encode()
        if self._fernet is None:
            return raw
        return _ENCRYPTED + self._fernet.encrypt(raw)

    def _open(self, value: bytes) -> Any:
        if value.startswith(_ENCRYPTED):
            if self._fernet is None:
                raise StoreError(
                    "the store holds encrypted secrets: set BYOVA_MEDIA_CONTROL_STORE_KEY"
                )
            try:
                value = self._fernet.decrypt(value[len(_ENCRYPTED) :])
            except InvalidToken:
                raise StoreError("cannot decrypt a stored secret: wrong store_key") from None
        return json.loads(value)

    # --- per-org Service App tokens ----------------------------------------------------

    async def get_org_tokens(self, org_id: str) -> OAuthTokens | None:
        """The org's Service App tokens, if the org authorized us."""
        value = await self.backend.get("org", org_id)
        return None if value is None else OAuthTokens.from_dict(self._open(value))

    async def put_org_tokens(self, org_id: str, tokens: OAuthTokens) -> None:
        """Save (or replace) the org's tokens."""
        await self.backend.put("org", org_id, self._seal(tokens.to_dict()))

    async def delete_org_tokens(self, org_id: str) -> bool:
        """Forget the org's tokens; True if there were any."""
        return await self.backend.delete("org", org_id)

    async def list_orgs(self) -> list[str]:
        """Every org with stored tokens."""
        return await self.backend.keys("org")

    async def has_org(self, org_id: str) -> bool:
        """True when the org's tokens are stored (used as the JWS org allow-list)."""
        return await self.backend.get("org", org_id) is not None

    # --- the Integration's own tokens ---------------------------------------------------

    async def get_integration_tokens(self) -> OAuthTokens | None:
        """The Integration tokens saved by ``control login``."""
        value = await self.backend.get("integration", _INTEGRATION_KEY)
        return None if value is None else OAuthTokens.from_dict(self._open(value))

    async def put_integration_tokens(self, tokens: OAuthTokens) -> None:
        """Save the Integration tokens."""
        await self.backend.put("integration", _INTEGRATION_KEY, self._seal(tokens.to_dict()))

    # --- generated secrets (e.g. the webhook secret) ------------------------------------

    async def get_secret(self, name: str) -> SecretStr | None:
        """A secret the plugin generated and saved."""
        value = await self.backend.get("secret", name)
        return None if value is None else SecretStr(str(self._open(value)))

    async def put_secret(self, name: str, secret: SecretStr) -> None:
        """Save a generated secret."""
        await self.backend.put("secret", name, self._seal(secret.get_secret_value()))

    # --- data-source records (no secrets: the JWS itself is never stored) ---------------

    async def get_datasource(self, org_id: str, transport: Transport) -> dict[str, Any] | None:
        """The org's tracked data source of one transport: id, url, schemaId, expires_at, ..."""
        value = await self.backend.get(datasource_kind(transport), org_id)
        return None if value is None else dict(json.loads(value))

    async def put_datasource(
        self, org_id: str, transport: Transport, record: dict[str, Any]
    ) -> None:
        """Remember the org's data source of ``transport`` so that it gets renewed."""
        await self.backend.put(datasource_kind(transport), org_id, json.dumps(record).encode())

    async def delete_datasource(self, org_id: str, transport: Transport) -> bool:
        """Stop tracking the org's data source of one transport; True if it was tracked."""
        return await self.backend.delete(datasource_kind(transport), org_id)

    async def delete_datasources(self, org_id: str) -> bool:
        """Stop tracking every data source of the org (it deauthorized); True if any was."""
        deleted = [await self.delete_datasource(org_id, t) for t in TRANSPORTS]
        return any(deleted)

    async def list_datasources(self) -> list[tuple[str, Transport]]:
        """Every tracked ``(org, transport)``, sorted by org, gRPC before WebSocket."""
        found = [
            (org, transport)
            for transport in TRANSPORTS
            for org in await self.backend.keys(datasource_kind(transport))
        ]
        return sorted(found, key=lambda pair: (pair[0], TRANSPORTS.index(pair[1])))

    # --- once-only deliveries and leases ------------------------------------------------

    async def first_delivery(self, delivery_key: str, ttl_s: float = 86400.0) -> bool:
        """True the first time a webhook delivery is seen (across instances sharing the store)."""
        return await self.backend.add_once("delivery", delivery_key, ttl_s)

    async def forget_delivery(self, delivery_key: str) -> None:
        """Drop a delivery marker so that Webex's retry is processed (the first try failed)."""
        await self.backend.delete("delivery", delivery_key)

    async def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or extend a named lease (one renewer among several instances)."""
        return await self.backend.acquire_lease(name, owner, ttl_s)

    async def release_lease(self, name: str, owner: str) -> None:
        """Give up a lease held by ``owner``."""
        await self.backend.release_lease(name, owner)

    async def close(self) -> None:
        """Close the backend."""
        await self.backend.close()


def open_store(url: str, *, key: SecretStr | None = None) -> TokenStore:
    """Open the store a URL names: ``sqlite:///relative.db``, ``sqlite:////abs.db``, ``redis://``."""
    scheme = urlsplit(url).scheme
    backend: StoreBackend
    if scheme == "sqlite":
        from byova_control.store_sqlite import SqliteBackend

        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise StoreError(f"sqlite store URL needs a path: sqlite:///file.db (got {url!r})")
        backend = SqliteBackend(path)
    elif scheme in {"redis", "rediss", "unix"}:
        from byova_control.store_redis import RedisBackend

        backend = RedisBackend(url)
    else:
        raise StoreError(
            f"unknown store URL {redact_url(url)!r}: use sqlite:///path or redis://host:port/db"
        )
    return TokenStore(backend, url=url, key=key)
