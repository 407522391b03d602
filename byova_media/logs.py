"""Logging set-up: every line carries the conversation and Webex tracking ids of its call.

The ids live in context variables set by the servicer for the duration of an RPC, so
any code running for a call (including plugins) logs them without passing them around.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Iterator
from typing import Literal

__all__ = [
    "RateLimitedLog",
    "call_context",
    "conversation_id_var",
    "setup_logging",
    "tracking_id_var",
]

conversation_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "byova_conversation_id", default="-"
)
tracking_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "byova_tracking_id", default="-"
)


@contextlib.contextmanager
def call_context(conversation_id: str, tracking_id: str = "") -> Iterator[None]:
    """Log as one call's code outside its RPCs (e.g. when the idle sweeper ends it)."""
    conv_token = conversation_id_var.set(conversation_id)
    track_token = tracking_id_var.set(tracking_id or "-")
    try:
        yield
    finally:
        tracking_id_var.reset(track_token)
        conversation_id_var.reset(conv_token)


class RateLimitedLog:
    """At most one line per key per interval, so a flood of bad requests cannot flood the log.

    The next line that gets through says how many were held back meanwhile.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: object) -> bool:
        """Log ``message`` unless ``key`` logged within the interval; return whether it did."""
        now = time.monotonic()
        if now - self._last.get(key, -self.interval_s) < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            message += " (%d similar held back in the last %.0f s)"
            args = (*args, held, self.interval_s)
        self.logger.warning(message, *args)
        return True


class _CallContextFilter(logging.Filter):
    """Copies the call's ids from the context onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "conversation_id"):
            record.conversation_id = conversation_id_var.get()
        if not hasattr(record, "tracking_id"):
            record.tracking_id = tracking_id_var.get()
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "conversation_id": getattr(record, "conversation_id", "-"),
            "tracking_id": getattr(record, "tracking_id", "-"),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: Literal["text", "json"] = "text") -> None:
    """Configure the root logger once for the command line (tests keep pytest's)."""
    handler = logging.StreamHandler()
    handler.addFilter(_CallContextFilter())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        formatter = logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [conv=%(conversation_id)s "
            "trk=%(tracking_id)s] %(message)s"
        )
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
