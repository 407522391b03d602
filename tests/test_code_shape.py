"""The code stays readable: no function in the core runs past 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 60


def long_functions(folder: Path) -> list[str]:
    """``path:function (lines)`` for every function over :data:`MAX_LINES` under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        if "_proto" in path.parts:
            continue  # generated
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_LINES:
                    found.append(f"{path.relative_to(folder)}:{node.name} ({lines} lines)")
    return found


def test_the_checker_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n", encoding="utf-8")
    (tmp_path / "short.py").write_text("def short():\n    return 1\n", encoding="utf-8")
    assert long_functions(tmp_path) == [f"long.py:long ({MAX_LINES + 1} lines)"]


def test_no_core_function_is_longer_than_60_lines() -> None:
    assert long_functions(ROOT / "byova_media") == []


def test_no_bundled_plugin_function_is_longer_than_60_lines() -> None:
    assert long_functions(ROOT / "plugins") == []
