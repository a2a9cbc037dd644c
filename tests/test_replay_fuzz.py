"""compile's promise, fuzzed: for random functions and batches with awkward numbers in them, the
compiled mean loss and parameter gradients are the scalar engine's, or both refuse (never another number)."""
from __future__ import annotations

from dataclasses import dataclass

import random

import numpy as np
import pytest
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


# ---- random programs -------------------------------------------------------------------------
# fn bodies made of the decisions, loops, lookups and modules compile must see through, run on
# batches of samples of several shapes, with training steps, frozen and unfrozen parameters, and
# data set on Values outside fn between calls of one compiled function.

THRESHOLDS = [0.0, 0.5, -0.5, 1.0, -1.0, 0.25, 2.0]
NUMBERS = [0.0, 0.5, -0.5, 1.0, -1.0, 0.25, 2.0, -2.0, 0.3, 1.5]


def statement(r, depth: int = 0) -> list[str]:
    """One random statement on the running Value `h` (lines of fn's body)."""
    a, b, c, c2 = r.randrange(4), r.randrange(4), r.choice(THRESHOLDS), r.choice(THRESHOLDS)
    lo, hi = min(c, c2), max(c, c2)

    def sub() -> list[str]:
        lines = block(r, depth + 1) if depth < 2 else [f"h = h * W[{r.randrange(4)}] + {r.choice(THRESHOLDS)}"]
        return ["    " + line for line in lines]
    return r.choice([
        lambda: ["for x in s['xs']:", f"    h = (h * W[{a}] + x).tanh()"],  # a loop as long as the sample
        lambda: [f"if h > {c}:", *sub(), "else:", *sub()],
        lambda: [f"if float(h) < {c}:", *sub()],
        lambda: ["if h:", *sub()],
        lambda: [f"h = h + (W[{a}] if h.data > {c} else W[{b}])"],
        lambda: [f"h = {r.choice(['max', 'min'])}(h, W[{a}] * s['t'], {r.choice([f'W[{b}]', c])})"],  # a number?
        lambda: [f"if {lo} < h <= {hi}:", *sub()],
        lambda: ["h = h + table[int(s['k'])]"],
        lambda: ["h = h * W[s['k']]"],
        lambda: ["h = h + mg.take(s['k'], W)"],
        lambda: ["h = h + d[s['k']]"],
        lambda: ["with mg.no_grad():", f"    g = h * W[{a}]", "h = h + g"],
        lambda: [f"h = h + h.detach() * W[{a}]"],
        lambda: ["h = h + m([h, s['t']])"],
        lambda: ["h = h + sum(lin([h, s['xs'][-1]]))"],
        lambda: ["e = emb(s['k'])", "h = h * e[0] + e[1]"],
        lambda: ["h = h * beta"],
        lambda: [f"if beta > {c}:", *sub()],
        lambda: ["if bool(s['b']):", *sub()],
        lambda: ["h = h + table[s['k']]"],
        lambda: [f"if s['t'] > {c}:", *sub()],
        lambda: ["for i in range(int(s['k'])):", f"    h = h * W[{a}] + i"],
        lambda: [f"h = mg.relu(h - {c})"],
        lambda: [f"h = h + W[{a}] ** 2 / (1 + abs(W[{b}]))"],
        lambda: [f"if W[{a}] > {c}:", *sub()],
        lambda: ["for x in s['xs']:", f"    if x > {c}:", "        break", f"    h = h + x * W[{a}]"],
        lambda: ["h = h.tanh()"],
        lambda: [f"h = h + max(W[{a}], W[{b}]) * s['xs'][0]"],
        lambda: [f"h = h * (W[{a}].detach() + 1)"],
        lambda: [f"if W[{a}].data < {c}:", *sub()],
        lambda: ["for x in s['xs']:", "    h = h + emb(s['k'])[0] * x"],
        lambda: [f"h = h + beta * W[{a}] * s['t']"],
        lambda: [f"h = h + h.data * W[{a}]"],
        lambda: [f"h = h + W[{a}] * table[min(int(abs(s['t']) * 2), 3)]"],
        lambda: [f"if h.item() >= {c} or W[{a}] < {c2}:", *sub()],
        lambda: [f"h = h + mg.Value(h) * W[{a}]"],
        lambda: [f"if {lo} <= W[{a}] * s['t'] < {hi}:", *sub(), "else:", "    h = h * beta"],
        lambda: ["h = h + sum(W[j] * x for j, x in enumerate(s['xs']))"],
        lambda: [f"h = h + W[{a}] * (1 if h > {c} else 0)"],
        lambda: [f"h = h + mg.take(s['b'], [W[{a}] * h, {c}])"],
        lambda: [f"h = h + mg.take(s['b'], [mg.take(s['k'], W), W[{a}] * s['t']])"],
        lambda: [f"h = h * mg.take(s['y'], [beta, W[{a}], {c}])"],
        lambda: [f"h = mg.log(abs(h) + {abs(c)})"],
        lambda: [f"h = h / (h - {c})"],
        lambda: ["try:", f"    h = mg.sqrt(h - {c})", "except ValueError:", f"    h = h * W[{a}]"],
        lambda: [f"h = (h * {r.choice([10, 300, 1000])}).exp().tanh()"],
    ])()


def block(r, depth: int) -> list[str]:
    return [line for _ in range(r.randint(1, 2 if depth else 5)) for line in statement(r, depth)]


def program(r) -> str:
    """fn(s) for a sample s = {"xs": [...], "k": int, "y": int, "t": float, "b": 0 or 1}."""
    start = r.choice(["h = W[0] * s['xs'][0] + W[1]", "h = lin([s['xs'][0], s['t']])[0]",
                      "h = m([s['t'], s['xs'][0]])", "h = emb(s['k'])[1] * s['t']", "h = beta * W[2] + s['t']"])
    end = r.choice(["loss = (h - s['t']) ** 2", "loss = L.mse([h], [s['t']])",
                    "loss = L.hinge([h], [1 if s['b'] else -1])",
                    f"loss = L.cross_entropy([[h, W[{r.randrange(4)}] * h, W[{r.randrange(4)}]]], [s['y']])",
                    "loss = L.binary_cross_entropy([h.tanh().sigmoid()], [s['b']])",  # (not saturated: see README)
                    "loss = h"])
    return "\n".join(["def fn(s):", *["    " + line for line in [start, *block(r, 0), end, "return loss"]]])


class World:
    """fn's parameters and the Values it reads from outside."""

    def __init__(self, r) -> None:
        self.W = [Value(r.choice([0.5, -0.5, 0.3, 1.2, -0.8, 0.0]), f"w{i}") for i in range(4)]
        self.beta = Value(r.choice([0.5, -0.5, 1.0]), "beta", requires_grad=False)
        seed = r.randrange(1000)
        self.m = mg.MLP(2, [3, 1], seed=seed)
        self.lin, self.emb = mg.nn.Linear(2, 2, seed=seed + 1), mg.nn.Embedding(4, 2, seed=seed + 2)
        self.table = [r.choice(NUMBERS) for _ in range(4)]
        self.params = [*self.W, *self.m.parameters(), *self.lin.parameters(), *self.emb.parameters()]
        self.optimizer = r.choice([mg.optim.SGD(self.params, lr=0.1), mg.optim.Adam(self.params, lr=0.05)])
        self.values = [*self.params, self.beta]  # the .grads compared

    def scope(self) -> dict:
        return {"mg": mg, "L": mg.losses, "W": self.W, "beta": self.beta, "m": self.m, "lin": self.lin,
                "emb": self.emb, "table": self.table, "d": {0: self.W[1], 1: 0.5, 2: self.W[3], 3: -1.0}}

    def change(self, r) -> None:
        """What a training loop may do between two calls."""
        what = r.randrange(7)
        if what == 0:
            self.optimizer.step()
        elif what == 1:
            self.optimizer.zero_grad(set_to_none=r.random() < 0.5)
        elif what == 2:
            p = r.choice(self.params)
            p.requires_grad_(not p.requires_grad)
        elif what == 3:
            r.choice(self.params).data = r.choice(NUMBERS)
        elif what == 4:
            self.beta.data = r.choice(NUMBERS)
        elif what == 5:
            self.beta.requires_grad_(not self.beta.requires_grad)
        else:
            self.W[r.randrange(4)].data += 0.1


def outcome(run, values: list):
    """(mean loss, error, .grads) of run()."""
    try:
        mean, error = run(), None
    except (ArithmeticError, ValueError, RuntimeError, TypeError, AttributeError) as e:  # (a number has no .tanh())
        mean, error = None, e
    return mean, error, [v.grad for v in values]


def same(a, b, rel: float) -> bool:
    return a is b if a is None or b is None else abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def check_program(seed: int) -> str:
    """Run a random program over a few batches, compiled and as the scalar loop, from the same
    .grads each time; return how the calls went ("=" both gave numbers, "!" both refused, "t" the
    compiled call needed more than max_tapes recordings)."""
    r = random.Random(seed)
    world = World(r)
    source = program(r)
    scope = world.scope()
    exec(source, scope)
    fn = scope["fn"]
    compiled = mg.compile(fn, max_tapes=r.choice([1, 2, 3, 16, 16, 64]))
    lengths = (1, 3) if r.random() < 0.5 else (2, 2)
    seen = ""
    for call in range(r.randint(2, 5)):
        batch = [{"xs": [r.choice(NUMBERS) for _ in range(r.randint(*lengths))], "k": r.randrange(4),
                  "y": r.randrange(3), "t": r.choice(NUMBERS), "b": r.randrange(2)} for _ in range(r.randint(1, 6))]
        start = r.randrange(3)
        for v in world.params:
            v.grad = None if start == 0 else 0.0 if start == 1 else v.grad
        before = [v.grad for v in world.values]

        def scalar():
            mean = sum(fn(s) for s in batch) / len(batch)
            if not isinstance(mean, Value):  # fn returned plain numbers only (compile refuses that)
                raise TypeError(f"the mean is a plain number, {mean!r}")
            mean.backward()
            return mean.data

        def replayed():
            result = compiled(batch)
            result.backward()
            return result.data
        with mg.set_grad_enabled(r.random() > 0.05):
            expected = outcome(scalar, world.values)
            for v, g in zip(world.values, before):
                v.grad = g
            got = outcome(replayed, world.values)
        where = f"seed {seed}, call {call}:\n{source}\nbatch = {batch}"
        if isinstance(got[1], ValueError) and "max_tapes" in str(got[1]):
            seen += "t"
        else:
            if "is a plain number" in str(expected[1]) and "does not require grad" in str(got[1]):
                got = (None, expected[1], got[2])  # a loss computed from the sample's numbers alone, a number
                # in the scalar loop: compiled, a Value without gradient, whose backward() is refused
            assert type(got[1]) is type(expected[1]), f"scalar {expected[1]!r}, compiled {got[1]!r}; {where}"
            seen += "!" if expected[1] else "="
            assert same(expected[0], got[0], 1e-10), f"mean loss: scalar {expected[0]}, compiled {got[0]}; {where}"
            for v, g, c in zip(world.values, expected[2], got[2]):
                assert same(g, c, 1e-9), f"{v.label}.grad: scalar {g!r}, compiled {c!r}; {where}"
        for _ in range(r.randint(0, 3)):
            try:
                world.change(r)
            except (RuntimeError, ValueError):  # (a step whose grads are not all there, say)
                pass
    return seen


@pytest.mark.filterwarnings("ignore:compile. .* recordings made:RuntimeWarning")  # (max_tapes small on purpose)
def test_random_programs_with_decisions_loops_and_training_between_calls_equal_the_scalar_loop():
    seen = "".join(check_program(seed) for seed in range(1000))
    assert seen.count("=") > 1500 and seen.count("!") > 100 and seen.count("t") > 100  # each kind of call is met


def take_source(r, depth: int = 0) -> str:
    """A take of a sample's index over 1 to 3 options: parameters, frozen Values, numbers, products
    of them with the sample's number, and takes (nested)."""
    def option() -> str:
        kind = r.randrange(7 if depth < 2 else 5)
        return [lambda: f"W[{r.randrange(4)}]", lambda: f"W[{r.randrange(4)}] * s['t']",
                lambda: f"{r.choice([0.5, -1.0, 2.0])}", lambda: f"F[{r.randrange(2)}]",
                lambda: f"(F[{r.randrange(2)}] * W[{r.randrange(4)}])", lambda: take_source(r, depth + 1),
                lambda: f"({take_source(r, depth + 1)} * {option()})"][kind]()
    options = [option() for _ in range(r.randint(1, 3))]
    return f"mg.take(s['k{r.randrange(2)}{len(options)}'], [{', '.join(options)}])"


def check_takes(seed: int) -> str:
    """Random takes picking by a sample's numbers, over a few batches, compiled and as the scalar loop,
    with a Value's data set or its freezing toggled between the call and backward() (see check_program)."""
    r = random.Random(seed)
    W = [Value(r.choice([0.5, -0.3, 1.2, 0.0]), f"w{i}") for i in range(4)]
    F = [Value(0.7, "f0", requires_grad=False), Value(-1.1, "f1", requires_grad=False)]
    values = W + F
    end = r.choice(["a", "a + b", "a * b", "a if b > 0 else b", "a if s['t'] > 0 else 1.5", "a + b * W[1]",
                    "(a + W[0]) if s['t'] > 1 else b"])
    source = f"def fn(s):\n    a = {take_source(r)}\n    b = {take_source(r)}\n    return {end}\n"
    scope = {"mg": mg, "W": W, "F": F}
    exec(source, scope)
    fn = scope["fn"]
    seen = ""
    for call in range(3):
        batch = [{"t": r.choice([-1.0, 0.5, 2.0]), **{f"k{k}{n}": r.randrange(n) for k in range(2) for n in (1, 2, 3)}}
                 for _ in range(r.randint(1, 4))]
        target, what = r.choice(values), r.randrange(3)
        data, requires_grad = target.data, target.requires_grad
        start = [r.choice([None, 0.0, 1.0]) for _ in values]
        results = []
        for compiled in (False, True):
            target.data, target.requires_grad = data, requires_grad
            for v, g in zip(values, start):
                v.grad = g

            def run():
                mean = mg.compile(fn)(batch) if compiled else sum(fn(s) for s in batch) / len(batch)
                if not compiled and not isinstance(mean, Value):  # fn returned plain numbers only (refused
                    raise TypeError("the mean is a plain number")  # compiled: "fn must return a Value")
                if what == 1:
                    target.data = 9.0
                elif what == 2:
                    target.requires_grad = not requires_grad
                mean.backward()
                return mean.data
            results.append(outcome(run, values))
        target.data, target.requires_grad = data, requires_grad
        expected, got = results
        if "is a plain number" in str(expected[1]) and "does not require grad" in str(got[1]):
            got = (None, expected[1], got[2])  # a loss from numbers alone: a Value without gradient compiled
        where = f"seed {seed}, call {call}:\n{source}batch = {batch}; then {['nothing', 'data', 'freezing'][what]} of {target.label}"
        assert type(got[1]) is type(expected[1]), f"scalar {expected[1]!r}, compiled {got[1]!r}; {where}"
        assert same(expected[0], got[0], 1e-10), f"mean loss: scalar {expected[0]}, compiled {got[0]}; {where}"
        for v, g, c in zip(values, expected[2], got[2]):
            assert same(g, c, 1e-9), f"{v.label}.grad: scalar {g!r}, compiled {c!r}; {where}"
        seen += "!" if expected[1] else "="
    return seen


def test_random_takes_of_mixed_options_with_values_set_or_unfrozen_before_backward_equal_the_scalar_loop():
    seen = "".join(check_takes(seed) for seed in range(400))
    assert seen.count("=") > 600 and seen.count("!") > 100
