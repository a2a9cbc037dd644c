"""Optimizers with PyTorch's update rules, and a linear learning-rate schedule.

Each update runs on one flat array of the parameters' numbers, with the optimizer's state
(momentum, Adam's moments) as arrays too; the parameter Values are read before and written
after, so they stay what the user sees. Elementwise float64 numpy arithmetic is the same IEEE
arithmetic as Python floats, so the numbers are those of a loop over the parameters.
"""
from __future__ import annotations

import math
import operator
import warnings
from typing import Iterable

import numpy as np

from microgradnn._checks import number, positive_int
from microgradnn.engine import Value, assign, changed_since, data_of, data_version

_GRAD = operator.attrgetter("grad")

__all__ = ["Optimizer", "SGD", "Adam", "LinearLR", "OPTIMIZERS"]


class Optimizer:
    """Holds the parameters and the learning rate; subclasses define `step()`."""

    def __init__(self, params: Iterable[Value], lr: float, weight_decay: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for p in self.params:
            if type(p) is not Value:
                raise TypeError(f"{type(self).__name__}: parameters must be Values, got {type(p).__name__}")
        unique = list(dict.fromkeys(self.params))
        if len(unique) != len(self.params):
            # updating a shared parameter once per listing would step it twice (PyTorch warns too)
            warnings.warn(f"{type(self).__name__}: {len(self.params) - len(unique)} parameter(s) listed more than "
                          "once; each is updated once per step", UserWarning, stacklevel=3)
            self.params = unique
        who = type(self).__name__
        self._data: np.ndarray | None = None  # the parameters' numbers as last written, at _version
        self._version = 0
        self.lr = number(lr, who, "lr", 0.0)
        self.weight_decay = number(weight_decay, who, "weight_decay", 0.0)

    def zero_grad(self) -> None:
        """Set every parameter's `.grad` to 0."""
        for p in self.params:
            p.grad = 0.0

    def step(self) -> None:
        """Update every parameter once; if any would become non-finite, refuse and change
        nothing (neither the parameters nor the optimizer's state)."""
        n = len(self.params)
        data = self._data
        if data is None or changed_since(self.params, self._version) is not None:
            data = np.fromiter(data_of(self.params), dtype=float, count=n)
        grads = np.fromiter(map(_GRAD, self.params), dtype=float, count=n)
        if self.weight_decay:
            grads = grads + self.weight_decay * data
        with np.errstate(all="ignore"):
            new, state = self._update(data, grads)
        if not np.isfinite(new).all():  # a non-finite gradient always makes a non-finite update
            if not np.isfinite(grads).all():
                bad = int(np.flatnonzero(~np.isfinite(grads))[0])
                raise ValueError(f"{type(self).__name__}.step: gradient of parameter {bad} "
                                 f"({self.params[bad]!r}) is not finite")
            i = int(np.flatnonzero(~np.isfinite(new))[0])
            raise OverflowError(f"{type(self).__name__}.step: parameter {i} ({self.params[i]!r}) would become "
                                f"{new[i]}; nothing was updated. The learning rate (lr={self.lr:g}) is usually "
                                "too large when training diverges")
        assign(self.params, new.tolist())
        self._data, self._version = new, data_version()  # read again only if a parameter is set meanwhile
        for name, array in state.items():
            setattr(self, name, array)

    def _update(self, data: np.ndarray, grads: np.ndarray) -> tuple[np.ndarray, dict]:
        """The new parameter vector from the old one and the gradients (weight decay included),
        and the optimizer's new state (kept only if every new parameter is finite)."""
        raise NotImplementedError


class SGD(Optimizer):
    """p -= lr * v, with v = momentum * v + (grad + weight_decay * p) (v = that sum at step 1)."""

    def __init__(self, params: Iterable[Value], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        self.momentum = number(momentum, "SGD", "momentum", 0.0, 1.0, hi_open=True)
        self.velocity: np.ndarray | None = None

    def _update(self, data: np.ndarray, grads: np.ndarray) -> tuple[np.ndarray, dict]:
        velocity = self.velocity
        if self.momentum:
            velocity = grads if velocity is None else self.momentum * velocity + grads
            grads = velocity
        return data - self.lr * grads, {"velocity": velocity}


class Adam(Optimizer):
    """Adam (Kingma & Ba), with bias correction, in the same arithmetic as `torch.optim.Adam`."""

    def __init__(self, params: Iterable[Value], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        if not isinstance(betas, (tuple, list)):
            raise TypeError(f"Adam: betas must be a pair of numbers in [0, 1), got {type(betas).__name__} {betas!r}")
        if len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair of numbers in [0, 1), got {betas!r}")
        self.betas = tuple(number(b, "Adam", "betas", 0.0, 1.0, hi_open=True) for b in betas)
        # eps > 0: v can be 0 (a parameter with no gradient yet), and m / sqrt(v) would divide by zero
        self.eps = number(eps, "Adam", "eps", 0.0, lo_open=True)
        self.t = 0
        self.m = np.zeros(len(self.params))
        self.v = np.zeros(len(self.params))

    def _update(self, data: np.ndarray, grads: np.ndarray) -> tuple[np.ndarray, dict]:
        b1, b2 = self.betas
        t = self.t + 1
        step_size = self.lr / (1 - b1 ** t)
        root_correction = math.sqrt(1 - b2 ** t)
        m = self.m + (1 - b1) * (grads - self.m)  # torch's lerp form
        v = self.v * b2 + (1 - b2) * grads * grads
        return data - step_size * m / (np.sqrt(v) / root_correction + self.eps), {"t": t, "m": m, "v": v}


class LinearLR:
    """Scale the optimizer's lr by a factor going linearly from `start_factor` to `end_factor`
    over `total_iters` calls of `step()`, then holding: `torch.optim.lr_scheduler.LinearLR`,
    with its defaults (1/3, 1.0, 5 iterations)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"LinearLR: optimizer must be an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.start_factor = number(start_factor, "LinearLR", "start_factor", 0.0, 1.0, lo_open=True)
        self.end_factor = number(end_factor, "LinearLR", "end_factor", 0.0, 1.0)
        self.total_iters = positive_int(total_iters, "LinearLR", "total_iters")
        self.last_epoch = 0
        optimizer.lr = self.base_lr * self.start_factor

    def get_last_lr(self) -> list[float]:
        """The learning rate now in use, as a list (one entry per parameter group, as in torch)."""
        return [self.optimizer.lr]

    def step(self) -> None:
        """Advance one iteration and set the optimizer's lr."""
        self.last_epoch += 1
        frac = min(self.last_epoch, self.total_iters) / self.total_iters
        self.optimizer.lr = self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
