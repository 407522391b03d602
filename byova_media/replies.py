"""Turning an agent's :class:`Reply` into BYOVA responses on one RPC.

CHUNK mode streams raw μ-law in CHUNK responses (100 B to 64 KiB) while the audio is
produced, then one FINAL with no audio; WAV mode sends one FINAL whose prompts are
whole WAV files. The mode is fixed per conversation. Streaming runs as a task that a
barge-in cancels, which closes the prompt's async iterator so synthesis stops at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.agent import (
    CustomEvent,
    EndSession,
    InputHandling,
    InputMode,
    NoMatch,
    Prompt,
    Reply,
    Transfer,
)
from byova_media.audio.formats import AudioFormat
from byova_media.audio.framing import PlayoutTracker, chunk_ulaw, stream_ulaw_chunks
from byova_media.audio.wav import is_wav, ulaw_wav, wav_to_ulaw
from byova_media.conversation import Conversation, Playback
from byova_media.rpc import RpcOutput
from byova_media.wire import CHUNK, FINAL, input_handling_config, input_mode, output_event

if TYPE_CHECKING:
    from byova_media.config import Config

__all__ = ["ending_response", "reply_problem", "send_reply"]

log = logging.getLogger(__name__)


async def _prompt_chunks(prompt: Prompt, config: Config, first: bool) -> AsyncIterator[bytes]:
    """Raw μ-law payloads for one prompt, sized for CHUNK responses."""
    audio = prompt.audio
    if audio is None:
        return
    if isinstance(audio, bytes | bytearray):
        ulaw = wav_to_ulaw(bytes(audio)) if is_wav(bytes(audio)) else bytes(audio)
        for chunk in chunk_ulaw(ulaw, config.chunk_bytes) if ulaw else ():
            yield chunk
        return
    stream = stream_ulaw_chunks(
        audio,
        prompt.audio_format,
        chunk_bytes=config.chunk_bytes,
        first_chunk_bytes=config.first_chunk_bytes if first else config.chunk_bytes,
    )
    try:
        async for chunk in stream:
            yield chunk
    finally:
        await _aclose(stream)
        await _aclose(audio)


async def _aclose(obj: object) -> None:
    close = getattr(obj, "aclose", None)
    if close is not None:
        await close()


class ReplyError(Exception):
    """The agent's reply could not be produced (its audio failed, or it does not fit)."""


async def _collect_ulaw(prompt: Prompt, config: Config) -> bytes:
    """A prompt's whole audio for WAV mode, refused once it outgrows one gRPC message."""
    parts: list[bytes] = []
    size = 0
    chunks = _prompt_chunks(prompt, config, first=False)
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > config.max_message_bytes:
                raise ReplyError(f"prompt audio exceeds max_message_bytes ({size} bytes so far)")
            parts.append(chunk)
    finally:
        await _aclose(chunks)
    return b"".join(parts)


async def _stream(
    prompts: list[tuple[Prompt, bool]],
    out: RpcOutput,
    tracker: PlayoutTracker,
    conv: Conversation,
) -> None:
    config = conv.app.config
    lead_s = config.chunk_lead_ms / 1000.0 if config.chunk_lead_ms else None
    first = True
    for prompt, barge in prompts:
        text = prompt.text
        try:
            async for chunk in _prompt_chunks(prompt, config, first):
                if lead_s is not None:
                    # Keep at most chunk_lead_ms of audio queued at Webex so that a
                    # barge-in stops generation instead of discarding it.
                    ahead = (tracker.sent_ms - tracker.heard_ms()) / 1000.0
                    if ahead > lead_s:
                        await asyncio.sleep(ahead - lead_s)
                out.send(
                    pb.VoiceVAResponse(
                        prompts=[
                            pb.Prompt(audio_content=chunk, text=text, is_barge_in_enabled=barge)
                        ],
                        response_type=CHUNK,
                    )
                )
                conv.app.metrics.frames_out.inc()
                tracker.sent(len(chunk))
                text = ""
                first = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise ReplyError(f"audio of prompt {prompt.text[:40]!r} failed: {exc}") from exc


def _final(reply: Reply, conv: Conversation, prompts: list[pb.Prompt]) -> pb.VoiceVAResponse:
    config = conv.app.config
    call = conv.call
    response = pb.VoiceVAResponse(
        prompts=prompts, response_type=FINAL, input_sensitive=reply.input_sensitive
    )
    if reply.event is not None:
        response.output_events.append(output_event(reply.event))
    if reply.is_terminal:
        # Terminal responses carry no next-input settings (Cisco's reference shape);
        # they are the call's last response, so the transcript goes here.
        if call.transcript:
            response.session_transcript.text = call.transcript
        if call.summary:
            response.session_summary.text = call.summary
    else:
        response.input_mode = input_mode(reply.input_mode)
        response.input_handling_config.CopyFrom(input_handling_config(config, reply.input_handling))
    return response


async def send_reply(conv: Conversation, out: RpcOutput, reply: Reply) -> None:
    """Send ``reply`` on ``out``, ending with its one FINAL.

    Prompts attached to a transfer or an end are never bargeable (protocol rule). If
    the reply's audio fails, the caller gets the clean ending instead.
    """
    problem = reply_problem(reply, conv.app.config.max_message_bytes)
    if problem is not None:
        reply = conv.agent_failed("agent_error", f"sent a reply that cannot be sent: {problem}")
    call = conv.call
    if reply.transcript is not None:
        call.transcript = reply.transcript
    if reply.summary is not None:
        call.summary = reply.summary
    with_audio = [
        (p, p.barge_in and not reply.is_terminal) for p in reply.prompts if p.audio is not None
    ]
    text_only = [pb.Prompt(text=p.text) for p in reply.prompts if p.audio is None and p.text]
    playback = Playback(tracker=PlayoutTracker(), bargeable=any(b for _, b in with_audio))
    try:
        if conv.reply_mode == "wav":
            wav_prompts = await _wav_prompts(with_audio, playback.tracker, conv.app.config)
            final = _checked(_final(reply, conv, wav_prompts + text_only), conv)
            conv.play(playback)
            out.send(final)
            return
        if with_audio and not await _stream_prompts(with_audio, out, playback, conv):
            # Barged: the caller is already speaking on the next RPC; close this one.
            out.send(_final(Reply(), conv, []))
            return
        out.send(_checked(_final(reply, conv, text_only), conv))
    except ReplyError as exc:
        clean_ending = conv.agent_failed("agent_error", str(exc), exc.__cause__)
        await send_reply(conv, out, clean_ending)


def _checked(final: pb.VoiceVAResponse, conv: Conversation) -> pb.VoiceVAResponse:
    """``final`` if it fits in one gRPC message; a transcript or WAVs too big fail the reply."""
    size = final.ByteSize()
    if size > conv.app.config.max_message_bytes:
        raise ReplyError(f"its FINAL of {size} bytes exceeds max_message_bytes")
    return final


def ending_response(reply: Reply) -> pb.VoiceVAResponse:
    """A terminal reply of text prompts and its event, for a step without a conversation."""
    response = pb.VoiceVAResponse(
        prompts=[pb.Prompt(text=p.text) for p in reply.prompts if p.text],
        response_type=FINAL,
    )
    if reply.event is not None:
        response.output_events.append(output_event(reply.event))
    return response


def reply_problem(reply: Reply, max_bytes: int) -> str | None:
    """Why an agent's ``reply`` cannot be sent, or ``None``: agents are not ours to trust."""
    if not isinstance(reply.prompts, list | tuple):
        return f"prompts is a {type(reply.prompts).__name__}, not a list"
    text_bytes = 0
    for n, prompt in enumerate(reply.prompts):
        if not isinstance(prompt, Prompt):
            return f"prompts[{n}] is a {type(prompt).__name__}, not a Prompt"
        audio = prompt.audio
        if not isinstance(prompt.text, str):
            return f"prompts[{n}].text is a {type(prompt.text).__name__}, not a str"
        if not (
            audio is None or isinstance(audio, bytes | bytearray) or hasattr(audio, "__aiter__")
        ):
            return f"prompts[{n}].audio is a {type(audio).__name__}: bytes or an async iterator"
        if not isinstance(prompt.audio_format, AudioFormat):
            return f"prompts[{n}].audio_format is not an AudioFormat"
        text_bytes += len(prompt.text.encode())
    for name in ("transcript", "summary"):
        value = getattr(reply, name)
        if value is not None and not isinstance(value, str):
            return f"{name} is a {type(value).__name__}, not a str"
        text_bytes += len(value.encode()) if value else 0
    if text_bytes > max_bytes // 2:
        return f"{text_bytes} bytes of text exceed half of max_message_bytes"
    return _event_problem(reply) or _input_problem(reply)


def _event_problem(reply: Reply) -> str | None:
    event = reply.event
    if event is None:
        return None
    if not isinstance(event, Transfer | EndSession | CustomEvent | NoMatch):
        return (
            f"event is a {type(event).__name__}, not Transfer, EndSession, CustomEvent or NoMatch"
        )
    if not isinstance(event.metadata, Mapping):
        return f"event metadata is a {type(event.metadata).__name__}, not a mapping"
    try:
        json.dumps(dict(event.metadata))
    except (TypeError, ValueError) as exc:
        return f"event metadata is not JSON: {exc}"
    return None


def _input_problem(reply: Reply) -> str | None:
    if reply.input_mode is not None and not isinstance(reply.input_mode, InputMode):
        return f"input_mode is a {type(reply.input_mode).__name__}, not an InputMode"
    if reply.input_handling is not None and not isinstance(reply.input_handling, InputHandling):
        return f"input_handling is a {type(reply.input_handling).__name__}, not InputHandling"
    return None


async def _wav_prompts(
    prompts: list[tuple[Prompt, bool]], tracker: PlayoutTracker, config: Config
) -> list[pb.Prompt]:
    """WAV mode: each prompt's whole audio as one μ-law WAV file."""
    out = []
    for prompt, barge in prompts:
        try:
            ulaw = await _collect_ulaw(prompt, config)
        except ReplyError:
            raise
        except Exception as exc:
            raise ReplyError(f"audio of prompt {prompt.text[:40]!r} failed: {exc}") from exc
        out.append(
            pb.Prompt(
                audio_content=ulaw_wav(ulaw, fact=config.wav_fact_chunk),
                text=prompt.text,
                is_barge_in_enabled=barge,
            )
        )
        tracker.sent(len(ulaw))
    return out


async def _stream_prompts(
    prompts: list[tuple[Prompt, bool]], out: RpcOutput, playback: Playback, conv: Conversation
) -> bool:
    """CHUNK mode: stream the prompts as a task a barge-in can cancel; ``False`` if barged."""
    task = asyncio.create_task(_stream(prompts, out, playback.tracker, conv))
    playback.task = task
    conv.play(playback)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.cancelled():
            task.cancel()  # this RPC itself was cancelled, not the stream
            raise
    return not task.cancelled()
