"""`animate`: one self-contained HTML page that steps through forward and backward passes.

The page is the template `animation.html` (package data) with the graph's SVG, the steps
and the shared player (`player.js`) filled in.
"""
from __future__ import annotations

import os
from collections import Counter
from numbers import Real

from microgradnn._checks import flag, is_finite, shown as _shown
from microgradnn.engine import Value
from microgradnn.viz.format import _visible, check_title, cut_sum, derivative, fmt, grouped
from microgradnn.viz.graph import _plan, draw_graph
from microgradnn.viz.page import ask, inline_svg, page_path, script_json, write_page


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 3}


def _infix(v: Value) -> str | None:
    """The symbol of v's infix op when captions write v as an expression (no label, short), else None."""
    op = v._op
    return op.symbol if op is not None and op.infix and len(v.inputs) == 2 and not v.label else None


def _names(drawn: list[Value]) -> dict[int, str]:
    """What captions call each node: its label, else the expression that made it when short
    (`x1*w1 + x2*w2`, `(x + 2)*3`), else `the tanh node`; plain numbers by their value."""
    names: dict[int, str] = {}

    def name(v: Value) -> str:
        if id(v) in names:
            return names[id(v)]
        if v.label or not v.inputs:  # a label as the picture writes it (`\x00`, `\u202e`: see _visible)
            return _visible(v.label) if v.label else fmt(v.data)
        parts = [name(x) for x in v.inputs]
        op = v._op
        assert op is not None  # an interior node
        if op.infix and len(parts) == 2:
            parts = [_operand(op.symbol, x, part, i) for i, (x, part) in enumerate(zip(v.inputs, parts))]
            text = f"{parts[0]}{op.symbol}{parts[1]}" if op.symbol in "*/" else f"{parts[0]} {op.symbol} {parts[1]}"
        else:
            text = f"{op.symbol}({', '.join(parts)})"
        return text if len(text) <= 28 else f"the {op.symbol} node"

    def _operand(symbol: str, x: Value, part: str, i: int) -> str:
        """`part` in parentheses where the expression would otherwise read differently."""
        inner = _infix(x) if not part.startswith("the ") else None
        if inner is None:  # a label, a number or a function call: parentheses only for a negative number
            if x.label:  # or a label that is no plain name: `(a+b)*c`, never `a+b*c`
                return grouped(part)
            if part.startswith("the "):  # `a*(the + node)`, never `a*the + node`
                return f"({part})"
            negative = not x.inputs and part.startswith("-")
            return f"({part})" if negative and (symbol == "**" or i == 1) else part
        mine, theirs = _PRECEDENCE.get(symbol), _PRECEDENCE.get(inner)
        if mine is None or theirs is None:  # an infix Op of one's own: no precedence to lean on
            return f"({part})"
        # ** groups from the right (a**b**c is a**(b**c)); the others from the left (a - b - c)
        looser = theirs < mine or (theirs == mine and (i == 0 if symbol == "**" else i == 1))
        return f"({part})" if looser else part

    for v in drawn:
        names[id(v)] = name(v)
    # nodes that read the same (33 x `v*0.001`, many `the + node`) are numbered in forward order
    counts = Counter(names[id(v)] for v in drawn)
    nth: Counter[str] = Counter()
    for v in drawn:
        text = names[id(v)]
        if counts[text] > 1:
            nth[text] += 1
            names[id(v)] = f"{text} #{nth[text]}"
    return names


def _local_name(parent: Value, i: int, names: dict[int, str]) -> str:
    """How a caption writes d(parent)/d(input i): the other factor of a product, 1 for a sum."""
    op, inputs = parent.op, parent.inputs
    if op == "*" and len(inputs) == 2:
        return grouped(names.get(id(inputs[1 - i]), fmt(inputs[1 - i].data)))  # (x + 3) × grad, not x + 3 × grad
    if op == "+" or (op == "-" and i == 0):
        return "1"
    return derivative(names[id(parent)], names.get(id(inputs[i]), fmt(inputs[i].data)))


def animation_steps(root: Value, max_nodes: int = 300) -> list[dict]:
    """The animation's script: forward (each computed node in topological order, with its
    local derivatives), then backward (each node in reverse order, when its grad is final).
    Each step names the drawn node by its id in `draw_graph(root)`, what its cell shows, and a caption."""
    if not isinstance(root, Value):
        raise TypeError(f"animation_steps: expected a Value, got {type(root).__name__}")
    plan = _plan(root, show_constants=False, collapse=False, max_nodes=max_nodes, who="animation_steps")
    return _steps(root, plan.ids, plan.values, "animation_steps")


def _steps(root: Value, plan_ids: dict[int, str], drawn: list[Value], who: str) -> list[dict]:
    names = _names(drawn)
    unset = next((v for v in drawn if v.requires_grad and v.grad is None), None)
    if unset is not None:  # zero_grad(set_to_none=True) since the last backward
        raise ValueError(f"{who}: root.backward() must have run: the grad of {names[id(unset)]} is None")
    odd = next((v for v in drawn if v.requires_grad and not is_finite(v.grad)), None)
    if odd is not None:  # set by hand: backward() gives finite numbers
        raise (ValueError if isinstance(odd.grad, Real) else TypeError)(
            f"{who}: the grad of {names[id(odd)]} must be a finite number, got {_shown(odd.grad)} "
            f"(was it set by hand?)")
    shown = {id(v) for v in drawn}
    uses: dict[int, list[tuple[Value, int]]] = {}
    for p in drawn:
        for i, x in enumerate(p.inputs):
            uses.setdefault(id(x), []).append((p, i))
    steps: list[dict] = []
    for v in drawn:
        if not v.inputs:
            continue
        vid, name = plan_ids[id(v)], names[id(v)]
        args = ", ".join(f"{names.get(id(x), fmt(x.data))} = {fmt(x.data)}"
                         if names.get(id(x), fmt(x.data)) != fmt(x.data) else fmt(x.data) for x in v.inputs)
        wanted = [i for i, x in enumerate(v.inputs) if id(x) in shown and x.requires_grad]
        local = "; ".join(f"{derivative('', names.get(id(v.inputs[i]), fmt(v.inputs[i].data)))} = {fmt(v._local[i])}"
                          for i in wanted) or "none needed (no input requires a gradient)"
        steps.append({"id": vid, "kind": "data", "text": f"data {fmt(v.data)}",
                      "locals": [f"{plan_ids[id(v.inputs[i])]}-op{vid[1:]}-{i}" for i in wanted],
                      "title": f"Forward: {name}",
                      "caption": f"The {v.op} node computes its value from its inputs ({args}) and, at the same time, "
                                 f"its local derivatives (the red numbers on its input edges).",
                      "equation": f"{name} = {fmt(v.data)}; local derivatives: {local}",
                      "ask": ask(f"What is the value of {name}?", v.data)})
    for v in reversed(drawn):
        if not v.requires_grad:  # drawn with "no grad": backward computes nothing for it
            continue
        vid, name = plan_ids[id(v)], names[id(v)]
        if v is root:
            equation = (f"grad of {name} = 1 ({derivative(name, name)})" if v.grad == 1.0 else
                        f"grad of {name} = {fmt(v.grad)} (given: what the backward pass brought to it)")
            caption = "Backward starts at the output."
            if v.grad == 0:  # most often a backward() forgotten: every grad below would be 0 too, unexplained
                caption += (" Its grad is 0, where backward() starts it at 1: if backward() has not run, the "
                            "grads shown are not a backward pass.")
        else:
            mine = [(p, i) for p, i in uses.get(id(v), [])]
            symbolic = cut_sum([f"{_local_name(p, i, names)} × grad({names[id(p)]})" for p, i in mine])
            numbers = cut_sum([f"{fmt(p._local[i])} × {fmt(p.grad)}" for p, i in mine])
            op = "+=" if len(mine) == 1 and not v.inputs else "="
            caption = (f"Chain rule: {name} is used {len(mine)} time{'s' if len(mine) != 1 else ''}; each use adds "
                       f"its local derivative times the grad of the node it feeds.")
            terms = [p._local[i] * p.grad for p, i in mine]
            held = v.grad - sum(terms)  # what the grad held before this pass (0 but for rounding, normally)
            if abs(held) > 1e-9 * max(abs(v.grad), *map(abs, terms)):
                op, symbolic, numbers = "=", f"{symbolic} + what it held", f"{numbers} + {grouped(fmt(held))}"
                caption += (f" It held {fmt(held)} already: grads add up over backward() calls until zero_grad(), "
                            f"and over uses outside this graph.")
            equation = f"grad of {name} {op} {symbolic} = {numbers} = {fmt(v.grad)}" if mine else \
                f"grad of {name} = {fmt(v.grad)}"
        steps.append({"id": vid, "kind": "grad", "text": f"grad {fmt(v.grad)}", "title": f"Backward: grad of {name}",
                      "caption": caption, "equation": equation,
                      "ask": None if v is root else ask(f"What is the grad of {name}?", v.grad)})
    return steps


def animate(root: Value, path: str | os.PathLike, *, title: str = "Backpropagation, step by step",
            quiz: bool = False, max_nodes: int = 300, overwrite: bool = False) -> str:
    """Write one self-contained HTML page to `path` (a .html or .htm name; inline SVG and script,
    nothing fetched) that steps through the forward pass node by node, then the backward pass;
    play/pause, step buttons, a slider, and the keys Space, Left, Right, Home, End.
    `root.backward()` must have run.
    `quiz=True` asks the learner for each value and grad before showing it, and keeps a score.
    Open `page.html#step=N` to start at step N."""
    if not isinstance(root, Value):
        raise TypeError(f"animate: expected a Value, got {type(root).__name__}")
    flag(quiz, "animate", "quiz")
    check_title(title, "animate", optional=False)
    path = page_path(path, overwrite, "animate")
    plan = _plan(root, show_constants=False, collapse=False, max_nodes=max_nodes, who="animate")
    steps = _steps(root, plan.ids, plan.values, "animate")
    svg = inline_svg(draw_graph(root, view="both", max_nodes=max_nodes).pipe(format="svg", encoding="utf-8"))
    intro = ("Leaves hold their data. Press play (Space) or step (Right arrow): the forward pass computes each "
             "node and its local derivatives, then the backward pass each grad."
             + (" Quiz: type each value before it is shown." if quiz else ""))
    return write_page("animation.html", path, title=title, svg=svg, steps=script_json(steps),
                      quiz=script_json(bool(quiz)), intro=script_json(intro), overwrite=overwrite, who="animate")
