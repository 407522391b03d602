"""examples/dtmf_menu: the keypad menu, loaded as ``--plugin dtmf_menu``, on simulated calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from byova_media._proto import byova_common_pb2 as common
from byova_media.testing.simulator import RpcResult

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dtmf_menu"
MENU = "For opening hours press 1. To speak to someone press 2. To hear this again press 9."


@pytest.fixture
async def call(byova_server: Any, webex: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A started call to the menu, the example imported by module name as --plugin does."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    await byova_server(plugins=["dtmf_menu"])
    call = (await webex()).call("dtmf_menu")
    await call.start()
    return call


def asks_for_keys(result: RpcResult, length: int) -> common.DTMFInputConfig:
    """The reply is a completed RPC that wants DTMF only, ``length`` keys at most."""
    assert result.code == grpc.StatusCode.OK, result.details
    final = result.final
    assert final is not None and final.input_mode == common.INPUT_EVENT_DTMF
    dtmf = final.input_handling_config.dtmf_config
    assert dtmf.dtmf_input_length == length
    return dtmf


async def test_welcome_offers_the_menu_one_key_at_a_time(call: Any) -> None:
    welcome = call.history[0]
    assert welcome.prompt_texts == ["Welcome to Example Corp.", MENU]
    assert welcome.audio  # Webex plays audio only
    asks_for_keys(welcome, 1)
    timers = welcome.final.input_handling_config.speech_timers
    assert timers.no_input_timeout_msec == 5000


async def test_one_gives_the_hours_and_nine_repeats(call: Any) -> None:
    hours = await call.dtmf("1")
    assert hours.prompt_texts == ["We are open Monday to Friday, 8 am to 6 pm.", MENU]
    asks_for_keys(hours, 1)
    again = await call.dtmf("9")
    assert again.prompt_texts == [MENU]
    wrong = await call.dtmf("7")
    assert wrong.prompt_texts == ["That is not an option.", MENU]


async def test_two_collects_an_account_number_then_transfers(call: Any) -> None:
    ask = await call.dtmf("2")
    assert "six digit account number" in ask.prompt_texts[0]
    dtmf = asks_for_keys(ask, 6)
    assert dtmf.inter_digit_timeout_msec == 4000
    assert dtmf.termchar == common.DTMF_DIGIT_POUND
    short = await call.dtmf("123#")
    assert short.prompt_texts[0] == "That was not six digits."
    asks_for_keys(short, 6)
    transfer = await call.dtmf("123456")
    assert transfer.events == ["TRANSFER_TO_AGENT"]
    assert transfer.event_metadata == {"queue": "support", "account": "123456"}


async def test_no_input_reprompts_twice_then_ends(call: Any) -> None:
    for _ in range(2):
        again = await call.no_input()
        assert again.prompt_texts == ["Sorry, I did not hear a key.", MENU]
        asks_for_keys(again, 1)
    assert (await call.dtmf("1")).prompt_texts[0].startswith("We are open")  # a key resets
    for _ in range(2):
        await call.no_input()
    bye = await call.no_input()
    assert bye.events == ["SESSION_END"]
    assert bye.event_metadata == {"reason": "no_input"}
