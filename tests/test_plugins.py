"""The plugin host: where plugins come from, what happens when one is broken or incompatible.

Installed plugins are simulated by a real distribution on ``sys.path`` (a ``.dist-info``
folder with an ``entry_points.txt``), which ``importlib.metadata`` finds like any other.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from byova_media import __version__
from byova_media.plugins import PluginError, PluginHost
from byova_media.scaffold import compatible_range

MODULES = {
    "good_plugin_xyz": f"""
        import byova_media
        from byova_media.agent import Agent, AgentSpec

        BYOVA_MEDIA_REQUIRES = "{compatible_range()}"

        @byova_media.hookimpl
        def byova_register_agents(register):
            register(AgentSpec("good_xyz", lambda call: Agent()))
    """,
    "future_plugin_xyz": """
        import byova_media

        BYOVA_MEDIA_REQUIRES = ">=9.0,<10"

        @byova_media.hookimpl
        def byova_configure(app):
            pass
    """,
    "broken_plugin_xyz": """
        raise RuntimeError("boom while importing")
    """,
    "invalid_range_xyz": """
        BYOVA_MEDIA_REQUIRES = "0.1 or newer"
    """,
    "typo_plugin_xyz": """
        import byova_media

        @byova_media.hookimpl
        def byova_register_agent(register):
            pass
    """,
    "object_plugin_xyz": """
        import byova_media
        from byova_media.agent import Agent, AgentSpec

        class Plugin:
            BYOVA_MEDIA_REQUIRES = ">=0.1"

            @byova_media.hookimpl
            def byova_register_agents(self, register):
                register(AgentSpec("object_xyz", lambda call: Agent()))

        plugin = Plugin()
    """,
}
ENTRY_POINTS = """\
[byova_media]
good_xyz = good_plugin_xyz
future_xyz = future_plugin_xyz
broken_xyz = broken_plugin_xyz
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Plugin modules on sys.path, three of them installed as distribution xyz-plugins."""
    for name, source in MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    dist_info = tmp_path / "xyz_plugins-1.2.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: xyz-plugins\nVersion: 1.2.3\n"
    )
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in MODULES:
        sys.modules.pop(name, None)


def run_cli(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(
        [sys.executable, "-m", "byova_media.cli", *args],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- compatibility ---------------------------------------------------------------------


@pytest.mark.usefixtures("installed")
def test_compatible_plugin_loads_and_records_its_range() -> None:
    host = PluginHost.create(["good_xyz"], discover=False)
    info = next(i for i in host.infos if i.name == "good_xyz")
    assert info.requires == compatible_range()
    assert info.version == "1.2.3"
    assert info.source == "requested (xyz-plugins)"


@pytest.mark.usefixtures("installed")
def test_incompatible_requested_plugin_names_both_versions() -> None:
    with pytest.raises(PluginError) as caught:
        PluginHost.create(["future_xyz"], discover=False)
    message = str(caught.value)
    assert "'future_xyz' supports byova-media >=9.0,<10" in message
    assert f"this is byova-media {__version__}" in message


@pytest.mark.usefixtures("installed")
def test_invalid_range_is_refused_with_the_value_quoted() -> None:
    with pytest.raises(PluginError, match=r"invalid BYOVA_MEDIA_REQUIRES '0\.1 or newer'"):
        PluginHost.create(["invalid_range_xyz"], discover=False)


@pytest.mark.usefixtures("installed")
def test_incompatible_discovered_plugin_is_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="byova_media.plugins"):
        host = PluginHost.create(discover=True)
    assert "future_xyz" not in {i.name for i in host.infos}
    assert "supports byova-media >=9.0,<10" in host.failures["future_xyz"]
    assert any("skipping plugin future_xyz" in r.getMessage() for r in caplog.records)
    assert "good_xyz" in {i.name for i in host.infos}  # the others still load


# --- where plugins come from ------------------------------------------------------------


@pytest.mark.usefixtures("installed")
def test_module_attr_names_an_object_inside_a_module() -> None:
    host = PluginHost.create(["object_plugin_xyz:plugin"], discover=False)
    info = next(i for i in host.infos if i.name == "object_plugin_xyz:plugin")
    assert info.hooks == ("byova_register_agents",)
    assert info.requires == ">=0.1"
    assert info.source == "requested"


@pytest.mark.usefixtures("installed")
def test_module_attr_with_a_missing_attribute_says_so() -> None:
    with pytest.raises(PluginError, match="module object_plugin_xyz has no 'nope'"):
        PluginHost.create(["object_plugin_xyz:nope"], discover=False)


def test_unknown_plugin_name_points_to_the_plugins_command() -> None:
    with pytest.raises(PluginError, match="byova-media plugins") as caught:
        PluginHost.create(["no_such_plugin_xyz"], discover=False)
    assert "neither an installed entry point nor an importable module" in str(caught.value)


@pytest.mark.usefixtures("installed")
def test_misspelt_hook_is_a_start_up_error() -> None:
    with pytest.raises(PluginError, match="byova_register_agent"):
        PluginHost.create(["typo_plugin_xyz"], discover=False)


@pytest.mark.usefixtures("installed")
def test_disabled_plugins_are_not_loaded_whether_discovered_or_requested() -> None:
    discovered = PluginHost.create(disabled=["good_xyz", "broken_xyz", "future_xyz"])
    assert not {"good_xyz", "broken_xyz", "future_xyz"} & {i.name for i in discovered.infos}
    assert not {"broken_xyz", "future_xyz"} & set(discovered.failures)
    requested = PluginHost.create(["good_xyz", "broken_xyz"], ["broken_xyz"], discover=False)
    assert "good_xyz" in {i.name for i in requested.infos}
    assert "broken_xyz" not in {i.name for i in requested.infos}


# --- broken plugins ---------------------------------------------------------------------


@pytest.mark.usefixtures("installed")
def test_broken_discovered_plugin_is_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="byova_media.plugins"):
        host = PluginHost.create(discover=True)
    assert "boom while importing" in host.failures["broken_xyz"]
    assert any("skipping plugin broken_xyz" in r.getMessage() for r in caplog.records)
    assert "echo" in {i.name for i in host.infos}


@pytest.mark.usefixtures("installed")
def test_broken_requested_plugin_fails_loudly() -> None:
    with pytest.raises(PluginError, match=r"'broken_xyz' \(broken_plugin_xyz\) failed to import"):
        PluginHost.create(["broken_xyz"], discover=False)


def test_serve_with_a_broken_plugin_exits_2_with_the_reason(installed: Path) -> None:
    done = run_cli(installed, "serve", "--plugin", "broken_xyz", "--port", "0")
    assert done.returncode == 2
    assert "broken_xyz" in done.stderr and "boom while importing" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_with_an_incompatible_plugin_exits_2_naming_both_versions(installed: Path) -> None:
    done = run_cli(installed, "serve", "--plugin", "future_xyz", "--port", "0")
    assert done.returncode == 2
    assert "supports byova-media >=9.0,<10" in done.stderr
    assert f"this is byova-media {__version__}" in done.stderr


# --- byova-media plugins ----------------------------------------------------------------


def test_plugins_command_lists_versions_ranges_hooks_and_failures(installed: Path) -> None:
    done = run_cli(installed, "plugins")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    good = next(n for n, line in enumerate(lines) if line.startswith("good_xyz "))
    assert lines[good].split() == [
        "good_xyz",
        "1.2.3",
        "entry",
        "point",
        "(xyz-plugins)",
        "requires",
        "byova-media",
        compatible_range(),
    ]
    assert lines[good + 1].split() == ["hooks:", "byova_register_agents"]
    failed = {line.split()[0]: line for line in lines if " FAILED " in line}
    assert "boom while importing" in failed["broken_xyz"]
    assert "supports byova-media >=9.0,<10" in failed["future_xyz"]
    assert f"this is byova-media {__version__}" in failed["future_xyz"]


def test_plugins_command_json(installed: Path) -> None:
    done = run_cli(installed, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    loaded = {row["name"]: row for row in report["loaded"]}
    assert loaded["good_xyz"]["requires"] == compatible_range()
    assert loaded["good_xyz"]["version"] == "1.2.3"
    assert "byova_register_agents" in loaded["echo"]["hooks"]
    assert "byova_media.builtins" in loaded
    assert set(report["failed"]) >= {"broken_xyz", "future_xyz"}


async def test_a_plugin_can_require_another_and_it_is_listed(byova_server: Any) -> None:
    server = await byova_server(plugins=["demo"])
    sources = {info.name: info.source for info in server.plugins.infos}
    assert sources["pocketsphinx"].startswith("required by demo")
    assert sources["espeak"].startswith("required by demo")
    with pytest.raises(PluginError, match="needs plugin 'nope', which is not installed"):
        server.plugins.require("nope", by="demo")
