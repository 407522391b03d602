"""``Call``: the per-conversation handle every agent method receives."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from byova_media.turn_signals import TurnEvent

if TYPE_CHECKING:
    from byova_media.app import App

__all__ = ["Call"]


class Call:
    """What an agent knows about its conversation and can ask of the engine.

    Lives as long as the conversation (across all of Webex's RPCs for it). ``signal``,
    ``heard`` and ``speaking`` are the conversation's own operations, passed in when it
    builds the call: ``signal`` routes an agent-driven turn boundary to the open audio
    stream, ``heard`` says how much of the current reply the caller has heard, ``speaking``
    whether the caller has begun a turn on the open audio stream. A call built alone (e.g.
    in an agent's unit test) has none of them.
    """

    def __init__(
        self,
        *,
        app: App,
        conversation_id: str,
        virtual_agent_id: str,
        customer_org_id: str,
        tracking_id: str = "",
        signal: Callable[[TurnEvent], bool] | None = None,
        heard: Callable[[], int] | None = None,
        speaking: Callable[[], bool] | None = None,
    ) -> None:
        self.app = app
        self.conversation_id = conversation_id
        self.virtual_agent_id = virtual_agent_id
        self.customer_org_id = customer_org_id
        self.tracking_id = tracking_id
        self.parameters: Mapping[str, Any] = {}
        self.language_code = ""
        #: Free space for the agent's own per-call state.
        self.state: dict[str, Any] = {}
        #: The latest transcript/summary; the engine puts them on the call's last response.
        self.transcript: str | None = None
        self.summary: str | None = None
        #: The agent's logger; every line carries the call's ids (see ``byova_media.logs``).
        self.log = logging.getLogger(f"byova_media.agent.{virtual_agent_id}")
        #: Latency milestones of the current turn, by name (see :meth:`mark`).
        self.marks: dict[str, float] = {}
        self._signal = signal or _no_stream
        self._heard = heard or _nothing_heard
        self._speaking = speaking or _always_speaking

    def __repr__(self) -> str:
        return f"Call(conversation_id={self.conversation_id!r}, agent={self.virtual_agent_id!r})"

    def start_of_input(self) -> bool:
        """Tell Webex the caller started speaking (agents with ``turn_taking = "agent"``).

        Returns whether an audio RPC was open to carry it.
        """
        return self._signal(TurnEvent.SPEECH_START)

    def end_of_input(self) -> bool:
        """Tell Webex the caller's turn ended; the agent's reply follows on the same RPC."""
        return self._signal(TurnEvent.SPEECH_END)

    def mark(self, name: str) -> None:
        """Record a latency milestone of the current turn (e.g. ``"llm_first_token"``)."""
        self.marks.setdefault(name, time.monotonic())

    def heard_ms(self) -> int:
        """How much of the current or last reply the caller has heard, in ms."""
        return self._heard()

    def speech_started(self) -> bool:
        """Whether the caller has begun a turn on the open audio RPC (START_OF_INPUT is due).

        It turns true on the frame after the turn detector found the start, so the turn's
        first frames (pre-roll and attack) have already reached ``on_audio``: an agent that
        waits for it keeps the last moments before it. A call built alone says true.
        """
        return self._speaking()


def _no_stream(_event: TurnEvent) -> bool:
    return False


def _always_speaking() -> bool:
    return True  # no engine to ask: every frame may be speech


def _nothing_heard() -> int:
    return 0
