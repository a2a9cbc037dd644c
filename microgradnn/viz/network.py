"""`draw_network`: a network as neurons in layer columns, coloured by weights and activations.

Nodes are pinned (Graphviz's neato with fixed positions), so neuron j of a layer is always
the j-th from the top, and edges are written before nodes so they pass under the circles.
"""
from __future__ import annotations

from collections.abc import Mapping, Set as AbstractSet
from typing import Sequence

import numpy as np

from microgradnn._checks import flag, number, positive_int
from microgradnn.engine import Value, no_grad
from microgradnn.nn import MLP, Layer, Module, Neuron
from microgradnn.viz.format import (COLORS, FONT, Diagram, GraphTooLarge, GraphvizNotFound, _esc, _html, check_title,
                                    fmt)

POSITIVE_WEIGHT, NEGATIVE_WEIGHT = "#2E86C1", "#C0392B"
COLUMN_GAP, ROW_GAP, DIAMETER, PREDICTION_GAP = 135, 54, 46, 40  # points; the gap is from circle to box
MAX_ELEMENTS = 3000  # neurons + weights: a 2-200-200-1 MLP (40,000 edges) takes Graphviz about a minute


def layers_of(model: Module, who: str = "draw_network") -> list:
    """The layers of an MLP, Layer or Neuron (a Neuron becomes a one-neuron layer)."""
    if isinstance(model, Neuron):
        return [Layer.from_weights([([w.data for w in model.w], model.b.data)], model.activation)]
    if isinstance(model, Layer):
        return [model]
    if isinstance(model, MLP):
        return model.layers
    raise TypeError(f"{who}: expected an MLP, Layer or Neuron, got {type(model).__name__}")


def prediction_words(model, out: list[float]) -> str:
    """The prediction as the lesson words it: "Yes (64.0% confidence)" for one sigmoid output."""
    if len(out) > 1:
        k = max(range(len(out)), key=out.__getitem__)
        return f"class {k} (the largest of {len(out)} outputs)"
    p, threshold = out[0], model.threshold
    if model.output_activation == "sigmoid":
        return f"Yes ({p:.1%} confidence)" if p > threshold else f"No ({1 - p:.1%} confidence)"
    side = ">" if p > threshold else "≤"
    return f"class {int(p > threshold)} (score {fmt(p)} {side} threshold {fmt(threshold)})"


def activation_color(a: float | None) -> str:
    """Fill for an activation on a diverging scale: purple below 0, white at 0, orange above.

    The depth is |a| / (|a| + 0.5), so it keeps growing past 1 (1 and 1.7 look different)."""
    if a is None:
        return "#F2F2F2"
    t = abs(a) / (abs(a) + 0.5)
    end = (0xE6, 0x61, 0x01) if a > 0 else (0x5E, 0x3C, 0x99)
    return "#" + "".join(f"{round(255 + (c - 255) * t):02X}" for c in end)


def _text_color(a: float | None) -> str:
    return "#FFFFFF" if a is not None and abs(a) / (abs(a) + 0.5) > 0.62 else "#000000"


def network_input(x, nin: int, who: str = "draw_network") -> list[float]:
    """The input x of a network with `nin` inputs as floats: x must be a sequence (a list, a tuple,
    a 1-D array) of `nin` finite numbers or Values (their data is taken)."""
    x = x.tolist() if hasattr(x, "tolist") else x
    if isinstance(x, (str, bytes)) or not hasattr(x, "__iter__"):
        raise TypeError(f"{who}: x must be a sequence of numbers, got {type(x).__name__} {x!r:.60}")
    if isinstance(x, (Mapping, AbstractSet)):  # a dict's keys, or a set's own order, would be drawn as x
        raise TypeError(f"{who}: x must be a sequence of numbers in input order, got {type(x).__name__} {x!r:.60}")
    h = [number(v.data if isinstance(v, Value) else v, who, f"x[{i}]") for i, v in enumerate(x)]
    if len(h) != nin:
        raise ValueError(f"{who}: x must be a sequence of {nin} numbers (the network has {nin} inputs), "
                         f"got {len(h)}")
    return h


def network_activations(layers: list, x, who: str = "draw_network") -> list[list[float]]:
    """Every layer's outputs for input x (see `network_input`), the input first (no graph is recorded)."""
    h = network_input(x, layers[0].nin, who)
    with no_grad():
        activations = [list(h)]
        for layer in layers:
            h = [v.data for v in layer(h)]
            activations.append(h)
    return activations


def check_elements(layers: list, max_elements: int, who: str) -> list[int]:
    """The layer sizes, input first; refuses a network of more than `max_elements` neurons, inputs and weights."""
    positive_int(max_elements, who, "max_elements")
    sizes = [layers[0].nin] + [layer.nout for layer in layers]
    elements = sum(sizes) + sum(a * b for a, b in zip(sizes, sizes[1:]))
    if elements > max_elements:
        raise GraphTooLarge(f"{who}: the network has {sum(sizes):,} neurons and inputs and "
                            f"{elements - sum(sizes):,} weights to draw, more than max_elements={max_elements:,}; "
                            "pass a larger max_elements= to draw it anyway (Graphviz may take minutes)")
    return sizes


def draw_network(model: Module, x: Sequence[float] | np.ndarray | None = None, *, title: str | None = None,
                 legend: bool = True, max_elements: int = MAX_ELEMENTS) -> Diagram:
    """Neurons as circles in layer columns, neuron 0 at the top; edges coloured by weight sign
    (blue +, red -) and as wide as the weight is large; with an input `x`, neurons are filled
    by their activation and the output shows the prediction. The title names the model and
    the input unless `title=` is given; `legend=False` drops the key below the picture.
    Raises GraphTooLarge above `max_elements` neurons plus weights."""
    layers = layers_of(model)
    flag(legend, "draw_network", "legend")
    check_title(title, "draw_network")
    sizes = check_elements(layers, max_elements, "draw_network")
    activations = network_activations(layers, x) if x is not None else None
    if title is None:
        title = repr(model) + (f"\ninput x = [{', '.join(fmt(a) for a in activations[0])}]" if activations else "")
    largest = max(abs(w.data) for layer in layers for n in layer.neurons for w in n.w)
    wmax = largest or 1.0  # (every edge is thinnest when every weight is 0)
    g = Diagram(name="network", engine="neato", graph_attr={
        "inputscale": "72", "splines": "line", "outputorder": "edgesfirst", "fontname": FONT, "fontsize": "12",
        "label": _html(title), "labelloc": "t", "pad": "0.1"},
        node_attr={"fontname": FONT, "fontsize": "11", "shape": "circle", "fixedsize": "true",
                   "width": f"{DIAMETER / 72:.3f}", "style": "filled", "penwidth": "1.2"},
        edge_attr={"arrowhead": "none"})
    top = (max(sizes) - 1) / 2 * ROW_GAP
    for li, size in enumerate(sizes):
        header = "input" if li == 0 else f"layer {li - 1}\n{layers[li - 1].activation}"
        g.node(f"head{li}", label=_html(header), shape="plaintext", fixedsize="false", style="",
               pos=f"{li * COLUMN_GAP},{top + 42}!", fontsize="11", id=f"head{li}")
        for j in range(size):
            a = activations[li][j] if activations else None
            name = f"x{j}" if li == 0 else f"n{j}"
            value = "" if a is None else f"<BR/>{_esc(f'{a:.3g}')}"
            fill = COLORS["input"] if li == 0 else activation_color(a)
            g.node(f"L{li}N{j}", label=f'<<FONT POINT-SIZE="9">{name}</FONT>{value}>', fillcolor=fill,
                   fontcolor=_text_color(a) if li else "#000000", id=f"L{li}N{j}",
                   pos=f"{li * COLUMN_GAP},{(size - 1) / 2 * ROW_GAP - j * ROW_GAP}!",
                   tooltip=f"layers.{li - 1}.neurons.{j}" if li else f"input {j}")
    for li, layer in enumerate(layers):
        for j, n in enumerate(layer.neurons):
            for i, w in enumerate(n.w):
                g.edge(f"L{li}N{i}", f"L{li + 1}N{j}", color=POSITIVE_WEIGHT if w.data >= 0 else NEGATIVE_WEIGHT,
                       penwidth=f"{0.5 + 3.5 * abs(w.data) / wmax:.2f}", tooltip=f"w = {fmt(w.data)}",
                       id=f"L{li}N{i}-L{li + 1}N{j}")
    last = len(layers)
    if activations:
        out = activations[-1]
        text = "prediction\n" + ", ".join(fmt(a) for a in out) + "\n" + prediction_words(model, out)
        g.node("prediction", label=_html(text), shape="box", fixedsize="false", style="rounded,filled",
               fillcolor=COLORS["output"], id="prediction")
        place_prediction(g, last, [text], PREDICTION_GAP)
        for j in range(len(out)):
            g.edge(f"L{last}N{j}", "prediction", style="dashed", arrowhead="normal", color="#777777",
                   id=f"L{last}N{j}-prediction")
    if legend:
        g.node("legend", label=_legend(largest, activations is not None), shape="plaintext", fixedsize="false",
               style="", id="legend",
               pos=f"{last * COLUMN_GAP / 2},{-top - DIAMETER / 2 - (55 if activations else 40)}!")
    return g


def place_prediction(g: Diagram, last: int, texts: list[str], gap: float) -> float:
    """Pin the prediction box `gap` points right of the output layer's circles, as wide as the
    widest of `texts` (what it will show), so no width of text reaches back over the gap; return
    the box's centre x."""
    width = text_width(texts) + 10  # 5 points of margin a side
    x = last * COLUMN_GAP + DIAMETER / 2 + gap + width / 2
    g.node("prediction", width=f"{width / 72:.3f}", margin="0.07,0.055", pos=f"{x:.1f},0!")
    return x


def text_width(texts: list[str], fontsize: float = 11) -> float:
    """The width in points of the widest of `texts` by dot's own text measure (a generous estimate
    when dot is missing: the DOT source still works)."""
    g = Diagram(engine="dot", node_attr={"fontname": FONT, "fontsize": f"{fontsize:g}", "shape": "plaintext",
                                         "margin": "0", "width": "0", "height": "0"})
    for i, text in enumerate(texts):
        g.node(f"b{i}", label=_html(text))
    try:
        plain = g.pipe(format="plain", encoding="utf-8")
    except GraphvizNotFound:
        return max(0.65 * fontsize * len(line) for text in texts for line in text.split("\n"))
    return max(float(line.split()[4]) * 72 for line in plain.splitlines() if line.startswith("node "))


def _line(color: str, width: float) -> str:
    """A legend cell holding a short horizontal line of this colour and width."""
    px = max(1, round(width))
    return (f'<TD><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0"><TR><TD HEIGHT="{(16 - px) // 2}"></TD></TR>'
            f'<TR><TD BGCOLOR="{color}" WIDTH="30" HEIGHT="{px}" FIXEDSIZE="TRUE"></TD></TR>'
            f'<TR><TD HEIGHT="{(16 - px) // 2}"></TD></TR></TABLE></TD>')


def _legend(wmax: float, filled: bool) -> str:
    """The key: edge colour and width (up to `wmax`, the largest |w|), and the fill scale of activations."""
    def row(name: str, cells: str) -> str:
        return f'<TR><TD ALIGN="RIGHT">{name}</TD><TD ALIGN="LEFT"><TABLE BORDER="0" CELLSPACING="2" ' \
               f'CELLPADDING="0"><TR>{cells}</TR></TABLE></TD></TR>'
    widths = (f'{_line("#555555", 0.5)}<TD>|w| = 0</TD>{_line("#555555", 4)}<TD>|w| = {_esc(fmt(wmax))} '
              f'(the largest)</TD>' if wmax else f'{_line("#555555", 0.5)}<TD>|w| = 0 (every weight)</TD>')
    rows = [row("edge colour:", f'{_line(POSITIVE_WEIGHT, 2)}<TD>weight &gt; 0</TD>'
                                f'{_line(NEGATIVE_WEIGHT, 2)}<TD>weight &lt; 0</TD>'),
            row("edge width:", widths)]
    if filled:
        rows.append(row("fill = activation:", "".join(
            f'<TD BGCOLOR="{activation_color(a)}" WIDTH="32" FIXEDSIZE="TRUE" HEIGHT="18" BORDER="1" '
            f'COLOR="#BBBBBB"><FONT COLOR="{_text_color(a)}">{_esc(fmt(a))}</FONT></TD>'
            for a in (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0))))
    return f'<<TABLE BORDER="0" CELLSPACING="1" CELLPADDING="1">{"".join(rows)}</TABLE>>'
