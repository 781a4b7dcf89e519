"""The house rules of DESIGN.md, checked on the source: no import circle anywhere in the package
(not even under TYPE_CHECKING or inside functions), the arrows between the layers run one way,
and nothing below the app imports Qt."""

from __future__ import annotations

from tests.source_graph import PACKAGE, graph, import_circle, imports, module_name

LAYERS = {"imaging": 0, "model": 1, "store": 1, "screening": 2, "report": 2, "cli": 3, "app": 3}
"""A module may import its own layer's and lower layers' modules (DESIGN.md: app, cli -> screening,
report -> store, model -> imaging); the leaf modules at the top of the package are below them all."""

SOURCES = [path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts]
MODULES = {module_name(path): path for path in SOURCES}
GRAPH = graph(SOURCES)


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], -1) if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else -1


def test_no_import_circle_in_the_package() -> None:
    circle = import_circle(GRAPH)
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_the_layers_import_downwards_only() -> None:
    upward = sorted(f"{name} -> {other}" for name, others in GRAPH.items() for other in others
                    if _layer(other) > _layer(name) and _layer(name) >= 0)
    assert upward == []
    leaves = [name for name in GRAPH if _layer(name) < 0 and name != "ganad_clinic"]
    assert all(not GRAPH[name] for name in leaves if name != "ganad_clinic.__main__"), leaves


def test_nothing_below_the_app_imports_qt() -> None:
    below = [name for name in MODULES if _layer(name) != LAYERS["app"]]
    assert [name for name in below if any(other.startswith("PySide6") for other in imports(MODULES[name]))] == []
