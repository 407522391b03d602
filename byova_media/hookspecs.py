"""Every hook a byova-media plugin can implement, grouped by when it runs.

Hooks are synchronous and *register things* (agents, detectors, interceptors, HTTP
routes, commands); the things they return do the per-call async work. The core calls
hooks at start-up and at call set-up, never per audio frame. Implement them with
``@byova_media.hookimpl`` in a module or package named by ``--plugin`` or registered
under the ``byova_media`` entry-point group.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

from byova_media._markers import PROJECT_NAME

if TYPE_CHECKING:
    import grpc.aio
    from aiohttp import web

    from byova_media.agent import AgentSpec, TurnMetrics
    from byova_media.app import App
    from byova_media.audio.end_of_turn import EndOfTurnModel
    from byova_media.audio.vad import VoiceActivityDetector
    from byova_media.ws.auth import UpgradeAuthenticator

__all__ = ["hookspec"]

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


# --- command line --------------------------------------------------------------------


#: ``add_command(name, help=...)`` adds a sub-command and returns its parser.
AddCommand = Callable[..., argparse.ArgumentParser]


@hookspec
def byova_add_commands(add_command: AddCommand) -> None:
    """Add sub-commands to ``byova-media``.

    Called once while the command line is built, before arguments are parsed. Add a
    parser with ``add_command(name, help=...)`` (it takes the arguments of
    ``argparse``'s ``add_parser``) and set ``func`` with
    ``parser.set_defaults(func=handler)``, where ``handler(args) -> int`` returns the
    exit status. All implementations are called.
    """


# --- server set-up (once per server, in this order) -----------------------------------


@hookspec
def byova_configure(app: App) -> None:
    """Prepare the plugin's per-server objects.

    Called once when a server is built, before every other server hook. Keep state
    in ``app.state[<your plugin name>]``, never at module level, so that two servers
    can share a process. Read your settings with ``app.config.plugin_settings(name)``.
    All implementations are called.
    """


@hookspec
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    """Register virtual agents by calling ``register(AgentSpec(...))``.

    Called once per server. Each spec names a ``virtual_agent_id`` and a factory
    that makes one agent object per conversation. ``ListVirtualAgents`` returns
    every registered spec; a request for an id nobody registered gets NOT_FOUND.
    All implementations are called; registering an id twice is a start-up error.
    """


@hookspec
def byova_register_vads(
    app: App, register: Callable[[str, Callable[[], VoiceActivityDetector]], None]
) -> None:
    """Register voice activity detectors by name: ``register("webrtc", factory)``.

    Called once per server. The factory makes one detector per audio stream (they
    keep state). ``vad`` in the configuration picks one by name; the built-in
    ``energy`` detector is always there. All implementations are called.
    """


@hookspec
def byova_register_turn_detectors(
    app: App, register: Callable[[str, Callable[[], EndOfTurnModel]], None]
) -> None:
    """Register end-of-turn models by name: ``register("smartturn", factory)``.

    Called once per server. ``turn_detector`` in the configuration picks one by name
    (``none``, the default, uses none); the server calls that factory once at start-up
    and shares the model between all calls, running it on a worker thread. A factory
    that cannot load its model raises an error that says how to get it. All
    implementations are called; a name registered twice is a start-up error.
    """


@hookspec
def byova_grpc_interceptors(app: App) -> Sequence[grpc.aio.ServerInterceptor] | None:
    """Return gRPC server interceptors to install (e.g. JWS verification).

    Called once per server, before it binds its port. Interceptors run for every
    RPC, in plugin registration order. All implementations are called.
    """


@hookspec(firstresult=True)
def byova_ws_authenticator(app: App) -> UpgradeAuthenticator | None:
    """Return the check for WebSocket upgrades (``/v1/va``, ``/v1/listVirtualAgents``).

    Called once per server when ``ws_port`` is set, before it binds the port. A refused
    upgrade gets HTTP 401 and no socket. ``firstresult``: the first non-None result wins;
    with none, sockets are not authenticated.
    """


@hookspec
def byova_http_routes(app: App) -> Sequence[web.RouteDef] | None:
    """Return aiohttp routes to serve on the HTTP port (``--http-port``).

    Called once per server. The core serves ``/health``, ``/ready`` and
    ``/metrics`` itself; plugins add e.g. webhook receivers. All implementations
    are called; a path registered twice is a start-up error.
    """


# --- server lifecycle -----------------------------------------------------------------


@hookspec
def byova_server_start(app: App) -> Awaitable[None] | None:
    """Start background work; return an awaitable and the server awaits it.

    Called after the gRPC and HTTP ports are bound, before the ready log line. An
    exception here stops start-up. All implementations are called.
    """


@hookspec
def byova_server_stop(app: App) -> Awaitable[None] | None:
    """Stop background work and release resources; may return an awaitable.

    Called once after the server stopped taking calls (after the drain). Errors
    are logged and do not prevent other plugins from stopping. All
    implementations are called.
    """


# --- per call (set-up and turn boundaries, never per frame) ---------------------------


@hookspec
def byova_turn_metrics(app: App, metrics: TurnMetrics) -> None:
    """Receive the latency figures of one finished turn.

    Called once per turn after its FINAL was sent, with the conversation id and the
    times the turn's milestones were reached. Must return quickly; exceptions
    are logged and ignored. All implementations are called.
    """


# --- voice stack: speech-to-text, language models, text-to-speech ----------------------

if TYPE_CHECKING:
    from byova_media.adapters import LlmFactory, SttFactory, TtsFactory


@hookspec
def byova_register_stt_engines(app: App, register: Callable[[str, SttFactory], None]) -> None:
    """Register speech recognisers by name: ``register("pocketsphinx", factory)``.

    Called once per server. ``factory(options)`` makes a
    :class:`~byova_media.adapters.SpeechToText` from the options of the virtual agent
    that picks it by name. All implementations are called; a name registered twice
    is a start-up error.
    """


@hookspec
def byova_register_llms(app: App, register: Callable[[str, LlmFactory], None]) -> None:
    """Register language models by name: ``register("openai", factory)``.

    Called once per server. ``factory(options)`` makes a
    :class:`~byova_media.adapters.LanguageModel`. All implementations are called; a
    name registered twice is a start-up error.
    """


@hookspec
def byova_register_tts_engines(app: App, register: Callable[[str, TtsFactory], None]) -> None:
    """Register speech synthesisers by name: ``register("espeak", factory)``.

    Called once per server. ``factory(options)`` makes a
    :class:`~byova_media.adapters.TextToSpeech`. All implementations are called; a
    name registered twice is a start-up error.
    """


# --- deprecated names (still honoured; implementing them warns) -----------------------


@hookspec(
    warn_on_impl=DeprecationWarning(
        "byova_register_stt is deprecated; implement byova_register_stt_engines"
    )
)
def byova_register_stt(app: App, register: Callable[[str, SttFactory], None]) -> None:
    """Deprecated name of :func:`byova_register_stt_engines` (same arguments).

    Both names are collected into one set of speech recognisers.
    """


@hookspec(
    warn_on_impl=DeprecationWarning(
        "byova_register_tts is deprecated; implement byova_register_tts_engines"
    )
)
def byova_register_tts(app: App, register: Callable[[str, TtsFactory], None]) -> None:
    """Deprecated name of :func:`byova_register_tts_engines` (same arguments).

    Both names are collected into one set of speech synthesisers.
    """
