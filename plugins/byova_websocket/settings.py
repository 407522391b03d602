"""Validated settings of the ``websocket`` plugin, one :class:`ConnectorSettings` per agent.

The top-level ``[plugin.websocket]`` table (or ``BYOVA_MEDIA_WEBSOCKET_*`` variables)
describes the agent ``virtual_agent_id`` (``websocket`` by default) and gives defaults
to each ``[plugin.websocket.agents.<id>]`` section, which registers one more agent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from byova_media.config import ConfigError

__all__ = ["ConnectorSettings", "load_connectors", "redact_url"]

PLUGIN_NAME = "websocket"


class ConnectorSettings(BaseModel):
    """How one virtual agent reaches its WebSocket backend; units are in the field names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    virtual_agent_id: str = Field("websocket", min_length=1)
    name: str = ""
    url: str
    protocol: Literal["native", "twilio"] = "native"
    #: Extra handshake headers (e.g. an auth token); values are secrets and never logged.
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    #: Who ends the caller's turns: our VAD (``server``) or the backend. Default per protocol.
    turn_taking: Literal["server", "backend"] | None = None
    #: Native protocol: caller audio as binary frames or base64 in JSON.
    audio_transport: Literal["binary", "base64"] = "binary"
    barge_in: bool = True
    # --- network ---
    #: ``auto`` uses the standard proxy variables, ``none`` disables, else a proxy URL.
    proxy: str = "auto"
    ca_file: Path | None = None
    tls_verify: bool = True
    open_timeout_ms: int = Field(5000, ge=100)
    ping_interval_ms: int = Field(10_000, ge=0)
    ping_timeout_ms: int = Field(10_000, ge=0)
    reconnect_initial_ms: int = Field(200, ge=10)
    reconnect_max_ms: int = Field(5000, ge=10)
    #: Backend unreachable for longer than this: the call follows ``fallback``.
    down_limit_ms: int = Field(10_000, ge=0, le=25_000)
    fallback: Literal["transfer", "end"] = "transfer"
    fallback_text: str = "Sorry, our assistant is not available. Please hold."
    #: A WAV file played before the fallback event (Webex plays audio, not text).
    fallback_audio_file: Path | None = None
    # --- replies ---
    #: How long a turn's reply waits for the backend's first audio.
    reply_wait_ms: int = Field(5000, ge=0)
    #: A reply ends after this long without backend audio.
    reply_idle_ms: int = Field(800, ge=40)
    reply_max_ms: int = Field(120_000, ge=1000)
    #: End the reply when the backend sends a ``mark`` (it marks the end of its answer).
    end_reply_on_mark: bool = False
    # --- bounded buffers ---
    caller_queue_ms: int = Field(2000, ge=20, le=60_000)
    control_queue: int = Field(256, ge=8, le=65_536)
    playout_buffer_ms: int = Field(60_000, ge=1000, le=600_000)
    #: Caller audio may pause this long before silence frames keep the backend's clock going.
    silence_slack_ms: int = Field(60, ge=0, le=1000)
    #: Send those silence frames at all (off for backends that buffer or bill every frame).
    silence_frames: bool = True

    @field_validator("url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError("must be a ws:// or wss:// URL with a host")
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: str) -> str:
        if value not in ("auto", "none") and urlsplit(value).scheme not in (
            "http",
            "https",
            "socks5",
            "socks5h",
            "socks4",
            "socks4a",
        ):
            raise ValueError("must be 'auto', 'none' or an http(s):// or socks:// proxy URL")
        return value

    @property
    def backend_turns(self) -> bool:
        """Whether the backend owns turn-taking (the Twilio default)."""
        owner = self.turn_taking or ("backend" if self.protocol == "twilio" else "server")
        return owner == "backend"

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)


def redact_url(url: str) -> str:
    """The URL without credentials or query (which may carry tokens), for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _parse_headers(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parsed = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            raise ConfigError(
                "websocket headers must be a JSON object, e.g. "
                '{"Authorization": "Bearer ..."}; the value is not valid JSON'
            ) from None
        if not isinstance(parsed, dict):
            raise ConfigError("websocket headers must be a JSON object of header: value")
        return parsed
    return value


def _validate(data: Mapping[str, Any], where: str) -> ConnectorSettings:
    data = dict(data)
    if "headers" in data:
        data["headers"] = _parse_headers(data["headers"])
    try:
        return ConnectorSettings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if key.startswith("headers."):
                key = "headers"  # never echo a header value
            msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{key}: {msg}")
        raise ConfigError(f"invalid {where}: " + "; ".join(problems)) from None


def load_connectors(raw: Mapping[str, Any]) -> list[ConnectorSettings]:
    """Every configured agent; empty when no backend URL is set anywhere."""
    top = {k: v for k, v in raw.items() if k != "agents"}
    sections = raw.get("agents", {})
    if isinstance(sections, str):
        try:
            sections = json.loads(sections)
        except json.JSONDecodeError:
            raise ConfigError("websocket agents must be a JSON object of sections") from None
    if not isinstance(sections, Mapping):
        raise ConfigError("[plugin.websocket.agents] must be a table of agent sections")
    found: list[ConnectorSettings] = []
    if "url" in top:
        found.append(_validate(top, "[plugin.websocket]"))
    for agent_id, section in sections.items():
        if not isinstance(section, Mapping):
            raise ConfigError(f"[plugin.websocket.agents.{agent_id}] must be a table")
        merged = {**top, "virtual_agent_id": agent_id, **section}
        found.append(_validate(merged, f"[plugin.websocket.agents.{agent_id}]"))
    ids = [c.virtual_agent_id for c in found]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"websocket virtual agent ids configured twice: {', '.join(duplicates)}")
    return found
