"""Batched replay: record one sample's scalar graph once, replay it over a batch with numpy.

`compile(fn)` records `fn(x, y)` (one sample's loss) into a flat tape of slots. Replay keeps
one row of a (slots, batch) array per node, runs every group of same-op nodes at the same
depth as one numpy call (a layer's fused neurons become one matrix product), and runs the
op table's own derivative rules on arrays, so no op's derivative is written twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from microgradnn import engine
from microgradnn.engine import Value, topological_order

__all__ = ["compile", "Compiled", "BatchResult"]

# The fused neuron's row and its built-in rules: a group of such nodes that forms a layer
# replays as matrix products, which are those rules written for a whole layer.
_DOT = engine.get_op("dot")
_DOT_RULES = _DOT.derivatives


def array_forward(op: engine.Op) -> Callable:
    """The op's forward on arrays: its row's `array_forward`, or its float forward element by element."""
    return op.array_forward or np.vectorize(op.forward, otypes=[float])


@dataclass
class _Group:
    """Nodes with the same op at the same depth: one numpy call forward and backward."""
    op: engine.Op
    out: np.ndarray          # output slots, shape (k,)
    ins: list[np.ndarray]    # per input position, the input slots, each shape (k,)
    needs: list[np.ndarray]  # per input position, which of those slots need a gradient
    layer: tuple | None = None  # for a layer of fused neurons: (where its parameters sit in P, input slots)

    def __post_init__(self) -> None:
        self.unique = [len(np.unique(idx)) == len(idx) for idx in self.ins]
        self.out_at = _index(self.out)
        self.ins_at = [_index(idx) for idx in self.ins]
        self.forward = array_forward(self.op)
        self.needed = [bool(needs.any()) for needs in self.needs]  # input positions that need a gradient
        # (position, where its input slots are, are they distinct, mask of the slots needing a gradient)
        self.backward_plan = [(i, at, unique, None if needs.all() else needs[:, None])
                              for i, (at, unique, needs) in enumerate(zip(self.ins_at, self.unique, self.needs))
                              if needs.any()]

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


class BatchResult:
    """The mean loss over a batch; `backward()` adds its gradient into the parameters."""

    def __init__(self, compiled: "Compiled", values: np.ndarray, outputs: np.ndarray | None) -> None:
        self._compiled, self._values, self._call = compiled, values, compiled.calls
        self.losses = values[compiled.root].copy()
        self.data = float(self.losses.mean())
        self.outputs = outputs

    def backward(self) -> None:
        """Add d(mean loss)/d(parameter) into each parameter's `.grad`."""
        if self._call != self._compiled.calls:
            raise RuntimeError("backward(): the compiled function has run again since this result was made, "
                               "and its buffers now hold the newer batch; call backward() first")
        self._compiled._backward(self._values)

    def __repr__(self) -> str:
        return f"BatchResult(data={self.data:.4g}, batch={len(self.losses)})"


class Compiled:
    """A recorded tape of `fn`; call it with X (n, d) and y (n,)."""

    def __init__(self, fn: Callable, watch: Callable[[], list] | None = None) -> None:
        self.fn, self._watch = fn, watch
        self._tape = None
        self.calls = 0
        self._buffers: dict[tuple, np.ndarray] = {}

    # ---- recording -------------------------------------------------------------------------

    def _record(self, x_row: np.ndarray, y_value: float):
        xs = [Value(float(v), f"x{i}", requires_grad=False) for i, v in enumerate(x_row)]
        y = Value(float(y_value), "y", requires_grad=False)
        out = self.fn(xs, y)
        if not isinstance(out, Value):
            raise TypeError(f"compile: fn must return a Value (the sample's loss), got {type(out).__name__}")
        watched = self._watch() if self._watch else []
        order = topological_order(out)
        for w in watched:  # watched outputs (e.g. the model's) join the tape if not already in it
            known = set(order)
            order += [v for v in topological_order(w) if v not in known]
        slot = {v: i for i, v in enumerate(order)}
        structure = []
        for v in order:
            if v.inputs:
                structure.append((v.op, tuple(slot[x] for x in v.inputs)))
            elif v in xs:
                structure.append(("x", xs.index(v)))
            elif v is y:
                structure.append(("y",))
            elif v.requires_grad:
                structure.append(("param", id(v)))
            else:
                structure.append(("const", v.data))
        watched_slots = [slot[w] for w in watched]
        return order, structure, slot[out], watched_slots

    def _build(self, X: np.ndarray, y: np.ndarray) -> None:
        order, structure, root, watched = self._record(X[0], y[0])
        for j in sorted({len(X) // 2, len(X) - 1} - {0}):  # re-record: does the graph change?
            other = self._record(X[j], y[j])[1]
            if other != structure:
                diff = next(i for i, (a, b) in enumerate(zip(structure, other)) if a != b) \
                    if len(other) == len(structure) else None
                where = f" (node {diff}: {structure[diff]} vs {other[diff]})" if diff is not None else \
                    f" ({len(structure)} vs {len(other)} nodes)"
                raise ValueError(f"compile: fn builds a different graph for sample 0 and sample {j}{where}: "
                                 f"its structure or constants depend on the data (Python branching on "
                                 f".data, or float(x)), so a recorded tape would give wrong gradients; "
                                 f"use the scalar loop for this function")
        order, structure, root, watched, groups = _group_contiguously(order, structure, root, watched)
        self.root, self.watched = root, watched
        self.n_slots = len(order)
        kinds = [s[0] for s in structure]
        self.x_slots = _index(np.array([i for i, s in enumerate(structure) if s[0] == "x"], dtype=int))
        self.x_cols = np.array([s[1] for s in structure if s[0] == "x"], dtype=int)
        self.y_slots = np.array([i for i, k in enumerate(kinds) if k == "y"], dtype=int)
        consts = [(i, s[1]) for i, s in enumerate(structure) if s[0] == "const"]
        self.const_slots = np.array([i for i, _ in consts], dtype=int)
        self.const_values = np.array([c for _, c in consts], dtype=float).reshape(-1, 1)
        self.param_slots = np.array([i for i, k in enumerate(kinds) if k == "param"], dtype=int)
        self.param_values = [order[i] for i in self.param_slots.tolist()]
        is_param = np.array([k == "param" for k in kinds])
        needs = list(is_param)  # does a gradient flow into this slot?
        for i, s in enumerate(structure):
            if order[i].inputs:
                needs[i] = any(needs[j] for j in s[1])
        self.groups = []
        for arity, idx in groups:
            ins = [np.array([structure[i][1][j] for i in idx]) for j in range(arity)]
            self.groups.append(_Group(order[idx[0]]._op, np.array(idx), ins,
                                      [np.array([needs[s] for s in slots]) for slots in ins]))
        # Parameters live in one vector P. Layers index it directly; only parameters that other
        # groups read get rows of their own in V (filled across the batch).
        position = {slot: k for k, slot in enumerate(self.param_slots.tolist())}
        for g in self.groups:
            slots = g.layer_slots(is_param)
            if slots is not None:
                W, X, B = slots
                W = np.vectorize(position.__getitem__, otypes=[int])(W)
                B = np.array([position[b] for b in B.tolist()], dtype=int)
                g.layer = (_layer_block(W, B), _index(X))
        read = {root}  # slots groups read through V (a layer reads its weights from P)
        for g in self.groups:
            slots = g.layer_slots(is_param)
            for idx in ([slots[1]] if slots is not None else g.ins):
                read.update(idx.tolist())
        rows = sorted(s for s in read if is_param[s])
        self.row_param_slots = np.array(rows, dtype=int)
        self.row_param_pos = np.array([position[s] for s in rows], dtype=int)
        self.first_computed = min((int(g.out.min()) for g in self.groups), default=self.n_slots)
        self.x_needed = int(self.x_cols.max(initial=-1)) + 1
        self._tape = True

    # ---- replay ----------------------------------------------------------------------------

    def __call__(self, X, y) -> BatchResult:
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).reshape(-1)
        if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
            raise ValueError(f"compiled: expected X of shape (n, d) and y of shape (n,), got {X.shape} and {y.shape}")
        if not (np.isfinite(X).all() and np.isfinite(y).all()):
            raise ValueError("compiled: X or y contains NaN or infinity")
        if self._tape is None:
            self._build(X, y)
        if X.shape[1] < self.x_needed:
            raise ValueError(f"compiled: fn reads x[{self.x_needed - 1}] but X has {X.shape[1]} columns")
        n = len(X)
        self.calls += 1
        V = self._buffer("values", n)
        V[self.x_slots] = X[:, self.x_cols].T
        V[self.y_slots] = y
        P = self._params = np.array([p.data for p in self.param_values], dtype=float)
        if len(self.row_param_slots):
            V[self.row_param_slots] = P[self.row_param_pos, None]
        with np.errstate(all="ignore"):
            for g in self.groups:
                V[g.out_at] = _forward(g, V, P)
        if not np.isfinite(V[self.root]).all():  # anything non-finite that matters reaches the loss
            self._raise_nonfinite(V)
        outputs = None
        if self.watched:
            outputs = V[self.watched].T.copy() if len(self.watched) > 1 else V[self.watched[0]].copy()
        return BatchResult(self, V, outputs)

    def _backward(self, V: np.ndarray) -> None:
        n = V.shape[1]
        G = self._buffer("grads", n)
        G[self.first_computed:] = 0.0  # leaves' rows are never read, but for row parameters
        if len(self.row_param_slots):
            G[self.row_param_slots] = 0.0
        G[self.root] = 1.0 / n
        P, PG = self._params, np.zeros(len(self._params))
        with np.errstate(all="ignore"):
            for g in reversed(self.groups):
                grad_out = G[g.out_at]
                if g.layer is not None:
                    _layer_backward(g, V, G, P, PG, grad_out)
                else:
                    _backward(g, V, G, grad_out)
        if len(self.row_param_slots):
            PG[self.row_param_pos] += G[self.row_param_slots].sum(axis=1)
        grads = PG
        if not np.isfinite(grads).all():
            raise ValueError("compiled backward: a parameter's gradient is not finite")
        for p, g in zip(self.param_values, grads.tolist()):
            p.grad += g

    def _buffer(self, kind: str, n: int) -> np.ndarray:
        """Reused (slots, n) arrays: fresh ones each step cost more than the arithmetic.
        Constants' rows of the values buffer are written once, when it is made."""
        key = (kind, n)
        if key not in self._buffers:
            buffer = self._buffers[key] = np.empty((self.n_slots, n))
            if kind == "values":
                buffer[self.const_slots] = self.const_values
        return self._buffers[key]

    def _raise_nonfinite(self, V: np.ndarray) -> None:
        for g in self.groups:
            bad = ~np.isfinite(V[g.out])
            if bad.any():
                row, sample = map(int, np.argwhere(bad)[0])
                shown = ", ".join(f"{V[ins[row], sample]:.6g}" for ins in g.ins)
                raise ValueError(f"compiled: {g.op.name}({shown}) is not finite for sample {sample}")


def _groups(order: list[Value]) -> list[tuple[int, list[int]]]:
    """(arity, slots) of each group of same-op nodes at the same depth, in run order."""
    groups: dict[tuple, list[int]] = {}
    for i, v in enumerate(order):
        if v.inputs:
            groups.setdefault((v._depth, v.op, len(v.inputs)), []).append(i)
    return [(key[2], idx) for key, idx in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[1][0]))]


def _group_contiguously(order, structure, root, watched):
    """Renumber slots: leaves first, then each group's nodes together, so most gathers and
    scatters of the replay are slices (views) rather than copies. Returns the groups too."""
    groups = _groups(order)
    perm = [i for i, v in enumerate(order) if not v.inputs] + [i for _, idx in groups for i in idx]
    new = {old: k for k, old in enumerate(perm)}
    remapped = [(structure[i][0], tuple(new[j] for j in structure[i][1])) if order[i].inputs else structure[i]
                for i in perm]
    return ([order[i] for i in perm], remapped, new[root], [new[w] for w in watched],
            [(arity, [new[i] for i in idx]) for arity, idx in groups])


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


def _forward(g: _Group, V: np.ndarray, P: np.ndarray) -> np.ndarray:
    if g.layer is not None:  # one matrix product for the whole layer
        block, X = g.layer
        W, B = _weights(block, P)
        return W @ V[X] + B[:, None]
    return g.forward(*[V[idx] for idx in g.ins_at])


def _backward(g: _Group, V: np.ndarray, G: np.ndarray, grad_out: np.ndarray) -> None:
    """Add local derivative × grad_out into G for each input position that needs a gradient;
    like the scalar engine, no derivative is taken for the others."""
    ins = [V[idx] for idx in g.ins_at]
    out = V[g.out_at]
    local = _array_local_grads(g.op, ins, out, g.needed)
    for i, at, unique, mask in g.backward_plan:
        contribution = local[i] * grad_out
        if mask is not None:
            contribution = np.where(mask, contribution, 0.0)
        if unique:  # `at` is a slice or an index array
            G[at] += contribution
        else:  # an input used by several nodes of the group: add each use
            np.add.at(G, at, contribution)


def _layer_backward(g: _Group, V: np.ndarray, G: np.ndarray, P: np.ndarray, PG: np.ndarray,
                    grad_out: np.ndarray) -> None:
    """A layer's backward as matrix products; its weights' and biases' gradients are summed
    over the batch straight into PG."""
    block, X = g.layer
    W, _ = _weights(block, P)
    if g.needs[W.shape[1]].any():  # the layer's inputs lead back to parameters
        G[X] += W.T @ grad_out
    if isinstance(block[0], slice):
        dW, dB = _weights(block, PG)
        dW += grad_out @ V[X].T
        dB += grad_out.sum(axis=1)
    else:
        PG[block[0]] += grad_out @ V[X].T
        PG[block[1]] += grad_out.sum(axis=1)


def _array_local_grads(op: engine.Op, ins: list, out: np.ndarray, needed: list[bool]) -> tuple:
    """The op's derivative rules run on arrays (element by element if a rule branches)."""
    try:
        return op.local_grads(ins, out, needed)
    except (TypeError, ValueError, ArithmeticError):
        def one(*a):
            try:
                return tuple(map(float, op.local_grads(a[:-1], a[-1], needed)))
            except (ArithmeticError, ValueError):
                return (float("nan"),) * len(needed)  # reported only if a gradient flows through it
        if len(needed) == 1:
            return (np.vectorize(lambda *a: one(*a)[0], otypes=[float])(*ins, out),)
        return np.vectorize(one, otypes=[float] * len(needed))(*ins, out)


def compile(fn: Callable[[list, Value], Value]) -> Compiled:
    """Record `fn(x, y)` (one sample's loss from a row of inputs and its target) once, and
    replay it over whole batches with numpy: `compiled(X, y)` returns a result whose `.data`
    is the mean loss and whose `.backward()` adds the mean's gradient into each parameter.

    Parameters (leaf Values that `fn` uses) are read fresh on every call, so training loops
    work. The first call records `fn` on samples 0, n//2 and n-1 and refuses (ValueError) if
    the graphs differ, as they do when `fn` branches on `.data` or turns inputs into
    constants with `float()`; a branch that none of those three samples takes cannot be seen,
    so keep `fn` free of data-dependent Python control flow.
    """
    if not callable(fn):
        raise TypeError(f"compile: expected a function fn(x, y), got {type(fn).__name__}")
    return Compiled(fn)


def compile_model_loss(model, loss_fn: Callable) -> Compiled:
    """`compile` of `loss_fn([model(x)], [y])` that also returns the model's outputs."""
    captured: list = []

    def fn(x, y):
        captured.clear()
        out = model(x)
        captured.extend(out if isinstance(out, list) else [out])
        return loss_fn([out], [y])
    return Compiled(fn, watch=lambda: list(captured))
