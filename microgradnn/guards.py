"""Guards: while `compile` records one sample, every place user code turns a Value into a
Python bool or number is noted, so replay can check, sample by sample, that it would have
taken the same path.

A recorded graph is only valid for another sample if every such decision comes out the same
for it. The decisions are: comparisons (`v < 0`, `v == 3`, `max(values)`), `if v:` (the number's
truth, as `v != 0`), `float(v)`, `v.item()`, reading `v.data`, `Value(v)`, `int(v)`, using `v` as an index
(`range(v)`, `xs[v]`) or a dict key (`hash(v)`, see below), its text (`str(v)`, an f-string, see
below), a gradient `mg.grad()` returns as a float, and an op refusing its inputs (`log(0)`), as fn
may catch the error and go on another way. `==`, `!=`, hashing and text are decisions too on a
Value that is only a Value because compile made the sample's numbers Values. The
engine reports them (`engine.observe_decisions`); this module keeps them with where they were made.
"""
from __future__ import annotations

import contextlib
import numbers
import sys
from dataclasses import dataclass
from types import FrameType
from typing import Any, Callable, Iterable, Iterator, Sequence

from microgradnn.engine import Value, observe_decisions, version_of

__all__ = ["Guard", "recording"]

_HERE = {__name__, "microgradnn.engine", "microgradnn.replay"}
# ops that give an int on ints in the plain call (`**` too, for an exponent >= 0); any other gives a float
_INT_OPS = {"+", "-", "*", "neg", "abs"}


@dataclass
class Guard:
    """One decision made while recording: `kind` is a comparison ("<", "<=", ">", ">=", "==",
    "!=") of `a` with `b`, a conversion of `a` ("float", "int", "index", "hash", "text", "grad"), or "raises":
    op `b` refused the numbers of the Values `a` (a tuple); `answer` is what the recorded
    sample gave; `where` is the line of code that asked. Kind "refused" is no decision: `a`
    met something compile cannot record (`//`), and `answer` says what."""
    kind: str
    a: object          # a Value, or a number
    b: object          # a Value, a number, or None for conversions
    answer: object
    where: str

    def values(self) -> list[Value]:
        """The Values the decision was made on (replay computes them for every sample)."""
        on: Any = self.a if self.kind == "raises" else (self.a, self.b)
        return [x for x in on if type(x) is Value]

    def describe(self) -> str:
        """What was decided and where, for error messages."""
        what = {"float": "a Value's number (float(), .item(), .data or Value(v))", "int": "int() of a Value",
                "index": "a Value used as an index", "hash": "a sample's number hashed (a dict key or set member)",
                "text": "a sample's number shown as text (str(), repr(), an f-string)",
                "grad": "a gradient that mg.grad() returned as a float (without create_graph)",
                "raises": f"{getattr(self.b, 'name', self.b)} refusing its inputs (an error fn caught)",
                }.get(self.kind, f"a comparison `{self.kind}` of Values")
        return f"{what} at {self.where}"


def _where() -> str:
    """file:line of the innermost caller outside this module and the engine."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in _HERE:
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "?"


@contextlib.contextmanager
def recording(samples: Sequence[Value] = (), start: int | None = None, made: list[Value] | None = None,
              floats: Sequence[Value] = (), own: list[Value] | None = None,
              lifted: list[Value] | None = None) -> Iterator[list[Guard]]:
    """Note every decision user code makes on Values inside the block, in order. `samples`
    are the Values made for the sample's numbers, at data version `start`: a Value computed
    from them and from numbers alone is a plain number where fn runs without compile, a float
    if computed from one of `floats` (those of them that are floats there, not ints). Every
    node an op makes inside the block is added to `made`, every Value user code makes with
    `Value()` to `own`, and every number an op lifts into the graph to `lifted`, if given."""
    guards: list[Guard] = []
    start = version_of(samples[0]) if start is None and samples else start
    plain = {id(v): True for v in samples}  # id -> is a plain number (kept alive by `seen`)
    seen: list[Value] = list(samples)

    def fold(v: Value, known: dict[int, bool], leaf: Callable[[Value], bool | None],
             combine: Callable[[Iterable[bool]], bool]) -> bool:
        """known[id(v)], worked out inputs first for v and what it is computed from: `leaf(u)`
        answers for u alone, or None to combine its inputs' answers."""
        stack = [v]
        while stack:
            u = stack[-1]
            if id(u) in known:
                stack.pop()
                continue
            answer = leaf(u)
            if answer is None:
                todo = [x for x in u.inputs if id(x) not in known]
                if todo:
                    stack.extend(todo)
                    continue
                answer = combine(known[id(x)] for x in u.inputs)
            stack.pop()
            known[id(u)] = answer
            seen.append(u)
        return known[id(v)]

    def sample_leaf(u: Value) -> bool | None:
        if u.requires_grad or not u.inputs:  # a parameter; a leaf that is not the sample's
            # (a number lifted into the graph by an op is made after `start`; a Value of the
            # user's own is "made")
            return not u.requires_grad and not u.inputs and start is not None and version_of(u) >= start
        return None

    def number(v: Value) -> bool:
        return fold(v, plain, sample_leaf, all)

    floaty: dict[int, bool] = {}  # id -> a float in the plain call (kept alive by `seen`)
    sample_ids = {id(v) for v in samples}
    ints = sample_ids - {id(v) for v in floats}  # the sample's ints, and the ints ops lifted

    def float_leaf(u: Value) -> bool | None:
        if not u.inputs:
            return id(u) not in ints
        if u.op == "**":  # int ** int is a float for a negative exponent: a decision, if the sample's
            e = u.inputs[1]
            negative = e.data < 0
            if e.inputs or id(e) in sample_ids:
                note("<", e, 0.0, negative)
            return True if negative else None
        return None if u.op in _INT_OPS else True

    def inexact(v: Value) -> bool:
        return number(v) and fold(v, floaty, float_leaf, any)

    def note(kind: str, a: Any, b: Any, answer: Any) -> Any:
        if kind == "node":
            if made is not None:
                made.append(a)
            return None
        if kind == "constant":
            if isinstance(answer, numbers.Integral):  # int, bool, a numpy int: an int in the plain call
                ints.add(id(a))
                seen.append(a)
            if lifted is not None:
                lifted.append(a)
            return None
        if kind == "made":
            plain[id(a)] = False
            seen.append(a)
            if own is not None:
                own.append(a)
            return None
        guards.append(Guard(kind, a, b, answer, _where()))
        return answer
    with observe_decisions(note, internal=_HERE, number=number, inexact=inexact):
        yield guards
