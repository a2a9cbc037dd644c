"""The package's layering, read from its source: every import (module-level or inside a
function) points down, and no import circle exists."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "microgradnn"

# Lower numbers sit lower; a module may import its own level or below, never above.
LAYERS = {
    "_files": 0, "_checks": 0, "_version": 0,
    "engine": 1,
    "nn": 2, "losses": 2, "optim": 2, "replay": 2, "guards": 2, "data": 2, "expression": 2,
    "train": 3, "models": 3, "viz": 3, "plots": 3,
    "testing": 4, "pytest_plugin": 4, "cli": 4, "__main__": 4,
    "": 5,  # microgradnn/__init__.py: the public API, re-exporting everything
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """The project modules `path` imports anywhere in its body, as dotted names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "microgradnn")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "microgradnn":
                continue
            for alias in node.names:  # `from microgradnn import viz` imports the module microgradnn.viz
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    found.discard(here)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else ""
    if top not in LAYERS:
        raise AssertionError(f"{name} has no layer: add it to LAYERS in {Path(__file__).name}")
    return LAYERS[top]


def upward_imports(graph: dict) -> list[str]:
    return sorted(f"{a} imports {b}" for a, bs in graph.items() for b in bs if layer(b) > layer(a))


def circles(graph: dict) -> list[list[str]]:
    """Every import circle found by a depth-first walk (each reported once per entry point)."""
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"
    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_every_module_has_a_layer():
    for name in MODULES:
        layer(name)


def test_imports_point_down():
    assert upward_imports(GRAPH) == []


def test_no_import_circle():
    assert circles(GRAPH) == []


def test_the_engine_imports_nothing_of_the_project():
    assert GRAPH["microgradnn.engine"] == set()


def test_no_module_rewrites_another_modules_state():
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                   for a in node.names if (getattr(node, "module", None) or a.name).startswith("microgradnn")}
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            for t in targets:
                assert not (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in aliases), \
                    f"{name} assigns {ast.unparse(t)}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr" and node.args \
                    and isinstance(node.args[0], ast.Name) and node.args[0].id in aliases:
                raise AssertionError(f"{name} calls {ast.unparse(node)}")


@pytest.mark.parametrize("graph, upward, circle", [
    ({"microgradnn.engine": {"microgradnn.viz"}, "microgradnn.viz": set()}, True, False),
    ({"microgradnn.nn": {"microgradnn.losses"}, "microgradnn.losses": {"microgradnn.nn"}}, False, True),
    ({"microgradnn.viz.graph": {"microgradnn.nn.layers"}, "microgradnn.nn.layers": {"microgradnn.engine"},
      "microgradnn.engine": set()}, False, False),
])
def test_the_checks_catch_what_they_look_for(graph, upward, circle):
    assert bool(upward_imports(graph)) == upward and bool(circles(graph)) == circle
