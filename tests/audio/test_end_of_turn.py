"""End-of-turn decisions in the turn detector: asked once per pause, never waited for.

The models here are fakes with a scripted answer; the runner and the detector are real.
Frames are fed one by one and the test waits for the worker's answer between frames
where it must (a synchronisation, not a timing assertion).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from byova_media.audio.end_of_turn import EndOfTurnCheck, EndOfTurnModel, EndOfTurnRunner
from byova_media.audio.vad import TurnDetector, TurnEvent

FRAME = 160
LOUD = np.full(FRAME, 8000, np.int16)
QUIET = np.zeros(FRAME, np.int16)


class LevelVAD:
    """Speech when the frame is loud: a VAD whose answers the test controls exactly."""

    sample_rate = 8000

    def speech_probability(self, frame: np.ndarray) -> float:
        return 1.0 if int(np.abs(frame).max()) > 1000 else 0.0


class ScriptedModel:
    """Answers from a list of probabilities; records the audio it was asked about."""

    max_audio_ms = 8000
    threshold = 0.5

    def __init__(self, *answers: float, fail: bool = False) -> None:
        self.answers = list(answers)
        self.fail = fail
        self.asked: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def predict(self, pcm: np.ndarray, sample_rate: int) -> float:
        assert sample_rate == 8000
        self.release.wait(10)
        self.asked.append(len(pcm))
        if self.fail:
            raise RuntimeError("model exploded")
        return self.answers.pop(0)


@pytest.fixture
def runner_of() -> Iterator[list[EndOfTurnRunner]]:
    runners: list[EndOfTurnRunner] = []
    yield runners
    for runner in runners:
        runner.close()


def make(
    runners: list[EndOfTurnRunner], model: EndOfTurnModel
) -> tuple[TurnDetector, EndOfTurnCheck, EndOfTurnRunner]:
    # A frozen clock: however slow the machine, no question misses its deadline here.
    runner = EndOfTurnRunner(model, "fake", CollectorRegistry(), clock=lambda: 0.0)
    runners.append(runner)
    check = runner.check("conv-1")
    detector = TurnDetector(
        LevelVAD(),
        start_ms=100,
        end_silence_ms=700,
        pre_roll_ms=0,
        end_of_turn=check,
        short_silence_ms=200,
    )
    return detector, check, runner


def decided(runner: EndOfTurnRunner, verdict: str) -> float | None:
    return runner.registry.get_sample_value(
        "byova_end_of_turn_decisions_total", {"verdict": verdict}
    )


def settle(check: EndOfTurnCheck) -> None:
    """Wait (bounded) until the worker answered the pending question."""
    for _ in range(1000):
        if check.verdict() != "pending":
            return
        time.sleep(0.005)
    raise AssertionError("the end-of-turn worker never answered")


def feed(detector: TurnDetector, frames: list[np.ndarray]) -> list[tuple[int, TurnEvent]]:
    """Process frames; return (position in ``frames``, event) for every event."""
    return [(n, e) for n, f in enumerate(frames) if (e := detector.process(f)) is not None]


def pause_until_answer(
    detector: TurnDetector, check: EndOfTurnCheck, max_frames: int
) -> tuple[int, TurnEvent | None]:
    """Feed silence; after the question is asked, wait for its answer once. Return the
    number of silent frames fed and the end event, if one came."""
    for n in range(1, max_frames + 1):
        event = detector.process(QUIET)
        if event is not None:
            return n, event
        if check.verdict() == "pending":
            settle(check)
    return max_frames, None


def test_runner_satisfies_the_protocol() -> None:
    assert isinstance(ScriptedModel(0.9), EndOfTurnModel)


def test_complete_ends_the_turn_after_the_short_silence(
    runner_of: list[EndOfTurnRunner],
) -> None:
    model = ScriptedModel(0.9)
    detector, check, _ = make(runner_of, model)
    assert [e.kind for _, e in feed(detector, [LOUD] * 50)] == ["start"]
    silent, event = pause_until_answer(detector, check, 60)
    assert event is not None and event.kind == "end"
    assert event.frame_index == 50  # one past the last speech frame, as with the long silence
    assert 10 < silent < 35  # after the 200 ms question, well before the 700 ms hangover
    assert len(model.asked) == 1
    assert model.asked[0] == 50 * FRAME + 10 * FRAME  # the turn and the 200 ms of silence


def test_incomplete_waits_for_the_long_silence(runner_of: list[EndOfTurnRunner]) -> None:
    model = ScriptedModel(0.1)
    detector, check, _ = make(runner_of, model)
    feed(detector, [LOUD] * 50)
    silent, event = pause_until_answer(detector, check, 60)
    assert event is not None and event.kind == "end"
    assert silent == 35  # exactly the 700 ms hangover
    assert len(model.asked) == 1  # asked once per pause, not again as the silence grows


def test_a_failing_model_falls_back_to_the_long_silence(
    runner_of: list[EndOfTurnRunner], caplog: pytest.LogCaptureFixture
) -> None:
    detector, check, runner = make(runner_of, ScriptedModel(fail=True))
    feed(detector, [LOUD] * 50)
    silent, event = pause_until_answer(detector, check, 60)
    assert event is not None and silent == 35
    errors = [r for r in caplog.records if "end-of-turn model fake failed" in r.getMessage()]
    assert len(errors) == 1 and "conversation=conv-1" in errors[0].getMessage()
    assert decided(runner, "error") == 1


def test_each_pause_asks_again_and_speech_drops_the_old_question(
    runner_of: list[EndOfTurnRunner],
) -> None:
    model = ScriptedModel(0.1, 0.9)
    detector, check, _ = make(runner_of, model)
    feed(detector, [LOUD] * 30)
    # A 300 ms pause inside the turn: asked, answered "incomplete", then speech resumes.
    for _ in range(15):
        assert detector.process(QUIET) is None
        if check.verdict() == "pending":
            settle(check)
    assert check.verdict() == "incomplete"
    assert feed(detector, [LOUD] * 20) == []
    assert check.verdict() == "none"
    silent, event = pause_until_answer(detector, check, 60)
    assert event is not None and event.frame_index == 65 and silent < 35
    assert len(model.asked) == 2


def test_a_question_answered_after_the_long_silence_is_dropped(
    runner_of: list[EndOfTurnRunner],
) -> None:
    model = ScriptedModel(0.9)
    model.release.clear()  # the worker is stuck until the turn has ended on its own
    detector, check, _ = make(runner_of, model)
    feed(detector, [LOUD] * 50)
    events = feed(detector, [QUIET] * 35)
    assert [(n, e.kind) for n, e in events] == [(34, "end")]
    assert check.verdict() == "none"
    model.release.set()
    assert detector.process(QUIET) is None


def test_a_question_that_waited_past_its_deadline_is_not_run(
    runner_of: list[EndOfTurnRunner],
) -> None:
    model = ScriptedModel(0.9, 0.9)
    model.release.clear()
    now = [0.0]
    runner = EndOfTurnRunner(model, "fake", CollectorRegistry(), clock=lambda: now[0])
    runner_of.append(runner)
    first, second = runner.check("a"), runner.check("b")
    for check in (first, second):
        check.keep(LOUD)
    first.ask(wait_ms=10_000)
    second.ask(wait_ms=500)
    now[0] = 1.0  # the second waited a second behind the first: past its deadline
    model.release.set()
    settle(first)
    settle(second)
    assert (first.verdict(), second.verdict()) == ("complete", "none")
    assert len(model.asked) == 1
    assert decided(runner, "late") == 1


def test_no_model_keeps_the_plain_hangover() -> None:
    detector = TurnDetector(LevelVAD(), start_ms=100, end_silence_ms=700, pre_roll_ms=0)
    events = feed(detector, [LOUD] * 50 + [QUIET] * 40)
    assert [(n, e.kind) for n, e in events] == [(4, "start"), (84, "end")]


def test_questions_dropped_while_queued_free_their_place(
    runner_of: list[EndOfTurnRunner],
) -> None:
    model = ScriptedModel(0.9, 0.9)
    model.release.clear()
    runner = EndOfTurnRunner(model, "fake", CollectorRegistry(), clock=lambda: 0.0)
    runner_of.append(runner)
    first = runner.check("stuck")
    first.keep(LOUD)
    first.ask(wait_ms=10_000)  # occupies the worker
    for n in range(200):  # far more than the queue holds, each dropped by resumed speech
        check = runner.check(f"c{n}")
        check.keep(LOUD)
        check.ask(wait_ms=10_000)
        check.forget()
    model.release.set()
    settle(first)
    last = runner.check("last")
    last.keep(LOUD)
    last.ask(wait_ms=10_000)
    settle(last)
    assert last.verdict() == "complete"
    assert decided(runner, "busy") is None
