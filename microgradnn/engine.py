"""A scalar autograd engine: `Value`, the op table, backward and higher-order gradients."""
from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import numbers
import operator
from typing import Any, Callable, Iterable, Iterator, Sequence, overload

__all__ = [
    "Value", "Op", "define_op", "get_op", "ops", "no_grad", "is_grad_enabled", "grad",
    "topological_order", "zero_grad", "exp", "log", "sqrt", "tanh", "sigmoid", "relu",
    "leaky_relu", "sin", "cos", "softplus", "dot", "logsumexp",
]

# Functions called as hook(root, "before") and hook(root, "after") around every backward()
# (microgradnn.viz.record uses this to draw each training step).
backward_hooks: list[Callable[[Value, str], None]] = []
# Set by microgradnn.replay: runs ops (and so the derivative rules) on numpy arrays,
# keeping this module free of dependencies.
array_backend: Any = None
_GRAD_ENABLED = contextvars.ContextVar("microgradnn_grad_enabled", default=True)


class Value:
    """A scalar that records the operations applied to it, for reverse-mode autodiff.

    `==` and `hash` are by identity (so Values can be dict keys and set members);
    `<`, `<=`, `>`, `>=` compare `data`.
    """

    # _local: d(self)/d(input) for each input, computed at forward time from the op table.
    # _depth: ops on the longest path from a leaf; sorting by it gives backward's order.
    # _modules: the nn modules (outermost first) whose call made this Value, set by
    # microgradnn.nn for drawing clusters; left unset elsewhere.
    __slots__ = ("data", "grad", "label", "requires_grad", "_op", "inputs", "_local", "_depth", "_modules")
    _modules: tuple

    def __init__(self, data: float, label: str = "", *, requires_grad: bool = True) -> None:
        if type(data) is not float:
            data = _to_float(data, "Value", label)
        if data - data != 0.0:
            raise ValueError(f"Value: data must be finite, got {data}{_label_note(label)}")
        if not isinstance(label, str):
            raise TypeError(f"Value: label must be a str, got {type(label).__name__}")
        self.data = data
        self.grad = 0.0
        self.label = label
        self.requires_grad = requires_grad
        self._op: Op | None = None
        self.inputs: tuple[Value, ...] = ()
        self._local: tuple[float, ...] = ()
        self._depth = 0

    @property
    def op(self) -> str:
        """Name of the op that made this Value; "" for a leaf."""
        return self._op.name if self._op is not None else ""

    def is_leaf(self) -> bool:
        """True if this Value was not computed from other Values."""
        return not self.inputs

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data:.4g}, grad={self.grad:.4g}{label})"

    def __float__(self) -> float:
        return self.data

    def item(self) -> float:
        """The plain float, as `torch.Tensor.item()`."""
        return self.data

    # Ordering compares data; equality stays identity (see the class docstring).
    def __lt__(self, other: Value | float) -> bool: return self.data < _data(other)
    def __le__(self, other: Value | float) -> bool: return self.data <= _data(other)
    def __gt__(self, other: Value | float) -> bool: return self.data > _data(other)
    def __ge__(self, other: Value | float) -> bool: return self.data >= _data(other)
    __hash__ = object.__hash__

    # Arithmetic: every operator is an entry of the op table below.
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
    def sqrt(self) -> Value: return sqrt(self)
    def tanh(self) -> Value: return tanh(self)
    def sigmoid(self) -> Value: return sigmoid(self)
    def relu(self) -> Value: return relu(self)
    def leaky_relu(self, slope: float = 0.01) -> Value: return leaky_relu(self, slope)
    def sin(self) -> Value: return sin(self)
    def cos(self) -> Value: return cos(self)
    def softplus(self) -> Value: return softplus(self)

    def detach(self) -> Value:
        """A new leaf with the same data, cut off from this graph."""
        return Value(self.data, self.label, requires_grad=False)

    def backward(self, gradient: float = 1.0) -> None:
        """Add d(self)/d(leaf) * gradient into every leaf's `.grad`.

        Intermediate nodes' `.grad` are overwritten with this call's gradient (handy for
        inspection and drawing); only leaves accumulate across calls, as in PyTorch.
        """
        for hook in backward_hooks:
            hook(self, "before")
        interior, leaves = _walk(self)
        for v in interior:
            v.grad = 0.0
        self.grad += gradient
        for v in sorted(interior, key=_DEPTH, reverse=True):
            g = v.grad
            if g:
                for x, d in zip(v.inputs, v._local):
                    x.grad += d * g
        total = sum(map(_GRAD, leaves))  # a non-finite gradient anywhere reaches some leaf
        if total - total != 0.0:
            _raise_nonfinite_gradient(topological_order(self))
        for hook in backward_hooks:
            hook(self, "after")

    def zero_grad(self) -> None:
        """Set `.grad` to 0 on every node of this Value's graph."""
        zero_grad(self)

    def tree(self, view: str = "both") -> str:
        """The graph as indented text, one line per node (see `microgradnn.viz.tree`)."""
        from microgradnn.viz import tree
        return tree(self, view=view)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from microgradnn.viz import mimebundle
        return mimebundle(self)


class Op:
    """One entry of the op table: a name, a float forward and one derivative per input.

    A derivative takes `(*inputs, out)` and returns d(out)/d(input_i). It must be written
    with arithmetic and this module's functions, so it runs on floats (the fast backward)
    and on Values (`create_graph=True`). Every path that computes local derivatives reads
    `self.derivatives`, so replacing it (as mutation testing does) changes all of them.
    `kinks(*inputs)`, if given, is True where the op has no derivative (relu at 0).
    """

    variadic = False  # True for ops taking any number of inputs (dot, logsumexp); see _VariadicOp

    def __init__(self, name: str, forward: Callable[..., float], derivatives: Sequence[Callable],
                 kinks: Callable[..., bool] | None = None) -> None:
        self.name = self.__name__ = name
        self.forward = forward
        self.derivatives = tuple(derivatives)
        self.kinks = kinks

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    def __reduce__(self) -> tuple:
        return get_op, (self.name,)

    def rule(self, i: int, arity: int) -> Callable:
        """The derivative rule for input i of a node with `arity` inputs."""
        return self.derivatives[i]

    def local_grads(self, inputs: Sequence[Value], xs: Sequence, out: Value | float) -> tuple:
        """d(out)/d(input) for each input, 0.0 for inputs that need no gradient."""
        n = len(inputs)
        return tuple(self.rule(i, n)(*xs, out) if v.requires_grad else 0.0 for i, v in enumerate(inputs))

    def __call__(self, *args: Value | float) -> Value | float:
        """Apply the op: numbers in give a float, any Value in gives a recorded Value."""
        if not any(type(a) is Value for a in args):
            return self._numbers(args)
        inputs = tuple(a if type(a) is Value else _constant(a, self.name) for a in args)
        xs = [v.data for v in inputs]
        data = self._forward(xs, inputs)
        if not _GRAD_ENABLED.get():
            return _node(data)
        try:
            local = self.local_grads(inputs, xs, data)
        except (ArithmeticError, ValueError):
            # e.g. sqrt'(0): only an error if a gradient actually flows through here
            local = (math.nan,) * len(inputs)
        return _node(data, self, inputs, local, 1 + max(map(_DEPTH, inputs)))

    def _numbers(self, args: Sequence):
        """The op on plain numbers; on arrays when an array backend is registered (replay)."""
        if array_backend is not None and array_backend.handles(args):
            return array_backend.apply(self, args)
        return self._forward([_to_float(a, self.name) for a in args], args)

    def _forward(self, xs: list, shown: Sequence) -> float:
        try:
            out = self.forward(*xs)
        except (ArithmeticError, ValueError) as e:
            if isinstance(e, OverflowError) or str(e) == "math range error":
                raise OverflowError(f"{_call_note(self.name, shown)}: result is too large for a float") from None
            raise type(e)(f"{_call_note(self.name, shown)}: {e}") from None
        if type(out) is not float:
            out = _to_float(out, self.name)
        if out - out != 0.0:
            kind = OverflowError if out in (math.inf, -math.inf) else ValueError
            raise kind(f"{_call_note(self.name, shown)}: result is not finite ({out})")
        return out


class _UnaryOp(Op):
    """Op.__call__ unrolled for one input: the same steps, without the per-call loops."""

    def __call__(self, a):
        if type(a) is not Value:
            return self._numbers((a,))
        x = a.data
        try:
            data = self.forward(x)
        except (ArithmeticError, ValueError):
            data = self._forward([x], (a,))  # re-run to raise the descriptive error
        if type(data) is not float or data - data != 0.0:
            data = self._forward([x], (a,))
        if not _GRAD_ENABLED.get():
            return _node(data)
        try:
            d = self.derivatives[0](x, data) if a.requires_grad else 0.0
        except (ArithmeticError, ValueError):
            d = math.nan
        return _node(data, self, (a,), (d,), a._depth + 1)


class _BinaryOp(Op):
    """Op.__call__ unrolled for two inputs."""

    def __call__(self, a, b):
        if type(a) is not Value:
            if type(b) is not Value:
                return self._numbers((a, b))
            a = _constant(a, self.name)
        elif type(b) is not Value:
            b = _constant(b, self.name)
        x, y = a.data, b.data
        try:
            data = self.forward(x, y)
        except (ArithmeticError, ValueError):
            data = self._forward([x, y], (a, b))
        if type(data) is not float or data - data != 0.0:
            data = self._forward([x, y], (a, b))
        if not _GRAD_ENABLED.get():
            return _node(data)
        da, db = self.derivatives
        try:
            ga = da(x, y, data) if a.requires_grad else 0.0
        except (ArithmeticError, ValueError):
            ga = math.nan
        try:
            gb = db(x, y, data) if b.requires_grad else 0.0
        except (ArithmeticError, ValueError):
            gb = math.nan
        return _node(data, self, (a, b), (ga, gb), 1 + (a._depth if a._depth > b._depth else b._depth))


def _make_op(name: str, forward: Callable, derivatives: Sequence[Callable], kinks: Callable | None = None) -> Op:
    cls = {1: _UnaryOp, 2: _BinaryOp}.get(len(derivatives), Op)
    return cls(name, forward, derivatives, kinks)


class _VariadicOp(Op):
    """An op over any number of inputs: inputs come in groups (dot: the w's, the x's, b) and
    `derivatives[g](k, n, *inputs, out)` is d(out)/d(the k-th input of group g), n being
    the group size."""

    variadic = True

    def group(self, i: int, arity: int) -> tuple[int, int, int]:
        """(group, index in it, group size) of input i."""
        return 0, i, arity

    def rule(self, i: int, arity: int) -> Callable:
        g, k, n = self.group(i, arity)
        rule = self.derivatives[g]
        return lambda *a: rule(k, n, *a)


# The fused ops' rules, kept by name so their unrolled fast paths can tell they are still in place.
_DOT_RULES = (lambda k, n, *a: a[n + k],  # d/dw_k = x_k
              lambda k, n, *a: a[k],      # d/dx_k = w_k
              lambda k, n, *a: 1.0)       # d/db = 1


class _DotOp(_VariadicOp):
    """Fused neuron: dot(w, x, b) = sum(w_i * x_i) + b as one node with 2n+1 inputs."""

    def __init__(self) -> None:
        super().__init__("dot", self._dot, ())
        self.derivatives = _DOT_RULES

    @staticmethod
    def _dot(*args: float) -> float:
        n = len(args) // 2
        total = args[-1]
        for w, x in zip(args[:n], args[n:2 * n]):  # b + w0*x0 + w1*x1 ..., the unfused order
            total += w * x
        return total

    def group(self, i: int, arity: int) -> tuple[int, int, int]:
        n = arity // 2
        return (0, i, n) if i < n else (1, i - n, n) if i < 2 * n else (2, 0, 1)

    def unrolled(self) -> bool:
        """True while the rules are _DOT_RULES, which the fast paths below (and replay's
        layers) compute inline."""
        return self.derivatives is _DOT_RULES

    def local_grads(self, inputs, xs, out):
        if not self.unrolled():
            return super().local_grads(inputs, xs, out)
        n = len(xs) // 2  # the rules, unrolled: this runs once per neuron per forward
        return (*xs[n:2 * n], *xs[:n], 1.0)

    def __call__(self, *args):
        """Op.__call__ for the usual case, every input a Value, without per-input checks."""
        if set(map(type, args)) != {Value}:
            return super().__call__(*args)
        xs = [a.data for a in args]
        data = self._dot(*xs)
        if data - data != 0.0:
            data = self._forward(xs, args)  # raises the descriptive error
        if not _GRAD_ENABLED.get():
            return _node(data)
        return _node(data, self, args, self.local_grads(args, xs, data), 1 + max(map(_DEPTH, args)))


class _LogSumExpOp(_VariadicOp):
    """log(sum(exp(x_i))) over any number of inputs, computed without overflow."""

    def __init__(self) -> None:
        super().__init__("logsumexp", self._logsumexp, (lambda k, n, *a: exp(a[k] - a[-1]),))  # softmax_k

    @staticmethod
    def _logsumexp(*xs: float) -> float:
        m = max(xs)
        return m + math.log(math.fsum(math.exp(x - m) for x in xs))


_OPS: dict[str, Op] = {}
_BUILTIN: set[str] = set()


def define_op(name: str, forward: Callable[..., float], *derivatives: Callable,
              kinks: Callable[..., bool] | None = None) -> Callable:
    """Add an op to the table and return it; calling it applies it to Values or numbers.

    `forward(*xs)` maps floats to a float; derivative i maps `(*xs, out)` to d(out)/d(xs[i]).
    `kinks(*xs)`, if given, is True where the op has no derivative (gradient checks then
    accept any one-sided derivative there, e.g. `kinks=lambda x: x == 0.0` for a hinge).
    Example: `cube = define_op("cube", lambda x: x**3, lambda x, out: 3 * x**2)`.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"define_op: name must be a non-empty str, got {name!r}")
    if name in _BUILTIN:
        raise ValueError(f"define_op: {name!r} is a built-in op and cannot be redefined")
    if not callable(forward) or not derivatives or not all(map(callable, derivatives)):
        raise TypeError(f"define_op({name!r}): needs a callable forward and one callable derivative per input")
    if kinks is not None and not callable(kinks):
        raise TypeError(f"define_op({name!r}): kinks must be a callable taking the op's inputs, got {kinks!r}")
    return _register(_make_op(name, forward, derivatives, kinks))


def _register(op: Op) -> Op:
    _OPS[op.name] = op
    return op


def ops() -> dict[str, Op]:
    """The op table: every op by name (built-ins and define_op's), in definition order."""
    return dict(_OPS)


def get_op(name: str) -> Op:
    """The op table entry called `name`."""
    try:
        return _OPS[name]
    except KeyError:
        raise KeyError(f"no op named {name!r}; known ops: {', '.join(sorted(_OPS))}") from None


# ---- numeric helpers -------------------------------------------------------------------

def _label_note(label: str) -> str:
    return f" (label {label!r})" if label else ""


def _show(a) -> str:
    if type(a) is Value:
        return f"{a.label}={a.data!r}" if a.label else repr(a.data)
    return repr(a)


def _call_note(name: str, args: Sequence) -> str:
    """How an error shows the failing call: `log(x=-1.0)`, `1.0 / 0.0`."""
    if len(args) == 2 and not name.isidentifier():
        return f"{_show(args[0])} {name} {_show(args[1])}"
    return f"{name}({', '.join(map(_show, args))})"


def _to_float(x, where: str, label: str = "") -> float:
    if isinstance(x, numbers.Real) or (hasattr(x, "__float__") and getattr(x, "shape", None) == ()):
        return float(x)
    if type(x) is Value:
        return x.data
    raise TypeError(f"{where}: expected a number or Value, got {type(x).__name__} {x!r:.60}{_label_note(label)}")


def _constant(x, where: str) -> Value:
    """A plain number lifted into the graph (no gradient; drawn inside its op's label)."""
    v = _node(x if type(x) is float else _to_float(x, where))
    v.requires_grad = False
    return v


def _data(x) -> float:
    return x.data if type(x) is Value else _to_float(x, "comparison")


_new = object.__new__
_DEPTH = operator.attrgetter("_depth")
_GRAD = operator.attrgetter("grad")


def _node(data: float, op: Op | None = None, inputs: tuple = (), local: tuple = (), depth: int = 0) -> Value:
    """A Value made by an op (Value() minus the checks, which the op has done)."""
    v = _new(Value)
    v.data = data  # one attribute per statement: tuple assignment costs a third more here
    v.grad = 0.0
    v.label = ""
    v.requires_grad = True
    v._op = op
    v.inputs = inputs
    v._local = local
    v._depth = depth
    return v


# ---- graph walks -----------------------------------------------------------------------

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


def topological_order(root: Value) -> list[Value]:
    """Every node reachable from `root` once, inputs before the nodes made from them:
    the leaves, then the other nodes by depth (no recursion)."""
    interior, leaves = _walk(root)
    # The walk meets last inputs first; reversed, a neuron's weights come in order (replay
    # stores them as they come, and reads a layer through views when they are in order).
    return leaves[::-1] + sorted(interior[::-1], key=_DEPTH)


def zero_grad(*roots: Value) -> None:
    """Set `.grad` to 0 on every node reachable from the given Values."""
    for root in roots:
        for v in topological_order(root):
            v.grad = 0.0


def _raise_nonfinite_gradient(order: list[Value]) -> None:
    for v in reversed(order):
        for i, d in enumerate(v._local):
            if v.grad and not math.isfinite(d):
                raise ValueError(f"backward: the derivative of {_call_note(v.op, v.inputs)} with respect to "
                                 f"input {i} ({_show(v.inputs[i])}) is not finite")
    raise OverflowError("backward: a gradient overflowed to a non-finite value")


def grad(output: Value, inputs: Value | Iterable[Value], create_graph: bool = False) -> tuple:
    """d(output)/d(input) for each input, without touching any `.grad` (as `torch.autograd.grad`).

    With `create_graph=True` the gradients are Values with graphs of their own, so they can
    be differentiated again. An input that `output` does not depend on gets 0.
    """
    inputs = (inputs,) if isinstance(inputs, Value) else tuple(inputs)
    for x in inputs:
        if type(x) is not Value:
            raise TypeError(f"grad: inputs must be Values, got {type(x).__name__}")
    grads: dict[Value, Any] = {output: 1.0}
    for v in reversed(topological_order(output)):
        g = grads.get(v)
        if g is None or not v.inputs:
            continue
        local = v._op.local_grads(v.inputs, v.inputs, v) if create_graph else v._local  # type: ignore[union-attr]
        for x, d in zip(v.inputs, local):
            grads[x] = grads[x] + d * g if x in grads else d * g
    result = tuple(grads.get(x, 0.0) for x in inputs)
    if create_graph:
        result = tuple(r if type(r) is Value else Value(r, requires_grad=False) for r in result)
    for r in result:
        f = r.data if type(r) is Value else r
        if not math.isfinite(f):
            raise ValueError("grad: a gradient is not finite")
    return result


# ---- no_grad ---------------------------------------------------------------------------

@contextlib.contextmanager
def _grad_disabled() -> Iterator[None]:
    token = _GRAD_ENABLED.set(False)
    try:
        yield
    finally:
        _GRAD_ENABLED.reset(token)


def no_grad(fn: Callable | None = None) -> Any:
    """Record no graph inside: `with no_grad():`, `@no_grad()` or `@no_grad` (thread- and task-safe)."""
    if fn is None:
        return _grad_disabled()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _grad_disabled():
            return fn(*args, **kwargs)
    return wrapper


def is_grad_enabled() -> bool:
    """False inside `no_grad()`."""
    return _GRAD_ENABLED.get()


# ---- the op table ----------------------------------------------------------------------

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


def _sqrt(a: float) -> float:
    if a < 0.0:
        raise ValueError("input must be >= 0")
    return math.sqrt(a)


def _sigmoid(a: float) -> float:
    if a >= 0.0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


def _softplus(a: float) -> float:
    return max(a, 0.0) + math.log1p(math.exp(-abs(a)))


def _pow_exponent_grad(a, b, out):
    """d(a**b)/db = a**b * log(a), defined for a > 0 (and 0 at a == 0)."""
    if a > 0:
        return out * log(a)
    if a == 0 or _data(a) == 0.0:
        return 0.0
    raise ValueError("d(a**b)/db needs a >= 0")


def _builtin(name: str, forward: Callable, *derivatives: Callable, kinks: Callable | None = None) -> Callable:
    _BUILTIN.add(name)
    return _register(_make_op(name, forward, derivatives, kinks))


def _at_zero(a: float, *rest: float) -> bool:
    return a == 0.0


add = _builtin("+", operator.add, lambda a, b, out: 1.0, lambda a, b, out: 1.0)
sub = _builtin("-", operator.sub, lambda a, b, out: 1.0, lambda a, b, out: -1.0)
mul = _builtin("*", operator.mul, lambda a, b, out: b, lambda a, b, out: a)
div = _builtin("/", _div, lambda a, b, out: 1.0 / b, lambda a, b, out: -a / (b * b))
pow_ = _builtin("**", _pow, lambda a, b, out: b * a ** (b - 1), _pow_exponent_grad)
neg = _builtin("neg", operator.neg, lambda a, out: -1.0)
abs_ = _builtin("abs", abs, lambda a, out: (a > 0) * 1.0 - (a < 0) * 1.0, kinks=_at_zero)
exp = _builtin("exp", math.exp, lambda a, out: out)
log = _builtin("log", _log, lambda a, out: 1.0 / a)
sqrt = _builtin("sqrt", _sqrt, lambda a, out: 0.5 / out)
tanh = _builtin("tanh", math.tanh, lambda a, out: (1.0 - out) * (1.0 + out))  # exact near |out| = 1
sigmoid = _builtin("sigmoid", _sigmoid, lambda a, out: out * (1.0 - out))
relu = _builtin("relu", lambda a: a if a > 0.0 else 0.0, lambda a, out: (a > 0) * 1.0, kinks=_at_zero)
_leaky_relu = _builtin("leaky_relu", lambda a, s: a if a > 0.0 else a * s,
                       lambda a, s, out: (a > 0) * 1.0 + (a <= 0) * s, lambda a, s, out: (a <= 0) * a,
                       kinks=_at_zero)
sin = _builtin("sin", math.sin, lambda a, out: cos(a))  # type: ignore[has-type]
cos = _builtin("cos", math.cos, lambda a, out: -sin(a))
softplus = _builtin("softplus", _softplus, lambda a, out: sigmoid(a))

# Relu, abs and leaky_relu write their derivatives without `if`, so each rule runs unchanged
# on floats, on Values (create_graph) and on arrays (replay).

_DOT = _DotOp()
_LOGSUMEXP = _LogSumExpOp()
for _op in (_DOT, _LOGSUMEXP):
    _BUILTIN.add(_op.name)
    _register(_op)


@overload
def leaky_relu(x: Value, slope: float = 0.01) -> Value: ...
@overload
def leaky_relu(x: float, slope: float = 0.01) -> float: ...
def leaky_relu(x: Value | float, slope: float = 0.01) -> Value | float:
    """max(x, slope * x) for slope < 1: a Value for a Value, a float for a number."""
    return _leaky_relu(x, slope)


def logsumexp(xs: Sequence[Value | float]) -> Value | float:
    """log(sum(exp(x))) of Values or numbers as one node, stable for large inputs."""
    if len(xs) == 0:
        raise ValueError("logsumexp: needs at least one input")
    return _LOGSUMEXP(*xs)


def dot(w: Sequence[Value | float], x: Sequence[Value | float], b: Value | float = 0.0) -> Value | float:
    """Fused `sum(w_i * x_i) + b` as one graph node (the neuron's pre-activation)."""
    if len(w) != len(x):
        raise ValueError(f"dot: w and x must have the same length, got {len(w)} and {len(x)}")
    return _DOT(*w, *x, b)
