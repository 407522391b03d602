"""Settings of the ``openai_realtime`` agent (``[plugin.openai_realtime]``).

Set them in the table or as ``BYOVA_MEDIA_OPENAI_REALTIME_*`` variables. The agent
runs on the ``websocket`` plugin's connection, so :meth:`RealtimeSettings.connector`
turns them into the :class:`~byova_websocket.settings.ConnectorSettings` it needs.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from byova_media.adapter_settings import key_required, websocket_url
from byova_websocket.settings import ConnectorSettings

__all__ = ["PLUGIN_NAME", "RealtimeSettings"]

PLUGIN_NAME = "openai_realtime"


class RealtimeSettings(BaseModel):
    """One Realtime model behind the virtual agent ``virtual_agent_id``; units in names.

    ``api_key`` is secret: it goes only into the WebSocket handshake's ``Authorization``
    header, never into logs, reprs or error messages.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    virtual_agent_id: str = Field(PLUGIN_NAME, min_length=1)
    base_url: str = "wss://api.openai.com/v1/realtime"
    api_key: SecretStr | None = None
    #: Whether a missing key stops start-up (default: for api.openai.com only).
    require_api_key: bool | None = None
    model: str = "gpt-realtime"
    voice: str = "alloy"
    instructions: str = (
        "You are a helpful voice agent on a phone line. Answer in one or two short, plain "
        "sentences. When the caller asks for a person, call transfer_to_agent; when they "
        "are done, say goodbye and call end_call."
    )
    #: Who ends the caller's turns: our VAD (``ours``: START/END_OF_INPUT drive
    #: ``input_audio_buffer.commit`` and ``response.create``) or the API's server VAD.
    turn_detection: Literal["ours", "server"] = "ours"
    #: The session schema: ``ga`` (``audio/pcmu``) or ``beta`` (``g711_ulaw``, with the
    #: ``OpenAI-Beta: realtime=v1`` header) for servers that still speak the beta.
    session_schema: Literal["ga", "beta"] = "ga"
    #: Instructions for the model's first response, so it greets the caller; empty:
    #: the welcome is silent and the caller speaks first.
    greeting: str = "Greet the caller in one short sentence and ask how you can help."
    #: Model that transcribes the caller for the session transcript (empty: none).
    transcription_model: str = "gpt-4o-mini-transcribe"
    # --- connection and replies (see the websocket plugin for their meaning) ---
    open_timeout_ms: int = Field(5000, ge=100)
    down_limit_ms: int = Field(10_000, ge=0, le=25_000)
    fallback: Literal["transfer", "end"] = "transfer"
    reply_wait_ms: int = Field(8000, ge=0)
    reply_idle_ms: int = Field(800, ge=40)
    reconnect_initial_ms: int = Field(200, ge=10)

    @field_validator("base_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        return websocket_url(value)

    @property
    def key_required(self) -> bool:
        return key_required(self.require_api_key, self.base_url, "api.openai.com")

    @property
    def url(self) -> str:
        """The session URL: ``base_url`` with the model as a query parameter."""
        joiner = "&" if urlsplit(self.base_url).query else "?"
        return f"{self.base_url}{joiner}model={quote(self.model)}"

    def connector(self) -> ConnectorSettings:
        """The websocket connection that carries the session."""
        headers: dict[str, SecretStr] = {}
        if self.api_key is not None:
            headers["Authorization"] = SecretStr(f"Bearer {self.api_key.get_secret_value()}")
        if self.session_schema == "beta":
            headers["OpenAI-Beta"] = SecretStr("realtime=v1")
        server_vad = self.turn_detection == "server"
        return ConnectorSettings(
            virtual_agent_id=self.virtual_agent_id,
            name=f"OpenAI Realtime ({self.model})",
            url=self.url,
            headers=headers,
            turn_taking="backend" if server_vad else "server",
            # The model hears the whole call only when its VAD takes the turns; with ours,
            # each turn's audio is sent at its end, so no frames (nor silence) in between.
            silence_frames=server_vad,
            end_reply_on_mark=True,  # the protocol marks each response's end
            open_timeout_ms=self.open_timeout_ms,
            down_limit_ms=self.down_limit_ms,
            fallback=self.fallback,
            reply_wait_ms=self.reply_wait_ms,
            reply_idle_ms=self.reply_idle_ms,
            reconnect_initial_ms=self.reconnect_initial_ms,
        )
