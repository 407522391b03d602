"""``SmartTurnModel``: Smart Turn v3.2 (BSD-2-Clause) on onnxruntime as an end-of-turn model.

Input is the turn's audio at 8 kHz; it is upsampled to the model's 16 kHz, turned into
Whisper log-mel features (:mod:`byova_smartturn.features`) and scored. The model's output
``logits`` is already the probability that the turn is complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from byova_media.audio.resample import resample
from byova_smartturn.features import SAMPLE_RATE, WINDOW_SAMPLES, log_mel
from byova_smartturn.fetch import ModelMissingError, cached_model_path
from byova_smartturn.settings import SmartTurnSettings

__all__ = ["SmartTurnModel"]


class SmartTurnModel:
    """One ONNX Runtime session, shared by every call of a server (``run`` is thread-safe)."""

    max_audio_ms = WINDOW_SAMPLES * 1000 // SAMPLE_RATE

    def __init__(self, settings: SmartTurnSettings | None = None) -> None:
        self.settings = settings or SmartTurnSettings()
        self.threshold = self.settings.threshold
        self.path = self.settings.model_path or cached_model_path()
        if not self.path.is_file():
            raise ModelMissingError(self.path)
        self._session = _session(self.path, self.settings.threads)
        self._input = self._session.get_inputs()[0].name

    def predict(self, pcm: npt.NDArray[np.int16], sample_rate: int) -> float:
        """Probability that the turn in ``pcm`` (PCM16 at ``sample_rate``) is complete."""
        if sample_rate != SAMPLE_RATE:
            pcm = resample(pcm, sample_rate, SAMPLE_RATE)
        audio = pcm.astype(np.float32) / 32768.0
        return self.score(log_mel(audio))

    def score(self, features: npt.NDArray[np.float32]) -> float:
        """Run the model on one (80, 800) feature matrix."""
        outputs: list[Any] = self._session.run(["logits"], {self._input: features[None, :, :]})
        return float(outputs[0].reshape(-1)[0])


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for a damaged file
        raise ModelMissingError(path, f"cannot be loaded ({exc})") from exc
