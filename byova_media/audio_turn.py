"""One audio RPC: caller frames in, START_OF_INPUT / END_OF_INPUT out, the utterance handed on.

Per frame the work is decode → (resample) → jitter buffer → VAD/turn detector, done
inline in the task that reads the RPC: no queue hop, no plugin-manager dispatch, no
per-frame objects beyond the numpy arrays. Only turn boundaries (:class:`TurnSignal`)
cross to the RPC's main task, through :attr:`AudioTurn.signals`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

import numpy as np
from google.protobuf.message import DecodeError

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media.audio.codecs import Encoding, decode
from byova_media.audio.formats import FRAME_MS, FRAME_SAMPLES, SUPPORTED_RATES
from byova_media.audio.jitter import JitterBuffer
from byova_media.audio.resample import Resampler
from byova_media.audio.vad import TurnDetector, VoiceActivityDetector
from byova_media.conversation import Conversation
from byova_media.rpc import RpcAbort, malformed
from byova_media.turn_signals import TurnEvent, TurnSignal
from byova_media.wire import encoding_from_wire

__all__ = ["AudioTurn"]

log = logging.getLogger(__name__)

_NONE: tuple[np.ndarray, ...] = ()  # the empty result


class AudioTurn:
    """State of one audio RPC; :meth:`read` consumes the requests, :attr:`signals` reports.

    It is the conversation's :class:`~byova_media.conversation.TurnListener` while the
    RPC is open, so an agent that does its own turn-taking ends turns through it.
    """

    def __init__(
        self, conv: Conversation, vad_factory: Callable[[], VoiceActivityDetector]
    ) -> None:
        config = conv.app.config
        self.conv = conv
        self.config = config
        self.metrics = conv.app.metrics
        self.signals: asyncio.Queue[TurnSignal] = asyncio.Queue()
        self.jitter = JitterBuffer(
            frame_ms=FRAME_MS, floor_ms=config.jitter_floor_ms, ceiling_ms=config.jitter_ceiling_ms
        )
        eot = conv.app.end_of_turn
        self.detector = (
            None
            if conv.agent.turn_taking == "agent"
            else TurnDetector(
                vad_factory(),
                frame_ms=FRAME_MS,
                start_ms=config.speech_start_ms,
                end_silence_ms=config.speech_end_silence_ms,
                pre_roll_ms=config.pre_roll_ms,
                threshold=config.vad_threshold,
                end_of_turn=None if eot is None else eot.check(conv.call.conversation_id),
                short_silence_ms=config.turn_detector_silence_ms,
            )
        )
        self._max_frames = config.max_utterance_ms // FRAME_MS
        keep_before = (config.pre_roll_ms + config.speech_start_ms) // FRAME_MS + 2
        self._before: collections.deque[np.ndarray] = collections.deque(maxlen=keep_before)
        self._utterance: list[np.ndarray] = []
        self._index = 0  # frames seen on this RPC
        self._start_index: int | None = None
        self._resampler: Resampler | None = None
        self._resampler_rate = 0
        self._carry = np.zeros(0, dtype=np.int16)
        self.ended = False
        self._tiny = 0  # payloads under min_audio_bytes
        self.last_message_at = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._warned: set[str] = set()
        self._on_audio_ok = conv.agent.wants_audio
        self._settled = False

    # --- called from the agent (turn_taking = "agent") through Call ---

    @property
    def frames(self) -> int:
        """20 ms frames of caller audio processed on this RPC."""
        return self._index

    @property
    def speech_started(self) -> bool:
        """The caller began speaking on this RPC (the detector, or the agent, said so)."""
        return self._start_index is not None

    def signal(self, event: TurnEvent) -> bool:
        if self.ended or event is TurnEvent.STREAM_END:
            return False
        if event is TurnEvent.SPEECH_START and self._start_index is None:
            self._start_index = self._index
        self.signals.put_nowait(TurnSignal(event, time.monotonic()))
        return True

    # --- reading ---

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    async def read(
        self, first: pb.VoiceVARequest, requests: AsyncIterator[pb.VoiceVARequest]
    ) -> None:
        """Consume the RPC's requests until the client half-closes; then signal the stream end.

        Per message the work is synchronous; only agents that want the audio cost an
        ``await`` per frame.
        """
        error: Exception | None = None
        try:
            self._settings(first.audio_input)
            await self._feed(self._take(first.audio_input))
            async for request in requests:
                self.last_message_at = time.monotonic()
                if request.WhichOneof("voice_va_input_type") != "audio_input":
                    self._warn_once(
                        "kind",
                        "ignoring a non-audio message on an audio RPC (%s)",
                        request.WhichOneof("voice_va_input_type"),
                    )
                    continue
                audio = request.audio_input
                if not self._settled or not audio.caller_audio:
                    self._settings(audio)
                frames = self._take(audio)
                if frames:
                    await self._feed(frames)
            if not self.ended:
                await self._feed(self.jitter.flush())
        except DecodeError as exc:
            error = malformed(exc)
        except Exception as exc:
            error = exc  # RpcAbort for client errors; anything else is ours and ends INTERNAL
        finally:
            self.signals.put_nowait(TurnSignal(TurnEvent.STREAM_END, time.monotonic(), error=error))

    def watch_idle(self, timeout_s: float) -> None:
        """End the turn with DEADLINE_EXCEEDED if the caller sends nothing for ``timeout_s``.

        One timer per idle period instead of a deadline per message: the per-frame path
        only records the time of the last message. :meth:`finish` stops the watch.
        """
        self._idle_timer = asyncio.get_running_loop().call_later(
            timeout_s, self._check_idle, timeout_s
        )

    def _check_idle(self, timeout_s: float) -> None:
        # A method, not a closure that names itself: such a closure is a reference cycle
        # that would keep the turn and its whole utterance alive until the cyclic GC runs.
        if self.ended:
            return
        idle = time.monotonic() - self.last_message_at
        if idle < timeout_s:
            self._idle_timer = asyncio.get_running_loop().call_later(
                timeout_s - idle, self._check_idle, timeout_s
            )
            return
        self.ended = True
        abort = RpcAbort(
            "DEADLINE_EXCEEDED", f"no caller audio for {timeout_s:g} s before the turn ended"
        )
        self.signals.put_nowait(TurnSignal(TurnEvent.STREAM_END, time.monotonic(), error=abort))

    async def _feed(self, frames: Sequence[np.ndarray]) -> None:
        if self._on_audio_ok:
            for frame in frames:
                await self._give_agent(frame)
                self._frame(frame)
        else:
            for frame in frames:
                self._frame(frame)

    async def _give_agent(self, frame: np.ndarray) -> None:
        if not self._on_audio_ok:
            return
        try:
            await self.conv.agent.on_audio(self.conv.call, frame)
        except Exception as exc:
            self._on_audio_ok = False
            self.conv.report_failure(
                f"on_audio failed ({exc!r}); no more frames go to it on this RPC", exc
            )

    def _settings(self, audio: pb.VoiceInput) -> None:
        """Encoding, rate and language: from the settings message (and the first audio)."""
        encoding = encoding_from_wire(audio.encoding) if audio.encoding else None
        if audio.encoding and encoding is None:
            self._warn_once(
                "enc",
                "unknown audio encoding %d; keeping %s",
                audio.encoding,
                self.conv.encoding.value,
            )
        rate = audio.sample_rate_hertz if audio.sample_rate_hertz > 0 else None
        if rate is not None and rate not in SUPPORTED_RATES:
            raise RpcAbort(
                "INVALID_ARGUMENT",
                f"sample_rate_hertz {rate} is not supported "
                f"(supported: {', '.join(str(r) for r in sorted(SUPPORTED_RATES))})",
            )
        self.conv.set_audio_format(encoding, rate, audio.language_code)
        if audio.caller_audio:
            self._settled = True  # later messages carry only audio (Webex's sequence)

    def _take(self, audio: pb.VoiceInput) -> Sequence[np.ndarray]:
        """Decode one message's audio; return the 20 ms frames now ready, in order."""
        data = audio.caller_audio
        if not data or self.ended:
            return _NONE  # the settings message, or stragglers after END_OF_INPUT
        if len(data) < self.config.min_audio_bytes:
            self._tiny += 1  # Webex sends a few bytes at call start
            return _NONE
        conv = self.conv
        if conv.encoding is Encoding.L16 and len(data) % 2:
            self._warn_once(
                "odd", "L16 payload of odd length %d; dropping its last byte", len(data)
            )
        pcm = decode(data, conv.encoding)
        if conv.sample_rate != 8000:
            pcm = self._resample(pcm, conv.sample_rate)
        timestamp = None
        if audio.HasField("audio_timestamp"):
            ts = audio.audio_timestamp
            timestamp = ts.seconds * 1000.0 + ts.nanos / 1e6
        if len(pcm) == FRAME_SAMPLES and not len(self._carry):
            return self.jitter.push(pcm, timestamp)
        return self._reframe(pcm, timestamp)

    def _resample(self, pcm: np.ndarray, rate: int) -> np.ndarray:
        if self._resampler is None or self._resampler_rate != rate:
            self._resampler = Resampler(rate, 8000)
            self._resampler_rate = rate
        return self._resampler.process(pcm)

    def _reframe(self, pcm: np.ndarray, timestamp: float | None) -> list[np.ndarray]:
        """Cut payloads of other sizes into 20 ms frames (timestamps advance per frame)."""
        if len(self._carry):
            pcm = np.concatenate((self._carry, pcm))
            timestamp = None if timestamp is None else timestamp - len(self._carry) / 8.0
        whole = len(pcm) - len(pcm) % FRAME_SAMPLES
        ready: list[np.ndarray] = []
        for offset in range(0, whole, FRAME_SAMPLES):
            ts = None if timestamp is None else timestamp + offset / 8.0
            ready.extend(self.jitter.push(pcm[offset : offset + FRAME_SAMPLES], ts))
        self._carry = pcm[whole:].copy()
        return ready

    def _frame(self, frame: np.ndarray) -> None:
        """VAD and turn state for one frame, in order; O(1) apart from numpy."""
        self._index += 1
        if self._start_index is None:
            self._before.append(frame)
        else:
            self._utterance.append(frame)
        if self.detector is None:
            if len(self._utterance) > self._max_frames:
                del self._utterance[0]
            return
        event = self.detector.process(frame)
        now = time.monotonic()
        if event is not None and event.kind == "start" and self._start_index is None:
            # The detector reports where speech began; take those frames from the pre-roll.
            back = min(self._index - event.frame_index, len(self._before))
            self._utterance = list(self._before)[len(self._before) - back :] if back > 0 else []
            self._start_index = event.frame_index
            self.signals.put_nowait(TurnSignal(TurnEvent.SPEECH_START, now))
        elif event is not None and event.kind == "end" and self._start_index is not None:
            self._end(now, trailing=self._index - event.frame_index)
        elif self._start_index is not None and len(self._utterance) >= self._max_frames:
            self._warn_once(
                "max",
                "utterance reached max_utterance_ms=%d; ending it",
                self.config.max_utterance_ms,
            )
            self._end(now, trailing=0)

    def _end(self, now: float, trailing: int) -> None:
        self.ended = True
        if trailing > 0:
            del self._utterance[len(self._utterance) - min(trailing, len(self._utterance)) :]
        self.signals.put_nowait(
            TurnSignal(TurnEvent.SPEECH_END, now, speech_end_at=now - trailing * FRAME_MS / 1000.0)
        )

    def finish(self) -> None:
        """End the turn: audio that still arrives on this RPC is dropped."""
        self.ended = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None  # the timer holds this turn: no cycle through it

    def utterance(self) -> np.ndarray:
        if not self._utterance:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._utterance)

    def record_stats(self) -> None:
        stats = self.jitter.stats
        self.metrics.frames_in.inc(self._index)
        self.metrics.frames_tiny.inc(self._tiny)
        self.metrics.frames_late.inc(stats.late_dropped)
        self.metrics.frames_duplicate.inc(stats.duplicate)
        self.metrics.frames_concealed.inc(stats.concealed)
