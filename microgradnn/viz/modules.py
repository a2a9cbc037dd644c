"""`draw_modules`: a graph with chosen modules collapsed into one box each (a GPT position as
embeddings -> norm -> attention -> + -> norm -> MLP -> + -> head -> loss)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Sequence

from microgradnn._checks import positive_int
from microgradnn.engine import Value, topological_order
from microgradnn.nn.module import Module
from microgradnn.viz.format import (COLORS, FONT, MAX_NODES, Diagram, GraphTooLarge, _cells, _html, _value_cells,
                                    check_layout, check_title, fmt)
from microgradnn.viz.graph import _op_label


def draw_modules(root: Value, modules: Sequence[Module], view: str = "forward", rankdir: str = "LR", *,
                 max_nodes: int = MAX_NODES, title: str | None = None) -> Diagram:
    """The graph of `root` with every node made inside one of `modules` (or their submodules)
    drawn as one box per module, named as in `named_modules()`, with its parameter count and
    its nodes' count; other nodes are drawn as in `draw_graph`. Nodes know their module from
    `Value.origin`, which nn.Linear, Embedding, RMSNorm and the GPT's modules set when the
    graph is built inside `with microgradnn.nn.tag_modules():`."""
    check_layout(view, rankdir, "draw_modules")
    positive_int(max_nodes, "draw_modules", "max_nodes")
    check_title(title, "draw_modules")
    if not isinstance(root, Value):
        raise TypeError(f"draw_modules: expected a Value, got {type(root).__name__}")
    if isinstance(modules, (Module, str, bytes, Mapping)) or not hasattr(modules, "__iter__"):
        one = " (for one, pass [module])" if isinstance(modules, Module) else ""
        what = f" {modules!r:.60}" if isinstance(modules, (str, bytes, Mapping)) else ""  # (not its letters or keys)
        raise TypeError(f"draw_modules: modules must be a non-empty list of Modules{one}, "
                        f"got {type(modules).__name__}{what}")
    modules = list(modules)
    bad = [f"{type(m).__name__} at index {i}" for i, m in enumerate(modules) if not isinstance(m, Module)]
    if not modules or bad:
        got = bad[0] if bad else "an empty list"
        raise TypeError(f"draw_modules: modules must be a non-empty list of Modules, got {got}")
    box_of: dict[int, int] = {}  # id(module or parameter) -> index of the box it belongs to
    for i, m in enumerate(modules):
        for _, sub in m.named_modules():
            box_of.setdefault(id(sub), i)
        for p in m.parameters():
            box_of.setdefault(id(p), i)
    order = topological_order(root)
    names = _names(order, modules)

    def box(v: Value) -> int | None:
        if not v.inputs:
            return box_of.get(id(v))
        origin = v.origin
        return box_of.get(id(origin[1])) if origin else None

    boxes = [box(v) for v in order]
    if not any(b is not None and v.inputs for v, b in zip(order, boxes)):
        raise ValueError("draw_modules: no node of this graph was made inside one of the modules given (as far "
                         "as Value.origin tells); build the graph inside `with microgradnn.nn.tag_modules():` "
                         "so that modules tag the nodes they make")
    sizes = [0] * len(modules)
    for b in boxes:
        if b is not None:
            sizes[b] += 1
    drawn = [v for v, b in zip(order, boxes) if b is None and (v.inputs or v.requires_grad or v.label)]
    if len(drawn) + len(modules) > max_nodes:
        raise GraphTooLarge(f"draw_modules: {len(drawn) + len(modules)} nodes to draw, "
                            f"more than max_nodes={max_nodes}; "
                            f"collapse more modules")
    g = Diagram(name="modules", graph_attr={"rankdir": rankdir, "fontname": FONT, "nodesep": "0.2", "ranksep": "0.35",
                                            "label": _html(title) if title else "", "labelloc": "t"},
                node_attr={"fontname": FONT, "fontsize": "11"}, edge_attr={"color": COLORS["edge"]})
    ids = {id(v): f"v{i}" for i, v in enumerate(drawn)}
    used = {b for b in boxes if b is not None}
    for i in sorted(used):
        m = modules[i]
        name = names.get(id(m), type(m).__name__)
        text = f"{name}\n{type(m).__name__}, {m.num_parameters()} params, {sizes[i]} nodes"
        g.node(f"m{i}", label=_html(text), shape="box", style="rounded,filled", fillcolor="#E8DAEF", id=f"m{i}")
    position = {id(v): i for i, v in enumerate(order)}
    for v in drawn:
        kind = "output" if v is root else "input" if not v.inputs else "intermediate"
        vid = ids[id(v)]
        g.node(vid, label=_cells(_value_cells(v, view), COLORS[kind], vid), shape="plaintext", id=vid)
        if v.inputs:  # plain numbers written into the op's label (`* 0.5`), as draw_graph writes them
            shown = [x for x in v.inputs if id(x) in ids or boxes[position[id(x)]] is not None]
            g.node(f"op{vid}", label=_html(_op_label(v, shown)), shape="ellipse", style="filled",
                   fillcolor=COLORS["op"], fontsize="10", width="0.3", height="0.3", margin="0.03", id=f"op{vid}")
            g.edge(f"op{vid}", vid)
    edges = set()
    for v, b in zip(order, boxes):
        if not v.inputs or (b is None and id(v) not in ids):
            continue
        target = f"m{b}" if b is not None else f"op{ids[id(v)]}"
        for x in v.inputs:
            xb = boxes[position[id(x)]]
            source = f"m{xb}" if xb is not None else ids.get(id(x))
            if source is not None and source != target:
                edges.add((source, target))
    for source, target in sorted(edges):
        g.edge(source, target)
    return g


def _names(order: list[Value], modules: list[Module]) -> dict[int, str]:
    """id(module) -> its dotted name in the outermost module that made the graph."""
    for v in order:
        if v.origin:
            return {id(m): name or type(m).__name__.lower() for name, m in v.origin[0].named_modules()}
    return {}


__all__ = ["draw_modules", "fmt"]
