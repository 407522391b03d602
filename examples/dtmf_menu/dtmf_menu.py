"""An IVR menu on the keypad: 1 for opening hours, 2 for a person, 9 to hear it again.

Shows the input settings an agent sends with each reply (DTMF only; one key for the
menu; up to six digits, an inter-digit timeout and ``#`` as terminator for an account
number) and re-prompting when Webex reports that the caller pressed nothing.
Run: ``PYTHONPATH=examples/dtmf_menu byova-media serve --plugin dtmf_menu``.
"""

from __future__ import annotations

from collections.abc import Callable

import byova_media
from byova_media import (
    Agent,
    AgentSpec,
    App,
    Call,
    EndSession,
    InputHandling,
    InputMode,
    Prompt,
    Reply,
    SessionStart,
    Transfer,
    Utterance,
    pcm_to_ulaw,
    tone,
)

__all__ = ["ACCOUNT_DIGITS", "MENU_KEY", "DtmfMenu"]

MENU = "For opening hours press 1. To speak to someone press 2. To hear this again press 9."
HOURS = "We are open Monday to Friday, 8 am to 6 pm."
ACCOUNT = "Please enter your six digit account number, then press the hash key."
MAX_NO_INPUT = 2  # re-prompts before giving up

#: The menu: Webex sends the first key at once; 5 s of nothing is a NO_INPUT.
MENU_KEY = InputHandling(dtmf_input_length=1, no_input_timeout_ms=5000)
#: An account number: six digits, or fewer ended by ``#`` or by 4 s without a key.
ACCOUNT_DIGITS = InputHandling(
    dtmf_input_length=6,
    dtmf_inter_digit_timeout_ms=4000,
    dtmf_terminator="#",
    no_input_timeout_ms=8000,
)


def _prompt(text: str) -> Prompt:
    # Webex plays audio, not text: a chime stands in for a recording of ``text``.
    return Prompt(audio=pcm_to_ulaw(tone(587.33, 120)), text=text, barge_in=True)


class DtmfMenu(Agent):
    """One caller's way through the menu."""

    def __init__(self) -> None:
        self.no_inputs = 0
        self.wants_account = False

    def _ask(self, *texts: str) -> Reply:
        handling = ACCOUNT_DIGITS if self.wants_account else MENU_KEY
        prompts = [_prompt(text) for text in texts]
        return Reply(prompts=prompts, input_mode=InputMode.DTMF, input_handling=handling)

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        return self._ask("Welcome to Example Corp.", MENU)

    async def on_dtmf(self, call: Call, digits: str) -> Reply:
        self.no_inputs = 0
        keys = digits.rstrip("#")
        if self.wants_account:
            if len(keys) == 6 and keys.isdigit():
                transfer = Transfer(metadata={"queue": "support", "account": keys})
                return Reply.say(text="Connecting you now.", event=transfer)
            return self._ask("That was not six digits.", ACCOUNT)
        if keys == "1":
            return self._ask(HOURS, MENU)
        if keys == "2":
            self.wants_account = True
            return self._ask(ACCOUNT)
        if keys == "9":
            return self._ask(MENU)
        return self._ask("That is not an option.", MENU)

    async def on_no_input(self, call: Call) -> Reply:
        self.no_inputs += 1
        if self.no_inputs > MAX_NO_INPUT:
            return Reply.say(text="Goodbye.", event=EndSession(metadata={"reason": "no_input"}))
        return self._ask("Sorry, I did not hear a key.", ACCOUNT if self.wants_account else MENU)

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        return self._ask("Please use your keypad.", ACCOUNT if self.wants_account else MENU)


@byova_media.hookimpl
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    register(AgentSpec("dtmf_menu", lambda call: DtmfMenu(), name="Keypad menu"))
