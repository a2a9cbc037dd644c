"""What every picture shares: the Diagram type, its errors, colours, fonts, and label formatting.

Every label is an escaped HTML-like label, so no user text can inject DOT or markup.
"""
from __future__ import annotations

import html
import math
import re

from typing import Any

import graphviz

from microgradnn.engine import Value, fmt  # noqa: F401  (fmt: numbers as every picture shows them)

MAX_NODES = 2000


def check_layout(view: str, rankdir: str, who: str) -> None:
    """Refuse a `view` or `rankdir` a graph drawing does not know."""
    if view not in ("forward", "backward", "both"):
        raise ValueError(f"{who}: view must be 'forward', 'backward' or 'both', got {view!r}")
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"{who}: rankdir must be one of LR, TB, RL, BT, got {rankdir!r}")


def check_title(title: object, who: str, optional: bool = True) -> None:
    """Refuse a title that is not a str (None too, unless `optional`: a picture would read "None" or "5")."""
    if not isinstance(title, str) and not (optional and title is None):
        rule = "a str or None" if optional else "a str"
        raise TypeError(f"{who}: title must be {rule}, got {type(title).__name__} {title!r:.60}")


FONT = "Helvetica"
COLORS = {"parameter": "#FFE8B0", "input": "#D6EAF8", "intermediate": "#FFFFFF", "output": "#D5F5E3",
          "constant": "#F2F2F2", "op": "#EEEEEE", "edge": "#555555", "local": "#B03A2E",
          "highlight": "#D62728", "highlight_fill": "#FADBD8"}
INSTALL_HINT = ("Graphviz's `dot` program was not found on PATH, so nothing can be rendered "
                "(DOT source still works). Install it: Debian/Ubuntu `sudo apt-get install graphviz`, "
                "macOS `brew install graphviz`, conda `conda install graphviz`.")


class GraphvizNotFound(RuntimeError):
    """Rendering needs Graphviz's `dot` program, which is not installed."""


class GraphTooLarge(ValueError):
    """The graph has more nodes than `max_nodes`; drawing it would take dot minutes. `nodes` is how
    many nodes the drawing needs (None when the graph is too tangled for dot rather than too big)."""

    def __init__(self, message: str, nodes: int | None = None) -> None:
        super().__init__(message)
        self.nodes = nodes


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
        except Exception as e:  # a notebook must always get something to show, and why it is no picture
            return {"text/plain": f"{self.source}\n(no picture: {e})"}


# Characters XML 1.0 forbids (Graphviz's label parser stops at them), and the invisible direction
# controls (U+202E turns the rest of a caption around: "= 1.5" reads "5.1 ="): shown as \xNN, \u202e.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
                            "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(text: str) -> str:
    """`text` with every character XML cannot hold, or that reorders text, written as its escape (`\x01`)."""
    return _XML_FORBIDDEN.sub(lambda m: repr(m.group())[1:-1], str(text))


MAX_LABEL = 500  # characters drawn of one text: dot refuses a label of more than 16,384 once escaped


def _drawn(text: str) -> str:
    """`text` as a picture draws it: visible (see _visible), and only its start when very long."""
    text = _visible(text)
    return text if len(text) <= MAX_LABEL else f"{text[:MAX_LABEL - 40]}... ({len(text):,} characters)"


def _esc(text: str) -> str:
    """Escape text for an HTML-like label (so no label can inject DOT or markup)."""
    return html.escape(_drawn(text), quote=True).replace("\\", "\\\\").replace("\n", "<BR/>")


def _html(text: str) -> str:
    """An HTML-like label showing `text` literally (DOT's backslash escapes included)."""
    text = _esc(text)
    # dot's parser refuses a label of only tabs or carriage returns; a space in front it takes
    return f"< {text}>" if text.isspace() else f"<{text}>"


_PLAIN = re.compile(r"[\w.]+")  # a name like x, w1, b_2 or 0.5: nothing in it can bind to its neighbours


def grouped(name: str) -> str:
    """`name` bare when plain (x, w1, 2), else in parentheses, so nothing written next to it binds into it."""
    return name if not name or _PLAIN.fullmatch(name) else f"({name})"


def derivative(of: str, wrt: str) -> str:
    """`∂of/∂wrt` as every picture writes it: `∂/∂((x + 2)*3)`, `∂y/∂x`; `of` may be empty (`∂/∂x`)."""
    return f"∂{grouped(of)}/∂{grouped(wrt)}"


def cut_sum(terms: list[str], limit: int = 6) -> str:
    """The terms of a sum joined by +, after the first `limit` only how many more there are."""
    more = f" + … ({len(terms) - limit} more)" if len(terms) > limit else ""
    return " + ".join(terms[:limit]) + more


def _fixed_label(text: str) -> str:
    """An edge label of fixed size, so changing numbers never move the layout."""
    return (f'<<TABLE BORDER="0" CELLPADDING="0" CELLSPACING="0"><TR><TD WIDTH="70" HEIGHT="12" '
            f'FIXEDSIZE="TRUE">{_esc(text)}</TD></TR></TABLE>>')


def _cells(cells: list[tuple[str, str]], fill: str, node_id: str) -> str:
    """A one-row table label; number cells get a fixed width so frames share a layout, and the others
    (a label, the same in every frame) at least their estimated width, growing to fit wide letters."""
    tds = "".join(f'<TD ID="{node_id}_{kind}" WIDTH="{_width(kind, text)}" '
                  f'HEIGHT="{22 * (_drawn(text).count(chr(10)) + 1)}"{_FIXED if kind in _NUMBERS else ""}>'
                  f'{_esc(text)}</TD>'
                  for kind, text in cells)
    return f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3" BGCOLOR="{fill}"><TR>{tds}</TR></TABLE>>'


_NUMBERS = ("data", "grad")  # the cells whose text changes from frame to frame
_FIXED = ' FIXEDSIZE="TRUE"'


def _width(kind: str, text: str) -> int:
    """Numbers get one fixed width (so every frame of a recording has the same layout)."""
    if kind in _NUMBERS:
        return 110  # "grad -8.888e+300", the widest a number is written, with the cell's padding
    return max(30, 7 * max(map(len, _drawn(text).split("\n"))) + 10)  # as drawn: \x01 is 4 characters


def _value_cells(v: Value, view: str) -> list[tuple[str, str]]:
    cells = [("label", v.label)] if v.label else []
    cells.append(("data", f"data {fmt(v.data)}"))
    if view in ("backward", "both"):  # no gradient is computed for a Value that does not require one
        cells.append(("grad", f"grad {fmt(v.grad)}" if v.requires_grad else "no grad"))
    return cells


def _grad_color(g: float, scale: float) -> str:
    """White for 0, deeper red for positive and blue for negative gradients (up to the largest finite
    |gradient|, `scale`; an infinite one deepest), grey for NaN."""
    if g != g:
        return "#BBBBBB"
    t = 1.0 if math.isinf(g) else 0.0 if scale == 0 else min(1.0, abs(g) / scale) ** 0.5
    shade = int(round(255 - 150 * t))
    return f"#FF{shade:02X}{shade:02X}" if g > 0 else f"#{shade:02X}{shade:02X}FF" if g < 0 else "#FFFFFF"
