"""`draw_network`: a network as neurons in layer columns, coloured by weights and activations."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from microgradnn.engine import no_grad
from microgradnn.nn import MLP, Layer, Module, Neuron
from microgradnn.viz.format import COLORS, FONT, Diagram, GraphTooLarge, _html, fmt

MAX_ELEMENTS = 3000  # neurons + weights: dot lays out a 2-200-200-1 MLP (40,000 edges) in a minute


def draw_network(model: Module, x: Sequence[float] | np.ndarray | None = None, *, rankdir: str = "LR",
                 max_elements: int = MAX_ELEMENTS) -> Diagram:
    """Neurons as circles in layer columns; edges coloured by weight sign (blue +, red -) and
    as wide as the weight is large; with an input `x`, neurons are filled by their activation
    and the output shows the prediction. Raises GraphTooLarge above `max_elements` neurons
    plus weights."""
    if isinstance(model, Neuron):
        layers = [Layer.from_weights([([w.data for w in model.w], model.b.data)], model.activation)]
    elif isinstance(model, Layer):
        layers = [model]
    elif isinstance(model, MLP):
        layers = model.layers
    else:
        raise TypeError(f"draw_network: expected an MLP, Layer or Neuron, got {type(model).__name__}")
    sizes = [layers[0].nin] + [layer.nout for layer in layers]
    elements = sum(sizes) + sum(a * b for a, b in zip(sizes, sizes[1:]))
    if elements > max_elements:
        raise GraphTooLarge(f"draw_network: the network has {sum(sizes):,} neurons and inputs and "
                            f"{elements - sum(sizes):,} weights to draw, more than max_elements={max_elements:,}; "
                            "pass a larger max_elements= to draw it anyway (Graphviz may take minutes)")
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


