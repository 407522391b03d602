"""The ``deepgram`` plugin: streaming speech-to-text on Deepgram's live API.

Registers the recogniser ``deepgram``; settings in ``[plugin.deepgram]`` or
``BYOVA_MEDIA_DEEPGRAM_*`` (``base_url``, ``api_key``, ``model``, ...: see
:class:`DeepgramSettings` and ``docs/cloud-speech.md``). A pipeline agent picks it
with ``stt = "deepgram"``; the demo with ``BYOVA_MEDIA_DEMO_STT=deepgram``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

import byova_media
from byova_deepgram.settings import DeepgramSettings
from byova_deepgram.stream import DeepgramStream, SttError
from byova_deepgram.stt import DeepgramSTT
from byova_media.adapter_metrics import adapter_metrics
from byova_media.adapters import SpeechToText, SttFactory
from byova_media.app import App

__all__ = ["DeepgramSTT", "DeepgramSettings", "DeepgramStream", "SttError"]


def load_settings(raw: Mapping[str, Any]) -> DeepgramSettings:
    """Validated settings; a missing key where one is needed says how to set it."""
    try:
        settings = DeepgramSettings.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: "
            + ("unknown setting" if e["type"] == "extra_forbidden" else e["msg"])
            for e in exc.errors()
        )
        raise ValueError(f"invalid deepgram settings: {problems}") from None
    if settings.key_required and settings.api_key is None:
        raise ValueError(
            f"the deepgram recogniser at {settings.base_url} needs an API key: set "
            "BYOVA_MEDIA_DEEPGRAM_API_KEY or api_key in [plugin.deepgram]"
        )
    return settings


@byova_media.hookimpl
def byova_register_stt_engines(app: App, register: Callable[[str, SttFactory], None]) -> None:
    def factory(options: Mapping[str, Any]) -> SpeechToText:
        settings = load_settings({**app.settings("deepgram"), **options})
        return DeepgramSTT(settings, adapter_metrics(app))

    register("deepgram", factory)
