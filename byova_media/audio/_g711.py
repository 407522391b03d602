"""G.711 μ-law and A-law as numpy look-up tables, computed from the ITU segment formulas.

The tables are built with vectorised arithmetic (not by calling the C codec) so that the
test comparing them with ``audioop`` is a real cross-check of two independent paths.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_DECODE",
    "ALAW_ENCODE",
    "ALAW_TO_ULAW",
    "ULAW_DECODE",
    "ULAW_ENCODE",
    "ULAW_TO_ALAW",
]

_QUANT_MASK = 0x0F
_SEG_SHIFT = 4
_ULAW_BIAS = 0x84
# μ-law encodes a 14-bit magnitude; 8159 is the largest magnitude with a code (G.711 table 2a).
_ULAW_CLIP = 8159
# Upper bounds of the 8 segments for μ-law (14-bit, biased) and A-law (13-bit) magnitudes.
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


_Scalar = TypeVar("_Scalar", bound=np.generic)


def _frozen(array: npt.NDArray[_Scalar]) -> npt.NDArray[_Scalar]:
    """Make a table read-only: it is shared by every caller."""
    array.flags.writeable = False
    return array


def _all_int16() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its uint16 bit pattern (the LUT index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = _all_int16() >> 2  # 16-bit → 14-bit, arithmetic shift as in the reference coder
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, magnitude, side="left")
    code = (seg << _SEG_SHIFT) | ((magnitude >> (np.minimum(seg, 7) + 1)) & _QUANT_MASK)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = _all_int16() >> 3  # 16-bit → 13-bit
    negative = pcm < 0
    mask = np.where(negative, 0x55, 0xD5)
    magnitude = np.where(negative, -pcm - 1, pcm)
    seg = np.searchsorted(_ALAW_SEG_END, magnitude, side="left")
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = (seg << _SEG_SHIFT) | ((magnitude >> shift) & _QUANT_MASK)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & _QUANT_MASK) << 3) + _ULAW_BIAS) << ((code >> _SEG_SHIFT) & 0x07)
    return np.where(code & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (code >> _SEG_SHIFT) & 0x07
    t = (code & _QUANT_MASK) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(code & 0x80, t, -t).astype(np.int16)


ULAW_ENCODE = _frozen(_ulaw_encode_table())
"""int16 sample (viewed as uint16) → μ-law code."""
ALAW_ENCODE = _frozen(_alaw_encode_table())
"""int16 sample (viewed as uint16) → A-law code."""
ULAW_DECODE = _frozen(_ulaw_decode_table())
"""μ-law code → int16 sample."""
ALAW_DECODE = _frozen(_alaw_decode_table())
"""A-law code → int16 sample."""
ALAW_TO_ULAW = _frozen(ULAW_ENCODE[ALAW_DECODE.view(np.uint16)])
"""A-law code → μ-law code (decode then re-encode, as one 256-entry table)."""
ULAW_TO_ALAW = _frozen(ALAW_ENCODE[ULAW_DECODE.view(np.uint16)])
"""μ-law code → A-law code."""
