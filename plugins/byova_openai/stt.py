"""``OpenAITranscriber``: speech-to-text on an OpenAI-compatible ``/audio/transcriptions``.

Batch recognition: the engine's VAD cuts the turn, and the turn's 8 kHz audio is sent
as one WAV in a multipart form (``file``, ``model``, ``response_format=json``, and
``language``/``prompt`` when set); the answer is ``{"text": ...}``. A request has no
side effects, so every failure worth it (429, 5xx, connection, timeout) is retried.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import numpy as np

from byova_media.adapter_metrics import AdapterMetrics
from byova_media.adapters import SpeechStream, Transcript
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.resample import resample
from byova_media.audio.wav import pcm_wav, ulaw_wav
from byova_openai.http_errors import RETRY_STATUS, error_kind, error_text, retry_after
from byova_openai.retry import Retryable, wait_before_retry
from byova_openai.settings import OpenAISettings

__all__ = ["OpenAITranscriber", "SttError"]

ADAPTER = "openai_stt"


class SttError(RuntimeError):
    """Transcription failed; the message says how (never the API key)."""


class _BufferedStream:
    """The streaming interface over batch recognition: frames are kept, sent at the end."""

    def __init__(self, stt: OpenAITranscriber, sample_rate: int) -> None:
        self._stt = stt
        self._rate = sample_rate
        self._frames: list[np.ndarray] = []

    async def feed(self, frame: np.ndarray) -> Transcript | None:
        self._frames.append(frame)
        return None

    async def finish(self) -> Transcript:
        pcm = np.concatenate(self._frames) if self._frames else np.zeros(0, np.int16)
        return await self._stt.transcribe(pcm, self._rate)

    async def aclose(self) -> None:
        self._frames.clear()


class OpenAITranscriber:
    """One endpoint and model; share it between calls (one pooled HTTP client)."""

    streaming = False

    def __init__(
        self,
        settings: OpenAISettings,
        metrics: AdapterMetrics | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.first_token_timeout_s, connect=settings.connect_timeout_s
            )
        )
        self._url = settings.base_url.rstrip("/") + "/audio/transcriptions"

    def __repr__(self) -> str:
        s = self.settings
        return f"OpenAITranscriber(base_url={s.base_url!r}, model={s.stt_model!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    def open_stream(self, sample_rate: int) -> SpeechStream:
        return _BufferedStream(self, sample_rate)

    def _wav(self, pcm: np.ndarray, sample_rate: int) -> bytes:
        if sample_rate != 8000:
            pcm = resample(pcm, sample_rate, 8000)
        pcm = pcm.astype(np.int16)
        return ulaw_wav(pcm_to_ulaw(pcm)) if self.settings.stt_wav == "ulaw" else pcm_wav(pcm, 8000)

    def _form(self) -> dict[str, str]:
        s = self.settings
        form = {"model": s.stt_model, "response_format": "json"}
        if s.language:
            form["language"] = s.language
        if s.stt_prompt:
            form["prompt"] = s.stt_prompt
        return form

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> Transcript:
        """Recognise one turn; an empty turn is not sent."""
        if not len(pcm):
            return Transcript("")
        wav = self._wav(pcm, sample_rate)
        attempt = 0
        while True:
            try:
                return await self._attempt(wav)
            except Retryable as failure:
                self._error(failure)
                if attempt >= self.settings.max_retries:
                    raise SttError(f"{self.settings.stt_model} at {self._url}: {failure}") from None
                attempt += 1
                await wait_before_retry(self.settings, attempt, failure, "transcription")

    async def _attempt(self, wav: bytes) -> Transcript:
        headers = {}
        if self.settings.api_key is not None:
            headers["Authorization"] = f"Bearer {self.settings.api_key.get_secret_value()}"
        started = time.monotonic()
        try:
            response = await self._client.post(
                self._url,
                headers=headers,
                data=self._form(),
                files={"file": ("turn.wav", wav, "audio/wav")},
            )
        except httpx.TimeoutException as exc:
            raise Retryable(f"no answer in time ({type(exc).__name__})", "timeout") from None
        except httpx.HTTPError as exc:
            raise Retryable(f"{type(exc).__name__}: {exc}", "connection") from None
        if self.metrics is not None:
            self.metrics.first_byte(ADAPTER, time.monotonic() - started)
        status = response.status_code
        if status != 200:
            reason = f"HTTP {status}: {error_text(response.content)}"
            if status in RETRY_STATUS:
                raise Retryable(reason, error_kind(status), retry_after(response))
            if self.metrics is not None:
                self.metrics.error(ADAPTER, error_kind(status))
            raise SttError(f"{self.settings.stt_model} at {self._url}: {reason}")
        return Transcript(self._text(response.content))

    def _text(self, body: bytes) -> str:
        try:
            data: Any = json.loads(body)
            text = data["text"]
        except (ValueError, KeyError, TypeError):
            if self.metrics is not None:
                self.metrics.error(ADAPTER, "protocol")
            raise SttError(f"unreadable transcription from {self._url}: {body[:80]!r}") from None
        return str(text).strip()

    def _error(self, failure: Retryable) -> None:
        if self.metrics is not None:
            self.metrics.error(ADAPTER, failure.kind)
