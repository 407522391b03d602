"""Instructions per caller frame, for comparing two commits on a noisy, shared machine.

Timings of the per-frame path move by 2-5x with the load other work puts on this host;
instruction counts do not. Run the same fixed workload (N audio RPCs of 500 speech
frames through ``AudioTurn.read``) under callgrind for N = 1 and N = 6 and divide the
difference by 5 x 500 frames, which cancels interpreter start-up (from ``benchmarks/``):

    valgrind --tool=callgrind --callgrind-out-file=cg-1.out python frame_instructions.py 1
    valgrind --tool=callgrind --callgrind-out-file=cg-6.out python frame_instructions.py 6

Put another checkout first on ``PYTHONPATH`` (``CHECKOUT/benchmarks:CHECKOUT:CHECKOUT/plugins``)
to count that commit's code with the same script.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import numpy as np

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.codecs import pcm_to_ulaw
from byova_media.audio.vad import EnergyVAD
from byova_media.audio_turn import AudioTurn
from byova_media.loadtest.scenario import speech_pcm
from conftest import _echo_conversation  # benchmarks/conftest.py: an echo conversation

FRAMES = 500


def _requests() -> list[pb.VoiceVARequest]:
    pcm = np.zeros(160 * FRAMES, dtype=np.int16)
    pcm[1600:] = speech_pcm(20 * FRAMES - 200, seed=7)  # speech to the end: no END_OF_INPUT
    ulaw = pcm_to_ulaw(pcm)
    settings = pb.VoiceInput(encoding=pb.VoiceInput.MULAW_FORMAT, sample_rate_hertz=8000)
    first = pb.VoiceVARequest(conversation_id="bench", audio_input=settings)
    return [first] + [
        pb.VoiceVARequest(
            conversation_id="bench", audio_input=pb.VoiceInput(caller_audio=ulaw[i : i + 160])
        )
        for i in range(0, len(ulaw), 160)
    ]


async def _iterate(requests: list[pb.VoiceVARequest]) -> AsyncIterator[pb.VoiceVARequest]:
    for request in requests:
        yield request


async def main(rpcs: int) -> None:
    requests = _requests()
    conversation = _echo_conversation()
    for _ in range(rpcs):
        turn = AudioTurn(conversation, EnergyVAD)
        await turn.read(requests[0], _iterate(requests[1:]))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
