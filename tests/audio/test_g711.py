"""G.711 and L16 codecs: both codec paths agree everywhere, and round trips hold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from byova_media.audio import _g711
from byova_media.audio._audioop import audioop
from byova_media.audio.codecs import (
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

ALL_INT16 = np.arange(65536, dtype=np.uint16).view(np.int16)
ALL_CODES = bytes(range(256))
EXTREMES = np.array(
    [-32768, -32767, -31613, -31612, 31611, 31612, 31613, 32767, 0, -1, 1], dtype=np.int16
)


@pytest.mark.parametrize(
    ("table", "c_encode"),
    [(_g711.ULAW_ENCODE, audioop.lin2ulaw), (_g711.ALAW_ENCODE, audioop.lin2alaw)],
    ids=["mulaw", "alaw"],
)
def test_encode_table_matches_c_codec_for_every_int16(table, c_encode) -> None:
    assert table.tobytes() == c_encode(ALL_INT16.tobytes(), 2)


@pytest.mark.parametrize(
    ("table", "c_decode"),
    [(_g711.ULAW_DECODE, audioop.ulaw2lin), (_g711.ALAW_DECODE, audioop.alaw2lin)],
    ids=["mulaw", "alaw"],
)
def test_decode_table_matches_c_codec_for_every_code(table, c_decode) -> None:
    assert table.tobytes() == c_decode(ALL_CODES, 2)


@pytest.mark.parametrize("encoder", [pcm_to_ulaw, pcm_to_alaw])
def test_short_and_long_inputs_take_both_paths_with_identical_bytes(encoder) -> None:
    whole = encoder(ALL_INT16)  # long: table path
    pieces = b"".join(encoder(ALL_INT16[i : i + 160]) for i in range(0, 65536, 160))  # C path
    assert whole == pieces


@pytest.mark.parametrize("encoding", [Encoding.MULAW, Encoding.ALAW])
def test_extreme_samples_encode_without_error(encoding) -> None:
    codes = encode(EXTREMES, encoding)
    decoded = decode(codes, encoding)
    assert len(codes) == EXTREMES.size
    assert decoded[0] < -30000
    assert decoded[7] > 30000


def test_decode_accepts_all_codes_and_silence_is_zero() -> None:
    assert ulaw_to_pcm(bytes([ULAW_SILENCE]))[0] == 0
    assert ulaw_to_pcm(ALL_CODES).size == 256
    assert alaw_to_pcm(ALL_CODES).size == 256


@given(st.binary(max_size=2000))
def test_code_round_trip_is_stable(codes: bytes) -> None:
    """Decoding then encoding a code gives the code back (except μ-law's two zeros)."""
    again = pcm_to_ulaw(ulaw_to_pcm(codes))
    assert ulaw_to_pcm(again).tobytes() == ulaw_to_pcm(codes).tobytes()
    assert pcm_to_alaw(alaw_to_pcm(codes)) == codes


@given(st.lists(st.integers(-32768, 32767), max_size=3000))
def test_pcm_round_trip_error_is_bounded(values: list[int]) -> None:
    pcm = np.array(values, dtype=np.int16)
    for encoding in (Encoding.MULAW, Encoding.ALAW):
        back = decode(encode(pcm, encoding), encoding).astype(np.int32)
        error = np.abs(back - pcm)
        # G.711 keeps 4 mantissa bits: the error is under 1/16 of the magnitude (+ a step).
        assert np.all(error <= np.abs(pcm.astype(np.int32)) // 16 + 1100)


@given(st.binary(max_size=500))
def test_transcoding_tables_equal_decode_then_encode(codes: bytes) -> None:
    assert alaw_to_ulaw(codes) == pcm_to_ulaw(alaw_to_pcm(codes))
    assert ulaw_to_alaw(codes) == pcm_to_alaw(ulaw_to_pcm(codes))


def test_l16_is_little_endian_and_drops_an_odd_byte() -> None:
    assert decode(b"\x01\x02\x03", Encoding.L16).tolist() == [0x0201]
    assert encode(np.array([0x0201, -2], dtype=np.int16), Encoding.L16) == b"\x01\x02\xfe\xff"


def test_bytes_input_and_bad_input() -> None:
    assert pcm_to_ulaw(np.zeros(3, dtype=np.int16).tobytes()) == b"\xff\xff\xff"
    with pytest.raises(ValueError, match="even length"):
        pcm_to_ulaw(b"\x00")
    with pytest.raises(ValueError, match="int16"):
        pcm_to_ulaw(np.zeros(3, dtype=np.float32))  # type: ignore[arg-type]


def test_non_contiguous_arrays_are_encoded_correctly() -> None:
    pcm = np.arange(-3000, 3000, dtype=np.int16)
    assert pcm_to_ulaw(pcm[::2]) == pcm_to_ulaw(pcm[::2].copy())
