"""The timeline chart of one call, drawn from its JSON (``/calls/<id>.json``) as SVG or HTML.

One lane per RPC: a bar from open to completion with a tick at the client's half-close,
marks for the output events (START_OF_INPUT, END_OF_INPUT, transfer, end), DTMF and
barge-ins, and under each audio lane the turn's latency marks (end of speech →
END_OF_INPUT → first reply audio). The page adds the prompt text and transcript. It
is plain markup (no script), so it works offline and from a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from itertools import pairwise
from typing import Any

__all__ = ["render_html", "render_svg"]

_LEFT = 150
_WIDTH = 1000
_LANE = 56
_TOP = 34
_EVENT_COLOURS = {
    "START_OF_INPUT": "#1f77b4",
    "END_OF_INPUT": "#9467bd",
    "TRANSFER_TO_AGENT": "#d62728",
    "SESSION_END": "#d62728",
    "CUSTOM_EVENT": "#8c564b",
    "NO_MATCH": "#7f7f7f",
}


def render_svg(call: Mapping[str, Any]) -> str:
    """The call's timeline as a standalone SVG document."""
    rpcs: Sequence[Mapping[str, Any]] = call.get("rpcs", [])
    end_ms = max([_last_ms(r) for r in rpcs] + [1.0])
    scale = (_WIDTH - _LEFT - 20) / end_ms
    height = _TOP + _LANE * max(len(rpcs), 1) + 30

    def x(ms: float) -> float:
        return round(_LEFT + ms * scale, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{_WIDTH}" '
        f'height="{height}" viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" '
        'font-size="11">',
        f"<title>{escape(str(call.get('conversation_id', '')))}</title>",
        '<rect width="100%" height="100%" fill="#fff"/>',
    ]
    parts += _axis(end_ms, x, height)
    turns = {t["rpc"]: t for t in call.get("turns", [])}
    for lane, rpc in enumerate(rpcs):
        y = _TOP + lane * _LANE
        parts += _lane(rpc, y, x, end_ms)
        if (turn := turns.get(rpc.get("index", lane))) is not None:
            parts += _latency(turn, y, x)
    for barge in call.get("barge_ins", []):
        bx = x(barge["at_ms"])
        title = f"barge-in after {barge['heard_ms']} of {barge['sent_ms']} ms"
        parts.append(
            f'<g class="mark barge-in"><title>{escape(title)}</title>'
            f'<line x1="{bx}" y1="{_TOP - 8}" x2="{bx}" y2="{height - 24}" stroke="#ff7f0e" '
            f'stroke-width="2" stroke-dasharray="4 3"/>'
            f'<text x="{bx + 3}" y="{_TOP - 10}" fill="#ff7f0e">barge-in</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _last_ms(rpc: Mapping[str, Any]) -> float:
    times = [rpc.get("open_ms"), rpc.get("half_close_ms"), rpc.get("complete_ms")]
    times += [r.get("at_ms") for r in rpc.get("responses", [])]
    return max(float(t) for t in times if t is not None)


def _axis(end_ms: float, x: Any, height: int) -> list[str]:
    step = next(
        s
        for s in (100, 250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 1e12)
        if end_ms / s <= 12
    )
    parts = []
    tick = 0.0
    while tick <= end_ms:
        parts.append(
            f'<line x1="{x(tick)}" y1="{_TOP - 14}" x2="{x(tick)}" y2="{height - 24}" '
            'stroke="#eee"/>'
            f'<text x="{x(tick)}" y="{height - 10}" text-anchor="middle" fill="#666">'
            f"{tick / 1000:g} s</text>"
        )
        tick += step
    return parts


def _lane(rpc: Mapping[str, Any], y: float, x: Any, end_ms: float) -> list[str]:
    index = rpc.get("index", 0)
    opened = float(rpc.get("open_ms") or 0.0)
    completed = rpc.get("complete_ms")
    status = rpc.get("status") or "open"
    colour = "#cfe3cf" if status == "OK" else "#f3d0d0" if completed is not None else "#e6e6e6"
    label = f"RPC {index + 1} {rpc.get('kind', '')}"
    if rpc.get("dtmf"):
        label += f" {rpc['dtmf']}"
    right = x(float(completed) if completed is not None else end_ms)
    parts = [
        f'<g class="lane" data-rpc="{index}" data-kind="{escape(str(rpc.get("kind", "")))}">',
        f'<text x="6" y="{y + 16}">{escape(label)}</text>',
        f'<rect x="{x(opened)}" y="{y + 4}" width="{max(right - x(opened), 1.5)}" height="18" '
        f'rx="3" fill="{colour}" stroke="#999"><title>{escape(label)}: {escape(status)}</title>'
        "</rect>",
    ]
    if (half := rpc.get("half_close_ms")) is not None:
        parts.append(
            f'<g class="mark half-close"><title>half-close at {half} ms</title>'
            f'<line x1="{x(half)}" y1="{y}" x2="{x(half)}" y2="{y + 26}" stroke="#333" '
            'stroke-width="2"/></g>'
        )
    for response in rpc.get("responses", []):
        at = x(float(response["at_ms"]))
        event = response.get("event")
        if event:
            colour = _EVENT_COLOURS.get(event, "#333")
            meta = response.get("metadata") or {}
            title = event + (f" {meta}" if meta else "")
            parts.append(
                f'<g class="mark event" data-event="{escape(event)}"><title>{escape(title)} at '
                f'{response["at_ms"]} ms</title><path d="M{at} {y + 3} l5 -7 h-10 z" '
                f'fill="{colour}"/><line x1="{at}" y1="{y + 3}" x2="{at}" y2="{y + 23}" '
                f'stroke="{colour}"/></g>'
            )
        elif response.get("audio_bytes"):
            parts.append(
                f'<circle class="mark audio" cx="{at}" cy="{y + 13}" r="2.5" fill="#2ca02c">'
                f"<title>{escape(response['type'])} audio, {response['audio_bytes']} B at "
                f"{response['at_ms']} ms</title></circle>"
            )
        if response.get("type") == "FINAL" and not response.get("boundary"):
            parts.append(
                f'<rect class="mark final" x="{at - 2}" y="{y + 6}" width="4" height="14" '
                f'fill="#333"><title>FINAL at {response["at_ms"]} ms</title></rect>'
            )
    texts = [r["prompt_text"] for r in rpc.get("responses", []) if r.get("prompt_text")]
    if texts:
        text = " ".join(texts)
        short = text if len(text) <= 110 else text[:107] + "..."
        parts.append(
            f'<text class="prompt" x="{x(opened)}" y="{y + 34}" fill="#555">'
            f"<title>{escape(text)}</title>{escape(short)}</text>"
        )
    parts.append("</g>")
    return parts


def _latency(turn: Mapping[str, Any], y: float, x: Any) -> list[str]:
    """The turn's marks: end of speech → END_OF_INPUT → first reply audio, with the gaps."""
    points = [
        (name, turn.get(key))
        for name, key in (
            ("end of speech", "speech_end_ms"),
            ("END_OF_INPUT", "end_of_input_ms"),
            ("first audio", "first_audio_ms"),
        )
    ]
    known = [(name, float(at)) for name, at in points if at is not None]
    parts = ['<g class="latency">']
    ly = y + 46
    for (name_a, a), (name_b, b) in pairwise(known):
        parts.append(
            f'<line x1="{x(a)}" y1="{ly}" x2="{x(b)}" y2="{ly}" stroke="#e377c2" '
            f'stroke-width="2"><title>{escape(name_a)} → {escape(name_b)}: {b - a:.0f} ms'
            "</title></line>"
            f'<text x="{(x(a) + x(b)) / 2}" y="{ly - 2}" text-anchor="middle" fill="#e377c2" '
            f'font-size="9">{b - a:.0f} ms</text>'
        )
    for name, at in known:
        parts.append(
            f'<circle class="mark latency-mark" cx="{x(at)}" cy="{ly}" r="3" fill="#e377c2">'
            f"<title>{escape(name)} at {at} ms</title></circle>"
        )
    parts.append("</g>")
    return parts


def render_html(call: Mapping[str, Any], *, audio_base: str | None = None) -> str:
    """A page with the chart, then per RPC its prompt text (and audio links when kept)."""
    conv_id = escape(str(call.get("conversation_id", "")))
    rows = []
    for rpc in call.get("rpcs", []):
        texts = " ".join(r["prompt_text"] for r in rpc.get("responses", []) if r.get("prompt_text"))
        events = ", ".join(r["event"] for r in rpc.get("responses", []) if r.get("event"))
        audio = ""
        if audio_base is not None:
            links = [
                f'<audio controls preload="none" src="{audio_base}/rpc/{rpc["index"]}/{side}.wav">'
                "</audio>"
                for side, kept in (rpc.get("audio") or {}).items()
                if kept
            ]
            audio = " ".join(links)
        rows.append(
            f"<tr><td>{rpc['index'] + 1}</td><td>{escape(str(rpc['kind']))}</td>"
            f"<td>{escape(str(rpc.get('status')))}</td><td>{escape(events)}</td>"
            f"<td>{escape(texts)}</td><td>{audio}</td></tr>"
        )
    turns = []
    for turn in call.get("turns", []):
        eoi, first = turn.get("end_of_input_ms"), turn.get("first_audio_ms")
        speech = turn.get("speech_end_ms")
        gaps = []
        if speech is not None and eoi is not None:
            gaps.append(f"end of speech → END_OF_INPUT {eoi - speech:.0f} ms")
        if eoi is not None and first is not None:
            gaps.append(f"END_OF_INPUT → first audio {first - eoi:.0f} ms")
        turns.append(f"<li>turn {turn['turn']} (RPC {turn['rpc'] + 1}): {', '.join(gaps)}</li>")
    transcript = escape(str(call.get("transcript") or ""))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>call {conv_id}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; }}
pre {{ background: #f6f6f6; padding: .6em; white-space: pre-wrap; }}
</style></head><body>
<h1>Call <code>{conv_id}</code></h1>
<p>agent <code>{escape(str(call.get("virtual_agent_id") or "-"))}</code>,
ended: <b class="ended">{escape(str(call.get("ended") or "-"))}</b></p>
<figure id="timeline">{render_svg(call)}</figure>
<h2>Turns</h2><ul class="turns">{"".join(turns) or "<li>none</li>"}</ul>
<h2>RPCs</h2>
<table><tr><th>#</th><th>kind</th><th>status</th><th>events</th><th>prompt text</th>
<th>audio</th></tr>{"".join(rows)}</table>
<h2>Transcript</h2><pre class="transcript">{transcript or "(none)"}</pre>
</body></html>
"""
