"""The WebRTC detector plugin: frames of speech and silence, odd frame sizes, registration."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from byova_media.app import App
from byova_media.audio.vad import TurnDetector, VoiceActivityDetector
from byova_media.config import Config
from byova_media.plugins import PluginHost
from byova_webrtcvad import WebRtcVAD, WebRtcVadSettings
from tests.plugins._speech import spoken, telephone


async def test_speech_frames_score_high_and_silence_low() -> None:
    pcm, rate = await spoken("Hello, I would like to talk to somebody about my bill.")
    audio = telephone(pcm, rate)
    vad = WebRtcVAD()
    assert isinstance(vad, VoiceActivityDetector)
    frames = [audio[i : i + 160] for i in range(0, len(audio) - 159, 160)]
    scores = [vad.speech_probability(f) for f in frames]
    assert sum(s == 1.0 for s in scores) > len(frames) // 2
    silent = np.zeros(160, dtype=np.int16)
    after = [vad.speech_probability(silent) for _ in range(50)]
    assert after[-20:] == [0.0] * 20  # after WebRTC's own hangover
    fresh = WebRtcVAD()
    assert [fresh.speech_probability(silent) for _ in range(20)] == [0.0] * 20


async def test_other_frame_lengths_are_split_into_10_ms_pieces() -> None:
    pcm, rate = await spoken("Speaking loudly now.")
    audio = telephone(pcm, rate)
    vad = WebRtcVAD(WebRtcVadSettings(mode=0))
    middle = len(audio) // 2
    assert vad.speech_probability(audio[middle : middle + 240]) in (0.0, 1.0)  # 30 ms
    score = vad.speech_probability(audio[middle : middle + 200])  # 25 ms: two 10 ms pieces
    assert score in (0.0, 0.5, 1.0)
    assert vad.speech_probability(audio[:40]) == 0.0  # shorter than 10 ms


async def test_drives_the_turn_detector() -> None:
    pcm, rate = await spoken("What are your opening hours?")
    audio = np.concatenate(
        [np.zeros(4000, np.int16), telephone(pcm, rate), np.zeros(8000, np.int16)]
    )
    detector = TurnDetector(WebRtcVAD())
    events = [detector.process(audio[i : i + 160]) for i in range(0, len(audio) - 159, 160)]
    kinds = [e.kind for e in events if e is not None]
    assert kinds == ["start", "end"]


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        WebRtcVadSettings(mode=4)
    with pytest.raises(ValueError, match="8000, 16000"):
        WebRtcVAD(WebRtcVadSettings(sample_rate=11025))


def test_registered_as_webrtc_with_plugin_settings() -> None:
    host = PluginHost.create(["webrtcvad"], discover=False)
    config = Config(plugin={"webrtcvad": {"mode": 3}})
    factory = host.vads(App(config, host))["webrtc"]
    vad = factory()
    assert isinstance(vad, WebRtcVAD)
    assert vad.settings.mode == 3


async def test_server_turns_with_the_webrtc_detector(byova_server: Any, webex: Any) -> None:
    server = await byova_server(plugins=["demo", "webrtcvad"], vad="webrtc")
    call = (await webex(server)).call("demo")
    await call.start()
    pcm, rate = await spoken("What is your address?")
    result = await call.say(telephone(pcm, rate), sample_rate=8000)
    assert result.events == ["START_OF_INPUT", "END_OF_INPUT"]
    assert "Main Street" in " ".join(result.prompt_texts)
