"""The control plugin's validated, frozen settings and where each one comes from.

Settings come from the ``[plugin.control]`` table and ``BYOVA_MEDIA_CONTROL_*`` variables
(handed over by the core), plus the un-prefixed ``WEBEX_*`` variables the webex-byova SDK
uses; a key in the settings dict overrides the matching ``WEBEX_*`` variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_STORE_URL",
    "WEBEX_ENV",
    "ControlSettings",
    "ControlSettingsError",
]

DEFAULT_API_URL = "https://webexapis.com/v1"
DEFAULT_STORE_URL = "sqlite:///byova-control.sqlite3"

#: Un-prefixed variables (names used by the webex-byova SDK) and the setting each feeds.
WEBEX_ENV = {
    "WEBEX_INTEGRATION_CLIENT_ID": "integration_client_id",
    "WEBEX_INTEGRATION_CLIENT_SECRET": "integration_client_secret",
    "WEBEX_INTEGRATION_REDIRECT_URI": "integration_redirect_uri",
    "WEBEX_SA_CLIENT_ID": "sa_client_id",
    "WEBEX_SA_CLIENT_SECRET": "sa_client_secret",
}


class ControlSettingsError(ValueError):
    """A control setting is unknown or invalid; the message names it."""


class ControlSettings(BaseModel):
    """Everything the control plane needs; secrets are ``SecretStr`` so reprs redact them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    integration_client_id: str | None = None
    integration_client_secret: SecretStr | None = None
    integration_redirect_uri: str = "http://127.0.0.1:8765/oauth/callback"
    integration_scopes: tuple[str, ...] = (
        "spark:applications_token",
        "application:webhooks_write",
        "application:webhooks_read",
    )
    sa_client_id: str | None = None
    sa_client_secret: SecretStr | None = None
    api_url: str = DEFAULT_API_URL
    http_timeout_s: float = Field(15.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    #: Empty means the official list from ``byova_control.jws.DEFAULT_ISSUERS``.
    jws_issuers: tuple[str, ...] = ()
    #: The exact URL the JWS must name; setting it turns JWS verification on.
    datasource_url: str | None = None
    #: The registered ``wss://`` URL of a WebSocket data source; setting it turns JWS
    #: verification of WebSocket upgrades on (schema ``a38a10b7-…``), and has the
    #: ``authorized`` webhook ensure that data source (the renewer renews it like gRPC's).
    ws_datasource_url: str | None = None
    datasource_audience: str = "BYOVAGateway"
    datasource_subject: str = "callAudioData"
    datasource_token_lifetime_minutes: int = Field(1440, ge=1, le=1440)
    #: Renew this long before the data source's token expires.
    datasource_renew_before_s: float = Field(3600.0, ge=0)
    datasource_retry_s: float = Field(60.0, gt=0)
    renew_interval_s: float = Field(30.0, gt=0)
    #: Ensure the org's data source of each URL set (gRPC, WebSocket) when its Service App
    #: authorization arrives.
    datasource_on_authorize: bool = True
    #: Accept a JWS only for orgs whose tokens are in the store.
    jws_org_allowlist: bool = False
    webhook_secret: SecretStr | None = None
    store: str = DEFAULT_STORE_URL
    #: Fernet key encrypting secrets at rest (``Fernet.generate_key()``); none means plain.
    store_key: SecretStr | None = None

    @field_validator("jws_issuers", "integration_scopes", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(
                part.strip() for part in value.replace(" ", ",").split(",") if part.strip()
            )
        return value

    @field_validator("ws_datasource_url")
    @classmethod
    def _wss(cls, value: str | None) -> str | None:
        if value and not value.startswith("wss://"):
            raise ValueError("must be the wss:// URL registered for the WebSocket data source")
        return value or None

    @field_validator("api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @classmethod
    def load(cls, raw: Mapping[str, Any], environ: Mapping[str, str]) -> ControlSettings:
        """Validate ``raw`` (plugin settings) merged over the ``WEBEX_*`` variables."""
        data: dict[str, Any] = {
            field: environ[var] for var, field in WEBEX_ENV.items() if environ.get(var)
        }
        data.update(raw)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'control'}: "
                + ("unknown setting" if e["type"] == "extra_forbidden" else e["msg"])
                for e in exc.errors()
            )
            raise ControlSettingsError(f"invalid control plugin settings: {problems}") from None

    def require(self, *names: str) -> None:
        """Raise a helpful error when settings a command needs are missing."""
        missing = [n for n in names if getattr(self, n) in (None, "")]
        if missing:
            hints = {f: v for v, f in WEBEX_ENV.items()}
            named = ", ".join(hints.get(n, f"BYOVA_MEDIA_CONTROL_{n.upper()}") for n in missing)
            raise ControlSettingsError(f"missing control settings: set {named}")
