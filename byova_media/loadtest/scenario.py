"""What each simulated caller does, and the hard caps every load run obeys."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from byova_media.audio.resample import resample
from byova_media.audio.wav import read_wav

__all__ = [
    "MAX_CALLS",
    "MAX_CONCURRENCY",
    "MAX_DURATION_S",
    "Scenario",
    "Step",
    "parse_script",
    "speech_pcm",
]

#: Hard caps: a run never exceeds these, whatever the flags say.
MAX_CONCURRENCY = 5000
MAX_DURATION_S = 3600.0
MAX_CALLS = 1_000_000


@dataclass(frozen=True)
class Step:
    """One item of a caller's script: speak ``ms`` of speech, or press ``digits``."""

    kind: Literal["say", "dtmf"]
    ms: int = 0
    digits: str = ""


def parse_script(text: str) -> tuple[Step, ...]:
    """Parse ``say:1200,dtmf:12#,say:800`` (comma-separated) into steps."""
    steps: list[Step] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        kind, _, value = item.partition(":")
        if kind == "say" and value.isdigit() and 0 < int(value) <= 60_000:
            steps.append(Step("say", ms=int(value)))
        elif kind == "dtmf" and value and all(c in "0123456789*#ABCD" for c in value):
            steps.append(Step("dtmf", digits=value))
        else:
            raise ValueError(
                f"bad script item {item!r}: use say:<ms 1-60000> or dtmf:<keys 0-9*#A-D>"
            )
    if not steps:
        raise ValueError("the script is empty; give at least one say:<ms> or dtmf:<keys>")
    return tuple(steps)


@dataclass(frozen=True)
class Scenario:
    """The load of one step: ``calls`` concurrent callers for ``duration_s`` or ``turns``.

    In duration mode each caller places calls of one pass through the script back to
    back until the step ends (a call in progress then finishes its pass); in turns mode
    each caller places one call of ``turns`` script steps. With ``long_calls`` (duration
    mode only) each caller keeps one call for the whole step, repeating the script: the
    soak of long calls that shows whether memory grows with a call's age. Audio is paced
    in real time (20 ms per frame); a frame is *late* when its write completes more
    than ``late_ms`` after its due time.
    """

    calls: int
    duration_s: float | None = 10.0
    turns: int | None = None
    script: tuple[Step, ...] = field(default_factory=lambda: (Step("say", ms=1200),))
    virtual_agent_id: str = ""
    ramp_s: float = 2.0
    lead_silence_ms: int = 200
    trail_silence_ms: int = 1500
    late_ms: float = 40.0
    max_calls: int = 100_000
    grace_s: float = 15.0
    long_calls: bool = False
    #: A WAV whose audio every ``say`` step plays (its first ``ms``, repeated if shorter)
    #: instead of the synthetic voiced signal: neural VADs and end-of-turn models need
    #: real speech to do their work.
    speech_wav: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.calls <= MAX_CONCURRENCY:
            raise ValueError(f"calls must be 1..{MAX_CONCURRENCY}, got {self.calls}")
        if (self.duration_s is None) == (self.turns is None):
            raise ValueError("give exactly one of duration_s and turns")
        if self.duration_s is not None and not 0 < self.duration_s <= MAX_DURATION_S:
            raise ValueError(f"duration_s must be in (0, {MAX_DURATION_S:.0f}]")
        if self.turns is not None and not 0 < self.turns <= 1000:
            raise ValueError("turns must be 1..1000")
        if self.long_calls and self.duration_s is None:
            raise ValueError("long_calls needs duration_s: a long call lasts the whole step")
        if not 0 < self.max_calls <= MAX_CALLS:
            raise ValueError(f"max_calls must be 1..{MAX_CALLS}")

    @property
    def deadline_s(self) -> float:
        """The hard stop of the step, counted from its start: callers are cancelled then."""
        if self.duration_s is not None:
            return self.duration_s + self.ramp_s + self.grace_s
        longest = max((s.ms for s in self.script), default=0)
        per_turn_s = (self.lead_silence_ms + longest + self.trail_silence_ms) / 1000 + 5.0
        return min(MAX_DURATION_S, self.ramp_s + self.grace_s + per_turn_s * (self.turns or 0))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["script"] = [
            f"say:{s.ms}" if s.kind == "say" else f"dtmf:{s.digits}" for s in self.script
        ]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        data = dict(data)
        data["script"] = parse_script(",".join(data["script"]))
        return cls(**data)


def speech_pcm(ms: int, seed: int = 0, recorded: bytes = b"") -> npt.NDArray[np.int16]:
    """``ms`` of 8 kHz speech: from the ``recorded`` WAV if given, else synthetic.

    The synthetic signal is voiced and syllable-like, so energy VADs take it for speech
    without any file.
    """
    if recorded:
        audio = read_wav(recorded)
        pcm = resample(audio.pcm, audio.sample_rate, 8000)
        if not len(pcm):
            raise ValueError("the speech WAV holds no audio")
        return np.resize(pcm, 8 * ms)
    rng = np.random.default_rng(seed)
    t = np.arange(8 * ms) / 8000.0
    pitch = 110.0 + 25.0 * np.sin(2 * np.pi * 0.8 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / 8000.0
    voiced = sum(np.sin(k * phase) / k for k in range(1, 10))
    envelope = 0.55 + 0.45 * np.abs(np.sin(2 * np.pi * 2.5 * t))
    signal = 2200.0 * voiced * envelope + rng.normal(0.0, 120.0, len(t))
    return np.clip(signal, -32768, 32767).astype(np.int16)
