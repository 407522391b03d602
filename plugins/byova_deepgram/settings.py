"""Settings of the ``deepgram`` recogniser (``[plugin.deepgram]`` / ``BYOVA_MEDIA_DEEPGRAM_*``)."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from byova_media.adapter_settings import key_required, websocket_url

__all__ = ["DeepgramSettings"]


class DeepgramSettings(BaseModel):
    """Where and how to stream caller audio to Deepgram's live transcription.

    ``api_key`` is secret: it goes only into the handshake's ``Authorization: Token``
    header, never into logs, reprs or error messages.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "wss://api.deepgram.com/v1/listen"
    api_key: SecretStr | None = None
    #: Whether a missing key stops start-up (default: for api.deepgram.com only).
    require_api_key: bool | None = None
    model: str = "nova-3"
    #: BCP-47 language (empty: the model's default).
    language: str = ""
    smart_format: bool = True
    #: Silence (ms) after which Deepgram marks a result ``speech_final``.
    endpointing_ms: int = Field(300, ge=10)
    #: Gap between words (ms) that sends ``UtteranceEnd`` (Deepgram's minimum is 1000).
    utterance_end_ms: int = Field(1000, ge=1000)
    #: A ``KeepAlive`` goes out after this long without audio (Deepgram closes at 10 s).
    keepalive_s: float = Field(4.0, gt=0, lt=10)
    open_timeout_s: float = Field(5.0, gt=0)
    #: How long the final transcript may take after the end of the turn's audio.
    finish_timeout_s: float = Field(5.0, gt=0)
    #: Handshake retries (429, 5xx, connection errors); audio is held meanwhile.
    max_retries: int = Field(2, ge=0, le=10)
    retry_backoff_s: float = Field(0.3, ge=0)

    @field_validator("base_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        return websocket_url(value)

    @property
    def key_required(self) -> bool:
        return key_required(self.require_api_key, self.base_url, "api.deepgram.com")

    def url(self) -> str:
        """The listen URL: 8 kHz μ-law mono, interim results, endpointing and VAD events."""
        query = {
            "encoding": "mulaw",
            "sample_rate": "8000",
            "channels": "1",
            "model": self.model,
            "interim_results": "true",
            "endpointing": str(self.endpointing_ms),
            "utterance_end_ms": str(self.utterance_end_ms),
            "vad_events": "true",
            "smart_format": "true" if self.smart_format else "false",
        }
        if self.language:
            query["language"] = self.language
        joiner = "&" if urlsplit(self.base_url).query else "?"
        return f"{self.base_url}{joiner}{urlencode(query)}"
