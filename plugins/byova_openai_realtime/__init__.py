"""The ``openai_realtime`` plugin: a speech-to-speech agent on OpenAI's Realtime API.

Virtual agent ``openai_realtime``; settings in ``[plugin.openai_realtime]`` or
``BYOVA_MEDIA_OPENAI_REALTIME_*`` (see :class:`RealtimeSettings` and
``docs/cloud-speech.md``). One Realtime WebSocket session per call:

=========================  =========================================================
Webex                      Realtime session
=========================  =========================================================
SESSION_START              connect, ``session.update``, greeting ``response.create``
caller turn (our VAD)      ``input_audio_buffer.append`` + ``commit`` + ``response.create``
caller turn (server VAD)   every frame appended; ``speech_started``/``stopped`` →
                           START/END_OF_INPUT
model audio                CHUNKs of the turn's reply (μ-law both ways, no resampling)
barge-in                   ``response.cancel`` + ``conversation.item.truncate`` at the
                           heard ms
``transfer_to_agent``      TRANSFER_TO_AGENT (the call's arguments as metadata)
``end_call``               SESSION_END
DTMF / no input / events   a user text item + ``response.create``
hang-up                    the socket closes
=========================  =========================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from pydantic import ValidationError

import byova_media
from byova_media.adapter_metrics import AdapterMetrics, adapter_metrics
from byova_media.agent import AgentSpec
from byova_media.app import App
from byova_media.config import ConfigError
from byova_openai_realtime.agent import RealtimeAgent
from byova_openai_realtime.protocol import RealtimeProtocol
from byova_openai_realtime.settings import PLUGIN_NAME, RealtimeSettings
from byova_websocket.metrics import WsMetrics

__all__ = ["RealtimeAgent", "RealtimeProtocol", "RealtimeSettings"]


@dataclass(frozen=True)
class _PluginState:
    settings: RealtimeSettings
    metrics: AdapterMetrics
    ws_metrics: WsMetrics | None


def load_settings(raw: dict[str, object]) -> RealtimeSettings:
    """Validated settings; a bad value or a missing key is a start-up error that says why."""
    try:
        settings = RealtimeSettings.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: "
            + ("unknown setting" if e["type"] == "extra_forbidden" else e["msg"])
            for e in exc.errors()
        ]
        raise ConfigError(f"invalid [plugin.{PLUGIN_NAME}]: " + "; ".join(problems)) from None
    if settings.key_required and settings.api_key is None:
        raise ConfigError(
            f"the {PLUGIN_NAME} agent at {settings.base_url} needs an API key: set "
            "BYOVA_MEDIA_OPENAI_REALTIME_API_KEY or api_key in [plugin.openai_realtime]"
        )
    return settings


@byova_media.hookimpl
def byova_configure(app: App) -> None:
    settings = load_settings(app.settings(PLUGIN_NAME))
    # The websocket plugin's counters, when it is loaded too; else ours are enough.
    ws_state = app.state.get("websocket")
    app.state[PLUGIN_NAME] = _PluginState(
        settings, adapter_metrics(app), getattr(ws_state, "metrics", None)
    )


@byova_media.hookimpl
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    state: _PluginState = app.state[PLUGIN_NAME]
    s = state.settings
    register(
        AgentSpec(
            virtual_agent_id=s.virtual_agent_id,
            factory=partial(
                RealtimeAgent, settings=s, metrics=state.metrics, ws_metrics=state.ws_metrics
            ),
            name=f"OpenAI Realtime ({s.model})",
            attributes={"plugin": PLUGIN_NAME, "turn_detection": s.turn_detection},
        )
    )
