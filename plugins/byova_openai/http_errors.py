"""What the OpenAI-compatible HTTP endpoints say when they fail, read the same way everywhere.

Error bodies follow ``{"error": {"message": ...}}``; 408/409/429 and 5xx are worth a
retry (honouring ``Retry-After``), other 4xx are not (a bad key stays bad).
"""

from __future__ import annotations

import json

import httpx

from byova_media.adapter_metrics import ErrorKind

__all__ = ["RETRY_STATUS", "error_kind", "error_text", "retry_after"]

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
#: How much of an error body goes into an exception message.
ERROR_SNIPPET = 200


def retry_after(response: httpx.Response) -> float | None:
    """The server's ``Retry-After`` in seconds, when it gave one as a number."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_text(body: bytes) -> str:
    """The error message of a failed response (never more than a snippet)."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode("utf-8", "replace")
    return str(message)[:ERROR_SNIPPET]


def error_kind(status: int) -> ErrorKind:
    """The metric label of an HTTP failure."""
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status == 408:
        return "timeout"
    return "client_error"
