"""WAV reading and writing, including malformed and fuzzed input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from byova_media.audio.codecs import pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm
from byova_media.audio.tones import tone
from byova_media.audio.wav import (
    WavError,
    is_wav,
    pcm_wav,
    read_wav,
    to_ulaw8k,
    ulaw_wav,
    wav_to_ulaw,
)

GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def make_wav(
    tag: int,
    channels: int,
    rate: int,
    bits: int,
    payload: bytes,
    *,
    extensible: bool = False,
    extra_chunks: bytes = b"",
) -> bytes:
    block = channels * bits // 8
    if extensible:
        fmt = (
            struct.pack(
                "<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0
            )
            + tag.to_bytes(2, "little")
            + GUID_TAIL
        )
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    pad = b"\x00" if len(payload) % 2 else b""
    body = (
        b"WAVE"
        + extra_chunks
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(payload))
        + payload
        + pad
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


PCM = tone(440, 200, 8000, -6.0)  # 1600 samples


def test_ulaw_wav_is_exactly_what_webex_wants() -> None:
    ulaw = pcm_to_ulaw(PCM)
    wav = ulaw_wav(ulaw)
    assert wav[:4] == b"RIFF"
    assert wav[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<IHHIIHH", wav, 16) == (16, 7, 1, 8000, 8000, 1, 8)
    assert wav[36:40] == b"data"
    assert struct.unpack_from("<I", wav, 40)[0] == len(ulaw)
    assert struct.unpack_from("<I", wav, 4)[0] == len(wav) - 8
    assert wav[44:] == ulaw
    assert wav_to_ulaw(wav) == ulaw  # 8 kHz μ-law passes through untouched


def test_odd_ulaw_payload_is_padded_with_silence() -> None:
    wav = ulaw_wav(b"\x00\x01\x02")
    assert len(wav) == 48
    assert wav[-1] == 0xFF
    assert wav_to_ulaw(wav) == b"\x00\x01\x02"


@pytest.mark.parametrize(
    ("name", "wav", "tolerance"),
    [
        ("pcm16", make_wav(1, 1, 8000, 16, PCM.tobytes()), 0),
        ("pcm8", make_wav(1, 1, 8000, 8, ((PCM >> 8) + 128).astype(np.uint8).tobytes()), 256),
        (
            "pcm24",
            make_wav(
                1,
                1,
                8000,
                24,
                b"".join(b"\x00" + int(v).to_bytes(2, "little", signed=True) for v in PCM),
            ),
            0,
        ),
        ("pcm32", make_wav(1, 1, 8000, 32, (PCM.astype(np.int32) << 16).tobytes()), 0),
        ("float32", make_wav(3, 1, 8000, 32, (PCM / 32767.0).astype("<f4").tobytes()), 1),
        ("float64", make_wav(3, 1, 8000, 64, (PCM / 32767.0).astype("<f8").tobytes()), 1),
        ("mulaw", make_wav(7, 1, 8000, 8, pcm_to_ulaw(PCM)), 1100),
        ("alaw", make_wav(6, 1, 8000, 8, pcm_to_alaw(PCM)), 1100),
        ("extensible", make_wav(1, 1, 8000, 16, PCM.tobytes(), extensible=True), 0),
        ("stereo", make_wav(1, 2, 8000, 16, np.repeat(PCM, 2).tobytes()), 0),
        (
            "extra-chunk",
            make_wav(1, 1, 8000, 16, PCM.tobytes(), extra_chunks=b"LIST\x03\x00\x00\x00abc\x00"),
            0,
        ),
    ],
)
def test_reads_every_supported_format(name: str, wav: bytes, tolerance: int) -> None:
    assert is_wav(wav)
    audio = read_wav(wav)
    assert audio.sample_rate == 8000
    assert audio.pcm.dtype == np.int16
    assert audio.pcm.size == PCM.size
    assert np.max(np.abs(audio.pcm.astype(np.int32) - PCM)) <= tolerance
    assert audio.duration_ms == 200


def test_stereo_is_mixed_to_mono() -> None:
    left, right = np.full(10, 1000, np.int16), np.full(10, 3000, np.int16)
    stereo = np.stack([left, right], axis=1).ravel()
    assert read_wav(make_wav(1, 2, 8000, 16, stereo.tobytes())).pcm.tolist() == [2000] * 10


def test_any_rate_is_normalised_to_8k_ulaw() -> None:
    pcm48 = tone(440, 200, 48000, -6.0)
    ulaw = wav_to_ulaw(pcm_wav(pcm48, 48000))
    assert len(ulaw) == 1600
    assert ulaw == to_ulaw8k(pcm48, 48000)
    level = np.sqrt(np.mean(ulaw_to_pcm(ulaw)[200:-200].astype(float) ** 2))
    assert abs(level - 32767 * 10 ** (-6 / 20) / np.sqrt(2)) < 300


def test_pcm_wav_round_trips() -> None:
    audio = read_wav(pcm_wav(PCM, 16000))
    assert audio.sample_rate == 16000
    assert np.array_equal(audio.pcm, PCM)


def test_streaming_unknown_sizes_are_accepted() -> None:
    wav = bytearray(make_wav(1, 1, 8000, 16, PCM.tobytes()))
    wav[4:8] = b"\xff\xff\xff\xff"
    wav[40:44] = b"\xff\xff\xff\xff"
    assert np.array_equal(read_wav(bytes(wav)).pcm, PCM)


GOOD = make_wav(1, 1, 8000, 16, PCM[:100].tobytes())


def patched(offset: int, value: bytes, data: bytes = GOOD) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


@pytest.mark.parametrize(
    ("wav", "message"),
    [
        (b"", "RIFF/WAVE"),
        (b"RIFX" + GOOD[4:], "RIFF/WAVE"),
        (GOOD[:-10], "truncated"),
        (patched(40, struct.pack("<I", 10**9)), "declares"),
        (patched(40, struct.pack("<I", 201)), "declares"),
        (patched(4, struct.pack("<I", 0x7FFFFFF0)), "truncated"),
        (b"RIFF" + struct.pack("<I", 4) + b"WAVE", "no fmt chunk"),
        (make_wav(1, 1, 8000, 16, b"")[:36].replace(b"RIFF\x24", b"RIFF\x1c"), "no data"),
        (patched(22, b"\x00\x00"), "channel count 0"),
        (patched(24, b"\x00\x00\x00\x00"), "sample rate 0"),
        (patched(20, b"\x02\x00"), "unsupported encoding"),
        (make_wav(1, 1, 8000, 12, b"\x00" * 4), "unsupported encoding"),
        (patched(32, b"\x03\x00"), "block align"),
        (make_wav(1, 1, 8000, 16, b"\x00" * 5), "whole number"),
        (patched(16, struct.pack("<I", 8)), "at least 16"),
        (make_wav(1, 1, 8000, 16, b"", extensible=True)[:36], "declares"),
        (
            make_wav(1, 1, 8000, 16, b"\x00\x00", extensible=True).replace(GUID_TAIL, b"x" * 14),
            "sub-format",
        ),
    ],
)
def test_malformed_files_raise_wav_error_saying_why(wav: bytes, message: str) -> None:
    with pytest.raises(WavError, match=message):
        read_wav(wav)


def test_size_cap_applies_before_parsing() -> None:
    with pytest.raises(WavError, match="limit"):
        read_wav(GOOD, max_bytes=100)


@pytest.mark.parametrize("rate", [44101, 139_992, 7999])
def test_unsupported_rate_raises_wav_error(rate: int) -> None:
    with pytest.raises(WavError, match=f"unsupported sample rate {rate} Hz"):
        wav_to_ulaw(make_wav(1, 1, rate, 16, PCM[:10].tobytes()))


def _valid_wavs() -> list[bytes]:
    return [
        GOOD,
        make_wav(7, 1, 8000, 8, pcm_to_ulaw(PCM[:64])),
        make_wav(3, 2, 22050, 32, np.zeros(40, "<f4").tobytes(), extensible=True),
    ]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    base=st.sampled_from(_valid_wavs()),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 300),
    insert=st.binary(max_size=16),
)
def test_fuzzed_files_only_raise_wav_error(
    base: bytes, edits: list[tuple[int, int]], cut: int, insert: bytes
) -> None:
    data = bytearray(base)
    for offset, value in edits:
        if offset < len(data):
            data[offset] = value
    data = data[: max(cut, 0) or len(data)]
    position = cut % (len(data) + 1)
    mutated = bytes(data[:position] + insert + data[position:])
    try:
        audio = read_wav(mutated, max_bytes=4096)
        ulaw = wav_to_ulaw(mutated, max_bytes=4096)
    except WavError:
        return
    assert audio.pcm.dtype == np.int16
    assert audio.pcm.size <= len(mutated)
    assert isinstance(ulaw, bytes)
