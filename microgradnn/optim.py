"""Optimizers with PyTorch's update rules, and a linear learning-rate schedule.

Each update runs on one flat array of the parameters' numbers, with the optimizer's state
(momentum, Adam's moments) as arrays too; the parameter Values are read before and written
after, so they stay what the user sees. Elementwise float64 numpy arithmetic is the same IEEE
arithmetic as Python floats, so the numbers are those of a loop over the parameters.
"""
from __future__ import annotations

import math
import warnings
from itertools import compress
from typing import Iterable

import numpy as np

from microgradnn._checks import _is_number, number, positive_int
from microgradnn.engine import Value, _assign_checked, all_floats, changed_since, data_of, data_version

__all__ = ["Optimizer", "SGD", "Adam", "LinearLR", "OPTIMIZERS"]

def _named(i: int, p: Value) -> str:
    """Parameter i by its label: its repr shows its grad, which may be what is wrong."""
    return f"parameter {i} ({p.label!r})" if p.label else f"parameter {i}"


class Optimizer:
    """Holds the parameters and the learning rate; subclasses define `step()`."""

    def __init__(self, params: Iterable[Value], lr: float, weight_decay: float) -> None:
        who = type(self).__name__
        if not hasattr(params, "__iter__"):  # a model, or model.parameters not called
            hint = " (call it: model.parameters())" if hasattr(params, "__self__") else ""
            raise TypeError(f"{who}: params must be an iterable of Values, such as model.parameters(), "
                            f"got {type(params).__name__}{hint}")
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{who}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if type(p) is not Value:
                raise TypeError(f"{who}: parameters must be Values, got {type(p).__name__}")
            if p.inputs:  # the next forward pass computes it again, undoing every step (torch refuses too)
                raise ValueError(f"{who}: parameters must be leaves (Values not computed from "
                                 f"others), got {_named(i, p)}, made by {p.op!r}")
        unique = list(dict.fromkeys(self.params))
        if len(unique) != len(self.params):
            # updating a shared parameter once per listing would step it twice (PyTorch warns too)
            warnings.warn(f"{who}: {len(self.params) - len(unique)} parameter(s) listed more than "
                          "once; each is updated once per step", UserWarning, stacklevel=3)
            self.params = unique
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
        nothing (neither the parameters nor the optimizer's state). A parameter with
        `requires_grad` False or a `.grad` of None is skipped, its state unchanged: torch skips a
        parameter whose `.grad` is None, which a frozen one's is after torch's `zero_grad()`."""
        n = len(self.params)
        data = self._data
        if data is None or changed_since(self.params, self._version) is not None:
            data = np.fromiter(data_of(self.params), dtype=float, count=n)
        grads, active = self._gradients()
        if self.weight_decay:
            grads = grads + self.weight_decay * data
        state = {name: getattr(self, name) for name in self._STATE}
        with np.errstate(all="ignore"):
            if active is None:
                new, state = self._update(data, grads, state)
            else:  # the update of the others alone, scattered into copies of the full arrays
                part, part_state = self._update(data[active], grads[active],
                                                {k: v[active] for k, v in state.items()})
                new = data.copy()
                new[active] = part
                for name, values in part_state.items():
                    state[name] = state[name].copy()
                    state[name][active] = values
        if not np.isfinite(new).all():  # a non-finite gradient always makes a non-finite update
            if not np.isfinite(grads).all():
                bad = int(np.flatnonzero(~np.isfinite(grads))[0])
                raise ValueError(f"{type(self).__name__}.step: gradient of parameter {bad} "
                                 f"({self.params[bad]!r}) is not finite")
            i = int(np.flatnonzero(~np.isfinite(new))[0])
            raise OverflowError(f"{type(self).__name__}.step: parameter {i} ({self.params[i]!r}) would become "
                                f"{new[i]}; nothing was updated. The learning rate (lr={self.lr:g}) is usually "
                                "too large when training diverges")
        # every number is a finite float (just checked): assign's own check would read them again
        if active is None:
            _assign_checked(self.params, new.tolist())
        else:  # a skipped parameter keeps its version stamp too
            _assign_checked(list(compress(self.params, active)), new[active].tolist())
        self._data, self._version = new, data_version()  # read again only if a parameter is set meanwhile
        for name, array in state.items():
            setattr(self, name, array)

    def _gradients(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The gradients as floats (0 where skipped), and which parameters to update (None: all).
        A frozen parameter's `.grad` is not read: it is skipped, as a `.grad` of None is."""
        params, n = self.params, len(self.params)
        # (one comprehension over the slots: quicker here than two, or map with attrgetter)
        grads = [p.grad if p.requires_grad else None for p in params]
        if all_floats(grads):  # the usual case
            return np.fromiter(grads, dtype=float, count=n), None
        active = np.array([g is not None for g in grads])
        read = [g for g in grads if g is not None]
        if all_floats(read):  # some skipped
            out = np.zeros(n)
            out[active] = read
            return out, active
        out = np.zeros(n)  # a .grad that is not a usable number
        for i in np.flatnonzero(active).tolist():
            g = grads[i]
            if not _is_number(g):
                raise TypeError(f"{type(self).__name__}.step: the gradient of {_named(i, params[i])} must be a "
                                f"number or None, got {type(g).__name__} {g!r}"[:400])
            try:
                out[i] = float(g)
            except OverflowError:
                raise ValueError(f"{type(self).__name__}.step: the gradient of {_named(i, params[i])} is too "
                                 f"large for a float (a {type(g).__name__} beyond 1.8e308)") from None
        return out, (None if active.all() else active)

    _STATE: tuple[str, ...] = ()  # the attributes holding per-parameter state arrays

    def _update(self, data: np.ndarray, grads: np.ndarray, state: dict) -> tuple[np.ndarray, dict]:
        """The new parameter vector from the old one and the gradients (weight decay included),
        and the new state from the old (`_STATE`'s arrays, kept only if every new parameter is
        finite); all of them for the parameters being updated only."""
        raise NotImplementedError


class SGD(Optimizer):
    """p -= lr * v, with v = momentum * v + (grad + weight_decay * p) (v = that sum at step 1)."""

    # weight_decay is keyword-only: torch's fourth argument is dampening, which this SGD lacks
    def __init__(self, params: Iterable[Value], lr: float, momentum: float = 0.0, *,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        self.momentum = number(momentum, "SGD", "momentum", 0.0, 1.0, hi_open=True)
        # starting from 0, a parameter's first velocity is its gradient exactly (torch's clone);
        # kept, unchanged, while momentum is 0, so momentum may be changed between steps, as in torch
        self.velocity = np.zeros(len(self.params))

    _STATE = ("velocity",)

    def _update(self, data: np.ndarray, grads: np.ndarray, state: dict) -> tuple[np.ndarray, dict]:
        if not self.momentum:
            return data - self.lr * grads, state
        velocity = self.momentum * state["velocity"] + grads
        return data - self.lr * velocity, {"velocity": velocity}


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
        # per parameter, as torch's state["step"]: a parameter skipped for a while has taken fewer steps
        self.t = np.zeros(len(self.params), dtype=np.int64)
        self.m = np.zeros(len(self.params))
        self.v = np.zeros(len(self.params))

    _STATE = ("t", "m", "v")

    def _update(self, data: np.ndarray, grads: np.ndarray, state: dict) -> tuple[np.ndarray, dict]:
        b1, b2 = self.betas
        t, m, v = state["t"] + 1, state["m"], state["v"]
        if len(t) and (t == t[0]).all():  # the usual case: one step count
            step_size: float | np.ndarray = self.lr / (1 - b1 ** int(t[0]))
            root_correction: float | np.ndarray = math.sqrt(1 - b2 ** int(t[0]))
        else:  # each count's corrections in Python floats, as torch computes them
            counts, where = np.unique(t, return_inverse=True)
            step_size = np.array([self.lr / (1 - b1 ** k) for k in counts.tolist()])[where]
            root_correction = np.array([math.sqrt(1 - b2 ** k) for k in counts.tolist()])[where]
        weight = 1 - b1
        # torch's lerp: from the nearer end, so that m is the gradient itself when b1 is 0
        m = m + weight * (grads - m) if weight < 0.5 else grads - (grads - m) * (1 - weight)
        v = v * b2 + (1 - b2) * grads * grads
        return data - step_size * m / (np.sqrt(v) / root_correction + self.eps), {"t": t, "m": m, "v": v}


class LinearLR:
    """Scale the optimizer's lr by a factor going linearly from `start_factor` to `end_factor`
    over `total_iters` calls of `step()`, then leave it alone: `torch.optim.lr_scheduler.LinearLR`,
    with its defaults (1/3, 1.0, 5 iterations). As torch's, each step scales the lr the optimizer
    has then, so an lr set by hand is kept (scaled during the ramp), never reset."""

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
        """Advance one iteration: during the ramp, scale the optimizer's lr from this step's
        factor to the next's (torch's arithmetic); after it, leave the lr as it is."""
        self.last_epoch += 1
        if self.last_epoch <= self.total_iters:
            start, end, n = self.start_factor, self.end_factor, self.total_iters
            self.optimizer.lr *= 1.0 + (end - start) / (n * start + (self.last_epoch - 1) * (end - start))


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
