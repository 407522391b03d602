"""The ``turn_detector`` setting through a real server on 127.0.0.1.

A fake end-of-turn model, registered by a test plugin, answers "complete" or
"incomplete"; the simulator streams in real time and counts the frames it sent before
END_OF_INPUT, so the assertions are in frames, not in wall-clock time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import byova_media
from byova_media.app import App
from byova_media.audio.end_of_turn import EndOfTurnModel
from byova_media.config import ConfigError

SPEECH_MS = 600
LEAD_MS = 200


class FixedModel:
    """Always the same probability; counts the questions."""

    max_audio_ms = 8000
    threshold = 0.5

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.asked = 0

    def predict(self, pcm: np.ndarray, sample_rate: int) -> float:
        self.asked += 1
        return self.probability


def detector_plugin(model: FixedModel) -> object:
    class Plugin:
        @byova_media.hookimpl
        def byova_register_turn_detectors(
            self, app: App, register: Callable[[str, Callable[[], EndOfTurnModel]], None]
        ) -> None:
            register("fake", lambda: model)

    return Plugin()


async def frames_after_speech(
    byova_server: Any, webex: Any, speech: Any, probability: float, **settings: Any
) -> tuple[int, FixedModel]:
    model = FixedModel(probability)
    server = await byova_server(
        plugins=["echo"], extra_plugins=[("fake", detector_plugin(model))], **settings
    )
    call = (await webex(server, realtime=True)).call("echo")
    await call.start()
    result = await call.say(speech(SPEECH_MS), lead_silence_ms=LEAD_MS, trail_silence_ms=2500)
    assert result.events == ["START_OF_INPUT", "END_OF_INPUT"]
    return result.frames_sent - (LEAD_MS + SPEECH_MS) // 20, model


@pytest.mark.slow
async def test_complete_ends_the_turn_at_the_short_silence(
    byova_server: Any, webex: Any, speech: Any
) -> None:
    # A 2 s fallback, so that even a slow worker thread on a loaded machine answers in time.
    silent, model = await frames_after_speech(
        byova_server, webex, speech, 0.9, turn_detector="fake", speech_end_silence_ms=2000
    )
    assert model.asked == 1
    # Asked after 10 silent frames (200 ms); END_OF_INPUT long before the 100 of 2 s.
    assert 10 <= silent < 100


@pytest.mark.slow
async def test_incomplete_waits_for_the_long_silence(
    byova_server: Any, webex: Any, speech: Any
) -> None:
    silent, model = await frames_after_speech(
        byova_server, webex, speech, 0.1, turn_detector="fake"
    )
    assert model.asked == 1
    assert silent >= 35


@pytest.mark.slow
async def test_without_a_turn_detector_the_model_is_never_asked(
    byova_server: Any, webex: Any, speech: Any
) -> None:
    silent, model = await frames_after_speech(byova_server, webex, speech, 0.9)
    assert model.asked == 0
    assert silent >= 35


async def test_an_unknown_turn_detector_stops_the_start(byova_server: Any) -> None:
    with pytest.raises(ConfigError, match=r"turn_detector 'smart' is not registered.*none"):
        await byova_server(plugins=["echo"], turn_detector="smart")


async def test_the_short_silence_must_be_shorter_than_the_long_one(byova_server: Any) -> None:
    plugin = detector_plugin(FixedModel(0.9))
    with pytest.raises(ConfigError, match="turn_detector_silence_ms"):
        await byova_server(
            plugins=["echo"],
            extra_plugins=[("fake", plugin)],
            turn_detector="fake",
            turn_detector_silence_ms=700,
            speech_end_silence_ms=700,
        )


async def test_the_setting_comes_from_the_environment(byova_server: Any) -> None:
    plugin = detector_plugin(FixedModel(0.9))
    server = await byova_server(
        plugins=["echo"],
        extra_plugins=[("fake", plugin)],
        env={"BYOVA_MEDIA_TURN_DETECTOR": "fake"},
    )
    assert server.app.end_of_turn is not None and server.app.end_of_turn.name == "fake"


def test_the_flag_reaches_the_server(capsys: pytest.CaptureFixture[str]) -> None:
    from byova_media.cli import main

    argv = ["serve", "--plugin", "echo", "--host", "127.0.0.1", "--port", "0"]
    assert main([*argv, "--turn-detector", "nope"]) == 2
    assert "turn_detector 'nope' is not registered" in capsys.readouterr().err
