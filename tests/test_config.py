"""Configuration: sources, precedence, plugin sections and errors that say what was wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from byova_media.config import Config, ConfigError


def test_defaults_are_safe_for_webex() -> None:
    config = Config()
    assert config.max_message_bytes == 16 * 2**20
    assert config.reply_mode == "chunk"
    assert 100 <= config.chunk_bytes <= 65536


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "byova.toml"
    file.write_text(
        'port = 9000\nreply_mode = "wav"\nvad = "energy"\n[plugin.websocket]\nurl = "ws://file"\n'
    )
    config = Config.load(
        file=file,
        env={"BYOVA_MEDIA_PORT": "9100", "BYOVA_MEDIA_WEBSOCKET_URL": "ws://env"},
        overrides={"port": 9200, "reply_mode": None},
        plugin_names=["websocket"],
    )
    assert config.port == 9200  # flag beats environment beats file
    assert config.reply_mode == "wav"  # an unset flag does not override
    assert config.plugin_settings("websocket") == {"url": "ws://env"}


def test_unknown_keys_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting BYOVA_MEDIA_PROT"):
        Config.load(env={"BYOVA_MEDIA_PROT": "1"})
    file = tmp_path / "c.toml"
    file.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        Config.load(file=file)


def test_invalid_values_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="chunk_bytes"):
        Config.load(overrides={"chunk_bytes": 50})
    with pytest.raises(ConfigError, match="dtmf_terminator"):
        Config.load(env={"BYOVA_MEDIA_DTMF_TERMINATOR": "x"})
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.load(file=bad)
    with pytest.raises(ConfigError, match="cannot read"):
        Config.load(file=tmp_path / "missing.toml")


def test_plugin_list_from_environment() -> None:
    config = Config.load(env={"BYOVA_MEDIA_PLUGINS": "echo, demo"})
    assert config.plugins == ("echo", "demo")


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(ValueError, match="frozen"):
        config.port = 1  # type: ignore[misc]


def test_plugin_tables_merge_across_sources(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[plugin.demo]\nllm = "rules"\nvoice = "en-us"\n')
    config = Config.load(
        file=file,
        env={"BYOVA_MEDIA_DEMO_LLM": "openai"},
        overrides={"plugin": {"demo": {"voice": "en-gb"}}},
        plugin_names=["demo"],
    )
    assert config.plugin_settings("demo") == {"llm": "openai", "voice": "en-gb"}
