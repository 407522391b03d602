"""The ``websocket`` plugin: BYOVA as the phone line into a voice bot behind a WebSocket.

One WebSocket per conversation to the configured backend, opened on SESSION_START,
reused across the call's RPCs and closed on hang-up. Two wire protocols: ``native``
(byova-media's JSON envelope) and ``twilio`` (Twilio Media Streams, spoken by Pipecat,
Vocode and most telephony bots). ``byova-media serve --plugin websocket`` with
``BYOVA_MEDIA_WEBSOCKET_URL`` set is all it takes; see ``docs/websocket-protocol.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import byova_media
from byova_media.agent import AgentSpec
from byova_media.app import App
from byova_media.audio.wav import WavError, wav_to_ulaw
from byova_media.config import ConfigError
from byova_websocket.agent import WebSocketAgent
from byova_websocket.metrics import WsMetrics
from byova_websocket.settings import PLUGIN_NAME, ConnectorSettings, load_connectors

__all__ = ["ConnectorSettings", "WebSocketAgent", "byova_configure", "byova_register_agents"]


@dataclass(frozen=True)
class _PluginState:
    connectors: list[ConnectorSettings]
    metrics: WsMetrics
    fallback_audio: dict[str, bytes]


def _fallback_audio(settings: ConnectorSettings) -> bytes:
    if settings.fallback_audio_file is None:
        return b""
    try:
        return wav_to_ulaw(settings.fallback_audio_file.read_bytes())
    except (OSError, WavError) as exc:
        raise ConfigError(
            f"[plugin.websocket] fallback_audio_file {settings.fallback_audio_file}: {exc}"
        ) from None


@byova_media.hookimpl
def byova_configure(app: App) -> None:
    """Validate the settings once per server (bad settings stop start-up)."""
    connectors = load_connectors(app.settings(PLUGIN_NAME))
    app.state[PLUGIN_NAME] = _PluginState(
        connectors=connectors,
        metrics=WsMetrics(app.metrics.registry),
        fallback_audio={c.virtual_agent_id: _fallback_audio(c) for c in connectors},
    )


@byova_media.hookimpl
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    """One virtual agent per configured backend (none when no URL is set)."""
    state: _PluginState = app.state[PLUGIN_NAME]
    for settings in state.connectors:
        register(
            AgentSpec(
                virtual_agent_id=settings.virtual_agent_id,
                factory=partial(
                    WebSocketAgent,
                    settings=settings,
                    metrics=state.metrics,
                    fallback_audio=state.fallback_audio[settings.virtual_agent_id],
                ),
                name=settings.name or f"WebSocket bot ({settings.protocol})",
                attributes={"protocol": settings.protocol},
            )
        )
