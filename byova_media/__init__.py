"""byova-media: put any voice agent behind Webex Contact Center's BYOVA gRPC interface.

Everything an agent author needs is importable from here::

    import byova_media
    from byova_media import Agent, AgentSpec, Call, Reply, Transfer

The audio helpers most agents start with (``tone``, ``pcm_to_ulaw``) are here too; the
rest of the audio toolbox is ``byova_media.audio``.
"""

from __future__ import annotations

from byova_media._markers import PROJECT_NAME, __version__, hookimpl
from byova_media.agent import (
    Agent,
    AgentSpec,
    BargeIn,
    CustomEvent,
    EndSession,
    InputHandling,
    InputMode,
    NoMatch,
    OutputEvent,
    Prompt,
    Reply,
    SessionStart,
    Transfer,
    TurnMetrics,
    Utterance,
)
from byova_media.app import App
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.formats import ULAW_8K, AudioFormat
from byova_media.audio.tones import tone
from byova_media.call import Call

__all__ = [
    "PROJECT_NAME",
    "ULAW_8K",
    "Agent",
    "AgentSpec",
    "App",
    "AudioFormat",
    "BargeIn",
    "Call",
    "CustomEvent",
    "EndSession",
    "InputHandling",
    "InputMode",
    "NoMatch",
    "OutputEvent",
    "Prompt",
    "Reply",
    "SessionStart",
    "Transfer",
    "TurnMetrics",
    "Utterance",
    "__version__",
    "hookimpl",
    "pcm_to_ulaw",
    "tone",
]
