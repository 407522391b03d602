"""examples/my_agent, installed with pip, served by the product card's exact command.

CI installs the package first (``pip install -e examples/my_agent --no-deps``); the test
then runs ``byova-media serve --plugin my_agent`` as a process, places a simulated call,
and stops it with SIGTERM the way an orchestrator would.
"""

from __future__ import annotations

import signal
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
import pytest

from byova_media.testing.process import serve_process
from byova_media.testing.simulator import WebexSimulator

COMMAND = Path(sys.executable).with_name("byova-media")

pytestmark = pytest.mark.skipif(
    not any(ep.name == "my_agent" for ep in metadata.entry_points(group="byova_media")),
    reason="examples/my_agent is not installed: pip install -e examples/my_agent --no-deps",
)


async def test_serve_plugin_my_agent_answers_a_call_and_drains_on_sigterm(speech: Any) -> None:
    async with serve_process("--plugin", "my_agent", command=COMMAND) as served:
        async with WebexSimulator(f"127.0.0.1:{served.port}", realtime=False) as sim:
            listed = await sim.list_agents()
            assert [a.virtual_agent_id for a in listed.virtual_agents] == ["my_agent"]
            call = sim.call("my_agent")
            welcome = await call.start({"customer_name": "Grace"})
            assert welcome.code == grpc.StatusCode.OK, welcome.details
            assert welcome.prompt_texts == ["Hello Grace, how can I help?"]
            assert welcome.audio
            turn = await call.say(speech(900))
            assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
            transfer = await call.dtmf("0")
            assert transfer.events == ["TRANSFER_TO_AGENT"]
            assert transfer.event_metadata == {"reason": "caller_request"}
        assert await served.stop(signal.SIGTERM) == 0, served.output
        assert "draining" in served.output
