"""Energy VAD and turn detection: noise never starts a turn, pauses do not end one."""

from __future__ import annotations

import numpy as np
import pytest

from byova_media.audio.codecs import ulaw_to_pcm
from byova_media.audio.tones import comfort_noise, tone
from byova_media.audio.vad import (
    EnergyVAD,
    TurnDetector,
    TurnEvent,
    VoiceActivityDetector,
    frame_dbfs,
)

FRAME = 160


def frames_of(signal: np.ndarray) -> list[np.ndarray]:
    return [signal[i : i + FRAME] for i in range(0, signal.size - FRAME + 1, FRAME)]


def speechlike(ms: int, seed: int = 0) -> np.ndarray:
    """Voiced-sounding audio: a 150 Hz buzz with harmonics and a syllable envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(ms * 8) / 8000
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 8))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    noise = rng.normal(0, 0.05, t.size)
    return np.clip((buzz * envelope + noise) * 4000, -32768, 32767).astype(np.int16)


def events(detector: TurnDetector, signal: np.ndarray) -> list[TurnEvent]:
    return [e for f in frames_of(signal) if (e := detector.process(f)) is not None]


def test_energy_vad_is_a_voice_activity_detector() -> None:
    assert isinstance(EnergyVAD(), VoiceActivityDetector)


def test_levels() -> None:
    assert frame_dbfs(np.zeros(FRAME, np.int16)) == -120.0
    assert frame_dbfs(np.full(FRAME, 32767, np.int16)) == pytest.approx(0.0, abs=0.01)


def test_silence_and_low_noise_never_start_a_turn() -> None:
    detector = TurnDetector(EnergyVAD())
    quiet = np.concatenate(
        [np.zeros(8000, np.int16), ulaw_to_pcm(comfort_noise(3000, level_dbfs=-50.0, seed=1))]
    )
    assert events(detector, quiet) == []
    assert not detector.in_speech


def test_steady_louder_noise_is_learned_as_the_floor() -> None:
    vad = EnergyVAD()
    noise = np.random.default_rng(3).normal(0, 400, 8000 * 20).astype(np.int16)  # ~ -38 dBFS
    detector = TurnDetector(vad)
    found = events(detector, noise)
    assert [e.kind for e in found[-1:]] != ["start"]  # learned within seconds: no open turn
    speech_over_noise = speechlike(1000) + noise[:8000]
    assert [e.kind for e in events(detector, speech_over_noise)][:1] == ["start"]


def test_utterance_with_a_300ms_pause_is_one_turn() -> None:
    detector = TurnDetector(EnergyVAD(), start_ms=100, end_silence_ms=700, pre_roll_ms=200)
    silence = np.zeros(8000, np.int16)
    signal = np.concatenate(
        [silence, speechlike(800), np.zeros(2400, np.int16), speechlike(600, 1), silence]
    )
    found = events(detector, signal)
    assert [e.kind for e in found] == ["start", "end"]
    start, end = found
    # Speech starts at frame 50 (1 s); the start reaches back by the 200 ms pre-roll.
    assert start.frame_index == 50 - 10
    # Speech ends at 1 s + 0.8 s + 0.3 s + 0.6 s = 2.7 s → frame 135.
    assert end.frame_index == 135


def test_a_click_does_not_start_a_turn_and_reset_forgets() -> None:
    detector = TurnDetector(EnergyVAD())
    click = np.concatenate([np.zeros(4000, np.int16), speechlike(40), np.zeros(4000, np.int16)])
    assert events(detector, click) == []
    events(detector, speechlike(500))
    assert detector.in_speech
    detector.reset()
    assert not detector.in_speech


class Scripted:
    """A VAD that replays given probabilities, to test the turn logic alone."""

    sample_rate = 8000

    def __init__(self, probabilities: list[float]) -> None:
        self._probabilities = iter(probabilities)

    def speech_probability(self, frame: np.ndarray) -> float:
        return next(self._probabilities)


def test_turn_thresholds_in_ms() -> None:
    script = [0.0] * 3 + [0.9] * 5 + [0.1] * 3 + [0.9] + [0.1] * 4
    detector = TurnDetector(
        Scripted(script), frame_ms=20, start_ms=100, end_silence_ms=80, pre_roll_ms=40
    )
    found = [(i, e) for i in range(len(script)) if (e := detector.process(np.zeros(1))) is not None]
    assert found == [(7, TurnEvent("start", 1)), (15, TurnEvent("end", 12))]


def test_invalid_thresholds() -> None:
    with pytest.raises(ValueError, match="threshold"):
        TurnDetector(EnergyVAD(), threshold=0.0)
    with pytest.raises(ValueError, match="frame_ms"):
        TurnDetector(EnergyVAD(), frame_ms=0)


def test_tone_is_speech_for_energy_vad() -> None:
    vad = EnergyVAD()
    assert vad.speech_probability(tone(440, 20, level_dbfs=-20.0)) > 0.9
