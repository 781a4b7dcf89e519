"""The package's import graph read from its source (ast), for the tests of the house rules:
imports at any level count (TYPE_CHECKING blocks and function bodies included)."""

from __future__ import annotations

import ast
from pathlib import Path

import ganad_clinic

PACKAGE = Path(ganad_clinic.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, and every `module.name` it takes from one."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def package_imports(path: Path) -> set[str]:
    """`imports` of the package's own modules only."""
    return {name for name in imports(path) if name.startswith("ganad_clinic")}


def graph(paths: list[Path]) -> dict[str, set[str]]:
    """Module -> the modules among `paths` it imports."""
    modules = {module_name(path): path for path in paths}
    return {name: {other for other in imports(path) if other in modules and other != name}
            for name, path in modules.items()}


def import_circle(modules: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph (its modules, the first repeated at the end), or None."""
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> list[str] | None:
        state[name] = "open"
        for other in sorted(modules[name]):
            if state.get(other) == "open":
                return trail[trail.index(other):] + [other]
            if other not in state and (circle := visit(other, trail + [other])):
                return circle
        state[name] = "done"
        return None

    for name in sorted(modules):
        if name not in state and (circle := visit(name, [name])):
            return circle
    return None
