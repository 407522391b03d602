"""The ``espeak`` plugin: offline text-to-speech on eSpeak NG, registered as ``espeak``.

Options (per virtual agent, e.g. ``[plugin.demo.tts_options]``): ``voice``
(default ``en-us``), ``rate_wpm``, ``pitch``. Audio is PCM16 at the library's rate
(22,050 Hz), streamed block by block while it is synthesised.
"""

from __future__ import annotations

from collections.abc import Callable

import byova_media
from byova_espeak.tts import EspeakSettings, EspeakTTS
from byova_media.adapters import TtsFactory
from byova_media.app import App

__all__ = ["EspeakSettings", "EspeakTTS"]


@byova_media.hookimpl
def byova_register_tts_engines(app: App, register: Callable[[str, TtsFactory], None]) -> None:
    register("espeak", EspeakTTS.from_options)
