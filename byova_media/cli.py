"""The ``byova-media`` command: serve, plugins, call, and the commands plugins add."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from byova_media import __version__
from byova_media.config import Config, ConfigError
from byova_media.loadtest.command import add_loadtest_parser
from byova_media.logs import setup_logging
from byova_media.plugins import PluginError, PluginHost
from byova_media.scaffold import add_parser as add_new_plugin_parser

__all__ = ["main"]


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the BYOVA gRPC server")
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="plugin to load: entry-point name, module or module:attr (repeatable)",
    )
    p.add_argument(
        "--disable-plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="plugin not to load (repeatable)",
    )
    p.add_argument("--config", type=Path, help="TOML config file")
    p.add_argument("--host")
    p.add_argument("--port", type=int, help="gRPC port (0 picks a free one)")
    p.add_argument("--http-port", type=int, help="HTTP port for health, metrics, webhooks")
    p.add_argument("--ws-port", type=int, help="BYOVA over WebSocket port (0 picks a free one)")
    p.add_argument("--reply-mode", choices=["chunk", "wav"])
    p.add_argument(
        "--turn-detector", metavar="NAME", help="end-of-turn model, e.g. smartturn (default: none)"
    )
    p.add_argument(
        "--turn-detector-silence-ms",
        type=int,
        metavar="MS",
        help="silence after which the end-of-turn model is asked (default: 200)",
    )
    p.add_argument("--tls-cert-file", type=Path)
    p.add_argument("--tls-key-file", type=Path)
    p.add_argument("--tls-client-ca-file", type=Path, help="require client certificates (mTLS)")
    p.add_argument("--cluster-redis-url", help="Redis URL: run as one instance of a cluster")
    p.add_argument("--advertise-address", metavar="HOST:PORT", help="where peers reach this one")
    p.add_argument(
        "--cluster-peer-port",
        type=int,
        metavar="PORT",
        help="port peers forward RPCs to (default: any free port, published in Redis)",
    )
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--log-format", choices=["text", "json"])
    p.add_argument(
        "--inspector",
        action="store_true",
        default=None,
        help="record the last calls and serve them on /calls of the HTTP port",
    )
    p.add_argument(
        "--playground",
        action="store_true",
        default=None,
        help="serve the browser playground on /playground (implies --inspector; loopback only)",
    )
    p.set_defaults(func=_serve)


def _load_config(args: argparse.Namespace) -> Config:
    names = {ep_name for ep_name in _entry_point_names()} | set(args.plugin)
    overrides: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "http_port": args.http_port,
        "ws_port": args.ws_port,
        "reply_mode": args.reply_mode,
        "turn_detector": args.turn_detector,
        "turn_detector_silence_ms": args.turn_detector_silence_ms,
        "tls_cert_file": args.tls_cert_file,
        "tls_key_file": args.tls_key_file,
        "tls_client_ca_file": args.tls_client_ca_file,
        "cluster_redis_url": args.cluster_redis_url,
        "advertise_address": args.advertise_address,
        "cluster_peer_port": args.cluster_peer_port,
        "log_level": args.log_level,
        "log_format": args.log_format,
        "inspector": args.inspector,
        "playground": args.playground,
    }
    config = Config.load(file=args.config, env=os.environ, overrides=overrides, plugin_names=names)
    plugins = tuple(dict.fromkeys((*config.plugins, *args.plugin)))
    disabled = tuple(dict.fromkeys((*config.disable_plugins, *args.disable_plugin)))
    return config.model_copy(update={"plugins": plugins, "disable_plugins": disabled})


def _entry_point_names() -> list[str]:
    from importlib import metadata

    from byova_media import PROJECT_NAME

    return [ep.name for ep in metadata.entry_points(group=PROJECT_NAME)]


def _serve(args: argparse.Namespace) -> int:
    from byova_media.server import Server

    config = _load_config(args)
    setup_logging(config.log_level, config.log_format)
    plugins = PluginHost.create(config.plugins, config.disable_plugins)
    server = Server(config, plugins)
    try:
        import uvloop
    except ImportError:  # not available on every platform; asyncio's loop works too
        asyncio.run(server.run())
    else:
        uvloop.run(server.run())
    return 0


def _plugins(args: argparse.Namespace) -> int:
    host = PluginHost.create(args.plugin, discover=True)
    rows: list[dict[str, Any]] = [
        {
            "name": i.name,
            "source": i.source,
            "version": i.version,
            "requires": i.requires,
            "hooks": list(i.hooks),
        }
        for i in host.infos
    ]
    if args.json:
        print(json.dumps({"loaded": rows, "failed": host.failures}, indent=2))
        return 0
    for row in rows:
        requires = f"  requires byova-media {row['requires']}" if row["requires"] else ""
        print(f"{row['name']:<14} {row['version'] or '-':<10} {row['source']}{requires}")
        print(f"{'':<14} hooks: {', '.join(row['hooks']) or '-'}")
    for name, error in host.failures.items():
        print(f"{name:<14} FAILED     {error}")
    return 0


def _call(args: argparse.Namespace) -> int:
    from byova_media.inspector.simulated import write_timeline
    from byova_media.testing.simulators import simulator_for, target_for

    target = target_for(args.target, args.transport)

    if args.timeline and args.timeline.suffix not in (".html", ".svg"):
        raise ConfigError(f"--timeline must name a .html or .svg file, not {args.timeline.name!r}")

    async def place() -> int:
        async with simulator_for(target, realtime=not args.fast, token=args.token) as sim:
            call = sim.call(args.agent)
            steps = [await call.start()]
            if args.wav:
                steps.append(await call.say(args.wav.read_bytes()))
            if args.dtmf:
                steps.append(await call.dtmf(args.dtmf))
            steps.append(await call.hang_up())
            print(call.timeline())
            if args.report:
                print(call.report())
            if args.timeline:
                write_timeline(call, args.timeline)
                print(f"wrote {args.timeline}")
            if args.save_prompts:
                for path in call.save_prompts(args.save_prompts):
                    print(f"saved {path}")
            return 0 if all(s.code.name == "OK" for s in steps) else 1

    return asyncio.run(place())


def build_parser(host: PluginHost) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="byova-media", description=__doc__)
    parser.add_argument("--version", action="version", version=f"byova-media {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    p = sub.add_parser("plugins", help="list plugins, their source, version and hooks")
    p.add_argument("--plugin", action="append", default=[], metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_plugins)
    p = sub.add_parser("call", help="place a simulated Webex call and print its timeline")
    p.add_argument("target", help="HOST:PORT of the BYOVA server")
    p.add_argument(
        "--transport",
        choices=["grpc", "ws"],
        default="grpc",
        help="gRPC (HOST:PORT is the gRPC port) or WebSocket (the --ws-port; ws:// or wss://)",
    )
    p.add_argument("--wav", type=Path, help="caller audio (any WAV)")
    p.add_argument("--dtmf", help="digits to press after speaking, e.g. 12#")
    p.add_argument("--agent", default="", help="virtual_agent_id (default: the server's default)")
    p.add_argument("--token", help="the data-source JWS (authorization metadata or header)")
    p.add_argument("--save-prompts", type=Path, metavar="DIR")
    p.add_argument("--fast", action="store_true", help="send audio faster than real time")
    p.add_argument(
        "--report",
        action="store_true",
        help="per RPC: did the server complete after the half-close or after the grace?",
    )
    p.add_argument(
        "--timeline",
        type=Path,
        metavar="FILE",
        help="write the call's timeline chart (.html page or .svg image)",
    )
    p.set_defaults(func=_call)
    add_new_plugin_parser(sub)
    add_loadtest_parser(sub)
    host.add_commands(sub.add_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``byova-media`` console script."""
    try:
        host = PluginHost.create(discover=True)
        args = build_parser(host).parse_args(argv)
        return int(args.func(args))
    except (ConfigError, PluginError, OSError) as exc:
        print(f"byova-media: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
