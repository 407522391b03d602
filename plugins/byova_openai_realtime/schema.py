"""The two Realtime session schemas we speak: GA and beta.

Built against OpenAI's Realtime API reference (WebSocket, ``wss://api.openai.com/v1/
realtime?model=...``). Both take G.711 μ-law both ways, so caller audio goes in and the
model's audio comes out with no resampling: ``audio/pcmu`` in the GA session object
(``session.audio.input.format`` / ``session.audio.output.format``), ``g711_ulaw`` in the
beta one (``input_audio_format`` / ``output_audio_format``). Server events differ in
name for the model's output (``response.output_audio.delta`` in GA,
``response.audio.delta`` in beta); both spellings are understood whatever the schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from byova_media.adapters import ToolSpec
from byova_openai_realtime.settings import RealtimeSettings

__all__ = ["AUDIO_DELTA", "AUDIO_TRANSCRIPT_DONE", "session_update"]

#: The model's audio, base64 μ-law in ``delta``.
AUDIO_DELTA = frozenset({"response.output_audio.delta", "response.audio.delta"})
#: The model's words for what it just said, in ``transcript``.
AUDIO_TRANSCRIPT_DONE = frozenset(
    {"response.output_audio_transcript.done", "response.audio_transcript.done"}
)

_SERVER_VAD: dict[str, Any] = {"type": "server_vad", "create_response": True}


def _tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "name": t.name,
            "description": t.description,
            "parameters": dict(t.parameters),
        }
        for t in tools
    ]


def _ga(s: RealtimeSettings, tools: Sequence[ToolSpec]) -> dict[str, Any]:
    audio_in: dict[str, Any] = {
        "format": {"type": "audio/pcmu"},
        "turn_detection": dict(_SERVER_VAD) if s.turn_detection == "server" else None,
    }
    if s.transcription_model:
        audio_in["transcription"] = {"model": s.transcription_model}
    return {
        "type": "realtime",
        "model": s.model,
        "output_modalities": ["audio"],
        "instructions": s.instructions,
        "audio": {
            "input": audio_in,
            "output": {"format": {"type": "audio/pcmu"}, "voice": s.voice},
        },
        "tools": _tools(tools),
        "tool_choice": "auto",
    }


def _beta(s: RealtimeSettings, tools: Sequence[ToolSpec]) -> dict[str, Any]:
    session: dict[str, Any] = {
        "modalities": ["audio", "text"],
        "instructions": s.instructions,
        "voice": s.voice,
        "input_audio_format": "g711_ulaw",
        "output_audio_format": "g711_ulaw",
        "turn_detection": dict(_SERVER_VAD) if s.turn_detection == "server" else None,
        "tools": _tools(tools),
        "tool_choice": "auto",
    }
    if s.transcription_model:
        session["input_audio_transcription"] = {"model": s.transcription_model}
    return session


def session_update(settings: RealtimeSettings, tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The ``session.update`` event that configures a new session."""
    build = _ga if settings.session_schema == "ga" else _beta
    return {"type": "session.update", "session": build(settings, tools)}
