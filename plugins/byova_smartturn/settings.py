"""``SmartTurnSettings``: the ``[plugin.smartturn]`` table (``BYOVA_MEDIA_SMARTTURN_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SmartTurnSettings"]


class SmartTurnSettings(BaseModel):
    """Where the model is, when a turn counts as complete, and how many threads it gets.

    ``model_path`` defaults to the cache that ``byova-media models fetch smart-turn``
    fills. One inference takes ~43 ms on one thread on the project's machine; more
    threads shorten it but take cores from the calls, so the default is one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_path: Path | None = None
    threshold: float = Field(0.5, gt=0, lt=1)
    threads: int = Field(1, ge=1, le=16)
