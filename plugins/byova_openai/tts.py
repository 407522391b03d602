"""``OpenAISpeech``: streamed text-to-speech on an OpenAI-compatible ``/audio/speech``.

POSTs ``{model, input, voice, response_format}`` (``pcm`` or ``wav``, plus ``speed``
and ``instructions`` when set) and converts the body to 8 kHz μ-law as it streams in,
so the first CHUNK goes to Webex while the rest of the sentence is being synthesised.
A failed attempt is retried only until the first audio byte has been handed out;
after that the caller has heard part of the sentence and a retry would repeat it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from byova_media.adapter_metrics import AdapterMetrics, ErrorKind
from byova_media.audio.formats import ULAW_8K, AudioFormat
from byova_openai.audio_stream import SpeechAudioError, UlawConverter, WavStreamReader
from byova_openai.http_errors import RETRY_STATUS, error_kind, error_text, retry_after
from byova_openai.retry import Retryable, wait_before_retry
from byova_openai.settings import OpenAISettings

__all__ = ["OpenAISpeech", "TtsError"]

ADAPTER = "openai_tts"


class TtsError(RuntimeError):
    """Synthesis failed; the message says how (never the API key)."""


class OpenAISpeech:
    """One endpoint, model and voice; share it between calls (one pooled HTTP client)."""

    audio_format: AudioFormat = ULAW_8K

    def __init__(
        self,
        settings: OpenAISettings,
        metrics: AdapterMetrics | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
        )
        self._url = settings.base_url.rstrip("/") + "/audio/speech"

    def __repr__(self) -> str:
        s = self.settings
        return f"OpenAISpeech(base_url={s.base_url!r}, model={s.tts_model!r}, voice={s.voice!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    def _body(self, text: str) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {
            "model": s.tts_model,
            "input": text,
            "voice": s.voice,
            "response_format": s.tts_format,
        }
        if s.tts_speed is not None:
            body["speed"] = s.tts_speed
        if s.tts_instructions:
            body["instructions"] = s.tts_instructions
        return body

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """8 kHz μ-law as it is synthesised; closing the generator ends the request."""
        if not text.strip():
            return
        body = self._body(text)
        attempt = 0
        while True:
            started = [False]
            try:
                async for audio in self._attempt(body, started):
                    yield audio
                return
            except Retryable as failure:
                self._error(failure.kind)
                if started[0] or attempt >= self.settings.max_retries:
                    raise TtsError(f"{self.settings.tts_model} at {self._url}: {failure}") from None
                attempt += 1
                await wait_before_retry(self.settings, attempt, failure, "speech")

    def _headers(self) -> dict[str, str]:
        if self.settings.api_key is None:
            return {}
        return {"Authorization": f"Bearer {self.settings.api_key.get_secret_value()}"}

    async def _attempt(
        self, body: dict[str, Any], started: list[bool]
    ) -> AsyncGenerator[bytes, None]:
        s = self.settings
        reader: UlawConverter | WavStreamReader = (
            WavStreamReader() if s.tts_format == "wav" else UlawConverter(s.tts_sample_rate)
        )
        began = time.monotonic()
        try:
            async with asyncio.timeout(s.first_token_timeout_s) as deadline:
                async with self._client.stream(
                    "POST", self._url, json=body, headers=self._headers()
                ) as response:
                    if response.status_code != 200:
                        await self._refuse(response)
                    async for data in response.aiter_bytes():
                        audio = reader.feed(data)
                        if not audio:
                            continue
                        if not started[0]:
                            started[0] = True
                            deadline.reschedule(None)  # the read timeout applies from here
                            if self.metrics is not None:
                                self.metrics.first_byte(ADAPTER, time.monotonic() - began)
                        yield audio
                    tail = reader.finish()
        except TimeoutError:
            raise Retryable(f"no audio within {s.first_token_timeout_s} s", "timeout") from None
        except httpx.TimeoutException as exc:
            raise Retryable(f"audio stalled ({type(exc).__name__})", "timeout") from None
        except httpx.HTTPError as exc:
            # Transport failures carry no secrets (the key is only in a header).
            raise Retryable(f"{type(exc).__name__}: {exc}", "connection") from None
        except SpeechAudioError as exc:
            self._error("protocol")
            raise TtsError(f"{s.tts_model} at {self._url}: {exc}") from None
        if tail:
            yield tail

    async def _refuse(self, response: httpx.Response) -> None:
        status = response.status_code
        reason = f"HTTP {status}: {error_text(await response.aread())}"
        if status in RETRY_STATUS:
            raise Retryable(reason, error_kind(status), retry_after(response))
        self._error(error_kind(status))
        raise TtsError(f"{self.settings.tts_model} at {self._url}: {reason}")

    def _error(self, kind: ErrorKind) -> None:
        if self.metrics is not None:
            self.metrics.error(ADAPTER, kind)
