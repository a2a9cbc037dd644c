"""Pictures of computation graphs and networks, laid out by Graphviz (the `graphviz` package).

Every DOT source here is deterministic: node ids follow topological order, inputs keep
their order, colours are `#RRGGBB`, and every label is an escaped HTML-like label.
"""
from __future__ import annotations

import contextlib
import html
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import graphviz

from microgradnn import engine
from microgradnn._files import check_writable, write_atomic
from microgradnn.engine import Value, no_grad, topological_order

if TYPE_CHECKING:
    import numpy as np

    from microgradnn.nn import Module

__all__ = ["draw_graph", "draw_network", "record", "animate", "save", "tree", "GraphvizNotFound",
           "GraphTooLarge", "Diagram"]

MAX_NODES = 2000
FONT = "Helvetica"
COLORS = {"parameter": "#FFE8B0", "input": "#D6EAF8", "intermediate": "#FFFFFF", "output": "#D5F5E3",
          "constant": "#F2F2F2", "op": "#EEEEEE", "edge": "#555555", "local": "#B03A2E",
          "highlight": "#D62728", "highlight_fill": "#FADBD8"}
INFIX = {"+", "-", "*", "/", "**"}
INSTALL_HINT = ("Graphviz's `dot` program was not found on PATH, so nothing can be rendered "
                "(DOT source still works). Install it: Debian/Ubuntu `sudo apt-get install graphviz`, "
                "macOS `brew install graphviz`, conda `conda install graphviz`.")


class GraphvizNotFound(RuntimeError):
    """Rendering needs Graphviz's `dot` program, which is not installed."""


class GraphTooLarge(ValueError):
    """The graph has more nodes than `max_nodes`; drawing it would take dot minutes."""


class Diagram(graphviz.Digraph):
    """A `graphviz.Digraph` whose rendering explains how to install a missing `dot`."""

    def pipe(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFound(INSTALL_HINT) from None

    def render(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFound(INSTALL_HINT) from None

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        try:
            return {"image/svg+xml": self.pipe(format="svg", encoding="utf-8")}
        except Exception:  # a notebook must always get something to show
            return {"text/plain": self.source}


# ---- formatting ----------------------------------------------------------------------------

def fmt(x: float) -> str:
    """Numbers as shown on every picture: 4 significant digits."""
    return f"{x:.4g}"


def _esc(text: str) -> str:
    """Escape text for an HTML-like label (so no label can inject DOT or markup)."""
    return html.escape(str(text), quote=True).replace("\\", "\\\\").replace("\n", "<BR/>")


def _html(text: str) -> str:
    """An HTML-like label showing `text` literally (DOT's backslash escapes included)."""
    return f"<{_esc(text)}>"


def _fixed_label(text: str) -> str:
    """An edge label of fixed size, so changing numbers never move the layout."""
    return (f'<<TABLE BORDER="0" CELLPADDING="0" CELLSPACING="0"><TR><TD WIDTH="62" HEIGHT="12" '
            f'FIXEDSIZE="TRUE">{_esc(text)}</TD></TR></TABLE>>')


def _cells(cells: list[tuple[str, str]], fill: str, node_id: str) -> str:
    """A one-row table label; each cell (kind, text) gets a fixed width so frames share a layout."""
    tds = "".join(f'<TD ID="{node_id}_{kind}" WIDTH="{_width(kind, text)}" HEIGHT="{22 * (text.count(chr(10)) + 1)}" '
                  f'FIXEDSIZE="TRUE">{_esc(text)}</TD>' for kind, text in cells)
    return f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3" BGCOLOR="{fill}"><TR>{tds}</TR></TABLE>>'


def _width(kind: str, text: str) -> int:
    """Numbers get one fixed width (so every frame of a recording has the same layout)."""
    if kind in ("data", "grad"):
        return 100
    return max(30, 7 * max(map(len, text.split("\n"))) + 10)


def _value_cells(v: Value, view: str) -> list[tuple[str, str]]:
    cells = [("label", v.label)] if v.label else []
    cells.append(("data", f"data {fmt(v.data)}"))
    if view in ("backward", "both"):
        cells.append(("grad", f"grad {fmt(v.grad)}"))
    return cells


def _grad_color(g: float, scale: float) -> str:
    """White for 0, deeper red for positive and blue for negative gradients."""
    t = 0.0 if scale == 0 else min(1.0, abs(g) / scale) ** 0.5
    shade = int(round(255 - 150 * t))
    return f"#FF{shade:02X}{shade:02X}" if g > 0 else f"#{shade:02X}{shade:02X}FF" if g < 0 else "#FFFFFF"


def _is_constant(v: Value) -> bool:
    return not v.inputs and not v.requires_grad and not v.label


def _op_label(v: Value, shown: list[Value]) -> str:
    """The op's name with folded constants written in: `* 2`, `1 -`, `leaky_relu(·, 0.01)`."""
    op = v.op
    consts = [None if x in shown else fmt(x.data) for x in v.inputs]
    if op == "dot":
        folded = [c for c in consts if c is not None]
        return "Σ w·x + b" + (f"\n(constants {', '.join(folded)})" if folded else "")
    if not any(c is not None for c in consts):
        return op
    if op in INFIX and len(consts) == 2:
        return f"{consts[0]} {op}" if consts[0] is not None else f"{op} {consts[1]}"
    return f"{op}({', '.join('·' if c is None else c for c in consts)})"


# ---- which module made which node ----------------------------------------------------------

def _module_names(nodes: list[Value]) -> dict[int, str]:
    """id(module) -> dotted name, for every module recorded on the nodes."""
    names: dict[int, str] = {}
    for v in nodes:
        modules = getattr(v, "_modules", None)
        if modules and id(modules[0]) not in names:
            root = modules[0]
            for name, m in root.named_modules():
                names[id(m)] = name or type(root).__name__.lower()
    return names


def _parameters_of(nodes: list[Value]) -> set[int]:
    roots = {id(v._modules[0]): v._modules[0] for v in nodes if getattr(v, "_modules", None)}
    return {id(p) for m in roots.values() for p in m.parameters()}


def _neuron_of(v: Value):
    from microgradnn.nn import Neuron
    for m in reversed(getattr(v, "_modules", None) or ()):
        if isinstance(m, Neuron):
            return m
    return None


# ---- drawing a graph -----------------------------------------------------------------------

@dataclass
class _Plan:
    """What to draw, before it becomes DOT: shared by draw_graph, record and animate."""
    values: list[Value]                          # drawn Value nodes, topological order
    ids: dict[int, str]                          # id(Value) -> node id
    groups: dict[int, Any] = field(default_factory=dict)  # collapse: id(Value) -> neuron


def _plan(root: Value, show_constants: bool, collapse: bool, max_nodes: int) -> _Plan:
    order = topological_order(root)
    groups, outputs = {}, {}
    if collapse:
        for v in order:
            neuron = _neuron_of(v)
            if neuron is not None:
                groups[id(v)] = neuron
                outputs[id(neuron)] = v  # the last node a neuron made is its output
                for p in neuron.parameters():
                    groups[id(p)] = neuron
    drawn = [v for v in order if (show_constants or not _is_constant(v))
             and (id(v) not in groups or outputs[id(groups[id(v)])] is v)]
    count = len(drawn) + sum(1 for v in drawn if v.inputs and id(v) not in groups)
    if count > max_nodes:
        raise GraphTooLarge(f"the graph has {count} nodes to draw, more than max_nodes={max_nodes}; "
                            f"pass collapse=True to draw each neuron as one node, or raise max_nodes= "
                            f"(dot may take minutes on graphs this big)")
    return _Plan(drawn, {id(v): f"v{i}" for i, v in enumerate(drawn)}, groups)


def draw_graph(root: Value, view: str = "forward", rankdir: str = "LR", *, show_constants: bool = False,
               color_by_grad: bool = False, collapse: bool = False, max_nodes: int = MAX_NODES,
               title: str | None = None, highlight: Value | Iterable[Value] | None = None) -> Diagram:
    """The computation graph of `root` as a Digraph.

    `view="forward"` shows labels and data; "backward" or "both" adds every grad and, on each
    edge into an op, the local derivative d(out)/d(input) that backward multiplies by.
    Plain numbers are written into their op's label unless `show_constants=True`. Nodes made
    inside a Neuron or Layer are grouped into clusters; `collapse=True` draws each neuron as
    one node. `highlight` (a Value or a collection of Values) draws those nodes and the edges
    into and out of them in red; given as a dict {Value: text}, the text is written beside each.
    Raises GraphTooLarge above `max_nodes` drawn nodes.
    """
    if view not in ("forward", "backward", "both"):
        raise ValueError(f"draw_graph: view must be 'forward', 'backward' or 'both', got {view!r}")
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"draw_graph: rankdir must be one of LR, TB, RL, BT, got {rankdir!r}")
    if not isinstance(root, Value):
        raise TypeError(f"draw_graph: expected a Value, got {type(root).__name__}")
    plan = _plan(root, show_constants, collapse, max_nodes)
    marked = _highlighted(highlight)
    params = _parameters_of(plan.values)
    names = _module_names(plan.values)
    backward = view != "forward"
    scale = max((abs(v.grad) for v in plan.values), default=0.0)

    g = Diagram(name="computation graph", graph_attr={"rankdir": rankdir, "fontname": FONT, "nodesep": "0.15",
                                                        "ranksep": "0.3", "label": _html(title) if title else "",
                                                        "labelloc": "t"},
                node_attr={"fontname": FONT, "fontsize": "11"}, edge_attr={"fontname": FONT, "fontsize": "9",
                                                                           "color": COLORS["edge"]})
    clusters: dict[tuple, tuple] = {}  # modules -> (subgraph, parent)

    def container(v: Value):
        """The (possibly nested) cluster subgraph that v's nodes go into."""
        if collapse:
            return g
        modules = tuple(m for m in (getattr(v, "_modules", None) or ()) if type(m).__name__ in ("Layer", "Neuron"))
        return _cluster(g, clusters, modules, names)

    shown = {id(v) for v in plan.values}
    for v in plan.values:
        vid = plan.ids[id(v)]
        kind = ("output" if v is root else "parameter" if id(v) in params else "constant" if _is_constant(v)
                else "input" if not v.inputs else "intermediate")
        fill = _grad_color(v.grad, scale) if color_by_grad else COLORS[kind]
        red = id(v) in marked
        if red:
            fill = COLORS["highlight_fill"]
        neuron = plan.groups.get(id(v))
        if neuron is not None:
            name = names.get(id(neuron), "neuron")
            cells = [("label", f"{name} {neuron.activation}")] + _value_cells(v, view)[-2 if backward else -1:]
            g.node(vid, label=_cells(cells, fill, vid), shape="plaintext", id=vid, tooltip=name)
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
            _collapsed_edges(g, v, neuron, plan, vid)
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
            if backward:
                attrs.update(label=_fixed_label(f"×{fmt(v._local[i])}"), fontcolor=COLORS["local"])
            if red or id(x) in marked:
                attrs.update(_RED_EDGE)
            g.edge(src, oid, **attrs)
    _attach_clusters(clusters)
    return g


_RED_EDGE = {"color": COLORS["highlight"], "penwidth": "2.5"}


def _highlighted(highlight) -> dict[int, str]:
    """id(Value) -> note ("" for none) from draw_graph's `highlight=` argument."""
    if highlight is None:
        return {}
    if isinstance(highlight, Value):
        highlight = [highlight]
    notes = highlight if isinstance(highlight, dict) else dict.fromkeys(highlight, "")
    for v in notes:
        if not isinstance(v, Value):
            raise TypeError(f"draw_graph: highlight must hold Values, got {type(v).__name__}")
    return {id(v): str(text or "") for v, text in notes.items()}


def _collapsed_edges(g: graphviz.Digraph, v: Value, neuron, plan: _Plan, vid: str) -> None:
    """Edges into a collapsed neuron from every drawn node outside it that feeds it."""
    seen, stack, sources = set(), list(v.inputs), []
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if plan.groups.get(id(x)) is neuron:
            stack.extend(x.inputs)
        elif id(x) in plan.ids:
            sources.append(x)
    for x in sorted(sources, key=lambda s: int(plan.ids[id(s)][1:])):
        g.edge(plan.ids[id(x)], vid, id=f"{plan.ids[id(x)]}-{vid}")


def _cluster(g: graphviz.Digraph, clusters: dict, modules: tuple, names: dict):
    if not modules:
        return g
    if modules in clusters:
        return clusters[modules][0]
    parent = _cluster(g, clusters, modules[:-1], names)
    name = names.get(id(modules[-1]), type(modules[-1]).__name__.lower())
    is_neuron = type(modules[-1]).__name__ == "Neuron"
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


# ---- network diagrams ----------------------------------------------------------------------

def draw_network(model: Module, x: Sequence[float] | np.ndarray | None = None, *, rankdir: str = "LR") -> Diagram:
    """Neurons as circles in layer columns; edges coloured by weight sign (blue +, red -) and
    as wide as the weight is large; with an input `x`, neurons are filled by their activation
    and the output shows the prediction."""
    from microgradnn.nn import MLP, Layer, Neuron
    if isinstance(model, Neuron):
        layers = [Layer.from_weights([([w.data for w in model.w], model.b.data)], model.activation)]
    elif isinstance(model, Layer):
        layers = [model]
    elif isinstance(model, MLP):
        layers = model.layers
    else:
        raise TypeError(f"draw_network: expected an MLP, Layer or Neuron, got {type(model).__name__}")
    activations = None
    if x is not None:
        with no_grad():
            h = list(x.tolist() if hasattr(x, "tolist") else x)
            activations = [h]
            for layer in layers:
                h = [v.data for v in layer(h)]
                activations.append(h)
    weights = [abs(w.data) for layer in layers for n in layer.neurons for w in n.w]
    wmax = max(weights, default=1.0) or 1.0
    g = Diagram(name="network", graph_attr={"rankdir": rankdir, "fontname": FONT, "nodesep": "0.12",
                                            "ranksep": "1.2", "splines": "line"},
                node_attr={"fontname": FONT, "fontsize": "10", "shape": "circle", "fixedsize": "true",
                           "width": "0.55", "style": "filled"}, edge_attr={"arrowhead": "none"})
    sizes = [layers[0].nin] + [layer.nout for layer in layers]
    for li, size in enumerate(sizes):
        with g.subgraph(name=f"cluster_col{li}", graph_attr={
                "label": _html("input" if li == 0 else f"layer {li - 1}\n{layers[li - 1].activation}"),
                "color": "#FFFFFF", "fontsize": "10", "rank": "same"}) as col:
            for j in range(size):
                a = activations[li][j] if activations else None
                text = f"x{j}" if li == 0 and a is None else ("" if a is None else f"{a:.3g}")
                fill = "#D6EAF8" if li == 0 else _activation_color(a)
                col.node(f"L{li}N{j}", label=_html(text), fillcolor=fill, id=f"L{li}N{j}",
                         tooltip=f"layers.{li - 1}.neurons.{j}" if li else f"input {j}")
    for li, layer in enumerate(layers):
        for j, n in enumerate(layer.neurons):
            for i, w in enumerate(n.w):
                g.edge(f"L{li}N{i}", f"L{li + 1}N{j}", color="#2E86C1" if w.data >= 0 else "#C0392B",
                       penwidth=f"{0.3 + 3.2 * abs(w.data) / wmax:.2f}", tooltip=f"w = {fmt(w.data)}",
                       id=f"L{li}N{i}-L{li + 1}N{j}")
    if activations:
        out = activations[-1]
        g.node("prediction", label=_html("prediction\n" + ", ".join(fmt(a) for a in out)), shape="box",
               fixedsize="false", style="rounded,filled", fillcolor=COLORS["output"], id="prediction")
        for j in range(len(out)):
            g.edge(f"L{len(layers)}N{j}", "prediction", style="dashed", arrowhead="normal")
    return g


def _activation_color(a: float | None) -> str:
    """Grey when unknown, white at 0, deeper orange the larger |a| (up to 1)."""
    if a is None:
        return "#F2F2F2"
    t = min(1.0, abs(a))
    return f"#FF{int(255 - 120 * t):02X}{int(255 - 200 * t):02X}"


# ---- text, files, notebooks ----------------------------------------------------------------

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


def save(obj: graphviz.Digraph | Value | Module, path: str | os.PathLike, *, overwrite: bool = False) -> str:
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


# ---- every pass of a training loop ---------------------------------------------------------

@contextlib.contextmanager
def record(directory: str | os.PathLike, model: Module | None = None, *, every: int = 1, format: str = "svg",
           collapse: bool | None = None, max_nodes: int = MAX_NODES, overwrite: bool = False) -> Iterator[list]:
    """Inside the block, each `backward()` writes `step-NNNN-forward.<format>` (the graph as it
    was computed) and `step-NNNN-backward.<format>` (with grads and local derivatives).

    `every=n` keeps every n-th step; `collapse` (default: True when `model` is given) draws each
    neuron as one node. Yields the list of written paths, which grows as the loop runs.
    Refuses a directory that already holds step files unless `overwrite=True`. Only scalar
    `Value.backward()` calls are drawn (a compiled replay has no per-sample graph to draw).
    """
    directory = os.fspath(directory)
    if format not in ("svg", "png", "pdf", "dot"):
        raise ValueError(f"record: format must be svg, png, pdf or dot, got {format!r}")
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"record: every must be a positive int, got {every!r}")
    os.makedirs(directory, exist_ok=True)
    if not overwrite and any(n.startswith("step-") for n in os.listdir(directory)):
        raise FileExistsError(f"record: {directory} already holds step-* files; pass overwrite=True or "
                              f"use another directory")
    collapse = model is not None if collapse is None else collapse
    written: list[str] = []
    step = 0

    def hook(root: Value, phase: str) -> None:
        nonlocal step
        if phase == "before":
            step += 1
        if (step - 1) % every:
            return
        view = "forward" if phase == "before" else "backward"
        g = draw_graph(root, view=view, collapse=collapse, max_nodes=max_nodes, title=f"step {step} · {view}")
        path = os.path.join(directory, f"step-{step:04d}-{view}.{format}")
        written.append(save(g, path, overwrite=True))

    engine.backward_hooks.append(hook)
    try:
        yield written
    finally:
        engine.backward_hooks.remove(hook)


# ---- animated backprop ---------------------------------------------------------------------

def animation_steps(root: Value, plan_ids: dict[int, str], drawn: list[Value]) -> list[dict]:
    """The animation's script: forward (each computed node in topological order), then
    backward (each node in reverse order, when its grad is final)."""
    steps = []
    for v in drawn:
        if v.inputs:
            shown = ", ".join(_show_value(x) for x in v.inputs)
            steps.append({"id": plan_ids[id(v)], "kind": "data", "text": f"data {fmt(v.data)}",
                          "caption": f"forward: {v.op}({shown}) = {fmt(v.data)}"})
    for v in reversed(drawn):
        why = "the output's gradient is 1" if v is root else "sum of (local derivative × grad) over its uses"
        steps.append({"id": plan_ids[id(v)], "kind": "grad", "text": f"grad {fmt(v.grad)}",
                      "caption": f"backward: grad of {v.label or plan_ids[id(v)]} = {fmt(v.grad)} ({why})"})
    return steps


def _show_value(v: Value) -> str:
    return f"{v.label}={fmt(v.data)}" if v.label else fmt(v.data)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 16px; color: #222; }}
#controls {{ display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }}
button {{ font-size: 15px; min-width: 40px; }}
#slider {{ width: 320px; }}
#caption {{ margin: 10px 0; font-size: 15px; min-height: 1.4em; }}
#graph svg {{ max-width: 100%; height: auto; }}
g.node.active polygon, g.node.active ellipse {{ stroke: #E67E22; stroke-width: 4px; }}
g.node.done-forward polygon {{ stroke: #1E8449; }}
g.node.done-backward polygon {{ stroke: #B03A2E; }}
</style></head>
<body>
<h3>{title}</h3>
<div id="controls">
<button id="first" title="first step (Home)">|&#x25C0;</button>
<button id="prev" title="step back (Left)">&#x25C0;</button>
<button id="play" title="play / pause (Space)">&#x25B6;</button>
<button id="next" title="step forward (Right)">&#x25B6;&#x25B6;</button>
<input id="slider" type="range" min="0" max="{n}" value="0">
<span id="counter"></span>
</div>
<div id="caption">Press play, or use the arrow keys.</div>
<div id="graph">{svg}</div>
<script>
"use strict";
const STEPS = {steps};
const cells = new Map();
function cellFor(id, kind) {{
  const key = id + "/" + kind;
  if (!cells.has(key)) {{
    const g = document.getElementById(id);
    const t = g ? Array.from(g.querySelectorAll("text")).find(e => e.textContent.trim().startsWith(kind)) : null;
    cells.set(key, t);
  }}
  return cells.get(key);
}}
let current = 0, timer = null;
function show(k) {{
  current = Math.max(0, Math.min(STEPS.length, k));
  document.querySelectorAll("g.node.active").forEach(e => e.classList.remove("active"));
  STEPS.forEach((s, i) => {{
    const t = cellFor(s.id, s.kind);
    if (t) t.textContent = i < current ? s.text : s.kind + " ?";
  }});
  const slider = document.getElementById("slider");
  slider.value = current;
  document.getElementById("counter").textContent = "step " + current + " / " + STEPS.length;
  if (current > 0) {{
    const s = STEPS[current - 1];
    const g = document.getElementById(s.id);
    if (g) g.classList.add("active");
    const op = document.getElementById("op" + s.id.slice(1));
    if (op && s.kind === "data") op.classList.add("active");
    document.getElementById("caption").textContent = s.caption;
  }} else {{
    document.getElementById("caption").textContent = "Leaves hold their data; press play to run the forward pass.";
  }}
  document.body.dataset.step = String(current);
  document.body.dataset.active = current > 0 ? STEPS[current - 1].id : "";
}}
function play() {{
  if (timer) {{ clearInterval(timer); timer = null; document.getElementById("play").innerHTML = "&#x25B6;"; return; }}
  if (current >= STEPS.length) show(0);
  document.getElementById("play").innerHTML = "&#x23F8;";
  timer = setInterval(() => {{ if (current >= STEPS.length) play(); else show(current + 1); }}, 700);
}}
document.getElementById("first").onclick = () => show(0);
document.getElementById("prev").onclick = () => show(current - 1);
document.getElementById("next").onclick = () => show(current + 1);
document.getElementById("play").onclick = play;
document.getElementById("slider").oninput = e => show(Number(e.target.value));
document.addEventListener("keydown", e => {{
  if (e.key === "ArrowRight") show(current + 1);
  else if (e.key === "ArrowLeft") show(current - 1);
  else if (e.key === "Home") show(0);
  else if (e.key === "End") show(STEPS.length);
  else if (e.key === " ") {{ e.preventDefault(); play(); }}
}});
const start = /step=(\\d+)/.exec(location.hash);
show(start ? Number(start[1]) : 0);
</script>
</body></html>
"""


def animate(root: Value, path: str | os.PathLike, *, title: str = "Backpropagation, step by step",
            max_nodes: int = 300, overwrite: bool = False) -> str:
    """Write one self-contained HTML page (inline SVG and script, nothing fetched) that steps
    through the forward pass node by node, then the backward pass; play/pause, step buttons,
    a slider, and the keys Space, Left, Right, Home, End. `root.backward()` must have run.
    Open `page.html#step=N` to start at step N."""
    path = check_writable(path, overwrite, "animate")
    plan = _plan(root, show_constants=False, collapse=False, max_nodes=max_nodes)
    svg = draw_graph(root, view="both", max_nodes=max_nodes).pipe(format="svg", encoding="utf-8")
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype: the SVG is inlined
    steps = animation_steps(root, plan.ids, plan.values)
    page = _PAGE.format(title=html.escape(title), n=len(steps), svg=svg,
                        steps=json.dumps(steps).replace("</", "<\\/"))
    write_atomic(path, page.encode())
    return path
