"""Settings of the ``openai`` language model (``[plugin.openai]`` plus per-agent options)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["OpenAISettings"]


class OpenAISettings(BaseModel):
    """Where and how to call an OpenAI-compatible chat-completions endpoint.

    ``api_key`` is secret: it goes only into the ``Authorization`` header, never into
    logs, reprs or error messages. Set it with ``BYOVA_MEDIA_OPENAI_API_KEY``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key: SecretStr | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    connect_timeout_s: float = Field(5.0, gt=0)
    first_token_timeout_s: float = Field(15.0, gt=0)
    read_timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    retry_backoff_s: float = Field(0.5, ge=0)
    max_retry_after_s: float = Field(10.0, ge=0)
