"""docs/ cannot drift from the code: every hook is documented with its exact signature."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from byova_media import PROJECT_NAME, hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs"
HOOKS_MD = DOCS / "hooks.md"
SECTION = re.compile(r"^### `(byova_\w+)`$", re.MULTILINE)


def hook_functions() -> dict[str, Callable[..., Any]]:
    """Every hook specification in hookspecs.py, by name."""
    return {
        name: obj
        for name, obj in vars(hookspecs).items()
        if callable(obj) and getattr(obj, f"{PROJECT_NAME}_spec", None) is not None
    }


def rendered(hook: Callable[..., Any]) -> str:
    """The hook's signature as the reference shows it (annotations as written in the code)."""
    signature = inspect.signature(hook)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"def {hook.__name__}({params}) -> {signature.return_annotation}"


def sections() -> dict[str, str]:
    """The text of each ``### `byova_...` `` section of docs/hooks.md, by hook name."""
    text = HOOKS_MD.read_text(encoding="utf-8")
    found = list(SECTION.finditer(text))
    out: dict[str, str] = {}
    for n, match in enumerate(found):
        end = found[n + 1].start() if n + 1 < len(found) else len(text)
        body = text[match.end() : end]
        out[match.group(1)] = body.split("\n## ", 1)[0]  # stop at the next chapter
    return out


def test_hookspecs_are_found() -> None:
    assert "byova_register_agents" in hook_functions()  # the finder itself works


def test_every_hook_has_a_section_and_every_section_a_hook() -> None:
    documented = sections()
    hooks = hook_functions()
    assert sorted(set(hooks) - set(documented)) == [], "hooks missing from docs/hooks.md"
    assert sorted(set(documented) - set(hooks)) == [], "docs/hooks.md documents unknown hooks"
    headings = SECTION.findall(HOOKS_MD.read_text(encoding="utf-8"))
    assert len(headings) == len(set(headings)), "a hook is documented twice"


@pytest.mark.parametrize("name", sorted(hook_functions()))
def test_section_shows_the_signature_and_first_docstring_line(name: str) -> None:
    hook = hook_functions()[name]
    body = sections().get(name, "")
    assert f"```python\n{rendered(hook)}\n```" in body
    doc = inspect.getdoc(hook)
    assert doc, f"{name} has no docstring in hookspecs.py"
    assert doc.splitlines()[0] in body


@pytest.mark.parametrize("name", sorted(hook_functions()))
def test_section_says_how_results_combine(name: str) -> None:
    options = getattr(hook_functions()[name], f"{PROJECT_NAME}_spec")
    body = " ".join(sections().get(name, "").split())
    if options["firstresult"]:
        assert "first non-None result wins" in body
    else:
        assert "all implementations are called" in body


def test_rendering_matches_the_source_text() -> None:
    """The renderer shows annotations as written, so the reference reads like the code."""
    source = inspect.getsource(hookspecs.byova_register_agents)
    assert "register: Callable[[AgentSpec], None]" in source
    assert "register: Callable[[AgentSpec], None]" in rendered(hookspecs.byova_register_agents)


def test_guides_link_to_pages_that_exist() -> None:
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([\w-]+\.md)(?:#[\w-]+)?\)", page.read_text("utf-8")):
            assert (DOCS / target).is_file(), f"{page.name} links to missing {target}"
