"""Helpers shared by the voice-stack plugin tests: synthesised caller speech."""

from __future__ import annotations

import asyncio
import sys

import numpy as np

from byova_media.audio.codecs import pcm_to_ulaw, ulaw_to_pcm
from byova_media.audio.resample import resample

__all__ = ["DEMO_GRAMMAR", "spoken", "telephone"]

DEMO_GRAMMAR = """#JSGF V1.0;
grammar test;
public <utt> = [i want to | can i] (talk | speak) to (an agent | a representative)
  | what are your opening hours | what is your address | goodbye ;
"""


#: Renders argv[1] with a fresh eSpeak: the sample rate (4 bytes), then PCM16.
_RENDER = """
import asyncio, sys
from byova_espeak import EspeakTTS

async def main():
    tts = EspeakTTS()
    audio = b"".join([block async for block in tts.synthesize(sys.argv[1])])
    sys.stdout.buffer.write(tts.audio_format.sample_rate.to_bytes(4, "little") + audio)

asyncio.run(main())
"""
_rendered: dict[str, tuple[np.ndarray, int]] = {}


async def spoken(text: str) -> tuple[np.ndarray, int]:
    """``text`` spoken by eSpeak NG: (PCM16, sample rate), the same audio in every run.

    eSpeak's output drifts from one synthesis to the next within a process (its wave
    generator keeps state), so in-process the same text sounds slightly different
    depending on what was spoken before it, and a recogniser test would depend on the
    order of the tests. A fresh process renders each text once per session.
    """
    if text not in _rendered:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _RENDER, text, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0 and len(out) > 4, f"eSpeak could not render {text!r}"
        rate = int.from_bytes(out[:4], "little")
        _rendered[text] = (np.frombuffer(out[4:], dtype=np.int16), rate)
    return _rendered[text]


def telephone(pcm: np.ndarray, sample_rate: int) -> np.ndarray:
    """What the server hears: 8 kHz after a μ-law round trip."""
    return ulaw_to_pcm(pcm_to_ulaw(resample(pcm, sample_rate, 8000)))
