"""``PipelineAgent``: a voice agent assembled from a recogniser, a language model and a voice.

Turn taking is the engine's (its VAD cuts the utterance); with a streaming recogniser
the agent also takes every caller frame (``wants_audio``) and streams the turn's frames,
from its pre-roll on, so the transcript is ready when the turn ends. The answer streams
as it is generated and synthesised; DTMF, no-input and custom events reach the model as
bracketed notes in the conversation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from byova_media.adapters import (
    LanguageModel,
    Message,
    SpeechStream,
    SpeechToText,
    TextToSpeech,
)
from byova_media.agent import (
    Agent,
    BargeIn,
    EndSession,
    OutputEvent,
    Prompt,
    Reply,
    SessionStart,
    Transfer,
    Utterance,
)
from byova_media.audio.formats import FRAME_MS
from byova_media.pipeline.answer import AnswerRun
from byova_media.pipeline.history import History, heard_text
from byova_media.pipeline.settings import PipelineSettings
from byova_media.pipeline.tools import BUILTIN_TOOLS, Tool

if TYPE_CHECKING:
    from byova_media.app import App
    from byova_media.call import Call

__all__ = [
    "PipelineAgent",
    "PipelineError",
    "PipelineParts",
    "build_parts",
    "custom_event_note",
    "dtmf_note",
    "no_input_note",
    "parse_dtmf_note",
]


def dtmf_note(digits: str) -> str:
    """How key presses appear to the model."""
    return f"[The caller pressed the keys: {' '.join(digits)}]"


def parse_dtmf_note(text: str) -> str | None:
    """The digits of a :func:`dtmf_note`, or ``None`` when ``text`` is not one."""
    prefix, suffix = "[The caller pressed the keys: ", "]"
    if text.startswith(prefix) and text.endswith(suffix):
        return text[len(prefix) : -len(suffix)].replace(" ", "")
    return None


def no_input_note() -> str:
    """How a no-input timeout appears to the model."""
    return "[The caller said nothing.]"


def custom_event_note(name: str, parameters: Mapping[str, Any]) -> str:
    """How a Webex flow event appears to the model."""
    return f"[Event {name}: {dict(parameters)}]"


class PipelineError(RuntimeError):
    """A pipeline part is not registered or could not be built."""


@dataclass(frozen=True)
class PipelineParts:
    """The engines one virtual agent uses; shared by all its calls."""

    stt: SpeechToText
    llm: LanguageModel
    tts: TextToSpeech


def _pick(kind: str, name: str, found: Mapping[str, Any], options: Mapping[str, Any]) -> Any:
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise PipelineError(
            f"{kind} {name!r} is not registered (known: {known}); load the plugin that "
            f"provides it with --plugin"
        )
    try:
        return found[name](options)
    except Exception as exc:
        raise PipelineError(f"{kind} {name!r} could not be built: {exc}") from exc


def build_parts(app: App, settings: PipelineSettings) -> PipelineParts:
    """Resolve the parts named in ``settings`` through the registration hooks."""
    return PipelineParts(
        stt=_pick("speech recogniser", settings.stt, app.plugins.stts(app), settings.stt_options),
        llm=_pick("language model", settings.llm, app.plugins.llms(app), settings.llm_options),
        tts=_pick("speech synthesiser", settings.tts, app.plugins.ttss(app), settings.tts_options),
    )


class PipelineAgent(Agent):
    """STT → LLM → TTS with streaming audio, barge-in truncation and built-in tools."""

    def __init__(
        self,
        parts: PipelineParts,
        settings: PipelineSettings | None = None,
        tools: Iterable[Tool] = (),
    ) -> None:
        self.parts = parts
        self.settings = settings or PipelineSettings()
        self.wants_audio = self.settings.streaming_stt and parts.stt.streaming
        self.tools = {t.spec.name: t for t in (*BUILTIN_TOOLS, *tools)}
        self.history = History(self.settings.system_prompt, self.settings.max_history_messages)
        #: The latest answer (the one a barge-in interrupts).
        self.last_run: AnswerRun | None = None
        self._stream: SpeechStream | None = None
        self._stream_frames = 0
        #: The last frames before the caller's turn began (see :meth:`on_audio`).
        self._lead: deque[np.ndarray] | None = None
        self._outcome = "in progress"

    # --- speaking ----------------------------------------------------------------------

    async def _speak(self, call: Call, run: AnswerRun, reply: Reply) -> Reply:
        """Start ``run`` and return ``reply`` once its shape (first piece, event) is known."""
        previous, self.last_run = self.last_run, run
        if previous is not None:
            await previous.close()  # normally long finished; never two generating at once
        run.start()
        await run.decided.wait()
        if run.error is not None and not run.text:
            await run.close()
            raise run.error
        reply.event = run.event
        terminal = isinstance(run.event, Transfer | EndSession)
        if run.text or not run.finished:
            reply.prompts = [
                Prompt(
                    audio=run.audio(),
                    text=run.text,
                    barge_in=self.settings.barge_in and not terminal,
                    audio_format=self.parts.tts.audio_format,
                )
            ]
        else:
            await run.close()
        self._update_record(call, run.event)
        return reply

    def _answer(self, call: Call, reply: Reply, fixed_text: str | None = None) -> AnswerRun:
        def late_event(event: OutputEvent) -> None:
            # The model chose an event after the reply started streaming: the engine
            # reads ``reply.event`` when it sends the FINAL, after the audio.
            reply.event = event
            self._update_record(call, event)

        return AnswerRun(
            call=call,
            history=self.history,
            tts=self.parts.tts,
            llm=self.parts.llm,
            tools=self.tools,
            fixed_text=fixed_text,
            max_tool_rounds=self.settings.max_tool_rounds,
            min_clause_chars=self.settings.min_clause_chars,
            on_event=late_event,
            on_recorded=lambda: self._update_record(call, None),
        )

    async def _respond(self, call: Call, note: str) -> Reply:
        self.history.add(Message("user", note))
        reply = Reply()
        return await self._speak(call, self._answer(call, reply), reply)

    def _update_record(self, call: Call, event: OutputEvent | None) -> None:
        if event is not None:
            self._outcome = {Transfer: "transferred", EndSession: "ended"}.get(
                type(event), f"event {getattr(event, 'name', '')}"
            )
        call.transcript = self.history.transcript()
        turns = sum(1 for m in self.history.messages if m.role == "user")
        call.summary = f"{turns} caller turn(s); outcome: {self._outcome}"

    # --- the engine's calls ----------------------------------------------------------

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        reply = Reply()
        run = self._answer(call, reply, fixed_text=self.settings.welcome_text)
        return await self._speak(call, run, reply)

    async def on_audio(self, call: Call, frame: np.ndarray) -> None:
        if self._lead is None:
            config = call.app.config
            # As many frames as the engine may reach back for the turn's start.
            self._lead = deque(maxlen=(config.pre_roll_ms + config.speech_start_ms) // FRAME_MS + 2)
        if not call.speech_started():
            # The recogniser hears the turn, not the wait before it: pocketsphinx fed seconds
            # of silence normalises its features to them and mishears the words that follow
            # (and a cloud recogniser bills the wait). A stream still open here belongs to a
            # turn that never ended (a key press, a hang-up).
            await self._drop_stream()
            self._lead.append(frame)
            return
        if self._stream is None:
            self._stream = self.parts.stt.open_stream(8000)
            self._stream_frames = 0
            for before in self._lead:
                await self._feed(call, before)
            self._lead.clear()
        await self._feed(call, frame)

    async def _feed(self, call: Call, frame: np.ndarray) -> None:
        if self._stream is None:
            return
        self._stream_frames += 1
        if self._stream_frames * FRAME_MS > self.settings.max_stream_ms:
            # A turn longer than anyone speaks: start afresh instead of growing without end.
            await self._drop_stream()
            return
        partial = await self._stream.feed(frame)
        if partial is not None:
            call.log.debug("partial transcript: %s", partial.text)

    async def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()

    async def _recognise(self, utterance: Utterance) -> str:
        stream, self._stream = self._stream, None
        if stream is not None:
            return (await stream.finish()).text
        return (await self.parts.stt.transcribe(utterance.pcm, utterance.sample_rate)).text

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        text = await self._recognise(utterance)
        call.mark("stt_final")
        call.log.info("caller said: %r", text)
        return await self._respond(call, text or "[inaudible]")

    async def on_dtmf(self, call: Call, digits: str) -> Reply:
        return await self._respond(call, dtmf_note(digits))

    async def on_no_input(self, call: Call) -> Reply:
        return await self._respond(call, no_input_note())

    async def on_custom_event(self, call: Call, name: str, parameters: Mapping[str, Any]) -> Reply:
        return await self._respond(call, custom_event_note(name, parameters))

    async def on_barge_in(self, call: Call, barge_in: BargeIn) -> None:
        run = self.last_run
        if run is None or not run.text:
            return
        await run.close()  # generation stops; what was generated is in the history
        heard = heard_text(run.spoken(), barge_in.heard_ms)
        call.log.info("barge-in after %d ms; the caller heard %r", barge_in.heard_ms, heard)
        self.history.replace_last_assistant(heard)
        self._update_record(call, None)

    def snapshot(self) -> dict[str, Any]:
        """The chat history (the model's memory) and the outcome behind the transcript."""
        return {"history": self.history.to_json(), "outcome": self._outcome}

    def restore(self, state: dict[str, Any]) -> None:
        self.history.load_json(state.get("history", []))
        self._outcome = str(state.get("outcome", self._outcome))

    async def on_end(self, call: Call, reason: str) -> None:
        await self._drop_stream()
        if self.last_run is not None:
            await self.last_run.close()
