"""``byova-media models fetch smart-turn``: download and check the Smart Turn model."""

from __future__ import annotations

import argparse
from pathlib import Path

from byova_media.hookspecs import AddCommand
from byova_smartturn.fetch import FetchError, cached_model_path, fetch_model

__all__ = ["add_models_parser"]


def add_models_parser(add_command: AddCommand) -> None:
    models = add_command("models", help="models that plugins need")
    sub = models.add_subparsers(dest="models_command", required=True)
    fetch = sub.add_parser(
        "fetch", help="download a model into the cache, checking its size and SHA-256"
    )
    fetch.add_argument("model", choices=["smart-turn"])
    fetch.add_argument(
        "--dest", type=Path, help=f"file to write (default: {_home(cached_model_path())})"
    )
    fetch.add_argument(
        "--wheel", type=Path, help="a pipecat-ai 1.14.0 wheel at hand instead of downloading"
    )
    fetch.set_defaults(func=_fetch)


def _home(path: Path) -> str:
    """The path with the home directory written as ``~`` (help text is not per machine)."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _fetch(args: argparse.Namespace) -> int:
    try:
        path = fetch_model(args.dest, args.wheel)
    except FetchError as exc:
        print(f"byova-media: error: {exc}")
        return 1
    print(f"Smart Turn model ready: {path}")
    return 0
