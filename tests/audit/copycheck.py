"""The regulator's verifier carries its own copy of the verification code; these keep the copies equal."""

from __future__ import annotations

import ast
import pathlib


def top_level_sources(path: pathlib.Path) -> dict[str, str]:
    """Source text of each top-level function, class and simple assignment, by name."""
    src = path.read_text(encoding="utf-8")
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = ast.get_source_segment(src, node)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.get_source_segment(src, node)
    return out


def assert_identical_copy(ours: pathlib.Path | list[pathlib.Path], theirs: pathlib.Path, shared: list[str]) -> None:
    """Every shared definition is identical in the copy, and the copy has nothing else.

    `ours` may be several modules whose definitions the one copy gathers.
    """
    mine: dict[str, str] = {}
    for path in [ours] if isinstance(ours, pathlib.Path) else ours:
        mine.update(top_level_sources(path))
    copy = top_level_sources(theirs)
    for name in shared:
        assert copy.get(name) == mine[name], f"client copy of {name} differs"
    extra = set(copy) - set(shared) - {"__all__"}
    assert not extra, f"client copy has code not in the register module: {extra}"
