"""Mutation testing of derivative rules: would your tests notice if an op's derivative were wrong?

Each mutant replaces one derivative rule of one op (sign flipped, scaled by 1.05, shifted by
a small constant, or another input's rule) on the op object itself, so every path that
computes local derivatives (the float backward, `create_graph`, fused nodes, replay) uses it.
The pytest option `--mutate-ops` (and `microgradnn mutate`) runs the tests once per mutant.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import random
from dataclasses import dataclass
from typing import Callable, Iterator

from microgradnn import engine

__all__ = ["Mutant", "mutants", "applied", "is_equivalent", "SCALE", "SHIFT"]

SCALE = 1.05
SHIFT = 1e-3
# where mutants are compared with the rule they replace (0 and 1 too: take's index is an integer)
_POINTS = (-1.3, -0.4, 0.0, 0.6, 1.0, 1.7, 2.5)
_VARIADIC_INPUTS = (5, 3)             # a variadic op is sampled with the first of these its groups allow


@dataclass(frozen=True)
class Mutant:
    """One wrong derivative rule: `rule` replaces `op`'s derivatives[index]."""
    op: str
    index: int
    kind: str
    rule: Callable

    def __str__(self) -> str:
        return f"{self.op}: rule {self.index} {self.kind}"


def _sign(r):
    return lambda *a: -r(*a)


def _scale(r):
    return lambda *a: r(*a) * SCALE


def _shift(r):
    return lambda *a: r(*a) + SHIFT


def _next_input(r):
    return lambda k, n, *a: r((k + 1) % n, n, *a)


def mutants(ops: list[str] | None = None) -> list[Mutant]:
    """Every mutant of every op in the table (or of the named ops), equivalent ones left out."""
    table = engine.ops()
    if ops is not None:
        if isinstance(ops, str) or not all(isinstance(name, str) for name in ops):
            raise TypeError(f"mutants: ops must be a list of op names (str), such as ['tanh'], got "
                            f"{type(ops).__name__} {ops!r:.60}")
        unknown = [name for name in ops if name not in table]
        if unknown:
            raise KeyError(f"no op named {', '.join(map(repr, unknown))}; known ops: {', '.join(table)}")
        table = {name: table[name] for name in ops}
    found = []
    for name, op in table.items():
        rules = op.derivatives
        for i, r in enumerate(rules):
            candidates = [("sign flipped", _sign(r)), (f"scaled by {SCALE}", _scale(r)),
                          (f"shifted by {SHIFT:+g}", _shift(r))]
            candidates += [(f"replaced by rule {j}", other) for j, other in enumerate(rules) if j != i]
            if op.variadic and len(rules) == 1:
                candidates.append(("replaced by the next input's rule", _next_input(r)))
            found += [Mutant(name, i, kind, rule) for kind, rule in candidates
                      if not is_equivalent(Mutant(name, i, kind, rule))]
    return found


@contextlib.contextmanager
def applied(mutant: Mutant) -> Iterator[None]:
    """Put the mutant rule in place on the op object for the duration of the block."""
    op = engine.get_op(mutant.op)
    original = op.derivatives
    rules = list(original)
    rules[mutant.index] = mutant.rule
    op.derivatives = tuple(rules)
    try:
        yield
    finally:
        op.derivatives = original


def _local_grads(op: engine.Op, xs: tuple) -> list | None:
    try:
        out = op.forward(*xs)
        return [float(op.rule(i, len(xs))(*xs, out)) for i in range(len(xs))]
    except (ArithmeticError, ValueError, TypeError):
        return None


def is_equivalent(mutant: Mutant) -> bool:
    """True if the mutant gives the same local derivatives as the real rule at every sample
    point (e.g. flipping the sign of a rule that is always 0): no test could catch it."""
    op = engine.get_op(mutant.op)
    arity = next(n for n in _VARIADIC_INPUTS if op.groups(n)) if op.variadic else len(op.derivatives)  # type: ignore[misc]
    points = list(itertools.product(_POINTS, repeat=arity))
    points = random.Random(0).sample(points, min(400, len(points)))  # every input varies
    compared = False
    for xs in points:
        real = _local_grads(op, xs)
        with applied(mutant):
            wrong = _local_grads(op, xs)
        if real is None or wrong is None:
            continue
        compared = True
        if any(not (a == b or (math.isnan(a) and math.isnan(b))) for a, b in zip(real, wrong)):
            return False
    return compared
