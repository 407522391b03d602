"""Splitting streamed text into speakable pieces, and mapping heard audio back to words."""

from __future__ import annotations

from byova_media.adapters import Message
from byova_media.pipeline import History, SentenceSplitter, SpokenPiece, heard_text


def _split(deltas: list[str], min_clause: int = 24) -> list[str]:
    splitter = SentenceSplitter(min_clause)
    pieces = [p for d in deltas for p in splitter.feed(d)]
    rest = splitter.flush()
    return [*pieces, rest] if rest else pieces


def test_sentences_come_out_as_soon_as_they_end() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hello there") == []
    assert splitter.feed(".") == []  # could still be "3.5"
    assert splitter.feed(" How are") == ["Hello there."]
    assert splitter.feed(" you? Fine") == ["How are you?"]
    assert splitter.flush() == "Fine"
    assert splitter.flush() == ""


def test_long_sentences_split_at_clauses_short_ones_do_not() -> None:
    text = "Yes, we are open. On weekdays we open at nine, and we close at five in the evening."
    assert _split(list(text)) == [
        "Yes, we are open.",
        "On weekdays we open at nine,",
        "and we close at five in the evening.",
    ]


def test_decimal_points_and_abbreviation_free_text_stay_whole() -> None:
    assert _split(["It costs 3.50 dollars today! Thanks"]) == [
        "It costs 3.50 dollars today!",
        "Thanks",
    ]


def test_heard_text_counts_whole_pieces_and_a_share_of_the_current_one() -> None:
    pieces = [
        SpokenPiece("One two three.", 0, 1000),
        SpokenPiece("Four five six seven.", 1000, 3000),
        SpokenPiece("Eight.", 3000, 3500),
    ]
    assert heard_text(pieces, 0) == ""
    assert heard_text(pieces, 999) == "One two"
    assert heard_text(pieces, 1000) == "One two three."
    assert heard_text(pieces, 2000) == "One two three. Four five"
    assert heard_text(pieces, 10_000) == "One two three. Four five six seven. Eight."


def test_history_keeps_the_limit_and_rewrites_the_last_answer() -> None:
    history = History("sys", max_messages=3)
    for n in range(3):
        history.add(Message("user", f"q{n}"))
        history.add(Message("assistant", f"a{n}"))
    assert [m.content for m in history.for_model()] == ["sys", "a1", "q2", "a2"]
    history.replace_last_assistant("a")
    assert history.messages[-1] == Message("assistant", "a")
    assert history.transcript() == "Agent: a1\nCaller: q2\nAgent: a"
