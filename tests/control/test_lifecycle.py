"""The whole lifecycle against a fake Webex and a fake identity broker, over real sockets.

Signed serviceApp webhook → org tokens stored → DataSource ensured → the fake signs a JWS
for that data source → a gRPC call carrying it passes the plugin's interceptor; a tampered
one, or one after the org deauthorized, does not; tokens survive a restart.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from aiohttp import web
from fake_idbroker import DATASOURCE_URL, FakeIdBroker
from fake_webex import FakeWebex

import byova_control
from byova_control.runtime import ControlPlane
from byova_control.tokens import OAuthTokens
from byova_control.webhooks import WEBHOOK_PATH, sign
from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media._proto import voicevirtualagent_pb2_grpc as pb_grpc
from byova_media.app import App
from byova_media.config import Config
from byova_media.plugins import PluginHost

ORG = "9a1b2c3d-0000-4000-8000-00000000abcd"
SECRET = "lifecycle-webhook-secret"


class Agents(pb_grpc.VoiceVirtualAgentServicer):
    """A trivial servicer: answers ListVirtualAgents with one agent."""

    async def ListVirtualAgents(self, request: Any, context: Any) -> Any:
        return pb.ListVAResponse(virtual_agents=[pb.VirtualAgentInfo(virtual_agent_id="bot")])


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeWebex, FakeIdBroker]]:
    async with FakeWebex() as webex, FakeIdBroker() as idb:
        webex.authorized_orgs.add(ORG)

        def jws_for(record: dict[str, Any], org: str) -> str:
            claims = idb.claims(
                url=record["url"],
                aud=record["audience"],
                sub=record["subject"],
                jti=record["nonce"],
                org=org,
            )
            return idb.mint(claims)

        webex.jws_factory = jws_for
        yield webex, idb


def build_app(webex: FakeWebex, idb: FakeIdBroker, store: str, monkeypatch: Any) -> App:
    monkeypatch.setenv("WEBEX_INTEGRATION_CLIENT_ID", webex.integration_client[0])
    monkeypatch.setenv("WEBEX_INTEGRATION_CLIENT_SECRET", webex.integration_client[1])
    monkeypatch.setenv("WEBEX_SA_CLIENT_ID", webex.sa_client[0])
    monkeypatch.setenv("WEBEX_SA_CLIENT_SECRET", webex.sa_client[1])
    env = {
        "BYOVA_MEDIA_CONTROL_API_URL": webex.base_url,
        "BYOVA_MEDIA_CONTROL_JWS_ISSUERS": idb.issuer(),
        "BYOVA_MEDIA_CONTROL_DATASOURCE_URL": DATASOURCE_URL,
        "BYOVA_MEDIA_CONTROL_WEBHOOK_SECRET": SECRET,
        "BYOVA_MEDIA_CONTROL_STORE": store,
        "BYOVA_MEDIA_CONTROL_JWS_ORG_ALLOWLIST": "true",
    }
    config = Config.load(env=env, plugin_names=["control"])
    app = App(config=config, plugins=PluginHost.create(discover=False))
    byova_control.byova_configure(app)
    plane = app.state["control"]
    assert isinstance(plane, ControlPlane)
    plane.client.jitter_s = 0.01
    return app


async def serve_http(app: App) -> tuple[web.AppRunner, str]:
    http = web.Application()
    http.add_routes(byova_control.byova_http_routes(app) or [])
    runner = web.AppRunner(http, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def serve_grpc(app: App) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=list(byova_control.byova_grpc_interceptors(app) or []))
    pb_grpc.add_VoiceVirtualAgentServicer_to_server(Agents(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def call(target: str, token: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.VoiceVirtualAgentStub(channel)
        try:
            reply = await stub.ListVirtualAgents(
                pb.ListVARequest(customer_org_id=ORG), metadata=(("authorization", token),)
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        assert reply.virtual_agents[0].virtual_agent_id == "bot"
        return grpc.StatusCode.OK


async def deliver(base: str, event: str) -> int:
    body = json.dumps(
        {
            "id": "d2ViaG9vaw",
            "resource": "serviceApp",
            "event": event,
            "created": f"2026-01-01T00:00:0{len(event)}Z",
            "orgId": "ZGV2ZWxvcGVy",
            "data": {"orgId": ORG},
        }
    ).encode()
    headers = {"X-Spark-Signature": sign(SECRET, body), "Content-Type": "application/json"}
    async with httpx.AsyncClient() as client:
        return (await client.post(base + WEBHOOK_PATH, content=body, headers=headers)).status_code


async def test_webhook_to_tokens_to_datasource_to_verified_rpc(
    fakes: tuple[FakeWebex, FakeIdBroker], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    webex, idb = fakes
    store = f"sqlite:///{tmp_path / 'control.db'}"
    app = build_app(webex, idb, store, monkeypatch)
    plane: ControlPlane = app.state["control"]
    await plane.store.put_integration_tokens(OAuthTokens.from_response(webex.issue("integration")))
    await byova_control.byova_server_start(app)
    runner, base = await serve_http(app)
    grpc_server, target = await serve_grpc(app)
    try:
        assert await deliver(base, "authorized") == 202
        await plane.receiver.drain(10)
        assert await plane.store.has_org(ORG)
        tracked = await plane.store.get_datasource(ORG, "grpc")
        assert tracked is not None
        record = webex.datasources[tracked["id"]]
        assert record["url"] == DATASOURCE_URL
        token = record["jwsToken"]

        assert await call(target, token) == grpc.StatusCode.OK
        assert await call(target, f"Bearer {token}") == grpc.StatusCode.OK
        head, payload, signature = token.split(".")
        tampered = (
            f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
        )
        assert await call(target, tampered) == grpc.StatusCode.UNAUTHENTICATED
        assert await call(target, "") == grpc.StatusCode.UNAUTHENTICATED

        # A renewal signs a new JWS for a fresh nonce; it is accepted too.
        assert plane.renewer is not None
        renewed = await plane.renewer.renew(ORG)
        assert renewed["jwsToken"] != token
        assert await call(target, renewed["jwsToken"]) == grpc.StatusCode.OK
    finally:
        await grpc_server.stop(None)
        await runner.cleanup()
        await byova_control.byova_server_stop(app)

    # Restart: a new server on the same store still holds the org's tokens.
    app = build_app(webex, idb, store, monkeypatch)
    plane = app.state["control"]
    runner, base = await serve_http(app)
    grpc_server, target = await serve_grpc(app)
    try:
        assert await plane.store.has_org(ORG)
        assert await plane.need_tokens().access_token(ORG)
        assert await call(target, renewed["jwsToken"]) == grpc.StatusCode.OK
        # Deauthorization drops the org: its tokens go and its JWS is no longer accepted.
        assert await deliver(base, "deauthorized") == 202
        await plane.receiver.drain(10)
        assert not await plane.store.has_org(ORG)
        assert await plane.store.get_datasource(ORG, "grpc") is None
        assert await call(target, renewed["jwsToken"]) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await grpc_server.stop(None)
        await runner.cleanup()
        await byova_control.byova_server_stop(app)


def test_idle_without_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WEBEX_INTEGRATION_CLIENT_ID", "WEBEX_SA_CLIENT_ID"):
        monkeypatch.delenv(var, raising=False)
    app = App(config=Config.load(env={}), plugins=PluginHost.create(discover=False))
    byova_control.byova_configure(app)
    assert app.state["control"] is None
    assert byova_control.byova_grpc_interceptors(app) is None
    assert byova_control.byova_http_routes(app) is None
