"""G.711 μ-law / A-law and L16 codecs between wire bytes and PCM16 numpy arrays.

Decoding always uses the C codec (it beats a numpy table gather at every size); encoding uses
the C codec for short frames and a 65,536-entry numpy table for long prompts, where the
table is many times faster. Both paths produce identical bytes (see the tests).
"""

from __future__ import annotations

import enum
import sys

import numpy as np
import numpy.typing as npt

from byova_media.audio import _g711
from byova_media.audio._audioop import audioop

__all__ = [
    "ALAW_SILENCE",
    "ULAW_SILENCE",
    "Encoding",
    "alaw_to_pcm",
    "alaw_to_ulaw",
    "decode",
    "encode",
    "pcm_to_alaw",
    "pcm_to_ulaw",
    "ulaw_to_alaw",
    "ulaw_to_pcm",
]

ULAW_SILENCE = 0xFF
"""The μ-law code for digital silence (sample value 0)."""
ALAW_SILENCE = 0xD5
"""The A-law code for digital silence (sample value 8, the smallest positive step)."""

# Below this many samples the C encoder wins (a numpy call costs ~1 µs of fixed overhead);
# above it the table gather wins by an order of magnitude. Measured in benchmarks/README.md.
_C_ENCODE_MAX_SAMPLES = 1024
_LE_INT16 = np.dtype("<i2")
_NATIVE_LE = sys.byteorder == "little"

PcmLike = npt.NDArray[np.int16] | bytes | bytearray | memoryview


class Encoding(enum.Enum):
    """Audio sample encodings spoken on the BYOVA wire."""

    MULAW = "mulaw"
    ALAW = "alaw"
    L16 = "l16"


def _samples(pcm: PcmLike) -> npt.NDArray[np.int16]:
    """View PCM16 input as a contiguous native int16 array, rejecting anything else."""
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise ValueError(f"PCM must be an int16 array, got dtype {pcm.dtype}")
        return np.ascontiguousarray(pcm)
    if len(pcm) % 2:
        raise ValueError(f"PCM16 bytes must have an even length, got {len(pcm)}")
    return _from_le_bytes(pcm)


def _from_le_bytes(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    array = np.frombuffer(data, dtype=_LE_INT16)
    return array if _NATIVE_LE else array.astype(np.int16)


def _c_decoded(data: bytes) -> npt.NDArray[np.int16]:
    # audioop writes native-endian samples, so no byte swap is ever needed here.
    return np.frombuffer(data, dtype=np.int16)


def ulaw_to_pcm(data: bytes) -> npt.NDArray[np.int16]:
    """Decode μ-law bytes to PCM16 samples (a read-only array: copy before editing in place)."""
    return _c_decoded(audioop.ulaw2lin(data, 2))


def alaw_to_pcm(data: bytes) -> npt.NDArray[np.int16]:
    """Decode A-law bytes to PCM16 samples (a read-only array: copy before editing in place)."""
    return _c_decoded(audioop.alaw2lin(data, 2))


def pcm_to_ulaw(pcm: PcmLike) -> bytes:
    """Encode PCM16 samples (int16 array or little-endian bytes) to μ-law bytes."""
    samples = _samples(pcm)
    if samples.size <= _C_ENCODE_MAX_SAMPLES:
        return audioop.lin2ulaw(samples.data, 2)
    return _g711.ULAW_ENCODE.take(samples.view(np.uint16)).tobytes()


def pcm_to_alaw(pcm: PcmLike) -> bytes:
    """Encode PCM16 samples (int16 array or little-endian bytes) to A-law bytes."""
    samples = _samples(pcm)
    if samples.size <= _C_ENCODE_MAX_SAMPLES:
        return audioop.lin2alaw(samples.data, 2)
    return _g711.ALAW_ENCODE.take(samples.view(np.uint16)).tobytes()


def alaw_to_ulaw(data: bytes) -> bytes:
    """Transcode A-law to μ-law in one table look-up per byte (same as decode + encode)."""
    return _g711.ALAW_TO_ULAW.take(np.frombuffer(data, dtype=np.uint8)).tobytes()


def ulaw_to_alaw(data: bytes) -> bytes:
    """Transcode μ-law to A-law in one table look-up per byte (same as decode + encode)."""
    return _g711.ULAW_TO_ALAW.take(np.frombuffer(data, dtype=np.uint8)).tobytes()


def decode(data: bytes, encoding: Encoding) -> npt.NDArray[np.int16]:
    """Decode wire bytes to PCM16; for L16 (little-endian) an odd trailing byte is dropped."""
    if encoding is Encoding.MULAW:
        return ulaw_to_pcm(data)
    if encoding is Encoding.ALAW:
        return alaw_to_pcm(data)
    usable = len(data) & ~1
    return _from_le_bytes(data if usable == len(data) else data[:usable])


def encode(pcm: npt.NDArray[np.int16], encoding: Encoding) -> bytes:
    """Encode PCM16 samples to wire bytes (L16 is little-endian)."""
    if encoding is Encoding.MULAW:
        return pcm_to_ulaw(pcm)
    if encoding is Encoding.ALAW:
        return pcm_to_alaw(pcm)
    return _samples(pcm).astype(_LE_INT16, copy=False).tobytes()
