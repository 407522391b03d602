"""``RealtimeAgent``: a Webex call held on one OpenAI Realtime session.

It is the ``websocket`` plugin's :class:`WebSocketAgent` (one socket per call across
Webex's RPCs, reconnects, a playout buffer feeding each turn's streamed reply, barge-in,
fallback when the API stays down) speaking :class:`RealtimeProtocol`. What it adds:
with our VAD the turn's audio goes up at END_OF_INPUT (the model hears exactly the
utterance our VAD cut); the model's function calls run as tools: ``transfer_to_agent``
and ``end_call`` end the call the Webex way, user tools answer the model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from functools import partial
from typing import Any

from byova_media.adapter_metrics import AdapterMetrics
from byova_media.agent import CustomEvent, EndSession, Reply, Transfer, Utterance
from byova_media.call import Call
from byova_media.pipeline import BUILTIN_TOOLS, Tool
from byova_openai_realtime.protocol import RealtimeProtocol
from byova_openai_realtime.settings import RealtimeSettings
from byova_openai_realtime.state import CallState
from byova_websocket.agent import WebSocketAgent
from byova_websocket.metrics import WsMetrics
from byova_websocket.protocol import (
    CustomEventMessage,
    EndEvent,
    Message,
    TransferEvent,
    WireProtocol,
)

__all__ = ["RealtimeAgent"]


def _realtime(protocol: WireProtocol) -> RealtimeProtocol:
    assert isinstance(protocol, RealtimeProtocol)
    return protocol


def _caller_turn(protocol: WireProtocol, ulaw: bytes) -> list[Message]:
    return _realtime(protocol).caller_turn(ulaw)


def _tool_result(protocol: WireProtocol, call_id: str, output: str) -> list[Message]:
    return _realtime(protocol).tool_result(call_id, output)


def _response_wanted(protocol: WireProtocol) -> list[Message]:
    return _realtime(protocol).response_wanted()


class RealtimeAgent(WebSocketAgent):
    """Bridges one conversation to a Realtime session; ``tools`` add to the built-in two."""

    def __init__(
        self,
        call: Call,
        settings: RealtimeSettings,
        tools: Iterable[Tool] = (),
        metrics: AdapterMetrics | None = None,
        ws_metrics: WsMetrics | None = None,
    ) -> None:
        self.realtime = settings
        self.tools = {t.spec.name: t for t in (*BUILTIN_TOOLS, *tools)}
        self.state = CallState()
        specs = [t.spec for t in self.tools.values()]
        super().__init__(
            call,
            settings.connector(),
            ws_metrics,
            protocol=lambda: RealtimeProtocol(settings, specs, self.state, self, metrics),
        )
        #: The API's VAD needs every caller frame; with ours it gets each turn whole.
        self.wants_audio = settings.turn_detection == "server"
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"RealtimeAgent({self.realtime.virtual_agent_id!r}, model={self.realtime.model!r})"

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        if not self.wants_audio:
            self._send(partial(_caller_turn, ulaw=utterance.ulaw()))
        return await super().on_utterance(call, utterance)

    async def on_end(self, call: Call, reason: str) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().on_end(call, reason)

    # --- from the protocol (the link's receiver task) ---

    def on_function_call(self, call_id: str, name: str, arguments: str) -> None:
        task = asyncio.create_task(self._run_tool(call_id, name, arguments), name=f"tool {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_response_done(self) -> bool:
        if self.state.response_wanted:
            self._send(_response_wanted)
        return not self._tasks

    async def _run_tool(self, call_id: str, name: str, raw: str) -> None:
        tool = self.tools.get(name)
        try:
            arguments: Any = json.loads(raw or "{}")
        except ValueError:
            arguments = {}
        if not isinstance(arguments, dict):
            arguments = {"value": arguments}
        if tool is None:
            self.call.log.warning("the model called an unknown tool %r", name)
            output: Any = json.dumps({"error": f"no tool named {name}"})
        else:
            try:
                output = await tool.handler(self.call, arguments)
            except Exception as exc:
                self.call.log.exception("tool %r failed", name)
                output = json.dumps({"error": f"{type(exc).__name__}: {exc}"[:200]})
        if isinstance(output, Transfer):
            self._on_event(TransferEvent(metadata=dict(output.metadata)))
        elif isinstance(output, EndSession):
            self._on_event(EndEvent(metadata=dict(output.metadata)))
        elif isinstance(output, CustomEvent):
            self._on_event(CustomEventMessage(output.name, dict(output.metadata)))
        else:
            self._send(partial(_tool_result, call_id=call_id, output=str(output)))
