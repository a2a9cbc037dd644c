"""Hypothesis strategies for random expression graphs built from the op table.

    from hypothesis import given
    from microgradnn.testing import assert_gradients_close
    from microgradnn.testing.strategies import expressions

    @given(expressions())
    def test_gradients(expr):
        assert_gradients_close(expr, expr.values)

Each example is a small program over variables x, y, z, ...: steps `t1 = x * y`,
`t2 = tanh(t1)`, ... that may use any earlier step again (shared subexpressions, reused
nodes), with the variables' values. Its repr is a runnable command, so a failing example
shrinks to the smallest one and prints as `microgradnn gradcheck "t1 = x * y; tanh(t1)" x=0.5 y=2.0`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

try:
    from hypothesis import strategies as st
except ImportError:
    raise ImportError("microgradnn.testing.strategies needs hypothesis: pip install hypothesis "
                      "(or pip install 'microgradnn[test]')") from None

from microgradnn import engine
from microgradnn._checks import integer, number, positive_int
from microgradnn.engine import Value

__all__ = ["expressions", "Expression"]

SKIPPED = {"is_class"}  # a step function (its derivative is 0 wherever it exists): nothing to check
VARIABLES = "xyzwuv"
_LIMIT = 1e4  # steps whose value or local derivatives go beyond this are not taken (near a pole)


@dataclass(frozen=True, eq=False)
class Expression:
    """A random expression: `steps` are (name, op, arguments), each argument a variable or
    step name or a float constant; the last step is the result. Call it with Values (by
    variable name) to build its graph; each step is computed once and shared."""
    steps: tuple[tuple[str, str, tuple], ...]
    values: dict
    imports: tuple[str, ...] = ()

    def __call__(self, **variables: Value) -> Value:
        env: dict = dict(variables)
        for name, op, args in self.steps:
            env[name] = engine.get_op(op)(*(env[a] if isinstance(a, str) else a for a in args))
        return env[self.result]

    @property
    def result(self) -> str:
        return self.steps[-1][0] if self.steps else next(iter(self.values))

    @property
    def source(self) -> str:
        """The program in the command line's expression language."""
        lines = [f"{name} = {_call(op, args)}" for name, op, args in self.steps[:-1]]
        last = _call(self.steps[-1][1], self.steps[-1][2]) if self.steps else self.result
        return "; ".join([*lines, last])

    def command(self) -> str:
        """A shell command that checks this expression's gradients."""
        values = " ".join(f"{n}={v!r}" for n, v in self.values.items())
        imports = "".join(f" --import {m}" for m in self.imports)
        return f'microgradnn gradcheck "{self.source}" {values}{imports}'

    __repr__ = command

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis prints a falsifying example
        printer.text(self.command())


def _call(op: str, args: tuple) -> str:
    shown = [a if isinstance(a, str) else repr(a) for a in args]
    row = engine.get_op(op)
    if row.infix:  # the table says how the op is written
        return f"{shown[0]} {row.symbol} {shown[1]}"
    return f"{op}({', '.join(shown)})"


def _arities(op: engine.Op) -> list[int]:
    if op.variadic:  # up to two inputs per group, as its groups allow (dot: 3 or 5)
        return [n for n in range(1, 6) if op.groups(n) is not None][:3]  # type: ignore[misc]
    return [len(op.derivatives)]


def _usable(op: engine.Op, name: str) -> bool:
    return name not in SKIPPED and (op.infix or name.isidentifier())


def expressions(ops: list[str] | None = None, max_variables: int = 3, max_steps: int = 6,
                low: float = -3.0, high: float = 3.0) -> st.SearchStrategy[Expression]:
    """A strategy for `Expression`s over up to `max_variables` variables with values in
    [low, high] and up to `max_steps` ops drawn from `ops` (default: every op in the table
    when drawn, your own `define_op` ops included, except the step function is_class)."""
    max_variables = integer(max_variables, "expressions", "max_variables", at_least=1)
    if max_variables > len(VARIABLES):
        raise ValueError(f"expressions: max_variables must be at most {len(VARIABLES)} (the variables "
                         f"{', '.join(VARIABLES)}), got {max_variables}")
    max_steps = positive_int(max_steps, "expressions", "max_steps")
    low = number(low, "expressions", "low")
    high = number(high, "expressions", "high", low)
    if ops is not None:
        if isinstance(ops, str) or not all(isinstance(n, str) for n in ops):
            raise TypeError(f"expressions: ops must be a list of op names, got {ops!r:.60}")
        if not ops:
            raise ValueError("expressions: ops must name at least one op, got []")
        unknown = [n for n in ops if n not in engine.ops()]
        if unknown:
            raise KeyError(f"expressions: no op named {', '.join(map(repr, unknown))}; "
                           f"known ops: {', '.join(engine.ops())}")
    return _expressions(None if ops is None else list(ops), max_variables, max_steps, low, high)


@st.composite
def _expressions(draw, ops: list[str] | None, max_variables: int, max_steps: int, low: float,
                 high: float) -> Expression:
    table = engine.ops()
    names = [n for n, op in table.items() if _usable(op, n)] if ops is None else ops
    n_vars = draw(st.integers(1, max_variables))
    # six decimals: short commands, and no value so tiny that no finite-difference step fits beside 0;
    # unrounded where rounding leaves [low, high] (low=1e-8, high=1e-7 gave only 0.0)
    number = st.floats(low, high, allow_nan=False, allow_infinity=False).map(
        lambda v: r if low <= (r := round(v, 6) + 0.0) <= high else v)
    env = {VARIABLES[i]: draw(number) for i in range(n_vars)}
    pool = list(env)
    steps: list[tuple] = []
    for _ in range(draw(st.integers(1, max_steps))):
        op = table[draw(st.sampled_from(names))]
        arity = draw(st.sampled_from(_arities(op)))
        args = tuple(draw(st.one_of(st.sampled_from(pool), st.sampled_from(pool[-2:]),
                                    st.sampled_from([2.0, 0.5, -1.0, 3.0])))
                     for _ in range(arity))
        if all(not isinstance(a, str) for a in args):
            continue
        value = _apply(op, [env[a] if isinstance(a, str) else a for a in args])
        if value is None:
            continue  # outside the op's domain, or too close to a pole to check by differences
        name = f"t{len(steps) + 1}"
        env[name] = value
        pool.append(name)
        steps.append((name, op.name, args))
    return _pruned(steps, env, n_vars)


def _apply(op: engine.Op, xs: list[float]) -> float | None:
    """The op's value at xs, or None if it fails there or near there (an edge of its domain,
    where only slowly converging one-sided differences exist), or it or a local derivative is huge."""
    try:
        out: Any = op(*(Value(x) for x in xs))
        for i, x in enumerate(xs):
            for d in (1e-3, -1e-3):
                op.forward(*xs[:i], x + d * max(1.0, abs(x)), *xs[i + 1:])
    except (ArithmeticError, ValueError):
        return None
    if abs(out.data) > _LIMIT or not all(math.isfinite(d) and abs(d) <= _LIMIT for d in out._local):
        return None
    return out.data


def _pruned(steps: list, env: dict, n_vars: int) -> Expression:
    """Only the steps and variables the result depends on."""
    needed = {steps[-1][0]} if steps else {VARIABLES[0]}
    kept = []
    for name, op, args in reversed(steps):
        if name in needed:
            kept.append((name, op, args))
            needed |= {a for a in args if isinstance(a, str)}
    kept.reverse()
    renamed = {name: f"t{i + 1}" for i, (name, _, _) in enumerate(kept)}
    kept = [(renamed[n], op, tuple(renamed.get(a, a) if isinstance(a, str) else a for a in args))
            for n, op, args in kept]
    values = {v: env[v] for v in VARIABLES[:n_vars] if v in needed}
    modules = sorted({engine.get_op(op).forward.__module__ for _, op, _ in kept
                      if op not in engine._BUILTIN} - {"__main__", None})
    return Expression(tuple(kept), values, tuple(modules))
