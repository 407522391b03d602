"""``PocketsphinxSTT``: offline speech recognition with the model inside the pocketsphinx wheel.

The wheel's acoustic model is trained on 16 kHz wideband speech, so 8 kHz telephony
audio is upsampled with :class:`~byova_media.audio.Resampler`. Upsampled telephone
audio has an empty 4-8 kHz band (and exact digital silence), which the model's
log-filterbank features turn into extreme values; a faint noise floor
(``dither_dbfs``, default -60 dBFS) fixes that and takes a grammar-constrained search
from near-useless to near-perfect on synthetic speech. Decoding runs in worker
threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from byova_media.adapters import Transcript
from byova_media.audio.resample import Resampler

__all__ = ["PocketsphinxSTT", "PocketsphinxSettings"]

MODEL_RATE = 16_000
#: Audio handed to the decoder per worker-thread hop while streaming (not per frame).
_STREAM_BATCH_SAMPLES = MODEL_RATE // 5


class PocketsphinxSettings(BaseModel):
    """Options of the ``pocketsphinx`` recogniser (per virtual agent).

    ``grammar`` (JSGF text) or ``keyphrases`` restrict what can be recognised; the
    general language model is used when neither is given (poor on telephony audio).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    grammar: str | None = None
    keyphrases: tuple[str, ...] = ()
    keyphrase_threshold: float = Field(1e-20, gt=0, lt=1)
    dither_dbfs: float | None = Field(-60.0, le=-20)
    streaming: bool = True
    max_idle_decoders: int = Field(4, ge=0, le=64)

    @model_validator(mode="after")
    def _one_search(self) -> PocketsphinxSettings:
        if self.grammar and self.keyphrases:
            raise ValueError("give either grammar or keyphrases, not both")
        return self


class _DecoderPool:
    """Idle decoders for reuse: loading the model costs about 0.1 s and several MB.

    A decoder's feature extraction adapts to the audio it hears (its cepstral mean and
    noise estimate) and keeps that from one utterance to the next; a reused decoder gets
    fresh feature extraction (microseconds, the model stays loaded), so no call's audio
    changes what another call's words are heard as.
    """

    def __init__(self, settings: PocketsphinxSettings) -> None:
        self._settings = settings
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def acquire(self) -> Any:
        with self._lock:
            decoder = self._idle.pop() if self._idle else None
        if decoder is None:
            return self._create()
        decoder.reinit_feat()
        return decoder

    def release(self, decoder: Any) -> None:
        with self._lock:
            if len(self._idle) < self._settings.max_idle_decoders:
                self._idle.append(decoder)

    def _create(self) -> Any:
        from pocketsphinx import Decoder

        s = self._settings
        decoder = Decoder(samprate=MODEL_RATE, loglevel="FATAL")
        if s.grammar:
            decoder.add_jsgf_string("byova", s.grammar)
            decoder.activate_search("byova")
        elif s.keyphrases:
            lines = "".join(f"{k.lower()} /{s.keyphrase_threshold:g}/\n" for k in s.keyphrases)
            fd, path = tempfile.mkstemp(suffix=".kws", text=True)
            try:
                with os.fdopen(fd, "w") as fh:
                    fh.write(lines)
                decoder.add_kws("byova", path)
            finally:
                os.unlink(path)
            decoder.activate_search("byova")
        return decoder


def _hypothesis(decoder: Any, keyphrases: bool) -> str:
    if keyphrases:
        return " ".join(seg.word.strip() for seg in decoder.seg() or ())
    hyp = decoder.hyp()
    return str(hyp.hypstr).strip() if hyp is not None else ""


class PocketsphinxSTT:
    """Batch and streaming recognition; safe to share between concurrent calls."""

    streaming: bool

    def __init__(self, settings: PocketsphinxSettings | None = None) -> None:
        self.settings = settings or PocketsphinxSettings()
        self.streaming = self.settings.streaming
        self._pool = _DecoderPool(self.settings)
        self._rng_seed = 0x5EED

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> PocketsphinxSTT:
        """The factory registered with ``byova_register_stt_engines``."""
        return cls(PocketsphinxSettings.model_validate(dict(options)))

    def prepare(self, pcm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """16 kHz PCM16 with the noise floor added (``pcm`` already at 16 kHz)."""
        if self.settings.dither_dbfs is None:
            return pcm.astype(np.int16, copy=False)
        scale = 32768.0 * 10 ** (self.settings.dither_dbfs / 20)
        noisy = pcm.astype(np.float32) + rng.standard_normal(len(pcm)).astype(np.float32) * scale
        return np.clip(noisy, -32768, 32767).astype(np.int16)

    def _decode(self, pcm16k: np.ndarray) -> Transcript:
        decoder = self._pool.acquire()
        try:
            decoder.start_utt()
            decoder.process_raw(pcm16k.tobytes(), full_utt=True)
            decoder.end_utt()
            text = _hypothesis(decoder, bool(self.settings.keyphrases))
        finally:
            self._pool.release(decoder)
        return Transcript(text=text, is_final=True)

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> Transcript:
        """Recognise one utterance (PCM16 at any rate) in a worker thread."""
        rng = np.random.default_rng(self._rng_seed)
        resampler = Resampler(sample_rate, MODEL_RATE) if sample_rate != MODEL_RATE else None
        if resampler is not None:
            pcm = np.concatenate((resampler.process(pcm), resampler.flush()))
        return await asyncio.to_thread(self._decode, self.prepare(pcm, rng))

    def open_stream(self, sample_rate: int) -> PocketsphinxStream:
        """Recognise one utterance frame by frame."""
        return PocketsphinxStream(self, sample_rate)

    def acquire(self) -> Any:
        """A decoder of the shared pool for one stream; give it back with :meth:`release`."""
        return self._pool.acquire()

    def release(self, decoder: Any) -> None:
        self._pool.release(decoder)


class PocketsphinxStream:
    """One streaming utterance: frames are batched into 200 ms decoder calls off the loop."""

    def __init__(self, stt: PocketsphinxSTT, sample_rate: int) -> None:
        self._stt = stt
        self._keyphrases = bool(stt.settings.keyphrases)
        self._resampler = Resampler(sample_rate, MODEL_RATE) if sample_rate != MODEL_RATE else None
        self._rng = np.random.default_rng(0x5EED)
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._decoder: Any = None
        self._last = ""
        self._ended = False
        self._closed = False

    def _upsample(self, frame: np.ndarray) -> np.ndarray:
        return self._resampler.process(frame) if self._resampler is not None else frame

    def _process(self, pcm: np.ndarray, final: bool) -> str:
        if self._decoder is None:
            self._decoder = self._stt.acquire()
            self._decoder.start_utt()
        if len(pcm):
            self._decoder.process_raw(pcm.tobytes(), full_utt=False)
        if final:
            self._decoder.end_utt()
            self._ended = True
        return _hypothesis(self._decoder, self._keyphrases)

    def _take(self) -> np.ndarray:
        pcm = np.concatenate(self._pending) if self._pending else np.zeros(0, np.int16)
        self._pending, self._pending_samples = [], 0
        return self._stt.prepare(pcm, self._rng)

    async def feed(self, frame: np.ndarray) -> Transcript | None:
        """Add a frame; every 200 ms of audio, decode and return the partial if it changed."""
        if self._closed:
            raise RuntimeError("the stream is closed")
        up = self._upsample(frame)
        self._pending.append(up)
        self._pending_samples += len(up)
        if self._pending_samples < _STREAM_BATCH_SAMPLES:
            return None
        text = await asyncio.to_thread(self._process, self._take(), False)
        if text == self._last:
            return None
        self._last = text
        return Transcript(text=text, is_final=False)

    async def finish(self) -> Transcript:
        """Decode what is left and return the final transcript."""
        if self._resampler is not None:
            tail = self._resampler.flush()
            self._pending.append(tail)
        try:
            text = await asyncio.to_thread(self._process, self._take(), True)
        finally:
            await self.aclose()
        return Transcript(text=text, is_final=True)

    async def aclose(self) -> None:
        """Give the decoder back (ending a started utterance first)."""
        if self._closed:
            return
        self._closed = True
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            if not self._ended:
                await asyncio.to_thread(decoder.end_utt)
            self._stt.release(decoder)
