"""The package's own tests: simulated Webex calls through byova-media's pytest fixtures."""

from __future__ import annotations

from byova_media.audio.tones import tone
from byova_media.testing.pytest_plugin import ServerPool, SimulatorFactory


async def test_greets_by_name_and_hangs_up_on_star(
    byova_server: ServerPool, webex: SimulatorFactory
) -> None:
    await byova_server(plugins=["my_agent"])
    call = (await webex()).call("my_agent")
    welcome = await call.start({"customer_name": "Ada"})
    assert welcome.prompt_texts == ["Hello Ada, how can I help?"]
    turn = await call.say(tone(300.0, 800))
    assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    bye = await call.dtmf("*")
    assert bye.events == ["SESSION_END"]
    assert bye.final is not None
    transcript = bye.final.session_transcript.text.splitlines()
    assert transcript[0] == "Agent: Hello Ada, how can I help?"
    assert transcript[1].startswith("Caller: (") and transcript[1].endswith("ms of speech)")
    assert transcript[2:] == [
        "Agent: Thanks. Press 0 for a person or star to hang up.",
        "Caller: pressed *",
        "Agent: Goodbye.",
    ]
