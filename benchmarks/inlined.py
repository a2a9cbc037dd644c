"""A yardstick, not part of the library: the smallest engine that can run the benchmark's graph.

Each op is written out by hand (no op table), inputs are not checked, there is no no_grad,
no requires_grad and no non-finite check; backward is microgradnn's (its walk, then the
nodes sorted by depth).
It shows how fast an engine that makes one Python object per op can get on this interpreter.
"""
from __future__ import annotations

from operator import attrgetter

from microgradnn.engine import _walk

_DEPTH = attrgetter("depth")


def _deeper(a: Value, b: Value) -> int:
    return 1 + (a.depth if a.depth > b.depth else b.depth)


class Value:
    __slots__ = ("data", "grad", "inputs", "local", "depth")

    def __init__(self, data: float, inputs: tuple = (), local: tuple = (), depth: int = 0) -> None:
        self.data = data
        self.grad = 0.0
        self.inputs = inputs
        self.local = local
        self.depth = depth

    def __add__(self, other):
        other = other if type(other) is Value else Value(float(other))
        return Value(self.data + other.data, (self, other), (1.0, 1.0), _deeper(self, other))

    def __mul__(self, other):
        other = other if type(other) is Value else Value(float(other))
        return Value(self.data * other.data, (self, other), (other.data, self.data), _deeper(self, other))

    __radd__, __rmul__ = __add__, __mul__

    def relu(self):
        return Value(self.data if self.data > 0.0 else 0.0, (self,), (float(self.data > 0.0),), self.depth + 1)

    def backward(self) -> None:
        interior, _ = _walk(self)
        self.grad = 1.0
        for v in sorted(interior, key=_DEPTH, reverse=True):
            for x, d in zip(v.inputs, v.local):
                x.grad += d * v.grad
