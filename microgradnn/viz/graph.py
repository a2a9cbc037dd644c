"""`draw_graph`: a Value's computation graph, with each neuron's nodes in a cluster.

The DOT source is deterministic: node ids follow topological order and inputs keep their order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from typing import Container, Iterable

import graphviz

from microgradnn._checks import flag, positive_int
from microgradnn.engine import Op, Value, topological_order
from microgradnn.nn import Layer, Neuron
from microgradnn.viz.format import (COLORS, FONT, MAX_NODES, Diagram, GraphTooLarge, _cells, _fixed_label,
                                    _grad_color, _html, _value_cells, check_layout, check_title, fmt)

def _is_constant(v: Value) -> bool:
    return not v.inputs and not v.requires_grad and not v.label


def _op_label(v: Value, shown: list[Value]) -> str:
    """The op's symbol with folded constants written in: `* 2`, `1 -`, `leaky_relu(·, 0.01)`."""
    op: Op = v._op  # type: ignore[assignment]  # an op's node
    consts = [None if x in shown else fmt(x.data) for x in v.inputs]
    folded = [c for c in consts if c is not None]
    if not folded:
        return op.symbol
    if op.infix and len(consts) == 2:  # one or both sides folded: `2 *`, `* 3`, `2 * 3`
        return " ".join(c for c in (consts[0] or "", op.symbol, consts[1] or "") if c)
    if op.variadic:  # any number of inputs (dot, logsumexp): list the constants below
        return f"{op.symbol}\n(constants {', '.join(folded)})"
    return f"{op.symbol}({', '.join('·' if c is None else c for c in consts)})"


# ---- which module made which node ----------------------------------------------------------

def _made_by(order: list[Value]) -> dict[int, tuple]:
    """id(node) -> the modules (outermost first) whose call made it, recovered in one walk
    from the neurons' outputs, the only nodes nn tags (`Value.origin`): a neuron made the
    nodes between its parameters and its output."""
    position = {id(v): i for i, v in enumerate(order)}
    chains: dict[int, dict] = {}
    made: dict[int, tuple] = {}
    for out in reversed(order):
        origin = out.origin
        if origin is None or id(out) in made:
            continue
        root, neuron = origin
        if id(root) not in chains:
            chains[id(root)] = _chains(root)
        chain = chains[id(root)].get(id(neuron), (root, neuron))
        params = {id(p) for p in neuron.parameters()}
        inside, stack, seen = [out], [out], {id(out)}
        while stack:  # back from the output, up to leaves and other neurons' outputs
            v = stack.pop()
            for x in v.inputs:
                if x.inputs and id(x) not in seen and x.origin is None and id(x) not in made:
                    seen.add(id(x))
                    inside.append(x)
                    stack.append(x)
        mine: set[int] = set()
        for v in sorted(inside, key=lambda v: position[id(v)]):  # inputs first
            if any(id(x) in params or id(x) in mine for x in v.inputs):
                mine.add(id(v))
        made.update((i, chain) for i in mine)
    return made


def _chains(root) -> dict[int, tuple]:
    """id(module) -> the modules from `root` down to it, for root and every submodule."""
    by_name = dict(root.named_modules())
    chains = {}
    for name, m in by_name.items():
        parts = name.split(".") if name else []
        prefixes = (".".join(parts[:i]) for i in range(1, len(parts) + 1))
        chains[id(m)] = (root, *(by_name[p] for p in prefixes if p in by_name))
    return chains


def _module_names(made: dict[int, tuple]) -> dict[int, str]:
    """id(module) -> dotted name, for every module that made a node."""
    names: dict[int, str] = {}
    for chain in made.values():
        root = chain[0]
        if id(root) not in names:
            for name, m in root.named_modules():
                names[id(m)] = name or type(root).__name__.lower()
    return names


def _parameters_of(made: dict[int, tuple]) -> set[int]:
    roots = {id(chain[0]): chain[0] for chain in made.values()}
    return {id(p) for m in roots.values() for p in m.parameters()}


# ---- drawing a graph -----------------------------------------------------------------------

@dataclass
class _Plan:
    """What to draw, before it becomes DOT: shared by draw_graph, record and animate."""
    values: list[Value]                          # drawn Value nodes, topological order
    ids: dict[int, str]                          # id(Value) -> node id
    made: dict[int, tuple]                       # id(Value) -> modules whose call made it (see _made_by)
    groups: dict[int, Neuron] = field(default_factory=dict)  # collapse: id(Value) -> neuron
    order: list[Value] = field(default_factory=list)  # every node of the graph, topological order
    boxes: dict[int, list[int]] = field(default_factory=dict)  # collapse: id(folded Value) -> its calls' outputs


# the call that draws a graph too large for max_nodes anyway, by who was given max_nodes
_LARGER = {"draw_graph": "viz.draw_graph(v, {collapse}max_nodes={n})", "animate": "viz.animate(v, path, max_nodes={n})",
           "animation_steps": "viz.animation_steps(v, max_nodes={n})",
           "record": "viz.record(directory, {collapse}max_nodes={n})"}


def _plan(root: Value, show_constants: bool, collapse: bool, max_nodes: int, who: str = "draw_graph") -> _Plan:
    positive_int(max_nodes, who, "max_nodes")
    order = topological_order(root)
    made = _made_by(order)
    groups, outputs = _groups(order, made, root) if collapse else ({}, set())
    drawn = [v for v in order if (show_constants or v is root or not _is_constant(v))  # a no_grad result too
             and (id(v) not in groups or id(v) in outputs)]
    count = len(drawn) + sum(1 for v in drawn if v.inputs and id(v) not in groups)
    if count > max_nodes:
        call = _LARGER[who].format(collapse="collapse=True, " * collapse, n=count)
        collapsible = made and not collapse and who in ("draw_graph", "record")  # takes collapse=, and it helps
        advice = f"pass a larger max_nodes, as in {call}" if not collapsible else \
            f"pass collapse=True to draw each call of a neuron as one node, or a larger max_nodes, as in {call}"
        each = " with each call of a neuron as one node" * collapse
        raise GraphTooLarge(f"the graph has {count} nodes to draw{each}, more "
                            f"than max_nodes={max_nodes}; {advice} (dot may take minutes on graphs this big)", count)
    skipped = _ranks_skipped(drawn, groups)
    if skipped > MAX_SKIPPED_RANKS:
        raise GraphTooLarge(f"the graph's edges pass over {skipped:,} ranks (columns) of nodes in all, more than "
                            f"{MAX_SKIPPED_RANKS:,}: a value is used again many steps later (as x in `y = y*w + x` "
                            f"in a loop), which takes dot minutes or crashes it; draw a smaller graph"
                            + (" or pass collapse=True" if made and not collapse else ""))
    return _Plan(drawn, {id(v): f"v{i}" for i, v in enumerate(drawn)}, made, groups, order, _boxes(drawn, groups))


def _boxes(drawn: list[Value], groups: dict[int, Neuron]) -> dict[int, list[int]]:
    """id(node folded into a neuron's box) -> the drawn outputs of the calls that hold it (a
    parameter: every call of its neuron; a node a call computed: that call's)."""
    boxes: dict[int, list[int]] = {}
    shown = {id(v) for v in drawn}
    for out in drawn:
        if id(out) not in groups:
            continue
        seen, stack = {id(out)}, [out]
        while stack:
            for x in stack.pop().inputs:
                if groups.get(id(x)) is groups[id(out)] and id(x) not in shown and id(x) not in seen:
                    seen.add(id(x))
                    boxes.setdefault(id(x), []).append(id(out))
                    stack.append(x)
    return boxes


def _groups(order: list[Value], made: dict[int, tuple], root: Value) -> tuple[dict[int, Neuron], set[int]]:
    """For collapse: id(Value) -> the neuron whose box it is folded into (its parameters too, unless
    used outside it), and the ids of the nodes drawn as boxes, one per call of a neuron."""
    groups: dict[int, Neuron] = {}
    for v in order:  # the innermost Neuron that made v (a Linear or a GPT is no neuron to fold into)
        neuron = next((m for m in reversed(made.get(id(v), ())) if isinstance(m, Neuron)), None)
        if neuron is not None:
            groups[id(v)] = neuron
            for p in neuron.parameters():
                groups[id(p)] = neuron
    # a box for each call's output (a batch calls a neuron once per sample; y = n([y, x]) calls it on
    # its own output) and each node a neuron made that is used outside one box; a parameter used
    # outside its neuron (a penalty on w) is drawn as itself
    outputs: set[int] = set()
    box: dict[int, int | None] = {}  # id(node) -> the box its users fold it into (None: more than one)
    for u in reversed(order):  # every node after its users
        if id(u) in groups and u.inputs and (u.origin is not None or box.get(id(u)) is None):
            outputs.add(id(u))
            box[id(u)] = id(u)
        for x in u.inputs:
            if id(x) in groups and not x.inputs and groups.get(id(u)) is not groups[id(x)]:
                del groups[id(x)]
            elif id(x) in groups and x.inputs:
                inside = groups.get(id(u)) is groups[id(x)] and box.get(id(x), box[id(u)]) == box[id(u)]
                box[id(x)] = box[id(u)] if inside else None
    return groups, outputs


MAX_SKIPPED_RANKS = 5_000  # y = y*w + x: 37 steps pass 2,738 (dot: 1 s), 60 pass 7,200 (7 s), 80 crash dot


def _ranks_skipped(drawn: list[Value], groups: dict[int, Neuron]) -> int:
    """How many columns (dot's ranks) the edges of the drawing pass over in all, each node one column
    after its latest input and an input with nothing drawn before it just before its first use:
    dot makes a point for each, so its work grows with this count."""
    rank: dict[int, int] = {}
    edges = []
    for v in drawn:  # topological order: an edge x -> v, with v's op node one column before v
        sources = _drawn_inputs(v, groups, rank)
        rank[id(v)] = 1 + max((rank[id(x)] + (0 if id(v) in groups else 1) for x in sources), default=0)
        edges += [(x, v) for x in sources]
    first_use: dict[int, int] = {}
    for x, v in edges:
        first_use[id(x)] = min(first_use.get(id(x), rank[id(v)]), rank[id(v)])
    for v in drawn:
        if not _drawn_inputs(v, groups, rank) and id(v) in first_use:
            rank[id(v)] = first_use[id(v)] - 2
    return sum(max(0, rank[id(v)] - rank[id(x)] - 2) for x, v in edges)


def _drawn_inputs(v: Value, groups: dict[int, Neuron], drawn: Container[int]) -> list[Value]:
    """The drawn nodes with an edge into v (into its op node), through a collapsed neuron's inside."""
    seen, stack, found = set(), list(v.inputs), []
    neuron = groups.get(id(v))
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if neuron is not None and groups.get(id(x)) is neuron and id(x) not in drawn:
            stack.extend(x.inputs)
        elif id(x) in drawn:
            found.append(x)
    return found


def draw_graph(root: Value, view: str = "forward", rankdir: str = "LR", *, show_constants: bool = False,
               color_by_grad: bool = False, collapse: bool = False, max_nodes: int = MAX_NODES,
               title: str | None = None,
               highlight: Value | Iterable[Value] | None = None) -> Diagram:
    """The computation graph of `root` as a Digraph.

    `view="forward"` shows labels and data; "backward" or "both" adds every grad and, on each
    edge into an op, the local derivative d(out)/d(input) that backward multiplies by.
    Plain numbers are written into their op's label unless `show_constants=True`. Nodes made
    inside a Neuron or Layer are grouped into clusters; `collapse=True` draws each call of a
    neuron as one node. `highlight` (a Value or a collection of Values) draws those nodes and the edges
    into and out of them in red (with `collapse=True`, a node folded into a neuron highlights its
    box); given as a dict {Value: text}, the text is written beside each.
    Raises GraphTooLarge above `max_nodes` drawn nodes, or when the edges pass over more ranks
    in all than dot can lay out quickly (a value used again many steps later).
    """
    return _draw(root, view, rankdir, show_constants, color_by_grad, collapse, max_nodes, title, highlight,
                 "draw_graph")


def _draw(root: Value, view: str, rankdir: str, show_constants: bool, color_by_grad: bool, collapse: bool,
          max_nodes: int, title: str | None, highlight, who: str) -> Diagram:
    """draw_graph, for `who`: the call whose max_nodes the advice for a graph too large names."""
    check_layout(view, rankdir, "draw_graph")
    if not isinstance(root, Value):
        raise TypeError(f"draw_graph: expected a Value, got {type(root).__name__}")
    for name, option in (("show_constants", show_constants), ("color_by_grad", color_by_grad), ("collapse", collapse)):
        flag(option, "draw_graph", name)
    check_title(title, "draw_graph")
    plan = _plan(root, show_constants, collapse, max_nodes, who)
    marked = _onto_boxes(_highlighted(highlight, root, plan.order), plan)
    _check_drawn(marked, plan)
    params = _parameters_of(plan.made)
    names = _module_names(plan.made)
    backward = view != "forward"
    scale = max((abs(v.grad) for v in plan.values  # None: torch's no grad; a NaN or inf set by hand
                 if v.grad is not None and math.isfinite(v.grad)), default=0.0)

    # nslimit: dot's placement may run 10 network-simplex passes per node, no more; a leaf feeding
    # far-apart nodes (y = y*w + x in a loop) otherwise takes dot minutes for 150 nodes
    g = Diagram(name="computation graph", graph_attr={"rankdir": rankdir, "fontname": FONT, "nodesep": "0.15",
                                                        "ranksep": "0.3", "label": _html(title) if title else "",
                                                        "labelloc": "t", "nslimit": "10", "nslimit1": "10"},
                node_attr={"fontname": FONT, "fontsize": "11"}, edge_attr={"fontname": FONT, "fontsize": "9",
                                                                           "color": COLORS["edge"]})
    clusters: dict[tuple, tuple] = {}  # modules -> (subgraph, parent)

    def container(v: Value):
        """The (possibly nested) cluster subgraph that v's nodes go into."""
        if collapse:
            return g
        modules = tuple(m for m in plan.made.get(id(v), ()) if isinstance(m, (Layer, Neuron)))
        return _cluster(g, clusters, modules, names)

    shown = {id(v) for v in plan.values}
    for v in plan.values:
        vid = plan.ids[id(v)]
        kind = ("output" if v is root else "parameter" if id(v) in params else "constant" if _is_constant(v)
                else "input" if not v.inputs else "intermediate")
        fill = _grad_color(v.grad or 0.0, scale) if color_by_grad else COLORS[kind]
        red = id(v) in marked
        if red:
            fill = COLORS["highlight_fill"]
        neuron = plan.groups.get(id(v))
        if neuron is not None:
            name = names.get(id(neuron), "neuron")
            # the neuron's output reads as its activation; a node inside it used outside too, as its op
            output = v.origin is not None and v.origin[1] is neuron
            what = neuron.activation if output else v._op.symbol  # type: ignore[union-attr]  # made by an op
            cells = [("label", f"{name} {what}")] + _value_cells(v, view)[-2 if backward else -1:]
            g.node(vid, label=_cells(cells, fill, vid), shape="plaintext", id=vid,
                   tooltip="neuron")  # its kind, as other nodes: dot would read \N or a last \ in a name
        else:
            container(v).node(vid, label=_cells(_value_cells(v, view), fill, vid), shape="plaintext", id=vid,
                              tooltip=kind)
        if red and marked[id(v)]:
            g.node(f"note{vid[1:]}", label=_html(marked[id(v)]), shape="note", style="filled",
                   fillcolor=COLORS["highlight_fill"], color=COLORS["highlight"], fontcolor=COLORS["highlight"],
                   fontsize="10", id=f"note{vid[1:]}")
            g.edge(f"note{vid[1:]}", vid, style="dashed", color=COLORS["highlight"], arrowhead="none",
                   id=f"note{vid[1:]}-{vid}")
        if not v.inputs:
            continue
        if neuron is not None:
            _collapsed_edges(g, v, plan, vid, marked)
            continue
        oid = f"op{vid[1:]}"
        op_attrs = {"color": COLORS["highlight"], "penwidth": "2", "fillcolor": COLORS["highlight_fill"]} if red else {}
        container(v).node(oid, label=_html(_op_label(v, [x for x in v.inputs if id(x) in shown])), shape="ellipse",
                          **{"style": "filled", "fillcolor": COLORS["op"], "fontsize": "10", "width": "0.3",
                             "height": "0.3", "margin": "0.03", "id": oid, **op_attrs})
        g.edge(oid, vid, id=f"{oid}-{vid}", **_RED_EDGE if red else {})
        for i, x in enumerate(v.inputs):
            if id(x) not in shown:
                continue
            src = plan.ids[id(x)]
            attrs = {"id": f"{src}-{oid}-{i}"}
            if backward and x.requires_grad:  # no gradient flows into an input that does not require one
                attrs.update(label=_fixed_label(f"×{fmt(v._local[i])}"), fontcolor=COLORS["local"])
            if red or id(x) in marked:
                attrs.update(_RED_EDGE)
            g.edge(src, oid, **attrs)
    _attach_clusters(clusters)
    return g


_RED_EDGE = {"color": COLORS["highlight"], "penwidth": "2.5"}


def _highlighted(highlight, root: Value, order: list[Value]) -> dict[int, str]:
    """id(Value) -> note ("" for none) from draw_graph's `highlight=` argument; each must be
    one of `order`, root's graph."""
    if highlight is None:
        return {}
    if isinstance(highlight, Value):
        highlight = [highlight]
    if isinstance(highlight, (str, bytes)) or not hasattr(highlight, "__iter__"):
        raise TypeError(f"draw_graph: highlight must be a Value, a collection of Values or a dict "
                        f"{{Value: note}}, got {type(highlight).__name__}")
    values = list(highlight)  # (a generator is walked once)
    for v in values:
        if not isinstance(v, Value):
            raise TypeError(f"draw_graph: highlight must hold Values, got {type(v).__name__}")
    notes = highlight if isinstance(highlight, dict) else dict.fromkeys(values, "")
    if notes:  # a Value from another graph would silently draw nothing red
        nodes = {id(v) for v in order}
        for v in notes:
            if id(v) not in nodes:
                raise ValueError(f"draw_graph: highlight holds {v!r}, which is not in the graph of {root!r}")
    return {id(v): "" if text is None else str(text) for v, text in notes.items()}


def _check_drawn(marked: dict[int, str], plan: _Plan) -> None:
    """Refuse a highlight of a plain number folded away (it would draw nothing red, silently)."""
    for v in plan.order:
        if id(v) in marked and id(v) not in plan.ids:
            user = next((u for u in plan.values if id(u) not in plan.groups and any(x is v for x in u.inputs)), None)
            where = (f"written into its op's label ({_op_label(user, [x for x in user.inputs if id(x) in plan.ids])})"
                     if user is not None else "not drawn as a node")
            raise ValueError(f"draw_graph: highlight holds {v!r}, a plain number {where}; pass show_constants=True "
                             f"to draw it as a node")


def _onto_boxes(marked: dict[int, str], plan: _Plan) -> dict[int, str]:
    """With collapse, a highlighted node folded into a neuron's box highlights the box (their notes joined)."""
    if not plan.groups:
        return marked
    shown: dict[int, str] = {}
    for i, note in marked.items():
        for j in plan.boxes.get(i, [i]):
            shown[j] = "\n".join(text for text in (shown.get(j, ""), note) if text)
    return shown


def _collapsed_edges(g: graphviz.Digraph, v: Value, plan: _Plan, vid: str, marked: dict[int, str]) -> None:
    """Edges into a collapsed neuron from every drawn node outside it that feeds it (red at a highlight)."""
    for x in sorted(_drawn_inputs(v, plan.groups, plan.ids), key=lambda s: int(plan.ids[id(s)][1:])):
        red = id(v) in marked or id(x) in marked
        g.edge(plan.ids[id(x)], vid, id=f"{plan.ids[id(x)]}-{vid}", **_RED_EDGE if red else {})


def _cluster(g: graphviz.Digraph, clusters: dict, modules: tuple, names: dict):
    if not modules:
        return g
    if modules in clusters:
        return clusters[modules][0]
    parent = _cluster(g, clusters, modules[:-1], names)
    name = names.get(id(modules[-1]), type(modules[-1]).__name__.lower())
    is_neuron = isinstance(modules[-1], Neuron)
    sub = graphviz.Digraph(name=f"cluster_{len(clusters)}", graph_attr={
        "label": _html(name), "style": "rounded" + (",filled" if is_neuron else ""),
        "fillcolor": "#FAFAFA", "color": "#999999" if is_neuron else "#5D6D7E", "fontsize": "10"})
    clusters[modules] = (sub, parent)
    return sub


def _attach_clusters(clusters: dict) -> None:
    """Add each cluster to its parent, deepest first (graphviz copies a subgraph when added)."""
    for modules in sorted(clusters, key=len, reverse=True):
        sub, parent = clusters[modules]
        parent.subgraph(sub)
