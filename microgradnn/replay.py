"""Batched replay: record a sample's scalar graph once, replay it over a batch with numpy.

`compile(fn)` records `fn` on one sample into a tape of slots. Replay keeps one row of a
(slots, batch) array per node, runs every group of same-op nodes at the same depth as one
numpy call (a layer's fused neurons become one matrix product), and runs the op table's own
derivative rules on arrays, so no op's derivative is written twice.

A tape is only valid for samples on which `fn` would build the same graph, so:
- samples of another shape (another sequence length) get a tape of their own;
- while recording, every decision the code makes on a Value (a comparison, `float()`,
  `.data`, an index; see `microgradnn.guards`) is noted, and checked for every sample at
  replay: samples that decide differently are recorded again, never replayed on the wrong tape;
- an index that is data is an input of its node (a token id of a `take` node, a class target
  of a `cross_entropy` node), one tape for every index.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
import functools
from numbers import Real
from typing import Any, Callable
import math
import operator
import threading
import warnings

import numpy as np
from threadpoolctl import ThreadpoolController

from microgradnn import engine
from microgradnn._checks import is_finite, shown
from microgradnn.engine import EXACT_INT, Value, topological_order
from microgradnn.guards import Guard, recording


__all__ = ["compile", "Compiled", "BatchResult"]

# The fused neuron's and take's rows and their built-in rules: groups of them replay as
# matrix products and gathers, which are those rules written for a whole group.
_DOT = engine.get_op("dot")
_DOT_RULES = _DOT.derivatives
_TAKE = engine.get_op("take")
_TAKE_RULES = _TAKE.derivatives
_CROSS_ENTROPY = engine.get_op("cross_entropy")
_CROSS_ENTROPY_RULES = _CROSS_ENTROPY.derivatives
_LOGSUMEXP = engine.get_op("logsumexp")
_LOGSUMEXP_RULES = _LOGSUMEXP.derivatives
_SUB = engine.get_op("-")
_SUB_RULES = _SUB.derivatives
_EXP = engine.get_op("exp")
_EXP_RULES = _EXP.derivatives
_NUMBER_GUARDS = {"float", "int", "index", "hash", "text", "grad"}
_SIGNED = {"float", "text", "grad"}  # number guards that see the sign of a zero (copysign, str, atan2)
_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
            "==": np.equal, "!=": np.not_equal}
_OPPOSITE = {"<": np.greater_equal, "<=": np.greater, ">": np.less_equal, ">=": np.less,
             "==": np.not_equal, "!=": np.equal}


def array_forward(op: engine.Op) -> Callable:
    """The op's forward on arrays: its row's `array_forward`, or its float forward element by
    element (NaN where it fails, which replay refuses as the scalar engine does)."""
    if op.array_forward is not None:
        return op.array_forward

    def one(*xs):
        try:
            return op.forward(*xs)
        except (ArithmeticError, ValueError):
            return float("nan")
    return np.vectorize(one, otypes=[float])


# ---- samples ---------------------------------------------------------------------------------

_PLAIN = {int: "i", float: "f"}


def _flatten(sample, numbers: list):
    """The sample's shape, with its numbers moved into `numbers` (a sample is numbers in lists,
    tuples, dicts and arrays; strings, None and booleans are part of the shape)."""
    if isinstance(sample, (list, tuple)):  # first: a token sequence is the usual sample
        kind = "tuple" if isinstance(sample, tuple) else "list"
        if _PLAIN.keys() >= set(map(type, sample)):
            return _flatten_plain(sample, numbers, kind)
        return (kind, tuple(_flatten(x, numbers) for x in sample))
    t = type(sample)
    if t is bool or sample is None or t is str:
        return ("static", sample)
    if isinstance(sample, (int, np.integer)) and not isinstance(sample, (bool, np.bool_)):
        numbers.append(_exact_float(int(sample)))
        return "i"
    if isinstance(sample, (float, np.floating)):
        if not np.isfinite(sample):
            raise ValueError("compiled: a sample contains NaN or infinity")
        numbers.append(float(sample))
        return "f"
    if isinstance(sample, np.ndarray):
        inner = _flatten(sample.tolist(), numbers)
        # fn gets an array, as the scalar loop does (a list's `*`, `+` and `==` mean other things)
        return ("array", (sample.shape, inner)) if sample.ndim and sample.dtype.kind in "biuf" else inner
    if isinstance(sample, dict):
        return ("dict", tuple((k, _flatten(v, numbers)) for k, v in sample.items()))
    if isinstance(sample, Value):
        raise TypeError("compiled: samples hold plain numbers, not Values (compile makes the Values)")
    try:
        hash(sample)
    except TypeError:
        raise TypeError(f"compiled: cannot take a sample apart: {type(sample).__name__} is not a number, list, "
                        f"tuple, dict or array") from None
    return ("static", sample)


def _flatten_plain(sample: list | tuple, numbers: list, kind: str) -> tuple:
    """`_flatten` of a list or tuple of plain ints and floats only: all at once."""
    # ints beyond 2**53 refused before float() rounds them (a NaN makes min or max NaN, so all are looked at)
    if int in map(type, sample) and not (-EXACT_INT <= min(sample) and max(sample) <= EXACT_INT):
        for x in sample:
            if type(x) is int and not -EXACT_INT <= x <= EXACT_INT:
                _exact_float(x)
    start = len(numbers)
    numbers.extend(map(float, sample))
    total = sum(numbers[start:])  # finite if every number is (or, rarely, their sum overflowed)
    if total - total != 0.0 and not all(map(math.isfinite, numbers[start:])):
        raise ValueError("compiled: a sample contains NaN or infinity")
    return (kind, tuple(map(_PLAIN.__getitem__, map(type, sample))))


_ARRAY_KIND = {"f": "f", "i": "i", "u": "i"}


def _kind(x) -> object:
    """How a number of X or y reaches fn(x, y): "i" an int, "f" a float, a bool as itself (part
    of the shape, as in samples): class ids and indices refuse floats and bools there."""
    if isinstance(x, (bool, np.bool_)):
        return ("static", x)
    return "i" if isinstance(x, (int, np.integer)) else "f"


def _row_kinds(given: Any, a: np.ndarray) -> list[tuple]:
    """The kinds (see `_kind`) of the numbers of each row of X (or of each y, `a` 1-d), as the
    scalar loop `fn(X[i], y[i])` gets them: one tuple for every row from an array of ints or
    floats, else a tuple per row (np.asarray makes [1, 2.5] floats, which it was not)."""
    width = a.shape[1] if a.ndim == 2 else 1
    if isinstance(given, np.ndarray) and given.dtype.kind in _ARRAY_KIND:
        return [(_ARRAY_KIND[given.dtype.kind],) * width]
    items = np.asarray(given, dtype=object).reshape(len(a), width)
    types = [set(map(type, items[:, j].tolist())) for j in range(width)]
    if all(t == {float} or t == {int} for t in types):  # lists of floats or ints: no loop over the rows
        return [tuple("f" if t == {float} else "i" for t in types)]
    return [tuple(map(_kind, row)) for row in items.tolist()]


def _real_array(name: str, a: Any) -> np.ndarray:
    """X or y as an array, refused if it is ragged or holds what float() would convert or cut
    (strings, complex numbers)."""
    try:
        a = np.asarray(a)
    except ValueError:
        raise ValueError(f"compiled: {name} must be rows of equal length, got a ragged {type(a).__name__}") from None
    if a.dtype.kind not in "biufO":
        what = "strings" if a.dtype.kind in "US" else f"an array of {a.dtype}"
        raise TypeError(f"compiled: {name} must hold real numbers, got {what}")
    return a


def _exact_float(x: int) -> float:
    """x as a float, refused if that rounds it (compile computes in floats)."""
    if -EXACT_INT <= x <= EXACT_INT:
        return float(x)
    try:
        f = float(x)
    except OverflowError:
        f = None
    if f != x:
        raise ValueError(f"compiled: a sample holds an int no float holds exactly, {shown(x)}; compile computes "
                         f"in floats, which hold every int up to 2**53: give it as a float if rounding it is fine, "
                         f"or use the scalar loop")
    return f


def _rebuild(shape, leaves):
    """The sample of `shape` with the Values of the iterator `leaves` for its numbers."""
    if shape in ("i", "f"):
        return next(leaves)
    kind, content = shape
    if kind == "static":
        return content
    if kind == "array":
        return _object_array(content[0], _rebuild(content[1], leaves))
    if kind == "dict":
        return {k: _rebuild(s, leaves) for k, s in content}
    items = [_rebuild(s, leaves) for s in content]
    return tuple(items) if kind == "tuple" else items


def _object_array(dims: tuple, nested: list) -> np.ndarray:
    """An array of `dims` holding the Values (and bools) of `nested`, lists as `tolist()` gives."""
    a = np.empty(dims, dtype=object)
    a[...] = nested
    return a


def _kinds(shape) -> list[str]:
    """"i" or "f" for each number of a sample of `shape`, in order: an int or a float."""
    if shape in ("i", "f"):
        return [shape]
    kind, content = shape
    if kind == "static":
        return []
    if kind == "array":
        return _kinds(content[1])
    if kind == "dict":
        return [k for _, s in content for k in _kinds(s)]
    return [k for s in content for k in _kinds(s)]


def _describe_shape(shape) -> str:
    if shape in ("i", "f"):
        return "number"
    if shape[0] == "xy":
        return f"row of {shape[1]}"
    kind, content = shape
    if kind in ("list", "tuple"):
        return f"{kind} of {len(content)}"
    if kind == "array":
        return f"array of shape {content[0]}"
    return kind


# ---- a tape: one recording of fn ---------------------------------------------------------------

class _Tape:
    """One recording of fn: its groups of nodes, its parameters, and the guards a sample must
    pass to be replayed on it."""

    def __init__(self, compiled: "Compiled", out: Value, leaves: list[Value], guards: list[Guard],
                 watched: list[Value], shape, start: int, made: list[Value] = (),  # type: ignore[assignment]
                 own: list[Value] = (), constants: list[Value] = ()) -> None:  # type: ignore[assignment]
        self.shape, self.guards, self.last_used = shape, guards, 0
        self.requires_grad = out.requires_grad  # the loss depends on a parameter
        self.returned_number = False  # fn returned a plain number, not a Value (set by Compiled._record)
        self.grad_enabled = engine.is_grad_enabled()  # replayed only in this mode, as fn ran in it
        guard_values = [x for g in guards for x in g.values()]
        order = topological_order(out)
        known = set(order)
        # Decided-on and watched Values join the tape if not already in it, and so do nodes fn
        # made and dropped: the scalar engine ran their ops too, and refuses what they refuse.
        missing = list({id(w): w for w in [*guard_values, *watched, *made] if w not in known}.values())
        if missing:  # all in one walk, from a node made to have them as inputs
            hub = Value(0.0, requires_grad=False)
            hub.inputs, hub._depth = tuple(missing), 1 + max(w._depth for w in missing)
            order += [v for v in topological_order(hub) if v not in known and v is not hub]
            known.update(order)
        _check_array_forwards(order)
        own_ids = set(map(id, own))
        if engine.data_version() != start:  # fn set some .data (or froze a Value): nothing a replay reads, or refused
            _check_nothing_set(order, start, own_ids | set(map(id, constants)), {id(v) for v in leaves}, guards)
        slot = {v: i for i, v in enumerate(order)}
        leaf_index = {id(v): i for i, v in enumerate(leaves)}
        structure: list[tuple] = []
        for v in order:
            if v.inputs:
                structure.append((v._op, tuple(slot[x] for x in v.inputs)))
            elif id(v) in leaf_index:
                structure.append(("x", leaf_index[id(v)]))
            elif v.requires_grad:
                structure.append(("param", compiled._position(v)))
            else:
                structure.append(("const", v.data))
        order, structure, root, moved, groups = _group_contiguously(
            order, structure, slot[out], [slot[w] for w in watched] + [slot[w] for w in guard_values])
        self.root, self.watched = root, moved[:len(watched)]
        new_slot = dict(zip(map(id, guard_values), moved[len(watched):]))
        self.checks = [_refusal_check(g.b, [new_slot[id(x)] for x in g.values()]) if g.kind == "raises" else
                       _guard_check(g, new_slot.get(id(g.a)) if type(g.a) is Value else None,
                                    new_slot.get(id(g.b)) if type(g.b) is Value else None) for g in guards]
        self.numbered = [(k, new_slot[id(g.a)]) for k, g in enumerate(guards) if g.kind in _NUMBER_GUARDS]
        self.n_slots = len(order)
        kinds = [s[0] for s in structure]
        self.x_slots = _index(np.array([i for i, k in enumerate(kinds) if k == "x"], dtype=int))
        self.x_rows = _index(np.array([s[1] for s in structure if s[0] == "x"], dtype=int))
        consts = [(i, s[1]) for i, s in enumerate(structure) if s[0] == "const"]
        self.const_slots = _index(np.array([i for i, _ in consts], dtype=int))
        self.const_values = np.array([c for _, c in consts], dtype=float).reshape(-1, 1)
        # Values without gradient that existed before the recording (a frozen weight, a
        # temperature), or that fn made with Value() (and may keep: a buffer made on first use):
        # read again whenever one was set, as parameters are; the numbers that fn's ops lifted
        # into the graph while recording cannot change.
        held = [(k, order[i]) for k, (i, _) in enumerate(consts)
                if engine.version_of(order[i]) < start or id(order[i]) in own_ids]
        self.held_rows = np.array([k for k, _ in held], dtype=int)
        self.held_slots = np.arange(self.n_slots)[self.const_slots][self.held_rows]
        self.held = [v for _, v in held]
        self.held_version = engine.data_version()
        # Values made by ops before the recording (`w2 = w * 2` outside fn): replay computes them
        # from their inputs, the scalar engine keeps their numbers, so an input set since is refused
        self.made_before = [v for v in order if v.inputs and engine.version_of(v) < start]
        self.before = list({id(x): x for v in self.made_before for x in (v, *v.inputs)}.values())
        self.before_version = engine.data_version()
        self.made_versions = [engine.version_of(v) for v in self.made_before]
        self.check_made_before(force=True)
        param_slots = [i for i, k in enumerate(kinds) if k == "param"]
        # where the tape's parameters sit in compiled.params: a slice (views, no copies) for the first tape
        self.param_index = _index(np.array([structure[i][1] for i in param_slots], dtype=int))
        is_param = np.array([k == "param" for k in kinds])
        needs = list(is_param)  # does a gradient flow into this slot?
        for i, s in enumerate(structure):
            if order[i].inputs:  # (not through a node made by no_grad or detach, which needs none)
                needs[i] = order[i].requires_grad and any(needs[j] for j in s[1])
        self.groups = []
        for arity, idx, depth in groups:
            ins = [np.array([structure[i][1][j] for i in idx]) for j in range(arity)]
            self.groups.append(_Group(order[idx[0]]._op, np.array(idx), ins,
                                      [np.array([needs[s] for s in slots]) for slots in ins], depth=depth))
        # The tape's parameters live in one vector P. Layers index it directly; only parameters
        # that other groups read get rows of their own in V (filled across the batch).
        position = {slot_: k for k, slot_ in enumerate(param_slots)}
        self.param_position = position  # a parameter's slot -> its place in P (error messages read it there)
        read = {root, *self.watched, *new_slot.values()}
        for g in self.groups:
            slots = g.layer_slots(is_param)
            if slots is not None:
                W, X, B = slots
                W = np.vectorize(position.__getitem__, otypes=[int])(W)
                B = np.array([position[b] for b in B.tolist()], dtype=int)
                g.layer = (_layer_block(W, B), _index(X))
                g.inputs_need = any(g.needed[len(X):2 * len(X)])
                read.update(X.tolist())
                continue
            g.places = _Places.of(g, is_param, position)
            if g.places is None and g.block is not None and g.op is _DOT:
                g.products = _Products.of(g)
            if g.places is not None:  # the same layer at several places (positions of a sequence)
                read.update(g.places.x_slots.ravel().tolist())
                if g.places.b_pos is None:
                    read.update(g.places.b_slots.tolist())
            else:
                for idx in g.ins:
                    read.update(idx.tolist())
        self.groups = _fuse_softmaxes(_join_blocks(self.groups), structure, needs, root)
        # dots whose b's are all one number fn's ops lifted into the graph (dot's default b = 0.0),
        # which cannot change: blocks add it as a number rather than gathering its rows
        lifted = {i: s[1] for i, s in enumerate(structure) if s[0] == "const"}
        for i in self.held_slots.tolist():
            lifted.pop(i)
        for g in self.groups:
            block = g.places if g.places is not None else getattr(g, "products", None)
            if block is not None and getattr(block, "b_pos", None) is None:
                block.b_value = _one_constant(np.concatenate([p.ins[-1] for p in getattr(g, "parts", [g])]), lifted)
        # Backward visits only groups a gradient flows through: some output leads to the loss
        # and depends on a parameter (a label check or a watched output does not).
        live = np.zeros(self.n_slots, dtype=bool)
        live[root] = True
        for i in range(self.n_slots - 1, -1, -1):
            if live[i] and order[i].inputs:
                live[list(structure[i][1])] = True
        live &= np.array(needs)
        self.backward_groups = [g for g in reversed(self.groups) if live[g.out].any()]
        # the parameters backward reaches (through nodes that need a gradient), whose .grad it writes,
        # and the held Values the scalar backward walks to (through all but no_grad's nodes, bare
        # leaves there): one frozen at the call and not at backward gets its .grad started there
        reached, walked = [False] * self.n_slots, [False] * self.n_slots
        reached[root], walked[root] = needs[root], True
        for i in range(self.n_slots - 1, -1, -1):
            v = order[i]
            if walked[i] and v.inputs and (v._requires_grad or not any(x._requires_grad for x in v.inputs)):
                # a take whose index is no parameter's (a plain index in the scalar loop): its parameter
                # options are reached only where a sample picks them (see `picked`); a computed option's
                # parameters, through it (here, for all samples; `reached_by` works them out by sample)
                picks = v._op is _TAKE and _TAKE.derivatives is _TAKE_RULES and not needs[structure[i][1][0]]
                for k, j in enumerate(structure[i][1]):
                    if not (picks and k and kinds[j] == "param"):
                        walked[j] = True
                        reached[j] = reached[j] or reached[i] and needs[j]
        self.reached = np.array([position[s] for s in param_slots if reached[s]], dtype=int)
        # a take of a plain index whose options are computed from parameters (a loss picking one of
        # its terms by a sample's number) has only the picked option in a sample's graph: then which
        # parameters a gradient reaches is worked out sample by sample (see `reached_by`)
        plain = [v._op is _TAKE and _TAKE.derivatives is _TAKE_RULES and bool(v.inputs)
                 and not needs[structure[i][1][0]] for i, v in enumerate(order)]
        self.reach_plan = None
        if any(reached[i] and plain[i] and any(needs[j] and kinds[j] != "param" for j in structure[i][1][1:])
               for i in range(self.n_slots)):
            self.reach_plan = _flow_plan(structure, root, plain, [
                (i, [k for k, j in enumerate(structure[i][1]) if needs[j]]) for i in range(self.n_slots)
                if reached[i] and order[i].inputs])
        # the same for the Values the scalar backward walks to (a parameter set, or a frozen Value
        # unfrozen, between the call and backward() counts only where a sample's graph holds it)
        held_set = set(self.held_slots.tolist())
        self.walk_plan = None
        if any(walked[i] and plain[i] and any(kinds[j] != "param" and (order[j].inputs or j in held_set)
                                              for j in structure[i][1][1:]) for i in range(self.n_slots)):
            self.walk_plan = _flow_plan(structure, root, plain, [
                (i, range(len(structure[i][1]))) for i in range(self.n_slots) if walked[i] and order[i].inputs
                and (order[i]._requires_grad or not any(x._requires_grad for x in order[i].inputs))])
        # take's parameter options, by the slot a sample picks: the scalar loop's take of a plain
        # index (an Embedding's row) has the picked option alone in its graph, the others' .grad
        # untouched; so has a take whose result never reaches the loss (an embedding's unused column)
        reached_out = np.array(reached, dtype=bool)
        self.take_groups = [(g, reached_out[g.out]) for g in self.groups if type(g) is _Group and g.op is _TAKE
                            and g.op.derivatives is _TAKE_RULES and reached_out[g.out].any()]
        walked_out = np.array(walked, dtype=bool)  # (and those the scalar backward walks to: see `_walked`)
        self.walk_takes = [(g, walked_out[g.out]) for g in self.groups if type(g) is _Group and g.op is _TAKE
                           and g.op.derivatives is _TAKE_RULES and walked_out[g.out].any()]
        self.slot_position = np.full(self.n_slots, -1)
        self.slot_position[param_slots] = [position[s] for s in param_slots]
        self.walked = np.array([position[s] for s in param_slots if walked[s]], dtype=int)
        self.held_walked = [v for v, i in zip(self.held, self.held_slots.tolist()) if walked[i]]
        # each group's one forward and backward function, chosen once rather than at every call
        self.forwards = [(g, _forward_of(g)) for g in self.groups]
        self.backwards = [(g, g.out_at, _backward_of(g)) for g in self.backward_groups]
        # The scalar engine refuses any op whose result is not finite. Replay's ufuncs raise a
        # floating-point flag when they make inf or NaN from finite numbers; matrix products,
        # gathers, cross_entropy (NaN for a target that is no index) and ops of your own may not,
        # so their outputs (and the loss) are checked.
        unflagged = [g.out for g in self.groups if g.layer is not None or g.places is not None
                     or getattr(g, "products", None) is not None or g.op in (_TAKE, _CROSS_ENTROPY) or not g.op.builtin]
        checked = np.unique(np.concatenate([[root], *unflagged]).astype(int))
        self.first_computed = min((int(g.out.min()) for g in self.groups), default=self.n_slots)
        # Any non-finite number among the others comes from these (leaves are finite, and the
        # ufuncs flag what they make): all the computed rows are read at once (a slice is
        # quicker than gathering a third of them), as they are after a flag.
        everything = slice(self.first_computed, None)
        self.checked = everything if 3 * len(checked) >= self.n_slots - self.first_computed else _index(checked)
        self.everything = everything
        # define_op ops with an array_forward of their own: checked against forward on every call
        self.user_groups = [g for g in self.groups if not g.op.builtin and g.op.array_forward is not None
                            and g.layer is None and g.places is None and not isinstance(g, _Joined)]
        rows = sorted(s for s in read if is_param[s])
        self.row_param_slots = np.array(rows, dtype=int)
        self.row_param_pos = np.array([position[s] for s in rows], dtype=int)
        self.nodes = sum(len(g.out) for g in self.groups)
        self.matrix_work = max(map(_matrix_work, self.groups), default=0)
        # Arrays reused from call to call: fresh ones cost more than the arithmetic (page faults).
        self._spare: list[np.ndarray] = []  # values arrays of results that are gone
        self._G: np.ndarray | None = None   # the gradients array (backward's scratch)

    def reached_by(self, V: np.ndarray) -> np.ndarray:
        """The places in P of the parameters some sample of V has in its loss's graph, as in the
        scalar loop: through a take of a plain index, only the option the sample picks."""
        if self.reach_plan is None:
            return np.union1d(self.reached, self.picked(V)) if self.take_groups else self.reached
        at = self.slot_position[_flows(self.reach_plan, V, self.n_slots)]
        return at[at >= 0]

    def walked_by(self, V: np.ndarray) -> tuple[np.ndarray, list[Value]]:
        """The places in P of the parameters, and the held Values, that the scalar backward walks
        to in some sample of V's graph (through a take of a plain index, the picked option only)."""
        if self.walk_plan is None:
            return (np.union1d(self.walked, self.picked(V, walked=True)) if self.walk_takes else self.walked,
                    self.held_walked)
        slots = _flows(self.walk_plan, V, self.n_slots)
        at = self.slot_position[slots]
        reached = set(slots.tolist())
        return at[at >= 0], [v for v, i in zip(self.held, self.held_slots.tolist()) if i in reached]

    def unfrozen(self, V: np.ndarray) -> list[Value]:
        """The held Values (frozen at the call) the scalar backward walks to for V that are unfrozen now."""
        if self.walk_plan is not None and any(v._requires_grad for v in self.held_walked):
            return [v for v in self.walked_by(V)[1] if v._requires_grad]
        return [v for v in self.held_walked if v._requires_grad]

    def picked(self, V: np.ndarray, walked: bool = False) -> np.ndarray:
        """The places in P of the parameters take's nodes picked for the samples of V (of the
        takes on the loss's path, or, if `walked`, those the scalar backward walks to)."""
        found = [np.empty(0, dtype=int)]
        for g, on_path in self.walk_takes if walked else self.take_groups:  # (the group's nodes that count)
            slots, valid = _take_slots(g, V)
            keep = np.broadcast_to(on_path[:, None], slots.shape) if valid is None else valid & on_path[:, None]
            at = self.slot_position[slots[keep]]
            found.append(at[at >= 0])
        return np.unique(np.concatenate(found))

    def settle(self, V: np.ndarray) -> np.ndarray:
        """Test the number guards (float(), int(), an index, a gradient) against the replay of the
        recorded sample (V's first column) itself, and return which samples of V pass now:
        replay may round otherwise than the scalar engine (a layer's matrix product sums in
        another order), and a sample replayed to the very same numbers decides as the recorded
        one, whatever user code saw."""
        for k, slot in self.numbered:
            guard, x = self.guards[k], float(V[slot, 0])
            if guard.kind == "int" and np.trunc(x) == guard.answer:
                continue  # the same int: the guard tests it as it is
            signed = guard.kind in _SIGNED
            if x != guard.answer or signed and np.signbit(x) != np.signbit(guard.answer):
                self.checks[k] = _same_number(slot, x, signed)
        return self.passes(V)

    def passes(self, V: np.ndarray) -> np.ndarray:
        """Which samples (columns) of V pass every guard."""
        ok = np.ones(V.shape[1], dtype=bool) if not self.checks else self.checks[0](V)
        for check in self.checks[1:]:
            ok &= check(V)
        return ok

    def check_made_before(self, force: bool = False) -> None:
        """Raise if a Value made outside fn, or one of its inputs, was set after it was made."""
        if not self.before or (not force and engine.changed_since(self.before, self.before_version) is None):
            return
        for v, version in zip(self.made_before, self.made_versions):
            for x in v.inputs:
                if engine.version_of(x) > engine.version_of(v):
                    name = f" {x.label!r}" if x.label else ""
                    raise RuntimeError(f"compile: fn uses a Value made outside fn ({v!r}, by {v.op!r}) from a "
                                       f"Value{name} whose data has changed since (now {x.data!r}); make it inside "
                                       f"fn, so that every call computes it from the current numbers")
            with engine.no_grad():  # its op again, on its inputs' numbers: the same float unless it was set
                set_since = engine.version_of(v) != version or v._op(*[x.data for x in v.inputs]) != v.data
            if set_since:
                raise RuntimeError(f"compile: fn uses a Value made outside fn ({v!r}, by {v.op!r}) whose data was set "
                                   f"after it was computed; replay computes it from its inputs: make it inside fn, "
                                   f"or make it a leaf (Value(x)) to hold a number of its own")
        self.before_version = engine.data_version()

    def out_of_date(self, params: list, frozen: bool) -> bool:
        """True once a Value recorded as a constant requires grad, or (when some parameter is
        `frozen`) one recorded as a parameter no longer does, or a node made outside fn was made a
        leaf (`requires_grad_()`, `detach_()`), whose number replay would compute from its old inputs:
        the recording must be made again."""
        if self.held and any(v._requires_grad for v in self.held):
            return True
        if self.made_before and not all(v.inputs for v in self.made_before):
            return True
        return frozen and not all(params[i]._requires_grad for i in np.arange(len(params))[self.param_index].tolist())

    def give_back(self, V: np.ndarray) -> None:
        """Keep V (no longer used by anyone) for a later forward."""
        if len(self._spare) < 2 and V.base is None and V.shape[0] == self.n_slots:
            self._spare.append(V)

    def forward(self, D: np.ndarray, P_all: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """(values V, this tape's parameters P, which samples pass every guard, the rows of V that
        may hold a number that is not finite, or None) for the samples whose numbers are the
        columns of D."""
        self.check_made_before()
        n = D.shape[1]
        if self.held and engine.changed_since(self.held, self.held_version) is not None:
            self.const_values[self.held_rows, 0] = [v.data for v in self.held]
            self.held_version = engine.data_version()
        for k, S in enumerate(self._spare):
            if S.shape[1] == n:  # a kept V holds the constants already: only the held ones may have changed
                V = self._spare.pop(k)
                if self.held:
                    V[self.held_slots] = self.const_values[self.held_rows]
                break
        else:
            V = np.empty((self.n_slots, n))
            V[self.const_slots] = self.const_values
        V[self.x_slots] = D[self.x_rows]
        P = P_all[self.param_index]
        if len(self.row_param_slots):
            V[self.row_param_slots] = P[self.row_param_pos, None]
        flagged, i = False, 0
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            try:
                for i, (g, run) in enumerate(self.forwards):  # noqa: B007 (i: where to go on after a flag)
                    run(g, V, P)
                i = len(self.groups)
                # one sum of the rows no flag speaks for: finite only if every term is (one
                # that overflows raises, and sends the check to every number, as a flag does)
                finite = math.isfinite(np.add.reduce(V[self.checked], axis=None))
            except FloatingPointError:
                flagged = True
        if flagged:  # for a sample another tape takes, or one to refuse (see `finite`): go on
            with np.errstate(all="ignore"):
                for g, run in self.forwards[i:]:
                    run(g, V, P)
        return V, P, self.passes(V), self.everything if flagged else None if finite else self.checked

    def check_array_forwards(self, V: np.ndarray, ok: np.ndarray, samples: np.ndarray) -> None:
        """Compare each define_op op's array_forward with its forward at a few of the batch's
        samples (those in `ok`): where each input is smallest and largest, so a formula right
        for the recorded sample's signs only is caught; raise, naming the sample, if they differ."""
        cols = np.flatnonzero(ok)
        for g in self.user_groups:
            ins = [V[at][:, cols] for at in g.ins_at]
            picks = {0}  # flat (node, sample) places in a (nodes, len(cols)) input
            for a in ins:
                picks.update(int(f(a)) for f in (np.argmin, np.argmax))
            for row, k in (divmod(i, len(cols)) for i in sorted(picks)):
                xs = [float(a[row, k]) for a in ins]
                got, col = float(V[g.out[row], cols[k]]), int(samples[cols[k]])
                try:
                    with engine.no_grad():
                        want = g.op(*xs)
                except (ArithmeticError, ValueError) as e:  # the scalar engine refuses these numbers
                    raise engine.reworded(e, f"compiled, sample {col}: {e}") from None
                if _differs(np.array(got), np.array(want), [np.array(x) for x in xs]):
                    raise ValueError(f"compiled, sample {col}: {_array_forward_differs(g.op, got, want, xs)}")

    def finite(self, V: np.ndarray, rows) -> np.ndarray:
        """Which samples (columns) of V have only finite numbers in `rows` (from `forward`): the
        scalar engine refuses an op whose result is not."""
        return np.isfinite(V[rows]).all(axis=0)

    def first_failure(self, V: np.ndarray, col: int) -> Guard:
        """The first guard that sample `col` of V fails."""
        for guard, check in zip(self.guards, self.checks):
            if not check(V[:, col:col + 1]).all():
                return guard
        return self.guards[0]

    def backward(self, V: np.ndarray, P: np.ndarray, scale: float, PG_all: np.ndarray, param_index,
                 careful: bool = False) -> None:
        """Add scale * d(sum of the losses in V)/d(parameter) into PG_all, where `param_index`
        (this tape's `param_index` when V was computed) says the tape's parameters sit in it
        (`careful`: as the scalar engine, see `_backward`)."""
        G = self._G
        if G is None or G.shape != V.shape:
            G = self._G = np.empty_like(V)
        G[self.first_computed:] = 0.0  # rows of leaves are never read, but those of row parameters
        if len(self.row_param_slots):
            G[self.row_param_slots] = 0.0
        G[self.root] = scale
        sliced = isinstance(param_index, slice)
        PG = PG_all[param_index] if sliced else np.zeros(len(P))  # a view adds straight into PG_all
        with np.errstate(all="ignore"):
            for g, out_at, run in self.backwards:
                run(g, V, G, P, PG, G[out_at], careful)
        if len(self.row_param_slots):
            PG[self.row_param_pos] += G[self.row_param_slots].sum(axis=1)
        if not sliced:
            PG_all[param_index] += PG

    def number(self, V: np.ndarray, P: np.ndarray, slot: int, col: int) -> float:
        """The number in `slot` for sample `col` (a parameter's is in P)."""
        k = self.param_position.get(slot)
        return float(V[slot, col] if k is None else P[k])

    def raise_nonfinite(self, V: np.ndarray, P: np.ndarray, samples: np.ndarray) -> None:
        """Raise the error the scalar engine gives at the first op whose result is not finite."""
        for g in (part for group in self.groups for part in getattr(group, "parts", [group])):
            bad = ~np.isfinite(V[g.out])
            if bad.any():
                row, col = map(int, np.argwhere(bad)[0])
                xs = [self.number(V, P, int(ins[row]), col) for ins in g.ins]
                try:  # the scalar engine's own words for it, when it refuses these numbers
                    with engine.no_grad():
                        want = g.op(*xs)
                except (ArithmeticError, ValueError) as e:
                    raise engine.reworded(e, f"compiled, sample {samples[col]}: {e}") from None
                if not g.op.builtin and g.op.array_forward is not None:
                    got = float(V[g.out[row], col])
                    raise ValueError(f"compiled, sample {samples[col]}: {_array_forward_differs(g.op, got, want, xs)}")
                shown = ", ".join(f"{x:.6g}" for x in xs)
                raise ValueError(f"compiled, sample {samples[col]}: {g.op.name}({shown}) is not finite on arrays, "
                                 f"though the op computes a number for these inputs (its array_forward differs)")
        raise ValueError("compiled: the loss is not finite")


def _with_sample(e: Exception, sample: int) -> Exception:
    """e, its message led by the sample's index."""
    return engine.reworded(e, f"compiled, sample {sample}: {e}")


def _as_float_bound(kind: str, n: int) -> np.float64 | None:
    """The float c for which `x kind c` decides as `x kind n` for every float x (None for == and
    != if no float equals n): Python, and so the scalar engine, compares a float with an int
    exactly, even one no float holds (2**53 + 1, 10**400), which lies between two floats."""
    try:
        f = float(n)
    except OverflowError:
        f = np.inf if n > 0 else -np.inf
    if f == n:
        return np.float64(f)
    if kind in ("==", "!="):
        return None
    below, above = (f, np.nextafter(f, np.inf)) if f < n else (np.nextafter(f, -np.inf), f)
    return np.float64(above if kind in ("<", ">=") else below)


def _guard_check(g: Guard, a: int | None, b: int | None) -> Callable:
    """The guard as a test of V's columns: True where a sample decides as the recording did.
    A comparison answered False is tested as the opposite comparison: the same for every
    number but NaN, and a sample with a NaN anywhere is refused whatever its guards say."""
    def side(slot, const):
        return (lambda V: V[slot]) if slot is not None else (lambda V: np.float64(const))
    if g.kind in _COMPARE:
        compare = _COMPARE[g.kind] if g.answer else _OPPOSITE[g.kind]
        if b is None:  # the usual case, a Value against a number: one numpy call
            const = _as_float_bound(g.kind, g.b) if type(g.b) is int else np.float64(g.b)  # type: ignore[arg-type]
            if const is None:  # == or != with an int no float equals: every sample decides as recorded
                return lambda V: np.ones(V.shape[1], dtype=bool)
            return lambda V: compare(V[a], const)
        A, B = side(a, g.a), side(b, g.b)
        return lambda V: compare(A(V), B(V))
    if g.kind == "int":
        return lambda V: np.trunc(V[a]) == g.answer
    # float, text, grad, index, hash: the very same number
    return _same_number(a, g.answer, g.kind in _SIGNED)  # type: ignore[arg-type]


def _same_number(slot: int, x: Any, signed: bool) -> Callable:
    """A test of V's columns: True where `slot` holds x, and, if `signed`, a zero of x's sign
    (str(-0.0) is "-0.0", copysign(1, -0.0) is -1; an index or a dict key takes -0.0 as 0)."""
    if not signed:
        return lambda V: V[slot] == x
    negative: Any = np.signbit(x)
    return lambda V: (V[slot] == x) & (np.signbit(V[slot]) == negative)


def _differs(got: np.ndarray, want: np.ndarray, ins: list[np.ndarray]) -> np.ndarray:
    """Where array_forward's `got` is not the forward's `want` up to rounding (relative to the
    inputs too: a difference of near-equal numbers)."""
    with np.errstate(all="ignore"):
        scale = np.maximum.reduce([abs(want), abs(got), *map(abs, ins)])
        return ~(abs(got - want) <= 1e-9 * scale)


def _check_nothing_set(order: list[Value], start: int, own: set[int], sample: set[int], guards: list[Guard]) -> None:
    """Refuse a recording in which fn set the `.data` of a Value the tape reads or computes (a
    parameter, a sample's number, a Value made outside fn, a node fn made, any Value after an op
    used it): a replay does not run fn, so it would compute with other numbers than the scalar
    loop. `own`: the ids of the Values fn made with Value(), which it may set before an op uses
    them (they are read at every call) unless fn read them first (one it keeps and sets at every
    call, an annealed buffer, would be read as fn left it), and of the numbers ops lifted;
    `sample`: those of the sample's numbers."""
    def refuse(what: str) -> None:
        raise RuntimeError(f"compile: fn set the .data of {what}, while compile recorded it; a replay does not run "
                           f"fn, so it would not set it, and would compute with other numbers than the scalar loop: "
                           f"set .data outside fn (before or after the compiled call)")
    for v in order:  # (first: a Value set after its use is named as such, whoever made it)
        x = next((x for x in v.inputs if engine.version_of(x) > engine.version_of(v)), None)
        if x is not None:
            refuse(f"Value {x.label or x!r}, after an op used it ({v.op!r})")
    for v in order:
        t = engine.version_of(v)
        if not v.inputs:
            if t <= start or id(v) in own:
                continue
            if id(v) in sample:  # (a number in the scalar loop, which has no .data)
                refuse(f"the sample's number {v.label}")
            name = repr(v.label) if v.label else repr(v)
            # one without gradient (a temperature annealed inside fn) would be read as fn left it
            refuse(f"parameter {name}" if v._requires_grad else f"Value {name}, made outside fn")
        elif t > start:  # made after a set, or set itself: its op gives its number again unless it was set
            try:
                again = v._op.forward(*[x._data for x in v.inputs])  # type: ignore[union-attr]
            except (ArithmeticError, ValueError):
                again = None
            if again != v._data:
                refuse(f"a Value made by {v.op!r} inside fn ({v!r})")
    for g in guards:  # (a leaf's number decides as recorded unless it was set since: nodes are checked above)
        leaf = next((x for x in g.values() if not x.inputs), None)
        if leaf is not None and _decided_otherwise(g):
            refuse(f"Value {leaf.label or leaf!r}, after fn read it ({g.describe()})")


_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
              "!=": operator.ne}


def _decided_otherwise(g: Guard) -> bool:
    """True if decision g, made again on its Values' numbers as they are now, comes out otherwise."""
    a: Any = g.a._data if type(g.a) is Value else g.a
    b: Any = g.b._data if type(g.b) is Value else g.b
    answer: Any = g.answer
    if g.kind in _OPERATORS:
        return _OPERATORS[g.kind](a, b) != answer
    if g.kind in ("int", "index"):
        return int(a) != answer
    if g.kind in ("float", "text", "hash"):
        return a != answer or g.kind in _SIGNED and math.copysign(1.0, a) != math.copysign(1.0, answer)
    return False  # (a gradient, an op's refusal: made on nodes)


def _check_array_forwards(order: list[Value]) -> None:
    """Refuse a define_op op whose `array_forward` computes another number than its forward at
    the recorded sample's inputs: replay would run every sample through it, silently wrong."""
    nodes_of: dict[tuple, list[Value]] = {}
    for v in order:
        if v._op is not None and not v._op.builtin and v._op.array_forward is not None:
            nodes_of.setdefault((v._op, len(v.inputs)), []).append(v)
    for (op, arity), nodes in nodes_of.items():
        ins = [np.array([v.inputs[k].data for v in nodes]) for k in range(arity)]
        want = np.array([v.data for v in nodes])
        with np.errstate(all="ignore"):
            got = np.broadcast_to(np.asarray(op.array_forward(*ins), dtype=float), want.shape)
        bad = _differs(got, want, ins)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            xs = [float(a[i]) for a in ins]
            raise ValueError(f"compile: {_array_forward_differs(op, float(got[i]), nodes[i].data, xs)}")


def _array_forward_differs(op: engine.Op, got: float, want: float, xs: list[float]) -> str:
    """The error for a define_op op whose array_forward gives `got` where its forward gives
    `want` at the inputs `xs`: the same words at recording and at the checks of every call."""
    args = ", ".join(map(shown, xs))
    return (f"{op.name}'s array_forward gives {shown(got)} where its forward gives {shown(want)}, at ({args}); "
            f"replay computes every sample with it: fix array_forward, or leave it out (replay then runs "
            f"forward per sample)")


def _refusal_check(op: Any, slots: list[int]) -> Callable:
    """A guard on an op that refused the recorded sample's numbers (fn caught the error): True
    for the samples whose numbers it refuses too, asked of the op itself, as the scalar engine asks."""
    def refuses(xs: list) -> bool:
        try:
            op._forward(xs, xs)
        except (ArithmeticError, ValueError):
            return True
        return False
    return lambda V: np.fromiter(map(refuses, V[slots].T.tolist()), bool, V.shape[1])


def _flow_plan(structure: list, root: int, plain: list, nodes: list) -> tuple:
    """What `_flows` follows: from `nodes` [(slot, which of its inputs a flow there goes on to)], the
    edges by depth (a node's inputs are made before it: none of a level feeds another of it), and
    for a take of a plain index (`plain`), the option a sample must pick for the edge to carry."""
    level = [0] * len(structure)
    for i, s in enumerate(structure):
        if isinstance(s[1], tuple) and s[1]:
            level[i] = 1 + max(level[j] for j in s[1])
    by_level: dict[int, list] = {}
    for i, follow in nodes:
        for k in follow:
            picked = plain[i] and k > 0  # (an option of a plain take: carried where a sample picks it)
            by_level.setdefault(level[i], []).append(
                (i, structure[i][1][k], structure[i][1][0] if picked else -1, k - 1 if picked else -1))
    levels = []
    for depth in sorted(by_level, reverse=True):
        edges = sorted(by_level[depth], key=lambda e: e[1])  # (by input: one reduceat ORs each input's edges)
        outs, ins, index, option = map(np.array, zip(*edges))
        picks = np.flatnonzero(index >= 0)
        starts = np.flatnonzero(np.r_[True, ins[1:] != ins[:-1]])
        levels.append((outs, ins[starts], starts, picks, index[picks], option[picks]))
    return root, levels


def _flows(plan: tuple, V: np.ndarray, n_slots: int) -> np.ndarray:
    """The slots a flow from the root reaches for some sample (column) of V (see `_flow_plan`)."""
    root, levels = plan
    R = np.zeros((n_slots, V.shape[1]), dtype=bool)
    R[root] = True
    for outs, ins, starts, picks, index, option in levels:
        F = R[outs]
        if len(picks):
            F[picks] &= V[index] == option[:, None]
        R[ins] |= np.logical_or.reduceat(F, starts, axis=0)
    return np.flatnonzero(R.any(axis=1))


# ---- compiled functions ------------------------------------------------------------------------

def _number_loss(x: Real, sample: int) -> float:
    """A plain number fn returned as a sample's loss, as a float, refused if not finite (the scalar
    loop's sum refuses it)."""
    try:
        f = float(x)
    except OverflowError:  # (an int too large for a float)
        f = math.inf
    if not math.isfinite(f):
        raise ValueError(f"compiled, sample {sample}: fn returned {shown(x)}, a loss that is not finite")
    return f


def _needs_grad(run: tuple) -> bool:
    """Whether some sample's loss of the run requires grad in the scalar loop: a parameter a take
    of a plain index (an embedding's row) offers is in a sample's graph only if that sample picks it.
    Never inside no_grad(), where the scalar loop's sum of the losses is made (a loss that is a
    parameter itself, `max(w * x, w1)`, requires grad there too)."""
    tape, V = run[0], run[1]
    if not tape.grad_enabled:
        return False
    if tape.reach_plan is not None:
        return tape.requires_grad and len(tape.reached_by(V)) > 0
    return tape.requires_grad and (len(tape.reached) > 0 or len(tape.picked(V)) > 0)


def _grads_of(params: list[Value], grads: list) -> list[float]:
    """The parameters' `.grad`s (`grads`, as read) as floats, as the scalar backward takes them:
    None (PyTorch's "no gradient yet") is 0, another finite number a float; anything else is refused."""
    if engine.all_floats(grads):
        return grads
    for k, (p, g) in enumerate(zip(params, grads)):
        if g is None:
            grads[k] = 0.0
            continue
        where = f"compiled backward: the .grad of parameter {p.label or k} (data {p.data:.6g})"
        if isinstance(g, (bool, np.bool_)) or not isinstance(g, Real):
            raise TypeError(f"{where} must be a number or None, got {type(g).__name__} {g!r:.60}")
        if not is_finite(g):
            raise ValueError(f"{where} must be finite, got {shown(g)}")
        grads[k] = float(g)
    return grads


# OpenBLAS runs a matrix product of fewer multiply-adds on one thread whatever its setting (its
# threshold is 4 * 65536): below this, setting one thread would only cost the calls
_THREADED_WORK = 65536


@functools.cache
def _blas_libraries() -> list:
    """The BLAS libraries numpy loaded (a scan of the process: once, at the first replay that needs them)."""
    return ThreadpoolController().select(user_api="blas").lib_controllers


class _OneBlasThread:
    """numpy's BLAS on one thread while a replay with matrix products of `work` multiply-adds runs,
    as it was after: they are small, and handing them to threads costs more than it shares (the
    compiled GPT step took 2 to 3 times as long, in CPU and in wall time, with OpenBLAS's two
    threads on two cores)."""

    def __init__(self, work: int) -> None:
        self._restore: list = []
        self._libs = _blas_libraries() if work >= _THREADED_WORK else []

    def __enter__(self) -> None:
        self._restore = [(lib, n) for lib in self._libs if (n := lib.get_num_threads()) != 1]
        for lib, _ in self._restore:
            lib.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        for lib, n in self._restore:
            lib.set_num_threads(n)


class BatchResult:
    """The mean loss over a batch; `backward()` adds its gradient into the parameters."""

    def __init__(self, compiled: "Compiled", runs: list, losses: np.ndarray, outputs: np.ndarray | None) -> None:
        self._compiled, self._runs, self._call = compiled, runs, compiled.calls
        self._version = engine.data_version()  # the parameters' numbers this result was computed at
        # the parameters and where each tape's sit among them, as they are now (see Compiled._forget_params)
        self._params, self._index = compiled.params, [run[0].param_index for run in runs]
        self.losses = losses
        with np.errstate(over="ignore", invalid="ignore"):  # summed in order, as the scalar engine's sum
            self.data = float(np.add.accumulate(losses)[-1]) / len(losses)
        if self.data - self.data != 0.0:  # finite losses whose sum overflows: the scalar sum refuses it too
            raise OverflowError(f"compiled: the mean loss of {len(losses)} samples is not finite (their sum "
                                f"overflowed)")
        self.outputs = outputs
        self.tapes = len({id(run[0]) for run in runs}) if len(runs) > 1 else len(runs)  # recordings this batch used
        self.grads: np.ndarray | None = None  # after backward(): d(mean)/d(compiled.params[i]) (params at the call)

    def backward(self) -> None:
        """Add d(mean loss)/d(parameter) into each parameter's `.grad`."""
        work = max(run[0].matrix_work * run[1].shape[1] for run in self._runs)
        with self._compiled._lock, _OneBlasThread(work):
            self._backward()

    def _backward(self) -> None:
        params = self._params
        runs = self._runs  # (the first tape's answer is usually enough: no generator then)
        if not _needs_grad(runs[0]) and not any(map(_needs_grad, runs)):  # as the scalar mean
            raise RuntimeError("compiled backward: the mean loss does not require grad (it was computed inside "
                               "no_grad(), or fn computed it from no Value with requires_grad=True)")
        unchanged = engine.data_version() == self._version  # (no Value's data was set since the call)
        changed = None if unchanged else engine.changed_since(self._walked(), self._version)
        if changed is not None:
            name = f" {changed.label!r}" if changed.label else ""
            raise RuntimeError(f"backward: the data of parameter{name} (now {changed.data!r}) was changed after this "
                               f"batch was computed; run the compiled function again to differentiate at the new "
                               f"value")
        if not unchanged:  # the Values without gradient it read (a frozen weight), and those made outside fn
            changed = engine.changed_since([v for run in runs for v in (*run[0].walked_by(run[1])[1],
                                                                          *run[0].made_before)],
                                           self._version)
        if changed is not None:
            name = f" {changed.label!r}" if changed.label else ""
            raise RuntimeError(f"backward: the data of Value{name} (now {changed.data!r}) was changed after this "
                               f"batch was computed; run the compiled function again to differentiate at the new "
                               f"value")
        PG = self._gradient(careful=False)
        # A frozen parameter gets no gradient, as backward's leaf: one frozen at the call has a PG
        # of 0 (its tapes took it as a constant), one frozen since (requires_grad_(False), or the
        # attribute set) none; its .grad is not read (None here), and `live` says which get one.
        # One frozen at the call and not now is a leaf the scalar backward meets: it starts its
        # .grad (None as 0) and adds nothing, and so does this one.
        unfrozen = [v for run in runs for v in run[0].unfrozen(run[1])]
        old = [p.grad if p._requires_grad else None for p in params]
        live = None
        # the usual case, floats and nothing set since the call: one check, as a sum is finite only if its terms are
        grads = engine.float_array(old) + PG if unchanged and not unfrozen and engine.all_floats(old) else None
        if grads is None or not np.isfinite(grads).all():
            if not np.isfinite(PG).all():  # again, as the scalar engine goes: no 0 × inf, a bad derivative named
                PG = self._gradient(careful=True)
            # a parameter no tape of this batch reaches keeps its .grad, as the scalar backward leaves
            # it (None stays None, which the optimizers skip), and it is not read
            live = np.zeros(len(PG), dtype=bool)
            for (tape, V, *_), index in zip(self._runs, self._index):
                at = np.arange(len(PG))[index]  # the tape's parameters' places
                live[at[tape.reached_by(V)]] = True
            if unfrozen:
                ids = set(map(id, unfrozen))
                live |= np.fromiter((id(p) in ids for p in params), bool, len(PG))
                ids.difference_update(map(id, params))
                extra = [v for v in dict.fromkeys(unfrozen) if id(v) in ids]  # (in no tape as a parameter)
                params, old = params + extra, old + [v.grad for v in extra]
                live = np.concatenate([live, np.ones(len(extra), dtype=bool)])
                PG = np.concatenate([PG, np.zeros(len(extra))])
            live &= np.fromiter((p._requires_grad for p in params), bool, len(PG))
            old = [g if add else 0.0 for g, add in zip(old, live.tolist())]
            grads = np.fromiter(_grads_of(params, old), float, len(PG))
            grads += PG * live
            if not np.isfinite(grads).all():  # as the scalar backward, nothing is added then
                bad = int(np.flatnonzero(~np.isfinite(grads))[0])
                raise OverflowError(f"compiled backward: the gradient of parameter {params[bad]!r} overflowed "
                                    f"to a non-finite value (the loss or learning rate may be too large)")
        if live is None:  # (the usual case: one plain pass)
            for p, g in zip(params, grads.tolist()):
                p.grad = g
        else:
            for p, g, add in zip(params, grads.tolist(), live.tolist()):
                if add:
                    p.grad = g
        PG = PG[:len(self._params)]
        self.grads = PG

    def _walked(self) -> list[Value]:
        """The parameters in this batch's graphs, which the scalar backward walks to (and refuses
        to differentiate at, once one is set): not one only decided on, or only another batch's."""
        positions = np.arange(len(self._params))  # (a take's parameter options: those a sample picked)
        used = np.unique(np.concatenate([positions[index][tape.walked_by(V)[0]]
                                         for (tape, V, *_), index in zip(self._runs, self._index)]))
        return [self._params[i] for i in used.tolist()]

    def _gradient(self, careful: bool) -> np.ndarray:
        PG = np.zeros(len(self._params))
        for (tape, V, P, samples), index in zip(self._runs, self._index):
            try:
                tape.backward(V, P, 1.0 / len(self.losses), PG, index, careful)
            except _BadDerivative as e:
                xs = ", ".join(f"{tape.number(V, P, int(ins[e.row]), e.col):.6g}" for ins in e.group.ins)
                raise ValueError(f"compiled backward, sample {samples[e.col]}: the derivative of "
                                 f"{e.group.op.name}({xs}) with respect to input {e.input} is not finite") from None
        return PG

    def __del__(self) -> None:
        for tape, V, _, _ in getattr(self, "_runs", ()):
            tape.give_back(V)

    def __repr__(self) -> str:
        return f"BatchResult(data={self.data:.4g}, batch={len(self.losses)}, tapes={self.tapes})"


class Compiled:
    """`fn` recorded once per kind of sample and replayed over batches: call it with a list of
    samples (`fn(sample)`), or with X (n, d) and y (n,) (`fn(x, y)`)."""

    def __init__(self, fn: Callable, *, max_tapes: int = 16, watch: Callable[[], list] | None = None) -> None:
        if isinstance(max_tapes, bool) or not isinstance(max_tapes, int) or max_tapes < 1:
            raise ValueError(f"compile: max_tapes must be a positive int, got {max_tapes!r}")
        self.fn, self.max_tapes, self._watch = fn, max_tapes, watch
        self._tapes: OrderedDict[object, list[_Tape]] = OrderedDict()
        self.params: list[Value] = []      # every parameter any tape reads, in first-seen order
        self._positions: dict[int, int] = {}
        self.calls = 0
        self.recordings = 0                # tapes recorded so far (some may have been dropped)
        self._dropped = False              # a tape was dropped since the parameters were last counted
        self._warned = False               # that recordings are dropped and made again, once
        # calls and backwards from several threads take turns: the tapes' arrays are reused
        self._lock = threading.RLock()

    @property
    def tapes(self) -> int:
        """How many recordings are kept (at most `max_tapes`)."""
        return sum(map(len, self._tapes.values()))

    def _position(self, p: Value) -> int:
        if id(p) not in self._positions:
            self._positions[id(p)] = len(self.params)
            self.params.append(p)
        return self._positions[id(p)]

    def _forget_params(self) -> None:
        """Drop the parameters only dropped tapes read (fn's own `Value(t)`, new at each recording,
        would otherwise pile up, and every call reads them all), once they are most of them. The
        kept tapes are renumbered; results already made keep the old list and numbers."""
        self._dropped = False
        positions = np.arange(len(self.params))
        read = np.zeros(len(self.params), dtype=bool)
        for tapes in self._tapes.values():
            for tape in tapes:
                read[positions[tape.param_index]] = True
        if len(self.params) <= 2 * int(read.sum()) + 64:
            return
        new = np.cumsum(read) - 1  # an old position -> the new one
        self.params = [p for p, keep in zip(self.params, read.tolist()) if keep]
        self._positions = {id(p): k for k, p in enumerate(self.params)}
        for tapes in self._tapes.values():
            for tape in tapes:
                tape.param_index = _index(new[positions[tape.param_index]])

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", type(self.fn).__name__)
        shapes = sorted({_describe_shape(s) for s, tapes in list(self._tapes.items()) if tapes})  # (see __call__)
        def counted(n: int, what: str) -> str:
            return f"{n} {what}{'s' if n != 1 else ''}"
        return (f"Compiled({name}: {counted(self.tapes, 'tape')} for {counted(len(shapes), 'sample shape')}, "
                f"{counted(len(self.params), 'parameter')}, {counted(self.recordings, 'recording')})")

    # ---- the batch, by shape ------------------------------------------------------------------

    def _split(self, args: tuple) -> list[tuple[object, np.ndarray, np.ndarray]]:
        """[(shape, sample indices, D with the samples' numbers as columns)] for the batch."""
        if len(args) == 2:
            # ints beyond 2**53 would be rounded by float (arrays of floats hold none, nor anything but reals)
            floats = all(type(a) is np.ndarray and a.dtype.kind == "f" for a in args)
            for name, a in zip("Xy", () if floats else map(_real_array, "Xy", args)):
                if a.dtype.kind in "iu" and ((a > EXACT_INT) | (a < -EXACT_INT)).any() or a.dtype.kind == "O":
                    for x in a.ravel().tolist():
                        if type(x) is int:
                            _exact_float(x)
                        elif not isinstance(x, Real):  # (a complex number, a string, a Value)
                            raise TypeError(f"compiled: {name} must hold real numbers, got {type(x).__name__} "
                                            f"{shown(x)}")
            X = np.asarray(args[0], dtype=float)
            y = np.asarray(args[1], dtype=float).reshape(-1)
            if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
                raise ValueError(f"compiled: expected X of shape (n, d) and y of shape (n,), "
                                 f"got {X.shape} and {y.shape}")
            D = np.empty((X.shape[1] + 1, len(X)))
            D[:-1], D[-1] = X.T, y
            if not np.isfinite(D).all():  # (D holds X's and y's numbers: one check for both)
                raise ValueError("compiled: X or y contains NaN or infinity")
            x_kinds, y_kinds = _row_kinds(args[0], X), _row_kinds(args[1], y)
            # X[i] is an array for the scalar loop when X is one, or a list of them: so it is for fn
            rows_are_arrays = isinstance(args[0], np.ndarray) or all(isinstance(r, np.ndarray) for r in args[0])
            if len(x_kinds) == len(y_kinds) == 1:  # arrays of ints or floats: one kind of row
                return [(("xy", X.shape[1], x_kinds[0] + y_kinds[0], rows_are_arrays), np.arange(len(X)), D)]
            by_kinds: dict[tuple, list[int]] = {}
            for i in range(len(X)):
                by_kinds.setdefault(x_kinds[i % len(x_kinds)] + y_kinds[i % len(y_kinds)], []).append(i)
            return [(("xy", X.shape[1], kinds, rows_are_arrays), np.array(rows), D[:, rows])
                    for kinds, rows in by_kinds.items()]
        if len(args) != 1:
            raise TypeError(f"compiled: call with a list of samples, or with X and y; got {len(args)} arguments")
        samples = args[0]
        if isinstance(samples, np.ndarray):
            samples = list(samples)
        if not isinstance(samples, (list, tuple)) or len(samples) == 0:
            raise ValueError(f"compiled: expected a non-empty list of samples, got {type(samples).__name__}"
                             + (" of length 0" if isinstance(samples, (list, tuple)) else ""))
        by_shape: dict[object, tuple[list, list]] = {}
        for i, sample in enumerate(samples):
            numbers: list[float] = []
            try:
                shape = _flatten(sample, numbers)
            except (TypeError, ValueError) as e:
                raise engine.reworded(e, f"{e} (sample {i})") from None
            rows, cols = by_shape.setdefault(shape, ([], []))
            rows.append(i)
            cols.append(numbers)
        return [(shape, np.array(rows), np.array(cols, dtype=float).T.reshape(-1, len(rows)))
                for shape, (rows, cols) in by_shape.items()]

    def _args(self, shape, leaves: list[Value]) -> tuple:
        if shape[0] == "xy":  # a bool of X or y is given as itself, as to the scalar loop
            xy = [leaf if kind in ("i", "f") else kind[1] for leaf, kind in zip(leaves, shape[2])]
            return (_object_array((shape[1],), xy[:-1]) if shape[3] else xy[:-1]), xy[-1]
        return (_rebuild(shape, iter(leaves)),)

    def _record(self, shape, numbers: np.ndarray, sample: int) -> _Tape:
        out, leaves, guards, start, made, own, lifted = self._run(shape, numbers, sample)
        self.recordings += 1
        number = not isinstance(out, Value)  # a constant loss for this path (the scalar loop's sum adds it)
        if number:
            out = Value(_number_loss(out, sample), requires_grad=False)
        tape = _Tape(self, out, leaves, guards, self._watch() if self._watch else [], shape, start, made, own,
                     lifted)
        tape.returned_number = number
        return tape

    def _run(self, shape, numbers: np.ndarray, sample: int) -> tuple:
        """fn on `sample` while recording: (loss, the sample's Values, guards, data version, nodes made,
        Values made by Value(), numbers ops lifted); raises, with the sample's index, where the scalar
        engine raises."""
        if shape[0] == "xy":
            names = [f"x{i}" for i in range(shape[1])] + ["y"]
        else:
            names = [f"s{i}" for i in range(len(numbers))]
        start = engine.next_version()  # Values made from here on belong to this recording
        leaves = [Value(float(x), name, requires_grad=False) for x, name in zip(numbers, names)]
        made: list[Value] = []
        own: list[Value] = []
        lifted: list[Value] = []
        kinds = list(shape[2]) if shape[0] == "xy" else _kinds(shape)
        floats = [v for v, kind in zip(leaves, kinds) if kind == "f"]
        args = self._args(shape, leaves)
        _check_arity(self.fn, args)
        mode = engine.is_grad_enabled()
        with recording(leaves, start, made, floats, own, lifted) as guards:
            try:
                out = self.fn(*args)
            except (ArithmeticError, ValueError, IndexError, TypeError, AttributeError) as e:  # say which sample
                raise _with_sample(e, sample) from e
        if engine.is_grad_enabled() != mode:  # a replay does not run fn: it could not set the mode again
            engine.set_grad_enabled(mode)
            raise RuntimeError(f"compile: fn turned graph recording {'on' if not mode else 'off'} for the code after "
                               "it (set_grad_enabled as a plain call), which a replay, not running fn, would not; "
                               "use `with set_grad_enabled(...):` inside fn, or call it outside")
        refused = next((g for g in guards if g.kind == "refused"), None)
        if refused is not None:  # fn caught it, and went on where the scalar loop computes a number
            raise TypeError(f"{refused.answer} (at {refused.where}; fn caught the error, but the scalar loop has no "
                            f"error there)")
        if not isinstance(out, (Value, Real)) or isinstance(out, (bool, np.bool_)):
            raise TypeError(f"compile: fn must return a Value (the sample's loss), got {type(out).__name__}")
        return out, leaves, guards, start, made, own, lifted

    # ---- replay -------------------------------------------------------------------------------

    def __copy__(self) -> "Compiled":
        """A fresh compiled `fn`, with no recordings: a copy of the tapes would replay copies of
        the parameters while `fn` computes with the live ones."""
        return Compiled(self.fn, max_tapes=self.max_tapes, watch=self._watch)

    def __deepcopy__(self, memo: dict) -> "Compiled":
        return self.__copy__()

    def __call__(self, *args: Any) -> BatchResult:
        n = len(args[0]) if args and hasattr(args[0], "__len__") else 0
        # read before the lock, so on a copy: another thread's call may add or drop a shape meanwhile
        work = n * max((t.matrix_work for tapes in list(self._tapes.values()) for t in tapes), default=0)
        with self._lock, _OneBlasThread(work):
            return self._call(args)

    def _call(self, args: tuple) -> BatchResult:
        parts = self._split(args)
        if self._dropped:
            self._forget_params()
        self.calls += 1
        n = sum(len(rows) for _, rows, _ in parts)
        # the parameters' numbers, and whether any is frozen (requires_grad read as the scalar
        # engine reads it, when the graph is made), in one pass over them when none is
        params, mode = self.params, engine.is_grad_enabled()
        data = [p._data for p in params if p._requires_grad]
        frozen = len(data) != len(params)
        if frozen:
            data = engine.data_of(params)
        P_all = engine.float_array(data)
        runs: list = []
        losses, outputs = np.empty(n), None
        for shape, rows, D in parts:
            known = self._tapes.setdefault(shape, [])
            kept = [t for t in known if not t.out_of_date(self.params, frozen)]
            if len(kept) != len(known):  # dropped as an evicted tape is: the parameters only it read go too
                known[:] = kept
                self._dropped = True
            pending, i = np.arange(len(rows)), 0
            while len(pending):  # each tape in turn takes the samples that decide as it did
                fresh = i >= len(known)
                if fresh:
                    self._new_tape(shape, D[:, pending[0]], int(rows[pending[0]]), runs, known, parts)
                    i = len(known) - 1
                    if len(P_all) < len(self.params):
                        P_all = np.concatenate([P_all, [p.data for p in self.params[len(P_all):]]])
                tape = known[i]
                i += 1
                if tape.grad_enabled is not mode:  # (inside no_grad or not: fn ran in the other mode)
                    continue
                V, P, ok, suspect = tape.forward(D if len(pending) == len(rows) else D[:, pending], P_all)
                if fresh and tape.numbered:
                    ok = tape.settle(V)
                if fresh and not ok[0]:
                    raise RuntimeError(f"compile: sample {rows[pending[0]]} fails the checks of its own recording at "
                                       f"{tape.first_failure(V, 0).describe()}: replay computed another number "
                                       f"there than the scalar engine (rounding: replay sums a layer in another "
                                       f"order, so a comparison of numbers equal up to rounding may flip; an op's "
                                       f"array_forward that differs from its forward; or fn is not deterministic)")
                every = bool(ok.all())
                if suspect is not None and (every or ok.any()):
                    # An op refuses a sample's numbers: fn may catch that and go another way, so the
                    # sample goes on to another recording (which raises the engine's error if fn
                    # does not catch it); only on its own recording is it refused here.
                    finite = tape.finite(V, suspect)
                    if fresh and not finite[0]:
                        tape.raise_nonfinite(V[:, :1], P, rows[pending[:1]])
                    ok &= finite
                    every = bool(ok.all())
                if not every and not ok.any():
                    tape.give_back(V)
                    continue
                if tape.user_groups:
                    tape.check_array_forwards(V, ok, rows[pending])
                tape.last_used = self.calls
                if every:
                    samples = rows if len(pending) == len(rows) else rows[pending]
                else:
                    tape.give_back(V)
                    V, samples = V[:, ok], rows[pending[ok]]
                runs.append((tape, V, P, samples))
                losses[samples] = V[tape.root]
                outputs = self._outputs(outputs, tape, V, samples, n)
                pending = pending[:0] if every else pending[~ok]
        if all(run[0].returned_number for run in runs):  # the scalar loop's mean is a number then, with no backward()
            raise TypeError(f"compile: fn must return a Value (the sample's loss) for some sample of the batch; it "
                            f"returned a plain number for all {n}")
        return BatchResult(self, runs, losses, outputs)

    def _new_tape(self, shape, numbers: np.ndarray, sample: int, runs: list, known: list, parts: list) -> _Tape:
        """Record fn on `sample`, dropping the least recently used tape that this call has
        not used if `max_tapes` are kept already (`parts`: the batch by shape, for the error)."""
        try:
            return self._make_tape(shape, numbers, sample, runs, known, parts)
        except BaseException:  # a refused sample keeps no entry for its shape (a shape seen once: no growth)
            if not known and self._tapes.get(shape) is known:
                del self._tapes[shape]
            raise

    def _make_tape(self, shape, numbers: np.ndarray, sample: int, runs: list, known: list, parts: list) -> _Tape:
        if self.tapes >= self.max_tapes:
            in_use = {id(run[0]) for run in runs}
            unused = [(t.last_used, s, t) for s, ts in self._tapes.items() for t in ts if id(t) not in in_use]
            if not unused:
                raise ValueError(self._too_many(shape, numbers, sample, known, parts))
            _, s, t = min(unused, key=lambda u: u[0])
            self._tapes[s].remove(t)
            self._dropped = True
            if self.recordings >= 2 * self.max_tapes and not self._warned:  # each costs as much as the scalar loop
                self._warned = True
                warnings.warn(f"compile: {self.recordings} recordings made for max_tapes={self.max_tapes} kept: the "
                              "batches need more recordings between them (samples of more shapes, word lengths), "
                              "so recordings are dropped and made again, slowly; raise max_tapes=",
                              RuntimeWarning, stacklevel=5)  # the caller's line, past __call__, _call, _new_tape
            if not self._tapes[s] and s != shape:  # (a shape seen once, a sample's id string: no growth)
                del self._tapes[s]
        tape = self._record(shape, numbers, sample)
        known.append(tape)
        return tape

    def _too_many(self, shape, numbers, sample: int, known: list, parts: list) -> str:
        self._run(shape, numbers, sample)  # the scalar engine's own error for this sample, if fn does not catch it
        why = ""
        known = [tape for tape in known if tape.grad_enabled is engine.is_grad_enabled()]
        P_all = np.fromiter(engine.data_of(self.params), dtype=float)
        followed = [tape for tape in known if tape.forward(numbers[:, None], P_all)[2][0]]
        if followed:  # it decides as a recording did, whose ops refuse its numbers: fn catches the error
            why = (f": sample {sample} takes the path of a recording on which an op refuses its numbers, an error "
                   f"fn catches, so it needs a recording of its own")
        elif known:
            tape = known[-1]
            V, _, _, _ = tape.forward(numbers[:, None], P_all)
            guard = tape.first_failure(V, 0)
            why = f": sample {sample} decides differently at {guard.describe()}"
            if guard.kind == "float":
                why += (" (its number differs from sample to sample, so each needs a recording of its own: compare "
                        "Values instead, `if v > 0:`, which compile records as a branch, or keep the arithmetic "
                        "in Values)")
            elif guard.kind == "grad":
                why += (" (mg.grad() without create_graph gives plain floats, which compile cannot replay: take "
                        "mg.grad(..., create_graph=True) and .detach() the gradients, which compile replays for "
                        "every sample)")
            elif guard.kind == "hash":
                why += (" (a dict or set keyed by the sample's numbers needs a recording for each number: map "
                        "them to indices before compiling, or use mg.take(index, options))")
            elif guard.kind == "text":
                why += (" (the text of a sample's number decides per number, as the plain call shows each number "
                        "otherwise, so each number needs a recording of its own: a print() or an f-string of the "
                        "sample's numbers inside fn, for debugging, does this; take it out, or show the numbers "
                        "outside fn)")
            elif guard.kind == "index":
                why += " (use mg.take(index, options), as nn.Embedding does, so one recording serves every index)"
        else:  # a shape no kept recording has: every shape of the batch needs one (a list's length is its shape)
            shapes = [_describe_shape(s) for s, _, _ in parts]
            listed = ", ".join(shapes[:8]) + (f", ... {len(shapes) - 8} more" if len(shapes) > 8 else "")
            why = (f": its samples come in {len(shapes)} shapes ({listed}), and each shape needs a recording of "
                   f"its own (more than one where fn branches)")
        return (f"compile: this batch needs more than max_tapes={self.max_tapes} recordings of fn{why}; "
                f"raise max_tapes= or use the scalar loop for this function")

    def _outputs(self, outputs, tape: _Tape, V: np.ndarray, samples: np.ndarray, n: int):
        if not tape.watched:
            return outputs
        if outputs is None:
            outputs = np.empty((n, len(tape.watched))) if len(tape.watched) > 1 else np.empty(n)
        outputs[samples] = V[tape.watched].T if len(tape.watched) > 1 else V[tape.watched[0]]
        return outputs


# ---- groups of nodes ---------------------------------------------------------------------------

@dataclass
class _Group:
    """Nodes with the same op at the same depth: one numpy call forward and backward."""
    op: engine.Op
    out: np.ndarray          # output slots, shape (k,)
    ins: list[np.ndarray]    # per input position, the input slots, each shape (k,)
    needs: list[np.ndarray]  # per input position, which of those slots need a gradient
    layer: tuple | None = None  # for a layer of fused neurons: (where its parameters sit in P, input slots)
    places: "_Places | None" = None  # for a layer applied at several places
    depth: int = 0  # ops on the longest path from a leaf (nodes of one depth never feed each other)

    def __post_init__(self) -> None:
        self.unique = [len(np.unique(idx)) == len(idx) for idx in self.ins]
        self.out_at = _index(self.out)
        self.ins_at = [_index(idx) for idx in self.ins]
        self.forward = array_forward(self.op)
        self.needed = [bool(needs.any()) for needs in self.needs]  # input positions that need a gradient
        # (position, where its inputs' gradients go (see _add_rows), mask of the slots needing one)
        self.backward_plan = [(i, at if unique else _Scatter(self.ins[i]), None if needs.all() else needs[:, None])
                              for i, (at, unique, needs) in enumerate(zip(self.ins_at, self.unique, self.needs))
                              if needs.any()]
        # a variadic op whose inputs all need a gradient where any does: one stacked add
        self.stacked_plan = None
        positions = [i for i, _, _ in self.backward_plan]
        if self.op.variadic and len(positions) > 3 and all(mask is None for *_, mask in self.backward_plan):
            self.stacked_plan = (positions, _grads_at(np.stack([self.ins[i] for i in positions], axis=1).ravel()))
        if self.op is _CROSS_ENTROPY:  # the logits' slots node by node; where their gradients go, when all need one
            self.logits = _index(np.stack(self.ins[1:], axis=1).ravel())
            whole = self.stacked_plan is not None and self.stacked_plan[0] == list(range(1, len(self.ins)))
            self.logits_plan = self.stacked_plan[1] if whole else None  # type: ignore[index]
        if self.op is _TAKE:  # the options' slots (k, m), and the range they lie in
            self.options = np.stack(self.ins[1:], axis=1)
            self.option_span = (int(self.options.min()), int(self.options.max()) + 1)
            self.index_slots, self.index_of = np.unique(self.ins[0], return_inverse=True)  # (nodes share indices)
            offset = self.options - self.options[:, :1]  # option i of every node at its first + offset[i]?
            self.option_offset = offset[0] if (offset == offset[0]).all() else None
        # dot and logsumexp over many inputs: one block for the whole group (see _Block)
        self.block = _Block([self]) if self.op in (_DOT, _LOGSUMEXP) and len(self.ins) > 3 else None
        self.products: _Products | None = None  # set by the tape for a block that is no layer
        self.inputs_need = True  # (a layer's: some of its inputs lead back to parameters; set by the tape)

    def layer_slots(self, is_param: np.ndarray) -> tuple | None:
        """(weights (k, m), inputs (m,), biases (k,)) if the group is a layer of fused neurons:
        distinct parameter weights and biases, the same distinct inputs in every row."""
        if self.op is not _DOT or self.op.derivatives is not _DOT_RULES:
            return None
        m = (len(self.ins) - 1) // 2
        W, X, B = np.stack(self.ins[:m], axis=1), np.stack(self.ins[m:2 * m], axis=1), self.ins[-1]
        if is_param[W].all() and is_param[B].all() and (X == X[0]).all() and len(np.unique(W)) == W.size \
                and len(np.unique(X[0])) == m and self.unique[-1]:
            return W, X[0], B
        return None


def _groups(order: list[Value]) -> list[tuple[int, list[int], int]]:
    """(arity, slots, depth) of each group of same-op nodes at the same depth, in run order."""
    groups: dict[tuple, list[int]] = {}
    for i, v in enumerate(order):
        if v.inputs:
            groups.setdefault((v._depth, v.op, len(v.inputs)), []).append(i)
    return [(key[2], idx, key[0]) for key, idx in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[1][0]))]


def _group_contiguously(order, structure, root, watched):
    """Renumber slots: leaves first (the sample's numbers leading), then each group's nodes
    together, so most gathers and scatters of the replay are slices (views) rather than
    copies. Returns the groups too."""
    groups = _groups(order)
    leaves = [i for i, v in enumerate(order) if not v.inputs]
    # the sample's numbers first, in their order: a call copies them into V as one block
    xs = sorted((i for i in leaves if structure[i][0] == "x"), key=lambda i: structure[i][1])
    perm = xs + [i for i in leaves if structure[i][0] != "x"] + [i for _, idx, _ in groups for i in idx]
    new = {old: k for k, old in enumerate(perm)}
    remapped = [(structure[i][0], tuple(new[j] for j in structure[i][1])) if order[i].inputs else structure[i]
                for i in perm]
    return ([order[i] for i in perm], remapped, new[root], [new[w] for w in watched],
            [(arity, [new[i] for i in idx], depth) for arity, idx, depth in groups])


def _one_constant(slots: np.ndarray, constants: dict[int, float]) -> float | None:
    """The number in every one of `slots` if they are all `constants` of one value (and sign), else None."""
    values = np.array([constants.get(s, np.nan) for s in slots.tolist()])
    same = (values == values[0]) & (np.signbit(values) == np.signbit(values[0]))
    return float(values[0]) if same.all() else None


def _index(slots: np.ndarray):
    """A slice when the slots are evenly spaced (a view, no copy), else the index array."""
    if len(slots) <= 1:
        return slice(int(slots[0]), int(slots[0]) + 1) if len(slots) else slots
    step = int(slots[1] - slots[0])
    if step > 0 and (np.diff(slots) == step).all():
        return slice(int(slots[0]), int(slots[-1]) + 1, step)
    return slots


def _layer_block(W: np.ndarray, B: np.ndarray):
    """Where a layer's weights and biases sit in P: a slice, when each neuron's weights and
    bias are stored together in order (as recording a layer leaves them), else index arrays."""
    k, m = W.shape
    start = int(W[0, 0])
    block = start + np.arange(k * (m + 1)).reshape(k, m + 1)
    if (W == block[:, :m]).all() and (B == block[:, m]).all():
        return slice(start, start + k * (m + 1)), k, m
    return W, B


def _weights(block, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The layer's (weights, biases) in A (P or PG): views when the block is a slice."""
    if isinstance(block[0], slice):
        rows = A[block[0]].reshape(block[1], block[2] + 1)
        return rows[:, :-1], rows[:, -1]
    return A[block[0]], A[block[1]]


def _elementwise(g) -> bool:
    """A group its op's array forward and derivative rules replay as they are: no layer, block
    (dot, logsumexp, their products), gather (take), cross_entropy's logits block or fused softmax."""
    return type(g) is _Group and g.layer is None and g.places is None and g.block is None \
        and g.op is not _TAKE and g.op is not _CROSS_ENTROPY


def _forward_of(g) -> Callable:
    """The function `_forward` runs for this group (its kind is fixed when the tape is made)."""
    return _plain_forward if _elementwise(g) else _forward


def _plain_forward(g: _Group, V: np.ndarray, P: np.ndarray) -> None:
    """`_forward` of a group of elementwise nodes: the op's array forward on its inputs' rows."""
    V[g.out_at] = g.forward(*[V[idx] for idx in g.ins_at])


def _forward(g: _Group, V: np.ndarray, P: np.ndarray) -> None:
    """The group's outputs, into their rows of V."""
    if type(g) is _Softmax:
        return g.forward(V)
    if g.layer is None:
        V[g.out_at] = _group_outputs(g, V, P)
        return
    block, X = g.layer  # one matrix product for the whole layer, in place where its rows are a slice
    W, B = _weights(block, P)
    if isinstance(g.out_at, slice):
        out = V[g.out_at]
        np.matmul(W, V[X], out=out)
        out += B[:, None]
    else:
        V[g.out_at] = W @ V[X] + B[:, None]


def _matrix_work(g) -> int:
    """Multiply-adds per sample of the group's matrix product, if it is a layer (at one or at
    several places; joined groups' parts are small batched products), else 0."""
    if getattr(g, "layer", None) is not None:
        block = g.layer[0]
        return block[1] * block[2] if isinstance(block[0], slice) else block[0].size
    if getattr(g, "places", None) is not None:
        return len(g.places.w_pos) * g.places.x_slots.size
    return 0


def _group_outputs(g: _Group, V: np.ndarray, P: np.ndarray) -> np.ndarray:
    """The outputs of a group that is no layer."""
    if g.places is not None:
        return g.places.forward(V, P)
    if g.op is _TAKE and g.op.derivatives is _TAKE_RULES:
        return _take_forward(g, V)
    if g.products is not None:
        return g.products.forward(V)
    if g.block is not None:
        return g.block.forward(V)
    if g.forward is engine._cross_entropy_array:  # the logits as one block, not k rows stacked
        return engine._cross_entropy_stacked(V[g.ins_at[0]], _logits(g, V))
    return g.forward(*[V[idx] for idx in g.ins_at])


def _logits(g: _Group, V: np.ndarray) -> np.ndarray:
    """A cross_entropy group's logits as one (k, nodes, n) array: one gather and one copy (numpy
    reduces over the first axis of a contiguous array several times quicker than over a strided one)."""
    return np.ascontiguousarray(np.moveaxis(V[g.logits].reshape(len(g.out), -1, V.shape[1]), 1, 0))


class _Segments:
    """Rows summed (or maxed) per segment: a node's rows, the pairs that add into one slot.
    The rows are laid out with the segments longest first and each segment's j-th rows
    together, so segments of one length make a (length, segments, n) band, reduced over its
    first axis by one numpy call (`reduceat` costs a call per segment, more than the arithmetic)."""

    def __init__(self, segment: np.ndarray) -> None:
        lengths = np.bincount(segment)
        self.n = len(lengths)
        self.order = np.argsort(-lengths, kind="stable")  # the segments, longest first
        rank = np.empty_like(self.order)
        rank[self.order] = np.arange(self.n)
        self.unsort = None if (self.order == np.arange(self.n)).all() else rank
        by_segment = np.argsort(segment, kind="stable")
        j = np.empty_like(segment)  # each row's place among its segment's rows
        j[by_segment] = np.arange(len(segment)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        count = self.n - np.cumsum(np.bincount(lengths))[:-1]  # segments with a j-th row, for each j
        offset = np.cumsum(count) - count
        self.place = offset[j] + rank[segment]  # where each row goes
        ends = np.flatnonzero(np.r_[count[1:] != count[:-1], True]) + 1  # a band of each length
        self.bands = [(int(offset[a]), int(b - a), int(count[a])) for a, b in zip(np.r_[0, ends[:-1]], ends)]
        self.later_rows = [(int(offset[j]), int(count[j])) for j in range(ends[0], len(count))]

    def laid_out(self, rows: np.ndarray) -> np.ndarray:
        """`rows` (one entry per row, in the order given to __init__) in the segments' layout."""
        out = np.empty_like(rows)
        out[self.place] = rows
        return out

    def bands_of(self, A: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """A's bands as (length, segments, n) views, with their number of segments."""
        return [(A[s:s + r * c].reshape(r, c, A.shape[1]), c) for s, r, c in self.bands]

    def reduce(self, ufunc: np.ufunc, A: np.ndarray) -> np.ndarray:
        """ufunc over each segment's rows in order: (segments, n), longest segment first. The
        first band (every segment has its rows) is one call; the rows after it are one call each
        (a call per band would cost more: most bands of a ragged block are one row deep)."""
        s, r, c = self.bands[0]
        out = ufunc.reduce(A[:r * c].reshape(r, c, A.shape[1]), axis=0)
        for start, c in self.later_rows:
            ufunc(out[:c], A[start:start + c], out=out[:c])
        return out

    def in_order(self, sums: np.ndarray) -> np.ndarray:
        """Per-segment results in the segments' own order."""
        return sums if self.unsort is None else np.take(sums, self.unsort, axis=0)


class _Block:
    """Groups of dot or logsumexp nodes over many inputs (of one arity or several: a ragged
    block), run as a few numpy calls on rows instead of one call per input.

    Forward: one row per input (dot: b, then each w * x, summed per node (see _Segments): equal
    to the scalar engine's sum up to rounding, as a layer's matrix product is; logsumexp:
    m + log(sum(exp(x - m))) with m each node's largest x, as the scalar engine computes it).
    Backward: each (node, input) pair that needs a gradient adds partner × grad_out (dot:
    d/dw_i = x_i, d/dx_i = w_i) or exp(x_i - out) × grad_out (logsumexp) into its input's slot;
    the pairs are grouped by that slot once, so each step is a gather, a product and a sum per
    segment. Scratch arrays are kept per batch size: fresh ones cost more (page faults) than
    the arithmetic. Gathers into them say mode="clip" (the slots are valid): numpy's default
    mode buffers `out`, a copy that doubles a gather's time."""

    def __init__(self, parts: list[_Group]) -> None:
        self.is_dot = parts[0].op is _DOT
        left, right, row_node, pair_node, partner, target, b_node, b_slot = ([] for _ in range(8))
        nodes = 0
        for g in parts:
            slots, need = np.stack(g.ins, axis=1), np.stack(g.needs, axis=1)  # (k, arity)
            k, a = slots.shape
            node = np.repeat(np.arange(nodes, nodes + k), a)
            pos = np.tile(np.arange(a), k)
            if self.is_dot:
                m = (a - 1) // 2
                left.append(np.concatenate([slots[:, 2 * m:], slots[:, :m]], axis=1).ravel())
                right.append(np.concatenate([slots[:, 2 * m:], slots[:, m:2 * m]], axis=1).ravel())
                row_node.append(np.repeat(np.arange(nodes, nodes + k), m + 1))
                bias, wanted = pos == 2 * m, need.ravel()
                b_node.append(node[wanted & bias])
                b_slot.append(slots.ravel()[wanted & bias])
                wanted = wanted & ~bias
                # the partner of w_i is x_i and the other way round: input (i + m) mod 2m
                partner.append(slots[np.repeat(np.arange(k), a), (pos + m) % (2 * m)][wanted])
            else:
                left.append(slots.ravel())
                row_node.append(node)
                wanted = need.ravel()
                partner.append(slots.ravel()[wanted])
            pair_node.append(node[wanted])
            target.append(slots.ravel()[wanted])
            nodes += k
        join = np.concatenate
        self.rows = _Segments(join(row_node))  # a node's first row is its b (dot): rows[:nodes] are the b's
        self.left = self.rows.laid_out(join(left))
        self.right = self.rows.laid_out(join(right))[nodes:] if self.is_dot else np.zeros(0, dtype=int)
        b_node_all = join(b_node) if b_node else np.zeros(0, dtype=int)
        self.b_nodes = b_node_all if len(b_node_all) else None
        self.b_scatter = _Scatter(join(b_slot)) if self.b_nodes is not None else None
        targets, slot_of_pair = np.unique(join(target), return_inverse=True)
        self.pairs = _Segments(slot_of_pair.ravel()) if len(targets) else None
        if self.pairs is not None:
            self.node, self.partner = self.pairs.laid_out(join(pair_node)), self.pairs.laid_out(join(partner))
            self.out_of_pair = join([g.out for g in parts])[self.node]
            self.targets = _index(targets[self.pairs.order])
        self._scratch: dict[int, tuple] = {}

    def scratch(self, n: int) -> tuple:
        if n not in self._scratch:  # one batch size at a time
            pairs = len(self.node) if self.pairs is not None else 0
            self._scratch = {n: (np.empty((len(self.left), n)), np.empty((len(self.right), n)),
                                 np.empty((pairs, n)), np.empty((pairs, n)))}
        return self._scratch[n]

    def forward(self, V: np.ndarray) -> np.ndarray:
        L, R, _, _ = self.scratch(V.shape[1])
        np.take(V, self.left, axis=0, out=L, mode="clip")
        if not self.is_dot:  # m + log(sum(exp(x - m))) with m the largest x, as the scalar engine
            M = self.rows.reduce(np.maximum, L)
            for band, c in self.rows.bands_of(L):
                band -= M[:c]
            np.exp(L, out=L)
            return self.rows.in_order(M + np.log(self.rows.reduce(np.add, L)))
        products = L[self.rows.n:]  # (the b's rows come first)
        np.multiply(products, np.take(V, self.right, axis=0, out=R, mode="clip"), out=products)
        return self.rows.in_order(self.rows.reduce(np.add, L))

    def backward(self, V: np.ndarray, G: np.ndarray, grad_out: np.ndarray) -> None:
        if self.b_scatter is not None:
            self.b_scatter.add(G, grad_out[self.b_nodes])
        if self.pairs is None:
            return
        _, _, A, B = self.scratch(V.shape[1])
        np.take(V, self.partner, axis=0, out=A, mode="clip")
        if not self.is_dot:  # exp(x_i - out)
            np.take(V, self.out_of_pair, axis=0, out=B, mode="clip")
            np.subtract(A, B, out=A)
            np.exp(A, out=A)
        np.take(grad_out, self.node, axis=0, out=B, mode="clip")
        np.multiply(A, B, out=A)
        G[self.targets] += self.pairs.reduce(np.add, A)


class _Products:
    """A group of dots whose w's and x's are a few vectors met in many pairs (attention's
    scores, each query with each earlier key of its head), as matrix products: the vectors
    fall into blocks (heads) that meet only each other, and out = Ws @ Xs.T for each block,
    of which the pairs that are nodes are read, plus b.

    Forward: Ws (blocks, rows, m) and Xs.T (blocks, m, cols) gathered, one batched matmul
    with the batch leading (contiguous operands: numpy's matmul is 2x slower on a transposed
    one). Backward, dot's rules (d/dw = x, d/dx = w) summed over the pairs as matrix products:
    with g the nodes' gradients in a (blocks, rows, cols) array (0 where no node),
    dWs = g @ Xs and dXs = g.T @ Ws; b's gradient is the node's."""

    def __init__(self, w: np.ndarray, x: np.ndarray, blocks: int, at: np.ndarray, b: np.ndarray, b_needs: np.ndarray):
        self.w, self.x, self.blocks, self.m, self.at, self.b = w.ravel(), x.ravel(), blocks, w.shape[1], at, _index(b)
        self.b_value: float | None = None  # the b's, when they are one constant (see _Tape)
        self.x_by_entry = x.reshape(blocks, -1, self.m).transpose(0, 2, 1).ravel()  # Xs.T's order: matmul's own
        self.w_grads, self.x_grads = _grads_at(self.w), _grads_at(self.x)
        self.b_grads = _b_grads(b, b_needs)
        self._scratch: dict[int, np.ndarray] = {}

    @classmethod
    def of(cls, g: "_Group") -> "_Products | None":
        m = (len(g.ins) - 1) // 2
        if not all(needs.all() for needs in g.needs[:2 * m]):
            return None
        W, X = np.stack(g.ins[:m], axis=1), np.stack(g.ins[m:2 * m], axis=1)
        ws, w_of = np.unique(W, axis=0, return_inverse=True)
        xs, x_of = np.unique(X, axis=0, return_inverse=True)
        if len(g.out) < 2 * (len(ws) + len(xs)):
            return None  # vectors met in few pairs: the block gathers less
        w_of, x_of = w_of.ravel(), x_of.ravel()
        split = _blocks(w_of, x_of, len(ws), len(xs))
        if split is None or split[0] * split[1] * split[2] > 4 * len(g.out):
            return None  # blocks of several shapes, or mostly pairs that are no node
        blocks, r, c, w_order, x_order, w_place, x_place = split
        at = w_place[w_of] * c + x_place[x_of] % c  # each node's place in the (blocks, rows, cols) products
        if len(np.unique(at)) < len(at):
            return None  # a pair that is several nodes (a dot made twice): one place holds one gradient
        return cls(ws[w_order], xs[x_order], blocks, at, g.ins[-1], g.needs[-1])

    def forward(self, V: np.ndarray) -> np.ndarray:
        n = V.shape[1]
        Ws = _batch_leading(V, self.w, (self.blocks, -1, self.m))
        XsT = _batch_leading(V, self.x_by_entry, (self.blocks, self.m, -1))
        products = np.matmul(Ws, XsT).reshape(n, -1)
        return np.take(products, self.at, axis=1).T + (V[self.b] if self.b_value is None else self.b_value)

    def backward(self, V: np.ndarray, G: np.ndarray, grad_out: np.ndarray) -> None:
        n = V.shape[1]
        Ws = _batch_leading(V, self.w, (self.blocks, -1, self.m))
        Xs = _batch_leading(V, self.x, (self.blocks, -1, self.m))
        if n not in self._scratch:  # zeros where no node is: only the nodes' places are written
            self._scratch = {n: np.zeros((n, Ws.shape[1] * Ws.shape[2] * Xs.shape[2]))}
        g = self._scratch[n]
        g[:, self.at] = grad_out.T
        g = g.reshape(n, self.blocks, Ws.shape[2], Xs.shape[2])
        _add_rows(G, self.w_grads, (g @ Xs).reshape(n, -1).T)
        _add_rows(G, self.x_grads, (g.transpose(0, 1, 3, 2) @ Ws).reshape(n, -1).T)
        if self.b_grads is not None:
            at, needs = self.b_grads
            _add_rows(G, at, grad_out if needs is None else grad_out[needs])


def _blocks(a: np.ndarray, b: np.ndarray, na: int, nb: int) -> tuple | None:
    """Split na things A and nb things B met in pairs (a[k], b[k]) into blocks whose things
    meet only each other's: (blocks, A's and B's per block, A's and B's in block order,
    each A's and B's place in that order), or None unless every block has as many of each."""
    root = list(range(na + nb))  # union-find

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i
    for i, j in zip(a.tolist(), (b + na).tolist()):
        root[find(i)] = find(j)
    _, label = np.unique([find(i) for i in range(na + nb)], return_inverse=True)
    a_block, b_block = label[:na], label[na:]
    blocks = int(label.max()) + 1
    ra, rb = np.bincount(a_block, minlength=blocks), np.bincount(b_block, minlength=blocks)
    if (ra != ra[0]).any() or (rb != rb[0]).any():
        return None
    a_order, b_order = np.argsort(a_block, kind="stable"), np.argsort(b_block, kind="stable")
    a_place, b_place = np.empty_like(a_order), np.empty_like(b_order)
    a_place[a_order], b_place[b_order] = np.arange(na), np.arange(nb)
    return blocks, int(ra[0]), int(rb[0]), a_order, b_order, a_place, b_place


def _b_grads(b: np.ndarray, needs: np.ndarray) -> tuple | None:
    """(where the gradients of the b's that need one go, which nodes' they are or None for all), or None."""
    if not needs.any():
        return None
    return (_grads_at(b), None) if needs.all() else (_grads_at(b[needs]), needs)


def _batch_leading(V: np.ndarray, slots: np.ndarray, shape: tuple) -> np.ndarray:
    """V's rows at `slots` as a contiguous (n, *shape) array, the samples leading (for matmul)."""
    return np.ascontiguousarray(V[slots].T).reshape(V.shape[1], *shape)


def _add_rows(G: np.ndarray, at: Any, rows: np.ndarray) -> None:
    """G[at] += rows, `at` a slice, an index array of distinct slots, or a _Scatter."""
    if isinstance(at, _Scatter):
        at.add(G, rows)
    else:
        G[at] += rows


def _grads_at(slots: np.ndarray) -> Any:
    """Where rows of gradients for `slots` are added: see `_add_rows`."""
    return _index(slots) if len(np.unique(slots)) == len(slots) else _Scatter(slots)


class _Weighted:
    """Groups of dots that are weighted sums of a few vectors (attention's outputs: each
    position's weights over the value vectors of its head's positions so far), as matrix
    products: node c of row i is sum_u A[i, u] B[u, c], where row i is the nodes sharing one
    weight vector and B's rows are the vectors their x's make; A is 0 where a row does not
    weigh a vector. Rows and vectors fall into blocks (heads) that meet only each other.

    Forward: A (blocks, rows, vectors) filled from the weights, B gathered, one batched
    matmul, plus b. Backward, dot's rules (d/dw = x, d/dx = w) summed over the pairs as
    matrix products: dA = g @ B.T at the weights' places, dB = A.T @ g."""

    def __init__(self, shape: tuple, pair_w, pair_at, vectors, node_at, b, b_needs) -> None:
        self.shape, self.pair_at, self.node_at = shape, pair_at, node_at  # (blocks, rows, vectors, C)
        self.pair_w, self.vectors_at, self.b = _index(pair_w), _index(vectors.ravel()), _index(b)
        self.b_value: float | None = None  # the b's, when they are one constant (see _Tape)
        self.w_grads, self.x_grads = _grads_at(pair_w), _grads_at(vectors.ravel())
        self.vectors_by_entry = vectors.reshape(shape[0], shape[2], shape[3]).transpose(0, 2, 1).ravel()  # B.T's order
        self.b_grads = _b_grads(b, b_needs)
        self._scratch: dict[int, np.ndarray] = {}

    @classmethod
    def of(cls, parts: list) -> "_Weighted | None":
        if any(not all(needs.all() for needs in g.needs[:-1]) for g in parts):
            return None
        row_of: dict[tuple, int] = {}
        nodes = []  # (row, weights, xs) per node, in the group's order
        for g in parts:
            m = (len(g.ins) - 1) // 2
            W, X = np.stack(g.ins[:m], axis=1), np.stack(g.ins[m:2 * m], axis=1)
            for w, x in zip(W.tolist(), X.tolist()):
                nodes.append((row_of.setdefault(tuple(w), len(row_of)), w, x))
        width = np.bincount([row for row, _, _ in nodes])
        if (width != width[0]).any() or width[0] < 2:
            return None
        C = int(width[0])
        members: list[list] = [[] for _ in row_of]
        node_c = []  # each node's place among its row's nodes
        for k, (row, _, _) in enumerate(nodes):
            node_c.append(len(members[row]))
            members[row].append(k)
        vector_of: dict[tuple, int] = {}
        pair_row, pair_vector, pair_w = [], [], []
        for row, ks in enumerate(members):
            w = nodes[ks[0]][1]
            for u in range(len(w)):
                vector = tuple(nodes[k][2][u] for k in ks)
                pair_row.append(row)
                pair_vector.append(vector_of.setdefault(vector, len(vector_of)))
                pair_w.append(w[u])
        pr, pv = np.array(pair_row), np.array(pair_vector)
        if len(np.unique(pr * len(vector_of) + pv)) < len(pr):
            return None  # a row weighs one vector twice
        split = _blocks(pr, pv, len(row_of), len(vector_of))
        if split is None or split[0] * split[1] * split[2] > 4 * len(pr) or len(nodes) < 2 * len(vector_of):
            return None
        blocks, r, v, row_order, vector_order, row_place, vector_place = split
        vectors = np.array(list(vector_of))[vector_order]  # (blocks * v, C) slots
        pair_at = row_place[pr] * v + vector_place[pv] % v  # in A (blocks, r, v)
        node_at = np.array([row_place[row] * C + c for (row, _, _), c in zip(nodes, node_c)])  # in (blocks, r, C)
        b = np.concatenate([g.ins[-1] for g in parts])
        needs_b = np.concatenate([g.needs[-1] for g in parts])
        return cls((blocks, r, v, C), np.array(pair_w), pair_at, vectors, node_at, b, needs_b)

    def _matrices(self, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A (n, blocks, rows, vectors), B (n, blocks, vectors, C)."""
        n = V.shape[1]
        blocks, r, v, C = self.shape
        if n not in self._scratch:  # zeros where a row weighs no vector: only the weights' places are written
            self._scratch = {n: np.zeros((n, blocks * r * v))}
        A = self._scratch[n]
        A[:, self.pair_at] = V[self.pair_w].T
        B = _batch_leading(V, self.vectors_at, (blocks, v, C))
        return A.reshape(n, blocks, r, v), B

    def forward(self, V: np.ndarray) -> np.ndarray:
        A, B = self._matrices(V)
        out = np.take((A @ B).reshape(V.shape[1], -1), self.node_at, axis=1).T
        return out + (V[self.b] if self.b_value is None else self.b_value)

    def backward(self, V: np.ndarray, G: np.ndarray, grad_out: np.ndarray) -> None:
        A, B = self._matrices(V)
        n = V.shape[1]
        g = np.empty((n, A.shape[1] * A.shape[2] * B.shape[3]))
        g[:, self.node_at] = grad_out.T
        g = g.reshape(n, A.shape[1], A.shape[2], B.shape[3])
        BT = _batch_leading(V, self.vectors_by_entry, (A.shape[1], B.shape[3], B.shape[2]))
        _add_rows(G, self.w_grads, np.take((g @ BT).reshape(n, -1), self.pair_at, axis=1).T)
        _add_rows(G, self.x_grads, (A.transpose(0, 1, 3, 2) @ g).reshape(n, -1).T)
        if self.b_grads is not None:
            at, needs = self.b_grads
            _add_rows(G, at, grad_out if needs is None else grad_out[needs])


class _Joined:
    """Block groups of one op at one depth (dot or logsumexp of different arities, such as
    attention at each position) run as one ragged block; `parts` are the groups joined."""

    def __init__(self, parts: list[_Group]) -> None:
        self.parts, self.op = parts, parts[0].op
        self.out = np.concatenate([g.out for g in parts])
        self.out_at = _index(self.out)
        self.layer = self.places = None
        self.block = _Block(parts)
        self.products = _Weighted.of(parts) if self.op is _DOT else None


def _join_blocks(groups: list) -> list:
    """Runs of adjacent block groups of the same op and depth joined into one, with the groups
    of that op over a few inputs beside them (attention's first positions)."""
    def joinable(g) -> bool:
        return g.op in (_DOT, _LOGSUMEXP) and g.layer is None and g.places is None
    runs: list[list] = []
    for g in groups:
        last = runs[-1][-1] if runs else None
        if last is not None and joinable(g) and joinable(last) and last.op is g.op and last.depth == g.depth:
            runs[-1].append(g)
        else:
            runs.append([g])
    joined: list = []
    for run in runs:
        if len(run) > 1 and any(g.block is not None for g in run):
            joined.append(_Joined(run))
        else:
            joined.extend(run)
    return joined


class _Softmax:
    """The exact softmax, w = exp(d - logsumexp(d)) for d = z - logsumexp(z) (see
    `engine.softmax_of`), of many rows z of any lengths (attention at each position and head):
    its five groups (logsumexp, -, logsumexp, -, exp) run as one block on the rows' entries
    laid end to end; rows are summed (and maxed) in a (length, rows, n) array padded with 0
    (-inf), by one reduction over its first axis (several times quicker than `reduceat`).

    Forward: lse1 = m + log(sum(exp(z - m))) with m the row's largest z, as logsumexp's other
    replays; d = z - lse1; lse2 likewise of d; e = d - lse2; w = exp(e); every node's row of V
    is written. Backward, the five groups' rules chained (logsumexp's d/dx_k is exp(x_k - out),
    which is w for lse2 and exp(d) for lse1): g_e = g_w w; g_d = g_e - w sum(g_e);
    g_z = g_d - exp(d) sum(g_d). Only the rows' w are read by other nodes (checked when the
    block is made), so no other gradient reaches lse1, d, lse2 or e. A replaced rule (mutation
    testing) or the careful pass runs the groups one by one."""

    def __init__(self, groups: list, z: list[list[int]], nodes: list[list[list[int]]]) -> None:
        self.stages = groups  # the groups replaced: lse1, d, lse2, e, w
        self.parts = [part for g in groups for part in getattr(g, "parts", [g])]
        self.op, self.layer, self.places, self.block = _LOGSUMEXP, None, None, None
        self.out = np.concatenate([g.out for g in groups])
        self.out_at = _index(self.out)
        lengths = np.array([len(row) for row in z])
        row = np.repeat(np.arange(len(z)), lengths)  # each entry's row, and its place j in it
        j = np.arange(len(row)) - (np.cumsum(lengths) - lengths)[row]
        z_slots, lse1, d, lse2, e, w = (np.concatenate([np.asarray(r, dtype=int) for r in rows])
                                        for rows in (z, *nodes))
        # the entries in the order of the w's slots, where (as softmax_of makes them) the e's
        # and w's rows are slices (views, no copies)
        order = np.argsort(w, kind="stable")
        self.row, z_slots, d, e, w = row[order], z_slots[order], d[order], e[order], w[order]
        self.padded_at = j[order] * len(z) + self.row  # entry j of row r at (j, r)
        self.padded_shape = (int(lengths.max()), len(z))
        self._scratch: dict[int, dict[float, np.ndarray]] = {}
        self.z_at, self.lse1_at, self.d_at, self.lse2_at, self.e_at, self.w_at = map(
            _index, (z_slots, lse1, d, lse2, e, w))
        self.z_grads_at = _grads_at(z_slots)  # (a z may be in several rows)

    def _reduce(self, X: np.ndarray, fill: float) -> np.ndarray:
        """Each row's sum (fill 0) or largest entry (fill -inf) of X (one row per entry)."""
        n = X.shape[1]
        if n not in self._scratch:  # one batch size at a time: fresh arrays cost more (page faults)
            self._scratch = {n: {f: np.full((*self.padded_shape, n), f) for f in (0.0, -np.inf)}}
        padded = self._scratch[n][fill]
        padded.reshape(-1, n)[self.padded_at] = X
        return padded.sum(axis=0) if fill == 0.0 else padded.max(axis=0)

    def _logsumexp(self, X: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Each row's logsumexp, as logsumexp's other replays compute it; m is the row's largest entry."""
        t = X - m[self.row]
        np.exp(t, out=t)
        return m + np.log(self._reduce(t, 0.0))

    def forward(self, V: np.ndarray) -> None:
        d = V[self.z_at]
        m = self._reduce(d, -np.inf)
        lse1 = self._logsumexp(d, m)
        d = d - lse1[self.row]
        lse2 = self._logsumexp(d, m - lse1)  # the largest d: z - lse1 rounds in the order of z
        e = d - lse2[self.row]
        V[self.lse1_at], V[self.d_at], V[self.lse2_at], V[self.e_at] = lse1, d, lse2, e
        V[self.w_at] = np.exp(e)

    def backward(self, V: np.ndarray, G: np.ndarray, careful: bool) -> None:
        if careful or not (_LOGSUMEXP.derivatives is _LOGSUMEXP_RULES and _SUB.derivatives is _SUB_RULES
                           and _EXP.derivatives is _EXP_RULES):
            for g in reversed(self.stages):
                _backward(g, V, G, G[g.out_at], careful)
            return
        w = V[self.w_at]
        g = G[self.w_at] * w
        g -= w * self._reduce(g, 0.0)[self.row]
        p = np.exp(V[self.d_at])
        p *= self._reduce(g, 0.0)[self.row]
        g -= p
        _add_rows(G, self.z_grads_at, g)


def _fuse_softmaxes(groups: list, structure: list, needs: list, root: int) -> list:
    """The groups with each run of five that computes softmaxes exactly (see `_Softmax`) made
    one block: every node of the five groups is one softmax's, and no other node reads any but
    its w (so their gradients come from w alone); every input needs a gradient."""
    group_of: dict[int, int] = {}
    for k, g in enumerate(groups):
        group_of.update(dict.fromkeys(g.out.tolist(), k))
    uses = np.bincount([j for s in structure if isinstance(s[0], engine.Op) for j in s[1]], minlength=len(structure))
    node_of: dict[tuple, int] = {}  # (op, inputs) -> the node, for the ops of the pattern
    for i, s in enumerate(structure):
        if s[0] is _SUB or s[0] is _EXP or s[0] is _LOGSUMEXP:
            node_of[(s[0], s[1])] = i
    fused: dict[int, _Softmax] = {}
    gone: set[int] = set()
    for k, A in enumerate(groups):
        if A.op is not _LOGSUMEXP or type(A) not in (_Group, _Joined) or A.layer is not None or k in gone:
            continue
        z = [list(structure[a][1]) for a in A.out.tolist()]
        nodes: list[list] = [[], [], [], [], []]
        for a, zs in zip(A.out.tolist(), z):
            d = [node_of.get((_SUB, (x, a))) for x in zs]
            b = node_of.get((_LOGSUMEXP, tuple(d))) if None not in d else None
            e = [node_of.get((_SUB, (x, b))) for x in d] if b is not None else [None]
            w = [node_of.get((_EXP, (x,))) for x in e] if None not in e else [None]
            if None in w or len(set(d)) < len(d) or uses[a] != len(zs) or uses[b] != len(zs) \
                    or any(uses[x] != 2 for x in d) or any(uses[x] != 1 for x in e) or root in (a, b, *d, *e):
                break  # not a softmax, or one whose other nodes are read
            for i, part in enumerate(([a], d, [b], e, w)):
                nodes[i].append(part)
        else:
            stages = [{group_of[x] for row in rows for x in row} for rows in nodes[1:]]
            if all(len(s) == 1 for s in stages) and all(needs[x] for rows in (z, *nodes) for row in rows for x in row):
                members = [k] + [s.pop() for s in stages]
                if all(len(groups[m].out) == sum(map(len, rows)) for m, rows in zip(members, nodes)) \
                        and len(set(members)) == 5 and not gone.intersection(members):
                    fused[k] = _Softmax([groups[m] for m in members], z, nodes)
                    gone.update(members)
    return [fused[k] if k in fused else g for k, g in enumerate(groups) if k in fused or k not in gone]


class _Places:
    """A group of fused neurons that is one layer (parameter weight rows) applied to the inputs
    of several places, as a Linear at every position of a sequence: one batched matrix product
    W (R, m) @ X (places, m, n) instead of one dot per node."""

    def __init__(self, w_pos, x_slots, p_idx, r_idx, b_pos, b_slots) -> None:
        self.w_pos, self.x_slots, self.p_idx, self.r_idx = w_pos, x_slots, p_idx, r_idx
        self.b_pos, self.b_slots = b_pos, b_slots
        self.b_value: float | None = None  # the b's, when they are one constant (see _Tape)
        R = len(w_pos)
        # every (place, row) a node: the products are the nodes, in their order or permuted by `order`
        at = p_idx * R + r_idx
        self.grid = len(p_idx) == len(x_slots) * R
        self.order = None if not self.grid or (at == np.arange(len(at))).all() else at
        self.w_unique = len(np.unique(w_pos)) == w_pos.size
        self.x_at = _index(x_slots.ravel())  # a slice where the inputs are rows in order (a view, no gather)
        self.x_grads = _grads_at(x_slots.ravel())
        self.b_unique = b_pos is None or len(np.unique(b_pos)) == len(b_pos)

    @classmethod
    def of(cls, g: "_Group", is_param: np.ndarray, position: dict) -> "_Places | None":
        if g.op is not _DOT or g.op.derivatives is not _DOT_RULES or len(g.out) < 2:
            return None
        m = (len(g.ins) - 1) // 2
        W, X, B = np.stack(g.ins[:m], axis=1), np.stack(g.ins[m:2 * m], axis=1), g.ins[-1]
        if not is_param[W].all():
            return None
        rows, r_idx = np.unique(W, axis=0, return_inverse=True)
        places, p_idx = np.unique(X, axis=0, return_inverse=True)
        pairs = p_idx * len(rows) + r_idx
        if len(np.unique(pairs)) != len(pairs) or 2 * len(pairs) < len(rows) * len(places):
            return None  # repeated or too few pairs: the batched product would waste work
        w_pos = np.vectorize(position.__getitem__, otypes=[int])(rows)
        b_pos = np.array([position[b] for b in B.tolist()], dtype=int) if is_param[B].all() else None
        return cls(w_pos, places, p_idx.ravel(), r_idx.ravel(), b_pos, B)

    def _inputs(self, V: np.ndarray) -> np.ndarray:
        """The inputs of each place, (places, m, n)."""
        return V[self.x_at].reshape(*self.x_slots.shape, V.shape[1])

    def forward(self, V: np.ndarray, P: np.ndarray) -> np.ndarray:
        Y = P[self.w_pos] @ self._inputs(V)  # (places, R, n)
        if not self.grid:
            out = Y[self.p_idx, self.r_idx]
        else:
            out = Y.reshape(-1, V.shape[1])
            out = out if self.order is None else np.take(out, self.order, axis=0)
        if self.b_pos is not None:
            return out + P[self.b_pos][:, None]
        return out + (V[self.b_slots] if self.b_value is None else self.b_value)

    def backward(self, V, G, P, PG, grad_out, needs) -> None:
        n = V.shape[1]
        if self.grid and self.order is None:
            gY = grad_out.reshape(len(self.x_slots), len(self.w_pos), n)
        elif self.grid:
            gY = np.empty((len(self.x_slots), len(self.w_pos), n))
            gY.reshape(-1, n)[self.order] = grad_out
        else:
            gY = np.zeros((len(self.x_slots), len(self.w_pos), n))
            gY[self.p_idx, self.r_idx] = grad_out
        Xs = self._inputs(V)
        dW = np.tensordot(gY, Xs, axes=([0, 2], [0, 2]))  # (R, m)
        if self.w_unique:
            PG[self.w_pos] += dW
        else:
            np.add.at(PG, self.w_pos, dW)
        m = self.x_slots.shape[1]
        if needs[m].any() or any(needs[m + j].any() for j in range(1, m)):  # the inputs lead back to parameters
            dX = np.swapaxes(P[self.w_pos], 0, 1) @ gY  # (places, m, n)
            _add_rows(G, self.x_grads, dX.reshape(-1, n))
        if self.b_pos is not None:
            if self.b_unique:
                PG[self.b_pos] += grad_out.sum(axis=1)
            else:
                np.add.at(PG, self.b_pos, grad_out.sum(axis=1))
        elif needs[-1].any():
            np.add.at(G, self.b_slots, grad_out)


class _Scatter:
    """G[slots] += rows, where a slot may repeat: the rows sorted by slot once, then summed per
    slot with one reduceat (much faster than np.add.at)."""

    def __init__(self, slots: np.ndarray) -> None:
        self.order = np.argsort(slots, kind="stable")
        ordered = slots[self.order]
        self.starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        self.targets = ordered[self.starts]

    def add(self, G: np.ndarray, rows: np.ndarray) -> None:
        G[self.targets] += np.add.reduceat(rows[self.order], self.starts, axis=0)


def _take_slots(g: _Group, V: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """For each node and sample, the slot take picks (k, n), and where the index is valid
    (None: everywhere). Indices are checked once for the nodes that share them."""
    index = V[g.index_slots]
    valid = engine._valid_index(index, len(g.ins) - 1)
    every = bool(valid.all())
    picked = (index if every else np.where(valid, index, 0)).astype(int)
    if g.option_offset is not None:  # options at the same offsets from each node's first (a table's column)
        slots = g.options[:, :1] + g.option_offset[picked][g.index_of.ravel()]
    else:
        slots = g.options[np.arange(len(g.out))[:, None], picked[g.index_of.ravel()]]
    return slots, None if every else valid[g.index_of.ravel()]


def _take_forward(g: _Group, V: np.ndarray) -> np.ndarray:
    """One gather: each node's option at its index, NaN where the index is not one (reported
    if that sample's loss needs it)."""
    slots, valid = _take_slots(g, V)
    out = V[slots, np.arange(V.shape[1])]
    if valid is not None:
        out[~valid] = np.nan
    return out


def _take_backward(g: _Group, V: np.ndarray, G: np.ndarray, grad_out: np.ndarray) -> None:
    """The gradient goes to the picked option only (none to the index)."""
    slots, valid = _take_slots(g, V)
    n = V.shape[1]
    lo, hi = g.option_span
    cols = np.broadcast_to(np.arange(n), slots.shape)
    if valid is not None:
        slots, cols, grad_out = slots[valid], cols[valid], grad_out[valid]
    if (hi - lo) * n <= 4 * slots.size + 4096:  # options in a narrow range (an embedding table)
        flat = (slots - lo) * n + cols  # where each (slot, sample) falls in G[lo:hi]
        sums = np.bincount(flat.ravel(), weights=grad_out.ravel(), minlength=(hi - lo) * n)
        G[lo:hi] += sums.reshape(hi - lo, n)
        return
    np.add.at(G, (slots, cols), grad_out)


class _BadDerivative(Exception):
    """A non-finite local derivative where a gradient flows (node `row` of `group`, sample `col`)."""

    def __init__(self, group: _Group, input: int, row: int, col: int) -> None:
        super().__init__(group.op.name)
        self.group, self.input, self.row, self.col = group, input, row, col


def _backward_of(g) -> Callable:
    """The function the tape's backward runs for this group, all taking (g, V, G, P, PG, grad_out,
    careful): chosen once, as a group's kind is fixed when the tape is made (a rule may be replaced
    later, so the groups whose path depends on their op's rules go through `_backward`)."""
    if g.layer is not None:
        return _layer_backward
    if g.places is not None:
        return _places_backward
    return _plain_backward if _elementwise(g) else _any_backward


def _places_backward(g: _Group, V, G, P, PG, grad_out, careful) -> None:
    g.places.backward(V, G, P, PG, grad_out, g.needs)  # type: ignore[union-attr]


def _any_backward(g: _Group, V, G, P, PG, grad_out, careful) -> None:
    _backward(g, V, G, grad_out, careful)


def _plain_backward(g: _Group, V, G, P, PG, grad_out, careful) -> None:
    """`_backward` of a group that is no block, take, cross_entropy or softmax."""
    _local_backward(g, V, G, grad_out, careful)


def _backward(g: _Group, V: np.ndarray, G: np.ndarray, grad_out: np.ndarray, careful: bool = False) -> None:
    """Add local derivative × grad_out into G for each input position that needs a gradient;
    like the scalar engine, no derivative is taken for the others. `careful` (run only when
    the quick pass gave a non-finite gradient) also does what the scalar engine does: a node
    whose gradient is 0 passes nothing back (no 0 × inf), and a non-finite derivative where a
    gradient flows raises."""
    if g.op is _TAKE and g.op.derivatives is _TAKE_RULES:
        return _take_backward(g, V, G, grad_out)
    if type(g) is _Softmax:
        return g.backward(V, G, careful)
    if g.block is not None and g.op.derivatives is (_DOT_RULES if g.op is _DOT else _LOGSUMEXP_RULES):
        if g.products is not None:
            return g.products.backward(V, G, grad_out)
        return g.block.backward(V, G, grad_out)
    if isinstance(g, _Joined):  # a replaced rule (mutation testing): group by group
        for part in g.parts:
            _backward(part, V, G, G[part.out_at], careful)
        return None
    if g.op.derivatives is _CROSS_ENTROPY_RULES and g.op is _CROSS_ENTROPY and g.logits_plan is not None \
            and not careful:
        p = engine._cross_entropy_grads_stacked(V[g.ins_at[0]], _logits(g, V))  # (k, nodes, n)
        return _add_stacked(G, g.logits_plan, np.moveaxis(p, 0, 1), grad_out)
    _local_backward(g, V, G, grad_out, careful)


def _local_backward(g: _Group, V: np.ndarray, G: np.ndarray, grad_out: np.ndarray, careful: bool) -> None:
    """`_backward` by the op's derivative rules, input position by position."""
    ins = [V[idx] for idx in g.ins_at]
    out = V[g.out_at]
    local = _array_local_grads(g.op, ins, out, g.needed)
    if g.stacked_plan is not None and not careful:  # a variadic op's derivatives, added at once
        positions, at = g.stacked_plan
        rows = [local[i] for i in positions]
        if all(type(r) is np.ndarray and r.shape == grad_out.shape for r in rows):
            return _add_stacked(G, at, np.stack(rows, axis=1), grad_out)
    for i, at, mask in g.backward_plan:
        d = local[i]  # (a sum's 1.0: grad_out itself, which 1.0 × grad_out is)
        contribution = grad_out if type(d) is float and d == 1.0 else d * grad_out
        if careful:
            flows = grad_out != 0 if mask is None else (grad_out != 0) & mask
            bad = flows & ~np.isfinite(local[i])
            if bad.any():
                raise _BadDerivative(g, i, *map(int, np.argwhere(bad)[0]))
            contribution = np.where(flows, contribution, 0.0)
        elif mask is not None:
            contribution = np.where(mask, contribution, 0.0)
        _add_rows(G, at, contribution)  # (an input used by several nodes of the group: each use added)


def _add_stacked(G: np.ndarray, at: Any, local: np.ndarray, grad_out: np.ndarray) -> None:
    """Add local derivatives (nodes, inputs, n) times grad_out (nodes, n) into the inputs' slots,
    listed node by node in `at`: a slice or index array of distinct slots, or a _Scatter where
    they repeat."""
    local *= grad_out[:, None]
    _add_rows(G, at, local.reshape(-1, grad_out.shape[1]))


def _layer_backward(g: _Group, V: np.ndarray, G: np.ndarray, P: np.ndarray, PG: np.ndarray,
                    grad_out: np.ndarray, careful: bool = False) -> None:
    """A layer's backward as matrix products; its weights' and biases' gradients are summed
    over the batch straight into PG."""
    block, X = g.layer  # type: ignore[misc]
    W, _ = _weights(block, P)
    if g.inputs_need:  # some of the layer's inputs lead back to parameters (not only the first)
        G[X] += W.T @ grad_out
    if isinstance(block[0], slice):
        dW, dB = _weights(block, PG)
        dW += grad_out @ V[X].T
        dB += grad_out.sum(axis=1)
    else:
        PG[block[0]] += grad_out @ V[X].T
        PG[block[1]] += grad_out.sum(axis=1)


def _array_local_grads(op: engine.Op, ins: list, out: np.ndarray, needed: list[bool]) -> tuple:
    """The op's derivative rules run on arrays (element by element if a rule branches; each
    rule on its own, so one that fails for an element, NaN there, leaves the others' numbers)."""
    try:
        return op.local_grads(ins, out, needed)
    except (TypeError, ValueError, ArithmeticError):
        def rule(i: int) -> np.ndarray:
            only = [j == i for j in range(len(needed))]

            def one(*a):
                try:
                    return float(op.local_grads(a[:-1], a[-1], only)[i])
                except (ArithmeticError, ValueError):
                    return float("nan")  # reported only where a gradient flows through it
            return np.vectorize(one, otypes=[float])(*ins, out)
        return tuple(rule(i) if need else 0.0 for i, need in enumerate(needed))


def compile(fn: Callable, *, max_tapes: int = 16) -> Compiled:
    """Record `fn` (one sample's loss) and replay it over whole batches with numpy.

    `compiled(samples)` calls `fn(sample)` for a list of samples of any kind (rows of numbers,
    token sequences of different lengths: numbers in lists, tuples, dicts or arrays);
    `compiled(X, y)` calls `fn(x, y)` with a row of X and its target. Either returns a result
    whose `.data` is the mean loss and whose `.backward()` adds the mean's gradient into each
    parameter, as the scalar loop would.

    While `fn` records, the sample's numbers are Values. Samples of another shape get their
    own recording; so do samples for which a decision `fn` makes on a Value (a comparison,
    float(), .data, an index) comes out differently. At most `max_tapes` recordings are kept;
    a batch that needs more is refused with the decision that splits it. Leaf Values that `fn`
    uses and did not make (parameters, frozen weights) are read fresh on every call, so
    training loops work; a result refuses `backward()` once a parameter it used was set. The
    Values themselves are fixed at the recording: after replacing one (a layer made again, a
    parameter list that grows), compile fn again.
    Python numbers fn reads from outside (a closure's float, an annealed coefficient) are
    baked in when it records: hold them in a `Value(x, requires_grad=False)` instead, whose
    `.data` compile reads again at every call.
    """
    if not callable(fn):
        raise TypeError(f"compile: expected a function fn(sample) or fn(x, y), got {type(fn).__name__}")
    return Compiled(fn, max_tapes=max_tapes)


def _check_arity(fn: Callable, args: tuple) -> None:
    """Refuse a call form fn cannot take (fn(x, y) called with a list of samples, or the reverse)
    before fn runs, rather than with Python's error from inside the recording."""
    if engine._cannot_take(fn, len(args)) is not None:
        name = getattr(fn, "__name__", type(fn).__name__)
        raise TypeError(f"compiled: {name} cannot be called as fn({'x, y' if len(args) == 2 else 'sample'}): "
                        f"call the compiled function with X and y, compiled(X, y), for fn(x, y), or with a list "
                        f"of samples, compiled(samples), for fn(sample)")


def compile_model_loss(model, loss_fn: Callable) -> Compiled:
    """`compile` of `loss_fn([model(x)], [y])` that also returns the model's outputs."""
    captured: list = []

    def fn(x, y):
        captured.clear()
        out = model(x)
        captured.extend(out if isinstance(out, list) else [out])
        return loss_fn([out], [y])
    return Compiled(fn, watch=lambda: list(captured))
