"""``EspeakTTS``: streaming offline speech synthesis on eSpeak NG."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from byova_espeak._library import library
from byova_media.audio.codecs import Encoding
from byova_media.audio.formats import AudioFormat

__all__ = ["EspeakSettings", "EspeakTTS"]


class EspeakSettings(BaseModel):
    """Options of the ``espeak`` synthesiser (per virtual agent)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    voice: str = "en-us"
    rate_wpm: int = Field(175, ge=80, le=450)
    pitch: int = Field(50, ge=0, le=99)


class EspeakTTS:
    """Synthesises in a worker thread and yields PCM16 blocks as eSpeak makes them.

    The library is process-global and not thread-safe, so concurrent calls queue on
    its lock; closing the iterator aborts the synthesis at the next block.
    """

    def __init__(self, settings: EspeakSettings | None = None) -> None:
        self.settings = settings or EspeakSettings()
        self._lib = library()
        self.audio_format = AudioFormat(Encoding.L16, self._lib.sample_rate)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> EspeakTTS:
        """The factory registered with ``byova_register_tts_engines``."""
        return cls(EspeakSettings.model_validate(dict(options)))

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """Speak ``text``; yields blocks of about 60 ms of audio."""
        if not text.strip():
            return
        loop = asyncio.get_running_loop()
        # Bounded by the text: eSpeak makes a fixed amount of audio per character.
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        cancelled = threading.Event()

        def put(item: bytes | BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def sink(block: bytes) -> bool:
            if cancelled.is_set():
                return True
            put(block)
            return False

        def work() -> None:
            s = self.settings
            try:
                if not cancelled.is_set():
                    self._lib.synthesize(text, s.voice, s.rate_wpm, s.pitch, sink)
            except Exception as exc:
                put(exc)
            else:
                put(None)

        loop.run_in_executor(self._lib.executor, work)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()
