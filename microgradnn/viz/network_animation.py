"""`animate_network`: one HTML page of a network computing, neuron by neuron and layer by layer.

Everything shown is computed here with the engine (Values, `backward()`, an SGD step) on a copy
of the model; the page (`network_animation.html` with `player.js`) only displays the numbers.
"""
from __future__ import annotations

import copy
import numbers
import os
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np

from microgradnn import losses as _losses
from microgradnn._checks import flag, is_finite, number, shown
from microgradnn.engine import Value, enable_grad, fmt, grad, no_grad, reworded
from microgradnn.nn.module import Module, as_inputs
from microgradnn.optim import SGD
from microgradnn.viz.network import (MAX_ELEMENTS, NEGATIVE_WEIGHT, POSITIVE_WEIGHT, PREDICTION_GAP, _text_color,
                                     activation_color, check_elements, draw_network, layers_of, network_input,
                                     place_prediction, prediction_words, text_width)
from microgradnn.viz.format import check_title, cut_sum, derivative
from microgradnn.viz.page import ask, inline_svg, page_path, script_json, write_page

UNKNOWN = "#F2F2F2"
D_OUT, D_RAW, D_W, D_B = (derivative("L", name) for name in ("out", "raw", "w", "b"))  # ∂L/∂out, ...
# How each activation's derivative is worked out from its input `raw` and output `out`.
DERIVATIVE_RULES = {
    "relu": lambda raw, out, d: f"relu'({raw}) = {'1 (raw > 0)' if d else '0 (raw ≤ 0)'}",
    "leaky_relu": lambda raw, out, d:
        f"leaky_relu'({raw}) = {fmt(d)} ({'raw > 0' if d == 1 else 'raw ≤ 0: the slope'})",
    "sigmoid": lambda raw, out, d: f"sigmoid'(raw) = out × (1 - out) = {out} × (1 - {out}) = {fmt(d)}",
    "tanh": lambda raw, out, d: f"tanh'(raw) = 1 - out² = 1 - {_paren(out)}² = {fmt(d)}",
    "linear": lambda raw, out, d: "the identity's derivative is 1",
}


def _paren(a: str) -> str:
    """A shown number, in parentheses when negative (so `0.5 × (-0.4)` reads right)."""
    return f"({a})" if a.startswith("-") else a


def _term(a: str, b: str) -> str:
    return f"{_paren(a)} × {_paren(b)}"


def _width(x: float, largest: float) -> str:
    return f"{1.0 + 5.0 * abs(x) / largest:.2f}" if largest else "1.00"


def _weight_style(w: float, wmax: float) -> list:
    return [POSITIVE_WEIGHT if w >= 0 else NEGATIVE_WEIGHT, f"{0.5 + 3.5 * abs(w) / wmax:.2f}"]


def _node_state(a: float) -> list:
    return [f"{a:.3g}", activation_color(a), _text_color(a)]


def _resolve_loss(loss, model):
    if loss is None:
        return _losses.binary_cross_entropy if model.output_activation == "sigmoid" else _losses.mse
    if isinstance(loss, str):
        if loss not in _losses.LOSSES:
            raise ValueError(f"animate_network: unknown loss {loss!r}; choose one of {', '.join(_losses.LOSSES)}")
        return _losses.LOSSES[loss]
    if not callable(loss):
        raise TypeError(f"animate_network: loss must be a loss function or its name, got {type(loss).__name__}")
    return loss


def _check_target(target) -> None:
    """A target is a number (a bool is a 0/1 label, as the losses take it) or a sequence of them."""
    items = [target] if isinstance(target, numbers.Real) else None
    if items is None and isinstance(target, (list, tuple, np.ndarray)) and not isinstance(target, str):
        items = list(np.asarray(target, dtype=object).reshape(-1))
    if items is None or not all(isinstance(t, numbers.Real) for t in items):
        raise TypeError(f"animate_network: target must be a number or a sequence of numbers, got "
                        f"{type(target).__name__} {target!r:.60}")
    bad = [t for t in items if not is_finite(int(t) if isinstance(t, bool) else t)]
    if bad:
        raise ValueError(f"animate_network: target must be finite, got {shown(bad[0])}")


@contextmanager
def _too_large(lr: float) -> Iterator[None]:
    """The gradient-descent step and the forward pass after it, whose overflow is the learning rate's doing."""
    try:
        yield
    except OverflowError as e:
        raise ValueError(f"animate_network: lr={lr:g} is too large: one gradient-descent step overflows ({e}); "
                         f"give a smaller lr") from e


def _loss(loss_fn, h: list, target, when: str) -> Value:
    """The loss of the outputs `h`; a loss refusing them names animate_network and the target."""
    try:
        return loss_fn([h if len(h) > 1 else h[0]], [target])
    except (TypeError, ValueError) as e:
        name = getattr(loss_fn, "__name__", "loss")
        raise reworded(e, f"animate_network: loss {name} refused target={target!r:.60} with the "
                          f"prediction{when}: {e}") from e


def _target_text(target) -> str:
    """The target as the page writes it: as every number (`fmt`: a bool is 1 or 0), a sequence of one
    as its number, a longer one in brackets."""
    items: list = [target] if isinstance(target, numbers.Real) else list(np.asarray(target, dtype=object).reshape(-1))
    shown = [fmt(t) for t in items]
    return shown[0] if len(shown) == 1 else f"[{', '.join(shown)}]"


def _loss_equations(loss_fn, p: Value, t: str, value: float, g: float) -> tuple[str, str]:
    """How the loss and dL/d(prediction) are worked out, for the two losses with one output (target `t` as shown)."""
    name = getattr(loss_fn, "__name__", "loss")
    if loss_fn is _losses.mse:
        return (f"L = (prediction - target)² = ({fmt(p.data)} - {_paren(t)})² = {fmt(value)}",
                f"{D_OUT} = 2 × (prediction - target) = 2 × ({fmt(p.data)} - {_paren(t)}) = {fmt(g)}")
    if loss_fn is _losses.binary_cross_entropy:
        given = f"with p = {fmt(p.data)}, t = {t}: "
        return (given + f"L = -(t·log p + (1 - t)·log(1 - p)) = {fmt(value)}",
                given + f"{D_OUT} = -t/p + (1 - t)/(1 - p) = {fmt(g)}")
    return (f"L = {name}(prediction, target {t}) = {fmt(value)}",
            f"{D_OUT} = {fmt(g)} (backward() through {name})")


def network_steps(model, x, *, target=None, loss=None, lr: float = 0.1) -> tuple[list[dict], dict, dict]:
    """The page's steps, its initial state and what it shows at the start, computed with the
    engine on a copy of `model` (the model itself and its gradients are left untouched)."""
    layers_of(model, "animate_network")
    if loss is not None and target is None:
        raise ValueError("animate_network: loss= needs target= (the label the loss compares the prediction with)")
    number(lr, "animate_network", "lr", 0.0, lo_open=True)
    if target is not None:
        _check_target(target)
    work = copy.deepcopy(model)
    work.zero_grad()  # grads left by an earlier backward() would add into this input's
    # every derivative is shown as backprop defines it; a frozen parameter is only left out of the step
    frozen = {id(p) for p in work.parameters() if not p.requires_grad}
    work.requires_grad_(True)
    layers = layers_of(work, "animate_network")
    xs = as_inputs(network_input(x, layers[0].nin, "animate_network"), layers[0].nin, "animate_network")
    steps: list[dict] = []
    wmax = max(abs(w.data) for layer in layers for n in layer.neurons for w in n.w) or 1.0

    # ---- forward: each neuron's sum, then its activation ----
    h, record = xs, []
    for li, layer in enumerate(layers):
        names = [f"x{i}" for i in range(len(h))] if li == 0 else [f"n{i}" for i in range(len(h))]
        outs = []
        for j, n in enumerate(layer.neurons):
            out = n(h)
            raw = out if n.activation == "linear" else out.inputs[0]
            where = f"layer {li} ({n.activation}), neuron n{j}"
            nid = f"L{li + 1}N{j}"
            with no_grad():
                products = [(w * hi).data for w, hi in zip(n.w, h)]
            largest = max(map(abs, products))
            terms = [_term(fmt(w.data), fmt(hi.data)) for w, hi in zip(n.w, h)]
            steps.append({
                "title": f"Forward · {where}: weighted sum", "active": [nid],
                "caption": f"Neuron n{j} multiplies each input by its weight (the lit edges, thicker for a larger "
                           f"w·x), adds them up and adds its bias b.",
                "equation": f"w·x + b = {cut_sum(terms)} + {_paren(fmt(n.b.data))} = {fmt(raw.data)}",
                "ask": ask(f"What is w·x + b for {where}?", raw.data),
                "nodes": {nid: [f"Σ {raw.data:.3g}", UNKNOWN, "#000000"]},
                "lit": {f"L{li}N{i}-{nid}": [POSITIVE_WEIGHT if p >= 0 else NEGATIVE_WEIGHT, _width(p, largest),
                                             f"{names[i]}·w = {fmt(p)}", 0.45] for i, p in enumerate(products)}})
            steps.append({
                "title": f"Forward · {where}: activation", "active": [nid], "done": [nid],
                "caption": f"Neuron n{j} applies its activation, {n.activation}, to the sum and passes the result on.",
                "equation": f"{n.activation}({fmt(raw.data)}) = {fmt(out.data)}",
                "ask": ask(f"What is {n.activation}({fmt(raw.data)}), the output of {where}?", out.data),
                "nodes": {nid: _node_state(out.data)}})
            outs.append(out)
            record.append((li, j, n, raw, out, h, names))
        h = outs
    prediction = [o.data for o in h]
    words = prediction_words(work, prediction)
    last = len(layers)
    shown = ", ".join(fmt(p) for p in prediction)
    steps.append({"title": "Prediction", "active": ["prediction"],
                  "caption": "The output layer's value is the network's prediction.",
                  "equation": f"prediction = {shown}  ->  {words}",
                  "boxes": {"prediction": ["prediction", shown, words]}})
    initial = {"nodes": {f"L{li + 1}N{j}": ["?", UNKNOWN, "#000000"] for li, j, *_ in record},
               "boxes": {"prediction": ["prediction", "?", ""]}}
    if target is None:
        return steps, initial, {"target": None}

    # ---- backward: the loss, then dL/d(out), the local derivative, dL/d(raw), dL/dw per neuron ----
    loss_fn = _resolve_loss(loss, work)
    loss_name = getattr(loss_fn, "__name__", "loss")
    value = _loss(loss_fn, h, target, "")
    value.backward()
    target_shown = _target_text(target)
    initial["boxes"]["loss"] = ["loss", "?", f"target {target_shown}"]
    single = len(h) == 1
    loss_eq, out_eq = _loss_equations(loss_fn, h[0], target_shown, value.data, h[0].grad) if single else (
        f"L = {loss_name}(outputs, target {target_shown}) = {fmt(value.data)}", "")
    steps.append({"title": f"Loss · {loss_name}", "active": ["loss"],
                  "caption": f"The loss measures how far the prediction is from the target {target_shown}; "
                             f"backpropagation now finds how each weight changed it.",
                  "equation": loss_eq, "ask": ask(f"What is the {loss_name} loss?", value.data),
                  "boxes": {"loss": ["loss", fmt(value.data), f"target {target_shown}"]}})
    by_layer: dict[int, list[tuple]] = {}
    for li, j, n, raw, out, inputs, names in record:
        by_layer.setdefault(li, []).append((j, n, raw, out, inputs, names))
    for li in reversed(range(last)):
        for j, n, raw, out, _inputs, names in by_layer[li]:
            nid, where = f"L{li + 1}N{j}", f"layer {li} ({n.activation}), neuron n{j}"
            if li == last - 1:
                eq = out_eq if single else f"{D_OUT} = {fmt(out.grad)} (backward() through {loss_name})"
                caption = "The gradient starts at the loss: how L changes with this output."
                lit = {}
            else:
                after = by_layer[li + 1]
                terms = [_term(fmt(m.w[j].data), fmt(r.grad)) for _, m, r, *_ in after]
                eq = f"{D_OUT} = Σ w × {D_RAW} over layer {li + 1} = {cut_sum(terms)} = {fmt(out.grad)}"
                caption = (f"n{j}'s output feeds every neuron of layer {li + 1}: its gradient is the sum of each "
                           f"edge's weight times that neuron's {D_RAW}.")
                lit = {f"{nid}-L{li + 2}N{k}": _weight_style(m.w[j].data, wmax) + [f"w = {fmt(m.w[j].data)}", 0.72]
                       for k, m, *_ in after}
            sides = [f"{D_OUT} = {fmt(out.grad)}"]
            steps.append({"title": f"Backward · {where}: {D_OUT}", "active": [nid], "caption": caption,
                          "equation": eq, "ask": ask(f"What is {D_OUT} for {where}?", out.grad),
                          "sides": {nid: sides}, "lit": lit})
            (d,) = grad(out, raw)  # the activation's local derivative, from the op table
            steps.append({"title": f"Backward · {where}: local derivative", "active": [nid],
                          "caption": f"The activation's local derivative: how {n.activation}'s output changes with "
                                     f"its input raw = {fmt(raw.data)}.",
                          "equation": DERIVATIVE_RULES[n.activation](fmt(raw.data), fmt(out.data), d),
                          "ask": ask(f"What is {n.activation}' at raw = {fmt(raw.data)} for {where}?", d)})
            sides = sides + [f"{D_RAW} = {fmt(raw.grad)}"]
            steps.append({"title": f"Backward · {where}: {D_RAW}", "active": [nid],
                          "caption": "Chain rule: the local derivative times the gradient from above.",
                          "equation": f"{D_RAW} = {n.activation}' × {D_OUT} = {_term(fmt(d), fmt(out.grad))} "
                                      f"= {fmt(raw.grad)}",
                          "ask": ask(f"What is {D_RAW} for {where}?", raw.grad), "sides": {nid: sides}})
            local = grad(raw, [*n.w, n.b], materialize_grads=True)  # ∂raw/∂w_i (the input x_i) and ∂raw/∂b (1)
            stays = [" (frozen: not stepped)" if id(p) in frozen else "" for p in (*n.w, n.b)]
            largest = max(abs(w.grad) for w in n.w)
            parts = [f"{derivative('L', f'w{i}')} = {names[i]} × {D_RAW} = {_term(fmt(local[i]), fmt(raw.grad))} "
                     f"= {fmt(w.grad)}{stays[i]}"
                     for i, w in enumerate(n.w)]
            parts.append(f"{D_B} = 1 × {D_RAW} = {fmt(n.b.grad)}{stays[-1]}")
            steps.append({"title": f"Backward · {where}: {D_W} for each incoming edge", "active": [nid],
                          "caption": f"Each weight's gradient is its input times {D_RAW} (the bias's input is 1).",
                          "equation": "; ".join(parts[:8]) + ("; …" if len(parts) > 8 else ""),
                          "ask": ask(f"What is {derivative('L', 'w0')}, the gradient of the weight from {names[0]} "
                                     f"into {where}?",
                                     n.w[0].grad),
                          "lit_is_answer": True,
                          "lit": {f"L{li}N{i}-{nid}": [POSITIVE_WEIGHT if w.grad >= 0 else NEGATIVE_WEIGHT,
                                                       _width(w.grad, largest), f"{D_W} = {fmt(w.grad)}", 0.5]
                                  for i, w in enumerate(n.w)}})

    # ---- one gradient-descent step, then the new prediction ----
    stepped = [(f"{name} of layer {li} n{j}", li, j, p) for li in reversed(range(last))
               for j, n in enumerate(layers[li].neurons)
               for name, p in [*((f"w{i}", w) for i, w in enumerate(n.w)), ("b", n.b)] if id(p) not in frozen]

    def weights() -> dict:
        return {f"L{li}N{i}-L{li + 1}N{j}": _weight_style(w.data, wmax)
                for li, layer in enumerate(layers) for j, n in enumerate(layer.neurons) for i, w in enumerate(n.w)}
    if not stepped:
        steps.append({"title": f"Gradient descent · learning rate {fmt(lr)}", "active": [],
                      "caption": "Every parameter is frozen (requires_grad=False): gradient descent changes none.",
                      "equation": "", "weights": weights()})
    else:
        name, li, j, first = stepped[0]
        before, g0 = first.data, first.grad
        with _too_large(lr):
            SGD([p for *_, p in stepped], lr=lr).step()
        kept = f"; the {len(frozen)} frozen ones stay" if frozen else ""
        steps.append({
            "title": f"Gradient descent · learning rate {fmt(lr)}", "active": [f"L{li + 1}N{j}"],
            "caption": f"{'Each unfrozen' if frozen else 'Every'} weight and bias takes a small step against its "
                       f"gradient: w ← w - {fmt(lr)} × {D_W} ({len(stepped)} parameters{kept}). Edge colours and "
                       f"widths show the new weights.",
            "equation": f"e.g. {name}: {fmt(before)} - {_term(fmt(lr), fmt(g0))} = {fmt(first.data)}",
            "ask": ask(f"What is the new {name.replace(' n', ' neuron n')}?", first.data),
            "weights": weights()})
    with no_grad(), _too_large(lr):
        h, nodes = xs, {}
        for li, layer in enumerate(layers):
            h = layer(h)
            nodes.update({f"L{li + 1}N{j}": _node_state(v.data) for j, v in enumerate(h)})
        new_value = _loss(loss_fn, h, target, f" after one gradient-descent step (lr={lr:g})").data
    new_prediction = [v.data for v in h]
    new_shown = ", ".join(fmt(p) for p in new_prediction)
    new_words = prediction_words(work, new_prediction)
    steps.append({"title": "New prediction, after one step", "active": ["prediction", "loss"],
                  "caption": "The same input through the updated network: the loss "
                             + ("went down." if new_value < value.data else
                                "stayed the same." if new_value == value.data else
                                "went up (the learning rate is too large)."),
                  "equation": f"prediction {shown} -> {new_shown} ({new_words}); loss {fmt(value.data)} -> "
                              f"{fmt(new_value)}",
                  "nodes": nodes, "boxes": {"prediction": ["after one step", new_shown, new_words],
                                            "loss": ["loss", f"{fmt(value.data)} -> {fmt(new_value)}",
                                                     f"target {target_shown}"]}})
    return steps, initial, {"target": target, "loss": value.data, "new_loss": new_value,
                            "prediction": prediction, "new_prediction": new_prediction}


def animate_network(model: Module, x: Sequence[float] | np.ndarray, path: str | os.PathLike, *,
                    target: float | Sequence[float] | None = None, loss: str | Callable | None = None, lr: float = 0.1,
                    quiz: bool = False, title: str | None = None, max_elements: int = MAX_ELEMENTS,
                    overwrite: bool = False) -> str:
    """Write one self-contained HTML page to `path` (a .html or .htm name; nothing fetched) of
    `model`'s diagram computing input `x` neuron by neuron, layer by layer: each neuron's
    `w·x + b = raw` and `activation(raw) = out`, its edges lit by w·x, then the prediction in
    words. With `target` (and `loss`, default binary cross-entropy after a sigmoid, else mse) it
    goes on backward: the loss, each neuron's ∂L/∂out, local derivative, ∂L/∂raw and its edges'
    ∂L/∂w, then one gradient-descent step (`lr`) and the new prediction. `quiz=True` asks the
    learner for each value before showing it. The model is not changed. Controls as `animate`;
    `page.html#step=N` opens at step N. Raises GraphTooLarge above `max_elements` neurons plus weights."""
    flag(quiz, "animate_network", "quiz")
    check_title(title, "animate_network")
    layers = layers_of(model, "animate_network")
    check_elements(layers, max_elements, "animate_network")
    x = network_input(x, layers[0].nin, "animate_network")
    path = page_path(path, overwrite, "animate_network")
    with enable_grad():  # its backward and step, inside the caller's no_grad() too
        steps, initial, _ = network_steps(model, x, target=target, loss=loss, lr=lr)
    work = copy.deepcopy(model)
    diagram = draw_network(work, x, title="", max_elements=max_elements)
    # the box as wide as anything it will show, clear of the output neurons' gradient labels
    # (the page writes them 4 points right of the circle in 9.5 px type: text.side)
    last = len(layers_of(work))
    boxes = [initial["boxes"]] + [s["boxes"] for s in steps if "prediction" in s.get("boxes", {})]
    sides = [line for s in steps for nid, lines in s.get("sides", {}).items() if nid.startswith(f"L{last}N")
             for line in lines]
    box_x = place_prediction(diagram, last, ["\n".join(b["prediction"]) for b in boxes],
                             4 + text_width(sides, 9.5) if sides else PREDICTION_GAP)
    if target is not None:
        diagram.node("loss", label="\n".join(initial["boxes"]["loss"]), shape="box", fixedsize="false", width="1.7",
                     style="rounded,filled", fillcolor="#FDEBD0", fontname="Helvetica", fontsize="11", id="loss",
                     pos=f"{box_x:.1f},-85!")
        diagram.edge("prediction", "loss", style="dashed", arrowhead="normal", color="#777777", id="prediction-loss")
    svg = inline_svg(diagram.pipe(format="svg", encoding="utf-8"))
    x_shown = ", ".join(fmt(v) for v in x)
    if title is None:
        title = f"{model!r} on input x = [{x_shown}]" + ("" if target is None else f", {initial['boxes']['loss'][2]}")
    intro = (f"The input x = [{x_shown}] enters on the left. Press play (Space) or step (Right arrow) to watch "
             f"each neuron compute w·x + b and its activation, layer by layer, up to the prediction"
             + ("; then the loss, the gradients flowing back, one gradient-descent step and the new prediction."
                if target is not None else ".")
             + (" Quiz: type each value before it is shown." if quiz else ""))
    return write_page("network_animation.html", path, title=title, svg=svg, steps=script_json(steps),
                      initial=script_json(initial), quiz=script_json(bool(quiz)), intro=script_json(intro),
                      overwrite=overwrite, who="animate_network")
