"""The ``webrtcvad`` plugin: the WebRTC voice activity detector, registered as ``webrtc``.

Pick it with ``vad = "webrtc"`` (or ``BYOVA_MEDIA_VAD=webrtc``); tune it with
``[plugin.webrtcvad] mode = 0..3``.
"""

from __future__ import annotations

from collections.abc import Callable

import byova_media
from byova_media.app import App
from byova_media.audio.vad import VoiceActivityDetector
from byova_webrtcvad.vad import WebRtcVAD, WebRtcVadSettings

__all__ = ["WebRtcVAD", "WebRtcVadSettings"]


@byova_media.hookimpl
def byova_register_vads(
    app: App, register: Callable[[str, Callable[[], VoiceActivityDetector]], None]
) -> None:
    settings = WebRtcVadSettings.model_validate(app.settings("webrtcvad"))
    register("webrtc", lambda: WebRtcVAD(settings))
