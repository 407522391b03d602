"""examples/llm_agent on the bundled openai plugin, against a local chat-completions server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

pytest.importorskip("byova_openai", reason="the openai plugin (byova-media[openai]) is missing")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llm_agent"
KEY = "sk-test-not-a-real-key"


@pytest.fixture
async def chat_server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A chat-completions server on 127.0.0.1 that streams back what the user last said."""
    seen: list[dict[str, Any]] = []

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append({"body": body, "auth": request.headers.get("Authorization")})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in ["Echo:", *body["messages"][-1]["content"].split()]:
            event = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}/v1", seen
    await server.close()


async def test_answers_come_from_the_model_with_the_conversation_so_far(
    byova_server: Any, webex: Any, chat_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, seen = chat_server
    monkeypatch.syspath_prepend(str(EXAMPLE))
    env = {"BYOVA_MEDIA_OPENAI_BASE_URL": base_url, "BYOVA_MEDIA_OPENAI_API_KEY": KEY}
    await byova_server(plugins=["openai", "llm_agent"], env=env)
    call = (await webex()).call("llm_agent")
    welcome = await call.start({"customer_name": "Ada"})
    assert welcome.code == grpc.StatusCode.OK, welcome.details
    assert welcome.prompt_texts == ["Echo: The caller is Ada. Greet them."]
    assert welcome.audio
    asked = await call.custom_event("ask", {"text": "Where is my parcel?"})
    assert asked.prompt_texts == ["Echo: Where is my parcel?"]
    last = seen[-1]
    assert last["auth"] == f"Bearer {KEY}"
    roles = [m["role"] for m in last["body"]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # the history went along


async def test_a_missing_model_is_a_clear_start_up_error(
    byova_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from byova_media.plugins import PluginError

    monkeypatch.syspath_prepend(str(EXAMPLE))
    with pytest.raises(PluginError, match=r"needs language model 'openai'.*--plugin openai"):
        await byova_server(plugins=["llm_agent"])
