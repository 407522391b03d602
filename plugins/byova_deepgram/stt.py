"""``DeepgramSTT``: the streaming :class:`~byova_media.adapters.SpeechToText` on Deepgram."""

from __future__ import annotations

import numpy as np

from byova_deepgram.settings import DeepgramSettings
from byova_deepgram.stream import DeepgramStream
from byova_media.adapter_metrics import AdapterMetrics
from byova_media.adapters import Transcript
from byova_media.audio.resample import resample

__all__ = ["DeepgramSTT"]

_FRAME = 160  # 20 ms at 8 kHz


class DeepgramSTT:
    """One Deepgram model; each utterance gets a stream (a socket) of its own."""

    streaming = True

    def __init__(self, settings: DeepgramSettings, metrics: AdapterMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics

    def __repr__(self) -> str:
        return f"DeepgramSTT(base_url={self.settings.base_url!r}, model={self.settings.model!r})"

    def open_stream(self, sample_rate: int) -> DeepgramStream:
        if sample_rate != 8000:
            raise ValueError(f"the deepgram stream takes 8 kHz audio, got {sample_rate} Hz")
        return DeepgramStream(self)

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> Transcript:
        """A whole utterance through one stream (the batch fallback)."""
        if sample_rate != 8000:
            pcm = resample(pcm, sample_rate, 8000)
        stream = self.open_stream(8000)
        for cut in range(0, len(pcm), _FRAME):
            await stream.feed(pcm[cut : cut + _FRAME])
        return await stream.finish()
