"""The ``demo`` plugin: an offline voice agent, virtual agent ``demo`` (the default).

A pipeline agent on the offline stack: pocketsphinx (with the demo's grammar),
eSpeak NG, and a rule-based language model that greets, tells the opening hours and
the address, reads back DTMF, transfers to an agent on request (metadata
``{"intent": "agent_request"}``) and says goodbye. Use a real model with one line:
``[plugin.demo] llm = "openai"`` or ``BYOVA_MEDIA_DEMO_LLM=openai`` (with the
``openai`` plugin's settings). Turn-taking: Silero VAD + Smart Turn when their extras
and the model are installed, else the configured VAD and silence (logged at start-up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import byova_media
from byova_demo.rules import DemoAnswers, RuleBasedLLM
from byova_demo.settings import DemoSettings
from byova_demo.turn_taking import choose_turn_taking
from byova_media.adapters import LanguageModel, LlmFactory
from byova_media.agent import AgentSpec, TurnMetrics
from byova_media.app import App
from byova_media.pipeline import PipelineAgent, build_parts, log_turn_latencies

__all__ = ["DemoAnswers", "DemoSettings", "RuleBasedLLM"]

_STATE_KEY = "demo"
#: Bundled plugins that provide the parts the demo may name.
_PROVIDERS = frozenset({"pocketsphinx", "espeak", "openai", "deepgram"})


@byova_media.hookimpl
def byova_configure(app: App) -> None:
    settings = DemoSettings.model_validate(app.settings("demo"))
    app.state[_STATE_KEY] = settings
    # `--plugin demo` alone must work: load the bundled providers of the parts it uses.
    for name in sorted({settings.stt, settings.tts, settings.llm} & _PROVIDERS):
        app.plugins.require(name, by="demo")
    choose_turn_taking(app)


@byova_media.hookimpl
def byova_register_llms(app: App, register: Callable[[str, LlmFactory], None]) -> None:
    def factory(options: Mapping[str, Any]) -> LanguageModel:
        return RuleBasedLLM(DemoAnswers.model_validate(dict(options)))

    register("demo", factory)


@byova_media.hookimpl
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    settings: DemoSettings = app.state[_STATE_KEY]
    parts = build_parts(app, settings)
    register(
        AgentSpec(
            virtual_agent_id="demo",
            factory=lambda call: PipelineAgent(parts, settings),
            name="Offline demo (pocketsphinx, eSpeak NG, rules)",
            is_default=True,
            attributes={"plugin": "demo", "llm": settings.llm},
        )
    )


@byova_media.hookimpl
def byova_turn_metrics(app: App, metrics: TurnMetrics) -> None:
    if "stt_final" in metrics.marks:  # a pipeline turn
        log_turn_latencies(metrics)
