"""One validated, frozen configuration fed by a TOML file, ``BYOVA_MEDIA_*`` variables and flags.

Precedence, lowest first: defaults, the config file, the environment, command-line flags.
Unknown keys are errors everywhere. Settings of a plugin live in the file's
``[plugin.<name>]`` table and in ``BYOVA_MEDIA_<NAME>_<KEY>`` variables; the plugin
validates them itself (see :meth:`Config.plugin_settings`).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = ["ENV_PREFIX", "Config", "ConfigError"]

ENV_PREFIX = "BYOVA_MEDIA_"
_MIB = 2**20


class ConfigError(ValueError):
    """A setting is unknown or invalid; the message names it and says what is allowed."""


class Config(BaseModel):
    """Settings of one server; units are in the field names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- network ---
    host: str = "0.0.0.0"
    port: int = Field(8086, ge=0, le=65535)
    http_port: int | None = Field(None, ge=0, le=65535)
    http_host: str | None = None
    #: HTTP port deadlines: a request's head, then its body, must arrive within these.
    http_header_timeout_s: float = Field(10.0, gt=0)
    http_body_timeout_s: float = Field(30.0, gt=0)
    max_message_bytes: int = Field(16 * _MIB, ge=4 * _MIB, le=512 * _MIB)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    drain_timeout_s: float = Field(30.0, ge=0)
    # --- BYOVA over WebSocket (off unless ws_port is set; TLS from the tls_* settings) ---
    ws_port: int | None = Field(None, ge=0, le=65535)
    #: Serve ws:// without TLS on a non-loopback host (behind a TLS-terminating proxy).
    ws_allow_plain: bool = False
    ws_max_frame_bytes: int = Field(1 * _MIB, ge=64 * 1024, le=64 * _MIB)
    ws_send_queue_bytes: int = Field(1 * _MIB, ge=64 * 1024)
    ws_first_message_timeout_s: float = Field(10.0, gt=0)
    ws_idle_timeout_s: float = Field(300.0, gt=0)
    #: Control-ping interval; a pong missing for half of it closes the socket (0: off).
    ws_heartbeat_s: float = Field(30.0, ge=0)
    ws_close_timeout_s: float = Field(5.0, gt=0)
    half_close_grace_ms: int = Field(1000, ge=0)
    #: An RPC that sends no first message in this time ends with DEADLINE_EXCEEDED.
    first_message_timeout_ms: int = Field(10_000, ge=100)
    #: An audio RPC whose caller sends nothing for this long, before its turn ended, too.
    stream_idle_timeout_ms: int = Field(10_000, ge=100)
    # --- plugins ---
    plugins: tuple[str, ...] = ()
    disable_plugins: tuple[str, ...] = ()
    plugin: dict[str, dict[str, Any]] = Field(default_factory=dict)
    default_virtual_agent: str | None = None
    # --- conversations ---
    max_conversations: int = Field(10_000, ge=1)
    #: Refuse new calls while the event loop lags or the process CPU is above these (off: None).
    max_loop_lag_ms: float | None = Field(None, gt=0)
    max_cpu_percent: float | None = Field(None, gt=0)
    #: Warn, naming the agent, when plugin code blocks the event loop this long (off: None).
    loop_stall_warn_ms: float | None = Field(500.0, gt=0)
    conversation_ttl_s: float = Field(900.0, gt=0)
    reply_mode: Literal["chunk", "wav"] = "chunk"
    chunk_bytes: int = Field(8000, ge=100, le=65536)
    first_chunk_bytes: int = Field(1600, ge=100, le=65536)
    chunk_lead_ms: int = Field(3000, ge=0)
    agent_timeout_s: float = Field(30.0, gt=0)
    on_plugin_error: Literal["transfer", "end"] = "transfer"
    plugin_error_text: str = "Sorry, something went wrong. Please hold."
    # --- caller audio ---
    min_audio_bytes: int = Field(16, ge=0)
    vad: str = "energy"
    vad_threshold: float = Field(0.5, gt=0, lt=1)
    speech_start_ms: int = Field(100, ge=20)
    speech_end_silence_ms: int = Field(700, ge=100)
    #: End-of-turn model (``none``: the VAD's silence alone ends the turn).
    turn_detector: str = "none"
    #: Silence after which the end-of-turn model is asked; "complete" ends the turn there.
    turn_detector_silence_ms: int = Field(200, ge=20)
    pre_roll_ms: int = Field(200, ge=0)
    max_utterance_ms: int = Field(30_000, ge=1000)
    jitter_floor_ms: int = Field(20, ge=0)
    jitter_ceiling_ms: int = Field(200, ge=20)
    # --- what Webex is told for the next input (InputHandlingConfig) ---
    dtmf_input_length: int = Field(1, ge=1, le=64)
    dtmf_inter_digit_timeout_ms: int = Field(3000, ge=0)
    dtmf_terminator: str | None = "#"
    max_speech_timeout_ms: int = Field(30_000, ge=0)
    complete_timeout_ms: int = Field(5000, ge=0)
    incomplete_timeout_ms: int = Field(5000, ge=0)
    no_input_timeout_ms: int = Field(10_000, ge=0)
    # --- Webex compatibility: each open protocol question (docs/webex-compatibility.md) ---
    #: Response type of standalone START_OF_INPUT/END_OF_INPUT (Cisco's samples: FINAL).
    boundary_response_type: Literal["final", "chunk", "partial"] = "final"
    #: Add a ``fact`` chunk to WAV-mode prompts (Cisco's gateway sends a 44-byte header).
    wav_fact_chunk: bool = False
    # --- cluster mode (off while cluster_redis_url is unset; see docs/cluster.md) ---
    cluster_redis_url: str | None = None
    #: HOST:PORT at which peers reach this instance's gRPC port (default: host and bound port).
    advertise_address: str | None = None
    cluster_lease_s: float = Field(10.0, ge=0.5, le=300)
    #: Port of the peer link (forwarded RPCs), on ``host``; 0 picks a free one. Peers find
    #: it in Redis, at the host of ``advertise_address``.
    cluster_peer_port: int = Field(0, ge=0, le=65535)
    cluster_secret: SecretStr | None = None
    # --- call inspector and playground (off: nothing recorded, no routes) ---
    inspector: bool = False
    inspector_calls: int = Field(50, ge=1, le=10_000)
    record_audio: bool = False
    playground: bool = False
    #: Serve the playground on a non-loopback HTTP host (anyone reaching it can place calls).
    playground_allow_remote: bool = False
    # --- logs ---
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("dtmf_terminator")
    @classmethod
    def _one_key(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value not in "0123456789*#ABCD"):
            raise ValueError("must be one DTMF key (0-9, *, #, A-D) or empty")
        return value or None

    @model_validator(mode="after")
    def _whole_tls(self) -> Config:
        """Half a TLS configuration must not be served as plaintext: name what is missing."""
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            missing = "tls_key_file" if self.tls_key_file is None else "tls_cert_file"
            given = "tls_cert_file" if missing == "tls_key_file" else "tls_key_file"
            raise ValueError(f"{given} is set but {missing} is not; TLS needs both")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError(
                "tls_client_ca_file (mTLS) needs tls_cert_file and tls_key_file as well"
            )
        plain_ws = self.ws_port is not None and self.tls_cert_file is None
        if plain_ws and not (_is_loopback(self.host) or self.ws_allow_plain):
            raise ValueError(
                f"ws_port on host {self.host} needs TLS (tls_cert_file, tls_key_file); "
                "set ws_allow_plain only behind a proxy that terminates TLS"
            )
        return self

    @field_validator("advertise_address")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        host, _, port = (value or "").rpartition(":")
        if value is not None and not (host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError("must be HOST:PORT, the address peers use to reach this instance")
        return value

    @model_validator(mode="after")
    def _cluster_needs_a_secret(self) -> Config:
        if self.cluster_redis_url and (
            self.cluster_secret is None or len(self.cluster_secret.get_secret_value()) < 16
        ):
            raise ValueError(
                "cluster mode (cluster_redis_url) needs cluster_secret: set "
                "BYOVA_MEDIA_CLUSTER_SECRET to the same random string of 16+ characters on "
                "every instance"
            )
        return self

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """The raw settings of plugin ``name`` (file table merged with environment)."""
        return dict(self.plugin.get(name, {}))

    @classmethod
    def load(
        cls,
        *,
        file: Path | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        plugin_names: Iterable[str] = (),
    ) -> Config:
        """Build the configuration from its sources; raise :class:`ConfigError` on any problem.

        ``plugin_names`` are the plugins whose ``BYOVA_MEDIA_<NAME>_*`` variables are
        routed to their settings instead of being rejected as unknown.
        """
        data: dict[str, Any] = {}
        if file is not None:
            data.update(_read_file(file))
        plugin_tables: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in data.pop("plugin", {}).items()
        }
        data.update(_from_env(env or {}, plugin_names, plugin_tables))
        flags = {k: v for k, v in (overrides or {}).items() if v is not None}
        for name, table in dict(flags.pop("plugin", {})).items():
            plugin_tables.setdefault(name, {}).update(table)
        data.update(flags)
        data["plugin"] = plugin_tables
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None


def _is_loopback(host: str) -> bool:
    return host in ("::1", "localhost") or host.startswith("127.")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _from_env(
    env: Mapping[str, str], plugin_names: Iterable[str], plugin_tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    fields = set(Config.model_fields) - {"plugin"}
    plugin_prefixes = sorted(((f"{n.upper()}_", n) for n in plugin_names), key=lambda p: -len(p[0]))
    out: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :]
        if name.lower() in fields:
            out[name.lower()] = _env_value(name.lower(), raw)
            continue
        for prefix, plugin in plugin_prefixes:
            if name.startswith(prefix):
                plugin_tables.setdefault(plugin, {})[name[len(prefix) :].lower()] = raw
                break
        else:
            raise ConfigError(
                f"unknown setting {key}: not a core setting and no loaded plugin is named "
                f"after its prefix (known plugins: {', '.join(sorted(plugin_names)) or 'none'})"
            )
    return out


def _env_value(field: str, raw: str) -> Any:
    """Parse list settings from commas; everything else is validated by pydantic."""
    if field in {"plugins", "disable_plugins"}:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if raw.startswith(("[", "{")):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown setting {where!r}")
        elif not err["loc"] and err["type"] == "value_error":
            parts.append(str(err["ctx"]["error"]))  # a rule across settings names them itself
        else:
            parts.append(f"{where}: {err['msg']}")
    return "invalid configuration: " + "; ".join(parts)
