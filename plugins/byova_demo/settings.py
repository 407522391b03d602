"""``DemoSettings``: the demo agent's ``[plugin.demo]`` table (a pipeline with offline defaults)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from byova_demo.grammar import DEMO_GRAMMAR
from byova_media.pipeline import PipelineSettings

__all__ = ["DemoSettings"]


class DemoSettings(PipelineSettings):
    """Offline by default; ``llm``, ``stt`` and ``tts`` = ``"openai"`` swap in cloud parts
    (``stt = "deepgram"`` too), each configured in its own plugin's table."""

    llm: str = "demo"
    stt: str = "pocketsphinx"
    #: Defaults to the demo's grammar when the recogniser is pocketsphinx, else empty.
    stt_options: dict[str, Any] = Field(default_factory=dict)
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

    @model_validator(mode="before")
    @classmethod
    def _grammar_for_pocketsphinx(cls, data: Any) -> Any:
        """The grammar is a pocketsphinx option: other recognisers would reject it."""
        pocketsphinx = isinstance(data, dict) and data.get("stt", "pocketsphinx") == "pocketsphinx"
        if pocketsphinx and "stt_options" not in data:
            return {**data, "stt_options": {"grammar": DEMO_GRAMMAR}}
        return data
