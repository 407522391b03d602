"""``DemoSettings``: the demo agent's ``[plugin.demo]`` table (a pipeline with offline defaults)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from byova_demo.grammar import DEMO_GRAMMAR
from byova_media.pipeline import PipelineSettings

__all__ = ["DemoSettings"]


class DemoSettings(PipelineSettings):
    """Offline by default; ``llm = "openai"`` swaps the rules for a real model."""

    llm: str = "demo"
    stt: str = "pocketsphinx"
    stt_options: dict[str, Any] = Field(default_factory=lambda: {"grammar": DEMO_GRAMMAR})
    tts: str = "espeak"
    welcome_text: str = (
        "Welcome to the byova media demo. You can ask about our opening hours or our "
        "address, or ask for an agent."
    )
    system_prompt: str = (
        "You are the phone assistant of a small shop, open Monday to Friday from nine to "
        "five, at one hundred Main Street, Springfield. Answer in one or two short "
        "sentences. When the caller asks for a person, call transfer_to_agent with "
        '{"intent": "agent_request"}; when they are done, say goodbye and call end_call '
        'with {"intent": "goodbye"}.'
    )
