"""Gradient checks for tests: finite differences, PyTorch, modules, and node-by-node blame.

Tolerances follow `torch.autograd.gradcheck` (atol=1e-5, rtol=1e-3): an entry passes when
|analytic - reference| <= atol + rtol * |reference|. The numeric reference is a central
difference extrapolated twice (Richardson), accurate to about 1e-10 relative in float64, so
tolerances can be made far tighter. An entry counts as non-differentiable only where the
graph holds an op at its kink (relu, abs, leaky_relu at 0, or a `define_op(kinks=...)`) or
the one-sided slopes jump by the same amount (to 0.1%) at every step down to what rounding
resolves; even there the analytic value must be one of the one-sided slopes or lie between them,
and every node's local derivative must agree with its op (`blame`).
"""
from __future__ import annotations

import contextlib
import itertools
import math
import numbers
import sys
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, TypeVar, Union, cast

import numpy as np
from numpy.typing import ArrayLike

from microgradnn import engine
from microgradnn._checks import integer, number, positive_int
from microgradnn.engine import (Value, _check_unchanged, enable_grad, get_op, grad, no_grad, restore,
                                topological_order, version_of)

if TYPE_CHECKING:
    from microgradnn import viz
    from microgradnn.nn import Module

# a number, an array-like of numbers (positional inputs) or a dict of name -> number (keyword inputs)
Inputs = Union[float, ArrayLike, Mapping[str, float]]

__all__ = ["gradcheck", "assert_gradients_close", "assert_report", "gradgradcheck", "compare_with_torch",
           "check_module_gradients", "directional_check", "derivative", "blame", "GradReport", "GradRow",
           "Derivative", "Culprit"]

OK, FAIL, KINK, NONFINITE = "ok", "FAIL", "non-differentiable", "non-finite"
# kinks nearer than the smallest step on both sides, or a kink at the edge of f's domain: neither pass nor fail
UNCHECKABLE = "not checkable here"
CHAINED = "the ops' one-sided derivatives, chained"  # a row outside f's slopes, every node right (see _blame)
EPS = 1e-4  # first finite-difference step, relative: h = EPS * max(1, |x|)
_MACHINE_EPS = sys.float_info.epsilon
_VAGUE = 1e-3  # a reference less certain than this, relative, and than the tolerance, gives no verdict
_KINK_DRIFT = 1e-3  # how far a kink's slope jump may move from step to step, relative
# eps below loses the differences to rounding (nothing is left to measure under 1e-13); above,
# a first step wider than a tenth of x can average an oscillation away and seem settled
EPS_RANGE = (1e-12, 0.1)
MAX_WORK = 10**9  # nodes evaluated by a check's finite differences: about 10 minutes at 0.5 us a node


def _check_cost(who: str, evaluations: int, out: Value, what: str, hint: str) -> None:
    """Refuse, before the finite differences start, a check of more than MAX_WORK node evaluations."""
    nodes = len(topological_order(out))
    if evaluations * nodes > MAX_WORK:
        hours = evaluations * nodes * 5e-7 / 3600
        when = f"{hours:,.1f} hours" if hours >= 1 else f"{hours * 60:,.0f} minutes"
        raise ValueError(f"{who}: {what} takes at least {evaluations:,} evaluations of a {nodes:,}-node graph, "
                         f"{evaluations * nodes:.1e} nodes in all, more than MAX_WORK={MAX_WORK:,} (at about "
                         f"0.5 us a node, {when}); {hint}set "
                         f"microgradnn.testing.checks.MAX_WORK higher to run it anyway")


@dataclass
class GradRow:
    """One checked entry: our value, the reference, their errors and the verdict.

    `error` is the estimated error of the numeric reference and `step` the finite-difference
    step it used (nan for references that are not finite differences); `left` and `right`
    are the one-sided slopes, measured where the entry may be non-differentiable; `detail`
    says how the reference was measured where that is not the plain central difference.
    """
    name: str
    analytic: float
    reference: float
    status: str
    error: float = math.nan
    step: float = math.nan
    left: float = math.nan
    right: float = math.nan
    detail: str = ""

    @property
    def abs_err(self) -> float:
        return abs(self.analytic - self.reference)

    @property
    def rel_err(self) -> float:
        return self.abs_err / abs(self.reference) if self.reference else (0.0 if not self.abs_err else math.inf)

    @property
    def at_kink(self) -> bool:
        return not (math.isnan(self.left) or math.isnan(self.right))


@dataclass
class Culprit:
    """The first node whose local derivative is wrong: node, input index, and both values."""
    node: Value
    index: int
    analytic: float
    numeric: float

    def __str__(self) -> str:
        v = self.node
        shown = ", ".join(f"{a.label}={a.data:.6g}" if a.label else f"{a.data:.6g}" for a in v.inputs)
        a, n = _nums(self.analytic, self.numeric)
        return (f"first wrong node: op {v.op!r} at {v.op}({shown}): d/d(input {self.index}) is "
                f"{a} but finite differences give {n}")


@dataclass
class GradReport:
    """All rows of a check; truthy when nothing failed (kinks are flagged, not failed).

    `graph` is the checked output Value (when there is one), `culprit` the first wrong node
    found in it, `evaluations` how many times the function was evaluated for the reference.
    """
    title: str
    rows: list[GradRow]
    columns: tuple[str, str] = ("analytic", "numeric")
    culprit: Culprit | None = None
    graph: Value | None = None
    evaluations: int = 0
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[GradRow]:
        return [r for r in self.rows if r.status in (FAIL, NONFINITE)]

    @property
    def kinks(self) -> list[GradRow]:
        return [r for r in self.rows if r.status == KINK]

    @property
    def unchecked(self) -> list[GradRow]:
        """Rows no finite difference can check at this point (kinks nearer than the smallest step on
        both sides, or a kink where f is undefined on one side)."""
        return [r for r in self.rows if r.status == UNCHECKABLE]

    def worst(self) -> GradRow | None:
        return max(self.rows, key=_badness, default=None)

    def table(self, worst_first: bool = False) -> str:
        """The rows as an aligned text table, the worst row marked with `>`."""
        rows = sorted(self.rows, key=_badness, reverse=True) if worst_first else self.rows
        worst = self.worst()
        numeric = any(not math.isnan(r.step) for r in self.rows)
        head = ["", "input", *self.columns] + (["± est", "step"] if numeric else []) + ["abs err", "rel err", "status"]
        body = []
        for r in rows:
            line = [">" if r is worst and not r.status == OK else "", r.name,
                    *(_nums(r.analytic, r.reference) if r.status == FAIL else map(_num, (r.analytic, r.reference)))]
            if numeric:
                line += [_sci(r.error), _sci(r.step)]
            status = r.status + (f" (one-sided slopes {_num(r.left)}, {_num(r.right)})" if r.at_kink and
                                 r.status != OK else "") + (f" ({r.detail})" if r.detail else "")
            body.append(line + [_sci(r.abs_err), _sci(r.rel_err), status])
        widths = [max(len(line[i]) for line in [head] + body) for i in range(len(head))]
        left = {0, 1, len(head) - 1}
        lines = [" ".join(c.ljust(w) if i in left else c.rjust(w)
                          for i, (c, w) in enumerate(zip(line, widths))).rstrip()
                 for line in [head] + body]
        return "\n".join(lines)

    def summary(self) -> str:
        n, bad, kinks, unchecked = len(self.rows), len(self.failures), len(self.kinks), len(self.unchecked)
        verdict = f"{bad} of {n} entries FAILED" if bad else f"all {n - kinks - unchecked} of {n} entries agree"
        if kinks:
            verdict += (f"; {kinks} at a non-differentiable point, where the analytic value is a valid "
                        f"one-sided derivative" + (" or the chain of the ops' own (see the note)"
                                                   if any(r.detail == CHAINED for r in self.kinks) else ""))
        if unchecked:
            verdict += (f"; {unchecked} not checkable here ({', '.join(r.name for r in self.unchecked[:5])}"
                        f"{' ...' if unchecked > 5 else ''}: a kink lies nearer than the smallest step on both sides "
                        f"or at the edge of f's domain, or rounding swamps the differences)")
        return f"{self.title}: {verdict}"

    def __str__(self) -> str:
        lines = [self.summary(), self.table(worst_first=not self), *self.notes]
        if self.culprit is not None:
            lines.append(str(self.culprit))
        return "\n".join(lines)

    __repr__ = __str__

    def draw(self, *, max_nodes: int = 300) -> viz.Diagram:  # type: ignore[return]  # the last attempt raises
        """The backward graph (as `viz.draw_graph` returns it) with the first wrong node and
        its edges highlighted and the analytic and numeric local derivatives written beside it.
        Large graphs are cut down to what the wrong node depends on, then collapsed by neuron."""
        from microgradnn import viz
        if self.graph is None:
            raise ValueError(f"{self.title}: this report has no graph to draw")
        root, mark = self.graph, None
        if self.culprit is not None:
            c = self.culprit
            mark = {c.node: f"first wrong node: {c.node.op}, input {c.index}\nlocal derivative: analytic "
                            f"×{_num(c.analytic)}, numeric ×{_num(c.numeric)}"}
        attempts: list[dict[str, Any]] = [dict(root=root), dict(root=root, collapse=True)]
        if self.culprit is not None:
            attempts.insert(1, dict(root=self.culprit.node))
        nodes = topological_order(root)
        saved = [v.grad for v in nodes]
        try:
            if root.requires_grad:  # (a loss of plain numbers, or computed in no_grad(), has no backward)
                with contextlib.suppress(ValueError, OverflowError):
                    root.backward()  # the drawing shows this backward pass's gradients
            for i, kwargs in enumerate(attempts):
                try:
                    return viz.draw_graph(kwargs.pop("root"), view="backward", highlight=mark, title=self.summary(),
                                          max_nodes=max_nodes, **kwargs)
                except viz.GraphTooLarge:
                    if i == len(attempts) - 1:
                        raise
        finally:
            for v, g in zip(nodes, saved):
                v.grad = g


def _badness(r: GradRow) -> tuple:
    rank = {NONFINITE: 3, FAIL: 2, UNCHECKABLE: 1, KINK: 1, OK: 0}[r.status]
    return rank, r.abs_err if math.isfinite(r.abs_err) else math.inf


def _num(x: float) -> str:
    return f"{x + 0.0:.10g}"  # + 0.0 shows -0.0 as 0


def _nums(a: float, b: float) -> tuple[str, str]:
    """a and b to 10 digits, or to all 17 where 10 show no difference (under a tight tolerance)."""
    shown = _num(a), _num(b)
    return (repr(a + 0.0), repr(b + 0.0)) if shown[0] == shown[1] and a != b else shown


def _sci(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2e}"


def _close(a: float, ref: float, atol: float, rtol: float) -> bool:
    return abs(a - ref) <= atol + rtol * abs(ref)


# ---- finite differences ------------------------------------------------------------------

@dataclass
class Derivative:
    """A finite-difference derivative: the value, its estimated error and the step used;
    the one-sided slopes; whether they stay apart as the step shrinks (a kink); whether fn jumps
    at x (`jump`: a one-sided slope is then fn's beyond the jump); whether any stencil fits
    between the kinks near x (`checkable`), and how it was measured (`detail`). `noise`: the part
    of the error that is the estimated rounding of fn's intermediates beyond fn's own (see `_noise`);
    it steers the steps and shows in the error, but excuses no difference (it can far exceed the
    actual error: ((x * 1e10 + 1e12) - 1e12) - x * 1e10 rounds to exactly 0 at 1 ± 1e-8)."""
    value: float
    error: float
    step: float
    left: float = math.nan
    right: float = math.nan
    kink: bool = False
    evaluations: int = 0
    checkable: bool = True
    detail: str = ""
    jump: bool = False
    noise: float = 0.0


def derivative(fn: Callable[[float], float], x: float, eps: float = EPS, *, one_sided: bool = False,
               kink_gaps: tuple[float, float] = (math.inf, math.inf), noise: float = 0.0) -> Derivative:
    """d fn/dx at x by central differences at h, h/2, h/4 extrapolated twice (Richardson).

    h starts at eps * max(1, |x|) and shrinks tenfold where fn cannot be evaluated (a domain
    edge) or the estimate is not yet settled (a kink or a fast change within the step), to
    below |x| at once where x is nearer 0 than h (a pole or edge at 0: 1/x at 1e-8). The
    error estimate is the last extrapolation's change plus the rounding error of the
    differences. With `one_sided=True` (or where the slopes stay apart) the left and right
    slopes are measured too, each from h down until it settles.
    `kink_gaps`: how far below and above x fn has a kink (not at x itself); steps stay short of
    them, from one side where the kink is nearer than rounding resolves on the other; where
    no step fits on either side the result is not `checkable`.
    `noise`: fn's rounding error near x where it exceeds that of fn's value (intermediates far larger
    than fn that cancel, as 1 - (1 - x * x)); see `_noise`.
    """
    eps = number(eps, "derivative", "eps", *EPS_RANGE)
    noise = number(noise, "derivative", "noise", 0.0)
    calls = 0

    def f(t: float) -> float:
        nonlocal calls
        calls += 1
        return fn(t)

    scale = max(1.0, abs(x))
    try:
        f0 = f(x)
    except _NotAFunction:
        raise
    except (ArithmeticError, ValueError):
        return Derivative(math.nan, math.nan, math.nan, evaluations=calls)
    h = eps * scale
    # a step wider than a small x can straddle a pole or domain edge at 0 (1/x, log): then
    # the next step is a tenth of |x|, and steps go down to what rounding resolves at x (at 0, below 1e-13:
    # a bend at 1e-20 is resolved there); a subnormal x's steps are whole numbers of 5e-324
    floor = max(1e-13 * abs(x), 64 * math.ulp(0.0))
    below, above = kink_gaps
    if min(below, above) < h:  # the stencil would straddle a kink (relu at 1e-15): no averaged slope across it
        h = min(below, above) / 2  # half: a kink's input need not move linearly with x
        if h < 1e-12 * scale:  # no central step fits (rounding of f, as of O(1) at x = 1e-15): one-sided or none
            room, sign = max((below, -1.0), (above, 1.0))
            side = _side(f, x, f0, min(eps * scale, room / 2), sign, noise) if room / 2 >= 1e-12 * scale else None
            where = f"a kink {_sci(min(below, above))} {'below' if below < above else 'above'}"
            if side is None:
                return Derivative(math.nan, math.nan, math.nan, evaluations=calls, checkable=False,
                                  detail=f"kinks {_sci(below)} below and {_sci(above)} above, nearer than any step")
            side.evaluations, side.detail = calls, f"{'right' if sign > 0 else 'left'}-sided: {where}"
            return side
    best, first = _central(f, x, f0, h, floor, noise)
    if best is None and 0.0 < abs(x) < 10 * floor:  # sqrt at 5e-324: its slope from 0 grows, its derivative is finite
        return Derivative(math.nan, math.nan, math.nan, evaluations=calls, checkable=False,
                          detail=f"f fails a step away, and no smaller step fits between 0 and x = {x!r}")
    if best is None:  # no step fits on both sides: x is at the edge of fn's domain
        best = _at_domain_edge(f, x, f0, eps * scale, noise)
        best.evaluations = calls
        return best
    # at an op's kink at x (one_sided) its slopes are measured from steps of 1e-13 of x's scale and up, so no
    # smaller step is taken there: below it f can flatten where its intermediates underflow (x * 1e-15 is 0
    # under 5e-309), which is no bend beside x, and the kink's slopes were lost (a wrong 0 passed as ok)
    clean = _off_kink_step(f, x, f0, first[0], first[1], max(floor, 1e-13 * scale) if one_sided else floor)
    if clean is not None:  # the stencil straddled a kink or bend narrower than it: measured again below it
        again, first = _central(f, x, f0, clean, floor, noise)
        if again is not None:
            best = again
            best.detail = f"steps {_sci(clean)} and below: a kink or bend lies nearer than the first step"
    else:
        best.kink = _slopes_stay_apart(f, x, f0, *first)
    if best.kink or one_sided:
        h = first[0]
        best.right, best.left = (side.value if (side := _side(f, x, f0, h, sign, noise)) else math.nan
                                 for sign in (1.0, -1.0))
        for sign in (1.0, -1.0):  # a slope from f(x) that grows as 1 / h: f jumps there, its slope is beyond
            side_name = "right" if sign > 0 else "left"
            jumps = _jumps(f, x, f0, h, sign)
            if not (jumps or math.isinf(getattr(best, side_name))):
                continue
            slope = _beyond(f, x, h, sign)
            if slope is None:
                if jumps:  # a slope from f(x) across the jump is none of f's: as a bound, it passed wrong values
                    setattr(best, side_name, math.inf)
                    best.detail = f"f jumps here, and its {side_name} slope beside the jump does not settle"
                continue
            setattr(best, side_name, slope)
            best.jump, best.error = True, math.nan  # the central difference straddled the jump: no estimate
            best.detail = "f jumps here: its one-sided slopes are measured beside the jump"
    best.evaluations = calls
    return best


def _central(f, x: float, f0: float, h: float, floor: float, noise: float = 0.0) -> tuple[Derivative | None, tuple]:
    """The best-settled central estimate from steps h down (tenfold, to below |x| where x is
    nearer 0 than h), and the first step with its probes f(x ± d)."""
    scale = max(1.0, abs(x))
    best: Derivative | None = None
    best_spread = math.inf  # best.error relative to its own values
    first: tuple = ()
    for _ in range(12):
        if h < floor:
            break
        h = _on_grid(x, h)
        try:
            fs = [(f(x + d), f(x - d)) for d in (h, h / 2, h / 4)]
        except (ArithmeticError, ValueError):
            h = min(h, abs(x) or h) / 10
            continue
        # each difference over its step as floats hold it (x + h past a power of 2 may round: x ± 1e-3
        # at 1e10 was off by 1e-6, 5e-4 of the step); Richardson's steps as corrections, which cannot
        # overflow (exp' at 709.7 is 1.7e308)
        d1, d2, d4 = ((up - down) / ((x + d) - (x - d)) for (up, down), d in zip(fs, (h, h / 2, h / 4)))
        r1, r2 = d2 + (d2 - d1) / 3, d4 + (d4 - d2) / 3
        value = r2 + (r2 - r1) / 15
        probes = max(abs(v) for pair in fs for v in pair)
        own = _MACHINE_EPS * max(abs(f0), probes)
        rounding = 8 * max(own, noise) / h
        estimate = Derivative(value, abs(r2 - r1) / 15 + rounding, h, noise=8 * max(noise - own, 0.0) / h)
        first = first or (h, fs)
        # steps are compared by their error relative to what they measure: a step wider than a
        # small x straddles a pole at 0 (1/x) and sees none of f(x)'s size, its error nearly all
        spread = estimate.error / max(abs(value), probes / scale, 1e-300)
        if best is None or spread < best_spread:
            best, best_spread = estimate, spread
        # a step wider than a tiny x can seem settled next to f's size out there while resolving
        # nothing of the derivative at x (x * x at 1e-150: 0 ± 2e-19): a step below |x| is tried too
        if not math.isfinite(value) or (best_spread <= 1e-9 and not 0 < abs(x) < h):
            break
        h = min(h, abs(x) or h) / 10
    return best, first


def _on_grid(x: float, h: float) -> float:
    """h as a whole number of 4 ulps of x, so that x ± h, h/2, h/4 are floats: the stencil is
    centred on x and its steps halve exactly (rounded, they were up to half an ulp off centre,
    an error no estimate saw: sin' at 3e12 was 3.4e-6 off, claiming 2e-7)."""
    grid = 4 * math.ulp(x)
    return round(h / grid) * grid if h < 2 ** 50 * grid else h


def _off_kink_step(f, x: float, f0: float, h: float, fs, floor: float) -> float | None:
    """None unless the one-sided slopes at h (probes `fs`) jump apart without fading as a smooth
    function's do (like h**3 once extrapolated): then the stencil straddles a kink or a bend
    narrower than h, which a central difference averages over (relu at 1e-15: 0.5). Then the
    largest tenfold smaller step where the jump is gone (found by bisection); None
    where it lasts until rounding blurs it (a kink at x, as far as floats tell)."""
    first, _ = _jump(f0, fs[:2], x, h)
    jump, noise = _jump(f0, fs[1:], x, h / 2)
    if not (math.isfinite(jump) and abs(jump) > 10 * noise and jump * first > 0.25 * first * first):
        return None
    # below it rounding (or underflow, whose error is 5e-324 however small f is) blurs the jump by 10%
    low = max(floor, 200 * max(_MACHINE_EPS * abs(f0), math.ulp(0.0)) / abs(jump))

    def gone(k: int) -> bool:
        s = h * 10.0 ** -k
        try:
            pairs = [(f(x + t), f(x - t)) for t in (s, s / 2)]
        except (ArithmeticError, ValueError):
            return False
        if x == 0.0 and s < 1e-13 and _flat(f0, pairs):  # below the steps of other points, no evidence (_flat)
            return False
        now, rounding = _jump(f0, pairs, x, s)
        return abs(now) <= 1e-2 * abs(jump) + 2 * rounding
    dirty, clean = 0, int(math.log10(h) - math.log10(low)) if low < h else 0  # h / low overflows at x = 1e-300
    if clean < 1 or not gone(clean):
        return None
    while clean - dirty > 1:
        mid = (clean + dirty) // 2
        dirty, clean = (dirty, mid) if gone(mid) else (mid, clean)
    return h * 10.0 ** -clean


def _at_domain_edge(f, x: float, f0: float, h: float, noise: float = 0.0) -> Derivative:
    """The one-sided derivative from the side where fn is defined (e.g. sqrt(x)**3 at 0)."""
    for sign in (1.0, -1.0):
        best = _side(f, x, f0, h, sign, noise)
        if best is not None:
            return best
    return Derivative(math.nan, math.nan, math.nan)


def _side(f, x: float, f0: float, h: float, sign: float, noise: float = 0.0) -> Derivative | None:
    """The slope on one side (sign +1 right, -1 left) from steps h down, shrinking while the
    estimate improves (near an edge f can be x**1.5, at a kink f can bend sharply within h).
    A slope that keeps growing as the step shrinks (sqrt at 0) is unbounded: inf, not a number."""
    scale = max(1.0, abs(x))
    best, step, slopes = None, h, []
    while step >= 1e-13 * scale:
        step = _on_grid(x, step)
        try:
            ups = [f(x + sign * d) for d in (step, step / 2, step / 4)]
        except (ArithmeticError, ValueError):
            step /= 10
            continue
        q = [(u - f0) / ((x + sign * d) - x) for u, d in zip(ups, (step, step / 2, step / 4))]  # steps as in _central
        slope = _one_sided(q)
        slopes.append(slope)
        size = max(map(abs, [f0, *ups]))
        error = abs((q[2] + (q[2] - q[1])) - (q[1] + (q[1] - q[0]))) + 8 * max(_MACHINE_EPS * size, noise) / step
        if best is None or error < best.error:
            best = Derivative(slope, error, step, noise=8 * max(noise - _MACHINE_EPS * size, 0.0) / step,
                              **{("right" if sign > 0 else "left"): slope})  # type: ignore[arg-type]
        if error <= 1e-9 * max(abs(slope), size / scale, 1e-300) or error > 10 * best.error:
            break
        step /= 10
    # a converging slope changes less and less (by O(step³) once extrapolated); this one grew by
    # a fifth or more at each tenfold smaller step, and is still unsettled
    if best is not None and len(slopes) >= 3 and best.error > 1e-6 * abs(best.value) and \
            all(abs(b) >= 1.2 * abs(a) and a * b > 0 for a, b in zip(slopes, slopes[1:])):
        best.value, best.error = math.copysign(math.inf, slopes[-1]), math.nan
        setattr(best, "right" if sign > 0 else "left", best.value)
        best.detail = (f"did not converge: the {'right' if sign > 0 else 'left'}-sided slope grows without bound "
                       f"as the step shrinks ({_num(slopes[0])} at {_sci(h)}, {_num(slopes[-1])} at {_sci(step)})")
    return best


def _jumps(f, x: float, f0: float, h: float, sign: float) -> bool:
    """Does f's change from f(x) keep half its size from step h to h/1000 on one side (sign +1 right,
    -1 left)? A jump does; a slope, however steep, shrinks it a thousandfold. (That slope, growing as
    1 / h, is not always found unbounded: its error grows tenfold a step, where _side stops.)"""
    try:
        far, near = (f(x + sign * d) - f0 for d in (h, h / 1000))
    except (ArithmeticError, ValueError):
        return False
    return abs(near) > max(0.5 * abs(far), 64 * _MACHINE_EPS * abs(f0))


def _beyond(f, x: float, h: float, sign: float) -> float | None:
    """The slope of f just beside x (sign +1 right, -1 left) from differences that leave f(x) out, where
    f jumps at x (|x|' at 0, in gradgradcheck); None unless it settles, to 1e-6, from step h to h/100."""
    found = []
    for d in (h, h / 100):
        try:
            q = [(f(x + 2 * sign * t) - f(x + sign * t)) / ((x + 2 * sign * t) - (x + sign * t))
                 for t in (d, d / 2, d / 4)]
        except (ArithmeticError, ValueError):
            return None
        found.append(_one_sided(q))
    a, b = found
    return b if math.isfinite(b) and abs(b - a) <= 1e-6 * max(abs(a), abs(b), 1.0) else None


def _jump(f0: float, pairs, x: float, d: float) -> tuple[float, float]:
    """The jump between the one-sided slopes from f at x ± d and x ± d/2 (`pairs`), with the
    f''·d of curvature extrapolated away, and its rounding error."""
    gaps = [(fu - f0) / ((x + s) - x) - (f0 - fd) / (x - (x - s))  # the steps as they are in floats
            for (fu, fd), s in zip(pairs, (d, d / 2))]
    size = max(abs(f0), *(abs(v) for pair in pairs for v in pair))
    return 2 * gaps[1] - gaps[0], 20 * _MACHINE_EPS * size / d


def _slopes_stay_apart(f, x: float, f0: float, h: float, fs) -> bool:
    """True if the one-sided slopes jump by the same amount (to _KINK_DRIFT, beyond rounding)
    at h/2 and at every step from h/10 down to the smallest one rounding resolves, at least
    h/1000: a kink. A smooth bend narrower than h looks like a kink at first, but its jump
    fades below the bend's width; the jump of |x|**1.1 fades like h**0.1 at every step."""
    first, _ = _jump(f0, fs[:2], x, h)
    jump, noise = _jump(f0, fs[1:], x, h / 2)
    if not (abs(jump) > 10 * noise and jump * first > 0.25 * first * first):  # smooth: jump ~ h³
        return False
    scale, step, skip = max(1.0, abs(x)), h / 10, 1
    # below 1e-13 of x's scale the floats near a small x (or 0) still resolve steps where f is small there:
    # a bend narrower than 1e-13 at 0 (x + sqrt(x * x + 1e-40)) seemed a kink, passing a wrong 0.5 for 1;
    # those steps are tried too, ever further apart (1e-14, 1e-16, 1e-20, ..., 1e-268), where they fit
    lowest = 64 * max(math.ulp(x), math.ulp(0.0))
    try:
        while step >= 1e-13 * scale or lowest <= step < 1e-13:
            pairs = [(f(x + s), f(x - s)) for s in (step, step / 2)]
            now, rounding = _jump(f0, pairs, x, step)
            rounding += 20 * math.ulp(0.0) / step  # f's values are whole numbers of 5e-324 where they underflow
            if 10 * rounding > abs(jump) or (step < 1e-13 * scale and _flat(f0, pairs)):  # rounding (or, below
                break  # 1e-13, underflow: see _flat) hides the jump from here on: not resolved, no evidence
            if abs(now - jump) > _KINK_DRIFT * abs(jump) + 2 * (rounding + noise):  # fades, grows or flips
                if step >= 1e-13 * scale:
                    return False
                # below 1e-13 an intermediate can be subnormal, a whole number of 5e-324 (x * 1e-52 at 1e-269 is
                # 0.2% off): a jump that fades to below half is a bend's; one that grows or flips is no evidence
                if now * jump >= 0 and abs(now) < abs(jump) / 2:
                    return False
                if now * jump < 0 or abs(now) > abs(jump):
                    break
            if step >= 1e-13 * scale:
                step /= 10
            else:
                step, skip = step / 10.0 ** skip, 2 * skip
    except (ArithmeticError, ValueError):
        return False
    return step < h / 1000


def _flat(f0: float, pairs) -> bool:
    """Is f the same float at every probe (`pairs` of f(x + s), f(x - s)) as at x? Where steps go below 1e-13 of
    x's scale (at or near 0), that is no sign of a smooth bend: an intermediate that underflows flattens f there
    (x * 1e-15 is 0 below 5e-309, so a kink of f(x * 1e-15) * 1e15 at 0 seemed to fade: a wrong 0 passed as ok).
    Above 1e-13 a flat f is taken as it is (x + sqrt(x * x + 1e-40) is 0 near -1e-8: no kink there)."""
    return all(v == f0 for pair in pairs for v in pair)


def _one_sided(q: list[float]) -> float:
    """The slope on one side from the difference quotients q at steps h, h/2, h/4, extrapolated
    twice (first-order error), as corrections (see _central)."""
    q1, q2, q4 = q
    r1, r2 = q2 + (q2 - q1), q4 + (q4 - q2)
    return r2 + (r2 - r1) / 3


def _judge(analytic: float, d: Derivative, kink: bool, atol: float, rtol: float) -> str:
    """ok, FAIL, non-differentiable (a valid one-sided derivative at a kink) or non-finite."""
    if not d.checkable and math.isfinite(analytic):
        return UNCHECKABLE
    if not (math.isfinite(analytic) and math.isfinite(d.value)):
        return NONFINITE
    if (kink or d.kink) and math.isfinite(d.left) and math.isfinite(d.right) \
            and (d.jump or not _close(d.right, d.left, atol, rtol)):
        low, high = min(d.left, d.right), max(d.left, d.right)
        tol = atol + rtol * max(abs(low), abs(high))
        return KINK if low - tol <= analytic <= high + tol else FAIL
    if kink and math.isnan(d.left) != math.isnan(d.right) and not _close(analytic, d.value, atol, rtol):
        # an op at its kink at the edge of f's domain (leaky_relu(x) ** exp(x) at 0): the analytic
        # value may be the slope on the side where f is undefined, the op's convention at its kink
        return UNCHECKABLE
    ref = _reference(d, kink)
    if _close(analytic, ref, atol, rtol):
        return OK
    # the reference's own error covers the difference and exceeds the tolerance (rounding swamps the
    # differences: tanh at 19, x * x + 1e15): no verdict, rather than a false one (a wrong node still FAILs)
    return UNCHECKABLE if _vague(analytic, d, ref, atol, rtol) else FAIL


def _vague(analytic: float, d: Derivative, ref: float, atol: float, rtol: float) -> bool:
    """Is the reference's error estimate beyond the tolerance and `_VAGUE`, and the difference within it?
    Only the error of f's own rounding and of the extrapolation counts (`Derivative.noise` does not)."""
    error = _error(d) - (d.noise if math.isfinite(d.noise) else 0.0)
    return abs(analytic - ref) <= error and error > max(atol + rtol * abs(ref), _VAGUE * max(abs(analytic), abs(ref)))


def _error(d: Derivative) -> float:
    """d's estimated error, at least what f's differences resolve where they underflow (f's values are
    whole numbers of 5e-324: x * x at 7e-201 is 0 at every step, a reference of 0 ± 0 against 1.4e-200)."""
    return d.error + (8 * math.ulp(0.0) / d.step if d.step > 0 else 0.0)


def _reference(d: Derivative, kink: bool) -> float:
    """The numeric derivative a gradient is held to: at a kink whose one-sided slopes agree
    (the function is differentiable there, its curvature jumps: 4x² left of 0, x² right), their
    mean, as a jump in curvature biases the central difference by O(h); elsewhere d.value."""
    if (kink or d.kink) and math.isfinite(d.left) and math.isfinite(d.right):
        return (d.left + d.right) / 2
    return d.value


def _row(name: str, analytic: float, d: Derivative, kink: bool, atol: float, rtol: float) -> GradRow:
    status, detail = _judge(analytic, d, kink, atol, rtol), d.detail
    reference = _reference(d, kink)
    if status == UNCHECKABLE and _vague(analytic, d, reference, atol, rtol) and not d.detail:
        detail = f"rounding swamps the differences: the reference's error, {_sci(_error(d))}, covers the difference"
    elif status == FAIL and d.noise and abs(analytic - reference) <= _error(d) and not d.detail:
        detail = ("the rounding of f's intermediates, which cancel, may swamp the differences: an estimate "
                  "that can far exceed the actual error, so it excuses no difference")
    elif status == UNCHECKABLE and d.checkable:
        side = "right" if math.isnan(d.left) else "left"
        detail = f"a kink at the edge of f's domain: only the {side} slope, {_num(d.value)}, is defined"
    return GradRow(name, analytic, reference, status, _error(d), d.step, d.left, d.right, detail)


def _kinked(out: Value, wrt: list[Value]) -> list[bool]:
    """For each Value in `wrt`: does out depend on it through an op sitting at its kink?"""
    hit = 0
    for v, mask in _dependence(topological_order(out), [[x] for x in wrt]):
        if mask and _at_kink(v):
            hit |= mask
    return [bool(hit >> i & 1) for i in range(len(wrt))]


def _at_kink(v: Value) -> bool:
    """Is v made by an op sitting at a kink it declares (relu, abs at 0; `define_op(kinks=)`)?"""
    op = v._op
    return op is not None and op.kinks is not None and bool(op.kinks(*(x.data for x in v.inputs)))


def _dependence(order: list[Value], wrt: list[list[Value]]) -> Iterator[tuple[Value, int]]:
    """Each node of `order` (a topological order), with the bitmask of the sets in `wrt` it depends on."""
    sets: dict[int, int] = {}  # id -> bitmask of the sets holding it (directional_check's may overlap)
    for k, vs in enumerate(wrt):
        for v in vs:
            sets[id(v)] = sets.get(id(v), 0) | 1 << k
    deps: dict[int, int] = {}
    for v in order:
        mask = sets.get(id(v), 0)
        for x in v.inputs:
            mask |= deps[id(x)]
        deps[id(v)] = mask
        yield v, mask


def _bits(mask: int) -> Iterator[int]:
    """The positions of mask's set bits, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


_GAP_CELLS = 1 << 21  # numbers the forward-mode pass of _kink_gaps holds at once (16 MB)


def _kink_gaps(out: Value, wrt: list[list[Value]], dirs: list[list[float]]) -> list[tuple[float, float]]:
    """For each check k (the Values wrt[k] moving by dirs[k] times t): how far t may go down and
    up before a built-in op's input reaches its kink at 0 (relu, abs, leaky_relu), to first
    order (a forward-mode pass over the graph); inf where none lies ahead. Ops at the kink
    itself are `_kinked`'s."""
    order = topological_order(out)
    near = [v for v in order if v._op is not None and v._op.builtin and v._op.kinks is not None
            and v.inputs[0].data != 0.0]
    if not near:
        return [(math.inf, math.inf)] * len(wrt)
    size = max(1, _GAP_CELLS // len(order))  # checks at a time: a tangent per node holds one number per check
    return [gap for start in range(0, len(wrt), size)
            for gap in _gaps(order, near, wrt[start:start + size], dirs[start:start + size])]


def _gaps_alone(out: Value, values: list[Value]) -> list[tuple[float, float]]:
    """`_kink_gaps` for each of `values` moving alone (the checks of one input at a time)."""
    return _kink_gaps(out, [[v] for v in values], [[1.0]] * len(values))


def _gaps(order: list[Value], near: list[Value], wrt: list[list[Value]],
          dirs: list[list[float]]) -> list[tuple[float, float]]:
    tangent: dict[int, Any] = {}  # id -> d(node)/dt, one number per check
    for k, (vs, ds) in enumerate(zip(wrt, dirs)):
        for v, d in zip(vs, ds):
            tangent.setdefault(id(v), np.zeros(len(wrt)))[k] += d
    if len(wrt) == 1:  # one check (directional_check's): plain floats, several times quicker per node than arrays
        tangent = {i: float(t[0]) for i, t in tangent.items()}
    with np.errstate(all="ignore"):
        for v in order:
            moving = [(d, tangent[id(x)]) for x, d in zip(v.inputs, v._local) if id(x) in tangent]
            if moving and id(v) not in tangent:
                tangent[id(v)] = sum(d * t for d, t in moving)
        below, above = np.full(len(wrt), math.inf), np.full(len(wrt), math.inf)
        for v in near:
            u = v.inputs[0]
            if id(u) in tangent:
                move = np.divide(-u.data, tangent[id(u)])  # the t that brings u to its kink
                ok = np.isfinite(move)
                above = np.where(ok & (move > 0), np.minimum(above, move), above)
                below = np.where(ok & (move < 0), np.minimum(below, -move), below)
    return [(float(b), float(a)) for b, a in zip(below, above)]


# ---- inputs ----------------------------------------------------------------------------

def _by_keyword(names: list[str], who: str) -> Callable:
    """How to call f with a dict's inputs: by keyword (an op, which takes them by position only, is refused)."""
    def call(f, vs):
        if isinstance(f, engine.Op):
            raise TypeError(f"{who}: inputs given as a dict ({', '.join(names)}) are passed to f by keyword, but f is "
                            f"op {f.name!r}, which takes its inputs by position: give them as a list")
        return f(**dict(zip(names, vs)))
    return call


def _flatten(inputs, who: str) -> tuple[list[str], list[float], Callable]:
    """Names, float values, and how to call f with Values (positional or by keyword)."""
    if isinstance(inputs, np.ndarray) and inputs.ndim == 0:  # one number, named x as a float is (not x[])
        inputs = inputs.item()
    if isinstance(inputs, Mapping):
        names = list(inputs)
        for k in names:
            if not isinstance(k, str):
                raise TypeError(f"{who}: the keys of inputs must be names of f's arguments (str), got {k!r:.60}")
        values = [_float(inputs[k], k, who) for k in names]
        call: Callable = _by_keyword(names, who)
    elif isinstance(inputs, (numbers.Number, np.generic, str, bytes)) or inputs is None:
        names, values, call = ["x"], [_float(inputs, "x", who)], lambda f, vs: f(*vs)
    else:
        arr = np.asarray(inputs, dtype=object)  # each entry checked as it is: "1", True and None are not numbers
        names = [f"x[{', '.join(map(str, i))}]" if i else "x" for i in np.ndindex(arr.shape)]  # 0-d: x (a tensor)
        values, call = [_float(v, n, who) for v, n in zip(arr.ravel().tolist(), names)], lambda f, vs: f(*vs)
    if not values:
        raise ValueError(f"{who}: inputs must hold at least one number to check, got {inputs!r:.60}")
    return names, values, call


def _float(x, name: str, who: str) -> float:
    return number(x, who, f"input {name!r}")


def _output(f, call, values) -> Value:
    out = call(f, [Value(v, n) for v, n in values])
    if not isinstance(out, Value):
        raise TypeError(f"f must return a Value, got {type(out).__name__}")
    return out


def _backward_grads(out: Value, wrt: list[Value], notes: list[str]) -> list[float]:
    """d(out)/d(v) for each v in `wrt`, by `out.backward()`; every `.grad` in out's graph is
    put back as it was, and gradients already held by `wrt` do not leak into the result.
    Where backward refuses (a derivative that is not finite) they are nan, and `notes` says why."""
    if not out.requires_grad:  # made under no_grad or from constants only: nothing reaches wrt
        return [0.0] * len(wrt)
    nodes = topological_order(out)
    saved = [v.grad for v in nodes]
    try:
        for v in wrt:
            v.grad = 0.0
        out.backward()
        return [v.grad for v in wrt]
    except (ValueError, OverflowError) as e:
        notes.append(f"note: {e}")
        return [math.nan] * len(wrt)
    finally:
        for v, g in zip(nodes, saved):
            v.grad = g


def _noise(out: Value, wrt: list[list[Value]]) -> list[float]:
    """For each set of Values in `wrt`: the rounding error of out as they move. Each computed node that
    depends on them rounds by about eps * |node| and passes it on times d(out)/d(node), summed as random
    errors are. It exceeds eps * |out| where intermediates cancel: 1 - (1 - x * x) at 1e-6 is 1e-12,
    rounded as 1 is (1e-16), and finite differences at steps below 1e-6 were trusted to 1e-19, FAILing
    right gradients. A node the set does not move rounds the same at every step: it adds nothing (a
    y + 1e12 - 1e12 beside x made x's reference vague, and a wrong gradient of x 'not checkable').
    d(out)/d(node) by a pass of its own, not backward: no .grad is touched and no backward hook runs."""
    if not out.requires_grad:
        return [0.0] * len(wrt)
    order = topological_order(out)
    adjoint = {id(out): 1.0}
    for v in reversed(order):
        g = adjoint.get(id(v), 0.0)
        if g:
            for x, d in zip(v.inputs, v._local):
                adjoint[id(x)] = adjoint.get(id(x), 0.0) + d * g
    floor = _MACHINE_EPS * out.data * _MACHINE_EPS * out.data / len(order)  # together less than out's rounding
    sizes = {id(v): c * c for v in order if v.inputs and v.requires_grad  # c * c: inf, where ** raises
             and (c := _MACHINE_EPS * v.data * adjoint.get(id(v), 0.0)) * c > floor}
    if not sizes:
        return [0.0] * len(wrt)
    totals = [0.0] * len(wrt)
    for v, mask in _dependence(order, wrt):
        c = sizes.get(id(v), 0.0)
        if c:
            for k in _bits(mask):
                totals[k] += c
    return [math.sqrt(t) if math.isfinite(t) else 0.0 for t in totals]


class _NotAFunction(ValueError):
    """f gave two numbers at the same inputs (not caught where f is outside its domain)."""


class _GradMode:
    """Runs f for the finite differences under no_grad (faster: no local derivatives), unless at
    the checked point it computes another number there than with graphs, as a gradient penalty
    (which differentiates inside f) does: from then on with graphs. An f that gives another
    number at the checked point with graphs too is refused: no finite difference can check it."""

    def __init__(self, data: float, who: str, what: str = "f") -> None:
        self.data, self.quiet, self.who, self.what = data, True, who, what

    def run(self, make: Callable[[], Value], at_point: bool) -> float:
        raised = False
        if self.quiet:
            try:
                got = self._quietly(make)
                if not at_point or self._same(got):
                    return got
            except Exception:  # f may need graphs (it calls backward or grad): tried with them below
                raised = True
        got = make().data  # if this raises too, it is f's own error (or its domain's edge)
        if raised and (not at_point or self._same(got)):
            with contextlib.suppress(Exception):  # f needs graphs only if it raises under no_grad again
                self._quietly(make)
                return got
        self.quiet = False
        if at_point and not self._same(got):
            raise _NotAFunction(f"{self.who}: {self.what} gave {_num(self.data)}, then {_num(got)} at the same inputs; "
                             f"finite differences need a function of the inputs alone (no randomness, no state "
                             f"it changes from call to call)")
        return got

    @staticmethod
    def _quietly(make: Callable[[], Value]) -> float:
        with no_grad():
            return make().data

    def _same(self, got: float) -> bool:
        return got == self.data or (math.isnan(got) and math.isnan(self.data))


def _tolerances(eps: float, atol: float, rtol: float) -> str:
    return f"eps={eps:g}, atol={atol:g}, rtol={rtol:g}"


def _checked(who: str, eps: float | None, atol: float, rtol: float) -> tuple[float, float, float]:
    """eps in EPS_RANGE (None: not used), atol and rtol finite and >= 0, as floats."""
    return (math.nan if eps is None else number(eps, who, "eps", *EPS_RANGE),
            number(atol, who, "atol", 0.0), number(rtol, who, "rtol", 0.0))


def _row_notes(rows: list[GradRow], atol: float, rtol: float) -> list[str]:
    return _uncertain_note(rows, atol, rtol) + _atol_note(rows, atol, rtol) + _zero_note(rows)


ALL_ZERO = "every gradient checked is 0 here"


def _zero_note(rows: list[GradRow]) -> list[str]:
    """A note when every row passed as 0 against finite differences of 0: the check saw no rule's scale
    (x * x at 0, a relu below 0), so a rule off by any factor passed as well."""
    if not rows or not all(r.status == OK and r.analytic == 0.0 and abs(r.reference) <= r.error for r in rows):
        return []
    return [f"note: {ALL_ZERO}, and finite differences agree: a derivative rule off by any factor gives 0 "
            f"there too (x * x's 2x at 0); check also at a point where f changes with its inputs"]


def _uncertain_note(rows: list[GradRow], atol: float, rtol: float) -> list[str]:
    """A note when a numeric reference is less certain than the tolerance it is held to."""
    vague = [r.name for r in rows if r.error > atol + rtol * abs(r.reference)]
    return [f"note: the numeric error estimate exceeds the tolerance for {', '.join(vague[:5])}"
            f"{' ...' if len(vague) > 5 else ''}; a different eps may give a sharper reference"] if vague else []


def _atol_note(rows: list[GradRow], atol: float, rtol: float) -> list[str]:
    """A note when an entry passed only by atol though it differs, beyond the reference's
    error, by more than rtol: a gradient that small is not checked by these tolerances."""
    loose = [r for r in rows if r.status == OK and r.rel_err > rtol and r.abs_err > 10 * r.error]
    # and one whose reference is too uncertain to tell it from its double (x * x at 1e-300: 2e-300 against
    # 0 ± 4e-22, where 4e-300 passed too, with nothing said)
    blind = [r for r in rows if r.status == OK and r.rel_err > rtol and r not in loose and r.analytic != 0.0
             and r.error > rtol * abs(r.analytic)]
    notes = []
    if loose:
        shown = ", ".join(f"{r.name} (rel err {_sci(r.rel_err)})" for r in loose[:5])
        notes.append(f"note: {shown}{' ...' if len(loose) > 5 else ''} passed only by atol={atol:g}, differing by "
                     f"more than rtol={rtol:g}: gradients this small need a smaller atol to be checked")
    if blind:
        shown = ", ".join(f"{r.name} ({_num(r.analytic)} against {_num(r.reference)} ± {_sci(r.error)})"
                          for r in blind[:5])
        notes.append(f"note: {shown}{' ...' if len(blind) > 5 else ''} passed only by atol={atol:g}: finite "
                     f"differences resolve nothing of {'it' if len(blind) == 1 else 'them'} here (their error "
                     f"exceeds rtol={rtol:g} of the gradient), so a wrong gradient this small passes too")
    return notes


# ---- checks ----------------------------------------------------------------------------

_F = TypeVar("_F", bound=Callable[..., Any])


def _with_grad(check: _F) -> _F:
    """`check` run with the graph recorded, as torch.autograd.functional's: inside the caller's
    `no_grad()` it differentiated nothing and reported every gradient as 0, a FAIL."""
    return cast(_F, enable_grad(check))


@_with_grad
def gradcheck(f: Callable[..., Value], inputs: Inputs, *, eps: float = EPS, atol: float = 1e-5,
              rtol: float = 1e-3, sample: int | None = None, seed: int = 0) -> GradReport:
    """Compare backward()'s gradient of f at `inputs` with extrapolated finite differences.

    `inputs`: a number, a list or numpy array (f gets one Value per entry) or a dict of
    named numbers (f gets keyword arguments). Every `.grad` is left as it was found.
    Each input costs 7 or more evaluations of f: `sample` checks a seeded sample of that
    many inputs (the report says so).
    """
    eps, atol, rtol = _checked("gradcheck", eps, atol, rtol)
    if sample is not None:
        sample = positive_int(sample, "gradcheck", "sample")
    seed = integer(seed, "gradcheck", "seed", at_least=0)
    names, xs, call = _flatten(inputs, "gradcheck")
    values = list(zip(xs, names))
    leaves = [Value(v, n) for v, n in values]
    out = call(f, leaves)
    if not isinstance(out, Value):
        raise TypeError(f"gradcheck: f must return a Value, got {type(out).__name__} {out!r:.60}")
    notes: list[str] = []
    grads = _backward_grads(out, leaves, notes)
    kinked = _kinked(out, leaves)
    picks = list(range(len(xs)))
    if sample is not None and sample < len(xs):
        picks = sorted(np.random.default_rng(seed).choice(len(xs), size=sample, replace=False).tolist())
        notes.append(f"checked a sample of {sample} of the {len(xs)} inputs (sample={sample}, seed={seed}); "
                     f"the others were not checked")
    _check_cost("gradcheck", 7 * len(picks), out, f"checking {len(picks):,} inputs",
                "pass sample=N to check N inputs picked at random, or ")
    rows, calls = _first_derivative_rows("gradcheck", f, call, values, out.data, grads, kinked, names, eps, atol,
                                         rtol, picks, _picked_gaps(out, leaves, picks),
                                         _picked_noise(out, leaves, picks))
    report = GradReport(f"gradcheck of {_fname(f)} ({_tolerances(eps, atol, rtol)})", rows, graph=out,
                        evaluations=calls, notes=notes + _row_notes(rows, atol, rtol))
    _replay_check(report, out, atol, rtol)
    _blame(report, out, [[leaves[i]] for i in picks], eps, atol, rtol)
    return report


def _picked_gaps(out: Value, leaves: list[Value], picks: list[int]) -> list[tuple[float, float]]:
    """`_kink_gaps` of each leaf moving alone, measured for the picked leaves only."""
    gaps = [(math.inf, math.inf)] * len(leaves)
    for i, gap in zip(picks, _gaps_alone(out, [leaves[i] for i in picks])):
        gaps[i] = gap
    return gaps


def _picked_noise(out: Value, leaves: list[Value], picks: list[int]) -> list[float]:
    """`_noise` of each leaf moving alone, measured for the picked leaves only."""
    noise = [0.0] * len(leaves)
    for i, n in zip(picks, _noise(out, [[leaves[i]] for i in picks])):
        noise[i] = n
    return noise


def _first_derivative_rows(who: str, f, call, values: list[tuple[float, str]], at_point: float, analytic: list[float],
                           kinked: list[bool], labels: list[str], eps: float, atol: float, rtol: float,
                           picks: list[int] | None = None, gaps: list[tuple[float, float]] | None = None,
                           noise: list[float] | None = None) -> tuple[list[GradRow], int]:
    """One row per input of f (`values`: (number, name) pairs, f's value there `at_point`), or per
    input in `picks`: its `analytic` derivative against finite differences of f in that input
    (whose rounding error as that input moves is `noise[i]`, see `_noise`); and the evaluations made."""
    rows, calls, mode = [], 0, _GradMode(at_point, who)
    for i in range(len(values)) if picks is None else picks:
        x, label = values[i][0], labels[i]

        def at(t, i=i, x=x):
            return mode.run(lambda: _output(f, call, [(t if j == i else v, n) for j, (v, n) in enumerate(values)]),
                            t == x)
        d = derivative(at, x, eps, one_sided=kinked[i], kink_gaps=gaps[i] if gaps else (math.inf, math.inf),
                       noise=noise[i] if noise else 0.0)
        calls += d.evaluations
        rows.append(_row(label, analytic[i], d, kinked[i], atol, rtol))
    return rows, calls


def _blame(report: GradReport, out: Value, wrt: list[list[Value]], eps: float, atol: float, rtol: float,
           explain: bool = True) -> None:
    """Name the first wrong node of a failed report. At a kink any value between the one-sided
    slopes passes, a wrong one too, so there every node's local derivative is checked as well:
    a non-differentiable row (for the Values `wrt` lists for it) that a wrong one reaches FAILs.
    `explain`: say why a row FAILs where no node is wrong (not for gradgradcheck, whose rows come
    from rules of their own)."""
    if report and not report.kinks and not report.unchecked:
        return
    order = topological_order(out)
    culprits = _culprits(order, eps, atol, rtol)
    # the sets of `wrt` each node depends on, found once (a subgraph walked per wrong node took 3 s for 3000 of them)
    reach = {id(v): mask for v, mask in _dependence(order, wrt)}
    seen: list[Culprit] = []  # the wrong nodes found so far, in order

    def next_culprit() -> Culprit | None:
        found = next(culprits, None)
        if found is not None:
            seen.append(found)
        return found
    culprit = next_culprit()
    # each such row FAILs through the first wrong node that reaches it, not only through the first of all
    # (a wrong rule on a Value f holds, reaching no input, hid one reaching an entry between the slopes)
    pending = [(k, row) for k, (row, _) in enumerate(zip(report.rows, wrt)) if row.status in (KINK, UNCHECKABLE)]
    found: Culprit | None = culprit
    through: list[tuple[int, Culprit]] = []  # each note below, with the wrong node it names
    while found is not None and pending:
        below = _reached(found, reach)
        excused = [row for k, row in pending if below >> k & 1]
        for row in excused:
            row.status = FAIL
        if excused:
            through.append((len(report.notes), found))
            report.notes.append(f"note: {', '.join(r.name for r in excused)} "
                                f"{'lies' if len(excused) == 1 else 'lie'} between the one-sided slopes at a kink, "
                                f"or where finite differences cannot check {'it' if len(excused) == 1 else 'them'}, "
                                f"but through a wrong local derivative (the first wrong node, below)")
        pending = [(k, row) for k, row in pending if row.status != FAIL]
        found = next_culprit() if pending else None
    if culprit is None and explain:  # no node is wrong: a row outside the slopes comes from kinks met one after another
        outside = [(r, n, vs) for r, n, vs in zip(report.rows, _kinks_reached(out, wrt) if report.failures else [], wrt)
                   if r.status == FAIL and r.at_kink]
        # through one op at its kink the chain rule stays between f's slopes; through more, the graph's own
        # one-sided slopes (the ops' directional derivatives, chained) must be f's, else the graph lacks part of f,
        # and an op at its kink whose inputs move together must add its partials up to one of its own slopes
        agree = {id(r): len(vs) == 1 and _graph_slopes_agree(r, out, vs[0], atol, rtol) for r, _, vs in outside}
        chained = [r for r, n, vs in outside
                   if n >= 2 and (len(vs) > 1 or (agree[id(r)] and _partials_add_up(out, vs[0], atol, rtol)))]
        for row in chained:
            row.status, row.detail = KINK, CHAINED
        if chained:
            report.notes.append(f"note: {', '.join(r.name for r in chained)} {'lies' if len(chained) == 1 else 'lie'} "
                                f"outside the one-sided slopes, but every node's local derivative agrees with finite "
                                f"differences of its op: through kinks met one after another, the chain rule of "
                                f"the ops' one-sided derivatives can leave f's slopes (autodiff's answer, torch's too)")
        # where the graph's slopes are f's all the same, an op whose inputs move together has partial
        # derivatives, each a one-sided one alone, that add up to none of its slopes (max(x, x), both partials 1)
        rest = [(r, n, vs) for r, n, vs in outside if r not in chained]
        combined = [r.name for r, _, _ in rest if agree[id(r)]]
        single = [r.name for r, _, _ in rest if r.name not in combined]
        if combined:
            report.notes.append(f"note: {', '.join(combined)} {'lies' if len(combined) == 1 else 'lie'} outside "
                                f"the one-sided slopes, though every node's local derivative agrees with finite "
                                f"differences of its op and the graph's own one-sided slopes are f's: an op at its "
                                f"kink whose inputs move together has partial derivatives that, each a one-sided "
                                f"one alone, add up to none of its own slopes along that motion (max(x, x) with "
                                f"both partials 1)")
        if single:
            report.notes.append(f"note: {', '.join(single)} {'lies' if len(single) == 1 else 'lie'} outside the "
                                f"one-sided slopes, though every node's local derivative agrees with finite "
                                f"differences of its op, and the graph's own one-sided slopes are not f's: f's graph "
                                f"misses part of how f depends on {'it' if len(single) == 1 else 'them'} (f uses "
                                f".data, float() or a Value it makes from a number), or an op has a kink there "
                                f"that it does not declare (define_op(..., kinks=...))")
        # a FAIL no rounding explains, with every node right: the graph does not hold all of f. Rounding
        # is that of f's value or of intermediates of order 1 (x - log1p(x) at 0: 2e-17 off, its
        # intermediates 1e-4 at the steps, none at x, where the estimate looks)
        missing = [r.name for r in report.rows if r.status == FAIL and not r.at_kink and not r.name.startswith(
            "compile: ") and r.abs_err > max(10 * r.error, 8 * _MACHINE_EPS * max(1.0, abs(out.data)) / r.step)]
        if missing:
            report.notes.append(f"note: every node's local derivative agrees with finite differences of its op, so "
                                f"the graph misses part of how f depends on {', '.join(missing[:5])}"
                                f"{' ...' if len(missing) > 5 else ''}: f computes some of its value outside it "
                                f"(.data, float(), detach(), no_grad(), or a Value it makes from a number); or "
                                f"an op has a kink within the step that rounding hides (behind a large offset)")
    if not report:  # the wrong node shown is the first that a failing row comes through (else the first of all:
        # one on a Value f holds, reaching no input, was shown for a row that a later one made FAIL)
        failing = sum(1 << k for k, (row, _) in enumerate(zip(report.rows, wrt)) if row.status in (FAIL, NONFINITE))
        shown = _first_reaching(itertools.chain(seen, iter(next_culprit, None)), reach, failing)
        report.culprit = shown or culprit
        for i, c in through:  # a note on rows another wrong node made FAIL names it (it named the one shown below)
            if c is not report.culprit:
                report.notes[i] = report.notes[i].replace("(the first wrong node, below)",
                                                          f"(another wrong node: {str(c).split(': ', 1)[1]})")


def _graph_slopes_agree(row: GradRow, out: Value, x: Value, atol: float, rtol: float) -> bool:
    """Are the graph's one-sided slopes in x, chained through each node (an op at its kink by its
    directional derivative along its inputs' motion, measured), the row's slopes of f?"""
    for sign, slope in ((1.0, row.right), (-1.0, row.left)):
        tangent = {id(x): sign}
        for v in topological_order(out):
            moving = [(i, tangent[id(u)]) for i, u in enumerate(v.inputs) if id(u) in tangent]
            if not moving or id(v) in tangent:
                continue
            if _at_kink(v):
                tangent[id(v)] = _slope_along(v, [tangent.get(id(u), 0.0) for u in v.inputs])
            else:
                tangent[id(v)] = math.fsum(v._local[i] * t for i, t in moving)
        ours = sign * tangent.get(id(out), 0.0)  # f(x - s) = f(x) + s * tangent: the left slope is -tangent
        if not (math.isfinite(ours) and _close(ours, slope, atol, rtol)):
            return False
    return True


def _slope_along(v: Value, ts: list[float]) -> float:
    """The right-sided slope of v's op as its inputs move from their numbers by ts times s (NaN
    where none settles): an op at its kink, measured."""
    op, xs = v._op, [u.data for u in v.inputs]

    def along(s: float) -> float:
        return _finite(op.forward(*(a + s * t for a, t in zip(xs, ts))))  # type: ignore[union-attr]
    side = _side(along, 0.0, along(0.0), EPS, 1.0)
    return side.value if side is not None else math.nan


def _partials_add_up(out: Value, x: Value, atol: float, rtol: float) -> bool:
    """Does each op at its kink whose inputs move with x (as autodiff's chain moves them) add its partial
    derivatives along that motion up to a value between its own one-sided slopes along it? Each partial
    alone can be one-sided and their sum none: max(x, x) with both partials 1 gives 2 for slopes of 1."""
    tangent = {id(x): 1.0}
    for v in topological_order(out):
        moving = [(i, tangent[id(u)]) for i, u in enumerate(v.inputs) if id(u) in tangent]
        if not moving or id(v) in tangent:
            continue
        tangent[id(v)] = chain = math.fsum(v._local[i] * t for i, t in moving)
        if len(moving) < 2 or not _at_kink(v):
            continue  # one moving input: its partial is checked by blame
        ts = [tangent.get(id(u), 0.0) for u in v.inputs]
        slopes = [sign * _slope_along(v, [sign * t for t in ts]) for sign in (1.0, -1.0)]
        if not all(map(math.isfinite, slopes)):
            return False
        low, high = min(slopes), max(slopes)
        if not low - (atol + rtol * max(abs(low), abs(high))) <= chain <= high + atol + rtol * max(abs(low), abs(high)):
            return False
    return True


def _kinks_reached(out: Value, wrt: list[list[Value]]) -> list[int]:
    """For each set of Values in `wrt`: how many nodes of out's graph that depend on it sit at a declared kink."""
    counts = [0] * len(wrt)
    for v, mask in _dependence(topological_order(out), wrt):
        if mask and _at_kink(v):
            for k in _bits(mask):
                counts[k] += 1
    return counts


@_with_grad
def blame(out: Value, *, eps: float = EPS, atol: float = 1e-5, rtol: float = 1e-3) -> Culprit | None:
    """The first node (in topological order) whose stored local derivative disagrees with
    finite differences of its op's forward by more than their estimated error; None if none does."""
    if not isinstance(out, Value):
        raise TypeError(f"blame: out must be a Value, got {type(out).__name__} {out!r:.60}")
    eps, atol, rtol = _checked("blame", eps, atol, rtol)
    order = topological_order(out)
    _check_unchanged((v for v in order if v.inputs), "blame")  # stale local derivatives would be blamed
    return next(_culprits(order, eps, atol, rtol), None)


def _culprits(order: list[Value], eps: float, atol: float, rtol: float) -> Iterator[Culprit]:
    """Each node of `order` (a topological order) whose local derivative disagrees with its op (see `blame`)."""
    for v in order:
        if not v.inputs:
            continue
        xs = [x.data for x in v.inputs]
        kinks = v._op.kinks  # type: ignore[union-attr]
        at_kink = kinks is not None and bool(kinks(*xs))
        for i, x in enumerate(v.inputs):
            if not x.requires_grad:
                continue

            def fwd(t, i=i):
                return _finite(v._op.forward(*xs[:i], t, *xs[i + 1:]))
            gap = (math.inf, math.inf)
            if i == 0 and kinks is not None and v._op.builtin and not at_kink:  # type: ignore[union-attr]
                gap = (xs[0], math.inf) if xs[0] > 0 else (math.inf, -xs[0])  # a built-in's kink: its input at 0
            d = derivative(fwd, xs[i], eps, one_sided=at_kink, kink_gaps=gap)
            local = v._local[i]
            if _disagrees(local, d, at_kink, atol, rtol):
                yield Culprit(v, i, local, d.value)


def _reached(culprit: Culprit, reach: dict[int, int]) -> int:
    """The bitmask of the checks (sets of Values, see `_dependence`) the culprit's wrong derivative reaches."""
    return reach.get(id(culprit.node.inputs[culprit.index]), 0)


def _first_reaching(culprits: Iterable[Culprit], reach: dict[int, int], checks: int) -> Culprit | None:
    """The first of `culprits` whose wrong derivative reaches one of the checks in the bitmask `checks`."""
    return next((c for c in culprits if _reached(c, reach) & checks), None)


def _finite(y: float) -> float:
    """An op's forward value, refused as the engine refuses it where it is not finite: outside the op's domain
    for the finite differences (x * x at 1.34e154 + h is inf, where gradcheck's own steps stop short of it;
    blame's differences gave nan and named the right '*' the first wrong node, passing a wrong one beside it)."""
    if not math.isfinite(y):
        raise OverflowError(f"result is not finite ({y})")
    return y


def _disagrees(local: float, d: Derivative, kink: bool, atol: float, rtol: float) -> bool:
    """Does a node's local derivative FAIL against d (not where rounding swamps, x + 1e15) by more
    than d's estimated error (tanh at 10 under atol=0 is 1.7e-13 off a reference good to 1.8e-12)?"""
    status = _judge(local, d, kink, atol, rtol)
    if status != FAIL:
        return status == NONFINITE
    apart = (kink or d.kink) and math.isfinite(d.left) and math.isfinite(d.right) and \
        (d.jump or not _close(d.right, d.left, atol, rtol))
    return apart or abs(local - _reference(d, kink)) > _error(d)


def _replay_check(report: GradReport, out: Value, atol: float, rtol: float) -> None:
    """FAIL the report at the first node of a `define_op` op that computes another number on
    arrays, as `compile` replays it, than on floats: its array_forward or a derivative rule
    (the scalar engine never runs them, so every finite-difference check passes)."""
    from microgradnn import replay
    for v in topological_order(out):
        op = v._op
        if op is None or op.builtin:
            continue
        xs = [x.data for x in v.inputs]
        arrays = [np.full(2, x) for x in xs]
        try:
            with np.errstate(all="ignore"):
                pairs = [("forward", np.asarray(replay.array_forward(op)(*arrays), float), v.data)]
                floats = op.local_grads(xs, v.data)
                on_arrays = replay._array_local_grads(op, arrays, np.full(2, v.data), [True] * len(xs))
        except (ArithmeticError, ValueError, TypeError):
            continue  # replay raises there too: not a silent difference
        pairs += [(f"derivative rule {i}", np.asarray(a, float), float(f)) for i, (a, f) in
                  enumerate(zip(on_arrays, floats))]
        for what, got, want in pairs:
            bad = [float(g) for g in np.broadcast_to(got, (2,))
                   if not (math.isfinite(g) and _close(g, want, atol, rtol))]
            if bad and math.isfinite(want):
                shown = ", ".join(f"{x:.6g}" for x in xs)
                report.rows.append(GradRow(f"compile: {op.name}({shown}) {what}", bad[0], want, FAIL))
                report.notes.append(f"note: op {op.name!r} computes {_num(bad[0])} on arrays (its "
                                    f"{'array_forward' if what == 'forward' else what}, as compile replays it) "
                                    f"but {_num(want)} on floats at {op.name}({shown}): a compiled model trains "
                                    f"on another loss or gradient")
                return


def _fname(f) -> str:
    return getattr(f, "__name__", type(f).__name__)


def assert_gradients_close(f: Callable[..., Value], inputs: Inputs, *, eps: float = EPS, atol: float = 1e-5,
                           rtol: float = 1e-3, sample: int | None = None, seed: int = 0) -> GradReport:
    """`gradcheck`, raising AssertionError with the table (worst input first) if any fails."""
    __tracebackhide__ = True  # pytest shows the failure at the caller's line
    return assert_report(gradcheck(f, inputs, eps=eps, atol=atol, rtol=rtol, sample=sample, seed=seed))


def assert_report(report: GradReport) -> GradReport:
    """Raise AssertionError with the report's table (worst entry first) unless it passed."""
    __tracebackhide__ = True
    if not report:
        raise AssertionError(str(report))
    return report


def _grads(out: Value, wrt: list[Value], create_graph: bool = False) -> tuple:
    """grad(out, wrt), 0 for an input out was not computed from, and for each when out does not
    require grad (made under no_grad, detached, or from constants only: nothing reaches wrt)."""
    if out.requires_grad:
        return grad(out, wrt, create_graph=create_graph, materialize_grads=True)
    return tuple(Value(0.0, requires_grad=False) if create_graph else 0.0 for _ in wrt)


@_with_grad
def gradgradcheck(f: Callable[..., Value], inputs: Inputs, *, eps: float = EPS, atol: float = 1e-5,
                  rtol: float = 1e-3) -> GradReport:
    """Compare second derivatives from `grad(create_graph=True)` with finite differences of
    the first derivatives, one row per pair of inputs; then the first derivatives it gives
    with finite differences of f, one row per input (a wrong one can have right derivatives)."""
    eps, atol, rtol = _checked("gradgradcheck", eps, atol, rtol)
    names, xs, call = _flatten(inputs, "gradgradcheck")
    leaves = [Value(v, n) for v, n in zip(xs, names)]
    out = call(f, leaves)
    if not isinstance(out, Value):
        raise TypeError(f"gradgradcheck: f must return a Value, got {type(out).__name__} {out!r:.60}")
    _check_cost("gradgradcheck", 7 * len(xs) * (len(xs) + 1), out,
                f"checking {len(xs) ** 2:,} second derivatives and {len(xs):,} first ones",
                "check a function of fewer inputs, or ")
    kinked = _kinked(out, leaves)
    gaps = _gaps_alone(out, leaves)
    rows, calls, notes = [], 0, []
    nan = [math.nan] * len(leaves)
    firsts, seconds = nan, [nan] * len(leaves)
    try:
        graphs = _grads(out, leaves, create_graph=True)
        firsts = [g.data for g in graphs]
        seconds = [list(_grads(g, leaves)) for g in graphs]
    except (ValueError, OverflowError) as e:  # a derivative that is not finite: nan rows, and why
        notes.append(f"note: {e}")
    for i, second in enumerate(seconds):
        for j, x in enumerate(xs):
            def first_at(t, i=i, j=j):
                vs = [Value(t if k == j else v, n) for k, (v, n) in enumerate(zip(xs, names))]
                return _grads(call(f, vs), [vs[i]])[0]
            d = derivative(first_at, x, eps, one_sided=kinked[j], kink_gaps=gaps[j])
            calls += d.evaluations
            rows.append(_row(f"d2/d{names[i]} d{names[j]}", second[j], d, kinked[j], atol, rtol))
    # the create_graph path has rules of its own (run on Values)
    more, evaluations = _first_derivative_rows("gradgradcheck", f, call, list(zip(xs, names)), out.data, firsts,
                                               kinked, [f"d/d{n} (create_graph)" for n in names], eps, atol, rtol,
                                               gaps=gaps, noise=_noise(out, [[v] for v in leaves]))
    # a first derivative at a kink, or where rounding swamps f, passes unless a wrong node reaches it
    firsts_report = GradReport("", more)
    _blame(firsts_report, out, [[v] for v in leaves], eps, atol, rtol, explain=False)
    rows, calls = rows + more, calls + evaluations
    # the second derivatives' reference is finite differences of backward's first derivatives (rules run on
    # floats): where those differ from create_graph's, they are checked too, so that a wrong float rule is
    # named as such, not only through the right second derivatives it seems to contradict
    try:
        on_floats = list(_grads(out, leaves))
    except (ValueError, OverflowError):
        on_floats = nan
    differ = [i for i, (a, b) in enumerate(zip(on_floats, firsts))
              if math.isfinite(a) and math.isfinite(b) and not _close(a, b, atol, rtol)]
    if differ:
        extra, evaluations = _first_derivative_rows("gradgradcheck", f, call, list(zip(xs, names)), out.data,
                                                    on_floats, kinked, [f"d/d{n} (backward)" for n in names], eps,
                                                    atol, rtol, differ, gaps, _noise(out, [[v] for v in leaves]))
        rows, calls = rows + extra, calls + evaluations
        notes.append(f"note: backward's first derivatives (the rules run on floats) differ from those "
                     f"grad(create_graph=True) gives for {', '.join(names[i] for i in differ[:5])}"
                     f"{' ...' if len(differ) > 5 else ''}; the second derivatives are measured by finite "
                     f"differences of backward's, so where a (backward) row FAILs, the rule on floats is wrong "
                     f"and the second derivatives' numeric column is off with it")
    culprit = firsts_report.culprit
    failing = sum(1 << i for i, row in zip(differ, extra) if row.status in (FAIL, NONFINITE)) if differ else 0
    if culprit is None and failing:  # the wrong rule on floats that a failing (backward) row comes through
        order = topological_order(out)
        reach = {id(v): mask for v, mask in _dependence(order, [[v] for v in leaves])}
        culprit = _first_reaching(_culprits(order, eps, atol, rtol), reach, failing)
    return GradReport(f"gradgradcheck of {_fname(f)} ({_tolerances(eps, atol, rtol)})", rows, evaluations=calls,
                      notes=notes + _row_notes(rows, atol, rtol) + firsts_report.notes, culprit=culprit)


@_with_grad
def compare_with_torch(f: Callable, inputs: Inputs, *, atol: float = 1e-12, rtol: float = 1e-10) -> GradReport:
    """Run f on Values and on float64 torch tensors; compare the output and every gradient."""
    __tracebackhide__ = _missing_torch  # pytest shows "pip install torch" at the caller's line
    _, atol, rtol = _checked("compare_with_torch", None, atol, rtol)
    try:
        import torch
    except ImportError:
        raise ImportError("compare_with_torch needs PyTorch: pip install torch") from None
    _teach_ops_torch(torch)
    names, xs, call = _flatten(inputs, "compare_with_torch")
    leaves = [Value(v, n) for v, n in zip(xs, names)]
    out = call(f, leaves)
    if not isinstance(out, Value):
        raise TypeError(f"compare_with_torch: f must return a Value, got {type(out).__name__} {out!r:.60}")
    notes: list[str] = []
    grads = _backward_grads(out, leaves, notes)
    tensors = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in xs]
    try:
        with warnings.catch_warnings():  # a Value made inside f reads a tensor as a float: refused below, not warned
            warnings.filterwarnings("ignore", "Converting a tensor with requires_grad=True to a scalar")
            t_out = call(f, tensors)
    except AttributeError as e:  # x.softplus(): a Value method torch's tensors do not have
        method = getattr(e, "name", None)
        if not (method and hasattr(Value, method) and hasattr(engine, method)):
            raise
        raise TypeError(f"compare_with_torch: f ran on float64 tensors and failed ({e}): write "
                        f"mg.{method}(x, ...) instead of x.{method}(...), as the engine's functions "
                        f"run on tensors too") from None
    if not isinstance(t_out, torch.Tensor) or t_out.numel() != 1:
        shown = type(t_out).__name__ if not isinstance(t_out, torch.Tensor) else f"tensor of shape {tuple(t_out.shape)}"
        raise TypeError(f"compare_with_torch: on float64 tensors f must return a one-number tensor, got {shown} "
                        "(a Value made inside f, such as Value(2.0) * x, reads the tensors as floats: "
                        "use plain numbers for constants)")
    if t_out.requires_grad:  # else (x.detach(), computed under no_grad) no gradient reaches the inputs, as ours
        t_out.backward()
    pairs = [("output", out.data, t_out.item())]
    pairs += [(n, g, 0.0 if t.grad is None else t.grad.item()) for n, g, t in zip(names, grads, tensors)]
    rows = [GradRow(n, a, r, (OK if _close(a, r, atol, rtol) else FAIL) if math.isfinite(a) and math.isfinite(r)
                    else NONFINITE) for n, a, r in pairs]
    report = GradReport(f"compare_with_torch of {_fname(f)} (atol={atol:g}, rtol={rtol:g})", rows,
                        columns=("microgradnn", "torch"), graph=out, notes=notes)
    return report


def _missing_torch(excinfo) -> bool:
    return excinfo.errisinstance(ImportError)


def _teach_ops_torch(torch) -> None:
    """Let the engine's functions (`mg.tanh(x)`, `mg.dot`, ...) run on float64 tensors, so a
    function written with them compares on torch too instead of reading tensors as floats."""
    F = torch.nn.functional

    def t(x):
        return x if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float64)
    table = {name: getattr(torch, name) for name in ("exp", "log", "log1p", "sqrt", "tanh", "sigmoid", "relu", "sin",
                                                     "cos", "abs", "neg")}
    table.update({
        "+": lambda a, b: t(a) + t(b), "-": lambda a, b: t(a) - t(b), "*": lambda a, b: t(a) * t(b),
        "/": lambda a, b: t(a) / t(b), "**": lambda a, b: t(a) ** t(b),
        "softplus": lambda a: F.softplus(t(a)), "leaky_relu": lambda a, s: F.leaky_relu(t(a), float(s)),
        "logsumexp": lambda *xs: torch.logsumexp(torch.stack([t(x) for x in xs]), 0),
        "dot": lambda *a: sum((t(w) * t(x) for w, x in zip(a[:len(a) // 2], a[len(a) // 2:-1])), t(a[-1])),
        "is_class": lambda a, k: (t(a) == t(k)).to(torch.float64),
        "tanh_grad": lambda o: (1 - t(o)) * (1 + t(o)),
    })
    for name, forward in table.items():
        op = get_op(name)
        if op.tensor_forward is None:
            op.tensor_forward = lambda *args, _f=forward, _t=t: _f(*map(_t, args)) if args else _f()


def _model_loss(who: str, model, loss_fn: Callable, X, y):
    """loss() -> Value over the whole batch, and a counter of the forward passes it made."""
    if not callable(loss_fn):
        raise TypeError(f"{who}: loss_fn must be a callable (predictions, y) -> Value, got "
                        f"{type(loss_fn).__name__} {loss_fn!r:.60}")
    try:
        batch = np.asarray(X, dtype=float)
    except (TypeError, ValueError):  # ragged rows, text
        batch = np.empty(())
    if batch.ndim == 0:
        raise TypeError(f"{who}: X must be a batch of samples of numbers (an (n, d) array or a list of rows), got "
                        f"{type(X).__name__} {X!r:.60}")
    X = batch
    passes = [0]

    def loss() -> Value:
        passes[0] += 1
        out = loss_fn([model(x) for x in X], y)
        if not isinstance(out, Value):
            raise TypeError(f"{who}: loss_fn must return a Value, got {type(out).__name__} {out!r:.60}")
        return out
    return loss, passes


def _trainable(who: str, model: Module) -> tuple[list[tuple[str, Value]], list[str]]:
    """model's named parameters that require grad (as torch's gradcheck, frozen ones are not
    checked), and a note saying how many were skipped."""
    from microgradnn.nn import Module
    if not isinstance(model, Module):
        raise TypeError(f"{who}: model must be a microgradnn.nn.Module, got {type(model).__name__} {model!r:.60}")
    named = model.named_parameters()
    trainable = [(n, p) for n, p in named if p.requires_grad]
    if not trainable:
        raise ValueError(f"{who}: the model has no parameter that requires grad, got {len(named)} frozen")
    skipped = len(named) - len(trainable)
    note = f"skipped {skipped} frozen parameter{'s' * (skipped != 1)} (requires_grad=False)"
    return trainable, [note] if skipped else []


@_with_grad
def check_module_gradients(model: Module, loss_fn: Callable, X: ArrayLike, y: ArrayLike, *,
                           sample: int | None = None, seed: int = 0, eps: float = EPS, atol: float = 1e-5,
                           rtol: float = 1e-3) -> GradReport:
    """Check d(loss)/d(parameter) of `loss_fn([model(x) for x in X], y)` by finite differences,
    for every parameter that requires grad or a seeded sample of `sample` of them; rows are
    named by `named_parameters()`. Parameters' data (with their versions, so graphs made
    before stay usable) and `.grad` are restored afterwards."""
    eps, atol, rtol = _checked("check_module_gradients", eps, atol, rtol)
    if sample is not None:
        sample = positive_int(sample, "check_module_gradients", "sample")
    seed = integer(seed, "check_module_gradients", "seed", at_least=0)
    named, notes = _trainable("check_module_gradients", model)
    if sample is not None and sample < len(named):
        picks = np.random.default_rng(seed).choice(len(named), size=sample, replace=False)
        notes.append(f"checked a sample of {sample} of the {len(named)} parameters that require grad "
                     f"(sample={sample}, seed={seed}); the others were not checked")
        named = [named[i] for i in sorted(picks)]
    loss, passes = _model_loss("check_module_gradients", model, loss_fn, X, y)
    out = loss()
    _check_cost("check_module_gradients", 7 * len(named), out, f"checking {len(named):,} parameters",
                "pass sample=N to check N parameters picked at random, or directional_check, which checks them "
                "all at once; or ")
    grads = _backward_grads(out, [p for _, p in named], notes)
    kinked = _kinked(out, [p for _, p in named])
    rows, mode = [], _GradMode(out.data, "check_module_gradients", "the loss")
    gaps, noises = _gaps_alone(out, [p for _, p in named]), _noise(out, [[p] for _, p in named])
    for (name, p), g, kink, gap, noise in zip(named, grads, kinked, gaps, noises):
        original, version = p.data, version_of(p)

        def at(t, p=p, original=original):
            p.data = t
            return mode.run(loss, t == original)
        try:
            d = derivative(at, original, eps, one_sided=kink, kink_gaps=gap, noise=noise)
        finally:
            restore([p], [original], [version])
        rows.append(_row(name, g, d, kink, atol, rtol))
    report = GradReport(f"check_module_gradients of {model!r} ({_tolerances(eps, atol, rtol)})", rows, graph=out,
                        evaluations=passes[0], notes=notes + _row_notes(rows, atol, rtol))
    _replay_check(report, out, atol, rtol)
    _blame(report, out, [[p] for _, p in named], eps, atol, rtol)
    return report


@_with_grad
def directional_check(model: Module, loss_fn: Callable, X: ArrayLike, y: ArrayLike, *, seed: int = 0,
                      eps: float = EPS, atol: float = 1e-7, rtol: float = 1e-6, max_checks: int = 64) -> GradReport:
    """Check every parameter's gradient at once: vᵀ∇loss against the finite-difference
    derivative of loss(θ + t·v) along a random direction v (as torch's gradcheck fast_mode
    and JAX's check_grads), costing a few forward passes however many parameters there are.

    On failure it narrows down by halving: the halves of a failing set of parameters are
    checked along their own part of v, until single parameters are named (at most
    `max_checks` checks), then the first wrong node of the graph is found. Each row is one
    check; `evaluations` counts forward passes, the one for backward included.
    """
    eps, atol, rtol = _checked("directional_check", eps, atol, rtol)
    seed = integer(seed, "directional_check", "seed", at_least=0)
    max_checks = positive_int(max_checks, "directional_check", "max_checks")
    named, skipped = _trainable("directional_check", model)
    params = [p for _, p in named]
    loss, passes = _model_loss("directional_check", model, loss_fn, X, y)
    out = loss()
    notes: list[str] = []
    grads = np.array(_backward_grads(out, params, notes))
    kinked = np.array(_kinked(out, params))
    v = np.random.default_rng(seed).standard_normal(len(params))
    originals, versions = [p.data for p in params], [version_of(p) for p in params]
    mode = _GradMode(out.data, "directional_check", "the loss")

    def check(idx: list[int]) -> GradRow:
        kink = bool(kinked[idx[0]])  # a set is all at a kink or all smooth

        def at(t):
            for i in idx:
                params[i].data = originals[i] + t * v[i]
            return mode.run(loss, t == 0.0)
        try:
            gap = _kink_gaps(out, [[params[i] for i in idx]], [[v[i] for i in idx]])[0]
            noise = _noise(out, [[params[i] for i in idx]])[0]
            d = derivative(at, 0.0, eps, one_sided=kink, kink_gaps=gap, noise=noise)
        finally:
            restore([params[i] for i in idx], [originals[i] for i in idx], [versions[i] for i in idx])
        analytic = math.fsum(grads[idx] * v[idx])
        first, last = named[idx[0]][0], named[idx[-1]][0]
        name = first if len(idx) == 1 else (f"v·grad over {first} .. {last} ({len(idx)} parameters"
                                            f"{', through a kink' if kink else ''})")
        return _row(name, analytic, d, kink, atol, rtol)

    def unsettled(row: GradRow, idx: list[int]) -> bool:
        if row.status in (OK, NONFINITE) or len(idx) == 1 or not kinked[idx[0]]:
            return row.status != OK
        # several parameters behind ops at their kinks: a wrong gradient can lie between the
        # one-sided slopes, a right one outside them (each kink is on its own side): not judged
        # here, only once narrowed down to single parameters
        row.status = KINK
        return True

    # the parameters behind an op at its kink are checked apart from the rest, which must agree strictly
    rows, sets, todo = [], [], []  # sets[k]: the parameters rows[k] checks
    for idx in ([i for i in range(len(params)) if not kinked[i]], [i for i in range(len(params)) if kinked[i]]):
        if idx:
            rows.append(check(idx))
            sets.append(idx)
            if unsettled(rows[-1], idx):
                todo.append((idx, rows[-1]))
    while todo:
        idx, row = todo.pop(0)
        if len(idx) == 1:
            continue
        if len(rows) + 2 > max_checks:
            pending = [(idx, row), *todo]
            for _, r in pending:
                if r.status == KINK:
                    r.status = FAIL  # not narrowed down, so not shown right
            notes.append(f"narrowing stopped after {max_checks} checks (max_checks); sets still failing or passing "
                         f"only as non-differentiable (as a wrong gradient can): "
                         + "; ".join(f"{named[i[0]][0]} .. {named[i[-1]][0]}" for i, _ in pending))
            break
        for half in (idx[:len(idx) // 2], idx[len(idx) // 2:]):
            rows.append(check(half))
            sets.append(half)
            if unsettled(rows[-1], half):
                todo.append((half, rows[-1]))
    report = GradReport(f"directional_check of {model!r} ({_tolerances(eps, atol, rtol)})", rows, graph=out,
                        evaluations=passes[0], notes=skipped + notes + _row_notes(rows, atol, rtol))
    _replay_check(report, out, atol, rtol)
    _blame(report, out, [[params[i] for i in idx] for idx in sets], eps, atol, rtol)
    if not report:
        wrong = [r.name for r in rows if r.status in (FAIL, NONFINITE) and " .. " not in r.name]
        if wrong:
            report.notes.insert(0, f"wrong gradients: {', '.join(wrong)}")
    return report
