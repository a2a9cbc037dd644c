"""A scalar autograd engine: `Value`, how an op makes a node, backward and `grad`, and the op table.

Read top-down: a `Value` holds a number, the op that made it, its inputs and the local
derivative d(self)/d(input) of each input, computed when the Value is made. `backward()`
visits the nodes outputs-first and adds local * grad into each input. Every op, from `+` to
`dot`, is one row of the table at the bottom: its float forward and its derivative rules.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import math
import numbers
import operator
import struct
import sys
import threading
from collections.abc import Mapping, Set
from typing import Any, Callable, Iterable, Iterator, Sequence, overload

__all__ = [
    "Value", "Op", "define_op", "get_op", "ops", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "grad", "topological_order", "zero_grad", "tree", "register_backward_hook", "RemovableHandle", "exp", "log",
    "log1p", "sqrt", "tanh", "sigmoid", "relu", "leaky_relu", "sin", "cos", "softplus", "dot", "dots", "logsumexp",
    "take", "observe_decisions", "is_sample_float", "all_floats", "float_array", "data_of", "assign", "restore",
    "data_version", "next_version", "version_of", "changed_since",
]

_GRAD_ENABLED = contextvars.ContextVar("microgradnn_grad_enabled", default=True)
# the handles of the backward hooks registered in this thread or task, in order
_BACKWARD_HOOKS: contextvars.ContextVar[tuple] = contextvars.ContextVar("microgradnn_backward_hooks", default=())
# Counts every `.data` assignment. A node stores the count when it was made (_t) and an
# assignment stamps the Value with the new count, so an input whose _t is above its user's
# was changed after use: its local derivatives are stale (PyTorch's version counter).
_clock = 0


class Value:
    """A scalar that records the operations applied to it, for reverse-mode autodiff.

    `==` and `hash` are by identity (so Values can be dict keys and set members);
    `<`, `<=`, `>`, `>=` compare `data`.
    """

    # _op: the table row that made this Value (None for a leaf).
    # _local: d(self)/d(input) for each input, computed at forward time by the op's rules.
    # _depth: ops on the longest path from a leaf; sorting by it gives backward's order.
    # _origin: see `origin`; left unset on most nodes (setting it on every node costs time).
    # _data: the number (`data`); _label: `label`; _t: see _clock.
    __slots__ = ("_data", "grad", "_label", "_requires_grad", "_op", "inputs", "_local", "_depth", "_t", "_origin")

    def __init__(self, data: float, label: str = "", *, requires_grad: bool = True) -> None:
        if type(data) is not float:
            data = _to_float(data, "Value", label)
        if data - data != 0.0:
            raise ValueError(f"Value: data must be finite, got {data}{_label_note(label)}")
        if not isinstance(label, str):
            raise TypeError(f"Value: label must be a str, got {type(label).__name__}")
        if not isinstance(requires_grad, bool):
            raise TypeError(f"Value: requires_grad must be a bool, got {type(requires_grad).__name__}")
        self._data = data
        self.grad = 0.0
        self._label = label
        self._requires_grad = requires_grad
        self._op: Op | None = None
        self.inputs: tuple[Value, ...] = ()
        self._local: tuple[float, ...] = ()
        self._depth = 0
        self._t = _clock

    @property
    def data(self) -> float:
        """The number this Value holds."""
        return self._data

    @data.setter
    def data(self, x: float) -> None:
        # Setting data marks the Value changed: a graph that used the old number refuses
        # backward/grad instead of giving gradients at the old point.
        global _clock
        if type(x) is not float or x - x != 0.0:
            x = _to_float(x, "Value.data", self.label)
            if x - x != 0.0:
                raise ValueError(f"Value.data: must be finite, got {x}{_label_note(self.label)}")
        _clock += 1
        self._t = _clock
        self._data = x

    @property
    def label(self) -> str:
        """A name shown in drawings and messages ("" for none)."""
        return self._label

    @label.setter
    def label(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"Value.label: must be a str, got {type(text).__name__}")
        self._label = text

    @property
    def op(self) -> str:
        """Name of the op that made this Value; "" for a leaf."""
        return self._op.name if self._op is not None else ""

    @property
    def origin(self) -> tuple | None:
        """Who made this Value, when a module did: `(outermost module called, neuron)` on a
        neuron's output (set by `microgradnn.nn`), None elsewhere. Drawings group nodes by it."""
        return getattr(self, "_origin", None)

    @origin.setter
    def origin(self, who: tuple | None) -> None:
        self._origin = who

    @property
    def is_leaf(self) -> bool:
        """True if no gradient flows through this Value to others: not computed from other Values,
        or not requiring grad (torch's convention); a property, as torch's."""
        return not self.inputs or not self._requires_grad

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={fmt(self.data)}, grad={fmt(self.grad)}{label})"

    def __float__(self) -> float:
        return self.data

    def __bool__(self) -> bool:
        # the number's truth, as a one-number torch tensor's (not an object's "always true")
        return self.data != 0.0

    def __format__(self, spec: str) -> str:
        # f"{loss:.4f}" formats the number, as a one-number torch tensor does; f"{loss}" is the repr
        return format(float(self), spec) if spec else str(self)

    def item(self) -> float:
        """The plain float, as `torch.Tensor.item()`."""
        return self.data

    # Ordering compares data; equality stays identity (see the class docstring).
    def __lt__(self, other: Value | float) -> bool: return self.data < _data(other)
    def __le__(self, other: Value | float) -> bool: return self.data <= _data(other)
    def __gt__(self, other: Value | float) -> bool: return self.data > _data(other)
    def __ge__(self, other: Value | float) -> bool: return self.data >= _data(other)
    __hash__ = object.__hash__

    # Arithmetic: every operator is a row of the op table below.
    def __add__(self, other: Value | float) -> Value: return add(self, other)
    def __radd__(self, other: Value | float) -> Value: return add(other, self)
    def __sub__(self, other: Value | float) -> Value: return sub(self, other)
    def __rsub__(self, other: Value | float) -> Value: return sub(other, self)
    def __mul__(self, other: Value | float) -> Value: return mul(self, other)
    def __rmul__(self, other: Value | float) -> Value: return mul(other, self)
    def __truediv__(self, other: Value | float) -> Value: return div(self, other)
    def __rtruediv__(self, other: Value | float) -> Value: return div(other, self)
    def __pow__(self, other: Value | float) -> Value: return pow_(self, other)
    def __rpow__(self, other: Value | float) -> Value: return pow_(other, self)
    def __neg__(self) -> Value: return neg(self)
    def __pos__(self) -> Value: return self
    def __abs__(self) -> Value: return abs_(self)

    def abs(self) -> Value: return abs_(self)
    def exp(self) -> Value: return exp(self)
    def log(self) -> Value: return log(self)
    def log1p(self) -> Value: return log1p(self)
    def sqrt(self) -> Value: return sqrt(self)
    def tanh(self) -> Value: return tanh(self)
    def sigmoid(self) -> Value: return sigmoid(self)
    def relu(self) -> Value: return relu(self)
    def leaky_relu(self, negative_slope: float = 0.01) -> Value: return leaky_relu(self, negative_slope)
    def sin(self) -> Value: return sin(self)
    def cos(self) -> Value: return cos(self)
    def softplus(self) -> Value: return softplus(self)

    def detach(self) -> Value:
        """A new leaf with the same data, cut off from this graph."""
        return Value(self.data, self.label, requires_grad=False)

    def detach_(self) -> Value:
        """Make this Value a leaf that requires no grad, in place, and return it (torch's). A graph
        that used it refuses backward and grad after, as torch's refuses one that saved it."""
        self._make_leaf("Value.detach_")
        self._requires_grad = False
        self._t = next_version()  # a version older graphs did not see: see _check_unchanged
        return self

    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow into this Value; settable on a leaf, as `requires_grad_`."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, requires_grad: bool) -> None:
        self._set_requires_grad(requires_grad, "Value.requires_grad")

    def requires_grad_(self, requires_grad: bool = True) -> Value:
        """Set `requires_grad` in place and return this Value, as torch's: a Value computed from
        others that requires grad keeps it; one that requires none becomes a leaf that does."""
        self._set_requires_grad(requires_grad, "Value.requires_grad_")
        return self

    def _set_requires_grad(self, requires_grad: bool, who: str) -> None:
        _flag(requires_grad, who, "requires_grad")
        if self.inputs and requires_grad != self._requires_grad:
            if self._requires_grad:  # an op after it would take it as a constant, cutting the gradient silently
                raise RuntimeError(f"{who}: only a leaf's requires_grad can be changed, and this Value was "
                                   f"computed by {self.op!r} from others; use v.detach() for a copy that requires "
                                   "no grad")
            self._make_leaf(who)  # no gradient flowed through it: nothing is lost
        if self._requires_grad and not requires_grad:
            next_version()  # graphs made before go to backward's slow path, which keeps this leaf's .grad
        self._requires_grad = requires_grad

    def _make_leaf(self, who: str) -> None:
        """Forget how this Value was computed (torch's grad_fn = None)."""
        if _DECISIONS.get() is not None:
            raise RuntimeError(f"{who}: refused while compile records (a replay could not follow it); use "
                               "v.detach()")
        self._op, self.inputs, self._local, self._depth = None, (), (), 0

    def backward(self, gradient: float | None = 1.0, retain_graph: bool | None = None, create_graph: bool = False,
                 inputs: Value | Iterable[Value] | None = None) -> None:
        """Add d(self)/d(leaf) * gradient into every leaf's `.grad` (None: 1, as PyTorch's default; [g] is g).

        Intermediate nodes' `.grad` are overwritten with this call's gradient (handy for
        inspection and drawing); only leaves accumulate across calls, as in PyTorch. As torch's:
        `inputs` accumulates into those Values' `.grad` only; `retain_graph` is taken (the graph
        is always kept); `create_graph=True` is refused (`.grad` holds floats: see `grad`).
        """
        if not self._requires_grad:
            raise RuntimeError("backward: this Value does not require grad (it was computed inside no_grad(), or "
                               "from no Value with requires_grad=True)")
        if inputs is not None or retain_graph is not None or create_graph is not False:
            if _backward_options(self, gradient, retain_graph, create_graph, inputs):
                return
        if type(gradient) is not float or gradient - gradient != 0.0:
            gradient = _seed(gradient, "backward", False)  # (None, [None] or [g]: as torch's)
        hooks = _BACKWARD_HOOKS.get()
        if hooks:
            _run_hooks(hooks, self, "before")
        interior, leaves, current = _backward_walk(self)
        if not current:  # some .data or requires_grad was set since the oldest node was made
            _check_unchanged(interior, "backward")
        before = [v.grad for v in leaves]  # what the leaves held, to put back if this call fails
        keep = not current  # put back the .grad of leaves that require none (see the end)
        if not all_floats(before):
            _start_leaf_grads(leaves)
            keep = True  # a None there (a frozen parameter's) stays None, as torch's
        self.grad += gradient
        for v in sorted(interior, key=_DEPTH, reverse=True):
            g = v.grad
            if g:
                for x, d in zip(v.inputs, v._local):
                    x.grad += d * g
        total = sum([v.grad for v in leaves])  # finite sum: every leaf is finite (one cheap pass)
        if total - total != 0.0:
            _check_finite(self, interior, leaves, before)
        if keep:  # a leaf frozen after its use (which starts a new version) gets none, as torch's
            for v, b in zip(leaves, before):
                if not v._requires_grad:
                    v.grad = b
        if hooks:
            _run_hooks(hooks, self, "after")

    def zero_grad(self) -> None:
        """Set `.grad` to 0 on every node of this Value's graph."""
        zero_grad(self)

    # pickle and copy.deepcopy, without recursion: the state of a node made by an op starts
    # with every node below it that this pickle has not listed yet, inputs first, so by the
    # time a node's inputs are written they have all been written already (a memo reference
    # each) however deep the graph; and many nodes of one graph list each node once.
    def __reduce_ex__(self, protocol: Any) -> tuple:
        below = None
        covered = _PICKLING.__dict__.setdefault("covered", {})
        listed = covered.get(id(self))
        if listed is not None and listed.done:  # listed by a pickle whose memo would have answered:
            listed.release(covered)             # another pickle runs (a Pickler kept alive made it)
            listed = None
        if self.inputs and listed is None:
            order = _unlisted_below(self, covered)
            below = [*order, _Covering(covered, _Listing(covered, order))]  # those need not list their own inputs
        state: tuple = (below, self._data, self.grad, self.label, self._requires_grad, self.origin,
                 self._op, self.inputs, self._local, self._depth, _clock)
        t = self._t
        for x in self.inputs:
            if x._t > t:  # an input's data was set after this node used it: the copy stays stale
                state += ("stale",)
                break
        return _empty_value, (), state

    def __setstate__(self, state: tuple) -> None:
        global _clock
        (_, self._data, self.grad, self.label, self._requires_grad, self.origin,
         self._op, self.inputs, self._local, self._depth) = state[:10]
        if len(state) > 10 and type(state[10]) is int:  # the clock where it was pickled: in a new process,
            _clock = max(_clock, state[10])  # a version noted there (an optimizer's) must not pass for current
        # older than every input (stamped >= 0), so backward and grad refuse a stale copy as the original
        self._t = -1 if state[-1] == "stale" else _clock

    def tree(self, view: str = "both") -> str:
        """The graph as indented text, one line per node (see `microgradnn.engine.tree`)."""
        return tree(self, view=view)


def _backward_options(root: Value, gradient: Any, retain_graph: Any, create_graph: Any, inputs: Any) -> bool:
    """backward's torch arguments: checked; with `inputs`, the whole call (adds into their
    `.grad` only, as torch's) and True; else False, for the usual backward."""
    _flag(retain_graph, "backward", "retain_graph", none=True)
    _flag(create_graph, "backward", "create_graph")
    if create_graph:
        raise ValueError("backward: create_graph=True is not supported (.grad holds floats); use "
                         "grad(output, inputs, create_graph=True) for gradients that can be differentiated again")
    if inputs is None:
        return False
    inputs = tuple(dict.fromkeys(_checked_inputs(inputs, "backward")))  # each once, as torch
    gradient = _seed(gradient, "backward", False)
    hooks = _BACKWARD_HOOKS.get()
    if hooks:
        _run_hooks(hooks, root, "before")
    grads = _gradients(root, inputs, gradient, False, True, False, "backward")
    used = [(x, g) for x, g in zip(inputs, grads) if g is not None]  # an unused input keeps its .grad
    _start_leaf_grads([x for x, _ in used])                          # (None too), as torch's
    for x, g in used:
        x.grad += g
    if hooks:
        _run_hooks(hooks, root, "after")
    return True


# ---- how an op makes a node ------------------------------------------------------------

_new = object.__new__
_PICKLING = threading.local()  # .covered: id of a node whose inputs a pickle writes before it -> its _Covering


def _empty_value() -> Value:
    return _new(Value)


def _unlisted_below(root: Value, covered: dict) -> list[Value]:
    """The nodes below `root` whose ids are not in `covered`, inputs first; not walking below
    a covered one (its state was written already, with all below it)."""
    seen, found, stack = {id(root)}, [], list(root.inputs)
    while stack:
        v = stack.pop()
        if id(v) in seen or id(v) in covered:
            continue
        seen.add(id(v))
        found.append(v)
        stack.extend(v.inputs)
    return sorted(found, key=_DEPTH)  # a node is deeper than each of its inputs


class _Listing:
    """The nodes one pickle (or deepcopy) lists below a node, as `covered` maps their ids to it:
    until written (`done`), they are being written in order; after, they are in that pickle's
    memo, so one that reaches `__reduce_ex__` again is in another pickle (a Pickler kept alive
    made this listing, or its memo was cleared), which drops them all and lists them anew."""

    __slots__ = ("ids", "done")

    def __init__(self, covered: dict, nodes: list) -> None:
        self.ids, self.done = [id(v) for v in nodes], False
        covered.update(dict.fromkeys(self.ids, self))

    def release(self, covered: dict) -> None:
        for i in self.ids:
            if covered.get(i) is self:
                covered.pop(i, None)
        self.ids = []


class _Covering:
    """Written after the nodes below the node a pickle started from: marks their listing done,
    and when the pickle is done with it (its memo keeps what it wrote alive, so no listed id is
    reused meanwhile), `__del__` drops the ids, so a later pickle, of this graph or of one whose
    nodes reuse freed ids, lists its own nodes."""

    __slots__ = ("covered", "listing")

    def __init__(self, covered: dict, listing: _Listing) -> None:
        self.covered, self.listing = covered, listing

    def __reduce_ex__(self, protocol: Any) -> tuple:
        self.listing.done = True
        return type(None), ()  # unpickled as None

    def __del__(self) -> None:
        self.listing.release(self.covered)


_DEPTH = operator.attrgetter("_depth")
_T = operator.attrgetter("_t")
_ONLY_VALUES = frozenset({Value})


def _node(data: float, op: Op | None = None, inputs: tuple = (), local: tuple = (), depth: int = 0,
          requires_grad: bool = False) -> Value:
    """A Value made by an op (Value() minus the checks, which the op has done). While a
    recording observes decisions, `observe_decisions` puts `_observed_node` in its place."""
    v = _new(Value)
    v._data = data  # one attribute per statement: tuple assignment costs a third more here
    v.grad = 0.0
    v._label = ""
    v._requires_grad = requires_grad
    v._op = op
    v.inputs = inputs
    v._local = local
    v._depth = depth
    v._t = _clock
    return v


class Op:
    """One row of the op table.

    name: how it is called (`get_op(name)`); forward(*xs) -> float: the op on floats;
    derivatives: one rule per input, rule(*xs, out) -> d(out)/d(xs[i]). An op over any
    number of inputs (dot, logsumexp) has `groups(arity)`, the sizes of its input groups
    (dot: the w's, the x's, b), and one rule per group, rule(k, n, *xs, out) -> d(out)/d(the
    k-th input of its group of n). Rules are written with arithmetic and this module's
    functions, so the same rule runs on floats (forward time), on Values
    (`grad(create_graph=True)`) and on numpy arrays (replay); replacing `derivatives` (as
    mutation testing does) takes effect on all three.
    array_forward(*arrays): the forward on numpy arrays (optional; replay otherwise runs
    `forward` element by element). kinks(*xs): True where the op has no derivative
    (optional). infix: written between its two inputs (`a + b`); symbol: how pictures show it.
    """

    def __init__(self, name: str, forward: Callable[..., float], derivatives: Sequence[Callable], *,
                 array_forward: Callable | None = None, kinks: Callable | None = None,
                 groups: Callable[[int], tuple | None] | None = None, infix: bool = False,
                 symbol: str | None = None, unrolled: Callable | None = None) -> None:
        self.name = self.__name__ = name
        self.forward = forward
        self.derivatives = tuple(derivatives)
        self.array_forward = array_forward
        self.kinks = kinks
        self.groups = groups
        self.infix = infix
        self.symbol = name if symbol is None else symbol
        # The op on torch tensors, when `microgradnn.testing` has set it (for compare_with_torch):
        # a tensor must stay a tensor, never be read as a float.
        self.tensor_forward: Callable | None = None
        # The built-in rules written out for all inputs at once (`unrolled(*xs, out)`), used
        # while `derivatives` are still those rules: a fused neuron's 2n+1 derivatives in one step.
        self._unrolled = (self.derivatives, unrolled) if unrolled is not None else None
        self._arities: set[int] = set()  # input counts already found valid
        self.builtin = False  # a row of the engine's own table (set by it), not define_op's

    @property
    def variadic(self) -> bool:
        """True for an op over any number of inputs (see `groups`)."""
        return self.groups is not None

    def group(self, i: int, arity: int) -> tuple[int, int, int]:
        """(group, index in it, group size) of input i of a node with `arity` inputs."""
        if self.groups is None:
            return i, 0, 1
        for g, n in enumerate(self.groups(arity)):  # type: ignore[arg-type]  # a variadic op's arities have groups
            if i < n:
                return g, i, n
            i -= n
        raise IndexError(f"{self.name}: no input {i} among {arity}")

    def rule(self, i: int, arity: int) -> Callable:
        """The derivative rule of input i, as a function of (*xs, out)."""
        if self.groups is None:
            return self.derivatives[i]
        g, k, n = self.group(i, arity)
        rule = self.derivatives[g]
        return lambda *a: rule(k, n, *a)

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    def __reduce__(self) -> tuple:
        return get_op, (self.name,)

    def __copy__(self) -> Op:  # a table row, as a function: a copied graph keeps its nodes' ops, even
        return self            # where define_op has given the name to another op since

    def __deepcopy__(self, memo: dict) -> Op:
        return self

    def local_grads(self, xs: Sequence, out: Any, needs: Sequence[bool] | None = None) -> tuple:
        """d(out)/d(xs[i]) for each input by the op's rules; 0.0 where `needs[i]` is false
        (a rule is not even run for an input that needs no gradient)."""
        if self.groups is None:
            rules = self.derivatives
            if needs is None:
                return tuple(rule(*xs, out) for rule in rules)
            return tuple([rule(*xs, out) if need else 0.0 for rule, need in zip(rules, needs)])
        if self._unrolled is not None and self.derivatives is self._unrolled[0]:
            grads = self._unrolled[1](*xs, out)
            return grads if needs is None else _masked(grads, needs)
        n = len(xs)
        return tuple(self.rule(i, n)(*xs, out) if needs is None or needs[i] else 0.0 for i in range(n))

    def _check_arity(self, n: int) -> None:
        if self.groups is None:
            if n != len(self.derivatives):
                raise TypeError(f"{self.name}: takes {len(self.derivatives)} inputs, got {n}")
        elif n == 0 or self.groups(n) is None:
            raise TypeError(f"{self.name}: cannot take {n} inputs")
        self._arities.add(n)

    def __call__(self, *args: Value | float) -> Any:
        """Apply the op: numbers in give a float, any Value in gives a recorded Value."""
        if not _ONLY_VALUES.issuperset(map(type, args)):
            if Value not in map(type, args):
                self._check_arity(len(args))
                return self._numbers(args)
            args = tuple([a if type(a) is Value else _constant(a, self.name) for a in args])
        if len(args) not in self._arities:
            self._check_arity(len(args))
        return self._record(args, [a._data for a in args])  # type: ignore[union-attr]  # all Values by now

    def _record(self, args: tuple, xs: Sequence[float], needs: list | bool | None = None, depth: int = 0):
        """The node made from `args` (all Values) given their data `xs`: forward, then each
        local derivative. `needs` (each input's requires_grad, or True for all) and `depth` may
        come precomputed, both or neither."""
        try:
            data = self.forward(*xs)
        except (ArithmeticError, ValueError):
            data = self._forward(xs, args)  # re-run to raise the descriptive error
        if type(data) is not float or data - data != 0.0:
            data = self._forward(xs, args)
        if not _GRAD_ENABLED.get():
            return _node(data) if _DECISIONS.get() is None else _no_grad_node(self, args, data)
        if needs is None:  # (comprehensions beat map(attrgetter) on slots here)
            depths = [a._depth for a in args if a._requires_grad]  # all, in the usual case
            if len(depths) == len(args):
                needs = True
            else:
                needs = [a._requires_grad for a in args]
                depths = [a._depth for a in args]
            depth = 1 + max(depths)
        if needs is not True and True not in needs:  # type: ignore[operator]  # a list here
            # PyTorch's rule: no input needs a gradient, so neither does the output, and its
            # derivatives are never evaluated (the node stays in the graph for pictures).
            return _node(data, self, args, (0.0,) * len(args), depth)
        try:
            unrolled = self._unrolled
            if unrolled is not None and self.derivatives is unrolled[0]:  # local_grads, inlined
                local = unrolled[1](*xs, data)
                if needs is not True:
                    local = _masked(local, needs)  # type: ignore[arg-type]
            else:
                local = self.local_grads(xs, data, None if needs is True else needs)  # type: ignore[arg-type]
        except (ArithmeticError, ValueError):
            # e.g. sqrt'(0): only an error if a gradient actually flows through here
            local = (math.nan,) * len(args)
        return _node(data, self, args, local, depth, True)

    def _numbers(self, args: Sequence):
        """The op on plain numbers, or on numpy arrays by `array_forward` (rules run on arrays in replay)."""
        if any(hasattr(a, "__torch_function__") for a in args):
            if self.tensor_forward is None:
                raise TypeError(f"{self.name}: got a torch tensor; it runs on Values and numbers "
                                "(microgradnn.testing.compare_with_torch runs the built-in ops on tensors)")
            return self.tensor_forward(*args)
        if self.array_forward is not None and any(getattr(a, "ndim", 0) for a in args):
            return self.array_forward(*args)  # checked first: a failed float() would format the array
        return self._forward([_number(a, self.name) for a in args], args)

    def _forward(self, xs: Sequence[float], shown: Sequence) -> float:
        try:
            out = self.forward(*xs)
        except (ArithmeticError, ValueError) as e:
            _refused(self, shown)
            if isinstance(e, OverflowError) or str(e) == "math range error":
                raise OverflowError(f"{_call_note(self, shown)}: result is too large for a float") from None
            raise reworded(e, f"{_call_note(self, shown)}: {e}") from None
        if type(out) is not float:
            out = _to_float(out, self.name, bools=True)
        if out - out != 0.0:
            _refused(self, shown)
            kind = OverflowError if out in (math.inf, -math.inf) else ValueError
            raise kind(f"{_call_note(self, shown)}: result is not finite ({out})")
        return out


def reworded(e: Exception, message: str) -> Exception:
    """e's kind of error with `message`: its own type where that takes one message, else the
    built-in type it extends (a JSONDecodeError needs a document and a position: a ValueError)."""
    try:
        return type(e)(message)
    except Exception:
        return next(t for t in type(e).__mro__ if t.__module__ == "builtins")(message)


def _masked(grads: tuple, needs: Sequence[bool]) -> tuple:
    """0.0 in place of the derivatives of inputs that need no gradient."""
    if all(needs):
        return grads
    return tuple([d if need else 0.0 for d, need in zip(grads, needs)])


class _UnaryOp(Op):
    """Op.__call__ and local_grads unrolled for one input: the same steps, without the loops."""

    def local_grads(self, xs: Sequence, out: Any, needs: Sequence[bool] | None = None) -> tuple:
        return (self.derivatives[0](*xs, out) if needs is None or needs[0] else 0.0,)

    def __call__(self, input, *more):  # torch's name: mg.exp(input=v) as torch.exp(input=t)
        if more:  # (Python's own error would name _UnaryOp.__call__)
            self._check_arity(1 + len(more))
        if type(input) is not Value:
            return self._numbers((input,))
        x = input._data
        try:
            data = self.forward(x)
        except (ArithmeticError, ValueError):
            data = self._forward([x], (input,))
        if type(data) is not float or data - data != 0.0:
            data = self._forward([x], (input,))
        if not _GRAD_ENABLED.get():
            return _node(data) if _DECISIONS.get() is None else _no_grad_node(self, (input,), data)
        if not input._requires_grad:  # see Op._record
            return _node(data, self, (input,), (0.0,), input._depth + 1)
        rule = self.derivatives[0]
        try:
            local = (rule(x, data),)
        except (ArithmeticError, ValueError):
            local = (math.nan,)
        return _node(data, self, (input,), local, input._depth + 1, True)


class _BinaryOp(Op):
    """Op.__call__ and local_grads unrolled for two inputs (in __call__ each rule runs on its
    own, so one failing rule leaves the other input's derivative intact)."""

    def local_grads(self, xs: Sequence, out: Any, needs: Sequence[bool] | None = None) -> tuple:
        da, db = self.derivatives
        return (da(*xs, out) if needs is None or needs[0] else 0.0, db(*xs, out) if needs is None or needs[1] else 0.0)

    def __call__(self, a, b, *more):
        if more:
            self._check_arity(2 + len(more))
        if type(a) is not Value:
            if type(b) is not Value:
                return self._numbers((a, b))
            a = _constant(a, self.name)
        elif type(b) is not Value:
            b = _constant(b, self.name)
        x, y = a._data, b._data
        try:
            data = self.forward(x, y)
        except (ArithmeticError, ValueError):
            data = self._forward([x, y], (a, b))
        if type(data) is not float or data - data != 0.0:
            data = self._forward([x, y], (a, b))
        if not _GRAD_ENABLED.get():
            return _node(data) if _DECISIONS.get() is None else _no_grad_node(self, (a, b), data)
        ra, rb = a._requires_grad, b._requires_grad
        depth = 1 + (a._depth if a._depth > b._depth else b._depth)
        if not (ra or rb):  # see Op.__call__
            return _node(data, self, (a, b), (0.0, 0.0), depth)
        da, db = self.derivatives
        try:
            ga = da(x, y, data) if ra else 0.0
        except (ArithmeticError, ValueError):
            ga = math.nan
        try:
            gb = db(x, y, data) if rb else 0.0
        except (ArithmeticError, ValueError):
            gb = math.nan
        return _node(data, self, (a, b), (ga, gb), depth, True)


def _label_note(label: str) -> str:
    return f" (label {label!r})" if label else ""


def _show(a) -> str:
    if type(a) is Value:
        return f"{a.label}={a.data!r}" if a.label else repr(a.data)
    return repr(a)


def _call_note(op: Op | None, args: Sequence) -> str:
    """How an error shows the failing call: `log(x=-1.0)`, `1.0 / 0.0`."""
    if op is None:  # a leaf
        return ", ".join(map(_show, args))
    if op.infix and len(args) == 2:
        return f"{_show(args[0])} {op.symbol} {_show(args[1])}"
    if len(args) > 6:  # a neuron's dot has 2n + 1 inputs: say how many, show a few
        return f"{op.name}({', '.join(map(_show, args[:3]))}, ... {len(args) - 4} more, {_show(args[-1])})"
    return f"{op.name}({', '.join(map(_show, args))})"


def _to_float(x, where: str, label: str = "", *, bools: bool = False) -> float:
    """x as a float. A bool is refused where a Value's number is given (a flag there is a
    mistake), and taken as 0 or 1 with `bools`: an operand, as in Python and PyTorch (`mask * v`)."""
    if not bools and (isinstance(x, bool) or getattr(getattr(x, "dtype", None), "kind", "") == "b"):
        raise TypeError(f"{where}: expected a number or Value, got {type(x).__name__} {x!r}{_label_note(label)}")
    if isinstance(x, numbers.Real) or (hasattr(x, "__float__") and getattr(x, "shape", None) == ()):
        try:
            return float(x)
        except OverflowError:  # an int beyond float's range (shown by its size: str() of it may be refused)
            size = f"{type(x).__name__} of about {_digits(int(x))} digits"
            raise ValueError(f"{where}: expected a finite number, got an {size} (too large for a float)"
                             f"{_label_note(label)}") from None
    if type(x) is Value:
        return x.data
    raise TypeError(f"{where}: expected a number or Value, got {type(x).__name__} {x!r:.60}{_label_note(label)}")


def _digits(n: int) -> int:
    """About how many decimal digits n has, without str() (refused past 4300 digits); the
    engine's own copy of `_checks.digits`, as the engine imports nothing of the package."""
    return int(n.bit_length() * math.log10(2)) + 1


def _number(x, where: str) -> float:
    """A plain number entering a computation (an op's operand or argument), as a finite float:
    `Value(2.0) / math.inf` or `relu(nan)` would otherwise give a number as if nothing were wrong."""
    f = x if type(x) is float else _to_float(x, where, bools=True)
    if f - f != 0.0:
        raise ValueError(f"{where}: a number used in a computation must be finite, got {f}")
    return f


def _constant(x, where: str) -> Value:
    """A plain number lifted into the graph (no gradient; drawn inside its op's label)."""
    return _node(x if type(x) is float and x - x == 0.0 else _number(x, where))


def _data(x) -> float:
    # an int is compared as it is: Python compares floats and ints exactly, even past float's range
    return x.data if type(x) is Value else x if type(x) is int else _to_float(x, "comparison", bools=True)


# ---- backward and grad -----------------------------------------------------------------

def _walk(root: Value) -> tuple[list[Value], list[Value]]:
    """The nodes reachable from `root`, each once and in a fixed order: (made by ops, leaves)."""
    interior, leaves, seen = [], [], {root}
    stack = [root]
    while stack:
        v = stack.pop()
        if v.inputs:
            interior.append(v)
            for x in v.inputs:
                if x not in seen:
                    seen.add(x)
                    stack.append(x)
        else:
            leaves.append(v)
    return interior, leaves


def _backward_walk(root: Value) -> tuple[list[Value], list[Value], bool]:
    """backward's first step: `_walk`'s nodes made by ops, in its order, each with its grad set
    to 0; the leaves as they are met (never pushed; their order matters to no one); and whether
    every node made by an op is as new as the last `.data` assignment (see _clock)."""
    if not root.inputs:
        return [], [root], True
    interior, leaves, seen = [], [], {root}
    stack = [root]
    clock, current = _clock, True
    while stack:
        v = stack.pop()
        v.grad = 0.0
        if v._t != clock:
            current = False
        interior.append(v)
        for x in v.inputs:
            if x not in seen:
                seen.add(x)
                if x.inputs:
                    stack.append(x)
                else:
                    leaves.append(x)
    return interior, leaves, current


def _check_root(root: Any, who: str, several: str = "call it once per root") -> None:
    """A graph's root must be one Value: a list of them would fail as unhashable, or walk nothing."""
    if type(root) is not Value:
        hint = f" (for several roots, {several})" if isinstance(root, (list, tuple)) else ""
        raise TypeError(f"{who}: expected a Value, got {type(root).__name__}{hint}")


def topological_order(root: Value) -> list[Value]:
    """Every node reachable from `root` once, inputs before the nodes made from them:
    the leaves, then the other nodes by depth (no recursion)."""
    _check_root(root, "topological_order")
    interior, leaves = _walk(root)
    # The walk meets last inputs first; reversed, a neuron's weights come in order (replay
    # stores them as they come, and reads a layer through views when they are in order).
    return leaves[::-1] + sorted(interior[::-1], key=_DEPTH)


def zero_grad(*roots: Value) -> None:
    """Set `.grad` to 0 on every node reachable from the given Values."""
    for root in roots:
        _check_root(root, "zero_grad", "pass them as zero_grad(*roots)")
    for root in roots:
        for v in topological_order(root):
            v.grad = 0.0


def _start_leaf_grads(leaves: list[Value]) -> None:
    """Before backward adds into leaves whose `.grad` is not a float: None (PyTorch's "no
    gradient yet") starts from 0 and another number becomes a float; anything else is refused
    before any leaf changes."""
    grads: list[float] = []
    for v in leaves:
        g = v.grad
        if g is not None and (isinstance(g, bool) or not isinstance(g, numbers.Real)):
            raise TypeError(f"backward: a leaf's .grad must be a number or None, got {type(g).__name__} "
                            f"{g!r:.60}{_label_note(v.label)}")
        grads.append(0.0 if g is None else _to_float(g, "backward: a leaf's .grad", v.label))
    for v, g in zip(leaves, grads):
        v.grad = g


def _check_finite(root: Value, interior: list[Value], leaves: list[Value], before: list[float] | None) -> None:
    """After backward's sum of leaf gradients came out non-finite: raise if a gradient that
    is wanted is not finite (the sum alone may have overflowed), after restoring every leaf's
    `.grad` to what it held before the call, so a failed backward adds nothing."""
    if before is None:
        before = [0.0] * len(leaves)
    if all(math.isfinite(v.grad) for v in leaves if v._requires_grad):
        for v, g in zip(leaves, before):
            if not v._requires_grad and not math.isfinite(v.grad):
                v.grad = g  # inf * 0 on a constant: no gradient is wanted there
        return
    error = _not_finite("backward", [v for v in sorted(interior, key=_DEPTH, reverse=True) if v.grad],
                        lambda x: x._requires_grad)
    for v, g in zip(leaves, before):
        v.grad = g
    for v in interior:
        v.grad = 0.0
    raise error


def _not_finite(who: str, flowing: Iterable[Value], needs: Callable[[Value], bool]) -> Exception:
    """The error for a gradient that came out non-finite: the first of the nodes a gradient
    flows through (outputs first) with a non-finite derivative for an input that `needs` one,
    else an overflow of the products themselves."""
    for v in flowing:
        for i, (x, d) in enumerate(zip(v.inputs, v._local)):
            if needs(x) and not math.isfinite(d):
                return ValueError(f"{who}: the derivative of {_call_note(v._op, v.inputs)} with respect to "
                                  f"input {i} ({_show(x)}) is not finite")
    return OverflowError(f"{who}: a gradient overflowed to a non-finite value (the loss or learning rate may be "
                         f"too large)")


# ---- many Values at once: array code (compile, the optimizers) reads and writes parameters ----

def all_floats(xs: Iterable) -> bool:
    """True if every item is exactly a float: the quick path of every reader of `.grad` (an int,
    a bool, None or a numpy number takes the careful one)."""
    if not isinstance(xs, (list, tuple)):
        xs = list(xs)
    return operator.countOf(map(type, xs), float) == len(xs)  # (quicker than a set of the types)


def float_array(xs: Sequence) -> Any:
    """Floats (each exactly a float: see `all_floats`) as a read-only numpy array, packed as C
    doubles: twice as quick as np.fromiter."""
    return _np().frombuffer(struct.pack(f"{len(xs)}d", *xs))


def data_of(values: Iterable[Value]) -> list[float]:
    """Each Value's `.data`, without the property's per-call cost (a list comprehension over
    the slot: quicker here than map with attrgetter)."""
    return [v._data for v in values]


def reset_grads(values: Iterable[Value], to_none: bool = False) -> None:
    """Set each of these Values' `.grad` to 0, or to None: torch's "no gradient yet", which
    backward adds into as into 0 and the optimizers skip (the `zero_grad(set_to_none=)` of modules
    and optimizers; `zero_grad` above walks a graph instead)."""
    grad = None if to_none else 0.0
    for v in values:
        v.grad = grad  # type: ignore[assignment]


def assign(values: Sequence[Value], new: Sequence[float]) -> None:
    """Set each Value's `.data` to the float at the same place, as one change (one version
    stamp): all of them, or, if any number is not a finite float, none."""
    if len(values) != len(new):
        raise ValueError(f"assign: {len(values)} Values but {len(new)} numbers")
    total = sum(new)  # a finite sum means every term is finite (a float one, that some term is a float)
    if type(total) is not float or total - total != 0.0 or not all_floats(new):
        for v, x in zip(values, new):
            if type(x) is not float or x - x != 0.0:
                raise ValueError(f"assign: a Value's data must be a finite float, got {x!r} for {v!r}")
    _assign_checked(values, new)


def _assign_checked(values: Sequence[Value], new: Sequence[float]) -> None:
    """`assign` without its checks, for a caller that has checked the numbers are as many
    finite floats (the optimizers: `np.isfinite(new).all()` on the array they come from)."""
    global _clock
    _clock += 1
    t = _clock
    for v, x in zip(values, new):
        v._data = x
        v._t = t


def restore(values: Sequence[Value], numbers: Sequence[float], versions: Sequence[int]) -> None:
    """Put back numbers a check changed, with the versions they had (from `version_of`): graphs
    made before stay valid."""
    if not len(values) == len(numbers) == len(versions):
        raise ValueError(f"restore: {len(values)} Values, {len(numbers)} numbers and {len(versions)} versions")
    for v, x, t in zip(values, numbers, versions):
        v._data = x
        v._t = t


def next_version() -> int:
    """Start a new data version and return it: Values made or set from now on are stamped with
    at least it, earlier ones with less (see `version_of`)."""
    global _clock
    _clock += 1
    return _clock


def version_of(v: Value) -> int:
    """The data version stamped on `v` when it was made or its `.data` last set."""
    return v._t


def data_version() -> int:
    """A count that grows each time any Value's `.data` is set (see `changed_since`)."""
    return _clock


def changed_since(values: Iterable[Value], version: int) -> Value | None:
    """The first of `values` whose `.data` was set after `data_version()` returned `version`,
    or None (compile's results use it to refuse a gradient at numbers no longer there)."""
    if version == _clock:
        return None
    return next((v for v in values if v._t > version), None)


def _check_unchanged(interior: Iterable[Value], who: str) -> None:
    """Raise if an input's `.data` was set after a node used it (its local derivatives,
    computed then, would be stale), or it was detached in place (`detach_`: no gradient may flow)."""
    for v in interior:
        for x in v.inputs:
            if x._t > v._t:
                name = f" {x.label!r}" if x.label else ""
                raise RuntimeError(f"{who}: the data of Value{name} (now {x._data!r}) was changed after "
                                   f"{v.op!r} used it (or the Value was detached in place: detach_()); run the "
                                   "forward pass again to differentiate at the new value")


def _run_hooks(hooks: tuple, root: Value, when: str) -> None:
    """Backward hooks observe (`hooks`: their handles); one that raises is reported as a warning
    and backward goes on."""
    for handle in hooks:
        hook = handle.hook
        try:
            hook(root, when)
        except Exception as e:  # noqa: BLE001 - an observer must not abort backward
            import warnings
            warnings.warn(f"backward hook {getattr(hook, '__qualname__', hook)!r} raised {type(e).__name__}: {e}; "
                          "ignored", RuntimeWarning, stacklevel=3)


def _flag(x: Any, who: str, what: str, none: bool = False) -> None:
    if not (isinstance(x, bool) or (none and x is None)):
        raise TypeError(f"{who}: {what} must be a bool{' or None' if none else ''}, got {type(x).__name__} {x!r:.60}")


def _checked_inputs(inputs: Value | Iterable[Value], who: str) -> tuple[Value, ...]:
    """`inputs` of grad or backward as a tuple: Values that require grad, at least one (as torch)."""
    try:
        inputs = (inputs,) if isinstance(inputs, Value) else tuple(inputs)
    except TypeError:
        raise TypeError(f"{who}: inputs must be a Value or an iterable of Values, "
                        f"got {type(inputs).__name__}") from None
    if not inputs:
        raise ValueError(f"{who}: inputs must hold at least one Value, got none")
    for i, x in enumerate(inputs):
        if type(x) is not Value:
            raise TypeError(f"{who}: inputs must be Values, got {type(x).__name__}")
        if not x._requires_grad:  # its derivative would come out 0 whatever the truth (d(c*c)/dc = 0)
            raise ValueError(f"{who}: input {i} ({_show(x)}) must have requires_grad=True to be differentiated "
                             "against, got requires_grad=False")
    return inputs


def _seed(gradient: Any, who: str, keep_value: bool) -> Any:
    """The gradient backward or grad starts from at the output: 1.0 for None; a one-item list
    or tuple is its item (torch's form for one output: [None] is None); a Value is kept with `keep_value`."""
    if isinstance(gradient, (list, tuple)) and len(gradient) == 1:
        gradient = gradient[0]
    if gradient is None:
        return 1.0
    if type(gradient) is Value and keep_value:
        return gradient
    g = _to_float(gradient, who)
    if g - g != 0.0:
        raise ValueError(f"{who}: gradient must be finite, got {g}")
    return g


# torch.autograd.grad's signature; its only_inputs (deprecated) and is_grads_batched are not taken
def grad(output: Value, inputs: Value | Iterable[Value], grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, *, allow_unused: bool | None = None, materialize_grads: bool = False) -> tuple:
    """d(output)/d(input) for each input, without touching any `.grad` (as `torch.autograd.grad`).

    With `create_graph=True` the gradients are Values with graphs of their own, so they can
    be differentiated again. `grad_outputs` is the gradient to start from at `output` (None: 1).
    As in PyTorch, an input with `requires_grad=False` is refused, and so is one `output` was
    not computed from unless `allow_unused=True` (its gradient is then None, or 0 with
    `materialize_grads=True`). `retain_graph` is taken for torch's signature: the graph is always kept.
    """
    inputs = _checked_inputs(inputs, "grad")
    if type(output) is not Value:
        raise TypeError(f"grad: output must be a Value, got {type(output).__name__}")
    _flag(retain_graph, "grad", "retain_graph", none=True)
    _flag(create_graph, "grad", "create_graph")
    _flag(allow_unused, "grad", "allow_unused", none=True)
    _flag(materialize_grads, "grad", "materialize_grads")
    if materialize_grads and allow_unused is False:
        raise ValueError("grad: materialize_grads=True needs allow_unused=True or not given, got allow_unused=False")
    return _gradients(output, inputs, grad_outputs, create_graph, allow_unused, materialize_grads, "grad")


def _gradients(output: Value, inputs: tuple, grad_outputs: Any, create_graph: bool, allow_unused: bool | None,
               materialize_grads: bool, who: str) -> tuple:
    """`grad`'s work on checked arguments, its errors naming `who` (grad, or backward with inputs=)."""
    if not output._requires_grad:
        raise RuntimeError(f"{who}: output does not require grad (it was computed inside no_grad(), or from no Value "
                           "with requires_grad=True)")
    if create_graph and not _GRAD_ENABLED.get():  # as torch's: the gradients' graph is recorded in any mode
        with _GradMode(True):
            return _gradients(output, inputs, grad_outputs, create_graph, allow_unused, materialize_grads, who)
    seed = _seed(grad_outputs, who, create_graph)
    if materialize_grads:
        allow_unused = True
    if not create_graph and _DECISIONS.get() is not None:
        return _observed_grad(output, inputs, seed, allow_unused, materialize_grads, who)
    grads: dict[Value, Any] = {output: seed}
    order = topological_order(output)
    interior = [v for v in order if v.inputs]
    if interior and min(map(_T, interior)) != _clock:
        _check_unchanged(interior, who)
    # As PyTorch, only nodes through which a gradient reaches an input take part: no rule is
    # run elsewhere (with create_graph, one undefined there, sqrt'(0), would raise for nothing).
    wanted, asked = set(inputs), set(inputs)  # (each requires grad: checked above)
    for v in interior:  # inputs before the nodes made from them
        if v not in wanted and not wanted.isdisjoint(v.inputs):
            if v._requires_grad:
                wanted.add(v)
            elif _DECISIONS.get() is None:  # (while observed, a no_grad result keeps its inputs)
                # an input's requires_grad set after v was made (no derivative recorded: raise), or
                # v's own set to False after (its derivatives are there: used, as backward does)
                _check_recorded(v, [x in wanted for x in v.inputs], who)
                wanted.add(v)
    for v in reversed(order):
        g = grads.get(v)
        if g is None or not v.inputs or v not in wanted:
            continue
        if type(g) is not Value and g == 0.0:  # passes nothing back, as in backward (not 0 × inf = nan);
            continue                           # a Value of 0 stays: its own derivative may not be 0
        needs = [x in wanted for x in v.inputs]
        if True not in needs:  # an input asked for, made from none
            continue
        if create_graph:
            try:
                local = v._op.local_grads(v.inputs, v, needs)  # type: ignore[union-attr]  # interior nodes have ops
            except (ArithmeticError, ValueError) as e:
                note = _call_note(v._op, v.inputs)
                raise ValueError(f"{who}: the derivative of {note} is not defined ({e})") from None
        else:
            local = v._local
            # a 0 for an input asked for may be a derivative never computed: its requires_grad set
            # after v was made (as torch, on the inputs one asks for; the others take theirs from them)
            if 0.0 in local and not asked.isdisjoint(v.inputs):
                _check_recorded(v, [d == 0.0 and x in asked for x, d in zip(v.inputs, local)], who)
        for x, d, need in zip(v.inputs, local, needs):
            if need:
                grads[x] = grads[x] + d * g if x in grads else d * g
    result = tuple(grads.get(x, 0.0) for x in inputs)
    if not all(x in grads for x in inputs):
        result = _unused(result, inputs, order, allow_unused, materialize_grads, who)
    if create_graph:
        result = tuple(r if type(r) is Value or r is None else Value(r, requires_grad=False) for r in result)
    for r in result:
        f = r.data if type(r) is Value else 0.0 if r is None else r
        if not math.isfinite(f):
            flowing = [v for v in reversed(order) if v in wanted and v.inputs and grads.get(v, 0.0) != 0.0]
            raise _not_finite(who, flowing, wanted.__contains__)
    return result


def _unused(result: tuple, inputs: tuple, order: list[Value], allow: bool | None, materialize: bool,
            who: str) -> tuple:
    """grad's result with None (0 with `materialize`) for each input the output was not computed
    from; raises for one unless `allow` (a gradient that reached none may be a mistake: torch's rule)."""
    reached = set(order)
    for i, x in enumerate(inputs):
        if x not in reached and not allow:
            raise ValueError(f"{who}: input {i} ({_show(x)}) was not used to compute the output; pass "
                             "allow_unused=True to get None as its gradient (and materialize_grads=True for 0)")
    return tuple(r if x in reached or materialize else None for x, r in zip(inputs, result))


def _check_recorded(v: Value, needs: list[bool], who: str) -> None:
    """Raise if an input of `v` that now needs a gradient did not when `v` was made (its
    requires_grad was set after): its derivative was never computed, stored as 0."""
    try:
        fresh = v._op.local_grads([x._data for x in v.inputs], v._data, needs)  # type: ignore[union-attr]
    except (ArithmeticError, ValueError):
        fresh = (math.nan,) * len(v.inputs)
    for i, (d, f, need) in enumerate(zip(v._local, fresh, needs)):
        if need and d == 0.0 and f != 0.0:
            raise _unrecorded_input(v, i, who)


def _unrecorded_input(v: Value, i: int, who: str) -> RuntimeError:
    return RuntimeError(f"{who}: input {i} ({_show(v.inputs[i])}) of {_call_note(v._op, v.inputs)} had "
                        "requires_grad=False when the op used it, so no gradient was recorded for it; set "
                        "requires_grad before computing with it (run the forward pass again)")


# The grad mode each open no_grad or enable_grad block restores on leaving, innermost last (per
# thread and task, so one such object may be entered again, nested, and shared).
_OUTER_MODES: contextvars.ContextVar[tuple] = contextvars.ContextVar("microgradnn_outer_grad_modes", default=())


class _GradMode:
    """What `no_grad()` and `enable_grad()` return: a context manager that may be entered again, and a decorator."""

    def __init__(self, mode: bool) -> None:
        self.mode = mode

    def __enter__(self) -> None:
        self._prev = _GRAD_ENABLED.get()
        _OUTER_MODES.set(_OUTER_MODES.get() + (self._prev,))
        _GRAD_ENABLED.set(self.mode)

    def __exit__(self, *exc: object) -> None:
        outer = _OUTER_MODES.get()
        if not outer:  # left in another task than it was entered in (a generator's block): torch's rule
            _GRAD_ENABLED.set(self._prev)
            return
        _OUTER_MODES.set(outer[:-1])
        _GRAD_ENABLED.set(outer[-1])

    def __call__(self, fn: Callable) -> Callable:
        return _in_mode(fn, self.mode, "enable_grad" if self.mode else "no_grad")


def _in_mode(fn: Callable, mode: bool, who: str) -> Callable:
    """`fn` run with grad mode `mode`, the caller's mode put back after (each resumption of a
    generator function's body, as torch's decorators)."""
    if not callable(fn):
        raise TypeError(f"{who}: decorates a function, got {type(fn).__name__} {fn!r:.60}")
    if inspect.isgeneratorfunction(fn):
        return _generator_in_mode(fn, mode)
    if inspect.isasyncgenfunction(fn):
        raise TypeError(f"{who}: cannot decorate the async generator function {fn.__qualname__}; use "
                        f"`with {'set_grad_enabled(mode)' if who == 'set_grad_enabled' else who + '()'}:` in its body "
                        "around the code that makes Values")
    if inspect.iscoroutinefunction(fn):  # calling it only makes the coroutine: its body runs when awaited
        @functools.wraps(fn)
        async def awaited(*args, **kwargs):
            with _GradMode(mode):
                return await fn(*args, **kwargs)
        return awaited

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True  # pytest shows an error at the caller's line and in fn, not here
        with _GradMode(mode):
            return fn(*args, **kwargs)
    return wrapper


def _generator_in_mode(fn: Callable, mode: bool) -> Callable:
    """A generator function's wrapper that runs each resumption of its body in grad mode `mode`
    (calling it only makes the generator: wrapping that call alone would leave the body as it was)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        gen = fn(*args, **kwargs)
        resume, arg = gen.send, None
        while True:
            with _GradMode(mode):
                try:
                    item = resume(arg)
                except StopIteration as stop:
                    return stop.value
            try:
                arg, resume = (yield item), gen.send
            except GeneratorExit:
                with _GradMode(mode):
                    gen.close()
                raise
            except BaseException as e:  # thrown into this generator: into fn's
                arg, resume = e, gen.throw
    return wrapper


def no_grad(fn: Callable | None = None) -> Any:
    """Record no graph inside: `with no_grad():`, `@no_grad()` or `@no_grad` (thread- and task-safe;
    a decorated generator function runs without grad each time it resumes, as in PyTorch, and a
    coroutine function's body when awaited)."""
    return _GradMode(False) if fn is None else _in_mode(fn, False, "no_grad")


def enable_grad(fn: Callable | None = None) -> Any:
    """Record the graph again inside `no_grad`: `with enable_grad():`, `@enable_grad()` or
    `@enable_grad`, as torch's (thread- and task-safe, as `no_grad`)."""
    return _GradMode(True) if fn is None else _in_mode(fn, True, "enable_grad")


class set_grad_enabled(_GradMode):  # noqa: N801  (torch's name: a class there too)
    """Turn graph recording on or off, as torch's: `set_grad_enabled(False)` sets the mode at once
    (for this thread or task); `with set_grad_enabled(mode):` puts back the mode from before the
    call on leaving; `@set_grad_enabled(mode)` runs the function in that mode, and leaves the mode
    as it was."""

    def __init__(self, mode: bool) -> None:
        _flag(mode, "set_grad_enabled", "mode")
        super().__init__(mode)
        self.prev = _GRAD_ENABLED.get()
        _GRAD_ENABLED.set(mode)

    def __enter__(self) -> None:
        _GRAD_ENABLED.set(self.mode)

    def __exit__(self, *exc: object) -> None:
        _GRAD_ENABLED.set(self.prev)

    def __call__(self, fn: Callable) -> Callable:
        _GRAD_ENABLED.set(self.prev)  # decorating is no plain call: the mode stays as it was
        return _in_mode(fn, self.mode, "set_grad_enabled")

    def __repr__(self) -> str:
        return f"microgradnn.set_grad_enabled(mode={self.mode})"


def is_grad_enabled() -> bool:
    """Whether ops record the graph: False inside `no_grad()` or after `set_grad_enabled(False)`."""
    return _GRAD_ENABLED.get()


class RemovableHandle:
    """Returned by `register_backward_hook`: `remove()`, or leave a `with` block, to unregister."""

    def __init__(self, hook: Callable) -> None:
        self.hook = hook

    def remove(self) -> None:
        """Stop calling the hook for this registration (doing it twice is harmless; the same hook
        registered again stays, as torch's handles)."""
        _BACKWARD_HOOKS.set(tuple(h for h in _BACKWARD_HOOKS.get() if h is not self))

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def register_backward_hook(hook: Callable[[Value, str], None]) -> RemovableHandle:
    """Call `hook(root, "before")` and `hook(root, "after")` around every `backward()` run in
    this thread or asyncio task (a context variable), until the handle is removed."""
    if not callable(hook):
        raise TypeError(f"register_backward_hook: hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(hook)
    _BACKWARD_HOOKS.set(_BACKWARD_HOOKS.get() + (handle,))
    return handle


# ---- decisions: where a Value's number leaves the graph ---------------------------------
# `compile` must see every place user code turns a Value into a Python number or bool (a
# comparison, float(), .item(), .data, int(), an index): a graph recorded for one sample is
# valid for another only if each of those comes out the same. While `observe_decisions` runs,
# Value has methods that report them; outside it, Value has its plain ones and pays nothing.

_DECISIONS: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("microgradnn_decisions", default=None)
_DATA_SLOT = Value.__dict__["_data"]  # the slot behind `data`: read without being noted


def _report(kind: str, a: Any, b: Any, answer: Any) -> Any:
    observer = _DECISIONS.get()
    return answer if observer is None else observer[0](kind, a, b, answer)


def _refused(op: Op, args: Sequence) -> None:
    """An op refusing the numbers of Values, about to raise: while observed, a decision ("raises",
    the inputs, the op), as fn may catch the error and take another path."""
    if _DECISIONS.get() is not None and args and all(type(a) is Value for a in args):
        _report("raises", tuple(args), op, True)


def _observed_comparison(kind: str, compare: Callable) -> Callable:
    def method(self, other):
        if type(other) is not Value and not isinstance(other, (int, float)):
            try:
                other = float(other)
            except (TypeError, ValueError):
                return NotImplemented
        return _report(kind, self, other, compare(_DATA_SLOT.__get__(self), _data(other)))
    method.__name__ = compare.__name__
    return method


def _observed_equality(kind: str, compare: Callable, identity: Callable) -> Callable:
    """`==` while observed: a Value that stands for a number of the sample (see
    `observe_decisions`) compares numbers with a number or another such Value, noted, as the
    plain call compares the sample's numbers; any other Value keeps identity."""
    def method(self, other):
        observer = _DECISIONS.get()
        if observer is None or not observer[2](self):
            return identity(self, other)
        if type(other) is Value:
            if not observer[2](other):
                return identity(self, other)
            _held_exactly(self, observer, f"compares with {kind}")
            _held_exactly(other, observer, f"compares with {kind}")
            return _report(kind, self, other, compare(_DATA_SLOT.__get__(self), _DATA_SLOT.__get__(other)))
        if not isinstance(other, numbers.Real):
            return identity(self, other)
        _held_exactly(self, observer, f"compares with {kind}")
        other = other if type(other) is int else float(other)  # an int compared exactly, as a number is
        return _report(kind, self, other, compare(_DATA_SLOT.__get__(self), other))
    return method


def _observed_bool(self) -> bool:
    """`if v:` while observed: the number's truth, noted as `v != 0` (a decision, as `v < 0`)."""
    return _report("!=", self, 0.0, _DATA_SLOT.__get__(self) != 0.0)


def _observed_hash(self) -> int:
    """hash(v) while observed: a Value standing for a sample's number, hashed by user code (a
    dict key, a set member), hashes as that number does (noted: the key decides on the number,
    and `==` then compares numbers); any other Value, and any hash the engine takes, by identity."""
    observer = _DECISIONS.get()
    if observer is None or sys._getframe(1).f_globals.get("__name__") in observer[1] or not observer[2](self):
        return object.__hash__(self)
    return hash(_plain_number(self, observer, "hash", "hashes (a dict key, a set member)"))


def _shown_number(self) -> int | float | None:
    """What str(), repr() and format() show of a Value standing for a sample's number, asked by
    user code: the number as the plain call has it, an int or a float (noted: the text decides
    on the number); None for any other Value, and for the library's own calls."""
    observer = _DECISIONS.get()
    if observer is None or sys._getframe(2).f_globals.get("__name__") in observer[1] or not observer[2](self):
        return None
    return _plain_number(self, observer, "text", "shows as text (str(), repr(), an f-string)")


def _plain_number(self: Value, observer: tuple, kind: str, what: str) -> int | float:
    """The number a sample's Value is in the plain call, reported as decision `kind` (an int
    there beyond 2**53 refused: see `_held_exactly`)."""
    x = _report(kind, self, None, _DATA_SLOT.__get__(self))
    if observer[3](self):
        return x
    _held_exactly(self, observer, what)
    return int(x)


EXACT_INT = 2 ** 53  # every int up to this size is exactly a float; 2**53 + 1 is not


def _held_exactly(v: Value, observer: tuple, what: str) -> None:
    """Refuse a sample's Value that is an int beyond 2**53 in the plain call: compile holds it as
    a float, which is another int there, so its hash, text or == would differ."""
    x = _DATA_SLOT.__get__(v)
    if observer[3](v) or -EXACT_INT <= x <= EXACT_INT:
        return
    message = (f"compile: fn {what} a number computed from the sample's ints that is an int beyond 2**53 "
               f"in the plain call ({fmt(x)}); compile holds it as a float, which is another int there, so "
               f"the answer could differ (compute it on the samples before compiling, or use the scalar loop)")
    _report("refused", v, None, message)  # so the recording fails even if fn catches the error
    raise ValueError(message)


def _observed_repr(self) -> str:
    """repr(), str() and print() while observed: a sample's number shows as in the plain call."""
    x = _shown_number(self)
    return _PLAIN_REPR(self) if x is None else repr(x)


def _observed_format(self, spec: str) -> str:
    """f-strings and format() while observed: a sample's number formats as in the plain call."""
    x = _shown_number(self)
    return _PLAIN_FORMAT(self, spec) if x is None else format(x, spec)


def _not_recorded(v: Value, what: str, symbol: str) -> str | None:
    """The error for fn doing what compile cannot record to a Value standing for a sample's
    number (the plain call has a number), reported so the recording fails even if fn catches it."""
    observer = _DECISIONS.get()
    if observer is None or not observer[2](v):
        return None
    message = (f"compile: fn {what} one of the sample's numbers, which compile turned into a Value while "
               f"recording; {symbol} is not recorded (compute it on the samples before compiling, or use the "
               f"scalar loop)")
    _report("refused", v, None, message)
    return message


def _unrecorded(symbol: str, plain: str | None = None) -> Callable:
    """`//`, `%`, divmod, round(), math.trunc(), the bitwise ops while observed: not ops of the
    engine, so a sample's number gets an error saying why; another Value the plain one (`plain`,
    the error of a one-operand call, else NotImplemented: Python's own)."""
    def method(self, *args):
        message = _not_recorded(self, f"applies {symbol} to", symbol)
        if message is not None:
            raise TypeError(message)
        if plain is not None:
            raise TypeError(plain)
        return NotImplemented
    return method


def _unrecorded_attribute(name: str) -> property:
    """A float's or int's attribute (`.real`, `.is_integer`, ...) while observed: a sample's number
    is refused saying why, any other Value has none, as without the observer."""
    def get(self):
        message = _not_recorded(self, f"reads .{name} of", f".{name}")
        raise AttributeError(message or f"'Value' object has no attribute '{name}'", name=name, obj=self)
    return property(get)


def _no_grad_node(op: Op, args: Sequence[Value], data: float) -> Value:
    """A no_grad result while observed: where the scalar engine makes a bare leaf holding this
    sample's number, keep the inputs (no gradient flows through the node: it does not require
    grad), so a replay computes it for every sample."""
    return _node(data, op, tuple(args), (0.0,) * len(args), 1 + max([a._depth for a in args]))


# detach() while observed: the same, an identity through which no gradient flows (not a row
# of the op table: it exists only in recordings)
_DETACHED = _UnaryOp("detach", lambda a: a, [lambda a, out: 0.0], array_forward=lambda a: a + 0.0)


def _observed_detach(self) -> Value:
    if _DECISIONS.get() is None:
        return Value(_DATA_SLOT.__get__(self), self.label, requires_grad=False)
    v = _node(_DATA_SLOT.__get__(self), _DETACHED, (self,), (0.0,), self._depth + 1)
    v.label = self.label
    return v


# The plain methods the observed ones call, bound here: another thread may leave the last
# observation, putting the plain methods back, while this one is still inside an observed method.
_PLAIN_INIT = Value.__init__
_PLAIN_DATA = Value.__dict__["data"]
_PLAIN_NODE = _node
_PLAIN_CONSTANT = _constant
_PLAIN_REPR = Value.__repr__
_PLAIN_FORMAT = Value.__format__


def _observed_node(data: float, op: Op | None = None, inputs: tuple = (), local: tuple = (), depth: int = 0,
                   requires_grad: bool = False) -> Value:
    """An op's node while observed, reported as "node": one whose result fn drops (a check,
    `try: log(x)`) is still an op the scalar engine runs, and may refuse, for every sample."""
    v = _PLAIN_NODE(data, op, inputs, local, depth, requires_grad)
    if inputs:
        _report("node", v, None, None)
    return v


def _observed_constant(x: Any, where: str) -> Value:
    """A plain number an op lifts into the graph while observed, reported as "constant" (the
    plain call keeps an int an int: `x + 1`, `2 * x`; and it is no Value of the user's)."""
    v = _PLAIN_CONSTANT(x, where)
    _report("constant", v, None, x)
    return v


def _observed_init(self, *args, **kwargs) -> None:
    """Value() while observed: a Value of the user's own, reported as "made" (never a number);
    `Value(v)` of a Value reads v's number, a "float" decision as `float(v)` is."""
    data = args[0] if args else kwargs.get("data")
    if type(data) is Value:
        _report("float", data, None, _DATA_SLOT.__get__(data))
    _PLAIN_INIT(self, *args, **kwargs)
    _report("made", self, None, None)


def _observed_grad(output: Value, inputs: tuple, seed: float, allow_unused: bool | None, materialize: bool,
                   who: str) -> tuple:
    """grad() without create_graph while observed: plain floats that replay cannot compute, so
    each is computed as a Value (create_graph) and reported as a "grad" decision."""
    grads = _gradients(output, inputs, seed, True, allow_unused, materialize, who)
    return tuple(None if g is None else _report("grad", g, None, _DATA_SLOT.__get__(g)) for g in grads)


class _ObservedData:
    """`Value.data` while observed: reads by user code are decisions; the engine's and those
    of the observer's own modules are not."""

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        x = _DATA_SLOT.__get__(obj)
        observer = _DECISIONS.get()
        if observer is not None and sys._getframe(1).f_globals.get("__name__") not in observer[1]:
            observer[0]("float", obj, None, x)
        return x

    def __set__(self, obj, value):
        _PLAIN_DATA.__set__(obj, value)  # the plain setter: checks, and stamps the Value


def _observed_number(self):
    return _report("float", self, None, _DATA_SLOT.__get__(self))


def _observed_int(self):
    if _DECISIONS.get() is None:
        raise TypeError("int() argument must be a string, a bytes-like object or a real number, not 'Value'")
    return _report("int", self, None, int(_DATA_SLOT.__get__(self)))


def _observed_index(self):
    x = _DATA_SLOT.__get__(self)
    if _DECISIONS.get() is None or x != int(x):
        raise TypeError("'Value' object cannot be interpreted as an integer")
    if is_sample_float(self):  # the scalar loop has a float here, which is no index
        raise TypeError(f"compile: fn uses one of the sample's numbers, {x!r}, as an index, but it is a float "
                        f"where fn runs without compile (list indices must be integers, not float): give the "
                        f"sample's indices as ints")
    return _report("index", self, None, int(x))


def is_sample_float(v: Value) -> bool:
    """True while `compile` records if v stands for a number of the sample that is a float (not
    an int) where fn runs without compile: an index there is refused, so it must be here too."""
    observer = _DECISIONS.get()
    return observer is not None and observer[3](v)


_OBSERVED_METHODS = {
    "data": _ObservedData(), "__float__": _observed_number, "item": _observed_number,
    "__int__": _observed_int, "__index__": _observed_index,
    "__lt__": _observed_comparison("<", operator.lt), "__le__": _observed_comparison("<=", operator.le),
    "__gt__": _observed_comparison(">", operator.gt), "__ge__": _observed_comparison(">=", operator.ge),
    "__eq__": _observed_equality("==", operator.eq, operator.is_),
    "__ne__": _observed_equality("!=", operator.ne, operator.is_not),
    "__bool__": _observed_bool, "__hash__": _observed_hash, "__repr__": _observed_repr,
    "__format__": _observed_format, "detach": _observed_detach, "__init__": _observed_init,
    **{name: _unrecorded(symbol) for name, symbol in (
        ("__floordiv__", "//"), ("__rfloordiv__", "//"), ("__mod__", "%"), ("__rmod__", "%"),
        ("__divmod__", "divmod()"), ("__rdivmod__", "divmod()"), ("__lshift__", "<<"), ("__rlshift__", "<<"),
        ("__rshift__", ">>"), ("__rrshift__", ">>"), ("__and__", "&"), ("__rand__", "&"), ("__or__", "|"),
        ("__ror__", "|"), ("__xor__", "^"), ("__rxor__", "^"))},
    "__round__": _unrecorded("round()", "type Value doesn't define __round__ method"),
    "__trunc__": _unrecorded("math.trunc()", "type Value doesn't define __trunc__ method"),
    "__invert__": _unrecorded("~", "bad operand type for unary ~: 'Value'"),
    **{name: _unrecorded_attribute(name) for name in (
        "real", "imag", "conjugate", "numerator", "denominator", "as_integer_ratio", "is_integer", "hex",
        "bit_length", "bit_count", "to_bytes")},
}
_observers = 0
_observers_lock = threading.Lock()
_plain_methods: dict[str, Any] = {}


@contextlib.contextmanager
def observe_decisions(note: Callable[[str, Value, Any, Any], Any], internal: Iterable[str] = (),
                      number: Callable[[Value], bool] = lambda v: False,
                      inexact: Callable[[Value], bool] = lambda v: False) -> Iterator[None]:
    """Inside the block, in this thread or task, call `note(kind, a, b, answer)` (which returns
    the answer) for every decision made on a Value: kind is "<", "<=", ">", ">=", "==", "!="
    (a compared with b), or "float" (float(), .item(), .data), "int", "index", "hash" or "text"
    (str(), repr(), format()) of a, or
    "grad" (a gradient that `grad()` returns as a float), or "raises" (op b refused the numbers
    of the Values a, and is about to raise); "made" reports a Value made by `Value()` (the
    user's own; not a decision), "node" a node made by an op (not a decision either),
    "constant" a number an op lifted into the graph (answer: the number as given; no decision), and
    "refused" (answer: the error's message) something compile cannot record, about to raise.
    Reads of `.data` (and hash(), str()) from the modules named in `internal` (and the engine)
    are not noted.
    `number(v)` is True for a Value that is a plain number where fn is called without the
    observer (it stands for a sample's number): `==`, `!=`, bool(), hash() and str() treat it
    as one; `inexact(v)` is True for such a Value that is a float there, not an int (no index,
    see `is_sample_float`; str() shows it as a float).
    Inside the block no_grad results and detach() keep their inputs, with no gradient."""
    global _observers
    with _observers_lock:
        if _observers == 0:
            for name, method in _OBSERVED_METHODS.items():
                _plain_methods[name] = Value.__dict__.get(name)
                setattr(Value, name, method)
            globals()["_node"] = _observed_node
            globals()["_constant"] = _observed_constant
        _observers += 1
    token = _DECISIONS.set((note, frozenset({__name__, *internal}), number, inexact))
    try:
        yield
    finally:
        _DECISIONS.reset(token)
        with _observers_lock:
            _observers -= 1
            if _observers == 0:
                for name, plain in _plain_methods.items():
                    if plain is None:
                        delattr(Value, name)
                    else:
                        setattr(Value, name, plain)
                _plain_methods.clear()
                globals()["_node"] = _PLAIN_NODE
                globals()["_constant"] = _PLAIN_CONSTANT


# ---- the graph as text -----------------------------------------------------------------

def fmt(x: float) -> str:
    """Numbers as reprs, trees and pictures show them: 4 significant digits (a `.grad` set to
    None, or to what backward will refuse, as it is)."""
    try:
        return f"{x:.4g}"
    except OverflowError:  # an int beyond float's range
        return f"an int of about {_digits(x)} digits"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return repr(x)[:60]


_TREE_INDENT = 40


def tree(root: Value, view: str = "both") -> str:
    """The graph as indented text, output first; a node already shown is referred to by name."""
    if view not in ("forward", "backward", "both"):
        raise ValueError(f"tree: view must be 'forward', 'backward' or 'both', got {view!r}")
    _check_root(root, "tree")
    names: dict[int, str] = {}  # numbered in the order they are printed
    lines, stack = [], [(root, 0)]
    while stack:
        v, depth = stack.pop()
        what = f"{v.op}" if v.op else "leaf"
        label = f" {v.label!r}" if v.label else ""
        # indentation stops growing at _TREE_INDENT levels (a long chain would cost depth**2
        # characters); deeper lines say their level instead
        indent = "  " * depth if depth <= _TREE_INDENT else f"{'  ' * _TREE_INDENT}[level {depth}] "
        if id(v) in names:
            lines.append(f"{indent}{names[id(v)]}{label} (shown above)")
            continue
        name = names[id(v)] = f"#{len(names)}"
        numbers = f"data={fmt(v.data)}" + (f" grad={fmt(v.grad)}" if view != "forward" else "")
        lines.append(f"{indent}{name}{label} {what} {numbers}")
        stack.extend((x, depth + 1) for x in reversed(v.inputs))
    return "\n".join(lines)


# ---- the op table ----------------------------------------------------------------------

_OPS: dict[str, Op] = {}
_BUILTIN: set[str] = set()


def _make_op(name: str, forward: Callable, derivatives: Sequence[Callable], **fields) -> Op:
    cls = Op if fields.get("groups") else {1: _UnaryOp, 2: _BinaryOp}.get(len(derivatives), Op)
    return cls(name, forward, derivatives, **fields)


def define_op(name: str, forward: Callable[..., float], *derivatives: Callable,
              array_forward: Callable | None = None, kinks: Callable | None = None) -> Op:
    """Add an op to the table and return it; calling it applies it to Values or numbers.

    `forward(*xs)` maps floats to a float; derivative i maps `(*xs, out)` to d(out)/d(xs[i]).
    `array_forward` runs the op on numpy arrays, so `compile` replays it in one call;
    `kinks(*xs)` is True where it has no derivative (gradient checks then accept any
    one-sided derivative there, e.g. `kinks=lambda x: x == 0.0` for a hinge).
    Example: `cube = define_op("cube", lambda x: x**3, lambda x, out: 3 * x**2, array_forward=lambda x: x**3)`.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"define_op: name must be a non-empty str, got {name!r}")
    if name in _BUILTIN:
        raise ValueError(f"define_op: {name!r} is a built-in op and cannot be redefined")
    if not callable(forward) or not derivatives or not all(map(callable, derivatives)):
        raise TypeError(f"define_op({name!r}): needs a callable forward and one callable derivative per input")
    for field, f in (("array_forward", array_forward), ("kinks", kinks)):
        if f is not None and not callable(f):
            raise TypeError(f"define_op({name!r}): {field} must be a callable taking the op's inputs, got {f!r}")
    n = len(derivatives)
    _check_takes(forward, n, f"define_op({name!r}): forward", f"{n} input(s), one per derivative rule")
    for i, rule in enumerate(derivatives):
        _check_takes(rule, n + 1, f"define_op({name!r}): derivative rule {i}", f"(*inputs, out): {n + 1} arguments")
    op = _make_op(name, forward, derivatives, array_forward=array_forward, kinks=kinks)
    op.__class__ = _FIRST_USE[type(op)]  # checks what its rules return once, then is a plain op
    _OPS[name] = op
    return op


def _check_takes(f: Callable, n: int, who: str, expected: str) -> None:
    signature = _cannot_take(f, n)
    if signature is not None:
        raise TypeError(f"{who} must take {expected}; its signature is {signature}")


def _cannot_take(f: Callable, n: int) -> inspect.Signature | None:
    """f's signature if f cannot be called with n positional arguments, else None (also when
    it has none to read, as some builtins)."""
    try:
        signature = inspect.signature(f)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*range(n))
    except TypeError:
        return signature
    return None


def _first_use(cls: type) -> type:
    """`cls` whose first call that runs the derivative rules checks they returned numbers,
    then turns the op back into a plain `cls` (so later calls cost nothing extra)."""
    def __call__(self, *args, **kwargs):
        out = cls.__call__(self, *args, **kwargs)
        if type(out) is Value and out._requires_grad:  # some rule ran
            for i, d in enumerate(out._local):
                if type(d) is not float and (isinstance(d, bool) or not isinstance(d, (numbers.Real, Value))):
                    raise TypeError(f"{self.name}: derivative rule {i} returned "
                                    f"{type(d).__name__} {d!r:.60}; rules must return a number (a float for floats)")
            self.__class__ = cls
        return out
    return type(cls.__name__, (cls,), {"__call__": __call__, "__module__": __name__})


_FIRST_USE = {cls: _first_use(cls) for cls in (Op, _UnaryOp, _BinaryOp)}


def get_op(name: str) -> Op:
    """The op table's row called `name`."""
    try:
        return _OPS[name]
    except KeyError:
        raise KeyError(f"no op named {name!r}; known ops: {', '.join(sorted(_OPS))}") from None


def ops() -> dict[str, Op]:
    """The op table: every row by name (built-ins, then define_op's), in definition order."""
    return dict(_OPS)


def _row(name: str, forward: Callable, *derivatives: Callable, **fields) -> Op:
    _BUILTIN.add(name)
    op = _OPS[name] = _make_op(name, forward, derivatives, **fields)
    op.builtin = True
    return op


def _np():
    """numpy, imported on first use: only arrays (replay) need it, never the engine itself."""
    import numpy
    return numpy


def _div(a: float, b: float) -> float:
    if b == 0.0:
        raise ZeroDivisionError("division by zero")
    return a / b


def _pow(a: float, b: float) -> float:
    if a == 0.0 and b < 0.0:
        raise ValueError("0 cannot be raised to a negative power")
    if a < 0.0 and b != int(b):
        raise ValueError("a negative base needs an integer exponent")
    return a ** b


def _log(a: float) -> float:
    if a <= 0.0:
        raise ValueError("input must be > 0")
    return math.log(a)


def _log1p(a: float) -> float:
    if a <= -1.0:
        raise ValueError("input must be > -1")
    return math.log1p(a)


def _sqrt(a: float) -> float:
    if a < 0.0:
        raise ValueError("input must be >= 0")
    return math.sqrt(a)


def _tanh_grad(a, out):
    """tanh's derivative (1 - out)(1 + out), exact near |out| = 1; for a Value (create_graph) the
    tanh_grad node, whose own derivative -2 out is exact where the product's graph, (1 - out) -
    (1 + out), cancels (out near 0: the second derivative at 1e-20 was 0)."""
    return (1.0 - out) * (1.0 + out) if type(out) is not Value else tanh_grad(out)


def _sigmoid(a: float) -> float:
    if a >= 0.0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


def _softplus(a: float) -> float:
    return max(a, 0.0) + math.log1p(math.exp(-abs(a)))


def _pow_base_grad(a, b, out):
    """d(a**b)/da = b * a**(b - 1); at b = 0 it is 0 (a**0 is 1 for every a), also where a**-1
    is not a float (a = 0, or 5e-324: 0 * inf); PyTorch gives 0 too."""
    if type(b) is float:
        return 0.0 if b == 0.0 else b * a ** (b - 1)
    if type(b) is Value:  # create_graph: keep the graph where d/db of this is wanted and defined
        return 0.0 if b._data == 0.0 and (not b._requires_grad or _data(a) == 0.0) else b * a ** (b - 1)
    np = _np()  # arrays (replay): as on floats
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(b == 0.0, 0.0, b * a ** (b - 1))


def _pow_exponent_grad(a, b, out):
    """d(a**b)/db = a**b * log(a), defined for a > 0 (and 0 at a == 0)."""
    if a > 0:
        return out * log(a)
    if a == 0 or _data(a) == 0.0:
        return 0.0
    raise ValueError("d(a**b)/db needs a >= 0")


def _dot(*args: float) -> float:
    """sum(w_i * x_i) + b for args (w_0..w_n-1, x_0..x_n-1, b)."""
    return _weighted_sum(args, args[len(args) // 2:-1], args[-1])  # zip stops after the n weights


def _weighted_sum(w: Sequence, x: Sequence, b: Any) -> Any:
    """b + w_0 * x_0 + w_1 * x_1 + ..., in that order (the unfused neuron's), over zip(w, x)."""
    total = b
    for wi, xi in zip(w, x):
        total = total + wi * xi  # not +=: on arrays (replay) that would write into b
    return total


def _dot_groups(arity: int) -> tuple | None:
    """dot's inputs: n w's, n x's, then b."""
    return ((arity - 1) // 2, (arity - 1) // 2, 1) if arity % 2 == 1 and arity >= 3 else None


def _dot_grads(*args):
    """dot's rules for every input at once: (x_0..x_n-1, w_0..w_n-1, 1) (args end with out)."""
    n = (len(args) - 2) // 2
    return (*args[n:2 * n], *args[:n], 1.0)


def _logsumexp(*xs: float) -> float:
    m = max(xs)
    return m + math.log(math.fsum(math.exp(x - m) for x in xs))


def _exp_minus(x, out):
    """exp(x - out), logsumexp's derivative for input x. x - out may be -inf (x = -1e308,
    out = 1e308), which the exp op refuses: its exp, 0, is taken directly then."""
    if type(out) is float:
        return math.exp(x - out)
    if type(out) is Value and _data(x) - out._data == -math.inf:
        return 0.0
    return exp(x - out)


def _logsumexp_grads(*a):
    """logsumexp's rules written out for all inputs: exp(x_k - out) (a ends with out)."""
    out = a[-1]
    if type(out) is float:  # the usual case, in one comprehension
        return tuple([math.exp(x - out) for x in a[:-1]])
    return tuple([_exp_minus(x, out) for x in a[:-1]])


def _logsumexp_array(*xs):
    """_logsumexp on arrays, by the same formula (numpy's logaddexp rounds otherwise: 4e-18 for
    logsumexp(0, -40), where the formula, as PyTorch's, gives 0)."""
    np = _np()
    stacked = np.stack(np.broadcast_arrays(*xs))
    m = stacked.max(axis=0)
    return m + np.log(np.exp(stacked - m).sum(axis=0))


def _at_zero(a, *rest) -> bool:
    return a == 0.0


# Each row: name, float forward, one derivative per input as a function of (*inputs, out).
# Relu, abs and leaky_relu write their derivatives without `if`, so each rule runs unchanged
# on floats, on Values (create_graph) and on arrays (replay).
add = _row("+", operator.add, lambda a, b, out: 1.0, lambda a, b, out: 1.0,
           array_forward=operator.add, infix=True)
sub = _row("-", operator.sub, lambda a, b, out: 1.0, lambda a, b, out: -1.0,
           array_forward=operator.sub, infix=True)
mul = _row("*", operator.mul, lambda a, b, out: b, lambda a, b, out: a,
           array_forward=operator.mul, infix=True)
# d/db = -a / b**2, computed as -(a / b) / b (as PyTorch): b * b underflows (b = 1e-158: a wrong
# number) or overflows (b = 1e300: 0) where the derivative itself is an ordinary float
div = _row("/", _div, lambda a, b, out: 1.0 / b, lambda a, b, out: -out / b,
           array_forward=operator.truediv, infix=True)
pow_ = _row("**", _pow, _pow_base_grad, _pow_exponent_grad,
            array_forward=lambda a, b: _np().power(a, b), infix=True)
neg = _row("neg", operator.neg, lambda a, out: -1.0, array_forward=operator.neg)
abs_ = _row("abs", abs, lambda a, out: (a > 0) * 1.0 - (a < 0) * 1.0, array_forward=abs, kinks=_at_zero)
exp = _row("exp", math.exp, lambda a, out: out, array_forward=lambda a: _np().exp(a))
log = _row("log", _log, lambda a, out: 1.0 / a, array_forward=lambda a: _np().log(a))
log1p = _row("log1p", _log1p, lambda a, out: 1.0 / (1.0 + a), array_forward=lambda a: _np().log1p(a))
sqrt = _row("sqrt", _sqrt, lambda a, out: 0.5 / out, array_forward=lambda a: _np().sqrt(a))
tanh = _row("tanh", math.tanh, _tanh_grad, array_forward=lambda a: _np().tanh(a))
# tanh_grad(o) = (1 - o)(1 + o), tanh's derivative as a function of its output o: the node
# tanh's rule makes under create_graph (as torch's tanh_backward), so second derivatives are exact.
tanh_grad = _row("tanh_grad", lambda o: (1.0 - o) * (1.0 + o), lambda o, out: -2.0 * o,
                 array_forward=lambda o: (1.0 - o) * (1.0 + o))
sigmoid = _row("sigmoid", _sigmoid, lambda a, out: out * (1.0 - out),
               array_forward=lambda a: _np().exp(-_np().logaddexp(0.0, -a)))
relu = _row("relu", lambda a: a if a > 0.0 else 0.0, lambda a, out: (a > 0) * 1.0,
            array_forward=lambda a: _np().maximum(a, 0.0), kinks=_at_zero)
_leaky_relu = _row("leaky_relu", lambda a, s: a if a > 0.0 else a * s,
                   lambda a, s, out: (a > 0) * 1.0 + (a <= 0) * s, lambda a, s, out: (a <= 0) * a,
                   array_forward=lambda a, s: _np().where(a > 0, a, a * s), kinks=_at_zero)
sin = _row("sin", math.sin, lambda a, out: cos(a), array_forward=lambda a: _np().sin(a))  # type: ignore[has-type]
cos = _row("cos", math.cos, lambda a, out: -sin(a), array_forward=lambda a: _np().cos(a))
softplus = _row("softplus", _softplus, lambda a, out: sigmoid(a),
                array_forward=lambda a: _np().logaddexp(0.0, a))
# dot(w, x, b) = sum(w_i * x_i) + b, the neuron's pre-activation as one node of 2n + 1 inputs;
# a variadic row: one rule per group of inputs, rule(k, n, *inputs, out) for the k-th of n.
_DOT = _row("dot", _dot,
            lambda k, n, *a: a[n + k],  # d/dw_k = x_k
            lambda k, n, *a: a[k],      # d/dx_k = w_k
            lambda k, n, *a: 1.0,       # d/db = 1
            groups=_dot_groups, unrolled=_dot_grads, array_forward=_dot, symbol="Σ w·x + b")
_DOT_RULES = _DOT.derivatives
# logsumexp(xs) = log(sum(exp(x_i))), computed without overflow; d/dx_k = softmax_k = exp(x_k - out).
# The unrolled form computes all n derivatives in one pass (the rule, called per input with
# all n inputs, would take n**2 steps).
_LOGSUMEXP = _row("logsumexp", _logsumexp, lambda k, n, *a: _exp_minus(a[k], a[-1]), groups=lambda arity: (arity,),
                  unrolled=_logsumexp_grads,
                  array_forward=_logsumexp_array)
# is_class(t, k) = 1 where the target t is class k, else 0: cross_entropy uses it to pick a
# target Value's log-probability inside the graph (no gradient flows into targets).
is_class = _row("is_class", lambda t, k: 1.0 if t == k else 0.0, lambda t, k, out: 0.0, lambda t, k, out: 0.0,
                array_forward=lambda t, k: (t == k) * 1.0)


def _index_of(i: float, n: int) -> int:
    """i as an index of n options (take's and cross_entropy's), or the error naming the range."""
    if i != int(i) or not 0 <= i < n:
        raise ValueError(f"index must be an integer in 0..{n - 1}, got {i}")
    return int(i)


def _valid_index(i, n: int):
    """Where the array i holds an index of n options: `_index_of`'s rule, entry by entry."""
    np = _np()
    return (i == np.trunc(i)) & (i >= 0) & (i < n)


def _take(i: float, *xs: float) -> float:
    return xs[_index_of(i, len(xs))]


def _take_grads(i: float, *a: float) -> tuple:
    """take's rules written out for all inputs: 1.0 for the option picked, 0.0 elsewhere."""
    if type(i) is not float:  # a Value (create_graph) or an array (replay)
        return (0.0, *(is_class(i, float(k)) for k in range(len(a) - 1)))
    grads = [0.0] * (len(a) - 1)  # a: the options, then out
    grads[int(i)] = 1.0
    return (0.0, *grads)


def _take_array(i, *xs):
    np = _np()
    i = np.asarray(i)
    valid = _valid_index(i, len(xs))
    if not valid.all():
        raise ValueError(f"take: index must be an integer in 0..{len(xs) - 1}, got {i[~valid].flat[0]}")
    stacked = np.stack(np.broadcast_arrays(*xs, i)[:-1])
    return np.take_along_axis(stacked, i.astype(int)[None], axis=0)[0]


# take(i, x_0, ..., x_n-1) = x_i: picks an entry by an index that is itself a Value (a token
# id, a class target), so one recorded graph serves every index; d/dx_k = 1 where i == k.
# A variadic row: groups (the index, the options); rule(k, n, *inputs, out) for the k-th of n.
_TAKE = _row("take", _take,
             lambda k, n, *a: 0.0,                       # d/di = 0 (an index carries no gradient)
             lambda k, n, *a: is_class(a[0], float(k)),  # d/dx_k = 1 where i == k
             groups=lambda arity: (1, arity - 1) if arity >= 2 else None, unrolled=_take_grads,
             array_forward=_take_array)


def _cross_entropy(t: float, *z: float) -> float:
    """logsumexp(z) - z[t], as (m - z[t]) + log(sum(exp(z_i - m))) with m = max(z): the target's
    logit meets m before the sum is added (logits of 1e16 give log 2, not 0)."""
    m = max(z)
    return (m - z[_index_of(t, len(z))]) + math.log(math.fsum(math.exp(x - m) for x in z))


def _softmax(k: int, z: Sequence) -> Any:
    """softmax(z)[k] as exp(-cross_entropy(k, z)): on floats, Values (a graph whose own
    derivatives are this op's rules) and arrays alike."""
    return exp(-_CROSS_ENTROPY(float(k), *z))


def softmax_of(z: Sequence) -> list:
    """softmax(z) as exp(d - logsumexp(d)) for d = z - logsumexp(z), in time linear in len(z): the
    first logsumexp carries |z| ulps of rounding (2e-7 of the result at z = 1e10); the second, of
    numbers near 0, takes it out."""
    first = logsumexp(z)
    d = [x - first for x in z]
    second = _LOGSUMEXP(*d)
    return [exp(x - second) for x in d]


def _cross_entropy_grads(t, *a) -> tuple:
    """cross_entropy's rules written out for all inputs: 0 for t, softmax(z)_k - [k == t] (a ends with out)."""
    z = a[:-1]
    if type(a[-1]) is float:  # the usual case: one max, one sum
        m = max(z)
        e = [math.exp(x - m) for x in z]
        s = math.fsum(e)
        grads = [x / s for x in e]
        grads[int(t)] -= 1.0
        return (0.0, *grads)
    if type(a[-1]) is Value:  # create_graph: linear in len(z), as _softmax for each k is not
        return (0.0, *(p - is_class(t, float(k)) for k, p in enumerate(softmax_of(z))))
    return (0.0, *_cross_entropy_grads_stacked(*_stacked(t, z)[::-1]))


def _cross_entropy_grads_stacked(t, stacked):
    """d/dz of cross_entropy on arrays, the logits stacked along the first axis (k, ...), t valid
    indices: the softmax, then 1 off the target's entry."""
    np = _np()
    p = stacked - stacked.max(axis=0)
    np.exp(p, out=p)
    p /= p.sum(axis=0)
    at = t.astype(int)[None]
    np.put_along_axis(p, at, np.take_along_axis(p, at, axis=0) - 1.0, axis=0)
    return p


def _stacked(t, z: Sequence) -> tuple:
    """The logits as one (k, ...) array and t in their shape (replay's are all one shape already)."""
    np = _np()
    shape = getattr(t, "shape", ())
    if all(getattr(x, "shape", ()) == shape for x in z):
        return np.stack(z), np.asarray(t)
    t, *z = np.broadcast_arrays(t, *z)
    return np.stack(z), t


def _cross_entropy_array(t, *z):
    """_cross_entropy on arrays; NaN where t is no index (replay then names the sample, as for
    any op that refuses a sample's numbers)."""
    stacked, t = _stacked(t, z)
    return _cross_entropy_stacked(t, stacked)


def _cross_entropy_stacked(t, stacked):
    """_cross_entropy on arrays, the logits stacked along the first axis (k, ...); NaN where t is no index."""
    np = _np()
    valid = _valid_index(t, len(stacked))
    m = stacked.max(axis=0)
    picked = np.take_along_axis(stacked, np.where(valid, t, 0).astype(int)[None], axis=0)[0]
    e = stacked - m
    np.exp(e, out=e)
    out = (m - picked) + np.log(e.sum(axis=0))
    return out if valid.all() else np.where(valid, out, np.nan)


# cross_entropy(t, z_0, ..., z_k-1) = -log softmax(z)[t], one sample's loss at class t (an index
# that may be a Value read from data, as take's); d/dt = 0, d/dz_k = softmax(z)_k - [k == t].
_CROSS_ENTROPY = _row("cross_entropy", _cross_entropy,
                      lambda k, n, *a: 0.0,                                           # d/dt
                      lambda k, n, *a: _softmax(k, a[1:-1]) - is_class(a[0], float(k)),  # d/dz_k
                      groups=lambda arity: (1, arity - 1) if arity >= 2 else None,
                      unrolled=_cross_entropy_grads, array_forward=_cross_entropy_array, symbol="-log softmax[t]")


@overload
def leaky_relu(input: Value, negative_slope: float = 0.01) -> Value: ...
@overload
def leaky_relu(input: float, negative_slope: float = 0.01) -> float: ...
def leaky_relu(input: Value | float, negative_slope: float = 0.01) -> Value | float:
    """input if input > 0, else negative_slope * input (torch.nn.functional.leaky_relu's arguments):
    a Value for a Value, a float for a number."""
    return _leaky_relu(input, negative_slope)


def in_order(xs: Any, who: str, what: str, wanted: str = "a list or tuple of Values or numbers", *,
             sized: bool = True) -> Any:
    """xs, refused by name if it is a set or mapping (in no fixed order: its items would meet the
    wrong partners) or, where `sized`, has no length (a generator)."""
    if isinstance(xs, (Set, Mapping)) or sized and not hasattr(xs, "__len__"):
        raise TypeError(f"{who}: {what} must be a sequence in order ({wanted}), got {type(xs).__name__}"
                        + (", whose order is arbitrary" if isinstance(xs, Set) else ""))
    return xs


def logsumexp(xs: Sequence[Value | float]) -> Value | float:
    """log(sum(exp(x))) of Values or numbers as one node, stable for large inputs."""
    if len(in_order(xs, "logsumexp", "xs")) == 0:
        raise ValueError("logsumexp: needs at least one input")
    return _LOGSUMEXP(*xs)


def take(index: Value | float, options: Sequence[Value | float]) -> Value | float:
    """options[index] as one node whose index may be a Value (e.g. a token id read from data);
    a plain index picks the option itself, as a list does, and the others stay out of the graph
    (so their `.grad` stays as it was, as `nn.Embedding`'s unused rows' does)."""
    if len(in_order(options, "take", "options")) == 0:
        raise ValueError("take: needs at least one option")
    if type(index) is not Value and any(type(x) is Value for x in options):
        try:
            picked = options[_index_of(index, len(options))]  # type: ignore[arg-type]  # (not a Value here)
            for x in options:  # a number the op would refuse (inf, a str) is refused here too
                if type(x) is not Value:
                    _number(x, "take")
        except (TypeError, ValueError, OverflowError):
            return _TAKE(index, *options)  # its own error, naming the call
        return picked if type(picked) is Value else _constant(picked, "take")
    return _TAKE(index, *options)


def dot(w: Sequence[Value | float], x: Sequence[Value | float], b: Value | float = 0.0) -> Value | float:
    """Fused `sum(w_i * x_i) + b` as one graph node (the neuron's pre-activation)."""
    if type(w) is list and type(x) is list:  # (the usual case, checked no further)
        n, m = len(w), len(x)
    else:
        n, m = len(in_order(w, "dot", "w")), len(in_order(x, "dot", "x"))
    if n != m or n == 0:
        raise ValueError(f"dot: w and x must have the same length, at least 1, got {n} and {m}")
    return _DOT(*w, *x, b)


def dots(ws: Sequence[Sequence], x: Sequence, bs: Sequence) -> list:
    """`[dot(w, x, b) for w, b in zip(ws, bs)]`: the same nodes, made faster when many neurons
    read the same inputs (a layer), as x is checked and read once."""
    if len(ws) != len(bs):
        raise ValueError(f"dots: needs one bias per weight vector, got {len(ws)} and {len(bs)}")
    if type(x) is not tuple:  # (a layer's input is a list or tuple: checked no further)
        x = tuple(x if type(x) is list else in_order(x, "dots", "x", sized=False))
    if not x or not _ONLY_VALUES.issuperset(map(type, x)):
        return [dot(w, x, b) for w, b in zip(ws, bs)]
    x_data = [a._data for a in x]
    x_needs = [a._requires_grad for a in x]
    x_all = all(x_needs)
    x_depth = max([a._depth for a in x])
    # a neuron whose weights and bias are leaves (depth 0) that need gradients, as trained
    # ones are, shares these; one pass over its weights finds it and reads them. Its local
    # derivatives, d/dw = x, d/dx = w, d/db = 1, are read off the data (unless a test has swapped
    # dot's rules): where x is data (a first layer's input), one tuple for all (d/dx = 0: x needs
    # none). With those, its node is made here from the numbers read, as _record would make it
    # (which makes every other node, and refuses by name a sum that is not finite).
    leaf_needs = True if x_all else [*(True for _ in x), *x_needs, True]
    rules = _DOT.derivatives is _DOT_RULES
    own = rules and x_all
    shared = (*x_data, *(0.0 for _ in x), 1.0) if rules and True not in x_needs else None
    grad_enabled = _GRAD_ENABLED.get()
    nodes: list = []
    for w, b in zip(ws, bs):
        if len(w) != len(x):
            raise ValueError(f"dot: w and x must have the same length, at least 1, got {len(w)} and {len(x)}")
        w_data = [a._data for a in w if type(a) is Value and not a._depth and a._requires_grad]
        if len(w_data) == len(x) and type(b) is Value and not b._depth and b._requires_grad:
            needs, depth = leaf_needs, x_depth
            local = (*x_data, *w_data, 1.0) if own else shared
            if local is not None and grad_enabled:
                data = _weighted_sum(w_data, x_data, b._data)
                if data - data == 0.0:
                    nodes.append(_node(data, _DOT, (*w, *x, b), local, 1 + depth, True))
                    continue
        elif type(b) is not Value or not _ONLY_VALUES.issuperset(map(type, w)):
            nodes.append(dot(w, x, b))
            continue
        else:
            w_data = [a._data for a in w]
            w_needs = [a._requires_grad for a in w]
            needs = True if x_all and b._requires_grad and all(w_needs) else [*w_needs, *x_needs, b._requires_grad]
            depth = max(x_depth, b._depth, max([a._depth for a in w]))
        nodes.append(_DOT._record((*w, *x, b), (*w_data, *x_data, b._data), needs, 1 + depth))
    return nodes
