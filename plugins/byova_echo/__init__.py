"""The ``echo`` agent: repeats each caller utterance back; the agent tests and users rely on.

- SESSION_START → a short generated welcome chime (bargeable).
- Each utterance → the caller's own audio, from speech start to end of speech.
- DTMF ``0`` → TRANSFER_TO_AGENT with ``{"reason": "caller_request"}``; ``*`` → SESSION_END;
  other digits → their DTMF tones with the text ``You pressed 1 2 3``.
- NO_INPUT → a short re-prompt chime.
"""

from __future__ import annotations

from collections.abc import Callable

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


def _chime(*freqs_hz: float, ms: int = 180) -> bytes:
    return pcm_to_ulaw(np.concatenate([tone(f, ms) for f in freqs_hz]))


class EchoAgent(Agent):
    """Answers every utterance with the caller's own voice."""

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        return Reply.say(_chime(523.25, 659.25, 783.99), text=WELCOME_TEXT, barge_in=True)

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        call.log.debug("echoing %d ms of caller audio", utterance.duration_ms)
        return Reply.say(utterance.ulaw(), text="", barge_in=True)

    async def on_dtmf(self, call: Call, digits: str) -> Reply:
        if digits == "0":
            return Reply(event=Transfer(metadata={"reason": "caller_request"}))
        if digits == "*":
            return Reply(event=EndSession(metadata={"reason": "caller_request"}))
        keys = [d for d in digits if d in "0123456789*#ABCD"]
        return Reply.say(
            pcm_to_ulaw(dtmf_tones("".join(keys))),
            text="You pressed " + " ".join(keys),
            barge_in=True,
        )

    async def on_no_input(self, call: Call) -> Reply:
        return Reply.say(_chime(659.25, 523.25), text=NO_INPUT_TEXT, barge_in=True)


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
