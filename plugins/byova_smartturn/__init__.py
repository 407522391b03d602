"""The ``smartturn`` plugin: Smart Turn v3.2, an end-of-turn model, as turn detector ``smartturn``.

Pick it with ``--turn-detector smartturn`` (``turn_detector = "smartturn"``,
``BYOVA_MEDIA_TURN_DETECTOR=smartturn``), best with ``vad = "silero"``. Fetch the model once
with ``byova-media models fetch smart-turn``. ``[plugin.smartturn]``: ``model_path``
(default: the cache), ``threshold`` (0.5), ``threads`` (1).

| the caller | the engine |
|---|---|
| stops after a complete sentence | END_OF_INPUT after ~200 ms of silence + one inference |
| pauses after a filler ("um") | the model says incomplete: waits ``speech_end_silence_ms`` |
"""

from __future__ import annotations

from collections.abc import Callable

import byova_media
from byova_media import App
from byova_media.audio.end_of_turn import EndOfTurnModel
from byova_media.hookspecs import AddCommand
from byova_smartturn.commands import add_models_parser
from byova_smartturn.fetch import FETCH_COMMAND, ModelMissingError, fetch_model
from byova_smartturn.model import SmartTurnModel
from byova_smartturn.settings import SmartTurnSettings

__all__ = [
    "FETCH_COMMAND",
    "ModelMissingError",
    "SmartTurnModel",
    "SmartTurnSettings",
    "fetch_model",
]


@byova_media.hookimpl
def byova_register_turn_detectors(
    app: App, register: Callable[[str, Callable[[], EndOfTurnModel]], None]
) -> None:
    settings = SmartTurnSettings.model_validate(app.settings("smartturn"))
    register("smartturn", lambda: SmartTurnModel(settings))


@byova_media.hookimpl
def byova_add_commands(add_command: AddCommand) -> None:
    add_models_parser(add_command)
