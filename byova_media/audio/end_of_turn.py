"""End-of-turn models: a learned "has the caller finished?" decision beside the VAD.

The VAD's silence alone cannot tell a finished sentence from a pause inside one, so the
turn either ends late (a long silence) or cuts callers off (a short one). An
:class:`EndOfTurnModel` looks at the turn's audio when a short silence follows speech and
says how likely the caller is done. Models are slow (tens of ms) next to the 20 ms frame
path, so one :class:`EndOfTurnRunner` per server runs them on a worker thread, and each
audio stream holds one :class:`EndOfTurnCheck` that submits at most one question per pause
and that the frame path polls without ever waiting.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["EndOfTurnCheck", "EndOfTurnModel", "EndOfTurnRunner", "Verdict"]

log = logging.getLogger(__name__)

#: What a check knows about the current pause.
Verdict = Literal["complete", "incomplete", "pending", "none"]

#: Decisions queued at once across the server; beyond this a pause just waits for the
#: long silence (a queue that long would answer after the long silence anyway).
_MAX_QUEUED = 64


@runtime_checkable
class EndOfTurnModel(Protocol):
    """Scores the audio of a turn: the probability that the caller has finished it.

    ``predict`` runs on a worker thread, never on the event loop, and may be called from
    several threads at once; it gets 8 kHz PCM16, at most ``max_audio_ms`` of the turn's
    end, and resamples itself if it needs another rate. ``threshold`` is the probability
    from which the turn counts as complete.
    """

    max_audio_ms: int
    threshold: float

    def predict(self, pcm: npt.NDArray[np.int16], sample_rate: int) -> float:
        """Probability (0..1) that the turn in ``pcm`` is complete."""
        ...


class EndOfTurnRunner:
    """One server's end-of-turn model, run off the event loop on one worker thread.

    A question is dropped (and the turn falls back to the long silence) when it would
    start after its ``deadline`` or when too many are queued; a model error is logged
    with the conversation id and also counts as "no answer".
    """

    def __init__(
        self,
        model: EndOfTurnModel,
        name: str,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.name = name
        self.clock = clock  # injected so tests decide when a deadline has passed
        self.registry = registry
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"eot-{name}")
        self._lock = threading.Lock()
        self._queued = 0
        self.decisions = Counter(
            "byova_end_of_turn_decisions",
            "End-of-turn model answers, by verdict (complete, incomplete, error, late, busy)",
            ["verdict"],
            registry=registry,
        )
        self.seconds = Histogram(
            "byova_end_of_turn_seconds",
            "Time of one end-of-turn inference on the worker thread",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0),
            registry=registry,
        )

    def check(self, conversation_id: str) -> EndOfTurnCheck:
        """A per-stream handle; the engine makes one per audio RPC."""
        return EndOfTurnCheck(self, conversation_id)

    def submit(
        self, pcm: npt.NDArray[np.int16], conversation_id: str, deadline: float
    ) -> Future[bool | None] | None:
        """Queue one decision; ``None`` when the queue is full (the caller waits it out)."""
        with self._lock:
            if self._queued >= _MAX_QUEUED:
                self.decisions.labels(verdict="busy").inc()
                return None
            self._queued += 1
        future = self._executor.submit(self._decide, pcm, conversation_id, deadline)
        future.add_done_callback(self._unqueue)  # also runs for a question cancelled in the queue
        return future

    def _unqueue(self, _future: Future[bool | None]) -> None:
        with self._lock:
            self._queued -= 1

    def _decide(
        self, pcm: npt.NDArray[np.int16], conversation_id: str, deadline: float
    ) -> bool | None:
        try:
            if self.clock() > deadline:
                self.decisions.labels(verdict="late").inc()
                return None
            with self.seconds.time():
                probability = self.model.predict(pcm, 8000)
        except Exception:
            self.decisions.labels(verdict="error").inc()
            log.exception(
                "end-of-turn model %s failed; this pause waits for the long silence "
                "[conversation=%s]",
                self.name,
                conversation_id,
            )
            return None
        complete = probability >= self.model.threshold
        self.decisions.labels(verdict="complete" if complete else "incomplete").inc()
        return complete

    def close(self) -> None:
        """Drop queued questions and let the worker finish the one it runs."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class EndOfTurnCheck:
    """The end-of-turn question of one audio stream: at most one in flight.

    The frame path calls :meth:`keep` for every frame, :meth:`ask` once when the short
    silence is reached, :meth:`verdict` on the frames after it and :meth:`forget` when
    speech resumes or the turn ends. None of them blocks.
    """

    def __init__(self, runner: EndOfTurnRunner, conversation_id: str, frame_ms: int = 20) -> None:
        self._runner = runner
        self._conversation_id = conversation_id
        self._frames: collections.deque[npt.NDArray[np.int16]] = collections.deque(
            maxlen=max(1, runner.model.max_audio_ms // frame_ms)
        )
        self._future: Future[bool | None] | None = None
        self._asked = False

    def keep(self, frame: npt.NDArray[np.int16]) -> None:
        """Remember a frame of the stream (the model sees the newest ``max_audio_ms``)."""
        self._frames.append(frame)

    def trim(self, frames: int) -> None:
        """Keep only the newest ``frames`` frames: the turn starts there."""
        while len(self._frames) > frames:
            self._frames.popleft()

    def ask(self, wait_ms: int) -> None:
        """Ask whether the turn so far is complete; an answer after ``wait_ms`` is useless."""
        if self._asked or not self._frames:
            return
        self._asked = True
        deadline = self._runner.clock() + wait_ms / 1000.0
        pcm = np.concatenate(self._frames)
        self._future = self._runner.submit(pcm, self._conversation_id, deadline)

    def verdict(self) -> Verdict:
        """The answer to this pause's question, without waiting for it."""
        future = self._future
        if future is None:
            return "none"
        if not future.done():
            return "pending"
        if future.cancelled():
            return "none"
        answer = future.result()
        if answer is None:
            return "none"
        return "complete" if answer else "incomplete"

    def forget(self) -> None:
        """The pause is over (speech resumed, or the turn ended): drop its question."""
        if self._future is not None:
            self._future.cancel()
        self._future = None
        self._asked = False
