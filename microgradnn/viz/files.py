"""Writing pictures to files and showing them in notebooks; `tree`, the graph as text."""
from __future__ import annotations

import os

import graphviz

from microgradnn._files import check_writable, write_atomic
from microgradnn.engine import Value
from microgradnn.viz.format import INSTALL_HINT, GraphvizNotFound, fmt
from microgradnn.viz.graph import draw_graph
from microgradnn.viz.network import draw_network


def tree(root: Value, view: str = "both") -> str:
    """The graph as indented text, output first; a node already shown is referred to by name."""
    names: dict[int, str] = {}  # numbered in the order they are printed
    lines, stack = [], [(root, 0)]
    while stack:
        v, depth = stack.pop()
        what = f"{v.op}" if v.op else "leaf"
        label = f" {v.label!r}" if v.label else ""
        if id(v) in names:
            lines.append(f"{'  ' * depth}{names[id(v)]}{label} (shown above)")
            continue
        name = names[id(v)] = f"#{len(names)}"
        numbers = f"data={fmt(v.data)}" + (f" grad={fmt(v.grad)}" if view != "forward" else "")
        lines.append(f"{'  ' * depth}{name}{label} {what} {numbers}")
        stack.extend((x, depth + 1) for x in reversed(v.inputs))
    return "\n".join(lines)


FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None, ".gv": None}


def _as_diagram(obj) -> graphviz.Digraph:
    from microgradnn.nn import Module
    if isinstance(obj, graphviz.Digraph):
        return obj
    if isinstance(obj, Value):
        return draw_graph(obj, view="both")
    if isinstance(obj, Module):
        return draw_network(obj)
    raise TypeError(f"save: expected a Digraph, a Value or a Module, got {type(obj).__name__}")


def save(obj, path: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Save a Digraph, a Value's graph or a Module's diagram; the extension picks the format
    (.svg, .png, .pdf, or .dot/.gv for the DOT source). Returns the path written."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ValueError(f"save: unknown extension {ext or '(none)'!r} in {path}; use one of {', '.join(FORMATS)}")
    check_writable(path, overwrite, "save")
    diagram = _as_diagram(obj)
    if FORMATS[ext] is None:
        data = diagram.source.encode()
    else:
        try:
            data = diagram.pipe(format=FORMATS[ext])
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFound(INSTALL_HINT) from None
    write_atomic(path, data)
    return path


def mimebundle(obj, max_nodes: int = 150) -> dict:
    """What a notebook shows for a Value or Module: an SVG when small and renderable, else text."""
    bundle = {"text/plain": repr(obj)}
    try:
        diagram = draw_graph(obj, view="both", max_nodes=max_nodes) if isinstance(obj, Value) else draw_network(obj)
        bundle["image/svg+xml"] = diagram.pipe(format="svg", encoding="utf-8")
    except Exception:  # too big, no dot, anything: the text is still there
        pass
    return bundle


