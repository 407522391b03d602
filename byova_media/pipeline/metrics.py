"""Per-turn latencies of a voice pipeline, from the engine's :class:`TurnMetrics`.

The engine fills speech end, END_OF_INPUT and first audio sent; the pipeline marks
``stt_final``, ``llm_first_token`` and ``tts_first_audio``. Plugins get the figures
through ``byova_turn_metrics`` and can log them with :func:`log_turn_latencies`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from byova_media.agent import TurnMetrics

__all__ = ["TurnLatencies", "log_turn_latencies"]

log = logging.getLogger("byova_media.pipeline.latency")


@dataclass(frozen=True)
class TurnLatencies:
    """Milliseconds between a turn's milestones; ``None`` where one was not reached."""

    end_of_speech_to_eoi_ms: float | None
    stt_final_delay_ms: float | None
    llm_first_token_ms: float | None
    tts_first_audio_ms: float | None
    eoi_to_first_audio_ms: float | None

    @classmethod
    def of(cls, metrics: TurnMetrics) -> TurnLatencies:
        m = metrics
        return cls(
            end_of_speech_to_eoi_ms=m.latency_ms("speech_end_s", "end_of_input_s"),
            stt_final_delay_ms=m.latency_ms("end_of_input_s", "stt_final"),
            llm_first_token_ms=m.latency_ms("stt_final", "llm_first_token"),
            tts_first_audio_ms=m.latency_ms("llm_first_token", "tts_first_audio"),
            eoi_to_first_audio_ms=m.latency_ms("end_of_input_s", "first_audio_sent_s"),
        )

    def describe(self) -> str:
        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f}"

        return (
            f"speech_end→EOI {fmt(self.end_of_speech_to_eoi_ms)} ms, "
            f"STT final +{fmt(self.stt_final_delay_ms)} ms, "
            f"LLM first token +{fmt(self.llm_first_token_ms)} ms, "
            f"TTS first audio +{fmt(self.tts_first_audio_ms)} ms, "
            f"EOI→first audio sent {fmt(self.eoi_to_first_audio_ms)} ms"
        )


def log_turn_latencies(metrics: TurnMetrics) -> TurnLatencies:
    """Log one turn's latencies (INFO) and return them."""
    latencies = TurnLatencies.of(metrics)
    log.info("turn %d latency: %s", metrics.turn, latencies.describe())
    return latencies
