"""Start-up of the configured end-of-turn model (``turn_detector``): checked, loaded, shared.

The server calls :func:`start_end_of_turn` once; a wrong name, silences in the wrong
order or a model that cannot load stop the start with an error that says what to do.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from byova_media.audio.end_of_turn import EndOfTurnRunner
from byova_media.config import ConfigError

if TYPE_CHECKING:
    from byova_media.app import App

__all__ = ["start_end_of_turn"]

log = logging.getLogger(__name__)


def start_end_of_turn(app: App) -> EndOfTurnRunner | None:
    """The runner of ``app.config.turn_detector``, or ``None`` for ``none``."""
    config = app.config
    detectors = app.plugins.turn_detectors(app)
    name = config.turn_detector
    if name == "none":
        return None
    if name not in detectors:
        known = ", ".join(["none", *sorted(detectors)])
        raise ConfigError(
            f"turn_detector {name!r} is not registered (known: {known}); "
            "install and load the plugin that provides it"
        )
    if config.turn_detector_silence_ms >= config.speech_end_silence_ms:
        raise ConfigError(
            f"turn_detector_silence_ms ({config.turn_detector_silence_ms}) must be shorter "
            f"than speech_end_silence_ms ({config.speech_end_silence_ms}): the model is asked "
            "after the short silence, the long one is the fallback"
        )
    model = detectors[name]()
    log.info(
        "turn detector %s: asked after %d ms of silence, long silence %d ms",
        name,
        config.turn_detector_silence_ms,
        config.speech_end_silence_ms,
    )
    return EndOfTurnRunner(model, name, app.metrics.registry)
