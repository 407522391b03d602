"""``RealtimeProtocol``: the websocket plugin's :class:`WireProtocol` for OpenAI's Realtime API.

The ``websocket`` plugin's connection and agent carry the session across Webex's RPCs;
this class says what goes over the socket. Client events we send:

- ``session.update`` (audio formats, voice, instructions, turn detection, tools), then
  ``response.create`` with the greeting; after a reconnect, the transcript so far as a
  ``conversation.item.create`` so the new session knows the call;
- ``input_audio_buffer.append`` (base64 μ-law), and with our VAD at END_OF_INPUT
  ``input_audio_buffer.commit`` + ``response.create``;
- on barge-in ``response.cancel`` (while a response runs) and
  ``conversation.item.truncate`` with ``audio_end_ms`` = what the caller heard;
- DTMF, no-input and Webex events as user text items plus ``response.create``; tool
  results as ``function_call_output`` items.

Server events become the websocket plugin's backend events: audio deltas → media,
``response.done`` → a mark that ends the reply, ``input_audio_buffer.speech_started`` /
``speech_stopped`` → turn boundaries (server VAD), transcripts → the call's transcript.
Function calls and errors go to the agent through :class:`RealtimeListener`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from byova_media.adapter_metrics import AdapterMetrics, ErrorKind
from byova_media.adapters import ToolSpec
from byova_media.pipeline import custom_event_note, dtmf_note, no_input_note
from byova_openai_realtime.schema import AUDIO_DELTA, AUDIO_TRANSCRIPT_DONE, session_update
from byova_openai_realtime.settings import RealtimeSettings
from byova_openai_realtime.state import CallState
from byova_websocket.protocol import (
    BackendEvent,
    BoundaryEvent,
    MarkEvent,
    MediaEvent,
    Message,
    ProtocolError,
    ReadyEvent,
    SessionInfo,
    TranscriptEvent,
    WireProtocol,
)

__all__ = ["ADAPTER", "RESPONSE_DONE_MARK", "ItemAudio", "RealtimeListener", "RealtimeProtocol"]

log = logging.getLogger(__name__)

ADAPTER = "openai_realtime"
#: The mark that ends a reply: the model's response is complete.
RESPONSE_DONE_MARK = "response.done"
#: 1 s of μ-law per ``input_audio_buffer.append`` when a whole turn is sent at once.
_APPEND_BYTES = 8000
#: Errors that are expected in a race and say nothing is wrong (a cancel after the end).
_BENIGN_ERRORS = frozenset({"response_cancel_not_active"})


@dataclass
class ItemAudio:
    """How much audio of one assistant item the current reply carried."""

    item_id: str
    ms: float = 0.0


class RealtimeListener(Protocol):
    """What the agent does with events that are not audio or turn boundaries."""

    def on_function_call(self, call_id: str, name: str, arguments: str) -> None: ...

    def on_response_done(self) -> bool:
        """A response ended; return whether the reply may end with it (no tool pending)."""
        ...


def _dump(event: Mapping[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


def _user_text(text: str) -> str:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return _dump({"type": "conversation.item.create", "item": item})


def _error_kind(error: Mapping[str, Any]) -> ErrorKind:
    code, kind = str(error.get("code") or ""), str(error.get("type") or "")
    if "rate_limit" in code or "rate_limit" in kind:
        return "rate_limited"
    if kind == "server_error":
        return "server_error"
    if kind == "invalid_request_error":
        return "client_error"
    return "protocol"


class RealtimeProtocol(WireProtocol):
    """One Realtime connection's encoder and decoder (a new one after each reconnect)."""

    name: ClassVar[str] = "openai_realtime"

    def __init__(
        self,
        settings: RealtimeSettings,
        tools: Sequence[ToolSpec],
        state: CallState,
        listener: RealtimeListener,
        metrics: AdapterMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.tools = tuple(tools)
        self.state = state
        self.listener = listener
        self.metrics = metrics
        self._clock = clock
        self._conversation_id = ""
        #: Whether a response is being generated (``response.created`` .. ``response.done``).
        self.response_active = False
        #: Audio of the current reply per assistant item, in ms, in the order it came.
        self.reply_items: list[ItemAudio] = []
        self._new_turn = False  # the next response starts a new reply
        self._asked_at: float | None = None  # when we (or the VAD) asked for a response
        self._handlers: dict[str, Callable[[dict[str, Any]], list[BackendEvent]]] = {
            "session.created": self._on_session,
            "response.created": self._on_response_created,
            "response.output_item.done": self._on_item_done,
            "response.done": self._on_response_done,
            "input_audio_buffer.speech_started": self._on_speech_started,
            "input_audio_buffer.speech_stopped": self._on_speech_stopped,
            "conversation.item.input_audio_transcription.completed": self._on_caller_text,
            "error": self._on_error,
        }
        for name in AUDIO_DELTA:
            self._handlers[name] = self._on_audio
        for name in AUDIO_TRANSCRIPT_DONE:
            self._handlers[name] = self._on_agent_text

    # --- client events --------------------------------------------------------------

    def opening(self, info: SessionInfo, resumed: bool) -> list[Message]:
        self._conversation_id = info.conversation_id
        messages: list[Message] = [_dump(session_update(self.settings, self.tools))]
        if resumed and self.state.lines:
            messages.append(_user_text("[The call so far]\n" + self.state.transcript()))
        elif not resumed and self.settings.greeting:
            messages.append(self._create_response(self.settings.greeting))
        return messages

    def audio(self, ulaw: bytes) -> Message:
        return _dump(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(ulaw).decode()}
        )

    def caller_turn(self, ulaw: bytes) -> list[Message]:
        """A whole turn's audio (our VAD cut it), appended in 1 s pieces."""
        return [self.audio(ulaw[i : i + _APPEND_BYTES]) for i in range(0, len(ulaw), _APPEND_BYTES)]

    def end_of_input(self) -> list[Message]:
        self._new_turn = True
        return [_dump({"type": "input_audio_buffer.commit"}), self._create_response()]

    def dtmf(self, digits: str) -> list[Message]:
        return self._say_to_model(dtmf_note(digits))

    def no_input(self) -> list[Message]:
        return self._say_to_model(no_input_note())

    def custom_event(self, name: str, parameters: Mapping[str, Any]) -> list[Message]:
        return self._say_to_model(custom_event_note(name, parameters))

    def barge_in(self, heard_ms: int) -> list[Message]:
        messages: list[Message] = []
        if self.response_active:
            messages.append(_dump({"type": "response.cancel"}))
        truncate = self._truncate(heard_ms)
        if truncate is not None:
            messages.append(_dump(truncate))
        self.reply_items = []
        return messages

    def tool_result(self, call_id: str, output: str) -> list[Message]:
        """A user tool's result; a response follows now, or when the running one ends."""
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        messages: list[Message] = [_dump({"type": "conversation.item.create", "item": item})]
        if self.response_active:
            self.state.response_wanted = True
        else:
            messages.append(self._create_response())
        return messages

    def response_wanted(self) -> list[Message]:
        """The response a tool result is waiting for, once none is running."""
        if self.response_active or not self.state.response_wanted:
            return []
        self.state.response_wanted = False
        return [self._create_response()]

    def mark_played(self, name: str) -> list[Message]:
        return []  # our marks are local: the API has nothing to hear about them

    def stop(self, reason: str) -> list[Message]:
        return []  # closing the socket ends the session

    def _say_to_model(self, text: str) -> list[Message]:
        self._new_turn = True
        cancel = [_dump({"type": "response.cancel"})] if self.response_active else []
        return [*cancel, _user_text(text), self._create_response()]

    def _create_response(self, instructions: str = "") -> str:
        self._asked_at = self._clock()
        event: dict[str, Any] = {"type": "response.create"}
        if instructions:
            event["response"] = {"instructions": instructions}
        return _dump(event)

    def _truncate(self, heard_ms: int) -> dict[str, Any] | None:
        """Cut the assistant item playing at ``heard_ms`` of the reply to what was heard."""
        offset = 0.0
        for item in self.reply_items:
            if heard_ms < offset + item.ms:
                return {
                    "type": "conversation.item.truncate",
                    "item_id": item.item_id,
                    "content_index": 0,
                    "audio_end_ms": max(0, int(heard_ms - offset)),
                }
            offset += item.ms
        return None  # everything was heard: nothing to cut

    # --- server events --------------------------------------------------------------

    def decode(self, message: Message) -> list[BackendEvent]:
        if isinstance(message, bytes):
            raise ProtocolError("the Realtime API sends JSON text events, not binary frames")
        try:
            event = json.loads(message)
        except json.JSONDecodeError:
            raise ProtocolError("an event that is not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ProtocolError("an event without a type")
        handler = self._handlers.get(event["type"])
        return handler(event) if handler is not None else []

    def _on_session(self, event: dict[str, Any]) -> list[BackendEvent]:
        server_vad = self.settings.turn_detection == "server"
        return [ReadyEvent(turn_taking="backend" if server_vad else "server")]

    def _on_response_created(self, event: dict[str, Any]) -> list[BackendEvent]:
        self.response_active = True
        if self._new_turn:  # a new reply: heard positions count from its start
            self._new_turn = False
            self.reply_items = []
        return []

    def _on_audio(self, event: dict[str, Any]) -> list[BackendEvent]:
        try:
            ulaw = base64.b64decode(event["delta"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            raise ProtocolError("an audio delta without base64 audio") from None
        item_id = str(event.get("item_id", ""))
        if not self.reply_items or self.reply_items[-1].item_id != item_id:
            self.reply_items.append(ItemAudio(item_id))
        self.reply_items[-1].ms += len(ulaw) / 8  # μ-law at 8 kHz: 8 bytes per ms
        if self._asked_at is not None:
            if self.metrics is not None:
                self.metrics.first_byte(ADAPTER, self._clock() - self._asked_at)
            self._asked_at = None
        return [MediaEvent(ulaw)]

    def _on_item_done(self, event: dict[str, Any]) -> list[BackendEvent]:
        item = event.get("item")
        if isinstance(item, dict) and item.get("type") == "function_call":
            self.listener.on_function_call(
                str(item.get("call_id", "")),
                str(item.get("name", "")),
                str(item.get("arguments") or "{}"),
            )
        return []

    def _on_response_done(self, event: dict[str, Any]) -> list[BackendEvent]:
        self.response_active = False
        response = event.get("response")
        status = response.get("status") if isinstance(response, dict) else None
        if status == "failed":
            details = response.get("status_details") if isinstance(response, dict) else None
            self._count("server_error")
            log.warning(
                "Realtime response failed: %s [conversation=%s]",
                json.dumps(details)[:200],
                self._conversation_id,
            )
        if not self.listener.on_response_done():
            return []  # a tool is running: its event or the next response ends the reply
        return [MarkEvent(RESPONSE_DONE_MARK)]

    def _on_speech_started(self, event: dict[str, Any]) -> list[BackendEvent]:
        return [BoundaryEvent("start")]

    def _on_speech_stopped(self, event: dict[str, Any]) -> list[BackendEvent]:
        self._new_turn = True
        self._asked_at = self._clock()  # the server VAD asks for the response itself
        return [BoundaryEvent("end")]

    def _on_caller_text(self, event: dict[str, Any]) -> list[BackendEvent]:
        self.state.add("Caller", str(event.get("transcript") or ""))
        return [TranscriptEvent(text=self.state.transcript())]

    def _on_agent_text(self, event: dict[str, Any]) -> list[BackendEvent]:
        self.state.add("Agent", str(event.get("transcript") or ""))
        return [TranscriptEvent(text=self.state.transcript())]

    def _on_error(self, event: dict[str, Any]) -> list[BackendEvent]:
        error = event.get("error")
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or "")
        if code in _BENIGN_ERRORS:
            log.debug("Realtime: %s [conversation=%s]", code, self._conversation_id)
            return []
        self._count(_error_kind(error))
        log.warning(
            "Realtime error %s (%s): %s [conversation=%s]",
            code or "-",
            error.get("type", "-"),
            str(error.get("message", ""))[:200],
            self._conversation_id,
        )
        return []

    def _count(self, kind: ErrorKind) -> None:
        if self.metrics is not None:
            self.metrics.error(ADAPTER, kind)
