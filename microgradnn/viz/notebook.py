"""What Jupyter and IPython show for a Value (its graph) or a Module (its network diagram).

The engine and nn know nothing of pictures: this module registers the pictures with IPython's
display formatter, when the package is imported inside IPython, or by `%load_ext microgradnn`.
"""
from __future__ import annotations

import sys
from typing import Any

import graphviz

from microgradnn.engine import Value
from microgradnn.nn import Module
from microgradnn.viz.graph import draw_graph
from microgradnn.viz.network import draw_network


def mimebundle(obj: graphviz.Digraph | Value | Module, max_nodes: int = 150) -> dict:
    """What a notebook shows for a Value or Module: an SVG when small and renderable, else text."""
    bundle = {"text/plain": repr(obj)}
    try:
        diagram = draw_graph(obj, view="both", max_nodes=max_nodes) if isinstance(obj, Value) else draw_network(obj)
        bundle["image/svg+xml"] = diagram.pipe(format="svg", encoding="utf-8")
    except Exception:  # too big, no dot, anything: the text is still there
        pass
    return bundle


def register(shell: Any = None) -> bool:
    """Show Values and Modules as SVG pictures in `shell` (default: the running IPython, if any).
    Returns whether there was a shell to register with."""
    if shell is None:
        ipython = sys.modules.get("IPython")  # not imported means no IPython is running
        shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False
    formatter = shell.display_formatter.mimebundle_formatter
    for kind in (Value, Module):
        formatter.for_type(kind, mimebundle)
    return True
