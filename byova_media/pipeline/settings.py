"""``PipelineSettings``: which parts a pipeline agent uses and how it talks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PipelineSettings"]


class PipelineSettings(BaseModel):
    """Parts are picked by registered name; ``*_options`` go to that part's factory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stt: str = "pocketsphinx"
    stt_options: dict[str, Any] = Field(default_factory=dict)
    llm: str = "openai"
    llm_options: dict[str, Any] = Field(default_factory=dict)
    tts: str = "espeak"
    tts_options: dict[str, Any] = Field(default_factory=dict)
    system_prompt: str = (
        "You are a helpful voice agent on a phone line. Answer in one or two short, "
        "plain sentences without lists or markup."
    )
    welcome_text: str = "Hello! How can I help you?"
    #: Streaming recognition while the caller speaks (when the recogniser can).
    streaming_stt: bool = True
    barge_in: bool = True
    #: Chat messages kept besides the system prompt (oldest dropped first).
    max_history_messages: int = Field(40, ge=2)
    #: LLM rounds per turn when it calls user tools (each result goes back to it).
    max_tool_rounds: int = Field(3, ge=1, le=10)
    #: Clause breaks (``,;:``) split the text once a piece is at least this long.
    min_clause_chars: int = Field(24, ge=1)
    #: Caller audio a streaming recogniser may buffer before it is restarted.
    max_stream_ms: int = Field(30_000, ge=1000)
