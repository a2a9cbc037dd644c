"""Guards: while `compile` records one sample, every place user code turns a Value into a
Python bool or number is noted, so replay can check, sample by sample, that it would have
taken the same path.

A recorded graph is only valid for another sample if every such decision comes out the same
for it. The decisions are: comparisons (`v < 0`, `v == 3`, `max(values)`), `float(v)`,
`v.item()`, reading `v.data`, `int(v)` and using `v` as an index (`range(v)`, `xs[v]`). The
engine reports them (`engine.observe_decisions`); this module keeps them with where they were made.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from types import FrameType
from typing import Any, Iterator

from microgradnn.engine import observe_decisions

__all__ = ["Guard", "recording"]

_HERE = {__name__, "microgradnn.engine", "microgradnn.replay"}


@dataclass
class Guard:
    """One decision made while recording: `kind` is a comparison ("<", "<=", ">", ">=", "==",
    "!=") of `a` with `b`, or a conversion of `a` ("float", "int", "index"); `answer` is what
    the recorded sample gave; `where` is the line of code that asked."""
    kind: str
    a: object          # a Value, or a number
    b: object          # a Value, a number, or None for conversions
    answer: object
    where: str

    def describe(self) -> str:
        """What was decided and where, for error messages."""
        what = {"float": "a Value's number (float(), .item() or .data)", "int": "int() of a Value",
                "index": "a Value used as an index"}.get(self.kind, f"a comparison `{self.kind}` of Values")
        return f"{what} at {self.where}"


def _where() -> str:
    """file:line of the innermost caller outside this module and the engine."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in _HERE:
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "?"


@contextlib.contextmanager
def recording() -> Iterator[list[Guard]]:
    """Note every decision user code makes on Values inside the block, in order."""
    guards: list[Guard] = []

    def note(kind: str, a: Any, b: Any, answer: Any) -> Any:
        guards.append(Guard(kind, a, b, answer, _where()))
        return answer
    with observe_decisions(note, internal=_HERE):
        yield guards
