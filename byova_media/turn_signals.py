"""The signals that end (or open) a caller's turn, from the VAD or from the agent."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["TurnEvent", "TurnSignal"]


class TurnEvent(enum.Enum):
    """What happened to the caller's turn on the open audio stream."""

    SPEECH_START = "speech_start"
    """The caller started speaking (START_OF_INPUT goes out, a bargeable prompt stops)."""
    SPEECH_END = "speech_end"
    """The caller finished (END_OF_INPUT goes out, the agent answers)."""
    STREAM_END = "stream_end"
    """The client half-closed the audio stream."""


@dataclass(frozen=True)
class TurnSignal:
    """One turn boundary, with when it was seen (``time.monotonic()`` seconds).

    ``speech_end_at`` is when the caller actually stopped: the VAD reports the end of
    speech only after the end-of-turn silence, and latency is measured from the speech.
    ``error`` says why a stream ended early (a malformed message, an unsupported rate,
    an idle caller): the step then ends with that error instead of a reply.
    """

    event: TurnEvent
    at: float
    speech_end_at: float | None = None
    error: Exception | None = None
