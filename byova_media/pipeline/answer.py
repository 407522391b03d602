"""``AnswerRun``: one spoken answer, from LLM text deltas to streamed TTS audio.

Generation (the LLM, tool calls) runs as a task that queues text pieces; the
prompt's audio iterator synthesises them one by one as the engine pulls audio. When
the engine closes that iterator (barge-in, hang-up) the current synthesis and the
generation task stop at once. Every piece's position in the reply's audio is kept so
a barge-in can be mapped back to the words the caller heard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

from byova_media.adapters import LanguageModel, Message, TextDelta, TextToSpeech, ToolCall
from byova_media.agent import OutputEvent
from byova_media.audio.codecs import Encoding
from byova_media.pipeline.history import History, SpokenPiece
from byova_media.pipeline.sentences import SentenceSplitter
from byova_media.pipeline.tools import Tool

if TYPE_CHECKING:
    from byova_media.call import Call

__all__ = ["AnswerRun"]

_Item = str | BaseException | None


def _bytes_per_ms(tts: TextToSpeech) -> float:
    fmt = tts.audio_format
    width = 2 if fmt.encoding is Encoding.L16 else 1
    return fmt.sample_rate * width / 1000.0


async def _aclose(stream: object) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


class AnswerRun:
    """Generates and speaks one answer; :meth:`audio` is the prompt's audio stream.

    ``fixed_text`` speaks given text (a welcome) instead of asking the model.
    ``on_event`` receives an output event the model chose (built-in or user tool);
    ``on_recorded`` runs once the answer is in the history.
    """

    def __init__(
        self,
        *,
        call: Call,
        history: History,
        tts: TextToSpeech,
        llm: LanguageModel | None = None,
        tools: Mapping[str, Tool] | None = None,
        fixed_text: str | None = None,
        max_tool_rounds: int = 3,
        min_clause_chars: int = 24,
        on_event: Callable[[OutputEvent], None] | None = None,
        on_recorded: Callable[[], None] | None = None,
    ) -> None:
        self.call = call
        self.history = history
        self.tts = tts
        self.llm = llm
        self.tools = dict(tools or {})
        self.fixed_text = fixed_text
        self.max_tool_rounds = max_tool_rounds
        self.on_event = on_event
        self.on_recorded = on_recorded
        self.event: OutputEvent | None = None
        #: Set once the reply's shape is known: a first piece, an event, or the end.
        self.decided = asyncio.Event()
        self.error: BaseException | None = None
        #: Whether generation is over (the model finished, failed or was stopped).
        self.finished = False
        #: Text pieces whose synthesis started (what a barge-in test counts).
        self.pieces_synthesised = 0
        self._splitter = SentenceSplitter(min_clause_chars)
        # Bounded by the answer itself (max_tokens of the model, or the fixed text).
        self._pieces: asyncio.Queue[_Item] = asyncio.Queue()
        self._said: list[str] = []
        self._recorded = False
        self._spoken: list[list[str | float]] = []
        self._rate = _bytes_per_ms(tts)
        self._task: asyncio.Task[None] | None = None

    # --- generation ----------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._generate(), name="pipeline-answer")

    def _queue(self, piece: str) -> None:
        if piece:
            self._said.append(piece)
            self._pieces.put_nowait(piece)
            self.decided.set()

    def _set_event(self, event: OutputEvent) -> None:
        if self.event is None:
            self.event = event
            if self.on_event is not None:
                self.on_event(event)
        self.decided.set()

    async def _generate(self) -> None:
        try:
            if self.fixed_text is not None:
                for piece in self._splitter.feed(self.fixed_text + " "):
                    self._queue(piece)
            else:
                await self._converse()
            self._queue(self._splitter.flush())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = exc
            self._pieces.put_nowait(exc)
        finally:
            self.finished = True
            self._record()
            self._pieces.put_nowait(None)
            self.decided.set()

    async def _converse(self) -> None:
        if self.llm is None:
            raise RuntimeError("AnswerRun needs an llm or fixed_text")
        specs = [tool.spec for tool in self.tools.values()]
        extra: list[Message] = []
        for _ in range(self.max_tool_rounds):
            calls: list[ToolCall] = []
            stream = self.llm.stream(self.history.for_model() + extra, specs)
            try:
                async for event in stream:
                    self.call.mark("llm_first_token")
                    if isinstance(event, TextDelta):
                        for piece in self._splitter.feed(event.text):
                            self._queue(piece)
                    else:
                        calls.append(event)
            finally:
                await _aclose(stream)
            if not await self._run_tools(calls, extra):
                return

    async def _run_tools(self, calls: list[ToolCall], extra: list[Message]) -> bool:
        """Run the calls; return whether their results should go back to the model."""
        again = False
        for call in calls:
            tool = self.tools.get(call.name)
            if tool is None:
                self.call.log.warning("the model called an unknown tool %r", call.name)
                result: str | OutputEvent = f"error: there is no tool named {call.name}"
            else:
                result = await tool.handler(self.call, call.arguments)
            if not isinstance(result, str):
                self._set_event(result)
                continue
            extra.append(Message("assistant", "", tool_calls=(call,)))
            extra.append(Message("tool", result, tool_call_id=call.id))
            again = True
        if again:
            for message in extra:
                self.history.add(message)
            extra.clear()
        return again and self.event is None

    def _record(self) -> None:
        """Put what the agent said into the history (a barge-in may shorten it later)."""
        if not self._recorded:
            self._recorded = True
            if self._said:
                self.history.add(Message("assistant", " ".join(self._said)))
            if self.on_recorded is not None:
                self.on_recorded()

    @property
    def text(self) -> str:
        """Everything generated so far."""
        return " ".join(self._said)

    # --- speech ----------------------------------------------------------------------

    async def audio(self) -> AsyncGenerator[bytes, None]:
        """The answer's audio in the TTS's format, piece by piece as it is synthesised."""
        position_ms = 0.0
        try:
            while True:
                item = await self._pieces.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                self.pieces_synthesised += 1
                entry: list[str | float] = [item, position_ms, position_ms]
                self._spoken.append(entry)
                stream: AsyncIterator[bytes] = self.tts.synthesize(item)
                try:
                    async for chunk in stream:
                        self.call.mark("tts_first_audio")
                        position_ms += len(chunk) / self._rate
                        entry[2] = position_ms
                        yield chunk
                finally:
                    await _aclose(stream)
        finally:
            await self.close()

    def spoken(self) -> list[SpokenPiece]:
        """The pieces synthesised so far with their place in the reply's audio."""
        return [SpokenPiece(str(t), float(s), float(e)) for t, s, e in self._spoken]

    async def close(self) -> None:
        """Stop generating (idempotent); what was said so far stays in the history."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._record()
