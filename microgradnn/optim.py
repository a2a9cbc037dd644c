"""Optimizers with PyTorch's update rules, and a linear learning-rate schedule."""
from __future__ import annotations

import math
import warnings
from typing import Iterable

from microgradnn._checks import number, positive_int
from microgradnn import engine
from microgradnn.engine import Value, _to_float

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
        self.lr = number(lr, who, "lr", 0.0)
        self.weight_decay = number(weight_decay, who, "weight_decay", 0.0)

    def zero_grad(self) -> None:
        """Set every parameter's `.grad` to 0."""
        for p in self.params:
            p.grad = 0.0

    def _grads(self) -> list[float]:
        grads = [p.grad for p in self.params]
        wd = self.weight_decay
        if wd:
            grads = [g + wd * x for g, x in zip(grads, engine._read(self.params))]
        if not math.isfinite(sum(grads)):  # one sum is cheap; find the culprit only if needed
            bad = [i for i, g in enumerate(grads) if not math.isfinite(g)]
            if bad:
                raise ValueError(f"{type(self).__name__}.step: gradient of parameter {bad[0]} "
                                 f"({self.params[bad[0]]!r}) is not finite")
        return grads

    def _write(self, new: list) -> None:
        """Set every parameter to its new value, or none of them if one is not finite."""
        total = sum(new)
        if type(total) is not float or total - total != 0.0:  # a finite float sum: finite numbers, floats or ints
            self._grads()  # a non-finite gradient is reported as such
            new = [_to_float(x, f"{type(self).__name__}.step") for x in new]
            bad = [i for i, x in enumerate(new) if not math.isfinite(x)]
            if bad:
                i = bad[0]
                raise OverflowError(f"{type(self).__name__}.step: parameter {i} ({self.params[i]!r}) would become "
                                    f"{new[i]}; nothing was updated. The learning rate (lr={self.lr:g}) is usually "
                                    "too large when training diverges")
        engine._assign(self.params, new)


class SGD(Optimizer):
    """p -= lr * v, with v = momentum * v + (grad + weight_decay * p) (v = that sum at step 1)."""

    def __init__(self, params: Iterable[Value], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        self.momentum = number(momentum, "SGD", "momentum", 0.0, 1.0, hi_open=True)
        self.velocity: list[float] | None = None

    def step(self) -> None:
        """Update every parameter once."""
        lr, params = self.lr, self.params
        if not (self.momentum or self.weight_decay):  # in one pass: a non-finite gradient shows in `new`
            self._write([p._data - lr * p.grad for p in params])
            return
        grads = self._grads()
        velocity = self.velocity
        if self.momentum:
            velocity = grads if velocity is None else [self.momentum * v + g for v, g in zip(velocity, grads)]
            grads = velocity
        self._write([x - lr * g for x, g in zip(engine._read(params), grads)])
        self.velocity = velocity


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
        self.m = [0.0] * len(self.params)
        self.v = [0.0] * len(self.params)

    def step(self) -> None:
        """Update every parameter once."""
        grads = self._grads()
        b1, b2 = self.betas
        t = self.t + 1
        step_size = self.lr / (1 - b1 ** t)
        root_correction = math.sqrt(1 - b2 ** t)
        m = [mi + (1 - b1) * (g - mi) for mi, g in zip(self.m, grads)]  # torch's lerp form
        v = [vi * b2 + (1 - b2) * g * g for vi, g in zip(self.v, grads)]
        self._write([x - step_size * mi / (math.sqrt(vi) / root_correction + self.eps)
                     for x, mi, vi in zip(engine._read(self.params), m, v)])
        self.t, self.m, self.v = t, m, v


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
