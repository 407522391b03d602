"""The per-server context handed to every hook: configuration, plugins, state, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from byova_media.config import Config
from byova_media.metrics import Metrics
from byova_media.plugins import PluginHost

__all__ = ["App"]


@dataclass(eq=False)
class App:
    """Everything one server owns; plugins keep their objects in ``state[<plugin name>]``.

    ``draining`` turns true when the server stops taking new conversations.
    """

    config: Config
    plugins: PluginHost
    metrics: Metrics = field(default_factory=Metrics)
    state: dict[str, Any] = field(default_factory=dict)
    draining: bool = False

    def settings(self, plugin: str) -> dict[str, Any]:
        """The raw settings of one plugin (see :meth:`Config.plugin_settings`)."""
        return self.config.plugin_settings(plugin)
