"""``ControlPlane``: builds and owns the plugin's objects for one server or one CLI command.

It is the composition root: one shared HTTP client, one store, and the pieces that exist
for the settings given (no Integration credentials → no webhook registration, and so on).
It also decides what a serviceApp authorization change does.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import Any

import httpx
from pydantic import SecretStr

from byova_control.datasources import (
    DataSourceRenewer,
    DataSources,
    DataSourceSpec,
    EnsureResult,
    track,
)
from byova_control.jws import BYOVA_SCHEMA_ID
from byova_control.oauth import IntegrationOAuth, IntegrationSession
from byova_control.rest import WebexClient, make_http_client
from byova_control.service_app import ServiceAppTokens
from byova_control.settings import ControlSettings, ControlSettingsError
from byova_control.store import TRANSPORTS, TokenStore, Transport, open_store
from byova_control.webhooks import ServiceAppEvent, WebhookReceiver, Webhooks
from byova_media.ws.auth import WS_SCHEMA_ID

__all__ = ["WEBHOOK_SECRET_NAME", "ControlPlane"]

log = logging.getLogger(__name__)

WEBHOOK_SECRET_NAME = "webhook"


class ControlPlane:
    """Every control-plane object of one process, built from :class:`ControlSettings`."""

    def __init__(
        self,
        settings: ControlSettings,
        *,
        http: httpx.AsyncClient | None = None,
        store: TokenStore | None = None,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self._own_http = http is None
        self.http = http or make_http_client(settings.http_timeout_s)
        self.client = WebexClient(
            self.http, base_url=settings.api_url, max_retries=settings.max_retries
        )
        self.store = store or open_store(settings.store, key=settings.store_key)
        self.oauth: IntegrationOAuth | None = None
        self.integration: IntegrationSession | None = None
        self.webhooks: Webhooks | None = None
        if settings.integration_client_id and settings.integration_client_secret:
            self.oauth = IntegrationOAuth(
                self.client,
                client_id=settings.integration_client_id,
                client_secret=settings.integration_client_secret,
                redirect_uri=settings.integration_redirect_uri,
                scopes=settings.integration_scopes,
            )
            self.integration = IntegrationSession(self.oauth, self.store)
            self.webhooks = Webhooks(self.client, self.integration)
        self.tokens: ServiceAppTokens | None = None
        self.datasources: DataSources | None = None
        if settings.sa_client_id and settings.sa_client_secret:
            self.tokens = ServiceAppTokens(
                self.client,
                self.store,
                self.integration,
                client_id=settings.sa_client_id,
                client_secret=settings.sa_client_secret,
            )
            self.datasources = DataSources(self.client, self.tokens)
        #: The data source to register per transport, from the URLs configured.
        self.specs: dict[Transport, DataSourceSpec] = {
            t: self.spec_for(t) for t in TRANSPORTS if self._configured_url(t)
        }
        self.renewer: DataSourceRenewer | None = None
        if self.datasources is not None and self.specs:
            self.renewer = DataSourceRenewer(
                self.datasources,
                self.store,
                self.specs,
                owner=owner or f"{uuid.uuid4()}",
                renew_before_s=settings.datasource_renew_before_s,
                retry_s=settings.datasource_retry_s,
                interval_s=settings.renew_interval_s,
            )
        self.receiver = WebhookReceiver(self.store, self.webhook_secrets, self.on_event)

    def __repr__(self) -> str:
        return f"ControlPlane(api={self.settings.api_url!r}, store={self.store!r})"

    # --- what the CLI and hooks need, with a clear error when it is not configured -------

    def need_tokens(self) -> ServiceAppTokens:
        """The Service App token source, or an error naming the missing settings."""
        if self.tokens is None:
            self.settings.require("sa_client_id", "sa_client_secret")
            raise ControlSettingsError("the Service App is not configured")
        return self.tokens

    def need_datasources(self) -> DataSources:
        """The DataSource API, or an error naming the missing settings."""
        self.need_tokens()
        assert self.datasources is not None  # built together with tokens
        return self.datasources

    def need_webhooks(self) -> Webhooks:
        """The webhook API, or an error naming the missing settings."""
        if self.webhooks is None:
            self.settings.require("integration_client_id", "integration_client_secret")
            raise ControlSettingsError("the Integration is not configured")
        return self.webhooks

    def need_oauth(self) -> IntegrationOAuth:
        """The Integration OAuth client, or an error naming the missing settings."""
        self.need_webhooks()
        assert self.oauth is not None
        return self.oauth

    # --- webhook secrets ---------------------------------------------------------------

    async def webhook_secrets(self) -> list[SecretStr]:
        """Secrets a delivery may be signed with: the configured one and the stored one."""
        found = []
        if self.settings.webhook_secret is not None:
            found.append(self.settings.webhook_secret)
        stored = await self.store.get_secret(WEBHOOK_SECRET_NAME)
        if stored is not None:
            found.append(stored)
        return found

    async def registration_secret(self) -> SecretStr:
        """The secret to register webhooks with: configured, else stored, else a new one."""
        if self.settings.webhook_secret is not None:
            return self.settings.webhook_secret
        stored = await self.store.get_secret(WEBHOOK_SECRET_NAME)
        if stored is not None:
            return stored
        fresh = SecretStr(secrets.token_urlsafe(32))
        await self.store.put_secret(WEBHOOK_SECRET_NAME, fresh)
        return fresh

    # --- data sources ------------------------------------------------------------------

    def _configured_url(self, transport: Transport) -> str | None:
        s = self.settings
        return s.ws_datasource_url if transport == "ws" else s.datasource_url

    def spec_for(self, transport: Transport, url: str | None = None) -> DataSourceSpec:
        """The data source of ``transport``: gRPC (BYOVA schema, ``https://`` URL) or
        WebSocket (schema a38a10b7-…, ``wss://`` URL); ``url`` overrides the setting."""
        s = self.settings
        url = url or self._configured_url(transport)
        if not url:
            s.require("ws_datasource_url" if transport == "ws" else "datasource_url")
        assert url is not None
        schema_id = BYOVA_SCHEMA_ID
        if transport == "ws":
            if not url.startswith("wss://"):
                raise ControlSettingsError(
                    f"a WebSocket data source URL starts with wss://, not {url!r}"
                )
            schema_id = WS_SCHEMA_ID
        return DataSourceSpec(
            url=url,
            schema_id=schema_id,
            audience=s.datasource_audience,
            subject=s.datasource_subject,
            token_lifetime_minutes=s.datasource_token_lifetime_minutes,
        )

    async def ensure_datasource(
        self, org_id: str, transport: Transport = "grpc", url: str | None = None
    ) -> EnsureResult:
        """Ensure the org's data source of ``transport`` (configured URL unless ``url``)
        and track it, so that the renewer (of whichever instance holds the lease) renews it."""
        spec = self.spec_for(transport, url)
        result = await self.need_datasources().ensure(org_id, spec)
        await track(self.store, org_id, transport, result.record)
        log.info(
            "%s %s data source %s for org %s",
            "created" if result.created else "found",
            transport,
            result.record.get("id"),
            org_id,
        )
        return result

    async def renew_found(
        self, org_id: str, transport: Transport, url: str | None = None
    ) -> dict[str, Any]:
        """Find (or create) the data source matching the transport's spec, PUT a fresh
        nonce now and track it: adopts one registered before its transport was tracked."""
        spec = self.spec_for(transport, url)
        found = await self.ensure_datasource(org_id, transport, url)
        record = await self.need_datasources().update(org_id, str(found.record["id"]), spec)
        await track(self.store, org_id, transport, record)
        return record

    # --- lifecycle reactions -------------------------------------------------------------

    async def on_event(self, event: ServiceAppEvent) -> None:
        """authorized → store the org's tokens (and ensure its data source of every
        configured transport); deauthorized → drop its tokens and stop renewing all its
        data sources."""
        if event.event == "authorized":
            await self.need_tokens().fetch(event.org_id)
            if self.settings.datasource_on_authorize:
                await self._ensure_every_transport(event.org_id)
            return
        if self.renewer is not None:
            await self.renewer.untrack(event.org_id)
        else:
            await self.store.delete_datasources(event.org_id)
        await self.store.delete_org_tokens(event.org_id)
        log.info("org %s deauthorized the Service App; its tokens are deleted", event.org_id)

    async def _ensure_every_transport(self, org_id: str) -> None:
        """Ensure the org's data source of each configured transport; one failing does not
        stop the others, and the first failure is raised so that Webex's retry of the
        delivery tries again (ensuring is idempotent)."""
        failures: list[Exception] = []
        for transport in self.specs:
            try:
                await self.ensure_datasource(org_id, transport)
            except Exception as exc:
                log.warning("ensuring the %s data source of org %s failed", transport, org_id)
                failures.append(exc)
        if failures:
            raise failures[0]

    async def org_allowed(self, org_id: str) -> bool:
        """JWS org allow-list: only orgs whose tokens we hold."""
        return await self.store.has_org(org_id)

    async def start(self) -> None:
        """Start background renewal."""
        if self.renewer is not None:
            self.renewer.start()

    async def close(self) -> None:
        """Finish webhook work, stop renewal, close the store and the HTTP client."""
        await self.receiver.drain()
        if self.renewer is not None:
            await self.renewer.stop()
        await self.store.close()
        if self._own_http:
            await self.http.aclose()
