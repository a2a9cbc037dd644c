"""Writing pictures to files: the extension picks the format."""
from __future__ import annotations

import os

import graphviz

from microgradnn._files import check_writable, user_path, write_atomic
from microgradnn.engine import Value
from microgradnn.nn import Module
from microgradnn.viz.format import INSTALL_HINT, GraphvizNotFound
from microgradnn.viz.graph import draw_graph
from microgradnn.viz.network import draw_network

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None, ".gv": None}


def _as_diagram(obj) -> graphviz.Digraph:
    if isinstance(obj, graphviz.Digraph):
        return obj
    if isinstance(obj, Value):
        return draw_graph(obj, view="both")
    if isinstance(obj, Module):
        return draw_network(obj)
    raise TypeError(f"save: expected a Digraph, a Value or a Module, got {type(obj).__name__}")


def save(obj: graphviz.Digraph | Value | Module, path: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Save a Digraph, a Value's graph or a Module's diagram; the extension picks the format
    (.svg, .png, .pdf, or .dot/.gv for the DOT source). Returns the path written."""
    path = user_path(path, "save")
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
    write_atomic(path, data, overwrite=overwrite, who="save")
    return path
