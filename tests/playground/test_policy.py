"""The playground is served on loopback only, unless the operator explicitly allows more."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from byova_media.config import Config, ConfigError
from byova_media.playground.policy import grpc_self_target, http_bind_host


def _config(**settings: Any) -> Config:
    return Config.load(overrides=settings)


def test_off_by_default() -> None:
    config = _config()
    assert not config.playground
    assert not config.inspector


def test_binds_loopback_when_no_http_host_is_set() -> None:
    assert http_bind_host(_config(playground=True, http_port=8080)) == "127.0.0.1"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    assert http_bind_host(_config(playground=True, http_port=8080, http_host=host)) == host


def test_a_public_host_is_refused_with_the_way_out() -> None:
    with pytest.raises(ConfigError, match="playground_allow_remote"):
        http_bind_host(_config(playground=True, http_port=8080, http_host="0.0.0.0"))


def test_the_operator_may_allow_a_public_host() -> None:
    config = _config(
        playground=True, http_port=8080, http_host="0.0.0.0", playground_allow_remote=True
    )
    assert http_bind_host(config) == "0.0.0.0"


def test_needs_the_http_port() -> None:
    with pytest.raises(ConfigError, match="http_port"):
        http_bind_host(_config(playground=True))


def test_without_the_playground_the_http_host_is_unchanged() -> None:
    assert http_bind_host(_config(http_port=8080, host="0.0.0.0")) == "0.0.0.0"


@pytest.mark.parametrize(
    ("host", "target"),
    [
        ("0.0.0.0", "127.0.0.1:9"),
        ("::", "127.0.0.1:9"),
        ("10.1.2.3", "10.1.2.3:9"),
        ("fd00::1", "[fd00::1]:9"),
    ],
)
def test_the_playground_calls_its_own_grpc_port(host: str, target: str) -> None:
    assert grpc_self_target(_config(host=host), 9) == target


async def test_a_server_refuses_to_start_the_playground_on_a_public_host(
    byova_server: Any,
) -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        await byova_server(plugins=["echo"], http_port=0, http_host="0.0.0.0", playground=True)


async def test_the_playground_implies_the_inspector(byova_server: Any) -> None:
    server = await byova_server(plugins=["echo"], http_port=0, playground=True)
    assert server.inspector is not None
    async with aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{server.http_port}"
        async with http.get(f"{base}/calls.json") as response:
            assert response.status == 200
        async with http.get(f"{base}/playground") as response:
            assert response.status == 200
            assert "playground.js" in await response.text()
        async with http.get(f"{base}/playground/agents.json") as response:
            agents = (await response.json())["agents"]
        assert [a["virtual_agent_id"] for a in agents] == ["echo"]
        for name in ("playground.js", "capture-worklet.js", "playground.css"):
            async with http.get(f"{base}/playground/static/{name}") as response:
                assert response.status == 200, name
        async with http.get(f"{base}/playground/static/..%2Fbridge.py") as response:
            assert response.status == 404
