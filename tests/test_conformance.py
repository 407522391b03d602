"""A client generated from the upstream BYOVA protos talks to our server byte for byte.

The upstream ``.proto`` files ship inside the PyPI wheel ``webex-byova==0.2.0`` (a test
dependency); they are compiled into a temporary directory and used from a subprocess,
because both sets of generated modules register the same proto file names.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from byova_media.audio.codecs import pcm_to_ulaw

CLIENT = r"""
import sys, grpc
sys.path.insert(0, sys.argv[2])
import types
import byova_common_pb2 as common, voicevirtualagent_pb2 as va, voicevirtualagent_pb2_grpc as rpc
# Upstream splits messages differently between its two files; names are what count.
names = {n: getattr(m, n) for m in (common, va) for n in dir(m) if not n.startswith("_")}
pb = types.SimpleNamespace(**names)
target = sys.argv[1]
with grpc.insecure_channel(target) as channel:
    stub = rpc.VoiceVirtualAgentStub(channel)
    agents = stub.ListVirtualAgents(pb.ListVARequest(customer_org_id="org"))
    print("agents", [a.virtual_agent_id for a in agents.virtual_agents])
    def one(req):
        yield req
    start = pb.VoiceVARequest(conversation_id="up-1", virtual_agent_id="echo",
        event_input=pb.EventInput(event_type=pb.EventInput.SESSION_START))
    replies = list(stub.ProcessCallerInput(one(start)))
    audio = sum(len(p.audio_content) for r in replies for p in r.prompts)
    print("welcome", [r.response_type for r in replies], audio)
    dtmf = pb.VoiceVARequest(conversation_id="up-1", virtual_agent_id="echo",
        dtmf_input=pb.DTMFInputs(dtmf_events=[pb.DTMFDigits.Value("DTMF_DIGIT_ZERO")]))
    replies = list(stub.ProcessCallerInput(one(dtmf)))
    events = [pb.OutputEvent.EventType.Name(e.event_type) for r in replies for e in r.output_events]
    print("dtmf", events, [dict(e.metadata) for r in replies for e in r.output_events])
    # A spoken turn: settings, then 20 ms frames of the caller audio in argv[3].
    ulaw = open(sys.argv[3], "rb").read()
    def turn():
        yield pb.VoiceVARequest(conversation_id="up-2", virtual_agent_id="echo",
            audio_input=pb.VoiceInput(encoding=pb.VoiceInput.MULAW_FORMAT, sample_rate_hertz=8000))
        for i in range(0, len(ulaw), 160):
            yield pb.VoiceVARequest(conversation_id="up-2",
                audio_input=pb.VoiceInput(caller_audio=ulaw[i:i + 160]))
    stub.ProcessCallerInput(one(pb.VoiceVARequest(conversation_id="up-2", virtual_agent_id="echo",
        event_input=pb.EventInput(event_type=pb.EventInput.SESSION_START))))
    replies = list(stub.ProcessCallerInput(turn()))
    print("turn", [(pb.VoiceVAResponse.ResponseType.Name(r.response_type),
                    [pb.OutputEvent.EventType.Name(e.event_type) for e in r.output_events],
                    sum(len(p.audio_content) for p in r.prompts)) for r in replies])
"""


def _upstream_protos() -> Path:
    spec = importlib.util.find_spec("webex_byova")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("webex-byova (test extra) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "media" / "_internal" / "proto"


def _compile_upstream(out: Path) -> None:
    from grpc_tools import protoc

    proto_dir = _upstream_protos()
    builtin = Path(protoc.__file__).resolve().parent / "_proto"
    files = [str(p) for p in sorted(proto_dir.glob("*.proto"))]
    argv = [
        "protoc",
        f"-I{proto_dir}",
        f"-I{builtin}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    assert protoc.main(argv) == 0


@pytest.mark.parametrize("boundary", ["final", "chunk", "partial"])
async def test_upstream_generated_client_interoperates(
    byova_server: Any, tmp_path: Path, speech: Any, boundary: str
) -> None:
    _compile_upstream(tmp_path)
    caller = tmp_path / "caller.ulaw"
    silence = np.zeros(8 * 1500, dtype=np.int16)
    caller.write_bytes(pcm_to_ulaw(np.concatenate((silence[:1600], speech(1200), silence))))
    server = await byova_server(plugins=["echo"], boundary_response_type=boundary)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        f"127.0.0.1:{server.port}",
        str(tmp_path),
        str(caller),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0] == "agents ['echo']"
    kinds, audio_bytes = lines[1].split(" ", 1)[1].rsplit(" ", 1)
    assert kinds.endswith("0]")  # last response is FINAL (0)
    assert int(audio_bytes) > 1000
    assert lines[2] == "dtmf ['TRANSFER_TO_AGENT'] [{'reason': 'caller_request'}]"
    turn = ast.literal_eval(lines[3].split(" ", 1)[1])
    boundaries = [(kind, events) for kind, events, _ in turn if events]
    assert boundaries == [
        (boundary.upper(), ["START_OF_INPUT"]),
        (boundary.upper(), ["END_OF_INPUT"]),
    ]
    reply = [(kind, audio) for kind, events, audio in turn if not events]
    assert reply[-1] == ("FINAL", 0)  # the reply's one FINAL, last, without audio
    assert [kind for kind, _ in reply[:-1]] == ["CHUNK"] * (len(reply) - 1)
    assert sum(audio for _, audio in reply) > 8 * 1000  # the echo of the caller's speech
