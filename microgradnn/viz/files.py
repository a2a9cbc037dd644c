"""Writing pictures to files: the extension picks the format."""
from __future__ import annotations

import os

import graphviz

from microgradnn._files import check_writable, user_path, write_atomic
from microgradnn.engine import Value
from microgradnn.nn import MLP, Layer, Module, Neuron
from microgradnn.viz.format import INSTALL_HINT, GraphvizNotFound
from microgradnn.viz.graph import draw_graph
from microgradnn.viz.network import draw_network

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None, ".gv": None}


def _as_diagram(obj) -> graphviz.Digraph:
    if isinstance(obj, graphviz.Digraph):
        return obj
    if isinstance(obj, Value):
        return draw_graph(obj, view="both")
    if isinstance(obj, (MLP, Layer, Neuron)):
        return draw_network(obj)
    if isinstance(obj, Module):
        raise TypeError(f"save: a Module is drawn as a network only when it is an MLP, Layer or Neuron, got "
                        f"{type(obj).__name__}; save the graph of its output (a Value) or a draw_modules() drawing")
    raise TypeError(f"save: expected a Digraph, a Value or a Module, got {type(obj).__name__}")


def save(obj: graphviz.Digraph | Value | Module, path: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Save a Digraph, a Value's graph or a Module's diagram; the extension picks the format
    (.svg, .png, .pdf, or .dot/.gv for the DOT source). Returns the path written."""
    path = user_path(path, "save")
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS and not os.path.isdir(path):  # a folder: check_writable says so
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
