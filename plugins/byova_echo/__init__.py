"""The ``echo`` agent: repeats each caller utterance back; the agent tests and users rely on.

- SESSION_START → a short generated welcome chime (bargeable).
- Each utterance → the caller's own audio, from speech start to end of speech.
- DTMF ``0`` → TRANSFER_TO_AGENT with ``{"reason": "caller_request"}``; ``*`` → SESSION_END;
  ``#`` → the text ``Digits so far: 1 2 3``: every other key pressed earlier in the call,
  in order (``Digits so far: none`` when there was none); other digits → their DTMF
  tones with the text ``You pressed 1 2 3``.
- NO_INPUT → a short re-prompt chime.
- Its snapshot is the digit history, so ``#`` stays right when the call moves instance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import byova_media
from byova_media import (
    Agent,
    AgentSpec,
    App,
    Call,
    EndSession,
    Reply,
    SessionStart,
    Transfer,
    Utterance,
    pcm_to_ulaw,
)
from byova_media.audio.tones import dtmf_tones, tone

__all__ = ["EchoAgent"]

WELCOME_TEXT = "Welcome to the echo agent. Say something and I will repeat it."
NO_INPUT_TEXT = "I did not hear anything. Please say something."
KEYS = "0123456789*#ABCD"


def _chime(*freqs_hz: float, ms: int = 180) -> bytes:
    return pcm_to_ulaw(np.concatenate([tone(f, ms) for f in freqs_hz]))


def digits_text(digits: str) -> str:
    """What ``#`` answers: the earlier keys of the call, space separated."""
    return "Digits so far: " + (" ".join(digits) if digits else "none")


class EchoAgent(Agent):
    """Answers every utterance with the caller's own voice and remembers the call's keys."""

    def __init__(self) -> None:
        #: Every key of this call other than ``#``, in the order pressed.
        self.digits = ""

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        return Reply.say(_chime(523.25, 659.25, 783.99), text=WELCOME_TEXT, barge_in=True)

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        call.log.debug("echoing %d ms of caller audio", utterance.duration_ms)
        return Reply.say(utterance.ulaw(), text="", barge_in=True)

    async def on_dtmf(self, call: Call, digits: str) -> Reply:
        keys = "".join(d for d in digits if d in KEYS)
        if "#" in keys:
            # Keys before the # in the same input were pressed earlier too.
            self.digits += keys.split("#", 1)[0]
            text = digits_text(self.digits)
            return Reply.say(pcm_to_ulaw(dtmf_tones("#")), text=text, barge_in=True)
        self.digits += keys
        if keys == "0":
            return Reply(event=Transfer(metadata={"reason": "caller_request"}))
        if keys == "*":
            return Reply(event=EndSession(metadata={"reason": "caller_request"}))
        return Reply.say(
            pcm_to_ulaw(dtmf_tones(keys)), text="You pressed " + " ".join(keys), barge_in=True
        )

    async def on_no_input(self, call: Call) -> Reply:
        return Reply.say(_chime(659.25, 523.25), text=NO_INPUT_TEXT, barge_in=True)

    def snapshot(self) -> dict[str, Any]:
        return {"digits": self.digits}

    def restore(self, state: dict[str, Any]) -> None:
        digits = state.get("digits", "")
        self.digits = "".join(d for d in str(digits) if d in KEYS and d != "#")


@byova_media.hookimpl
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    register(
        AgentSpec(
            virtual_agent_id="echo",
            name="Echo (repeats the caller)",
            factory=lambda call: EchoAgent(),
            attributes={"plugin": "echo"},
        )
    )
