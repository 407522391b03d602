"""END_OF_INPUT → first audio byte for each cloud adapter, against its local fake.

Each case runs caller turns through the Webex simulator into a real server whose agent
uses one adapter talking to a local fake of the vendor's API that answers at once, so
what remains is the framework's own work (plus the fake's, a few ms). The adapter's own
time-to-first-byte metric splits that into the part spent waiting on the "vendor" and
the rest. The ``echo`` agent, which needs no vendor, is the reference in the same run.
Run::

    pytest benchmarks/test_cloud_adapters.py --benchmark-enable -q -s -p no:randomly
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections.abc import AsyncIterator
from typing import Any

import pytest

import byova_media
from byova_media.agent import TurnMetrics
from byova_media.app import App
from tests.conftest import speech_like
from tests.plugins._fake_deepgram import serve_fake_deepgram
from tests.plugins._fake_openai import serve_fake_openai
from tests.plugins._fake_realtime import Answer, serve_fake_realtime

TURNS = 5
KEY = "sk-bench"
CASES = ["echo (no vendor)", "openai stt+tts", "deepgram stt + openai tts", "openai_realtime"]


class _Collect:
    def __init__(self) -> None:
        self.turns: list[TurnMetrics] = []

    @byova_media.hookimpl
    def byova_turn_metrics(self, app: App, metrics: TurnMetrics) -> None:
        self.turns.append(metrics)


@contextlib.asynccontextmanager
async def _setup(case: str) -> AsyncIterator[tuple[list[str], dict[str, str], str]]:
    """Plugins, environment and agent id of one case, with its fakes running."""
    if case.startswith("echo"):
        yield ["echo"], {}, "echo"
        return
    if case == "openai_realtime":
        async with serve_fake_realtime(KEY) as (api, url):
            api.script = [Answer(200)] + [Answer(300) for _ in range(TURNS)]
            api.speed = 50.0
            env = {
                "BYOVA_MEDIA_OPENAI_REALTIME_BASE_URL": url,
                "BYOVA_MEDIA_OPENAI_REALTIME_API_KEY": KEY,
            }
            yield ["openai_realtime"], env, "openai_realtime"
        return
    async with serve_fake_openai() as (voice, voice_url), serve_fake_deepgram(KEY) as (_, dg_url):
        voice.ms_per_char = 2.0
        env = {"BYOVA_MEDIA_DEMO_TTS": "openai", "BYOVA_MEDIA_OPENAI_BASE_URL": voice_url}
        if case.startswith("deepgram"):
            env |= {
                "BYOVA_MEDIA_DEMO_STT": "deepgram",
                "BYOVA_MEDIA_DEEPGRAM_BASE_URL": dg_url,
                "BYOVA_MEDIA_DEEPGRAM_API_KEY": KEY,
            }
            yield ["demo", "openai", "deepgram"], env, "demo"
        else:
            env |= {"BYOVA_MEDIA_DEMO_STT": "openai"}
            yield ["demo", "openai"], env, "demo"


def _vendor_ms(app: App) -> dict[str, float]:
    """Mean time to first byte per adapter (the fake's share of the turn), in ms."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for metric in app.metrics.registry.collect():
        if metric.name != "byova_adapter_first_byte_seconds":
            continue
        for sample in metric.samples:
            adapter = sample.labels.get("adapter", "")
            if sample.name.endswith("_sum"):
                sums[adapter] = sums.get(adapter, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                counts[adapter] = counts.get(adapter, 0.0) + sample.value
    return {a: sums[a] * 1000 / counts[a] for a in sums if counts.get(a)}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_end_of_input_to_first_audio(
    benchmark: Any, byova_server: Any, webex: Any, case: str
) -> None:
    collect = _Collect()
    vendor: dict[str, float] = {}

    async def session() -> None:
        async with _setup(case) as (plugins, env, agent):
            server = await byova_server(
                plugins=plugins, extra_plugins=[("collect", collect)], env=env
            )
            call = (await webex(server)).call(agent)
            welcome = await call.start()
            await asyncio.sleep(len(welcome.audio) / 8000)
            for _ in range(TURNS):
                result = await call.say(speech_like(700))
                assert result.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
                assert result.audio
                await asyncio.sleep(len(result.audio) / 8000)  # listen: no barge-in
            vendor.update(_vendor_ms(server.app))

    benchmark.group = "END_OF_INPUT → first audio byte (cloud adapters vs local fakes)"
    benchmark.pedantic(lambda: asyncio.get_event_loop().run_until_complete(session()), rounds=1)
    turns = [m for m in collect.turns if m.end_of_input_s is not None]
    latencies = [m.latency_ms("end_of_input_s", "first_audio_sent_s") for m in turns]
    values = [v for v in latencies if v is not None]
    assert len(values) == TURNS
    median = statistics.median(values)
    benchmark.extra_info.update({"eoi_to_first_audio_ms": median, **vendor})
    parts = ", ".join(f"{a} first byte {ms:.1f} ms" for a, ms in sorted(vendor.items()))
    print(f"\n{case:28s} EOI→first audio median {median:6.1f} ms; {parts or 'no vendor'}")
