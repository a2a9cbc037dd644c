"""What Jupyter and IPython show for a Value (its graph) or a Module (its network diagram).

The engine and nn know nothing of pictures: this module registers the pictures with IPython's
display formatter, when the package is imported inside IPython, or by `%load_ext microgradnn`.
"""
from __future__ import annotations

import sys
from typing import Any

import graphviz

from microgradnn.engine import Value
from microgradnn.nn import MLP, Layer, Module, Neuron
from microgradnn.viz.format import GraphTooLarge
from microgradnn.viz.graph import _plan, draw_graph
from microgradnn.viz.network import draw_network


def mimebundle(obj: graphviz.Digraph | Value | Module, max_nodes: int = 150) -> dict:
    """What a notebook shows for a drawing, a Value or a Module: an SVG when renderable (a graph of more than
    `max_nodes` nodes drawn with each call of a neuron as one node, and a note saying so), else text, with
    the reason there is no picture (a Module that has no network diagram is just its repr)."""
    if not isinstance(obj, (graphviz.Digraph, Value, Module)):
        raise TypeError(f"mimebundle: expected a Digraph, a Value or a Module, got {type(obj).__name__}")
    bundle = {"text/plain": repr(obj)}
    if isinstance(obj, Module) and not isinstance(obj, (MLP, Layer, Neuron)):
        return bundle
    try:
        bundle["image/svg+xml"] = _diagram(obj, max_nodes).pipe(format="svg", encoding="utf-8")
    except Exception as e:  # too big even collapsed, no dot, anything: the text is still there, and why
        bundle["text/plain"] += f"\n(no picture: {e})"
    return bundle


def _diagram(obj: graphviz.Digraph | Value | Module, max_nodes: int) -> graphviz.Digraph:
    if isinstance(obj, graphviz.Digraph):  # a drawing already (draw_network's, draw_modules')
        return obj
    if not isinstance(obj, Value):
        return draw_network(obj)
    try:
        return draw_graph(obj, view="both", max_nodes=max_nodes)
    except GraphTooLarge as e:
        full = _drawable(obj, e.nodes)  # None: too tangled for dot whatever max_nodes is
    whole = (f"{full} nodes in full; viz.draw_graph(v, max_nodes={full}) draws them all" if full else
             "in full too tangled for dot")
    try:
        return draw_graph(obj, view="both", collapse=True, max_nodes=max_nodes,
                          title=f"collapsed: each call of a neuron is one node ({whole})")
    except GraphTooLarge as e:
        if e.nodes is None:
            raise
        if full is None:  # the call advised below must draw it: raises if too tangled collapsed too
            _plan(obj, False, True, e.nodes)
        each = "with each call of a neuron as one node"
        count = f"{e.nodes} nodes to draw {each}" if not full else f"{full} nodes to draw" if e.nodes == full \
            else f"{full} nodes to draw ({e.nodes} {each})"
        anyway = f"viz.draw_graph(v, max_nodes={full})" if full else \
            f"viz.draw_graph(v, collapse=True, max_nodes={e.nodes})"
        raise GraphTooLarge(f"the graph has {count}, more than the {max_nodes} a notebook draws; "
                            f"{anyway} at the end of a cell draws it anyway (dot may take minutes on graphs "
                            f"this big)", e.nodes) from None


def _drawable(root: Value, nodes: int | None) -> int | None:
    """`nodes` when draw_graph draws root in full with max_nodes=nodes, None when its edges are too tangled for dot."""
    if nodes is None:
        return None
    try:
        _plan(root, False, False, nodes)
    except GraphTooLarge:
        return None
    return nodes


def register(shell: Any = None) -> bool:
    """Show Values and Modules as SVG pictures in `shell` (default: the running IPython, if any).
    Returns whether there was a shell to register with."""
    if shell is None:
        ipython = sys.modules.get("IPython")  # not imported means no IPython is running
        shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False
    display = shell.display_formatter

    def picture(obj: Value | Module) -> dict:
        # a terminal shows text only (active_types): no dot run for a picture nobody sees
        return mimebundle(obj) if "image/svg+xml" in display.active_types else {}

    for kind in (Value, Module):
        display.mimebundle_formatter.for_type(kind, picture)
    return True
