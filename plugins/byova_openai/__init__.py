"""The ``openai`` plugin: chat, speech-to-text and text-to-speech on OpenAI-compatible APIs.

Registers the language model ``openai`` (``/chat/completions``), the recogniser
``openai`` (``/audio/transcriptions``) and the voice ``openai`` (``/audio/speech``).
Settings come from ``[plugin.openai]`` (and ``BYOVA_MEDIA_OPENAI_*``), overridden by the
options of the virtual agent that uses a part; there ``model`` names that part's model.
See :class:`OpenAISettings` and ``docs/cloud-speech.md``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import byova_media
from byova_media.adapter_metrics import adapter_metrics
from byova_media.adapters import (
    LanguageModel,
    LlmFactory,
    SpeechToText,
    SttFactory,
    TextToSpeech,
    TtsFactory,
)
from byova_media.app import App
from byova_openai.chat import LlmError, OpenAIChat
from byova_openai.settings import OpenAISettings
from byova_openai.stt import OpenAITranscriber, SttError
from byova_openai.tts import OpenAISpeech, TtsError

__all__ = [
    "LlmError",
    "OpenAIChat",
    "OpenAISettings",
    "OpenAISpeech",
    "OpenAITranscriber",
    "SttError",
    "TtsError",
]

_STATE_KEY = "openai"


class _Closable(Protocol):
    async def aclose(self) -> None: ...


def _settings(app: App, options: Mapping[str, Any], model_field: str) -> OpenAISettings:
    """Plugin settings under the agent's options; the options' ``model`` is the part's."""
    merged = {**app.settings("openai"), **options}
    if model_field != "model" and "model" in options:
        merged[model_field] = merged.pop("model")
    return OpenAISettings.model_validate(merged)


def _clients(app: App) -> list[_Closable]:
    clients: list[_Closable] = app.state.setdefault(_STATE_KEY, [])
    return clients


@byova_media.hookimpl
def byova_register_llms(app: App, register: Callable[[str, LlmFactory], None]) -> None:
    def factory(options: Mapping[str, Any]) -> LanguageModel:
        settings = _settings(app, options, "model")
        settings.check_key("the openai language model")
        chat = OpenAIChat(settings)
        _clients(app).append(chat)
        return chat

    register("openai", factory)


@byova_media.hookimpl
def byova_register_stt_engines(app: App, register: Callable[[str, SttFactory], None]) -> None:
    def factory(options: Mapping[str, Any]) -> SpeechToText:
        settings = _settings(app, options, "stt_model")
        settings.check_key("the openai speech recogniser")
        stt = OpenAITranscriber(settings, adapter_metrics(app))
        _clients(app).append(stt)
        return stt

    register("openai", factory)


@byova_media.hookimpl
def byova_register_tts_engines(app: App, register: Callable[[str, TtsFactory], None]) -> None:
    def factory(options: Mapping[str, Any]) -> TextToSpeech:
        settings = _settings(app, options, "tts_model")
        settings.check_key("the openai voice")
        tts = OpenAISpeech(settings, adapter_metrics(app))
        _clients(app).append(tts)
        return tts

    register("openai", factory)


@byova_media.hookimpl
def byova_server_stop(app: App) -> Awaitable[None] | None:
    clients: list[_Closable] = app.state.pop(_STATE_KEY, [])

    async def close() -> None:
        for client in clients:
            await client.aclose()

    return close() if clients else None
