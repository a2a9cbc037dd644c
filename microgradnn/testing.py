"""Gradient checks for tests: finite differences, PyTorch, modules, and node-by-node blame.

Defaults follow `torch.autograd.gradcheck`: eps=1e-6 (scaled as eps * max(1, |x|)),
atol=1e-5, rtol=1e-3; an entry passes when |analytic - reference| <= atol + rtol * |reference|.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from microgradnn.engine import Value, get_op, grad, no_grad, topological_order

__all__ = ["gradcheck", "assert_gradients_close", "assert_report", "gradgradcheck", "compare_with_torch",
           "check_module_gradients", "GradReport", "GradRow"]

OK, FAIL, KINK, NONFINITE = "ok", "FAIL", "non-differentiable", "non-finite"


@dataclass
class GradRow:
    """One checked entry: our value, the reference, their errors and the verdict."""
    name: str
    analytic: float
    reference: float
    status: str

    @property
    def abs_err(self) -> float:
        return abs(self.analytic - self.reference)

    @property
    def rel_err(self) -> float:
        return self.abs_err / abs(self.reference) if self.reference else (0.0 if not self.abs_err else math.inf)


@dataclass
class GradReport:
    """All rows of a check; truthy when nothing failed (kinks are flagged, not failed)."""
    title: str
    rows: list[GradRow]
    columns: tuple[str, str] = ("analytic", "numeric")
    culprit: str = ""

    def __bool__(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[GradRow]:
        return [r for r in self.rows if r.status in (FAIL, NONFINITE)]

    @property
    def kinks(self) -> list[GradRow]:
        return [r for r in self.rows if r.status == KINK]

    def worst(self) -> GradRow | None:
        return max(self.rows, key=_badness, default=None)

    def table(self, worst_first: bool = False) -> str:
        """The rows as an aligned text table, the worst row marked with `>`."""
        rows = sorted(self.rows, key=_badness, reverse=True) if worst_first else self.rows
        worst = self.worst()
        head = ["", "input", *self.columns, "abs err", "rel err", "status"]
        body = [[">" if r is worst and not r.status == OK else "", r.name, _num(r.analytic), _num(r.reference),
                 f"{r.abs_err:.2e}", f"{r.rel_err:.2e}", r.status] for r in rows]
        widths = [max(len(str(line[i])) for line in [head] + body) for i in range(len(head))]
        lines = [" ".join(str(c).ljust(w) if i in (0, 1, 6) else str(c).rjust(w)
                          for i, (c, w) in enumerate(zip(line, widths))).rstrip() for line in [head] + body]
        return "\n".join(lines)

    def summary(self) -> str:
        n, bad, kinks = len(self.rows), len(self.failures), len(self.kinks)
        verdict = f"{bad} of {n} entries FAILED" if bad else f"all {n - kinks} of {n} entries agree"
        if kinks:
            verdict += f"; {kinks} at a non-differentiable point (one-sided slopes differ), not checked"
        return f"{self.title}: {verdict}"

    def __str__(self) -> str:
        text = f"{self.summary()}\n{self.table(worst_first=not self)}"
        return f"{text}\n{self.culprit}" if self.culprit else text

    __repr__ = __str__


def _badness(r: GradRow) -> tuple:
    rank = {NONFINITE: 3, FAIL: 2, KINK: 1, OK: 0}[r.status]
    return rank, r.abs_err if math.isfinite(r.abs_err) else math.inf


def _num(x: float) -> str:
    return f"{x:.10g}"


def _close(a: float, ref: float, atol: float, rtol: float) -> bool:
    return abs(a - ref) <= atol + rtol * abs(ref)


# ---- inputs ----------------------------------------------------------------------------

def _flatten(inputs) -> tuple[list[str], list[float], Callable]:
    """Names, float values, and how to call f with Values (positional or by keyword)."""
    if isinstance(inputs, dict):
        names = list(inputs)
        values = [_float(inputs[k], k) for k in names]
        return names, values, lambda f, vs: f(**dict(zip(names, vs)))
    if isinstance(inputs, (int, float, np.number)):
        return ["x"], [_float(inputs, "x")], lambda f, vs: f(*vs)
    arr = np.asarray(inputs, dtype=float)
    names = [f"x[{', '.join(map(str, i))}]" for i in np.ndindex(arr.shape)]
    return names, [_float(v, n) for v, n in zip(arr.ravel().tolist(), names)], lambda f, vs: f(*vs)


def _float(x, name: str) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"input {name!r} must be a number, got {x!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"input {name!r} must be finite, got {x}")
    return x


def _output(f, call, values) -> Value:
    out = call(f, [Value(v, n) for v, n in values])
    if not isinstance(out, Value):
        raise TypeError(f"f must return a Value, got {type(out).__name__}")
    return out


# ---- finite differences ------------------------------------------------------------------

def _slopes(fn: Callable[[float], float], x: float, eps: float) -> tuple[float, float, float]:
    """Central, right and left difference quotients of fn at x (nan where fn fails)."""
    h = eps * max(1.0, abs(x))
    try:
        up, mid, down = fn(x + h), fn(x), fn(x - h)
    except (ArithmeticError, ValueError):
        return math.nan, math.nan, math.nan
    return (up - down) / (2 * h), (up - mid) / h, (mid - down) / h


def _verdict(analytic: float, central: float, right: float, left: float, atol: float, rtol: float) -> str:
    if not (math.isfinite(analytic) and math.isfinite(central)):
        return NONFINITE
    if not _close(right, left, atol, rtol):
        return KINK
    return OK if _close(analytic, central, atol, rtol) else FAIL


def _backward_grads(out: Value, wrt: list[Value]) -> list[float]:
    """d(out)/d(v) for each v in `wrt`, by `out.backward()`; every `.grad` in out's graph is
    put back as it was, and gradients already held by `wrt` do not leak into the result."""
    nodes = topological_order(out)
    saved = [v.grad for v in nodes]
    try:
        for v in wrt:
            v.grad = 0.0
        out.backward()
        return [v.grad for v in wrt]
    finally:
        for v, g in zip(nodes, saved):
            v.grad = g


def gradcheck(f: Callable[..., Value], inputs, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3) -> GradReport:
    """Compare backward()'s gradient of f at `inputs` with central finite differences.

    `inputs`: a number, a list or numpy array (f gets one Value per entry) or a dict of
    named numbers (f gets keyword arguments). Every `.grad` is left as it was found.
    """
    names, xs, call = _flatten(inputs)
    values = list(zip(xs, names))
    leaves = [Value(v, n) for v, n in values]
    out = call(f, leaves)
    if not isinstance(out, Value):
        raise TypeError(f"f must return a Value, got {type(out).__name__}")

    try:
        grads = _backward_grads(out, leaves)
    except (ValueError, OverflowError):
        grads = [math.nan] * len(xs)

    rows = []
    for i, (x, name) in enumerate(values):
        def at(t, i=i):
            with no_grad():
                return _output(f, call, [(t if j == i else v, n) for j, (v, n) in enumerate(values)]).data
        central, right, left = _slopes(at, x, eps)
        rows.append(GradRow(name, grads[i], central, _verdict(grads[i], central, right, left, atol, rtol)))
    report = GradReport(f"gradcheck of {_fname(f)} (eps={eps:g}, atol={atol:g}, rtol={rtol:g})", rows)
    if not report:
        report.culprit = blame(out, eps=eps, atol=atol, rtol=rtol)
    return report


def blame(out: Value, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> str:
    """The first node (in topological order) whose stored local derivative disagrees with
    finite differences of its op's forward; "" if every node agrees."""
    for v in topological_order(out):
        if not v.inputs:
            continue
        xs = [x.data for x in v.inputs]
        for i, x in enumerate(v.inputs):
            if not x.requires_grad:
                continue

            def fwd(t, i=i):
                return v._op.forward(*xs[:i], t, *xs[i + 1:])
            central, right, left = _slopes(fwd, xs[i], eps)
            local = v._local[i]
            if _verdict(local, central, right, left, atol, rtol) in (FAIL, NONFINITE):
                shown = ", ".join(f"{a.label}={a.data:.6g}" if a.label else f"{a.data:.6g}" for a in v.inputs)
                return (f"first wrong node: op {v.op!r} at {v.op}({shown}): d/d(input {i}) is "
                        f"{_num(local)} but finite differences give {_num(central)}")
    return ""


def _fname(f) -> str:
    return getattr(f, "__name__", type(f).__name__)


def assert_gradients_close(f: Callable[..., Value], inputs, *, eps: float = 1e-6, atol: float = 1e-5,
                           rtol: float = 1e-3) -> GradReport:
    """`gradcheck`, raising AssertionError with the table (worst input first) if any fails."""
    return assert_report(gradcheck(f, inputs, eps=eps, atol=atol, rtol=rtol))


def assert_report(report: GradReport) -> GradReport:
    """Raise AssertionError with the report's table (worst entry first) unless it passed."""
    if not report:
        raise AssertionError(str(report))
    return report


def gradgradcheck(f: Callable[..., Value], inputs, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3) -> GradReport:
    """Compare second derivatives from `grad(create_graph=True)` with finite differences of
    the first derivatives; one row per pair of inputs."""
    names, xs, call = _flatten(inputs)
    leaves = [Value(v, n) for v, n in zip(xs, names)]
    out = call(f, leaves)
    firsts = grad(out, leaves, create_graph=True)
    rows = []
    for i, gi in enumerate(firsts):
        second = grad(gi, leaves)
        for j, x in enumerate(xs):
            def first_at(t, i=i, j=j):
                vs = [Value(t if k == j else v, n) for k, (v, n) in enumerate(zip(xs, names))]
                return grad(call(f, vs), vs[i])[0]
            central, right, left = _slopes(first_at, x, eps)
            rows.append(GradRow(f"d2/d{names[i]} d{names[j]}", second[j], central,
                                _verdict(second[j], central, right, left, atol, rtol)))
    return GradReport(f"gradgradcheck of {_fname(f)} (eps={eps:g}, atol={atol:g}, rtol={rtol:g})", rows)


def compare_with_torch(f: Callable, inputs, *, atol: float = 1e-12, rtol: float = 1e-10) -> GradReport:
    """Run f on Values and on float64 torch tensors; compare the output and every gradient."""
    try:
        import torch
    except ImportError:
        raise ImportError("compare_with_torch needs PyTorch: pip install 'microgradnn[torch]' "
                          "(on this project's machines: pip install torch==2.13.0)") from None
    _teach_ops_torch(torch)
    names, xs, call = _flatten(inputs)
    leaves = [Value(v, n) for v, n in zip(xs, names)]
    out = call(f, leaves)
    grads = _backward_grads(out, leaves)
    tensors = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in xs]
    t_out = call(f, tensors)
    t_out.backward()
    pairs = [("output", out.data, t_out.item())]
    pairs += [(n, g, 0.0 if t.grad is None else t.grad.item()) for n, g, t in zip(names, grads, tensors)]
    rows = [GradRow(n, a, r, (OK if _close(a, r, atol, rtol) else FAIL) if math.isfinite(a) and math.isfinite(r)
                    else NONFINITE) for n, a, r in pairs]
    return GradReport(f"compare_with_torch of {_fname(f)} (atol={atol:g}, rtol={rtol:g})", rows,
                      columns=("microgradnn", "torch"))


def _teach_ops_torch(torch) -> None:
    """Let the engine's functions (`mg.tanh(x)`, `mg.dot`, ...) run on float64 tensors, so a
    function written with them compares on torch too instead of reading tensors as floats."""
    F = torch.nn.functional

    def t(x):
        return x if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float64)
    table = {name: getattr(torch, name) for name in ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin",
                                                     "cos", "abs", "neg")}
    table.update({
        "+": lambda a, b: t(a) + t(b), "-": lambda a, b: t(a) - t(b), "*": lambda a, b: t(a) * t(b),
        "/": lambda a, b: t(a) / t(b), "**": lambda a, b: t(a) ** t(b),
        "softplus": lambda a: F.softplus(t(a)), "leaky_relu": lambda a, s: F.leaky_relu(t(a), float(s)),
        "logsumexp": lambda *xs: torch.logsumexp(torch.stack([t(x) for x in xs]), 0),
        "dot": lambda *a: sum((t(w) * t(x) for w, x in zip(a[:len(a) // 2], a[len(a) // 2:-1])), t(a[-1])),
        "is_class": lambda a, k: (t(a) == t(k)).to(torch.float64),
    })
    for name, forward in table.items():
        op = get_op(name)
        if op.tensor_forward is None:
            op.tensor_forward = lambda *args, _f=forward, _t=t: _f(*map(_t, args)) if args else _f()


def check_module_gradients(model, loss_fn: Callable, X, y, *, sample: int | None = None, seed: int = 0,
                           eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> GradReport:
    """Check d(loss)/d(parameter) of `loss_fn([model(x) for x in X], y)` by finite differences,
    for every parameter or a seeded sample of `sample` of them; rows are named by
    `named_parameters()`. Parameters' data and `.grad` are restored afterwards."""
    X = np.asarray(X, dtype=float)
    named = model.named_parameters()
    if sample is not None and sample < len(named):
        picks = np.random.default_rng(seed).choice(len(named), size=sample, replace=False)
        named = [named[i] for i in sorted(picks)]

    def loss() -> Value:
        return loss_fn([model(x) for x in X], y)
    out = loss()
    grads = _backward_grads(out, [p for _, p in named])
    rows = []
    for (name, p), g in zip(named, grads):
        original = p.data

        def at(t, p=p):
            p.data = t
            with no_grad():
                return loss().data
        try:
            central, right, left = _slopes(at, original, eps)
        finally:
            p.data = original
        rows.append(GradRow(name, g, central, _verdict(g, central, right, left, atol, rtol)))
    report = GradReport(f"check_module_gradients of {model!r} (eps={eps:g}, atol={atol:g}, rtol={rtol:g})", rows)
    if not report:
        report.culprit = blame(out, eps=eps, atol=atol, rtol=rtol)
    return report
