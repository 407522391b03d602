"""Per-turn latencies of the offline voice stack (demo agent), measured in real time.

Each turn sends synthesised caller speech through the Webex simulator at real-time
pace to a server running the ``demo`` plugin and records the engine's and the
pipeline's milestones. The figures are medians over the turns (printed, and stored
in the benchmark's ``extra_info``). Run::

    pytest benchmarks/test_voice_turns.py --benchmark-enable -q -s
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import pytest

import byova_media
from byova_media.agent import TurnMetrics
from byova_media.app import App
from byova_media.audio.codecs import pcm_to_ulaw, ulaw_to_pcm
from byova_media.audio.resample import resample
from byova_media.pipeline import TurnLatencies

PHRASES = ["what are your opening hours", "what is your address"] * 4


class _Collect:
    def __init__(self) -> None:
        self.turns: list[TurnMetrics] = []

    @byova_media.hookimpl
    def byova_turn_metrics(self, app: App, metrics: TurnMetrics) -> None:
        self.turns.append(metrics)


async def _speech(text: str) -> Any:
    import numpy as np

    from byova_espeak import EspeakTTS

    tts = EspeakTTS()
    raw = b"".join([b async for b in tts.synthesize(text)])
    pcm = np.frombuffer(raw, dtype=np.int16)
    return ulaw_to_pcm(pcm_to_ulaw(resample(pcm, tts.audio_format.sample_rate, 8000)))


@pytest.mark.slow
@pytest.mark.parametrize("stt_mode", ["streaming", "batch"])
def test_offline_turn_latencies(
    benchmark: Any, byova_server: Any, webex: Any, stt_mode: str
) -> None:
    """Streaming recognition (the default) beside batch recognition after END_OF_INPUT."""
    collect = _Collect()
    figures: dict[str, float] = {}

    async def session() -> None:
        env = {"BYOVA_MEDIA_DEMO_STREAMING_STT": str(stt_mode == "streaming").lower()}
        server = await byova_server(plugins=["demo"], extra_plugins=[("collect", collect)], env=env)
        call = (await webex(server, realtime=True)).call("demo")
        welcome = await call.start()
        await asyncio.sleep(len(welcome.audio) / 8000)
        for phrase in PHRASES:
            result = await call.say(await _speech(phrase), sample_rate=8000)
            assert result.events == ["START_OF_INPUT", "END_OF_INPUT"]
            await asyncio.sleep(len(result.audio) / 8000)  # listen to the answer

    def run() -> None:
        asyncio.get_event_loop().run_until_complete(session())

    benchmark.group = "voice turn (offline stack)"
    benchmark.pedantic(run, rounds=1, iterations=1)
    rows = [TurnLatencies.of(m) for m in collect.turns]
    assert len(rows) == len(PHRASES)
    for name in TurnLatencies.__dataclass_fields__:
        values = [getattr(r, name) for r in rows if getattr(r, name) is not None]
        figures[name] = statistics.median(values)
    benchmark.extra_info.update(figures)
    print()
    for name, value in figures.items():
        print(f"{stt_mode:9s} {name:28s} median {value:7.1f} ms over {len(rows)} turns")
