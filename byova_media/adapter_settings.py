"""Rules shared by the settings of cloud adapters (OpenAI, Realtime, Deepgram).

A key is needed when the vendor's own host is configured; a self-hosted server that
speaks the same API may take none (``require_api_key`` decides when it is set).
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["key_required", "websocket_url"]


def key_required(require_api_key: bool | None, base_url: str, vendor_host: str) -> bool:
    """Whether an API key must be set: as configured, else when ``base_url`` is the vendor's."""
    if require_api_key is not None:
        return require_api_key
    return urlsplit(base_url).hostname == vendor_host


def websocket_url(value: str) -> str:
    """``value`` if it is a ``ws://`` or ``wss://`` URL with a host; ``ValueError`` otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError("must be a ws:// or wss:// URL with a host")
    return value
