"""Retrying a request to an OpenAI-compatible endpoint, only while that is safe.

An attempt raises :class:`Retryable` for failures worth another try (429 with its
``Retry-After``, 5xx, connection errors, no answer in time); :func:`with_retries`
waits with jittered exponential backoff and tries again up to ``max_retries`` times.
Callers that stream must stop retrying once they have handed out a first byte.
"""

from __future__ import annotations

import asyncio
import logging
import random

from byova_media.adapter_metrics import ErrorKind
from byova_openai.settings import OpenAISettings

__all__ = ["Retryable", "wait_before_retry"]

log = logging.getLogger(__name__)


class Retryable(Exception):
    """An attempt failed in a way another attempt may not; ``delay_s`` is the server's hint."""

    def __init__(self, reason: str, kind: ErrorKind, delay_s: float | None = None) -> None:
        super().__init__(reason)
        self.kind: ErrorKind = kind
        self.delay_s = delay_s


async def wait_before_retry(
    settings: OpenAISettings, attempt: int, failure: Retryable, what: str
) -> None:
    """Sleep before retry number ``attempt`` (1-based) after ``failure``."""
    delay = failure.delay_s
    if delay is None:
        delay = settings.retry_backoff_s * (2 ** (attempt - 1)) * random.uniform(1, 1.5)
    delay = min(delay, settings.max_retry_after_s)
    log.warning("%s attempt %d failed (%s); retrying in %.2f s", what, attempt, failure, delay)
    await asyncio.sleep(delay)
