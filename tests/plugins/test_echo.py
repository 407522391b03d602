"""The echo agent's key memory: ``#`` lists every earlier key of the call, in order."""

from __future__ import annotations

import json
from typing import Any

import pytest

from byova_echo import EchoAgent, digits_text


async def test_hash_with_no_earlier_keys_says_none(byova_server: Any, webex: Any) -> None:
    await byova_server(plugins=["echo"])
    call = (await webex()).call("echo")
    await call.start()
    result = await call.dtmf("#")
    assert result.prompt_texts == ["Digits so far: none"]


async def test_hash_lists_the_earlier_keys_in_order(byova_server: Any, webex: Any) -> None:
    await byova_server(plugins=["echo"])
    call = (await webex()).call("echo")
    await call.start()
    for key in "317":
        assert (await call.dtmf(key)).prompt_texts == [f"You pressed {key}"]
    assert (await call.dtmf("#")).prompt_texts == ["Digits so far: 3 1 7"]
    await call.dtmf("2")
    # The first # is not a digit of the history; keys before a # in one input count.
    assert (await call.dtmf("9#")).prompt_texts == ["Digits so far: 3 1 7 2 9"]


async def test_each_call_has_its_own_history(byova_server: Any, webex: Any) -> None:
    await byova_server(plugins=["echo"])
    sim = await webex()
    first, second = sim.call("echo"), sim.call("echo")
    await first.start()
    await second.start()
    await first.dtmf("5")
    assert (await second.dtmf("#")).prompt_texts == ["Digits so far: none"]
    assert (await first.dtmf("#")).prompt_texts == ["Digits so far: 5"]


@pytest.mark.parametrize("keys", ["", "4", "12*AB"])
def test_snapshot_is_json_and_restores_the_history(keys: str) -> None:
    agent = EchoAgent()
    agent.digits = keys
    state = json.loads(json.dumps(agent.snapshot()))
    other = EchoAgent()
    other.restore(state)
    assert other.digits == keys
    assert digits_text(other.digits) == digits_text(keys)


def test_restore_drops_what_is_not_a_key() -> None:
    agent = EchoAgent()
    agent.restore({"digits": "1x#2"})
    assert agent.digits == "12"
