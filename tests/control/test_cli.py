"""``byova-media control ...`` against the fake Webex: readable output, --json, exit codes."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from control_helpers import ORG
from fake_webex import FakeWebex

from byova_control.cli import add_control_command, load_settings
from byova_control.datasources import token_expiry
from byova_control.runtime import ControlPlane
from byova_control.store import open_store
from byova_control.tokens import OAuthTokens

URL = "https://media.example.com"


@pytest.fixture
async def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeWebex]:
    async with FakeWebex() as server:
        server.authorized_orgs.add(ORG)
        store_url = f"sqlite:///{tmp_path / 'cli.db'}"
        for var, value in {
            "WEBEX_INTEGRATION_CLIENT_ID": server.integration_client[0],
            "WEBEX_INTEGRATION_CLIENT_SECRET": server.integration_client[1],
            "WEBEX_SA_CLIENT_ID": server.sa_client[0],
            "WEBEX_SA_CLIENT_SECRET": server.sa_client[1],
            "BYOVA_MEDIA_CONTROL_API_URL": server.base_url,
            "BYOVA_MEDIA_CONTROL_STORE": store_url,
            "BYOVA_MEDIA_CONTROL_DATASOURCE_URL": URL,
        }.items():
            monkeypatch.setenv(var, value)
        store = open_store(store_url)
        await store.put_integration_tokens(OAuthTokens.from_response(server.issue("integration")))
        await store.close()
        yield server


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="byova-media")
    add_control_command(parser.add_subparsers(dest="command").add_parser)
    args = parser.parse_args(["control", *argv])
    code = await asyncio.to_thread(args.func, args)
    out, err = capsys.readouterr()
    return code, out, err


def as_json(out: str) -> Any:
    return json.loads(out)


async def test_orgs_token_and_datasources(fake: FakeWebex, capsys: Any) -> None:
    code, out, _ = await run(capsys, "orgs")
    assert (code, out) == (0, "(none)\n")
    # Mint the org's tokens the way the webhook would, through the token command's source.
    code, _, err = await run(capsys, "token", ORG)
    assert code == 1
    assert "has not authorized" in err

    plane = ControlPlane(load_settings(None, os.environ))
    await plane.need_tokens().fetch(ORG)
    await plane.close()

    code, out, _ = await run(capsys, "token", ORG)
    assert code == 0
    assert fake.tokens[out.strip()] == {"kind": "org", "org": ORG}
    code, out, _ = await run(capsys, "datasources", "ensure", "--org", ORG, "--json")
    created = as_json(out)
    assert code == 0
    assert created["url"] == URL
    code, out, _ = await run(capsys, "datasources", "renew", "--org", ORG)
    assert code == 0
    assert f"id={created['id']}" in out
    code, out, _ = await run(capsys, "orgs", "--json")
    assert as_json(out)[0]["datasource"] == created["id"]
    code, out, _ = await run(capsys, "datasources", "schemas", "--org", ORG, "--json")
    assert len(as_json(out)) == 3
    code, out, _ = await run(capsys, "datasources", "delete", "--org", ORG, created["id"])
    assert code == 0
    code, out, _ = await run(capsys, "datasources", "list", "--org", ORG, "--json")
    assert as_json(out) == []


async def test_webhooks_commands(fake: FakeWebex, capsys: Any) -> None:
    target = "https://media.example.com/webhooks/webex"
    code, out, _ = await run(capsys, "webhooks", "ensure", "--target-url", target, "--json")
    assert code == 0
    rows = as_json(out)
    assert [r["action"] for r in rows] == ["created", "created"]
    assert all("secret" not in r for r in rows)
    code, out, _ = await run(capsys, "webhooks", "ensure", "--target-url", target, "--json")
    assert [r["action"] for r in as_json(out)] == ["unchanged", "unchanged"]
    code, out, _ = await run(capsys, "webhooks", "list")
    assert out.count("resource=serviceApp") == 2
    code, out, _ = await run(capsys, "webhooks", "delete", rows[0]["id"])
    assert code == 0
    code, _, err = await run(capsys, "webhooks", "delete", "nope")
    assert code == 1
    assert "HTTP 404" in err


async def test_settings_errors_exit_2(
    fake: FakeWebex, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BYOVA_MEDIA_CONTROL_NOT_A_SETTING", "1")
    code, _, err = await run(capsys, "orgs")
    assert code == 2
    assert "unknown setting" in err
    monkeypatch.delenv("BYOVA_MEDIA_CONTROL_NOT_A_SETTING")
    monkeypatch.delenv("WEBEX_SA_CLIENT_SECRET")
    code, _, err = await run(capsys, "token", ORG)
    assert code == 2
    assert "WEBEX_SA_CLIENT_SECRET" in err


async def test_datasources_register_a_websocket_data_source(
    fake: FakeWebex, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    plane = ControlPlane(load_settings(None, os.environ))
    await plane.need_tokens().fetch(ORG)
    await plane.close()
    ws_url = "wss://media.example.com"
    monkeypatch.setenv("BYOVA_MEDIA_CONTROL_WS_DATASOURCE_URL", ws_url)
    code, out, err = await run(
        capsys, "datasources", "ensure", "--org", ORG, "--transport", "ws", "--json"
    )
    assert code == 0, err
    created = as_json(out)
    assert (created["url"], created["schemaId"]) == (ws_url, "a38a10b7-43e4-4676-a076-a7d6dce9387d")
    assert created["created"] is True
    code, out, _ = await run(capsys, "datasources", "ensure", "--org", ORG, "--json")
    grpc_source = as_json(out)  # the gRPC data source is a second, separate one
    assert grpc_source["url"] == URL and grpc_source["id"] != created["id"]
    code, out, _ = await run(
        capsys, "datasources", "renew", "--org", ORG, "--transport", "ws", "--json"
    )
    assert code == 0 and as_json(out)["id"] == created["id"]
    code, _, err = await run(
        capsys, "datasources", "ensure", "--org", ORG, "--transport", "ws", "--url", URL
    )
    assert code != 0 and "wss://" in err


async def test_websocket_data_sources_are_tracked_for_the_renewer(
    fake: FakeWebex, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws_url = "wss://media.example.com"
    monkeypatch.setenv("BYOVA_MEDIA_CONTROL_WS_DATASOURCE_URL", ws_url)
    plane = ControlPlane(load_settings(None, os.environ))
    await plane.need_tokens().fetch(ORG)
    # Registered by the previous version's `ensure --transport ws`, which did not track it;
    # its JWS expires sooner than a renewed one will.
    fake.datasource_expiry_s = 600
    old = await plane.need_datasources().create(ORG, plane.spec_for("ws"))
    fake.datasource_expiry_s = None
    await plane.close()
    store = open_store(os.environ["BYOVA_MEDIA_CONTROL_STORE"])
    try:
        assert await store.list_datasources() == []
        # A manual renew finds it and tracks it: the renewer keeps it fresh from now on.
        code, out, err = await run(
            capsys, "datasources", "renew", "--org", ORG, "--transport", "ws", "--json"
        )
        assert code == 0, err
        assert as_json(out)["id"] == old["id"]
        assert fake.datasources[old["id"]]["nonce"] != old["nonce"]
        assert await store.list_datasources() == [(ORG, "ws")]
        tracked = await store.get_datasource(ORG, "ws")
        assert tracked is not None
        assert tracked["expires_at"] == token_expiry(fake.datasources[old["id"]])
        code, out, _ = await run(capsys, "orgs", "--json")
        (row,) = as_json(out)
        assert (row["datasource"], row["ws_datasource"]) == (None, old["id"])
        # Deleting it untracks it; ensure registers a new one and tracks that.
        code, _, _ = await run(capsys, "datasources", "delete", "--org", ORG, old["id"])
        assert code == 0
        assert await store.list_datasources() == []
        code, out, err = await run(
            capsys, "datasources", "ensure", "--org", ORG, "--transport", "ws", "--json"
        )
        assert code == 0, err
        created = as_json(out)
        assert created["created"] is True
        tracked = await store.get_datasource(ORG, "ws")
        assert tracked is not None
        assert (tracked["id"], tracked["url"]) == (created["id"], ws_url)
        assert await store.get_datasource(ORG, "grpc") is None
    finally:
        await store.close()
