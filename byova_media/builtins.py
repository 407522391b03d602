"""Built-in plugin: the energy voice activity detector, always available as ``energy``."""

from __future__ import annotations

from collections.abc import Callable

from byova_media._markers import hookimpl
from byova_media.app import App
from byova_media.audio.vad import EnergyVAD, VoiceActivityDetector


@hookimpl
def byova_register_vads(
    app: App, register: Callable[[str, Callable[[], VoiceActivityDetector]], None]
) -> None:
    register("energy", lambda: EnergyVAD(sample_rate=8000))
