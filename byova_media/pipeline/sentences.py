"""Cutting streamed LLM text into pieces worth synthesising on their own.

Synthesising sentence by sentence (and long sentences clause by clause) lets the first
audio go out before the model has finished its answer; each piece is also the unit
that a barge-in maps back to text.
"""

from __future__ import annotations

import re

__all__ = ["SentenceSplitter"]

# A sentence end is . ! ? (optionally followed by closing quotes/brackets) then space.
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—]\s")


class SentenceSplitter:
    """Feed text deltas, get complete pieces; :meth:`flush` returns the rest at the end."""

    def __init__(self, min_clause_chars: int = 24) -> None:
        self._buffer = ""
        self._min_clause = min_clause_chars

    def feed(self, delta: str) -> list[str]:
        """Add ``delta``; return the pieces it completed, in order."""
        self._buffer += delta
        pieces: list[str] = []
        while True:
            cut = self._cut()
            if cut is None:
                return pieces
            piece, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if piece:
                pieces.append(piece)

    def _cut(self) -> int | None:
        sentence = _SENTENCE_END.search(self._buffer)
        if sentence is not None:
            return sentence.end()
        for clause in _CLAUSE_END.finditer(self._buffer):
            if clause.start() + 1 >= self._min_clause:
                return clause.end()
        return None

    def flush(self) -> str:
        """The text left after the last boundary (the end of the answer)."""
        rest, self._buffer = self._buffer.strip(), ""
        return rest
