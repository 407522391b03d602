"""``byova-media control``: login, orgs, token, webhooks and datasources from the shell.

Every command reads the same settings as the server (``BYOVA_MEDIA_CONTROL_*``, ``WEBEX_*``
and the ``[plugin.control]`` table of ``--config``), prints readable lines, or JSON with
``--json``, and returns 0 on success, 1 on a Webex/store error, 2 on a settings error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import webbrowser
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from byova_control.datasources import AmbiguousDataSourceError
from byova_control.oauth import OAuthError, wait_for_redirect
from byova_control.rest import WebexApiError
from byova_control.runtime import ControlPlane
from byova_control.service_app import OrgNotAuthorizedError, decode_org_id
from byova_control.settings import ControlSettings, ControlSettingsError
from byova_control.store import TRANSPORTS, StoreError, Transport
from byova_media.config import Config, ConfigError
from byova_media.hookspecs import AddCommand

__all__ = ["add_control_command", "load_settings"]

_ENV_PREFIX = "BYOVA_MEDIA_CONTROL_"
Handler = Callable[[ControlPlane, argparse.Namespace], Awaitable[Any]]


def load_settings(config_file: Path | None, environ: Mapping[str, str]) -> ControlSettings:
    """The control settings from a config file's ``[plugin.control]`` and the environment."""
    own_env = {k: v for k, v in environ.items() if k.startswith(_ENV_PREFIX)}
    config = Config.load(file=config_file, env=own_env, plugin_names=["control"])
    return ControlSettings.load(config.plugin_settings("control"), environ)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def _print(result: Any, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        json.dump(result, out, indent=2, sort_keys=True, default=str)
        out.write("\n")
        return
    if isinstance(result, list):
        for row in result:
            out.write(_line(row) + "\n")
        if not result:
            out.write("(none)\n")
    elif isinstance(result, dict):
        out.write(_line(result) + "\n")
    else:
        out.write(f"{result}\n")


def _line(row: Any) -> str:
    if not isinstance(row, dict):
        return str(row)
    return "  ".join(f"{k}={v}" for k, v in row.items() if v not in (None, "", [], {}))


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """Wrap an async handler as the sync ``func(args) -> int`` the core calls."""

    def func(args: argparse.Namespace) -> int:
        try:
            settings = load_settings(getattr(args, "config", None), os.environ)
        except (ConfigError, ControlSettingsError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return asyncio.run(_main(handler, settings, args))

    return func


async def _main(handler: Handler, settings: ControlSettings, args: argparse.Namespace) -> int:
    try:
        plane = ControlPlane(settings)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = await handler(plane, args)
    except ControlSettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (
        WebexApiError,
        OAuthError,
        StoreError,
        OrgNotAuthorizedError,
        AmbiguousDataSourceError,
        LookupError,
        ValueError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await plane.close()
    _print(result, args, sys.stdout)
    return 0


# --- handlers --------------------------------------------------------------------------


async def _login(plane: ControlPlane, args: argparse.Namespace) -> Any:
    oauth = plane.need_oauth()
    request = oauth.authorization_request(pkce=not args.no_pkce)
    print(f"Open this URL to authorize the Integration:\n\n  {request.url}\n", file=sys.stderr)
    if not args.no_browser:
        webbrowser.open(request.url)
    code = await wait_for_redirect(request, redirect_uri=oauth.redirect_uri, timeout_s=args.timeout)
    tokens = await oauth.exchange_code(code, code_verifier=request.code_verifier)
    await plane.store.put_integration_tokens(tokens)
    return {"stored": "integration token", "expires": _when(tokens.expires_at)}


async def _orgs(plane: ControlPlane, args: argparse.Namespace) -> Any:
    rows = []
    for org in await plane.store.list_orgs():
        tokens = await plane.store.get_org_tokens(org)
        row: dict[str, Any] = {
            "org": org,
            "token_expires": _when(tokens.expires_at if tokens else None),
        }
        columns: tuple[tuple[Transport, str], ...] = (
            ("grpc", "datasource"),
            ("ws", "ws_datasource"),
        )
        for transport, prefix in columns:
            ds = await plane.store.get_datasource(org, transport)
            row[prefix] = ds.get("id") if ds else None
            row[f"{prefix}_expires"] = _when(ds.get("expires_at") if ds else None)
        rows.append(row)
    return rows


async def _token(plane: ControlPlane, args: argparse.Namespace) -> Any:
    tokens = plane.need_tokens()
    access = await tokens.access_token(args.org)
    if not args.json:
        return access
    stored = await plane.store.get_org_tokens(decode_org_id(args.org))
    return {
        "org": decode_org_id(args.org),
        "access_token": access,
        "expires": _when(stored.expires_at if stored else None),
    }


def _webhook_row(w: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "name", "resource", "event", "targetUrl", "filter", "status")
    return {k: w.get(k) for k in keep}


async def _webhooks_ensure(plane: ControlPlane, args: argparse.Namespace) -> Any:
    webhooks = plane.need_webhooks()
    secret = await plane.registration_secret()
    done = await webhooks.ensure(args.target_url, secret=secret, filter=args.filter)
    return [_webhook_row(d.webhook) | {"action": d.action} for d in done]


async def _webhooks_list(plane: ControlPlane, args: argparse.Namespace) -> Any:
    return [_webhook_row(w) for w in await plane.need_webhooks().list_all()]


async def _webhooks_delete(plane: ControlPlane, args: argparse.Namespace) -> Any:
    await plane.need_webhooks().delete(args.id)
    return {"deleted": args.id}


def _ds_row(r: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "url", "schemaId", "audience", "subject", "status", "tokenExpiryTime")
    return {k: r.get(k) for k in keep}


async def _ds_schemas(plane: ControlPlane, args: argparse.Namespace) -> Any:
    schemas = await plane.need_datasources().schemas(args.org)
    return [{k: s.get(k) for k in ("id", "serviceName", "description")} for s in schemas]


async def _ds_list(plane: ControlPlane, args: argparse.Namespace) -> Any:
    return [_ds_row(r) for r in await plane.need_datasources().list_all(args.org)]


async def _ds_ensure(plane: ControlPlane, args: argparse.Namespace) -> Any:
    # Tracked per transport: the server's renewer keeps both gRPC and WebSocket fresh.
    result = await plane.ensure_datasource(args.org, args.transport, args.url)
    return _ds_row(result.record) | {"created": result.created}


async def _ds_renew(plane: ControlPlane, args: argparse.Namespace) -> Any:
    if args.transport == "ws":
        # Finds the registered one even if it was never tracked, and tracks it from now on.
        return _ds_row(await plane.renew_found(args.org, "ws", args.url))
    if plane.renewer is None:
        plane.settings.require("datasource_url")
    assert plane.renewer is not None
    return _ds_row(await plane.renewer.renew(args.org, "grpc"))


async def _ds_delete(plane: ControlPlane, args: argparse.Namespace) -> Any:
    await plane.need_datasources().delete(args.org, args.id)
    org = decode_org_id(args.org)
    for transport in TRANSPORTS:
        tracked = await plane.store.get_datasource(org, transport)
        if tracked is not None and tracked.get("id") == args.id:
            await plane.store.delete_datasource(org, transport)
    return {"deleted": args.id}


# --- parser ----------------------------------------------------------------------------


def add_control_command(add_command: AddCommand) -> None:
    """Register ``control`` and its sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON")
    org = argparse.ArgumentParser(add_help=False)
    org.add_argument("--org", required=True, help="customer org id (UUID or base64 id)")

    control = add_command("control", help="Webex control plane: OAuth, tokens, BYODS")
    sub = control.add_subparsers(dest="control_command", required=True, metavar="COMMAND")

    p = sub.add_parser("login", parents=[common], help="authorize the Integration (browser)")
    p.add_argument("--no-browser", action="store_true", help="only print the URL")
    p.add_argument("--no-pkce", action="store_true", help="omit the PKCE challenge")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (300)")
    p.set_defaults(func=_run(_login))

    p = sub.add_parser("orgs", parents=[common], help="orgs whose tokens are stored")
    p.set_defaults(func=_run(_orgs))

    p = sub.add_parser("token", parents=[common], help="print a valid access token for ORG")
    p.add_argument("org", help="customer org id")
    p.set_defaults(func=_run(_token))

    wh = sub.add_parser("webhooks", help="serviceApp webhooks").add_subparsers(
        dest="webhooks_command", required=True, metavar="COMMAND"
    )
    p = wh.add_parser("ensure", parents=[common], help="register authorized/deauthorized")
    p.add_argument("--target-url", required=True, help="public URL of /webhooks/webex")
    p.add_argument("--filter", help="e.g. id=<service app id> or friendlyName=<name>")
    p.set_defaults(func=_run(_webhooks_ensure))
    p = wh.add_parser("list", parents=[common], help="list webhooks")
    p.set_defaults(func=_run(_webhooks_list))
    p = wh.add_parser("delete", parents=[common], help="delete a webhook")
    p.add_argument("id")
    p.set_defaults(func=_run(_webhooks_delete))

    _add_datasources_commands(sub, common, org)


def _add_datasources_commands(
    sub: argparse._SubParsersAction[Any],
    common: argparse.ArgumentParser,
    org: argparse.ArgumentParser,
) -> None:
    """``control datasources ...``; ensure and renew take ``--transport grpc|ws``."""
    ds = sub.add_parser("datasources", help="BYODS data sources").add_subparsers(
        dest="datasources_command", required=True, metavar="COMMAND"
    )
    p = ds.add_parser("schemas", parents=[common, org], help="list schemas")
    p.set_defaults(func=_run(_ds_schemas))
    p = ds.add_parser("list", parents=[common, org], help="list the org's data sources")
    p.set_defaults(func=_run(_ds_list))
    transport = argparse.ArgumentParser(add_help=False)
    transport.add_argument(
        "--transport",
        choices=["grpc", "ws"],
        default="grpc",
        help="gRPC data source (https:// URL) or WebSocket (wss:// URL, schema a38a10b7-…)",
    )
    p = ds.add_parser(
        "ensure", parents=[common, org, transport], help="find or create the data source"
    )
    p.add_argument(
        "--url", help="data-source URL (default: datasource_url or ws_datasource_url setting)"
    )
    p.set_defaults(func=_run(_ds_ensure))
    p = ds.add_parser(
        "renew", parents=[common, org, transport], help="renew its JWS now (fresh nonce)"
    )
    p.add_argument("--url", help="WebSocket data-source URL (default: ws_datasource_url)")
    p.set_defaults(func=_run(_ds_renew))
    p = ds.add_parser("delete", parents=[common, org], help="delete a data source")
    p.add_argument("id")
    p.set_defaults(func=_run(_ds_delete))
