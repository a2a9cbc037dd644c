"""compile's promise, fuzzed: for random functions and batches with awkward numbers in them, the
compiled mean loss and parameter gradients are the scalar engine's, or both refuse (never another number)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import assume, given, settings, strategies as st

import microgradnn as mg
from microgradnn import Value
from microgradnn.engine import ops
from microgradnn.testing.strategies import Expression, expressions

# The engine's own ops (other tests define wrong ones on purpose); those that refuse some numbers three times as often.
RISKY = ["/", "**", "log", "log1p", "sqrt", "exp"]
OPS = [name for name, op in ops().items() if op.builtin and name != "is_class"] + RISKY * 2
REFUSALS = (ArithmeticError, ValueError)  # ArithmeticError: OverflowError, ZeroDivisionError
# Numbers at which ops fail in some samples and not others: 0 and -0 (log, division, 0 ** -1),
# plus and minus the strategy's constants (x - 2.0 is 0), negatives (log, sqrt, a negative base),
# tiny and huge magnitudes (1 / x, x * x overflows, exp overflows at 710 and underflows to 0).
AWKWARD = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, 1e-8, -1e-300, 1e3, -1e3, 710.0, 1e154, -1e200]
SMALL = st.floats(-3.0, 3.0).map(lambda v: round(v, 3) + 0.0)
EXPRESSIONS = expressions(ops=OPS, max_variables=4).filter(lambda e: len(e.values) >= 2)  # an input, a parameter
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None)


@dataclass
class Case:
    """A per-sample loss and a batch X, t: the loss is `expr` (or `above if decide > threshold
    else below`), minus the target if `minus_target`; `inputs` are the variables a row of X
    gives, the others are parameters with the values in `params`."""
    inputs: tuple[str, ...]
    params: dict
    X: list
    t: list
    minus_target: bool
    expr: Expression | None = None
    decide: Expression | None = None
    threshold: float = 0.0
    above: Expression | None = None
    below: Expression | None = None

    def fn(self, params: dict):
        """fn(x, t) for compile, with the parameter Values `params`."""
        def fn(x, t):
            env = dict(zip(self.inputs, x), **params)
            if self.expr is not None:
                loss = self.expr(**env)
            else:
                loss = self.above(**env) if self.decide(**env) > self.threshold else self.below(**env)
            return loss - t if self.minus_target else loss
        return fn

    def __repr__(self) -> str:
        if self.expr is not None:
            lines = [f"loss = {self.expr.source}"]
        else:
            lines = [f"decide = {self.decide.source}", f"above = {self.above.source}", f"below = {self.below.source}",
                     f"loss = above if decide > {self.threshold!r} else below"]
        lines += ["loss = loss - t"] * self.minus_target
        lines += [f"inputs {', '.join(self.inputs)}; parameters {', '.join(f'{k}={v!r}' for k, v in self.params.items())}",
                  f"X = {self.X!r}", f"t = {self.t!r}"]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis prints a falsifying example
        printer.text(repr(self))


def batch(draw, inputs: tuple, values: dict) -> tuple[list, list]:
    """2 to 6 rows of inputs (each number awkward, the one the expression was drawn at, or small) and targets."""
    n = draw(st.integers(2, 6))
    columns = [st.one_of(st.sampled_from(AWKWARD), st.just(values[name]), SMALL) for name in inputs]
    X = [[draw(c) for c in columns] for _ in range(n)]
    t = [draw(st.one_of(st.sampled_from([0.0, 1.0, 1e3]), SMALL)) for _ in range(n)]
    return X, t


@st.composite
def plain_cases(draw) -> Case:
    """A random expression; one or two of its variables are inputs, the others parameters."""
    expr = draw(EXPRESSIONS)
    names = list(expr.values)
    inputs = tuple(draw(st.lists(st.sampled_from(names), min_size=1, max_size=min(2, len(names) - 1), unique=True)))
    X, t = batch(draw, inputs, expr.values)
    return Case(inputs, {k: v for k, v in expr.values.items() if k not in inputs}, X, t, draw(st.booleans()), expr)


@st.composite
def branch_cases(draw) -> Case:
    """`above if decide > threshold else below`, the threshold splitting the batch; sometimes rows
    0, n // 2 and n - 1 all go the same way (an old compile recorded those three only)."""
    decide, above, below = (draw(expressions(ops=OPS, max_variables=3, max_steps=4)) for _ in range(3))
    values = {**below.values, **above.values, **decide.values}
    kept = draw(st.sampled_from(sorted({*above.values, *below.values})))  # a parameter of the loss
    assume(set(decide.values) != {kept})
    first = draw(st.sampled_from([k for k in decide.values if k != kept]))  # decide on data
    others = [k for k in values if k not in (first, kept)]
    inputs = (first, *draw(st.lists(st.sampled_from(others), max_size=1))) if others else (first,)
    params = {k: v for k, v in values.items() if k not in inputs}
    X, t = batch(draw, inputs, values)
    decided = {}  # row -> decide's number, where the scalar engine computes one
    for i, row in enumerate(X):
        try:
            decided[i] = decide(**dict(zip(inputs, map(Value, row))), **{k: Value(v) for k, v in params.items()}).data
        except REFUSALS:
            pass
    sides = sorted(set(decided.values()))
    assume(len(sides) >= 2)
    k = draw(st.integers(0, len(sides) - 2))
    threshold = sides[k] / 2 + sides[k + 1] / 2  # (halves first: no overflow)
    if draw(st.booleans()):  # rows 0, n // 2 and n - 1 from the larger side, the other rows between them in order
        up, down = [i for i, a in decided.items() if a > threshold], [i for i, a in decided.items() if a <= threshold]
        probes = sorted({0, len(X) // 2, len(X) - 1})
        picked = max(up, down, key=len)[:len(probes)]
        if len(picked) == len(probes):
            picks, rest = iter(picked), iter([i for i in range(len(X)) if i not in picked])
            order = [next(picks) if i in probes else next(rest) for i in range(len(X))]
            X, t = [X[i] for i in order], [t[i] for i in order]
    return Case(inputs, params, X, t, draw(st.booleans()), decide=decide, threshold=threshold, above=above, below=below)


def scalar_outcome(case: Case, params: dict):
    """The scalar engine's (mean loss, grads, largest |number| and largest |gradient| in its graph),
    sample by sample, or the error it raises."""
    fn = case.fn(params)
    try:
        losses = [fn([Value(v, requires_grad=False) for v in row], Value(target, requires_grad=False))
                  for row, target in zip(case.X, case.t)]  # as compile makes a sample's Values
        total = losses[0]
        for loss in losses[1:]:
            total = total + loss
        mean = total / len(losses)
        mean.backward()
    except REFUSALS as e:
        return e
    graph = mg.topological_order(mean)
    return mean.data, [p.grad for p in params.values()], max(abs(v.data) for v in graph), max(abs(v.grad) for v in graph)


def compiled_outcome(case: Case, params: dict):
    """compile's (mean loss, grads), or the error it raises (a refused backward adds nothing)."""
    try:
        result = mg.compile(case.fn(params))(np.array(case.X), np.array(case.t))
    except REFUSALS as e:
        return e
    try:
        result.backward()
    except REFUSALS as e:
        assert all(p.grad == 0.0 for p in params.values()), f"a refused backward changed .grad: {e!r}"
        return e
    return result.data, [p.grad for p in params.values()]


def check(case: Case) -> None:
    """compile and the scalar engine agree on the case, or both refuse it."""
    params = {k: Value(v, k) for k, v in case.params.items()}
    expected = scalar_outcome(case, params)
    for p in params.values():
        p.grad = 0.0
    got = compiled_outcome(case, params)
    if isinstance(expected, Exception):
        assert isinstance(got, Exception), f"the scalar engine raised {expected!r}, compiled gave {got}"
        return
    assert not isinstance(got, Exception), f"compiled raised {got!r}, the scalar engine gave {expected[:2]}"
    (loss, grads, size, scale), (c_loss, c_grads) = expected, got
    # Rounding only: numpy sums in other orders (the batch, a dot's terms) and its exp, log, ... may
    # differ in the last bit, so errors scale with the largest number, or gradient, in the graph
    # (b + w*x + w*x with b = 1e154 is 1 or 0 by the order; a gradient 0 may come out as 4e-17).
    assert abs(c_loss - loss) <= 1e-12 * size, f"mean loss: compiled {c_loss!r}, scalar {loss!r}"
    for name, g, c in zip(params, grads, c_grads):
        assert abs(c - g) <= 1e-9 * abs(g) + 1e-12 * scale, \
            f"d(mean loss)/d{name}: compiled {c!r}, scalar {g!r}"


@SETTINGS
@given(plain_cases())
def test_compiled_equals_the_scalar_engine_or_both_refuse(case):
    check(case)


@SETTINGS
@given(branch_cases())
def test_a_branch_on_data_that_splits_the_batch_still_equals_the_scalar_engine(case):
    check(case)
