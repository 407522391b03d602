"""Settings of the ``openai`` plugin (``[plugin.openai]`` plus per-agent options).

One table serves the three adapters: ``base_url`` and ``api_key`` are shared,
``model`` is the chat model, ``stt_model``/``tts_model``/``voice`` the speech ones.
In a pipeline's ``stt_options``/``tts_options``, ``model`` names that part's model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from byova_media.adapter_settings import key_required

__all__ = ["OpenAISettings"]


class OpenAISettings(BaseModel):
    """Where and how to call an OpenAI-compatible API (chat, transcription, speech).

    ``api_key`` is secret: it goes only into the ``Authorization`` header, never into
    logs, reprs or error messages. Set it with ``BYOVA_MEDIA_OPENAI_API_KEY``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key: SecretStr | None = None
    #: Whether calls without ``api_key`` are refused at start-up (self-hosted servers
    #: often need no key; api.openai.com always does).
    require_api_key: bool | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    # --- speech-to-text (/audio/transcriptions) ---
    stt_model: str = "gpt-4o-mini-transcribe"
    #: ISO-639-1 language of the caller (empty: the model detects it).
    language: str = ""
    #: Words the recogniser should expect (product names...), sent as ``prompt``.
    stt_prompt: str = ""
    #: How the turn's 8 kHz audio is wrapped: 16-bit PCM (read by every server) or μ-law.
    stt_wav: Literal["pcm16", "ulaw"] = "pcm16"
    # --- text-to-speech (/audio/speech) ---
    tts_model: str = "gpt-4o-mini-tts"
    voice: str = "alloy"
    #: ``pcm`` is raw 16-bit little-endian mono at ``tts_sample_rate``; ``wav`` has a header.
    tts_format: Literal["pcm", "wav"] = "pcm"
    #: The rate of ``pcm`` output (OpenAI's is 24 kHz); a WAV header overrides it.
    tts_sample_rate: int = Field(24000, ge=8000, le=48000)
    tts_speed: float | None = Field(None, ge=0.25, le=4.0)
    #: Voice direction for models that take it (``gpt-4o-mini-tts``).
    tts_instructions: str = ""
    # --- timeouts and retries ---
    connect_timeout_s: float = Field(5.0, gt=0)
    #: Until the first token (chat), the transcript (STT) or the first audio byte (TTS).
    first_token_timeout_s: float = Field(15.0, gt=0)
    read_timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    retry_backoff_s: float = Field(0.5, ge=0)
    max_retry_after_s: float = Field(10.0, ge=0)

    @property
    def key_required(self) -> bool:
        return key_required(self.require_api_key, self.base_url, "api.openai.com")

    def check_key(self, what: str) -> None:
        """Refuse to build ``what`` without a key where one is needed (a clear start-up error)."""
        if self.key_required and self.api_key is None:
            raise ValueError(
                f"{what} at {self.base_url} needs an API key: set BYOVA_MEDIA_OPENAI_API_KEY "
                "or api_key in [plugin.openai] (require_api_key = false for a server that "
                "takes none)"
            )
