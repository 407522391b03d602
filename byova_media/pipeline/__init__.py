"""The pipeline agent: a voice agent assembled from registered STT, LLM and TTS parts.

Build one with :func:`build_parts` (resolves names from :class:`PipelineSettings`
through the registration hooks) and :class:`PipelineAgent`::

    settings = PipelineSettings.model_validate(app.settings("my_plugin"))
    parts = build_parts(app, settings)
    register(AgentSpec("assistant", lambda call: PipelineAgent(parts, settings, tools)))
"""

from __future__ import annotations

from byova_media.pipeline.agent import (
    PipelineAgent,
    PipelineError,
    PipelineParts,
    build_parts,
    custom_event_note,
    dtmf_note,
    no_input_note,
    parse_dtmf_note,
)
from byova_media.pipeline.answer import AnswerRun
from byova_media.pipeline.history import History, SpokenPiece, heard_text
from byova_media.pipeline.metrics import TurnLatencies, log_turn_latencies
from byova_media.pipeline.sentences import SentenceSplitter
from byova_media.pipeline.settings import PipelineSettings
from byova_media.pipeline.tools import BUILTIN_TOOLS, Tool, ToolHandler

__all__ = [
    "BUILTIN_TOOLS",
    "AnswerRun",
    "History",
    "PipelineAgent",
    "PipelineError",
    "PipelineParts",
    "PipelineSettings",
    "SentenceSplitter",
    "SpokenPiece",
    "Tool",
    "ToolHandler",
    "TurnLatencies",
    "build_parts",
    "custom_event_note",
    "dtmf_note",
    "heard_text",
    "log_turn_latencies",
    "no_input_note",
    "parse_dtmf_note",
]
