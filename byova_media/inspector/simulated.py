"""The timeline of a call placed with the simulator (``byova-media call --timeline``).

The client sees what Webex sees: when each RPC opened, half-closed and completed, and
every response. It builds the same JSON the inspector serves, so one chart draws both;
what only the server knows (end of speech, the agent's own marks) is left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf import json_format

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.inspector.timeline import render_html, render_svg
from byova_media.testing.simulator import CallSteps, RpcResult, is_boundary

__all__ = ["call_json", "write_timeline"]

_TYPE_NAMES = {v: k for k, v in pb.VoiceVAResponse.ResponseType.items()}
_EVENT_NAMES = {v: k for k, v in pb.OutputEvent.EventType.items()}


def call_json(call: CallSteps) -> dict[str, Any]:
    """The call as the inspector's JSON, with times from the client's clock."""
    origin = min((r.started_at for r in call.history), default=0.0)
    rpcs = [_rpc(n, r, (r.started_at - origin) * 1000.0) for n, r in enumerate(call.history)]
    turns: list[dict[str, Any]] = []
    for rpc in rpcs:
        at = {r["event"]: r["at_ms"] for r in rpc["responses"] if r["event"]}
        audio = [r["at_ms"] for r in rpc["responses"] if r["audio_bytes"]]
        if "END_OF_INPUT" in at:
            eoi = at["END_OF_INPUT"]
            turns.append(
                {
                    "turn": len(turns),
                    "rpc": rpc["index"],
                    "speech_end_ms": None,
                    "end_of_input_ms": eoi,
                    "first_audio_ms": next((t for t in audio if t >= eoi), None),
                    "marks": {},
                }
            )
    transcript = next(
        (
            r.session_transcript.text
            for result in reversed(call.history)
            for r in result.responses
            if r.session_transcript.text
        ),
        None,
    )
    return {
        "conversation_id": call.conversation_id,
        "virtual_agent_id": call.virtual_agent_id,
        "ended": None,
        "transcript": transcript,
        "rpcs": rpcs,
        "turns": turns,
        "barge_ins": [],
    }


def _rpc(index: int, result: RpcResult, opened_ms: float) -> dict[str, Any]:
    received = [(t, label) for t, label in result.timeline if not label.startswith("completed")]
    responses = []
    times = iter(t for t, label in received if label != "half-close")
    for response in result.responses:
        at = next(times, 0.0)
        event = response.output_events[0] if response.output_events else None
        responses.append(
            {
                "at_ms": round(opened_ms + at * 1000.0, 1),
                "type": _TYPE_NAMES.get(response.response_type, "?"),
                "event": _EVENT_NAMES.get(event.event_type) if event else None,
                "metadata": dict(json_format.MessageToDict(event.metadata)) if event else {},
                "prompt_text": " ".join(p.text for p in response.prompts if p.text),
                "audio_bytes": sum(len(p.audio_content) for p in response.prompts),
                "bargeable": any(p.is_barge_in_enabled for p in response.prompts),
                "boundary": is_boundary(response),
            }
        )
    half = result.time_of("half-close")
    completed = result.timeline[-1][0] if result.timeline else None
    return {
        "index": index,
        "kind": result.kind,
        "dtmf": "",
        "open_ms": round(opened_ms, 1),
        "half_close_ms": None if half is None else round(opened_ms + half * 1000.0, 1),
        "complete_ms": None if completed is None else round(opened_ms + completed * 1000.0, 1),
        "status": result.code.name,
        "responses": responses,
        "audio": {"caller": False, "agent": False},
    }


def write_timeline(call: CallSteps, path: Path) -> None:
    """Write the chart: a page for ``.html``, the bare SVG otherwise."""
    data = call_json(call)
    text = render_html(data) if path.suffix == ".html" else render_svg(data)
    path.write_text(text, encoding="utf-8")
