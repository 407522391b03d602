"""The ``openai`` plugin: a language model on any OpenAI-compatible chat-completions API.

Registered as ``openai``. Settings come from ``[plugin.openai]`` (and
``BYOVA_MEDIA_OPENAI_*``), overridden by the options of the virtual agent that uses it:
``base_url``, ``model``, ``api_key`` (secret), timeouts and retries (see
:class:`OpenAISettings`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import byova_media
from byova_media.adapters import LanguageModel, LlmFactory
from byova_media.app import App
from byova_openai.chat import LlmError, OpenAIChat
from byova_openai.settings import OpenAISettings

__all__ = ["LlmError", "OpenAIChat", "OpenAISettings"]

_STATE_KEY = "openai"


@byova_media.hookimpl
def byova_register_llms(app: App, register: Callable[[str, LlmFactory], None]) -> None:
    clients: list[OpenAIChat] = app.state.setdefault(_STATE_KEY, [])

    def factory(options: Mapping[str, Any]) -> LanguageModel:
        chat = OpenAIChat.from_options({**app.settings("openai"), **options})
        clients.append(chat)
        return chat

    register("openai", factory)


@byova_media.hookimpl
def byova_server_stop(app: App) -> Awaitable[None] | None:
    clients: list[OpenAIChat] = app.state.pop(_STATE_KEY, [])

    async def close() -> None:
        for chat in clients:
            await chat.aclose()

    return close() if clients else None
