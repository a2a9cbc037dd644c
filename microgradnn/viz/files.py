"""Writing pictures to files: the extension picks the format; and which files a demo run may replace."""
from __future__ import annotations

import os
from typing import Iterable

import graphviz

from microgradnn._files import check_overwrite, check_writable, extension, user_path, write_atomic
from microgradnn.engine import Value
from microgradnn.nn import MLP, Layer, Module, Neuron
from microgradnn.viz.format import INSTALL_HINT, GraphvizNotFound
from microgradnn.viz.graph import draw_graph
from microgradnn.viz.network import draw_network

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None, ".gv": None}
DEMO_OUT = "out"  # the demos' own folder (in the folder they run from): each run replaces its files there


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
    ext = extension(path, tuple(FORMATS), "save")
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


def may_replace(folder: str | os.PathLike, overwrite: bool) -> bool:
    """Whether a demo run may replace its files in `folder`: with `overwrite`, or when `folder` is
    out/, the demos' own (however it is written: `./out/`, its absolute path, a link to it)."""
    check_overwrite(overwrite, "may_replace")
    return overwrite or os.path.realpath(user_path(folder, "may_replace")) == os.path.realpath(DEMO_OUT)


def refusal(folder: str | os.PathLike, names: Iterable[str], overwrite: bool) -> str | None:
    """Why a demo run must not write the files `names` into `folder`, to check before any work, or
    None: `folder` is empty ('') or a file, or cannot be made under a file, or one of `names` there is a
    folder (or a device), or some are there already (a dangling symlink too) and the run may not replace
    them (see `may_replace`)."""
    check_overwrite(overwrite, "refusal")
    if folder == "":  # an unset shell variable: the demo must not go on to write nothing, or into ./
        return "the folder must not be empty, got ''"
    folder = user_path(folder, "refusal")
    if os.path.lexists(folder) and not os.path.isdir(folder):
        return f"{folder} is not a folder"
    above = os.path.dirname(os.path.abspath(folder))
    while not os.path.lexists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        return f"{folder} cannot be made: {above} is not a folder"
    names = list(names)  # (walked twice)
    for name in names:  # no overwrite replaces a folder (or a device) with a file: it would fail after the work
        path = os.path.join(folder, name)
        if os.path.isdir(path) or os.path.exists(path) and not os.path.isfile(path):
            return (f"{folder}: {name} there is a {'folder' if os.path.isdir(path) else 'device, pipe or socket'}, "
                    "not a file the run can replace; move it away, or choose another folder")
    there = [name for name in names if os.path.lexists(os.path.join(folder, name))]
    if not there or may_replace(folder, overwrite):
        return None
    one = len(there) == 1
    return (f"{folder}: {', '.join(there)} already exist{'s' if one else ''} there; pass --overwrite to replace "
            f"{'it' if one else 'them'}, or choose another folder")
