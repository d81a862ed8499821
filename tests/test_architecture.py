"""The layering the README promises, read from the source: no import circles, no Streamlit in
fer_core, and a model layer that depends on nothing above it."""

from __future__ import annotations

import ast
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


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that reach one another (strongly connected, more than one module)."""
    order, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(start: str) -> None:
        # iterative Tarjan: (node, iterator over its imports)
        work = [(start, iter(sorted(graph[start])))]
        order[start] = low[start] = len(order)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            step = next(todo, None)
            if step is not None:
                if step not in order:
                    order[step] = low[step] = len(order)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], order[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == order[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))

    for name in sorted(graph):
        if name not in order:
            visit(name)
    return found


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_fer_core_modules_import_one_another_without_a_circle():
    graph = import_graph()
    assert "fer_core.models.ensemble" in graph and "fer_core.cli" in graph
    assert circles(graph) == []


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
