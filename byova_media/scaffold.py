"""``byova-media new-plugin NAME``: write a plugin package an author can install and test at once.

The skeleton is a complete distribution: a ``pyproject.toml`` that registers the plugin
under the ``byova_media`` entry-point group, an agent module that declares the
byova-media versions it supports, a README with the next steps, and a test that places
simulated calls through the bundled pytest fixtures. Templates live here (not as data
files) so that they ship in every install of byova-media.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from packaging.version import Version

from byova_media import __version__

__all__ = ["PluginNames", "add_parser", "compatible_range", "write_plugin"]

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


@dataclass(frozen=True)
class PluginNames:
    """The names one plugin goes by, derived from what the author typed."""

    module: str  # import name, entry-point name and virtual agent id: ``weather_bot``
    distribution: str  # the name on PyPI and of the folder: ``weather-bot``
    class_name: str  # the agent class: ``WeatherBotAgent``
    title: str  # for people: ``Weather Bot``

    @classmethod
    def parse(cls, name: str) -> PluginNames:
        """Accept ``weather-bot`` or ``weather_bot``; refuse what cannot be a module name."""
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"plugin name {name!r} must be lower-case letters, digits, '-' or '_', "
                "starting with a letter (e.g. weather-bot)"
            )
        module = name.replace("-", "_")
        if module.startswith("byova_media"):
            raise ValueError(f"plugin name {name!r} would shadow byova-media itself")
        words = module.split("_")
        return cls(
            module=module,
            distribution=name.replace("_", "-"),
            class_name="".join(w.capitalize() for w in words) + "Agent",
            title=" ".join(w.capitalize() for w in words),
        )


def compatible_range(version: str = __version__) -> str:
    """The byova-media versions a plugin written today can expect to work with.

    Before 1.0 a minor release may break plugins (``>=0.1,<0.2``); from 1.0 on only a
    major release may (``>=1.2,<2``).
    """
    v = Version(version)
    if v.major == 0:
        return f">=0.{v.minor},<0.{v.minor + 1}"
    return f">={v.major}.{v.minor},<{v.major + 1}"


def write_plugin(name: str, directory: Path) -> Path:
    """Write the skeleton of plugin ``name`` into ``directory/<distribution>``; return it.

    Raises ``ValueError`` for an unusable name and ``FileExistsError`` rather than
    overwrite anything.
    """
    names = PluginNames.parse(name)
    root = directory / names.distribution
    if root.exists():
        raise FileExistsError(f"{root} already exists; pick another name or --directory")
    values = {
        "module": names.module,
        "distribution": names.distribution,
        "class_name": names.class_name,
        "title": names.title,
        "requires": compatible_range(),
    }
    files = {
        Path("pyproject.toml"): _PYPROJECT,
        Path("README.md"): _README,
        Path("src", names.module, "__init__.py"): _MODULE,
        Path("src", names.module, "py.typed"): "",
        Path("tests", f"test_{names.module}.py"): _TEST,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values), encoding="utf-8")
    return root


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register the ``new-plugin`` sub-command."""
    p = subparsers.add_parser(
        "new-plugin",
        help="write a plugin package skeleton (pyproject, agent, README, test)",
        description="Write a plugin package you can pip install -e and test straight away.",
    )
    p.add_argument("name", help="plugin name, e.g. weather-bot (module weather_bot)")
    p.add_argument(
        "--directory",
        type=Path,
        default=Path(),
        help="where to create the package folder (default: the current directory)",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        root = write_plugin(args.name, args.directory)
    except (ValueError, FileExistsError) as exc:
        print(f"byova-media new-plugin: error: {exc}", file=sys.stderr)
        return 2
    module = PluginNames.parse(args.name).module
    print(f"created {root}")
    print("next:")
    print(f"  pip install -e '{root}[test]'")
    print(f"  pytest {root / 'tests'}")
    print(f"  byova-media serve --plugin {module}")
    return 0


_PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "$title: a virtual agent for Webex Contact Center, served by byova-media."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["byova-media$requires"]

[project.optional-dependencies]
test = ["pytest>=8.3", "pytest-asyncio>=0.24"]

# This is what makes `byova-media serve --plugin $module` find the plugin.
[project.entry-points.byova_media]
$module = "$module"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
"*" = ["py.typed"]

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
"""

_README = """\
# $distribution

$title: a virtual agent for Webex Contact Center's BYOVA, served by
[byova-media](https://pypi.org/project/byova-media/).

## Try it

```bash
pip install -e '.[test]'
pytest                                   # places simulated Webex calls
byova-media serve --plugin $module       # the server, on port 8086
byova-media plugins                      # shows $module, its version and hooks
```

Place a call from another terminal: `byova-media call 127.0.0.1:8086 --agent $module --dtmf 1`.

## What is where

- `src/$module/__init__.py`: the agent (`$class_name`) and the hook that registers it as
  virtual agent `$module`. `BYOVA_MEDIA_REQUIRES` says which byova-media versions it
  supports; byova-media refuses to load it into any other.
- `tests/test_$module.py`: calls placed through byova-media's Webex simulator, offline.

## Publish

```bash
python -m build && python -m twine upload dist/*
```

Then anyone can `pip install $distribution` and run `byova-media serve --plugin $module`.
"""

_MODULE = '''\
"""$title: a byova-media virtual agent.

Webex plays prompt *audio*; the text goes to the transcript. The beeps below stand in
for real speech until you plug in recordings (a WAV file works as prompt audio) or a
text-to-speech engine.
"""

from __future__ import annotations

from collections.abc import Callable

import byova_media
from byova_media import (
    Agent,
    AgentSpec,
    App,
    Call,
    EndSession,
    Reply,
    SessionStart,
    Transfer,
    Utterance,
    pcm_to_ulaw,
    tone,
)

__all__ = ["AGENT_ID", "BYOVA_MEDIA_REQUIRES", "$class_name"]

#: The byova-media versions this plugin supports; checked when byova-media loads it.
BYOVA_MEDIA_REQUIRES = "$requires"

#: The id a Webex flow picks this agent by, and the name it is listed under.
AGENT_ID = "$module"
AGENT_NAME = "$title"


def beep(ms: int = 200) -> bytes:
    """Placeholder prompt audio: a short tone as 8 kHz μ-law."""
    return pcm_to_ulaw(tone(660.0, ms))


class $class_name(Agent):
    """One instance per call: keep per-call state on ``self`` or in ``call.state``."""

    async def on_start(self, call: Call, start: SessionStart) -> Reply:
        welcome = f"Hello from {AGENT_NAME}. Say something."
        return Reply.say(beep(), text=welcome, barge_in=True)

    async def on_utterance(self, call: Call, utterance: Utterance) -> Reply:
        heard = f"I heard {utterance.duration_ms / 1000:.1f} seconds of speech."
        return Reply.say(beep(), text=heard, barge_in=True)

    async def on_dtmf(self, call: Call, digits: str) -> Reply:
        if digits.startswith("0"):
            transfer = Transfer(metadata={"from": AGENT_ID})
            return Reply.say(text="Transferring you.", event=transfer)
        return Reply.say(beep(), text=f"You pressed {digits}.", barge_in=True)

    async def on_no_input(self, call: Call) -> Reply:
        end = EndSession(metadata={"reason": "silence"})
        return Reply.say(beep(400), text="Goodbye.", event=end)


@byova_media.hookimpl
def byova_register_agents(app: App, register: Callable[[AgentSpec], None]) -> None:
    """Make the agent available to Webex (``ListVirtualAgents``)."""
    spec = AgentSpec(
        AGENT_ID,
        factory=lambda call: $class_name(),
        name=AGENT_NAME,
    )
    register(spec)
'''

_TEST = '''\
"""Simulated Webex calls to the agent, through byova-media's pytest fixtures."""

from __future__ import annotations

from byova_media import tone
from byova_media.testing.pytest_plugin import ServerPool, SimulatorFactory

#: The entry-point name in pyproject.toml, which is also the virtual agent id.
PLUGIN = "$module"


async def test_welcome(byova_server: ServerPool, webex: SimulatorFactory) -> None:
    await byova_server(plugins=[PLUGIN])
    call = (await webex()).call(PLUGIN)
    welcome = await call.start()
    assert welcome.code.name == "OK"
    assert welcome.prompt_texts[0].startswith("Hello from")
    assert welcome.audio  # Webex plays audio, so every prompt needs some


async def test_answers_what_the_caller_says(
    byova_server: ServerPool, webex: SimulatorFactory
) -> None:
    await byova_server(plugins=[PLUGIN])
    call = (await webex()).call(PLUGIN)
    await call.start()
    turn = await call.say(tone(440.0, 1000))  # any loud sound counts as speech
    assert turn.events[:2] == ["START_OF_INPUT", "END_OF_INPUT"]
    assert turn.prompt_texts[0].startswith("I heard 1.")


async def test_zero_transfers_to_a_person(
    byova_server: ServerPool, webex: SimulatorFactory
) -> None:
    await byova_server(plugins=[PLUGIN])
    call = (await webex()).call(PLUGIN)
    await call.start()
    result = await call.dtmf("0")
    assert result.events == ["TRANSFER_TO_AGENT"]
    assert result.event_metadata == {"from": PLUGIN}
'''
