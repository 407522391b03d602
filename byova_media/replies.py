"""Turning an agent's :class:`Reply` into BYOVA responses on one RPC.

CHUNK mode streams raw μ-law in CHUNK responses (100 B to 64 KiB) while the audio is
produced, then one FINAL with no audio; WAV mode sends one FINAL whose prompts are
whole WAV files. The mode is fixed per conversation. Streaming runs as a task that a
barge-in cancels, which closes the prompt's async iterator so synthesis stops at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.agent import EndSession, Prompt, Reply, Transfer
from byova_media.audio.framing import PlayoutTracker, chunk_ulaw, stream_ulaw_chunks
from byova_media.audio.wav import is_wav, ulaw_wav, wav_to_ulaw
from byova_media.conversation import Conversation, Playback
from byova_media.rpc import RpcOutput
from byova_media.wire import CHUNK, FINAL, input_handling_config, input_mode, output_event

if TYPE_CHECKING:
    from byova_media.config import Config

__all__ = ["error_reply", "send_reply"]

log = logging.getLogger(__name__)


def error_reply(config: Config, reason: str) -> Reply:
    """The clean ending a caller gets when an agent fails (configurable transfer or end)."""
    prompt = Prompt(text=config.plugin_error_text)
    if config.on_plugin_error == "transfer":
        return Reply(prompts=[prompt], event=Transfer(metadata={"reason": reason}))
    return Reply(prompts=[prompt], event=EndSession(metadata={"reason": reason}))


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


async def _collect_ulaw(prompt: Prompt, config: Config) -> bytes:
    parts = [chunk async for chunk in _prompt_chunks(prompt, config, first=False)]
    return b"".join(parts)


class ReplyError(Exception):
    """The agent's reply could not be produced (its audio stream raised)."""


async def _stream(
    prompts: list[Prompt],
    bargeable: list[bool],
    out: RpcOutput,
    tracker: PlayoutTracker,
    conv: Conversation,
) -> None:
    config = conv.app.config
    lead_s = config.chunk_lead_ms / 1000.0 if config.chunk_lead_ms else None
    first = True
    for prompt, barge in zip(prompts, bargeable, strict=True):
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
        transcript = reply.transcript if reply.transcript is not None else call.transcript
        summary = reply.summary if reply.summary is not None else call.summary
        if transcript:
            response.session_transcript.text = transcript
        if summary:
            response.session_summary.text = summary
    else:
        response.input_mode = input_mode(reply.input_mode)
        response.input_handling_config.CopyFrom(input_handling_config(config, reply.input_handling))
    return response


async def send_reply(conv: Conversation, out: RpcOutput, reply: Reply | None) -> bool:
    """Send ``reply`` on ``out`` ending with its one FINAL; return whether it was barged.

    Prompts attached to a transfer or an end are never bargeable (protocol rule).
    """
    reply = reply or Reply()
    call = conv.call
    if reply.transcript is not None:
        call.transcript = reply.transcript
    if reply.summary is not None:
        call.summary = reply.summary
    terminal = reply.is_terminal
    bargeable = [p.barge_in and not terminal for p in reply.prompts]
    tracker = PlayoutTracker()
    playback = Playback(tracker=tracker, bargeable=any(bargeable))
    audio_prompts = [p for p in reply.prompts if p.audio is not None]
    text_only = [pb.Prompt(text=p.text) for p in reply.prompts if p.audio is None and p.text]
    if conv.reply_mode == "wav":
        wav_prompts = []
        try:
            for prompt, barge in zip(reply.prompts, bargeable, strict=True):
                if prompt.audio is None:
                    continue
                ulaw = await _collect_ulaw(prompt, conv.app.config)
                wav_prompts.append(
                    pb.Prompt(
                        audio_content=ulaw_wav(ulaw), text=prompt.text, is_barge_in_enabled=barge
                    )
                )
                tracker.sent(len(ulaw))
        except Exception as exc:
            log.error("reply audio failed [conversation=%s]: %s", call.conversation_id, exc)
            conv.app.metrics.plugin_errors.labels(plugin=conv.spec.virtual_agent_id).inc()
            return await send_reply(conv, out, error_reply(conv.app.config, "agent_error"))
        conv.playback = playback
        out.send(_final(reply, conv, wav_prompts + text_only))
        return False
    if audio_prompts:
        streamed = [p for p in reply.prompts if p.audio is not None]
        flags = [b for p, b in zip(reply.prompts, bargeable, strict=True) if p.audio is not None]
        playback.task = asyncio.create_task(_stream(streamed, flags, out, tracker, conv))
        conv.playback = playback
        try:
            await asyncio.shield(playback.task)
        except asyncio.CancelledError:
            if not playback.task.cancelled():
                playback.task.cancel()
                raise
        except ReplyError as exc:
            log.error("%s [conversation=%s]", exc, call.conversation_id)
            conv.app.metrics.plugin_errors.labels(plugin=conv.spec.virtual_agent_id).inc()
            out.send(_final(error_reply(conv.app.config, "agent_error"), conv, []))
            return False
        if playback.task.cancelled():
            # Barged: the caller is already speaking on the next RPC; close this one.
            out.send(_final(Reply(), conv, []))
            return True
    out.send(_final(reply, conv, text_only))
    return False
