"""Fault 6: a conversation_id holding a newline cannot forge a line in the server's log."""

from __future__ import annotations

import json

import grpc
import pytest

from byova_media.testing.process import serve_process
from byova_media.testing.simulator import WebexSimulator

pytestmark = pytest.mark.e2e

FORGED_LINE = "2099-01-01 00:00:00,000 CRITICAL byova_media [conv=- trk=-] forged"
HOSTILE_ID = f"call-1\n{FORGED_LINE}\r\x1b[31m"


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_newline_in_conversation_id_stays_on_its_own_line(fmt: str) -> None:
    async with serve_process("--plugin", "echo", "--log-format", fmt) as served:
        async with WebexSimulator(f"127.0.0.1:{served.port}", realtime=False) as sim:
            call = sim.call("echo", conversation_id=HOSTILE_ID)
            # A second SESSION_START is logged at INFO with the call's conversation id.
            for _ in range(2):
                result = await call.start()
                assert result.code == grpc.StatusCode.OK
        assert await served.stop() == 0
    lines = served.output.splitlines()
    assert not any(line.startswith("2099-01-01") for line in lines), served.output
    assert not any("\x1b" in line for line in lines)
    mentioning = [line for line in lines if "forged" in line]
    assert mentioning, served.output
    for line in mentioning:
        if fmt == "json":
            record = json.loads(line)
            assert record["conversation_id"].startswith("call-1\\n2099-01-01")
        else:
            assert "[conv=call-1\\n2099-01-01" in line
