"""byova-media: put any voice agent behind Webex Contact Center's BYOVA gRPC interface."""

from __future__ import annotations

import pluggy

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]

__version__ = "0.1.0"

#: One name for the hook markers, the plugin manager and the entry-point group.
PROJECT_NAME = "byova_media"

#: Decorator for plugin hook implementations.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
