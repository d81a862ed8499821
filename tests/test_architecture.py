"""The layering the README promises, read from the source: no import circles, no Streamlit in
fer_core, and a model layer that depends on nothing above it."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fer_core"

# What the model layer (runtimes, ensembles, the loader) may build on: data and helpers below it.
BELOW_MODELS = {
    "fer_core.classes",
    "fer_core.metrics",
    "fer_core.tta",
    "fer_core.preprocess",
    "fer_core.registry",
    "fer_core.imageio",
    "fer_core.settings",
    "fer_core.onnx_session",
    "fer_core.types",
    "fer_core.names",
    "fer_core.paths",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in files and m != name} for name, path in files.items()}


def circle(graph: dict[str, set[str]]) -> list[str]:
    """One circle of imports (its modules, the first repeated at the end), or [] if there is none."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(error.args[1])
    return []


def test_the_circle_finder_finds_a_circle():
    found = circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert set(found) == {"a", "b", "c"} and found[0] == found[-1]
    assert circle({"a": {"b"}, "b": set()}) == []


def test_fer_core_modules_import_one_another_without_a_circle():
    graph = import_graph()
    assert "fer_core.models.ensemble" in graph and "fer_core.cli" in graph
    assert circle(graph) == []


def test_fer_core_never_imports_streamlit():
    users = [
        module_name(p) for p in PACKAGE.rglob("*.py") if any(m.split(".")[0] == "streamlit" for m in imports_of(p))
    ]
    assert users == []


def test_the_model_layer_depends_on_nothing_above_it():
    graph = import_graph()
    layer = {name for name in graph if name.startswith("fer_core.models")}
    reached, todo = set(), list(layer)
    while todo:  # everything the layer needs, directly or through what it imports
        for dep in graph[todo.pop()] - reached:
            reached.add(dep)
            todo.append(dep)
    above = reached - layer - BELOW_MODELS
    assert above == set(), f"fer_core.models needs {sorted(above)}"
