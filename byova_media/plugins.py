"""The plugin host: builds the pluggy manager and is the only caller of hooks.

Core code calls typed methods here instead of ``pm.hook.x(...)``. Plugins come from
three places: built-ins (always), entry points in the ``byova_media`` group, and names
given with ``--plugin`` (an entry-point name, a module, or ``module:attr``). When no
plugin is named, every discovered entry point is loaded; when some are named, only
those are, so a production server exposes exactly the agents it was asked for.
A named plugin that fails to load is a start-up error; a discovered one is skipped
with a warning so that ``byova-media plugins`` still works to diagnose it.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import pluggy

from byova_media import hookspecs
from byova_media._markers import PROJECT_NAME, __version__
from byova_media.hookspecs import AddCommand

if TYPE_CHECKING:
    import grpc.aio
    from aiohttp import web

    from byova_media.adapters import LlmFactory, SttFactory, TtsFactory
    from byova_media.agent import AgentSpec, TurnMetrics
    from byova_media.app import App
    from byova_media.audio.end_of_turn import EndOfTurnModel
    from byova_media.audio.vad import VoiceActivityDetector
    from byova_media.ws.auth import UpgradeAuthenticator

__all__ = ["BUILTIN_PLUGINS", "PluginError", "PluginHost", "PluginInfo"]

log = logging.getLogger(__name__)

#: Modules inside the core that are plugins like any other.
BUILTIN_PLUGINS = ("byova_media.builtins",)


class PluginError(RuntimeError):
    """A plugin could not be loaded or registered something invalid."""


@dataclass(frozen=True)
class PluginInfo:
    """What ``byova-media plugins`` shows about one plugin."""

    name: str
    source: str
    version: str
    hooks: tuple[str, ...]
    requires: str | None = None


@dataclass
class PluginHost:
    """Owns one plugin manager; build with :meth:`create`."""

    pm: pluggy.PluginManager
    infos: list[PluginInfo] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        requested: Sequence[str] = (),
        disabled: Sequence[str] = (),
        *,
        discover: bool = True,
        extra: Iterable[tuple[str, object]] = (),
    ) -> PluginHost:
        """Build the manager: built-ins, entry points, requested names, then ``extra``.

        ``extra`` are already-imported plugin objects (tests register theirs here).
        """
        pm = pluggy.PluginManager(PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        host = cls(pm)
        blocked = set(disabled)
        for name in BUILTIN_PLUGINS:
            host._register(importlib.import_module(name), name, "builtin", __version__)
        entry_points = {ep.name: ep for ep in metadata.entry_points(group=PROJECT_NAME)}
        wanted = [n for n in requested if n not in blocked]
        if discover and not wanted:
            for name, ep in sorted(entry_points.items()):
                if name in blocked:
                    continue
                try:
                    host._load_entry_point(name, ep)
                except Exception as exc:  # a broken installed plugin must not stop the CLI
                    host.failures[name] = f"{type(exc).__name__}: {exc}"
                    log.warning("skipping plugin %s: %s", name, host.failures[name])
        for name in wanted:
            if host.pm.has_plugin(name):
                continue
            if name in entry_points:
                host._load_entry_point(name, entry_points[name], source="requested")
            else:
                host._register(_import_target(name), name, "requested", "")
        for name, plugin in extra:
            host._register(plugin, name, "extra", "")
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from None
        return host

    def _load_entry_point(
        self, name: str, ep: metadata.EntryPoint, source: str = "entry point"
    ) -> None:
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {name!r} ({ep.value}) failed to import: {exc}") from exc
        version = ep.dist.version if ep.dist is not None else ""
        dist = ep.dist.name if ep.dist is not None else ep.value
        self._register(plugin, name, f"{source} ({dist})", version)

    def _register(self, plugin: object, name: str, source: str, version: str) -> None:
        requires = getattr(plugin, "BYOVA_MEDIA_REQUIRES", None)
        if requires is not None:
            _check_compatible(name, str(requires))
        try:
            self.pm.register(plugin, name=name)
        except ValueError as exc:
            raise PluginError(f"plugin {name!r} could not be registered: {exc}") from None
        hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or ()))
        version = version or str(getattr(plugin, "__version__", ""))
        self.infos.append(PluginInfo(name, source, version, hooks, requires))

    def require(self, name: str, *, by: str) -> None:
        """Load the installed plugin ``name`` that plugin ``by`` needs, unless loaded already.

        For plugins that assemble others (the demo agent needs a recogniser and a
        voice); call it from ``byova_configure``. A missing plugin is a start-up error.
        """
        if self.pm.has_plugin(name):
            return
        entry_points = {ep.name: ep for ep in metadata.entry_points(group=PROJECT_NAME)}
        if name not in entry_points:
            raise PluginError(f"plugin {by!r} needs plugin {name!r}, which is not installed")
        self._load_entry_point(name, entry_points[name], source=f"required by {by}")

    def unregister(self, name: str) -> None:
        """Remove a plugin (tests register theirs and take them out again)."""
        self.pm.unregister(name=name)
        self.infos = [i for i in self.infos if i.name != name]

    # --- typed facade over the hooks ----------------------------------------------

    def add_commands(self, add_command: AddCommand) -> None:
        self.pm.hook.byova_add_commands(add_command=add_command)

    def configure(self, app: App) -> None:
        self.pm.hook.byova_configure(app=app)

    def agents(self, app: App) -> dict[str, AgentSpec]:
        specs: dict[str, AgentSpec] = {}

        def register(spec: AgentSpec) -> None:
            if spec.virtual_agent_id in specs:
                raise PluginError(f"virtual agent {spec.virtual_agent_id!r} registered twice")
            specs[spec.virtual_agent_id] = spec

        self.pm.hook.byova_register_agents(app=app, register=register)
        return specs

    def vads(self, app: App) -> dict[str, Callable[[], VoiceActivityDetector]]:
        found: dict[str, Callable[[], VoiceActivityDetector]] = {}

        def register(name: str, factory: Callable[[], VoiceActivityDetector]) -> None:
            if name in found:
                raise PluginError(f"voice activity detector {name!r} registered twice")
            found[name] = factory

        self.pm.hook.byova_register_vads(app=app, register=register)
        return found

    def turn_detectors(self, app: App) -> dict[str, Callable[[], EndOfTurnModel]]:
        return self._named(app, (self.pm.hook.byova_register_turn_detectors,), "turn detector")

    def interceptors(self, app: App) -> list[grpc.aio.ServerInterceptor]:
        results = self.pm.hook.byova_grpc_interceptors(app=app)
        # pluggy returns results last-registered first; install in registration order.
        return [i for group in reversed(results) if group for i in group]

    def ws_authenticator(self, app: App) -> UpgradeAuthenticator | None:
        """The first plugin's check for WebSocket upgrades, or None (no authentication)."""
        result: UpgradeAuthenticator | None = self.pm.hook.byova_ws_authenticator(app=app)
        return result

    def http_routes(self, app: App) -> list[web.RouteDef]:
        results = self.pm.hook.byova_http_routes(app=app)
        return [r for group in reversed(results) if group for r in group]

    async def start(self, app: App) -> None:
        for result in reversed(self.pm.hook.byova_server_start(app=app)):
            await _maybe_await(result)

    async def stop(self, app: App) -> None:
        for impl in self.pm.hook.byova_server_stop.get_hookimpls():
            try:
                await _maybe_await(cast("Awaitable[None] | None", impl.function(app=app)))
            except Exception:
                log.exception("plugin %s failed while stopping", impl.plugin_name)

    def turn_metrics(self, app: App, metrics: TurnMetrics) -> None:
        for impl in self.pm.hook.byova_turn_metrics.get_hookimpls():
            try:
                impl.function(app=app, metrics=metrics)
            except Exception:
                log.exception("plugin %s failed in byova_turn_metrics", impl.plugin_name)

    # --- voice stack (speech-to-text, language models, text-to-speech) ----------------

    def stts(self, app: App) -> dict[str, SttFactory]:
        hooks = self.pm.hook
        return self._named(
            app, (hooks.byova_register_stt_engines, hooks.byova_register_stt), "speech recogniser"
        )

    def llms(self, app: App) -> dict[str, LlmFactory]:
        return self._named(app, (self.pm.hook.byova_register_llms,), "language model")

    def ttss(self, app: App) -> dict[str, TtsFactory]:
        hooks = self.pm.hook
        return self._named(
            app, (hooks.byova_register_tts_engines, hooks.byova_register_tts), "speech synthesiser"
        )

    def _named(self, app: App, hooks: tuple[Any, ...], what: str) -> dict[str, Any]:
        """Collect factories registered by name through ``hooks`` (a name and its aliases)."""
        found: dict[str, Any] = {}

        def register(name: str, factory: Any) -> None:
            if name in found:
                raise PluginError(f"{what} {name!r} registered twice")
            found[name] = factory

        for hook in hooks:
            hook(app=app, register=register)
        return found


async def _maybe_await(value: Awaitable[None] | None) -> None:
    if value is not None and inspect.isawaitable(value):
        await value


def _import_target(target: str) -> object:
    """Import ``module`` or ``module:attr`` named on the command line."""
    module_name, _, attr = target.partition(":")
    try:
        module: ModuleType = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(
            f"plugin {target!r} is neither an installed entry point nor an importable module "
            f"({exc}); install it or check the name with `byova-media plugins`"
        ) from exc
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PluginError(f"plugin {target!r}: module {module_name} has no {attr!r}") from None


def _check_compatible(name: str, requires: str) -> None:
    """Refuse a plugin whose declared byova-media range excludes this version."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        spec = SpecifierSet(requires)
    except InvalidSpecifier:
        raise PluginError(
            f"plugin {name!r} declares an invalid BYOVA_MEDIA_REQUIRES {requires!r}"
        ) from None
    if __version__ not in spec:
        raise PluginError(
            f"plugin {name!r} supports byova-media {requires}, but this is byova-media "
            f"{__version__}; upgrade the plugin or install a matching byova-media"
        )
