"""The audio engine: codecs, resampling, WAV, prompt framing, jitter buffer, VAD and tones.

Everything works on signed 16-bit little-endian mono PCM held in int16 numpy arrays, except
where a function says it takes or returns bytes.
"""

from __future__ import annotations

from byova_media.audio.codecs import (
    ALAW_SILENCE,
    ULAW_SILENCE,
    Encoding,
    alaw_to_pcm,
    alaw_to_ulaw,
    decode,
    encode,
    pcm_to_alaw,
    pcm_to_ulaw,
    ulaw_to_alaw,
    ulaw_to_pcm,
)
from byova_media.audio.formats import ALAW_8K, L16_8K, L16_16K, ULAW_8K, AudioFormat
from byova_media.audio.framing import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_FIRST_CHUNK_BYTES,
    MAX_CHUNK_BYTES,
    MIN_CHUNK_BYTES,
    PlayoutTracker,
    chunk_ulaw,
    prompt_chunks,
    prompt_ulaw,
    prompt_wav,
    stream_ulaw_chunks,
)
from byova_media.audio.jitter import JitterBuffer, JitterStats
from byova_media.audio.resample import Resampler, resample
from byova_media.audio.tones import comfort_noise, dtmf_tones, silence, tone
from byova_media.audio.vad import (
    EnergyVAD,
    TurnDetector,
    TurnEvent,
    VoiceActivityDetector,
    frame_dbfs,
)
from byova_media.audio.wav import (
    WavAudio,
    WavError,
    is_wav,
    pcm_wav,
    read_wav,
    to_ulaw8k,
    ulaw_wav,
    wav_to_ulaw,
)

__all__ = [
    "ALAW_8K",
    "ALAW_SILENCE",
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_FIRST_CHUNK_BYTES",
    "L16_8K",
    "L16_16K",
    "MAX_CHUNK_BYTES",
    "MIN_CHUNK_BYTES",
    "ULAW_8K",
    "ULAW_SILENCE",
    "AudioFormat",
    "Encoding",
    "EnergyVAD",
    "JitterBuffer",
    "JitterStats",
    "PlayoutTracker",
    "Resampler",
    "TurnDetector",
    "TurnEvent",
    "VoiceActivityDetector",
    "WavAudio",
    "WavError",
    "alaw_to_pcm",
    "alaw_to_ulaw",
    "chunk_ulaw",
    "comfort_noise",
    "decode",
    "dtmf_tones",
    "encode",
    "frame_dbfs",
    "is_wav",
    "pcm_to_alaw",
    "pcm_to_ulaw",
    "pcm_wav",
    "prompt_chunks",
    "prompt_ulaw",
    "prompt_wav",
    "read_wav",
    "resample",
    "silence",
    "stream_ulaw_chunks",
    "to_ulaw8k",
    "tone",
    "ulaw_to_alaw",
    "ulaw_to_pcm",
    "ulaw_wav",
    "wav_to_ulaw",
]
