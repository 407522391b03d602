"""Cluster settings: off by default, fed by the named flags and variables, secret kept secret."""

from __future__ import annotations

import pytest

from byova_media.app import App
from byova_media.cli import _load_config as load_config_from_args
from byova_media.cli import build_parser
from byova_media.cluster import ClusterNode
from byova_media.config import Config, ConfigError
from byova_media.plugins import PluginHost

SECRET = "s3cret-s3cret-s3cret"
ENV = {
    "BYOVA_MEDIA_CLUSTER_REDIS_URL": "redis://127.0.0.1:6390/0",
    "BYOVA_MEDIA_CLUSTER_SECRET": SECRET,
    "BYOVA_MEDIA_CLUSTER_LEASE_S": "4",
    "BYOVA_MEDIA_ADVERTISE_ADDRESS": "10.0.0.7:8086",
}


def test_cluster_mode_is_off_by_default() -> None:
    config = Config()
    assert config.cluster_redis_url is None
    assert config.cluster_lease_s == 10
    assert config.cluster_secret is None


def test_environment_turns_cluster_mode_on() -> None:
    config = Config.load(env=ENV)
    assert config.cluster_redis_url == "redis://127.0.0.1:6390/0"
    assert config.cluster_lease_s == 4
    assert config.advertise_address == "10.0.0.7:8086"
    assert config.cluster_secret is not None
    assert config.cluster_secret.get_secret_value() == SECRET


def test_flags_name_the_redis_url_and_the_advertised_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BYOVA_MEDIA_CLUSTER_SECRET", SECRET)
    args = build_parser(PluginHost.create(discover=False)).parse_args(
        [
            "serve",
            "--cluster-redis-url",
            "redis://redis.internal:6379/2",
            "--advertise-address",
            "byova-1.internal:8086",
        ]
    )
    config = load_config_from_args(args)
    assert config.cluster_redis_url == "redis://redis.internal:6379/2"
    assert config.advertise_address == "byova-1.internal:8086"


def test_the_secret_never_appears_in_reprs_or_errors() -> None:
    config = Config.load(env=ENV)
    assert SECRET not in repr(config)
    assert SECRET not in str(config.model_dump())
    with pytest.raises(ConfigError) as info:
        Config.load(env={**ENV, "BYOVA_MEDIA_CLUSTER_LEASE_S": "0"})
    assert SECRET not in str(info.value)


def test_cluster_mode_without_a_secret_says_what_to_set() -> None:
    env = {"BYOVA_MEDIA_CLUSTER_REDIS_URL": "redis://127.0.0.1:6390/0"}
    with pytest.raises(ConfigError, match="BYOVA_MEDIA_CLUSTER_SECRET"):
        Config.load(env=env)
    with pytest.raises(ConfigError, match="16"):
        Config.load(env={**env, "BYOVA_MEDIA_CLUSTER_SECRET": "short"})


@pytest.mark.parametrize("bad", ["8086", "host:", ":8086", "host:99999", "host:port"])
def test_advertise_address_must_be_host_and_port(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"advertise_address: .*HOST:PORT"):
        Config.load(overrides={"advertise_address": bad})


async def test_the_redis_password_is_not_in_the_node_repr() -> None:
    config = Config.load(env={**ENV, "BYOVA_MEDIA_CLUSTER_REDIS_URL": "redis://:hunter2@h:1/0"})
    node = ClusterNode(App(config=config, plugins=PluginHost.create(discover=False)))
    assert "hunter2" not in repr(node) and SECRET not in repr(node)
    assert "h:1/0" in repr(node)
