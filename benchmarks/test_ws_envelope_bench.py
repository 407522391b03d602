"""The WebSocket transport's per-frame cost beside gRPC's, for the same caller audio.

In: 500 caller-audio frames (10 s of 20 ms μ-law) as ``/v1/va`` JSON text, validated and
mapped to the engine's protobuf request (``parse_envelope`` + ``request_from_payload``),
beside the references gRPC pays for the same frames (protobuf parsing) and a bare
``json.loads``. Out: one 8000 B reply CHUNK as an envelope beside its protobuf encoding.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.loadtest.scenario import speech_pcm
from byova_media.ws.envelope import (
    envelope_json,
    parse_envelope,
    request_from_payload,
    response_payload,
)

FRAMES = 500
IN = "caller frames in: 500 frames (10 s), per transport"
OUT = "reply chunk out: one 8000 B CHUNK, per transport"
_ULAW = pcm_to_ulaw(speech_pcm(20 * FRAMES, seed=3))
_CHUNKS = [_ULAW[i : i + 160] for i in range(0, len(_ULAW), 160)]

WS_FRAMES = [
    json.dumps(
        {
            "type": "VOICE_VA_REQUEST",
            "seq": n + 1,
            "ts": "2026-11-20T09:00:01.020Z",
            "conversation_id": "c-1",
            "payload": {
                "conversation_id": "c-1",
                "customer_org_id": "o-1",
                "virtual_agent_id": "echo",
                "voice_va_input_type": {
                    "audio_input": {
                        "caller_audio_b64": base64.b64encode(chunk).decode(),
                        "encoding": "MULAW_FORMAT",
                        "sample_rate_hertz": 8000,
                    }
                },
            },
        }
    )
    for n, chunk in enumerate(_CHUNKS)
]
GRPC_FRAMES = [
    pb.VoiceVARequest(
        conversation_id="c-1",
        customer_org_id="o-1",
        virtual_agent_id="echo",
        audio_input=pb.VoiceInput(caller_audio=chunk),
    ).SerializeToString()
    for chunk in _CHUNKS
]
REPLY = pb.VoiceVAResponse(
    response_type=pb.VoiceVAResponse.CHUNK,
    prompts=[pb.Prompt(audio_content=_ULAW[:8000], is_barge_in_enabled=True)],
)


def test_ws_frames_in(benchmark: Any) -> None:
    benchmark.group = IN

    def run() -> int:
        total = 0
        for text in WS_FRAMES:
            request = request_from_payload(parse_envelope(text).payload)
            total += len(request.audio_input.caller_audio)
        return total

    assert benchmark(run) == len(_ULAW)


def test_reference_grpc_frames_in(benchmark: Any) -> None:
    benchmark.group = IN

    def run() -> int:
        return sum(
            len(pb.VoiceVARequest.FromString(b).audio_input.caller_audio) for b in GRPC_FRAMES
        )

    assert benchmark(run) == len(_ULAW)


def test_reference_json_loads_only(benchmark: Any) -> None:
    benchmark.group = IN
    assert benchmark(lambda: sum(len(json.loads(t)) for t in WS_FRAMES)) == 5 * FRAMES


def test_ws_chunk_out(benchmark: Any) -> None:
    benchmark.group = OUT
    frame = benchmark(
        lambda: envelope_json("VOICE_VA_RESPONSE", 7, "c-1", payload=response_payload(REPLY))
    )
    assert len(frame) > 8000 * 4 // 3


def test_reference_grpc_chunk_out(benchmark: Any) -> None:
    benchmark.group = OUT
    assert len(benchmark(REPLY.SerializeToString)) > 8000
