"""What Jupyter and IPython show for a Value (its graph) or a Module (its network diagram).

The engine and nn know nothing of pictures: this module registers the pictures with IPython's
display formatter, when the package is imported inside IPython, or by `%load_ext microgradnn`.
"""
from __future__ import annotations

import sys
from typing import Any

import graphviz

from microgradnn.engine import Value, topological_order
from microgradnn.nn import Module
from microgradnn.viz.format import GraphTooLarge
from microgradnn.viz.graph import draw_graph
from microgradnn.viz.network import draw_network


def mimebundle(obj: graphviz.Digraph | Value | Module, max_nodes: int = 150) -> dict:
    """What a notebook shows for a Value or Module: an SVG when renderable (a graph of more than
    `max_nodes` nodes drawn with each neuron as one node, and a note saying so), else text."""
    bundle = {"text/plain": repr(obj)}
    try:
        bundle["image/svg+xml"] = _diagram(obj, max_nodes).pipe(format="svg", encoding="utf-8")
    except Exception:  # too big even collapsed, no dot, anything: the text is still there
        pass
    return bundle


def _diagram(obj: Value | Module, max_nodes: int) -> graphviz.Digraph:
    if not isinstance(obj, Value):
        return draw_network(obj)
    try:
        return draw_graph(obj, view="both", max_nodes=max_nodes)
    except GraphTooLarge:
        full = len(topological_order(obj))
        return draw_graph(obj, view="both", collapse=True, max_nodes=max_nodes,
                          title=f"collapsed: each neuron is one node ({full} nodes in full; "
                                f"viz.draw_graph(v, max_nodes={full * 2}) draws them all)")


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
