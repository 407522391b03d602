"""Voice activity: a detector protocol, an energy detector, and a turn (utterance) detector.

The energy detector scores a frame by its level above an adaptive noise floor, gated by an
absolute level so that quiet line noise never counts as speech. The turn detector turns
per-frame scores into utterance start/end events with an attack time (so a click or a
cough does not start a turn) and a hangover (so a pause inside a sentence does not end it).
With an end-of-turn model the hangover has two lengths: the model is asked once when a
short silence follows speech, and a "complete" answer ends the turn then instead of after
the long silence (see :mod:`byova_media.audio.end_of_turn`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from byova_media.audio.end_of_turn import EndOfTurnCheck

__all__ = ["EnergyVAD", "TurnDetector", "TurnEvent", "VoiceActivityDetector", "frame_dbfs"]

_FULL_SCALE_POWER = 32768.0**2
_SILENCE_DBFS = -120.0


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """Anything that scores a PCM16 frame at ``sample_rate`` with a speech probability."""

    sample_rate: int

    def speech_probability(self, frame: npt.NDArray[np.int16]) -> float:
        """Probability (0..1) that the frame contains speech."""
        ...


def frame_dbfs(frame: npt.NDArray[np.int16]) -> float:
    """RMS level of a PCM16 frame in dB relative to full scale (-120 for digital silence)."""
    if frame.size == 0:
        return _SILENCE_DBFS
    samples = frame.astype(np.float64)
    power = float(np.dot(samples, samples)) / frame.size
    if power <= 0.0:
        return _SILENCE_DBFS
    return max(_SILENCE_DBFS, 10.0 * math.log10(power / _FULL_SCALE_POWER))


class EnergyVAD:
    """Energy detector: speech is loud (above ``min_speech_dbfs``) and above the noise floor.

    The noise floor follows the level down at once and up slowly (``noise_rise_db_per_s``),
    so steady background noise is learned while a few seconds of speech are not. The
    probability is a logistic curve of the level above the floor, centred on
    ``snr_threshold_db`` with ``slope_db`` per e-fold.
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        *,
        min_speech_dbfs: float = -45.0,
        snr_threshold_db: float = 10.0,
        slope_db: float = 2.0,
        initial_noise_dbfs: float = -70.0,
        noise_rise_db_per_s: float = 3.0,
    ) -> None:
        if sample_rate <= 0 or slope_db <= 0 or noise_rise_db_per_s < 0:
            raise ValueError("sample_rate and slope_db must be positive, the rise not negative")
        self.sample_rate = sample_rate
        self.min_speech_dbfs = min_speech_dbfs
        self.snr_threshold_db = snr_threshold_db
        self.slope_db = slope_db
        self.noise_rise_db_per_s = noise_rise_db_per_s
        self.noise_floor_dbfs = initial_noise_dbfs

    def speech_probability(self, frame: npt.NDArray[np.int16]) -> float:
        """Score the frame and update the noise floor with it."""
        level = frame_dbfs(frame)
        floor = self.noise_floor_dbfs
        if level < floor:
            self.noise_floor_dbfs = level
        else:
            rise = self.noise_rise_db_per_s * frame.size / self.sample_rate
            self.noise_floor_dbfs = min(level, floor + rise)
        if level < self.min_speech_dbfs:
            return 0.0
        snr = level - floor
        return 1.0 / (1.0 + math.exp(-(snr - self.snr_threshold_db) / self.slope_db))


@dataclass(frozen=True)
class TurnEvent:
    """An utterance boundary, as a frame index counted from the detector's last reset.

    ``start``: the first frame of the utterance, including the attack and the pre-roll.
    ``end``: one past the last speech frame.
    """

    kind: Literal["start", "end"]
    frame_index: int


class TurnDetector:
    """Find utterances in a stream of equal ``frame_ms`` frames scored by a VAD.

    A turn starts after ``start_ms`` of consecutive speech frames and ends after
    ``end_silence_ms`` of consecutive non-speech frames; thresholds are in milliseconds.
    With ``end_of_turn``, the model is asked once per pause after ``short_silence_ms``
    and the turn ends on the first frame that finds its answer "complete".
    """

    def __init__(
        self,
        vad: VoiceActivityDetector,
        *,
        frame_ms: int = 20,
        start_ms: int = 100,
        end_silence_ms: int = 700,
        pre_roll_ms: int = 200,
        threshold: float = 0.5,
        end_of_turn: EndOfTurnCheck | None = None,
        short_silence_ms: int = 200,
    ) -> None:
        if frame_ms <= 0 or start_ms < 0 or end_silence_ms < 0 or pre_roll_ms < 0:
            raise ValueError("frame_ms must be positive and the other durations not negative")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        frames: Callable[[int], int] = lambda ms: max(1, -(-ms // frame_ms))  # noqa: E731
        self._vad = vad
        self._threshold = threshold
        self._attack_frames = frames(start_ms)
        self._hangover_frames = frames(end_silence_ms)
        self._pre_roll_frames = pre_roll_ms // frame_ms
        self._eot = end_of_turn
        self._short_frames = frames(short_silence_ms)
        self._eot_wait_ms = max(0, end_silence_ms - short_silence_ms)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next frame is frame 0 and no utterance is in progress."""
        self._index = 0
        self._in_speech = False
        self._run = 0  # consecutive frames agreeing with a state change
        self._last_end = 0  # utterances never reach back before the previous one's end
        self._last_speech = 0
        if self._eot is not None:
            self._eot.forget()

    @property
    def in_speech(self) -> bool:
        """True between a ``start`` event and its ``end`` event."""
        return self._in_speech

    def process(self, frame: npt.NDArray[np.int16]) -> TurnEvent | None:
        """Score one frame; return a start or end event when this frame completes one."""
        index = self._index
        self._index += 1
        speech = self._vad.speech_probability(frame) >= self._threshold
        eot = self._eot
        if eot is not None:
            eot.keep(frame)
        if not self._in_speech:
            self._run = self._run + 1 if speech else 0
            if self._run < self._attack_frames:
                return None
            self._in_speech = True
            self._run = 0
            self._last_speech = index
            first = max(index - self._attack_frames + 1 - self._pre_roll_frames, self._last_end)
            if eot is not None:
                eot.trim(index - first + 1)
            return TurnEvent("start", first)
        if speech:
            if eot is not None and self._run:
                eot.forget()  # the pause was inside the turn; a new pause asks again
            self._run = 0
            self._last_speech = index
            return None
        self._run += 1
        if eot is not None:
            if self._run == self._short_frames:
                eot.ask(self._eot_wait_ms)
            elif self._run > self._short_frames and eot.verdict() == "complete":
                return self._end()
        if self._run < self._hangover_frames:
            return None
        return self._end()

    def _end(self) -> TurnEvent:
        if self._eot is not None:
            self._eot.forget()
        self._in_speech = False
        self._run = 0
        self._last_end = self._last_speech + 1
        return TurnEvent("end", self._last_end)
