"""`Linear`, `Embedding` and `RMSNorm`: the blocks a GPT is built from, in Neuron's scalar style.

Parameter names follow PyTorch's (`weight.3.1` is `weight[3][1]`), so a state maps one to one
onto the same `torch.nn` module.
"""
from __future__ import annotations

import math
import sys
from typing import Callable, Sequence

import numpy as np

from microgradnn.engine import Value, dot
from microgradnn.nn.init import Seed, check_size, generator
from microgradnn._checks import flag, number, positive_int
from microgradnn.nn.module import _OUTERMOST, _TAGGING, Module, as_inputs

__all__ = ["Linear", "Embedding", "RMSNorm"]


def run(module: Module, forward: Callable, *args) -> list[Value]:
    """Call `forward(*args)` as `module`'s call: the outermost call is noted (so nested calls
    skip the input checks), and inside `tag_modules()` every node made here and not by an inner
    module is tagged with `origin = (outermost module, module)`, so drawings can collapse a
    module into one box."""
    outermost = _OUTERMOST.get()
    token = _OUTERMOST.set(module) if outermost is None else None
    try:
        out = forward(*args)
    finally:
        if token is not None:
            _OUTERMOST.reset(token)
    if not _TAGGING.get():
        return out
    who = (outermost or module, module)
    given = {id(v) for v in _values_in(args)}
    seen, stack = set(given), [v for v in out if v.inputs]
    while stack:  # every node between the call's inputs and its outputs; inner modules tagged theirs
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if v.origin is None:
            v.origin = who
        stack.extend(x for x in v.inputs if x.inputs and id(x) not in seen)
    return out


def _values_in(obj):
    """The Values in a call's arguments (in lists, tuples and plain objects such as a cache)."""
    if type(obj) is Value:
        yield obj
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _values_in(x)
    elif hasattr(obj, "__dict__") and not isinstance(obj, Module):
        for x in vars(obj).values():
            yield from _values_in(x)


def _matrix(rows: int, cols: int, std: float | None, bound: float, seed, name: str) -> list[list[Value]]:
    """Values drawn from N(0, std) if std is given, else from U(-bound, bound)."""
    rng = generator(seed)
    w = rng.normal(0.0, std, size=(rows, cols)) if std is not None else rng.uniform(-bound, bound, size=(rows, cols))
    return [[Value(float(w[i, j]), f"{name}[{i},{j}]") for j in range(cols)] for i in range(rows)]


def _check_std(std, who: str) -> float | None:
    return None if std is None else number(std, who, "std (None, or a number)", 0.0)


class Linear(Module):
    """y = W x + b for a list of `nin` Values: `nout` fused dot nodes, as `torch.nn.Linear`.

    Weights and biases start as in PyTorch, uniform in ±1/sqrt(nin); with `std` given, the
    weights start N(0, std) and the biases at 0 (GPT-2's start).
    """

    def __init__(self, nin: int, nout: int, bias: bool = True, *, std: float | None = None, seed: Seed = None) -> None:
        self.nin, self._nout = positive_int(nin, "Linear", "nin"), positive_int(nout, "Linear", "nout")
        flag(bias, "Linear", "bias")  # bias="no" would read as True
        check_size(self.nout * (self.nin + bias), "Linear", f"nin={nin}, nout={nout}")
        bound, std, rng = 1.0 / math.sqrt(self.nin), _check_std(std, "Linear"), generator(seed, "Linear")
        self.weight = _matrix(self.nout, self.nin, std, bound, rng, "W")
        starts = rng.uniform(-bound, bound, size=self.nout) if std is None else np.zeros(self.nout)
        self.bias = [Value(float(b), f"b[{i}]") for i, b in enumerate(starts)] if bias else None

    @property
    def nout(self) -> int:
        """How many outputs."""
        return self._nout

    @property
    def output_activation(self) -> str:
        """No activation: the outputs are W x + b."""
        return "linear"

    def _named_items(self):
        items = [(f"weight.{i}.{j}", w) for i, row in enumerate(self.weight) for j, w in enumerate(row)]
        return items + [(f"bias.{i}", b) for i, b in enumerate(self.bias or ())]

    def __call__(self, x: Sequence[Value | float] | np.ndarray) -> list[Value]:
        if type(x) is not list or len(x) != self.nin or _OUTERMOST.get() is None:
            x = as_inputs(x, self.nin, "Linear")
        return run(self, self.forward, x)

    def forward(self, x: list) -> list[Value]:
        if self.bias is None:
            return [dot(row, x) for row in self.weight]  # type: ignore[misc]  # dot of Values is a Value
        return [dot(row, x, b) for row, b in zip(self.weight, self.bias)]  # type: ignore[misc]  # dot of Values is a Value

    def config(self) -> dict:
        return {"type": "Linear", "nin": self.nin, "nout": self.nout, "bias": self.bias is not None}

    @classmethod
    def config_size(cls, config: dict) -> int:
        nin, nout = positive_int(config["nin"], "Linear", "nin"), positive_int(config["nout"], "Linear", "nout")
        if not isinstance(config["bias"], bool):
            raise TypeError(f"Linear: bias must be True or False, got {config['bias']!r:.60}")
        return nout * (nin + config["bias"])

    @classmethod
    def from_config(cls, config: dict) -> "Linear":
        """A freshly initialised layer of this architecture."""
        return cls(config["nin"], config["nout"], config["bias"], seed=0)

    def __repr__(self) -> str:
        bias = "" if self.bias else ", no bias"
        return f"Linear({self.nin} -> {self.nout}{bias}, {self.num_parameters()} parameters)"


class Embedding(Module):
    """A table of `num` rows of `dim` parameters; `emb(i)` is row i (a list of Values).

    A plain int picks the row's parameters themselves. An index that is a Value (a data
    input while `compile` records) becomes `take` nodes, so one recording serves every index.
    """

    def __init__(self, num: int, dim: int, *, std: float | None = 1.0, seed: Seed = None) -> None:
        self.num, self.dim = positive_int(num, "Embedding", "num"), positive_int(dim, "Embedding", "dim")
        check_size(self.num * self.dim, "Embedding", f"num={num}, dim={dim}")
        std = _check_std(std, "Embedding")  # None: torch's start, N(0, 1), as Linear's None is torch's
        self.weight = _matrix(self.num, self.dim, 1.0 if std is None else std, 0.0, generator(seed, "Embedding"), "E")

    def _named_items(self):
        return [(f"weight.{i}.{j}", w) for i, row in enumerate(self.weight) for j, w in enumerate(row)]

    def __call__(self, index: Value | int) -> list[Value]:  # type: ignore[override]  # an index, not a sample
        return run(self, self.forward, index)

    def forward(self, index: Value | int) -> list[Value]:  # type: ignore[override]
        if type(index) is Value:
            from microgradnn.engine import is_sample_float, take
            if is_sample_float(index):  # a float of the sample, which the scalar loop refuses below
                raise TypeError(f"Embedding: index must be an int in 0..{self.num - 1}, got float {index.data!r} "
                                f"(a float of the sample; compile refuses it as the scalar loop does)")
            columns = list(zip(*self.weight))
            return [take(index, column) for column in columns]  # type: ignore[misc]  # dot of Values is a Value
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):  # torch refuses a float or bool index
            raise TypeError(f"Embedding: index must be an int in 0..{self.num - 1}, got {type(index).__name__} "
                            f"{index!r:.60}")
        if not 0 <= index < self.num:
            raise IndexError(f"Embedding: index must be an int in 0..{self.num - 1}, got {index!r}")
        return list(self.weight[index])  # its parameters in a new list: `x = emb(i); x[0] = ...` leaves the table be

    def config(self) -> dict:
        return {"type": "Embedding", "num": self.num, "dim": self.dim}

    @classmethod
    def config_size(cls, config: dict) -> int:
        return positive_int(config["num"], "Embedding", "num") * positive_int(config["dim"], "Embedding", "dim")

    @classmethod
    def from_config(cls, config: dict) -> "Embedding":
        """A freshly initialised table of this size."""
        return cls(config["num"], config["dim"], seed=0)

    def __repr__(self) -> str:
        return f"Embedding({self.num} x {self.dim}, {self.num_parameters()} parameters)"


class RMSNorm(Module):
    """x_i / sqrt(mean(x^2) + eps) * g_i, with a learned gain g (starting at 1), as `torch.nn.RMSNorm`;
    eps=None is torch's default for float64, its machine epsilon (about 2.2e-16)."""

    def __init__(self, dim: int, eps: float | None = None) -> None:
        self.nin = self.dim = positive_int(dim, "RMSNorm", "dim")
        check_size(self.dim, "RMSNorm", f"dim={dim}")
        self.eps = sys.float_info.epsilon if eps is None else number(eps, "RMSNorm", "eps", 0.0, lo_open=True)
        self.weight = [Value(1.0, f"g[{i}]") for i in range(self.dim)]

    def _named_items(self):
        return [(f"weight.{i}", g) for i, g in enumerate(self.weight)]

    def __call__(self, x: Sequence[Value | float] | np.ndarray) -> list[Value]:
        if type(x) is not list or len(x) != self.dim or _OUTERMOST.get() is None:
            x = as_inputs(x, self.dim, "RMSNorm")
        return run(self, self.forward, x)

    def forward(self, x: list) -> list[Value]:
        mean_square = dot(x, x) / self.dim
        scale = (mean_square + self.eps) ** -0.5
        return [xi * scale * g for xi, g in zip(x, self.weight)]

    def config(self) -> dict:
        return {"type": "RMSNorm", "dim": self.dim, "eps": self.eps}

    @classmethod
    def config_size(cls, config: dict) -> int:
        number(config["eps"], "RMSNorm", "eps", 0.0, lo_open=True)
        return positive_int(config["dim"], "RMSNorm", "dim")

    @classmethod
    def from_config(cls, config: dict) -> "RMSNorm":
        """A fresh norm of this size (gain 1)."""
        return cls(config["dim"], config["eps"])

    def __repr__(self) -> str:
        return f"RMSNorm({self.dim}, eps={self.eps:g})"
