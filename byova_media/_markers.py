"""The project's one name and its hook marker, kept apart so any core module can import them."""

from __future__ import annotations

import pluggy

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]

__version__ = "0.1.0"

#: One name for the hook markers, the plugin manager and the entry-point group.
PROJECT_NAME = "byova_media"

#: Decorator for plugin hook implementations.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
