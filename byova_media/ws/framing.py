"""The engine's responses of one virtual RPC, reshaped for the socket.

Three differences from gRPC, decided in docs/transports.md:

- START_OF_INPUT and END_OF_INPUT go out as standalone event-only FINALs (Cisco's sample
  and the only public WebSocket gateway do so; reference §7.4), each a logical reply
  of its own. The engine marks them CHUNK so that they never count as an RPC's FINAL.
- Reply audio goes out in CHUNKs of 320 B to 32 KiB (reference §6): small pieces are
  merged with the next one, large ones split; a tail shorter than 320 B is padded with
  μ-law silence when the reply's FINAL comes, or dropped when a barge-in cut the reply.
- The FINAL of a streamed reply carries a prompt with empty audio (reference §7.3).
- A FINAL holding whole prompts (``reply_mode = "wav"``) is streamed the same way: the
  WebSocket contract is raw μ-law (reference §6), so WAV prompts are unwrapped into CHUNKs.
"""

from __future__ import annotations

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.wav import is_wav, wav_to_ulaw

__all__ = ["MAX_CHUNK_BYTES", "MIN_CHUNK_BYTES", "ReplyFramer"]

MIN_CHUNK_BYTES = 320  # 40 ms of 8 kHz μ-law
MAX_CHUNK_BYTES = 32 * 1024
_ULAW_SILENCE = b"\xff"
_BOUNDARIES = frozenset({pb.OutputEvent.START_OF_INPUT, pb.OutputEvent.END_OF_INPUT})
_CHUNK = pb.VoiceVAResponse.CHUNK
_FINAL = pb.VoiceVAResponse.FINAL

#: A response to write, and whether its FINAL needs the empty-audio prompt.
Framed = tuple[pb.VoiceVAResponse, bool]


def is_boundary(response: pb.VoiceVAResponse) -> bool:
    """A START_OF_INPUT or END_OF_INPUT response (no prompts)."""
    return (
        len(response.output_events) == 1
        and response.output_events[0].event_type in _BOUNDARIES
        and not response.prompts
    )


class ReplyFramer:
    """Reframes the responses of one virtual RPC; :meth:`frame` returns what to write."""

    def __init__(self) -> None:
        self._pending = b""
        self._text = ""
        self._bargeable = False
        self._streamed = False

    def frame(self, response: pb.VoiceVAResponse) -> list[Framed]:
        if is_boundary(response):
            event = pb.VoiceVAResponse(response_type=_FINAL)
            event.output_events.extend(response.output_events)
            return [(event, False)]
        if response.response_type == _CHUNK and all(p.audio_content for p in response.prompts):
            out: list[Framed] = []
            for prompt in response.prompts:
                out.extend(self._audio(prompt))
            if not response.prompts and response.output_events:
                out.append((response, False))
            return out
        if response.response_type == _FINAL:
            out = []
            if any(p.audio_content for p in response.prompts):
                out = self._unwrap(response)
                response = pb.VoiceVAResponse()
                response.CopyFrom(out.pop()[0])
            out += self._flush()
            out.append((response, self._streamed))
            self._streamed = False
            return out
        return [(response, False)]

    def drop_bargeable_tail(self) -> None:
        """The caller barged in: a held-back tail of a bargeable prompt is never sent."""
        if self._bargeable:
            self._pending = b""

    def _unwrap(self, final: pb.VoiceVAResponse) -> list[Framed]:
        """CHUNKs of a FINAL's prompt audio, then (last) the FINAL without that audio."""
        out: list[Framed] = []
        for prompt in final.prompts:
            if prompt.audio_content:
                data = prompt.audio_content
                ulaw = wav_to_ulaw(data) if is_wav(data) else data
                out += self._audio(
                    pb.Prompt(
                        audio_content=ulaw,
                        text=prompt.text,
                        is_barge_in_enabled=prompt.is_barge_in_enabled,
                    )
                )
        rest = pb.VoiceVAResponse()
        rest.CopyFrom(final)
        del rest.prompts[:]
        rest.prompts.extend(p for p in final.prompts if not p.audio_content)
        out.append((rest, False))
        return out

    def _audio(self, prompt: pb.Prompt) -> list[Framed]:
        out: list[Framed] = []
        if self._pending and prompt.is_barge_in_enabled != self._bargeable:
            out.extend(self._flush())
        if not self._pending:
            self._text = prompt.text
            self._bargeable = prompt.is_barge_in_enabled
        elif prompt.text:
            self._text = (self._text + " " + prompt.text).strip()
        data = self._pending + prompt.audio_content
        while len(data) >= MIN_CHUNK_BYTES:
            piece = data[:MAX_CHUNK_BYTES]
            rest = data[len(piece) :]
            if 0 < len(rest) < MIN_CHUNK_BYTES and len(piece) == MAX_CHUNK_BYTES:
                # Keep the remainder sendable: split the last two pieces evenly.
                piece = data[: (len(data) + 1) // 2]
                rest = data[len(piece) :]
            out.append((self._chunk(piece), False))
            data = rest
        self._pending = data
        return out

    def _flush(self) -> list[Framed]:
        if not self._pending:
            return []
        piece = self._pending.ljust(MIN_CHUNK_BYTES, _ULAW_SILENCE)
        self._pending = b""
        return [(self._chunk(piece), False)]

    def _chunk(self, audio: bytes) -> pb.VoiceVAResponse:
        self._streamed = True
        prompt = pb.Prompt(
            audio_content=audio, text=self._text, is_barge_in_enabled=self._bargeable
        )
        self._text = ""
        return pb.VoiceVAResponse(prompts=[prompt], response_type=_CHUNK)
