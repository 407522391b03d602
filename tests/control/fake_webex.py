"""A fake Webex REST API on 127.0.0.1 (aiohttp) for the control-plane tests.

It implements the endpoints the plugin calls with realistic bodies: OAuth authorize and
token, Service App token minting, webhooks and DataSources (with ``Link`` pagination),
plus fault injection (429 storms with ``Retry-After``, 5xx) and a request log.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

__all__ = ["FakeWebex", "Fault"]


@dataclass
class Fault:
    """Answer the next ``count`` matching requests with ``status`` (and headers)."""

    method: str
    path_prefix: str
    status: int
    count: int
    headers: dict[str, str] = field(default_factory=dict)


def _webex_id(kind: str, raw: str) -> str:
    return base64.urlsafe_b64encode(f"ciscospark://us/{kind}/{raw}".encode()).rstrip(b"=").decode()


class FakeWebex:
    """Fake ``https://webexapis.com/v1`` bound to a free port on 127.0.0.1."""

    def __init__(
        self,
        *,
        integration_client: tuple[str, str] = ("Cint0000", "int-secret"),
        sa_client: tuple[str, str] = ("Csa0000", "sa-secret"),
        access_lifetime_s: int = 3600,
        page_size: int = 2,
    ) -> None:
        self.integration_client = integration_client
        self.sa_client = sa_client
        self.access_lifetime_s = access_lifetime_s
        self.page_size = page_size
        #: Orgs whose admin authorized the Service App (``applications/.../token`` works).
        self.authorized_orgs: set[str] = set()
        #: Makes the DataSource JWS: ``jws_factory(record, org_id) -> compact JWS``.
        self.jws_factory: Callable[[dict[str, Any], str], str] | None = None
        self.datasource_expiry_s: float | None = None
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.forms: list[dict[str, str]] = []
        self.tokens: dict[str, dict[str, Any]] = {}  # access token -> {"kind", "org"}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, str]] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}  # id -> record (with "_org")
        self.send_refresh_token_on_refresh = True
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p == path)

    def issue(self, kind: str, org: str | None = None) -> dict[str, Any]:
        """Mint a token pair (also used by tests to seed an Integration token)."""
        access = f"acc-{kind}-{secrets.token_hex(8)}"
        refresh = f"ref-{kind}-{secrets.token_hex(8)}"
        self.tokens[access] = {"kind": kind, "org": org}
        self.refresh_tokens[refresh] = {"kind": kind, "org": org}
        return {
            "access_token": access,
            "expires_in": self.access_lifetime_s,
            "refresh_token": refresh,
            "refresh_token_expires_in": 7776000,
            "token_type": "Bearer",
        }

    # --- server ---------------------------------------------------------------------------

    async def start(self) -> FakeWebex:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/v1/authorize", self._authorize)
        r.add_post("/v1/access_token", self._access_token)
        r.add_post("/v1/applications/{app_id}/token", self._app_token)
        r.add_get("/v1/webhooks", self._webhooks_list)
        r.add_post("/v1/webhooks", self._webhooks_create)
        r.add_get("/v1/webhooks/{id}", self._webhooks_get)
        r.add_put("/v1/webhooks/{id}", self._webhooks_update)
        r.add_delete("/v1/webhooks/{id}", self._webhooks_delete)
        r.add_get("/v1/dataSources/schemas", self._schemas)
        r.add_get("/v1/dataSources", self._ds_list)
        r.add_get("/v1/dataSources/", self._ds_list)
        r.add_post("/v1/dataSources", self._ds_create)
        r.add_get("/v1/dataSources/{id}", self._ds_get)
        r.add_put("/v1/dataSources/{id}", self._ds_update)
        r.add_delete("/v1/dataSources/{id}", self._ds_delete)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeWebex:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        tracking = f"FAKE_{uuid.uuid4()}"
        for fault in self.faults:
            if (
                fault.count > 0
                and fault.method == request.method
                and request.path.startswith(fault.path_prefix)
            ):
                fault.count -= 1
                return web.json_response(
                    {"message": "injected fault", "trackingId": tracking},
                    status=fault.status,
                    headers={"trackingid": tracking, **fault.headers},
                )
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers["trackingid"] = tracking
            raise
        response.headers["trackingid"] = tracking
        return response

    def _caller(self, request: web.Request) -> dict[str, Any]:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            raise web.HTTPUnauthorized(
                text='{"message": "The request requires a valid access token."}',
                content_type="application/json",
            )
        return self.tokens[auth[7:]]

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        size = min(int(request.query.get("max", self.page_size)), self.page_size)
        start = int(request.query.get("cursor", 0))
        page = items[start : start + size]
        headers = {}
        if start + size < len(items):
            query = urlencode({"max": size, "cursor": start + size})
            headers["Link"] = f'<{self.base_url}{request.path[3:]}?{query}>; rel="next"'
        return web.json_response({"items": page}, headers=headers)

    # --- OAuth ------------------------------------------------------------------------

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != self.integration_client[0]:
            return web.json_response({"message": "unknown client"}, status=400)
        code = secrets.token_hex(8)
        self.codes[code] = {
            "redirect_uri": q["redirect_uri"],
            "challenge": q.get("code_challenge", ""),
        }
        target = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}"
        raise web.HTTPFound(target)

    async def _access_token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.forms.append({k: str(v) for k, v in form.items()})
        client = (form.get("client_id"), form.get("client_secret"))
        if client not in (self.integration_client, self.sa_client):
            return web.json_response({"message": "invalid client"}, status=401)
        if form.get("grant_type") == "authorization_code":
            grant = self.codes.pop(str(form.get("code")), None)
            if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                return web.json_response({"message": "invalid code"}, status=400)
            return web.json_response(self.issue("integration"))
        if form.get("grant_type") == "refresh_token":
            owner = self.refresh_tokens.get(str(form.get("refresh_token")))
            if owner is None:
                return web.json_response({"message": "invalid refresh token"}, status=400)
            body = self.issue(owner["kind"], owner["org"])
            if not self.send_refresh_token_on_refresh:
                body.pop("refresh_token")
            return web.json_response(body)
        return web.json_response({"message": "unsupported grant"}, status=400)

    async def _app_token(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if caller["kind"] != "integration":
            return web.json_response({"message": "needs an Integration token"}, status=403)
        if request.match_info["app_id"] != _webex_id("APPLICATION", self.sa_client[0]):
            return web.json_response({"message": "unknown application"}, status=404)
        body = await request.json()
        if (body.get("clientId"), body.get("clientSecret")) != self.sa_client:
            return web.json_response({"message": "bad Service App credentials"}, status=401)
        org = body.get("targetOrgId")
        if org not in self.authorized_orgs:
            return web.json_response({"message": "Service App not authorized"}, status=403)
        return web.json_response(self.issue("org", org))

    # --- webhooks ---------------------------------------------------------------------

    async def _webhooks_list(self, request: web.Request) -> web.Response:
        self._caller(request)
        return self._page(request, list(self.webhooks.values()))

    async def _webhooks_create(self, request: web.Request) -> web.Response:
        self._caller(request)
        body = await request.json()
        wid = _webex_id("WEBHOOK", str(uuid.uuid4()))
        record = {
            "id": wid,
            "status": "active",
            "created": datetime.now(UTC).isoformat(),
            **{k: body[k] for k in ("name", "targetUrl", "resource", "event")},
        }
        for optional in ("filter", "secret"):
            if body.get(optional):
                record[optional] = body[optional]
        self.webhooks[wid] = record
        return web.json_response(record)

    async def _webhooks_get(self, request: web.Request) -> web.Response:
        self._caller(request)
        record = self.webhooks.get(request.match_info["id"])
        if record is None:
            raise web.HTTPNotFound()
        return web.json_response(record)

    async def _webhooks_update(self, request: web.Request) -> web.Response:
        self._caller(request)
        record = self.webhooks.get(request.match_info["id"])
        if record is None:
            raise web.HTTPNotFound()
        record.update(await request.json())
        return web.json_response(record)

    async def _webhooks_delete(self, request: web.Request) -> web.Response:
        self._caller(request)
        if self.webhooks.pop(request.match_info["id"], None) is None:
            raise web.HTTPNotFound()
        return web.Response(status=204)

    # --- data sources -------------------------------------------------------------------

    def _org_caller(self, request: web.Request) -> str:
        caller = self._caller(request)
        if caller["kind"] != "org":
            raise web.HTTPForbidden(text='{"message": "needs a Service App token"}')
        return str(caller["org"])

    def _public(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not k.startswith("_")}

    def _sign(self, record: dict[str, Any], org: str) -> None:
        lifetime = self.datasource_expiry_s or record["tokenLifetimeMinutes"] * 60
        expires = time.time() + lifetime
        record["tokenExpiryTime"] = datetime.fromtimestamp(expires, UTC).isoformat()
        record["jwsToken"] = self.jws_factory(record, org) if self.jws_factory else "unsigned"
        record["updatedDate"] = datetime.now(UTC).isoformat()

    async def _schemas(self, request: web.Request) -> web.Response:
        self._caller(request)
        items = [
            {
                "id": "5397013b-7920-4ffc-807c-e8a3e0a18f43",
                "serviceName": "Voice Virtual Agent Service",
                "description": "BYOVA gRPC",
            },
            {
                "id": "523e1b7f-4693-47bc-b84e-a7b7a505fb0b",
                "serviceName": "Media Forking",
                "description": "media forking",
            },
            {
                "id": "a38a10b7-43e4-4676-a076-a7d6dce9387d",
                "serviceName": "Voice Virtual Agent WebSocket",
                "description": "BYOVA WebSocket",
            },
        ]
        return self._page(request, items)

    async def _ds_list(self, request: web.Request) -> web.Response:
        org = self._org_caller(request)
        mine = [self._public(r) for r in self.datasources.values() if r["_org"] == org]
        return self._page(request, mine)

    async def _ds_create(self, request: web.Request) -> web.Response:
        org = self._org_caller(request)
        body = await request.json()
        if not 1 <= int(body.get("tokenLifetimeMinutes", 0)) <= 1440:
            return web.json_response({"message": "tokenLifetimeMinutes"}, status=400)
        record = {
            "id": str(uuid.uuid4()),
            "orgId": org,
            "applicationId": self.sa_client[0],
            "status": "active",
            "createdDate": datetime.now(UTC).isoformat(),
            "_org": org,
            **body,
        }
        self._sign(record, org)
        self.datasources[record["id"]] = record
        return web.json_response(self._public(record))

    def _own(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        org = self._org_caller(request)
        record = self.datasources.get(request.match_info["id"])
        if record is None or record["_org"] != org:
            raise web.HTTPNotFound(text='{"message": "no such data source"}')
        return org, record

    async def _ds_get(self, request: web.Request) -> web.Response:
        _, record = self._own(request)
        return web.json_response(self._public(record))

    async def _ds_update(self, request: web.Request) -> web.Response:
        org, record = self._own(request)
        body = await request.json()
        if not body.get("nonce"):
            return web.json_response({"message": "nonce is required"}, status=400)
        record.update(body)
        self._sign(record, org)
        return web.json_response(self._public(record))

    async def _ds_delete(self, request: web.Request) -> web.Response:
        self._own(request)
        del self.datasources[request.match_info["id"]]
        return web.Response(status=204)
