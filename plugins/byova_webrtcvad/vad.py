"""``WebRtcVAD``: the WebRTC voice activity detector behind the core's detector protocol."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["WebRtcVAD", "WebRtcVadSettings"]

#: Frame lengths the WebRTC detector accepts, in ms.
_FRAME_MS = (10, 20, 30)


class WebRtcVadSettings(BaseModel):
    """``[plugin.webrtcvad]``: ``mode`` 0 (least aggressive) to 3 (filters the most noise)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: int = Field(2, ge=0, le=3)
    sample_rate: int = 8000


class WebRtcVAD:
    """Speech probability 1.0/0.0 per frame; other lengths are split into 10 ms pieces."""

    def __init__(self, settings: WebRtcVadSettings | None = None) -> None:
        import webrtcvad

        self.settings = settings or WebRtcVadSettings()
        self.sample_rate = self.settings.sample_rate
        if self.sample_rate not in (8000, 16000, 32000, 48000):
            raise ValueError(
                f"webrtcvad supports 8000, 16000, 32000 or 48000 Hz, not {self.sample_rate}"
            )
        self._vad = webrtcvad.Vad(self.settings.mode)
        self._direct = {self.sample_rate * ms // 1000 for ms in _FRAME_MS}
        self._piece = self.sample_rate // 100

    def speech_probability(self, frame: np.ndarray) -> float:
        """1.0 when WebRTC calls the frame speech (the share of 10 ms pieces otherwise)."""
        pcm = frame.astype("<i2", copy=False)
        if len(pcm) in self._direct:
            return 1.0 if self._vad.is_speech(pcm.tobytes(), self.sample_rate) else 0.0
        n = len(pcm) // self._piece
        if n == 0:
            return 0.0
        votes = sum(
            self._vad.is_speech(
                pcm[i * self._piece : (i + 1) * self._piece].tobytes(), self.sample_rate
            )
            for i in range(n)
        )
        return float(votes) / n
