"""The house rules of DESIGN.md, checked on the source: no import circle anywhere in the package
(not even under TYPE_CHECKING or inside functions), the arrows between the layers run one way,
and nothing below the app imports Qt."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ganad_clinic"
LAYERS = {"imaging": 0, "model": 1, "store": 1, "screening": 2, "report": 2, "cli": 3, "app": 3}
"""A module may import its own layer's and lower layers' modules (DESIGN.md: app, cli -> screening,
report -> store, model -> imaging); the leaf modules at the top of the package are below them all."""


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


MODULES = {_module(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}
GRAPH = {name: {other for other in _imports(path) if other in MODULES and other != name}
         for name, path in MODULES.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], -1) if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else -1


def test_no_import_circle_in_the_package() -> None:
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(GRAPH[name]):
            if state.get(other) == "open":
                pytest.fail("import circle: " + " -> ".join(trail[trail.index(other):] + [other]))
            if other not in state:
                visit(other, trail + [other])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_the_layers_import_downwards_only() -> None:
    upward = sorted(f"{name} -> {other}" for name, others in GRAPH.items() for other in others
                    if _layer(other) > _layer(name) and _layer(name) >= 0)
    assert upward == []
    leaves = [name for name in GRAPH if _layer(name) < 0 and name != "ganad_clinic"]
    assert all(not GRAPH[name] for name in leaves if name != "ganad_clinic.__main__"), leaves


def test_nothing_below_the_app_imports_qt() -> None:
    below = [name for name, path in MODULES.items() if _layer(name) != LAYERS["app"]]
    assert [name for name in below if any(other.startswith("PySide6") for other in _imports(MODULES[name]))] == []
