"""The log formatters escape untrusted text: one record is always one line (plus its traceback)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Literal

import pytest

from byova_media.logs import MAX_LOGGED_ID_CHARS, escape_untrusted, setup_logging

Configure = Callable[[Literal["text", "json"]], io.StringIO]
FORGED = "x\n2099-01-01 00:00:00,000 CRITICAL root [conv=- trk=-] forged"


@pytest.fixture
def configure() -> Iterator[Configure]:
    """Run ``setup_logging`` for real, writing to a buffer; restore pytest's logging after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()

    def apply(fmt: Literal["text", "json"]) -> io.StringIO:
        setup_logging("INFO", fmt)
        for handler in root.handlers:
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(buffer)
        return buffer

    try:
        yield apply
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@pytest.mark.parametrize(
    "char", ["\n", "\r", "\x1b", "\x00", "\x7f", "\x85", "\u2028", "\u2029", "\u202e"]
)
def test_every_line_breaking_or_control_character_is_escaped(char: str) -> None:
    escaped = escape_untrusted(f"a{char}b")
    assert char not in escaped and escaped.startswith("a\\") and escaped.endswith("b")
    assert len(escaped.splitlines()) == 1


def test_printable_text_is_left_alone() -> None:
    text = "Grüße, 你好 — conv=abc-123 \\n stays as typed"
    assert escape_untrusted(text) == text


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_untrusted_ids_and_messages_cannot_forge_a_record(
    configure: Configure, fmt: Literal["text", "json"]
) -> None:
    out = configure(fmt)
    logging.getLogger("t").warning("said %s", FORGED, extra={"conversation_id": FORGED})
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert "2099-01-01" in lines[0] and not lines[0].startswith("2099")
    if fmt == "json":
        record = json.loads(lines[0])
        assert "\n" not in record["msg"] and "\n" not in record["conversation_id"]


def test_traceback_lines_are_marked_as_continuations(configure: Configure) -> None:
    out = configure("text")
    try:
        raise ValueError(FORGED)
    except ValueError:
        logging.getLogger("t").exception("failed")
    first, *rest = out.getvalue().splitlines()
    assert "failed" in first and rest
    assert all(line.startswith("  | ") for line in rest)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_huge_ids_are_cut(configure: Configure, fmt: Literal["text", "json"]) -> None:
    out = configure(fmt)
    huge = "c" * 20_000
    logging.getLogger("t").warning("hello", extra={"conversation_id": huge})
    line = out.getvalue()
    assert "c" * MAX_LOGGED_ID_CHARS in line and "c" * (MAX_LOGGED_ID_CHARS + 1) not in line
    assert "20000 chars" in line


def test_other_handlers_see_the_record_unchanged(
    configure: Configure,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure("text")
    logging.getLogger().addHandler(caplog.handler)
    logging.getLogger("t").warning("a\nb")
    assert caplog.records[-1].getMessage() == "a\nb"
