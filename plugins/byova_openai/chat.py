"""``OpenAIChat``: a streaming :class:`~byova_media.adapters.LanguageModel` over HTTP SSE.

Speaks the chat-completions streaming format (``data: {...}`` lines, ``data: [DONE]``),
so it works with OpenAI and with compatible servers (vLLM, Ollama, LiteLLM...). A
failed attempt is retried (429 with ``Retry-After``, 5xx, connection errors, a first
token that does not come in time) only until the first token: after that the caller
has heard part of the answer and a retry would repeat it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from byova_media.adapters import LlmEvent, Message, TextDelta, ToolCall, ToolSpec
from byova_openai.http_errors import ERROR_SNIPPET, RETRY_STATUS, error_text, retry_after
from byova_openai.settings import OpenAISettings

__all__ = ["LlmError", "OpenAIChat"]

log = logging.getLogger(__name__)


class LlmError(RuntimeError):
    """The model endpoint failed; the message says how (never the API key)."""


class _Retryable(Exception):
    """An attempt failed before the first token; ``delay_s`` is the server's hint."""

    def __init__(self, reason: str, delay_s: float | None = None) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


def _wire_message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def _wire_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": dict(tool.parameters),
        },
    }


class OpenAIChat:
    """One endpoint and model; share it between calls (one pooled HTTP client)."""

    def __init__(self, settings: OpenAISettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.read_timeout_s,
                connect=settings.connect_timeout_s,
            )
        )
        self._url = settings.base_url.rstrip("/") + "/chat/completions"

    def __repr__(self) -> str:
        return f"OpenAIChat(base_url={self.settings.base_url!r}, model={self.settings.model!r})"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> OpenAIChat:
        return cls(OpenAISettings.model_validate(dict(options)))

    async def aclose(self) -> None:
        """Close the HTTP client (server stop)."""
        await self._client.aclose()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.settings.api_key is not None:
            headers["Authorization"] = f"Bearer {self.settings.api_key.get_secret_value()}"
        return headers

    def _body(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {
            "model": s.model,
            "stream": True,
            "messages": [_wire_message(m) for m in messages],
        }
        if tools:
            body["tools"] = [_wire_tool(t) for t in tools]
        if s.temperature is not None:
            body["temperature"] = s.temperature
        if s.max_tokens is not None:
            body["max_tokens"] = s.max_tokens
        return body

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()
    ) -> AsyncGenerator[LlmEvent, None]:
        """Text deltas as they arrive, then the tool calls the model made."""
        body = self._body(messages, tools)
        attempt = 0
        while True:
            started = [False]
            try:
                async for event in self._attempt(body, started):
                    yield event
                return
            except _Retryable as exc:
                if started[0] or attempt >= self.settings.max_retries:
                    raise LlmError(f"{self.settings.model} at {self._url}: {exc}") from None
                delay = exc.delay_s
                if delay is None:
                    delay = self.settings.retry_backoff_s * (2**attempt) * random.uniform(1, 1.5)
                delay = min(delay, self.settings.max_retry_after_s)
                attempt += 1
                log.warning("LLM attempt %d failed (%s); retrying in %.2f s", attempt, exc, delay)
                await asyncio.sleep(delay)

    async def _attempt(
        self, body: dict[str, Any], started: list[bool]
    ) -> AsyncGenerator[LlmEvent, None]:
        calls: dict[int, _PartialCall] = {}
        try:
            async with asyncio.timeout(self.settings.first_token_timeout_s) as deadline:
                async with self._client.stream(
                    "POST", self._url, json=body, headers=self._headers()
                ) as response:
                    if response.status_code != 200:
                        text = error_text(await response.aread())
                        reason = f"HTTP {response.status_code}: {text}"
                        if response.status_code in RETRY_STATUS:
                            raise _Retryable(reason, retry_after(response))
                        raise LlmError(f"{self.settings.model} at {self._url}: {reason}")
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        payload = line[5:].strip()
                        if payload == "[DONE]":
                            break
                        delta = self._delta(payload)
                        if delta is None:
                            continue
                        content, tool_deltas = delta
                        if not started[0] and (content or tool_deltas):
                            started[0] = True
                            deadline.reschedule(None)  # no deadline while yielding
                        for item in tool_deltas:
                            self._merge_tool_delta(calls, item)
                        if content:
                            yield TextDelta(content)
        except TimeoutError:
            raise _Retryable(
                f"no first token within {self.settings.first_token_timeout_s} s"
            ) from None
        except httpx.HTTPError as exc:
            # Transport failures carry no secrets (the key is only in a header).
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        for index in sorted(calls):
            yield self._tool_call(calls[index])

    def _delta(self, payload: str) -> tuple[str, list[Mapping[str, Any]]] | None:
        try:
            data = json.loads(payload)
        except ValueError:
            raise LlmError(f"malformed stream event from {self._url}: {payload[:80]!r}") from None
        if not isinstance(data, dict):
            return None
        if "error" in data:
            error = data["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise LlmError(f"{self.settings.model} stream error: {str(message)[:ERROR_SNIPPET]}")
        choices = data.get("choices") or []
        if not choices:
            return None
        delta = choices[0].get("delta") or {}
        return str(delta.get("content") or ""), list(delta.get("tool_calls") or [])

    @staticmethod
    def _merge_tool_delta(calls: dict[int, _PartialCall], item: Mapping[str, Any]) -> None:
        partial = calls.setdefault(int(item.get("index", 0)), _PartialCall())
        partial.id = item.get("id") or partial.id
        function = item.get("function") or {}
        partial.name += function.get("name") or ""
        partial.arguments.append(function.get("arguments") or "")

    @staticmethod
    def _tool_call(partial: _PartialCall) -> ToolCall:
        raw = "".join(partial.arguments).strip() or "{}"
        try:
            arguments = json.loads(raw)
        except ValueError:
            log.warning("tool call %s: arguments are not JSON; passing none", partial.name)
            arguments = {}
        if not isinstance(arguments, dict):
            arguments = {"value": arguments}
        return ToolCall(name=partial.name, arguments=arguments, id=partial.id)
