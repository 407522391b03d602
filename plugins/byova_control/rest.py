"""Webex REST client: one shared ``httpx.AsyncClient``, bounded retries, pagination, typed errors.

429 answers are retried after ``Retry-After`` plus jitter; 5xx answers and transport errors
are retried with exponential backoff for idempotent methods only (a retried POST could create
a second webhook or data source). ``Link: rel="next"`` pages are followed.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx

__all__ = [
    "IDEMPOTENT_METHODS",
    "RateLimitedError",
    "WebexApiError",
    "WebexClient",
    "make_http_client",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_BODY_PREVIEW_CHARS = 2000


class WebexApiError(Exception):
    """Webex answered with an error status (or could not be reached after the retries)."""

    def __init__(
        self, message: str, *, status: int | None, tracking_id: str | None, body: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.tracking_id = tracking_id
        self.body = body

    def __str__(self) -> str:
        where = f" (trackingId {self.tracking_id})" if self.tracking_id else ""
        return f"{self.args[0]}{where}"


class RateLimitedError(WebexApiError):
    """Webex kept answering 429 after every allowed retry."""

    def __init__(self, message: str, *, tracking_id: str | None, body: Any, retry_after_s: float):
        super().__init__(message, status=429, tracking_id=tracking_id, body=body)
        self.retry_after_s = retry_after_s


def make_http_client(timeout_s: float = 15.0) -> httpx.AsyncClient:
    """The one client the plugin shares; ``trust_env`` honours HTTP(S)_PROXY and NO_PROXY."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        trust_env=True,
        headers={"User-Agent": "byova-media-control"},
    )


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class WebexClient:
    """Calls ``{base_url}{path}`` with a bearer token and turns failures into typed errors."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_wait_s: float = 120.0,
        jitter_s: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.jitter_s = jitter_s
        self._sleep = sleep
        self._random = random.Random()

    def url(self, path: str) -> str:
        """Absolute URL for an API path (absolute URLs, e.g. from ``Link``, pass through)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        """Send one request with retries; return the successful response or raise."""
        method = method.upper()
        headers = {"TrackingID": f"byova-media_{uuid.uuid4()}"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = self.url(path)
        attempt = 0
        while True:
            try:
                response = await self.http.request(
                    method, url, headers=headers, json=json, data=data, params=params
                )
            except httpx.TransportError as exc:
                if method not in IDEMPOTENT_METHODS or attempt >= self.max_retries:
                    raise WebexApiError(
                        f"{method} {path} failed: {type(exc).__name__}: {exc}",
                        status=None,
                        tracking_id=headers["TrackingID"],
                    ) from exc
                await self._backoff(attempt, f"{method} {path}: {type(exc).__name__}")
            else:
                if response.status_code < 400:
                    return response
                tracking = response.headers.get("trackingid") or headers["TrackingID"]
                await self._wait_or_raise(response, f"{method} {path}", attempt, tracking)
            attempt += 1

    async def _wait_or_raise(
        self, response: httpx.Response, what: str, attempt: int, tracking: str
    ) -> None:
        """Wait before retrying a failed response (429, or 5xx when idempotent), or raise."""
        if response.status_code == 429:
            wait = parse_retry_after(response.headers.get("retry-after"), now=time.time())
            wait = 1.0 if wait is None else wait
            if attempt < self.max_retries and wait <= self.max_wait_s:
                wait += self._random.uniform(0, self.jitter_s)
                log.warning("Webex rate-limited %s; retrying in %.2f s", what, wait)
                await self._sleep(wait)
                return
            raise RateLimitedError(
                f"{what}: rate-limited by Webex after {attempt + 1} attempts",
                tracking_id=tracking,
                body=_body(response),
                retry_after_s=wait,
            )
        method = what.split(" ", 1)[0]
        retryable = response.status_code >= 500 and method in IDEMPOTENT_METHODS
        if retryable and attempt < self.max_retries:
            await self._backoff(attempt, f"{what}: HTTP {response.status_code}")
            return
        body = _body(response)
        raise WebexApiError(
            f"{what}: HTTP {response.status_code}{_message(body)}",
            status=response.status_code,
            tracking_id=tracking,
            body=body,
        )

    async def _backoff(self, attempt: int, what: str) -> None:
        wait = min(self.max_wait_s, self.backoff_s * 2**attempt)
        wait += self._random.uniform(0, self.jitter_s)
        log.warning("%s; retrying in %.2f s", what, wait)
        await self._sleep(wait)

    async def get(
        self, path: str, *, token: str, params: Mapping[str, str | int] | None = None
    ) -> Any:
        """GET a JSON document."""
        return _json(await self.request("GET", path, token=token, params=params))

    async def post(self, path: str, *, token: str | None, json: Any = None) -> Any:
        """POST a JSON body, return the JSON answer."""
        return _json(await self.request("POST", path, token=token, json=json))

    async def put(self, path: str, *, token: str, json: Any) -> Any:
        """PUT a JSON body, return the JSON answer."""
        return _json(await self.request("PUT", path, token=token, json=json))

    async def delete(self, path: str, *, token: str) -> None:
        """DELETE a resource."""
        await self.request("DELETE", path, token=token)

    async def form(self, path: str, data: Mapping[str, str]) -> Any:
        """POST a form (the OAuth token endpoint), return the JSON answer."""
        return _json(await self.request("POST", path, data=data))

    async def paginate(
        self, path: str, *, token: str, params: Mapping[str, str | int] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every ``items`` entry, following ``Link: rel="next"`` across pages."""
        next_url: str | None = path
        first = True
        while next_url is not None:
            response = await self.request(
                "GET", next_url, token=token, params=params if first else None
            )
            first = False
            for item in _json(response).get("items", []):
                yield item
            next_link = response.links.get("next")
            next_url = next_link.get("url") if next_link else None

    async def collect(
        self, path: str, *, token: str, params: Mapping[str, str | int] | None = None
    ) -> list[dict[str, Any]]:
        """All items of a paginated listing."""
        return [item async for item in self.paginate(path, token=token, params=params)]


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError as exc:
        raise WebexApiError(
            f"Webex answered {response.request.method} {response.request.url.path} "
            "with a body that is not JSON",
            status=response.status_code,
            tracking_id=response.headers.get("trackingid"),
            body=response.text[:_BODY_PREVIEW_CHARS],
        ) from exc


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:_BODY_PREVIEW_CHARS]


def _message(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return f": {body['message']}"
    return ""
