"""Guards: while `compile` records one sample, every place user code turns a Value into a
Python bool or number is noted, so replay can check, sample by sample, that it would have
taken the same path.

A recorded graph is only valid for another sample if every such decision comes out the same
for it. The decisions are: comparisons (`v < 0`, `v == 3`, `max(values)`), `float(v)`,
`v.item()`, reading `v.data`, `int(v)` and using `v` as an index (`range(v)`, `xs[v]`).

Nothing here costs the ordinary engine anything: the Value class gets its recording versions
of these methods only while a recording runs (and back its own afterwards), and they consult
a context variable, so other threads see the usual behaviour.
"""
from __future__ import annotations

import contextlib
import contextvars
import operator
import sys
import threading
from dataclasses import dataclass
from typing import Iterator

from microgradnn.engine import Value

__all__ = ["Guard", "recording"]

_RECORDER: contextvars.ContextVar["list[Guard] | None"] = contextvars.ContextVar("microgradnn_guards", default=None)
_HERE = {__name__, "microgradnn.engine", "microgradnn.replay"}
_SLOT = Value.__dict__["data"]  # the C slot the engine reads and writes


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
        what = {"float": "a Value's number (float(), .item() or .data)", "int": "int() of a Value",
                "index": "a Value used as an index"}.get(self.kind, f"a comparison `{self.kind}` of Values")
        return f"{what} at {self.where}"


def _where() -> str:
    """file:line of the innermost caller outside this module and the engine."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") in _HERE:
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "?"


def _note(kind: str, a, b, answer):
    guards = _RECORDER.get()
    if guards is not None:
        guards.append(Guard(kind, a, b, answer, _where()))
    return answer


def _num(x):
    return _SLOT.__get__(x) if type(x) is Value else x


def _comparison(kind: str, compare):
    def method(self, other):
        if type(other) is not Value and not isinstance(other, (int, float)):
            try:
                other = float(other)
            except (TypeError, ValueError):
                return NotImplemented
        return _note(kind, self, other, compare(_num(self), _num(other)))
    method.__name__ = compare.__name__
    return method


def _equality(kind: str, compare, identity):
    """`==` between a Value and a number compares numbers while recording (the sample's
    numbers arrive as Values, where the scalar call has plain numbers); between two Values
    it stays identity, as everywhere else."""
    def method(self, other):
        if _RECORDER.get() is None or type(other) is Value or not isinstance(other, (int, float)):
            return identity(self, other)
        return _note(kind, self, float(other), compare(_num(self), float(other)))
    return method


class _Data:
    """`Value.data` while recording: reads from user code are noted; the engine's are not."""

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        x = _SLOT.__get__(obj)
        if _RECORDER.get() is not None and sys._getframe(1).f_globals.get("__name__") not in _HERE:
            _note("float", obj, None, x)
        return x

    def __set__(self, obj, value):
        _SLOT.__set__(obj, value)


def _float(self):
    return _note("float", self, None, _SLOT.__get__(self))


def _item(self):
    return _note("float", self, None, _SLOT.__get__(self))


def _int(self):
    if _RECORDER.get() is None:
        raise TypeError(f"int() argument must be a string, a bytes-like object or a real number, not 'Value'")
    return _note("int", self, None, int(_SLOT.__get__(self)))


def _index(self):
    x = _SLOT.__get__(self)
    if _RECORDER.get() is None or x != int(x):
        raise TypeError("'Value' object cannot be interpreted as an integer")
    return _note("index", self, None, int(x))


_RECORDING_METHODS = {
    "data": _Data(), "__float__": _float, "item": _item, "__int__": _int, "__index__": _index,
    "__lt__": _comparison("<", operator.lt), "__le__": _comparison("<=", operator.le),
    "__gt__": _comparison(">", operator.gt), "__ge__": _comparison(">=", operator.ge),
    "__eq__": _equality("==", operator.eq, operator.is_), "__ne__": _equality("!=", operator.ne, operator.is_not),
}
_lock = threading.Lock()
_active = 0
_saved: dict[str, object] = {}


def _install() -> None:
    global _active
    with _lock:
        if _active == 0:
            for name, method in _RECORDING_METHODS.items():
                _saved[name] = Value.__dict__.get(name)
                setattr(Value, name, method)
        _active += 1


def _uninstall() -> None:
    global _active
    with _lock:
        _active -= 1
        if _active == 0:
            for name, original in _saved.items():
                if original is None:
                    delattr(Value, name)
                else:
                    setattr(Value, name, original)
            _saved.clear()


@contextlib.contextmanager
def recording() -> Iterator[list[Guard]]:
    """Note every decision user code makes on Values inside the block, in order."""
    guards: list[Guard] = []
    _install()
    token = _RECORDER.set(guards)
    try:
        yield guards
    finally:
        _RECORDER.reset(token)
        _uninstall()
