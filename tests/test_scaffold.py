"""`byova-media new-plugin`: the skeleton, its checks, and the tutorial run in a fresh venv."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import grpc
import pytest

from byova_media import __version__
from byova_media.cli import main
from byova_media.scaffold import PluginNames, compatible_range, write_plugin
from byova_media.testing.process import serve_process
from byova_media.testing.simulator import WebexSimulator

ROOT = Path(__file__).resolve().parent.parent


def test_names_derive_from_what_the_author_typed() -> None:
    names = PluginNames.parse("weather-bot")
    assert names == PluginNames("weather_bot", "weather-bot", "WeatherBotAgent", "Weather Bot")
    assert PluginNames.parse("weather_bot") == names


@pytest.mark.parametrize("bad", ["", "Weather", "1bot", "my bot", "bot-", "a..b", "byova_media_x"])
def test_unusable_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="plugin name"):
        PluginNames.parse(bad)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.1.0", ">=0.1,<0.2"),
        ("0.4.2", ">=0.4,<0.5"),
        ("1.2.0", ">=1.2,<2"),
        ("2.0.1", ">=2.0,<3"),
    ],
)
def test_compatible_range_follows_semver_habits(version: str, expected: str) -> None:
    assert compatible_range(version) == expected
    from packaging.specifiers import SpecifierSet

    assert version in SpecifierSet(expected)


def test_skeleton_is_a_complete_package(tmp_path: Path) -> None:
    root = write_plugin("weather-bot", tmp_path)
    assert root == tmp_path / "weather-bot"
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "weather-bot"
    assert project["project"]["entry-points"]["byova_media"] == {"weather_bot": "weather_bot"}
    assert project["project"]["dependencies"] == [f"byova-media{compatible_range()}"]
    assert project["tool"]["pytest"]["ini_options"]["asyncio_mode"] == "auto"
    module = (root / "src" / "weather_bot" / "__init__.py").read_text()
    assert f'BYOVA_MEDIA_REQUIRES = "{compatible_range()}"' in module
    assert "class WeatherBotAgent(Agent):" in module
    assert (root / "src" / "weather_bot" / "py.typed").is_file()
    assert "byova-media serve --plugin weather_bot" in (root / "README.md").read_text()
    assert (root / "tests" / "test_weather_bot.py").is_file()


def test_skeleton_passes_ruff_and_mypy_strict(tmp_path: Path) -> None:
    root = write_plugin("weather-bot", tmp_path)
    # --isolated: the author's project has no ruff settings, so the defaults apply.
    for args in (["check", "--isolated"], ["format", "--isolated", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args, str(root)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    # mypy cannot follow the import hook of an editable install: point it at the source,
    # and keep quiet about it as mypy does for installed packages.
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "src"],
        cwd=root,
        env={**os.environ, "MYPYPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_module_registers_its_agent_and_declares_compatibility(tmp_path: Path) -> None:
    root = write_plugin("weather-bot", tmp_path)
    from byova_media.plugins import PluginHost

    sys.path.insert(0, str(root / "src"))
    try:
        host = PluginHost.create(["weather_bot"], discover=False)
    finally:
        sys.path.remove(str(root / "src"))
        sys.modules.pop("weather_bot", None)
    info = next(i for i in host.infos if i.name == "weather_bot")
    assert info.requires == compatible_range()
    assert info.hooks == ("byova_register_agents",)


def test_command_writes_the_skeleton_and_prints_next_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-plugin", "weather-bot", "--directory", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"created {tmp_path / 'weather-bot'}" in out
    assert "byova-media serve --plugin weather_bot" in out
    assert (tmp_path / "weather-bot" / "pyproject.toml").is_file()


def test_command_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "weather-bot").mkdir()
    assert main(["new-plugin", "weather-bot", "--directory", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert list((tmp_path / "weather-bot").iterdir()) == []


def test_command_explains_a_bad_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "Weather Bot", "--directory", str(tmp_path)]) == 2
    assert "lower-case" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --- docs/plugin-tutorial.md, step by step, in a fresh virtual environment ------------


@pytest.mark.slow
async def test_tutorial_steps_in_a_fresh_venv(tmp_path: Path, fresh_venv: Any) -> None:
    bin_dir = fresh_venv(tmp_path / ".venv")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    work = tmp_path / "plugins-work"
    work.mkdir()

    def run(*args: str, cwd: Path = work) -> str:
        done = subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
        )
        assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    pip = (str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-index")
    # Step 1: `pip install byova-media`; offline, from this checkout.
    run(*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT))
    # Step 2: create the plugin.
    run("byova-media", "new-plugin", "weather-bot")
    project = work / "weather-bot"
    # Step 4: install it (its dependencies are already there) and run its tests.
    run(*pip, "--no-deps", "--no-build-isolation", "-e", ".[test]", cwd=project)
    assert "3 passed" in run(str(bin_dir / "python"), "-m", "pytest", "-q", cwd=project)
    # Step 5: see it loaded, serve it, call it.
    listing = run("byova-media", "plugins")
    assert re.search(
        rf"^weather_bot +0\.1\.0 +entry point \(weather-bot\) +requires byova-media "
        rf"{re.escape(compatible_range(__version__))}$",
        listing,
        re.MULTILINE,
    ), listing
    async with serve_process(
        "--plugin", "weather_bot", command=bin_dir / "byova-media", cwd=project, env=env,
        inherit_env=False,
    ) as served:  # fmt: skip
        async with WebexSimulator(f"127.0.0.1:{served.port}", realtime=False) as sim:
            call = sim.call("weather_bot")
            welcome = await call.start()
            assert welcome.code == grpc.StatusCode.OK, welcome.details
            assert welcome.prompt_texts == ["Hello from Weather Bot. Say something."]
            transfer = await call.dtmf("0")
            assert transfer.events == ["TRANSFER_TO_AGENT"]
        assert await served.stop(signal.SIGTERM) == 0, served.output
