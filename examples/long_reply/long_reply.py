"""A long answer streamed while it is made, and picked up again after a barge-in.

The reply's audio is an async generator, so byova-media streams it to Webex as CHUNKs as
it is produced (a TTS engine would sit where :func:`sentence` is). The prompt is
bargeable: when the caller speaks over it, the engine stops the stream, closes the
generator (nothing more is made) and calls :meth:`LongReply.on_barge_in` with how much
the caller heard, which the agent uses to resume from the sentence it was cut off in.
Run: ``PYTHONPATH=examples/long_reply byova-media serve --plugin long_reply``; the
story length is the plugin setting ``sentences`` (``BYOVA_MEDIA_LONG_REPLY_SENTENCES``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import byova_media
from byova_media import (
    Agent,
    AgentSpec,
    App,
    BargeIn,
    Call,
    Reply,
    SessionStart,
    Utterance,
    pcm_to_ulaw,
)
from byova_media.audio.tones import silence, tone

__all__ = ["SENTENCE_MS", "LongReply", "sentence"]

SENTENCE_MS = 1000


def sentence(n: int) -> bytes:
    """Sentence ``n`` of the story as 8 kHz μ-law: a stand-in for synthesised speech."""
    return pcm_to_ulaw(tone(220.0 + 40.0 * (n % 5), SENTENCE_MS - 100)) + silence(100)


class LongReply(Agent):
    """Tells a story of ``sentences`` seconds, resuming where the caller cut it off."""

    def __init__(self, sentences: int) -> None:
        self.sentences = sentences
        self.next_sentence = 0  # where the next telling starts
        self.telling: int | None = None  # first sentence of the story now playing
        self.stopped_after_ms: int | None = None

    async def _story(self, first: int) -> AsyncIterator[bytes]:
        for n in range(first, self.sentences):
            yield sentence(n)
        self.next_sentence = 0  # made to the end: start over next time

    def _short(self, text: str) -> Reply:
        self.telling = None
        return Reply.say(sentence(0)[:1600], text=text, barge_in=True)

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        return self._short("Say anything and I will tell you a story. Interrupt me any time.")

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        if self.stopped_after_ms is not None:  # this is the utterance that barged in
            seconds, self.stopped_after_ms = self.stopped_after_ms / 1000, None
            return self._short(
                f"You stopped me after {seconds:.1f} seconds. Say anything to go on."
            )
        first = self.telling = self.next_sentence
        text = f"Picking up at sentence {first + 1}." if first else "Once upon a time."
        return Reply.say(self._story(first), text=text, barge_in=True)

    async def on_barge_in(self, call: Call, barge_in: BargeIn) -> None:
        if self.telling is None:
            return  # a short prompt was interrupted: nothing to resume
        # Resume from the sentence the caller was cut off in, not from what was sent.
        self.next_sentence = self.telling + barge_in.heard_ms // SENTENCE_MS
        self.stopped_after_ms = barge_in.heard_ms
        self.telling = None
        call.log.info("barge-in after %d ms of the story", barge_in.heard_ms)


@byova_media.hookimpl
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    sentences = int(app.settings("long_reply").get("sentences", 30))
    register(AgentSpec("long_reply", lambda call: LongReply(sentences), name="Long story"))
