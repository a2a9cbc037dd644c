"""`animate`: one self-contained HTML page that steps through forward and backward passes.

The page is the template `animation.html` (package data) with the graph's SVG and the
steps filled in.
"""
from __future__ import annotations

import html
import json
import os
import string
from importlib import resources

from microgradnn._files import check_writable, write_atomic
from microgradnn.engine import Value
from microgradnn.viz.format import _visible, fmt
from microgradnn.viz.graph import _plan, draw_graph


def animation_steps(root: Value, max_nodes: int = 300) -> list[dict]:
    """The animation's script: forward (each computed node in topological order), then
    backward (each node in reverse order, when its grad is final). Each step names the
    drawn node by its id in `draw_graph(root)`, what its cell shows, and a caption."""
    plan = _plan(root, show_constants=False, collapse=False, max_nodes=max_nodes)
    return _steps(root, plan.ids, plan.values)


def _steps(root: Value, plan_ids: dict[int, str], drawn: list[Value]) -> list[dict]:
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


def _script_json(data) -> str:
    """JSON safe inside <script>: no `<`, `>`, `&` or line separators as themselves, so no text
    (`</script>`, `<!--`) can end the script or change how the page parses."""
    text = json.dumps(data)  # ASCII only: line separators and lone surrogates come out escaped
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, esc)
    return text


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
    steps = _steps(root, plan.ids, plan.values)
    template = string.Template(resources.files(__package__).joinpath("animation.html").read_text("utf-8"))
    page = template.substitute(title=html.escape(_visible(title)), n=len(steps), svg=svg,
                               steps=_script_json(steps))
    write_atomic(path, page.encode(), overwrite=overwrite, who="animate")
    return path
