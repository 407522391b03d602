"""Logging set-up: every line carries the conversation and Webex tracking ids of its call.

The ids live in context variables set by the servicer for the duration of an RPC, so
any code running for a call (including plugins) logs them without passing them around.

Ids and messages carry text chosen by callers (a ``conversation_id``, an agent id, an
utterance), so both formats escape it: a control character or line break in untrusted text
can never start a forged log line, and ids are cut to :data:`MAX_LOGGED_ID_CHARS`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Literal

__all__ = [
    "MAX_LOGGED_ID_CHARS",
    "RateLimitedLog",
    "call_context",
    "conversation_id_var",
    "escape_untrusted",
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


MAX_LOGGED_ID_CHARS = 128
"""Longest id written to a log line; longer ones are cut (a 20 KB id on every line of a call
would flood the log)."""

# C0 and C1 controls (newline, carriage return, escape sequences, NEL), DEL, the Unicode line
# and paragraph separators, and the bidirectional overrides that can make a line read
# differently from what it holds.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# What JSON leaves raw with ensure_ascii=False (it escapes C0 controls itself).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Continuation lines of a record (tracebacks) start with this, so none can pass for a record.
_CONTINUATION = "  | "


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def escape_untrusted(text: str) -> str:
    """``text`` on one line: control characters and line breaks become visible escapes."""
    return _UNSAFE.sub(_escape_char, text)


def _logged_id(value: object) -> str:
    text = str(value)
    if len(text) > MAX_LOGGED_ID_CHARS:
        text = f"{text[:MAX_LOGGED_ID_CHARS]}…({len(text)} chars)"
    return escape_untrusted(text)


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


class _TextFormatter(logging.Formatter):
    """One line per record with escaped message and ids; tracebacks indented under it."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s [conv=%(conversation_id)s "
            "trk=%(tracking_id)s] %(message)s"
        )
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        # A copy: other handlers (pytest's capture, a plugin's own) see the record unchanged.
        view = logging.makeLogRecord(record.__dict__)
        view.message = escape_untrusted(record.getMessage())
        view.conversation_id = _logged_id(getattr(record, "conversation_id", "-"))
        view.tracking_id = _logged_id(getattr(record, "tracking_id", "-"))
        view.asctime = self.formatTime(view, self.datefmt)
        lines = [self.formatMessage(view)]
        if record.exc_info:
            lines.append(self.formatException(record.exc_info))
        elif record.exc_text:
            lines.append(record.exc_text)
        if record.stack_info:
            lines.append(self.formatStack(record.stack_info))
        head, *rest = "\n".join(lines).split("\n")
        return "\n".join([head, *(_CONTINUATION + escape_untrusted(line) for line in rest)])


class _JsonFormatter(logging.Formatter):
    """One JSON object per line; JSON escapes C0 controls, we escape the rest."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": escape_untrusted(record.getMessage()),
            "conversation_id": _logged_id(getattr(record, "conversation_id", "-")),
            "tracking_id": _logged_id(getattr(record, "tracking_id", "-")),
        }
        if record.exc_info:
            out["exc"] = _UNSAFE_IN_JSON.sub(_escape_char, self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: Literal["text", "json"] = "text") -> None:
    """Configure the root logger once for the command line (tests keep pytest's)."""
    handler = logging.StreamHandler()
    handler.addFilter(_CallContextFilter())
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
