"""Optimizers with PyTorch's update rules, and a linear learning-rate schedule.

Each update runs on one flat array of the parameters' numbers, with the optimizer's state
(momentum, Adam's moments) as arrays too; the parameter Values are read before and written
after, so they stay what the user sees. Elementwise float64 numpy arithmetic is the same IEEE
arithmetic as Python floats, so the numbers are those of a loop over the parameters.
"""
from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterator, MutableMapping
from itertools import compress
from typing import Any, Iterable

import numpy as np

from microgradnn._checks import _is_int, _is_number, flag, integer, is_finite, number, positive_int, shown
from microgradnn.engine import (Value, _assign_checked, all_floats, changed_since, data_of, data_version,
                                float_array, reset_grads)

__all__ = ["Optimizer", "SGD", "Adam", "LinearLR", "OPTIMIZERS"]


def _named(i: int, p: Value) -> str:
    """Parameter i by its label: its repr shows its grad, which may be what is wrong."""
    return f"parameter {i} ({p.label!r})" if p.label else f"parameter {i}"


class _Checked:
    """A hyperparameter checked whenever it is set, in the constructor or by hand between steps
    (as torch users set `param_groups[0]["lr"]`): a bad one would fail deep in numpy, or worse."""

    def __init__(self, lo: float = 0.0, hi: float = math.inf, **ends: bool) -> None:
        self.lo, self.hi, self.ends = lo, hi, ends

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.slot = name, "_" + name

    def __get__(self, obj, owner=None):
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj, value) -> None:
        setattr(obj, self.slot, number(value, type(obj).__name__, self.name, self.lo, self.hi, **self.ends))


class _Fixed(list):
    """A list the optimizer reads but owns: a change to it would be ignored, so it is refused."""

    def __init__(self, items: Iterable, why: str) -> None:
        super().__init__(items)
        self._why = why

    def _refuse(self, *args, **kwargs):
        raise TypeError(self._why)

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self):  # a copy or pickle of it is a plain list, the optimizer's no more
        return list, (list(self),)


def _same(value, fixed) -> bool:
    """Whether `value` is the fixed setting `fixed` (None, a bool, or a number)."""
    if fixed is None or isinstance(fixed, bool):
        return value is fixed or (isinstance(value, np.bool_) and bool(value) is fixed)
    return _is_number(value) and value == fixed


class _Group(MutableMapping):
    """`opt.param_groups[0]`: torch's keys, each read from and written to the optimizer itself
    (checked as `opt.lr = ...` is); a key torch has for what this optimizer lacks reads as its
    fixed value, and another value is refused."""

    def __init__(self, optimizer: "Optimizer") -> None:
        self._opt = optimizer

    def _who(self) -> str:
        return f"{type(self._opt).__name__}.param_groups[0]"

    def __getitem__(self, key: str) -> Any:
        opt = self._opt
        if key == "params":
            return _Fixed(opt.params, f"{self._who()}['params'] cannot be changed: make a new optimizer "
                                      "over the parameters you want")
        if key in opt._FIXED:
            return opt._FIXED[key]
        if key in opt._SETTINGS:
            return getattr(opt, key)
        raise KeyError(f"{self._who()} has no key {key!r}; its keys are {list(self)}")

    def __setitem__(self, key: str, value: Any) -> None:
        opt, who = self._opt, self._who()
        if key == "params":
            raise TypeError(f"{who}['params'] cannot be set: make a new optimizer over the parameters you want")
        if key in opt._FIXED:
            fixed = opt._FIXED[key]
            if not _same(value, fixed):
                raise ValueError(f"{who}[{key!r}] must be {fixed!r} ({type(opt).__name__} has no other "
                                 f"{key}), got {shown(value)}")
        elif key in opt._SETTINGS:
            setattr(opt, key, value)
        else:  # torch would keep an unknown key, unused: a misspelt lr would change nothing
            raise KeyError(f"{who} has no key {key!r}; its keys are {list(self)}")

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"{self._who()}: keys cannot be removed, got del [{key!r}]")

    def __iter__(self) -> Iterator[str]:
        return iter(("params", *self._opt._GROUP))

    def __len__(self) -> int:
        return 1 + len(self._opt._GROUP)

    def __repr__(self) -> str:
        return repr(dict(self))


class Optimizer:
    """Holds the parameters and the learning rate; subclasses define `step()`."""

    lr = _Checked()
    weight_decay = _Checked()

    def __init__(self, params: Iterable[Value], lr: float, weight_decay: float) -> None:
        who = type(self).__name__
        if not hasattr(params, "__iter__"):  # a model, or model.parameters not called
            hint = " (call it: model.parameters())" if hasattr(params, "__self__") else ""
            raise TypeError(f"{who}: params must be an iterable of Values, such as model.parameters(), "
                            f"got {type(params).__name__}{hint}")
        if isinstance(params, (set, frozenset)):  # (torch refuses one too)
            raise TypeError(f"{who}: params must be in a fixed order (a list, or model.parameters()), got a "
                            "set, whose order changes between runs: each parameter would meet another's saved state")
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
        self.lr = lr
        self.weight_decay = weight_decay

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Set every parameter's `.grad` to 0, or to None with `set_to_none` (torch's default),
        which `step` then skips until a backward reaches the parameter again."""
        reset_grads(self.params, flag(set_to_none, f"{type(self).__name__}.zero_grad", "set_to_none"))

    def step(self) -> None:
        """Update every parameter once; if any, or a number of the optimizer's state, would become
        non-finite, refuse and change nothing (neither the parameters nor the state). A parameter with
        `requires_grad` False or a `.grad` of None is skipped, its state unchanged: torch skips a
        parameter whose `.grad` is None, which a frozen one's is after torch's `zero_grad()`."""
        data = self._data
        if data is None or changed_since(self.params, self._version) is not None:
            data = float_array(data_of(self.params))
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
        self._check_state(state)
        # every number is a finite float (just checked): assign's own check would read them again
        if active is None:
            _assign_checked(self.params, new.tolist())
        else:  # a skipped parameter keeps its version stamp too
            _assign_checked(list(compress(self.params, active)), new[active].tolist())
        self._data, self._version = new, data_version()  # read again only if a parameter is set meanwhile
        for name, array in state.items():
            setattr(self, name, array)

    def _check_state(self, state: dict) -> None:
        """Refuse a state that is not finite (of those in `_UNBOUNDED`, the others' overflow makes
        the update non-finite): Adam's v, when a gradient's square overflows, while the update
        (m / inf) stays finite, but is 0 at that step and every later one."""
        for name in self._UNBOUNDED:
            array = state[name]
            if not array.max() < math.inf:  # (a NaN fails the comparison too)
                i = int(np.flatnonzero(~np.isfinite(array))[0])
                raise OverflowError(f"{type(self).__name__}.step: parameter {i} ({self.params[i]!r}) has a gradient "
                                    f"too large for the optimizer: its state {name!r} would become {array[i]}, and "
                                    "the parameter would never move again; nothing was updated")

    def _gradients(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The gradients as floats (0 where skipped), and which parameters to update (None: all).
        A frozen parameter's `.grad` is not read: it is skipped, as a `.grad` of None is."""
        params, n = self.params, len(self.params)
        # (one comprehension over the slots: quicker here than two, or map with attrgetter)
        grads = [p.grad if p._requires_grad else None for p in params]
        if all_floats(grads):  # the usual case
            return float_array(grads), None
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
    _UNBOUNDED: tuple[str, ...] = ()  # those of them that may overflow while the update stays finite
    _GROUP: tuple[str, ...] = ("lr", "weight_decay")  # torch's keys of a parameter group, in its order
    _FIXED: dict[str, Any] = {}  # torch's settings this optimizer lacks, at the value that means "off"
    _SETTINGS: tuple[str, ...] = _GROUP  # the others: its hyperparameters, attributes (set by __init_subclass__)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._SETTINGS = tuple(k for k in cls._GROUP if k not in cls._FIXED)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._SETTINGS)
        return f"{type(self).__name__}({len(self.params)} parameters, {settings})"

    @property
    def param_groups(self) -> list[MutableMapping[str, Any]]:
        """torch's list of parameter groups, here the one: `opt.param_groups[0]["lr"] = 0.01` sets
        `opt.lr` (checked), and a read gives the setting now, with torch's keys (see `_Group`)."""
        return _Fixed([_Group(self)], f"{type(self).__name__}.param_groups holds the one group of parameters "
                                      "this optimizer has; more groups are not supported")

    def state_dict(self) -> dict:
        """The optimizer's state and settings as plain lists and numbers (json or pickle them),
        with torch's two keys: {"state": {name: one entry per parameter}, "param_groups": [{the keys
        of `param_groups[0]`, "params": the parameters' indices}]} (torch keys "state" by parameter
        instead; neither loads the other's); `load_state_dict` on a fresh optimizer resumes it."""
        group = {k: list(v) if isinstance(v, tuple) else v for k, v in _Group(self).items() if k != "params"}
        return {"state": {name: getattr(self, name).tolist() for name in self._STATE},
                "param_groups": [group | {"params": list(range(len(self.params)))}]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Take the state and settings (lr included, as torch's) of `state_dict()`, of an optimizer
        of the same kind over as many parameters; checked whole first, so a refused one changes nothing."""
        who = f"{type(self).__name__}.load_state_dict"
        n = len(self.params)
        if not isinstance(state_dict, dict):
            raise TypeError(f"{who}: expected a dict from an optimizer's state_dict(), got {type(state_dict).__name__}")
        if set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"{who}: expected the keys 'state' and 'param_groups' of state_dict(), "
                             f"got {sorted(map(str, state_dict))}")
        groups, state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict):
            raise ValueError(f"{who}: param_groups must be a list of one dict (one group of parameters), "
                             f"got {groups!r:.80}")
        group = dict(groups[0])
        params = group.pop("params", None)
        if not isinstance(params, list):
            raise ValueError(f"{who}: the parameter group must list its parameters' indices under 'params'")
        if len(params) != n:
            raise ValueError(f"{who}: the state is for {len(params)} parameters, but this optimizer has {n}; "
                             "load it into an optimizer over the same parameters")
        if not all(_is_int(i) and i == k for k, i in enumerate(params)):  # torch's [1, 0] would swap the two
            indices = list(range(n)) if n <= 4 else f"[0, 1, ..., {n - 1}]"
            raise ValueError(f"{who}: the parameter group's 'params' must be {indices}, as state_dict() lists them "
                             f"(its state holds one entry per parameter, in order), got {params!r:.80}")
        # the fixed keys may be missing: a state_dict saved before they were in it
        if (set(group) - set(self._FIXED) != set(self._SETTINGS) or not set(group) <= set(self._GROUP)
                or not isinstance(state, dict) or set(state) != set(self._STATE)):
            theirs = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{who}: {type(self).__name__}.state_dict() has settings {sorted(self._GROUP)} "
                             f"and state {sorted(self._STATE)}, got {sorted(map(str, group))} and {theirs} "
                             "(another optimizer's?)")
        trial = copy.copy(self)  # every setting through its check, on a copy: all or nothing
        for name, value in group.items():
            _Group(trial)[name] = value
        for name, values in state.items():
            setattr(trial, name, _state_array(values, n, f"{who}: state {name!r}", integral=name == "t",
                                              non_negative=name in ("t", "v")))
        self.__dict__.update(trial.__dict__)

    def _update(self, data: np.ndarray, grads: np.ndarray, state: dict) -> tuple[np.ndarray, dict]:
        """The new parameter vector from the old one and the gradients (weight decay included),
        and the new state from the old (`_STATE`'s arrays, kept only if every new parameter is
        finite); all of them for the parameters being updated only."""
        raise NotImplementedError


# a step count is kept as an int64, which step's + 1 would wrap past 2**63 - 1
_MAX_STEP_COUNT = 2 ** 62


def _state_array(values, n: int, what: str, *, integral: bool, non_negative: bool) -> np.ndarray:
    """A state entry as an array of n finite numbers (ints in [0, _MAX_STEP_COUNT] for step counts)."""
    if not isinstance(values, (list, tuple, np.ndarray)) or len(values) != n:
        got = f"{len(values)} entries" if hasattr(values, "__len__") else type(values).__name__
        raise ValueError(f"{what} must hold one number per parameter ({n}), got {got}")
    if integral:
        rule = f"an int in [0, 2**{_MAX_STEP_COUNT.bit_length() - 1}]"

        def ok(x) -> bool:
            return _is_int(x) and 0 <= x <= _MAX_STEP_COUNT
    else:
        rule = "a finite number" + " >= 0" * non_negative

        def ok(x) -> bool:
            return is_finite(x) and not (non_negative and x < 0)
    for i, x in enumerate(values):
        x = x.item() if isinstance(x, np.generic) else x
        if not ok(x):
            raise ValueError(f"{what}: entry {i} must be {rule}, got {type(x).__name__} {shown(x)}")
    return np.array(values, dtype=np.int64 if integral else float)


class SGD(Optimizer):
    """p -= lr * v, with v = momentum * v + (grad + weight_decay * p) (v = that sum at step 1)."""

    # weight_decay is keyword-only: torch's fourth argument is dampening, which this SGD lacks
    def __init__(self, params: Iterable[Value], lr: float = 1e-3, momentum: float = 0.0, *,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        self.momentum = momentum
        # starting from 0, a parameter's first velocity is its gradient exactly (torch's clone);
        # kept, unchanged, while momentum is 0, so momentum may be changed between steps, as in torch
        self.velocity = np.zeros(len(self.params))

    _STATE = ("velocity",)
    _FIXED = {"dampening": 0, "nesterov": False, "maximize": False, "foreach": None, "differentiable": False,
              "fused": None}
    _GROUP = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "foreach", "differentiable",
              "fused")
    momentum = _Checked(0.0, 1.0, hi_open=True)

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
        self.betas = betas
        self.eps = eps
        # per parameter, as torch's state["step"]: a parameter skipped for a while has taken fewer steps
        self.t = np.zeros(len(self.params), dtype=np.int64)
        self.m = np.zeros(len(self.params))
        self.v = np.zeros(len(self.params))

    _STATE = ("t", "m", "v")
    _UNBOUNDED = ("v",)
    _FIXED = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
              "fused": None, "decoupled_weight_decay": False}
    _GROUP = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable",
              "differentiable", "fused", "decoupled_weight_decay")
    # eps > 0: v can be 0 (a parameter with no gradient yet), and m / sqrt(v) would divide by zero
    eps = _Checked(0.0, lo_open=True)

    @property
    def betas(self) -> tuple[float, float]:
        return self._betas

    @betas.setter
    def betas(self, betas: tuple[float, float]) -> None:
        if not isinstance(betas, (tuple, list)):
            raise TypeError(f"Adam: betas must be a pair of numbers in [0, 1), got {type(betas).__name__} {betas!r}")
        if len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair of numbers in [0, 1), got {betas!r}")
        b1, b2 = (number(b, "Adam", "betas", 0.0, 1.0, hi_open=True) for b in betas)
        self._betas = (b1, b2)

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


def _schedule(start_factor, end_factor, total_iters, who: str) -> tuple[float, float, int]:
    """LinearLR's factors and length, checked (as built, and as loaded from a state_dict)."""
    factors = (number(start_factor, who, "start_factor", 0.0, 1.0, lo_open=True),
               number(end_factor, who, "end_factor", 0.0, 1.0))
    if positive_int(total_iters, who, "total_iters") > _MAX_STEP_COUNT:  # step's float arithmetic overflows past 1e308
        raise ValueError(f"{who}: total_iters must be at most 2**{_MAX_STEP_COUNT.bit_length() - 1}, "
                         f"got {shown(total_iters)}")
    return (*factors, int(total_iters))


class LinearLR:
    """Scale the optimizer's lr by a factor going linearly from `start_factor` to `end_factor`
    over `total_iters` calls of `step()`, then leave it alone: `torch.optim.lr_scheduler.LinearLR`,
    with its defaults (1/3, 1.0, 5 iterations), without its `last_epoch` argument (resume with
    `load_state_dict`). As torch's, each step scales the lr the optimizer
    has then, so an lr set by hand is kept (scaled during the ramp), never reset."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"LinearLR: optimizer must be an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.start_factor, self.end_factor, self.total_iters = _schedule(start_factor, end_factor, total_iters,
                                                                         "LinearLR")
        self.last_epoch = 0
        optimizer.lr = self.base_lr * self.start_factor
        self._last_lr: float | None = optimizer.lr

    def __repr__(self) -> str:
        return (f"LinearLR({type(self.optimizer).__name__}, start_factor={self.start_factor!r}, "
                f"end_factor={self.end_factor!r}, total_iters={self.total_iters}, last_epoch={self.last_epoch})")

    def state_dict(self) -> dict:
        """The schedule, how far it has gone and the lr it last set, as torch's keys (without the optimizer)."""
        return {"start_factor": self.start_factor, "end_factor": self.end_factor, "total_iters": self.total_iters,
                "base_lrs": [self.base_lr], "last_epoch": self.last_epoch, "_last_lr": self.get_last_lr()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue the schedule of `state_dict()` (load the optimizer's own state too: the lr is its)."""
        who = "LinearLR.load_state_dict"
        keys = ["_last_lr", "base_lrs", "end_factor", "last_epoch", "start_factor", "total_iters"]
        # one saved before "_last_lr" was in it lacks it
        if not isinstance(state_dict, dict) or sorted(map(str, state_dict)) not in (keys, keys[1:]):
            got = sorted(map(str, state_dict)) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{who}: expected a dict with the keys {keys} of LinearLR.state_dict(), got {got}")
        base = state_dict["base_lrs"]
        if not isinstance(base, list) or len(base) != 1:
            raise ValueError(f"{who}: base_lrs must be a list of one lr (one parameter group), got {base!r:.60}")
        trial = LinearLR.__new__(LinearLR)  # each value checked as the constructor checks it: all or nothing
        trial.base_lr = number(base[0], who, "base_lrs", 0.0)
        trial.start_factor, trial.end_factor, trial.total_iters = _schedule(
            state_dict["start_factor"], state_dict["end_factor"], state_dict["total_iters"], who)
        trial.last_epoch = integer(state_dict["last_epoch"], who, "last_epoch", at_least=0)
        last = state_dict.get("_last_lr")
        if last is not None and (not isinstance(last, list) or len(last) != 1):
            raise ValueError(f"{who}: _last_lr must be a list of one lr (one parameter group), got {last!r:.60}")
        # an old state without it: the loaded optimizer's lr, until the next step
        trial._last_lr = None if last is None else number(last[0], who, "_last_lr", 0.0)
        vars(self).update(vars(trial))

    def get_last_lr(self) -> list[float]:
        """The learning rate the last step (or the constructor) set, as a list (one entry per
        parameter group), as torch's: an lr set by hand since shows from the next step on."""
        return [self.optimizer.lr if self._last_lr is None else self._last_lr]

    def step(self) -> None:
        """Advance one iteration: during the ramp, scale the optimizer's lr from this step's
        factor to the next's (torch's arithmetic); after it, leave the lr as it is."""
        self.last_epoch += 1
        if self.last_epoch <= self.total_iters:
            start, end, n = self.start_factor, self.end_factor, self.total_iters
            # (a factor is >= 0; one rounded below, as decaying to end_factor 0 may end, would make the lr -5e-19)
            self.optimizer.lr *= max(0.0, 1.0 + (end - start) / (n * start + (self.last_epoch - 1) * (end - start)))
        self._last_lr = self.optimizer.lr


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
