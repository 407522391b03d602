"""Helpers shared by the voice-stack plugin tests: synthesised caller speech."""

from __future__ import annotations

import numpy as np

from byova_media.audio.codecs import pcm_to_ulaw, ulaw_to_pcm
from byova_media.audio.resample import resample

__all__ = ["DEMO_GRAMMAR", "spoken", "telephone"]

DEMO_GRAMMAR = """#JSGF V1.0;
grammar test;
public <utt> = [i want to | can i] (talk | speak) to (an agent | a representative)
  | what are your opening hours | what is your address | goodbye ;
"""


async def spoken(text: str) -> tuple[np.ndarray, int]:
    """``text`` spoken by eSpeak NG: (PCM16, sample rate)."""
    from byova_espeak import EspeakTTS

    tts = EspeakTTS()
    audio = b"".join([block async for block in tts.synthesize(text)])
    return np.frombuffer(audio, dtype=np.int16), tts.audio_format.sample_rate


def telephone(pcm: np.ndarray, sample_rate: int) -> np.ndarray:
    """What the server hears: 8 kHz after a μ-law round trip."""
    return ulaw_to_pcm(pcm_to_ulaw(resample(pcm, sample_rate, 8000)))
