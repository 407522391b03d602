"""An agent whose answers come from a language model that another plugin registers.

It uses only the adapter protocol (:class:`~byova_media.adapters.LanguageModel`), so the
model is picked by name: ``openai`` (the bundled plugin, any OpenAI-compatible server)
unless the ``llm`` setting names another. The caller's words arrive as text through the
Webex flow (a custom event ``ask`` with a ``text`` parameter, from a flow that already
transcribes) and the keypad; for speech in and speech out, the pipeline agent
(``byova_media.pipeline``) adds speech-to-text and text-to-speech around the same model.
Run: ``PYTHONPATH=examples/llm_agent byova-media serve --plugin llm_agent --plugin openai``
with ``BYOVA_MEDIA_OPENAI_API_KEY`` (and ``BYOVA_MEDIA_OPENAI_BASE_URL``) set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import byova_media
from byova_media import Agent, AgentSpec, App, Call, Reply, SessionStart, pcm_to_ulaw, tone
from byova_media.adapters import LanguageModel, LlmFactory, Message, TextDelta
from byova_media.plugins import PluginError

__all__ = ["LlmAgent"]

SYSTEM = "You are a contact-center agent on the phone. Answer in one or two short sentences."


class LlmAgent(Agent):
    """Keeps the conversation as chat messages and asks the model for each answer."""

    def __init__(self, model: LanguageModel) -> None:
        self.model = model
        self.messages = [Message("system", SYSTEM)]

    async def _answer(self, user_text: str) -> Reply:
        self.messages.append(Message("user", user_text))
        parts = [e.text async for e in self.model.stream(self.messages) if isinstance(e, TextDelta)]
        answer = "".join(parts).strip()
        self.messages.append(Message("assistant", answer))
        # Webex plays audio: a text-to-speech engine would speak ``answer`` here.
        return Reply.say(pcm_to_ulaw(tone(500.0, 150)), text=answer, barge_in=True)

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        name = start.parameters.get("customer_name", "a customer")
        return await self._answer(f"The caller is {name}. Greet them.")

    async def on_custom_event(
        self, call: Call, name: str, parameters: Mapping[str, Any]
    ) -> Reply | None:
        if name != "ask":
            return None
        return await self._answer(str(parameters.get("text", "")))

    async def on_dtmf(self, call: Call, digits: str) -> Reply:
        return await self._answer(f"The caller pressed {digits} on the keypad.")


@byova_media.hookimpl
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    settings = app.settings("llm_agent")
    name = str(settings.get("llm", "openai"))
    factories: dict[str, LlmFactory] = app.plugins.llms(app)
    if name not in factories:
        raise PluginError(
            f"llm_agent needs language model {name!r}; load a plugin that registers it "
            f"(e.g. --plugin openai); registered: {', '.join(sorted(factories)) or 'none'}"
        )
    model = factories[name]({})  # one client per server, shared by its calls
    register(AgentSpec("llm_agent", lambda call: LlmAgent(model), name="LLM agent"))
