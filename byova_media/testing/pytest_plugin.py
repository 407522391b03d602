"""pytest fixtures for testing byova-media agents offline (registered via ``pytest11``)."""

from __future__ import annotations
