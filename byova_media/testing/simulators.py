"""Pick the Webex simulator for an address: ``ws://``/``wss://`` → WebSocket, else gRPC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from byova_media.testing.simulator import WebexSimulator
from byova_media.testing.ws_simulator import WsWebexSimulator, is_ws_target

__all__ = ["Simulator", "Transport", "simulator_for", "target_for"]

#: A simulator of either transport; both place calls with the same steps.
Simulator = WebexSimulator | WsWebexSimulator
Transport = Literal["grpc", "ws"]


def target_for(address: str, transport: Transport) -> str:
    """``HOST:PORT`` as the target of ``transport`` (``ws://HOST:PORT`` for WebSocket)."""
    if transport == "ws" and not is_ws_target(address):
        return f"ws://{address}"
    return address


def simulator_for(
    target: str, *, realtime: bool = True, token: str | Callable[[], str] | None = None
) -> Simulator:
    """A simulator for ``target``: WebSocket for ``ws://``/``wss://``, gRPC for ``HOST:PORT``."""
    if is_ws_target(target):
        return WsWebexSimulator(target, realtime=realtime, token=token)
    return WebexSimulator(target, realtime=realtime, token=token)
