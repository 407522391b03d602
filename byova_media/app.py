"""The per-server context handed to every hook: configuration, plugins, state, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from byova_media.config import Config
from byova_media.metrics import Metrics
from byova_media.peer import PeerCredential
from byova_media.plugins import PluginHost

if TYPE_CHECKING:
    from byova_media.audio.end_of_turn import EndOfTurnRunner

__all__ = ["App"]


@dataclass(eq=False)
class App:
    """Everything one server owns; plugins keep their objects in ``state[<plugin name>]``.

    ``draining`` turns true when the server stops taking new conversations;
    ``end_of_turn`` is the shared end-of-turn model the server started (``turn_detector``).
    """

    config: Config
    plugins: PluginHost
    metrics: Metrics = field(default_factory=Metrics)
    state: dict[str, Any] = field(default_factory=dict)
    draining: bool = False
    end_of_turn: EndOfTurnRunner | None = None
    #: Mints tokens for the server's calls to itself (the playground); see ``peer.py``.
    peer: PeerCredential = field(default_factory=PeerCredential)

    def settings(self, plugin: str) -> dict[str, Any]:
        """The raw settings of one plugin (see :meth:`Config.plugin_settings`)."""
        return self.config.plugin_settings(plugin)

    def prefer(self, **settings: Any) -> dict[str, Any]:
        """Use these core settings where the user set nothing; return the ones applied.

        For plugins that know a better default when their extras are installed (the demo
        picks its turn-taking this way); call it from ``byova_configure``. The user's own
        choices always win, and the result is validated like any configuration.
        """
        config = self.config
        applied = {k: v for k, v in settings.items() if k not in config.model_fields_set}
        if applied:
            merged = {**config.model_dump(exclude_unset=True), **applied}
            self.config = Config.model_validate(merged)
        return applied
