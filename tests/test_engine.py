import asyncio
import contextlib
import copy
import gc
import inspect
import io
import math
import os
import pickle
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import Phase, given, settings, strategies as st

import microgradnn as mg
from microgradnn import Value
from microgradnn.engine import observe_decisions
from conftest import analytic_grads, numeric_grads

# (name, f on Values, reference value on floats, points). Each f uses only operators and
# torch-style method names, so the same f runs on torch tensors below.
OPS = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, [(1.5, -2.0), (0.0, 3.0)]),
    ("sub", lambda a, b: a - b, lambda a, b: a - b, [(1.5, -2.0), (-4.0, 0.5)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [(1.5, -2.0), (0.0, 3.0)]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [(1.5, -2.0), (-3.0, 0.25)]),
    ("pow", lambda a, b: a ** b, lambda a, b: a ** b, [(1.5, -2.0), (0.3, 2.5), (2.0, 0.0)]),
    ("pow_int", lambda a: a ** 3, lambda a: a ** 3, [(-2.0,), (0.5,), (0.0,)]),
    ("neg", lambda a: -a, lambda a: -a, [(1.5,), (-2.0,)]),
    ("abs", lambda a: a.abs(), abs, [(1.5,), (-2.0,)]),
    ("exp", lambda a: a.exp(), math.exp, [(1.5,), (-20.0,), (50.0,)]),
    ("log", lambda a: a.log(), math.log, [(1.5,), (0.05,), (1e6,)]),
    ("log1p", lambda a: a.log1p(), math.log1p, [(1.5,), (1e-10,), (-0.9,), (1e6,)]),
    ("sqrt", lambda a: a.sqrt(), math.sqrt, [(1.5,), (0.04,), (4e4,)]),
    ("tanh", lambda a: a.tanh(), math.tanh, [(0.3,), (-2.0,), (8.0,)]),
    ("sigmoid", lambda a: a.sigmoid(), lambda a: 1 / (1 + math.exp(-a)), [(0.3,), (-30.0,), (30.0,)]),
    ("relu", lambda a: a.relu(), lambda a: max(a, 0.0), [(1.5,), (-2.0,)]),
    ("leaky_relu", lambda a: a.leaky_relu(0.1), lambda a: a if a > 0 else 0.1 * a, [(1.5,), (-2.0,)]),
    ("sin", lambda a: a.sin(), math.sin, [(0.3,), (-2.0,), (10.0,)]),
    ("cos", lambda a: a.cos(), math.cos, [(0.3,), (-2.0,), (10.0,)]),
    ("softplus", lambda a: a.softplus(), lambda a: math.log1p(math.exp(a)), [(0.3,), (-30.0,), (30.0,)]),
    ("radd", lambda a: 3 + a, lambda a: 3 + a, [(1.5,)]),
    ("rsub", lambda a: 1 - a, lambda a: 1 - a, [(1.5,)]),
    ("rmul", lambda a: 2 * a, lambda a: 2 * a, [(1.5,)]),
    ("rdiv", lambda a: 1 / a, lambda a: 1 / a, [(1.5,), (-0.2,)]),
    ("rpow", lambda a: 2 ** a, lambda a: 2 ** a, [(1.5,), (-3.0,)]),
    ("reused", lambda a: a * a + a.exp() * a, lambda a: a * a + math.exp(a) * a, [(0.7,)]),
    ("two_paths", lambda a, b: (a * b).tanh() + (a - b) ** 2 / b, lambda a, b: math.tanh(a * b) + (a - b) ** 2 / b, [(0.4, 1.3)]),
]
CASES = [pytest.param(f, ref, p, id=f"{name}-{p}") for name, f, ref, points in OPS for p in points]


@pytest.mark.parametrize("f, ref, point", CASES)
def test_value_and_gradient_match_finite_differences(f, ref, point):
    out, grads = analytic_grads(f, list(point))
    assert out == pytest.approx(ref(*point), rel=1e-12, abs=1e-300)
    assert grads == pytest.approx(numeric_grads(f, list(point)), rel=1e-6, abs=1e-8)


def _torch_version(f):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    patched = {"leaky_relu": lambda t, s=0.01: F.leaky_relu(t, s), "softplus": F.softplus}

    class T:  # the two torch.nn.functional-only names, as methods
        def __init__(self, t): self.t = t
        def __getattr__(self, name):
            if name in patched:
                return lambda *a: T(patched[name](self.t, *a))
            return lambda *a: T(getattr(self.t, name)(*a))
        def _bin(op):
            return lambda self, o: T(op(self.t, o.t if isinstance(o, T) else o))
        __add__, __radd__ = _bin(lambda x, y: x + y), _bin(lambda x, y: y + x)
        __sub__, __rsub__ = _bin(lambda x, y: x - y), _bin(lambda x, y: y - x)
        __mul__, __rmul__ = _bin(lambda x, y: x * y), _bin(lambda x, y: y * x)
        __truediv__, __rtruediv__ = _bin(lambda x, y: x / y), _bin(lambda x, y: y / x)
        __pow__, __rpow__ = _bin(lambda x, y: x ** y), _bin(lambda x, y: y ** x)
        def __neg__(self): return T(-self.t)

    def run(*xs):
        ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
        y = f(*[T(t) for t in ts]).t
        y.backward()
        return y.item(), [t.grad.item() for t in ts]
    return run


@pytest.mark.parametrize("f, ref, point", CASES)
def test_value_and_gradient_match_torch_float64(f, ref, point):
    out, grads = analytic_grads(f, list(point))
    t_out, t_grads = _torch_version(f)(*point)
    assert out == pytest.approx(t_out, rel=1e-12, abs=1e-300)
    assert grads == pytest.approx(t_grads, rel=1e-12, abs=1e-300)


def test_torch_method_names_run_unchanged_on_tensors():
    torch = pytest.importorskip("torch")
    def f(x):
        return (x.tanh() * x.exp() + x.sigmoid().log() - x.abs().sqrt() + x.relu() * x.sin() / x.cos().exp())
    x = Value(0.8)
    t = torch.tensor(0.8, dtype=torch.float64)
    assert f(x).data == pytest.approx(f(t).item(), rel=1e-12)


@pytest.mark.parametrize("name", ["exp", "log", "log1p", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "softplus"])
def test_functions_take_torchs_input_keyword(name):
    # mg.exp(input=v) was a TypeError naming _UnaryOp.__call__, where torch.exp(input=t) runs
    torch = pytest.importorskip("torch")
    lib = torch.nn.functional.softplus if name == "softplus" else getattr(torch, name)
    x, t = Value(0.7), _tensor(0.7)
    got, want = getattr(mg, name)(input=x), lib(input=t)
    assert got.data == pytest.approx(want.item(), rel=1e-15) and got.inputs == (x,)
    assert mg.grad(got, x)[0] == pytest.approx(torch.autograd.grad(want, t)[0].item(), rel=1e-15)
    assert getattr(mg, name)(input=0.7) == pytest.approx(want.item(), rel=1e-15)  # a number for a number
    cube = mg.define_op("cube", lambda a: a ** 3, lambda a, out: 3 * a ** 2)
    assert cube(input=x).data == cube(x).data  # a defined op's first call too


def test_leaky_relu_takes_torchs_negative_slope_name_and_default():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for x in (-2.0, 1.5):
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        for call in ({}, {"negative_slope": 0.2}):
            want = F.leaky_relu(t, **call)
            (want_grad,) = torch.autograd.grad(want, t)
            for got in (mg.leaky_relu(Value(x), **call), Value(x).leaky_relu(**call),
                        mg.leaky_relu(input=Value(x), **call)):
                assert got.data == want.item() and mg.grad(got, got.inputs[0])[0] == want_grad.item()
            assert mg.leaky_relu(x, **call) == want.item()  # a number for a number
    for name, lib, mine in (("negative_slope", F.leaky_relu, mg.leaky_relu),
                            ("negative_slope", torch.nn.LeakyReLU, Value.leaky_relu)):
        assert inspect.signature(mine).parameters[name].default == inspect.signature(lib).parameters[name].default
    neuron = mg.Neuron.from_weights([1.0], 0.0, "leaky_relu")  # the nn activation: torch's default slope
    assert neuron([-1.0]).data == torch.nn.LeakyReLU()(torch.tensor(-1.0, dtype=torch.float64)).item()


def test_repr_float_label_op_inputs():
    a, b = Value(2.0, label="a"), Value(-0.5)
    o = (a * b).tanh()
    o.label = "o"
    o.backward()
    assert repr(o) == "Value(data=-0.7616, grad=1, label='o')"
    assert float(o) == o.data == math.tanh(-1.0)
    assert o.op == "tanh" and a.op == "" and o.inputs[0].op == "*"
    assert o.inputs[0].inputs == (a, b)
    assert isinstance(o.data, float) and isinstance(Value(3).data, float)


def test_a_label_must_be_a_str_as_value_says_not_a_crash_in_a_drawing():
    o = Value(2.0, label="x") * 3.0
    o.label = "o"
    assert o.label == "o" and o.inputs[0].label == "x"
    with pytest.raises(TypeError, match=r"Value.label: must be a str, got int"):
        o.label = 5
    assert o.label == "o"
    for twin in (pickle.loads(pickle.dumps(o)), copy.deepcopy(o)):
        assert twin.label == "o" and twin.inputs[0].label == "x"


def test_dot_names_empty_or_unsized_inputs():
    with pytest.raises(ValueError, match=r"dot: w and x must have the same length, at least 1, got 0 and 0"):
        mg.dot([], [], 1.0)
    with pytest.raises(TypeError, match=r"dot: w must be a sequence in order .* got generator"):
        mg.dot((v for v in [Value(1.0)]), [2.0])


def test_comparisons_use_data_and_equality_is_identity():
    a, b = Value(1.0), Value(1.0)
    assert a <= b and a >= b and not a < b and a < 2 and 0 < a and b > 0.5
    assert a != b and a == a
    assert len({a, b}) == 2 and {a: 1}[a] == 1


def test_numpy_scalars_are_numbers():
    x = Value(np.float32(1.5))
    y = x * np.float64(2.0) + np.int64(1)
    assert y.data == 4.0 and type(y.data) is float
    y.backward()
    assert x.grad == 2.0


def test_gradients_accumulate_in_leaves_only():
    x = Value(3.0)
    y = x * x * x
    y.backward()
    y.backward()
    assert x.grad == 54.0  # 27 + 27 as torch's retain_graph=True; micrograd gives 72
    assert y.grad == 1.0 and y.inputs[0].grad == 3.0  # intermediates show this call's grads
    mg.zero_grad(y)
    assert x.grad == 0.0


def test_backward_gradient_none_is_one_as_in_torch():
    x = Value(2.0)
    (x * x).backward(None)  # torch's default; it raised a TypeError
    (x * x).backward(gradient=None)
    assert x.grad == 8.0


def test_backward_with_explicit_gradient():
    x = Value(2.0)
    (x * x).backward(0.5)
    assert x.grad == 2.0


def test_no_grad_records_nothing_as_context_and_decorator():
    x = Value(2.0)
    with mg.no_grad():
        y = x * x
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    assert y.inputs == () and y.op == "" and y.data == 4.0

    @mg.no_grad
    def f(v): return v.exp()

    @mg.no_grad()
    def g(v): return v.exp()
    assert f(x).inputs == () and g(x).inputs == ()
    assert (x * x).inputs == (x, x)


def test_no_grad_covers_a_generator_body_and_its_object_can_be_entered_again_as_torch():
    x = Value(2.0)

    @mg.no_grad
    def squares(n):
        for _ in range(n):
            got = yield x * x, mg.is_grad_enabled()
            assert got in (None, "sent")
        return "done"

    @mg.no_grad()
    def one():
        yield x * x
    gen = squares(3)
    assert mg.is_grad_enabled()
    for y, enabled in [next(gen), gen.send("sent"), next(gen)]:
        assert y.inputs == () and not enabled  # torch.no_grad on a generator: no graph inside
        assert mg.is_grad_enabled()  # and the caller's mode between resumptions
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"
    assert next(one()).inputs == ()
    with pytest.raises(KeyError):
        squares(2).throw(KeyError("k"))

    ctx = mg.no_grad()  # torch's no_grad object may be entered again, and nested
    with ctx:
        with ctx:
            assert not mg.is_grad_enabled()
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    with ctx:
        assert (x * x).inputs == ()
    assert (x * x).inputs == (x, x)


def test_a_no_grad_block_left_in_another_task_than_it_was_entered_in_puts_back_the_mode():
    def numbers():
        with mg.no_grad():  # a generator's block: entered in one task, left in another
            yield mg.is_grad_enabled()

    async def step(gen):
        return next(gen, "done"), mg.is_grad_enabled()

    async def main():
        gen = numbers()
        first = await asyncio.create_task(step(gen))
        return first, await asyncio.create_task(step(gen))
    assert asyncio.run(main()) == ((False, False), ("done", True))  # (as torch's; it raised IndexError)
    assert mg.is_grad_enabled()


@pytest.mark.parametrize("decorator", [lambda: mg.no_grad, mg.no_grad, lambda: mg.set_grad_enabled(False)])
def test_a_decorated_coroutine_function_runs_its_body_in_the_mode_when_awaited(decorator):
    # the wrapper only made the coroutine inside no_grad: its body, run when awaited, recorded
    # the graph (torch's decorator does the same, silently)
    x = Value(1.0)

    @decorator()
    async def predict(v):
        await asyncio.sleep(0)
        return v * 2, mg.is_grad_enabled()

    async def main():
        return await predict(x), mg.is_grad_enabled()
    (y, inside), after = asyncio.run(main())
    assert (inside, y.inputs, y.requires_grad, after) == (False, (), False, True)
    assert predict.__name__ == "predict"


def test_an_async_generator_function_is_refused_by_the_grad_mode_decorators():
    async def tokens():
        yield Value(1.0) * 2
    with pytest.raises(TypeError, match="no_grad: cannot decorate the async generator function .*tokens; "
                                        "use `with no_grad\\(\\):` in its body"):
        mg.no_grad(tokens)
    with pytest.raises(TypeError, match="use `with set_grad_enabled\\(mode\\):`"):
        mg.set_grad_enabled(False)(tokens)


def _records_while_another_task_has_grad_off(turn_off) -> bool:
    """Whether ops in one asyncio task record the graph while another task, having run
    `turn_off()` (inside the context manager it returns, if any), waits."""
    x = Value(1.0)
    seen = {}

    async def off(ev_in, ev_done):
        with turn_off() or contextlib.nullcontext():
            ev_in.set()
            await ev_done.wait()

    async def look(ev_in, ev_done):
        await ev_in.wait()
        seen["records"] = (x * x).inputs != ()
        ev_done.set()

    async def main():
        a, b = asyncio.Event(), asyncio.Event()
        await asyncio.gather(off(a, b), look(a, b))
    asyncio.run(main())
    return seen["records"]


def test_no_grad_is_per_thread_and_per_task():
    x = Value(1.0)
    seen = {}
    inside, done = threading.Event(), threading.Event()

    def worker():
        with mg.no_grad():
            inside.set()
            seen["held"] = done.wait(60)  # inside no_grad until the main thread has looked

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(60), "the worker thread never entered no_grad"  # (else the check below tests nothing)
    seen["thread"] = (x * x).inputs != ()
    done.set()
    t.join()

    seen["task"] = _records_while_another_task_has_grad_off(mg.no_grad)
    assert seen == {"held": True, "thread": True, "task": True}


def _grad_mode_story(lib, x) -> list:
    """What torch's grad-mode API does, step by step, on `lib` (microgradnn or torch)."""
    seen = []

    def records():
        return (x * x).requires_grad

    def gen():
        yield lib.is_grad_enabled()
        yield lib.is_grad_enabled()

    try:
        with lib.no_grad():
            with lib.enable_grad():
                seen.append((lib.is_grad_enabled(), records()))
            seen.append((lib.is_grad_enabled(), records()))
            seen.append((lib.enable_grad(records)(), lib.enable_grad()(records)()))
            seen.append(list(lib.enable_grad(gen)()))
        made = lib.set_grad_enabled(False)  # a plain call sets the mode
        seen.append((lib.is_grad_enabled(), records(), repr(made).split(".")[-1]))
        lib.set_grad_enabled(True)
        with lib.set_grad_enabled(False):
            seen.append(records())
        seen.append(records())
        with lib.no_grad():
            with lib.set_grad_enabled(True):
                seen.append(records())
            seen.append(records())
        decorated = lib.set_grad_enabled(False)(lib.is_grad_enabled)  # decorating leaves the mode as it was
        seen.append((lib.is_grad_enabled(), decorated(), lib.is_grad_enabled()))
        seen.append(list(lib.set_grad_enabled(False)(gen)()))
        ctx = lib.set_grad_enabled(False)  # made now, entered later: leaving puts back the mode from before it
        with ctx:
            seen.append(lib.is_grad_enabled())
        seen.append(lib.is_grad_enabled())
        for bad in (1, None, np.bool_(True)):
            with pytest.raises(TypeError, match="must be (a )?bool"):
                lib.set_grad_enabled(bad)
        seen.append(lib.is_grad_enabled())
    finally:
        lib.set_grad_enabled(True)
    return seen


def test_enable_grad_and_set_grad_enabled_as_torch():
    torch = pytest.importorskip("torch")
    mine = _grad_mode_story(mg, Value(2.0))
    assert mine == _grad_mode_story(torch, torch.tensor(2.0, dtype=torch.float64, requires_grad=True))
    assert mine[0] == (True, True) and mine[4][:2] == (False, False)  # (the story tests something)
    assert mg.is_grad_enabled()


def test_enable_grad_and_set_grad_enabled_are_per_thread_and_per_task():
    x = Value(1.0)
    seen = {}
    inside, done = threading.Event(), threading.Event()

    def worker():
        mg.set_grad_enabled(False)
        inside.set()
        seen["held"] = done.wait(60) and not mg.is_grad_enabled()

    with mg.no_grad():
        with mg.enable_grad():
            t = threading.Thread(target=worker)
            t.start()
            assert inside.wait(60), "the worker thread never set its mode"
            seen["thread"] = (x * x).inputs != ()
            done.set()
            t.join()

    seen["task"] = _records_while_another_task_has_grad_off(lambda: mg.set_grad_enabled(False) and None)
    assert seen == {"held": True, "thread": True, "task": True} and mg.is_grad_enabled()


def test_grad_mode_decorators_refuse_what_is_no_function():
    for make, who in ((mg.no_grad, "no_grad"), (mg.enable_grad, "enable_grad")):
        with pytest.raises(TypeError, match=f"{who}: decorates a function, got int"):
            make(3)
    with pytest.raises(TypeError, match="set_grad_enabled: decorates a function, got str"):
        mg.set_grad_enabled(False)("f")
    assert mg.is_grad_enabled()


def _requires_grad_story(make) -> list:
    """What torch's requires_grad_ does, step by step, on Values or tensors made by `make`."""
    seen = []
    x = make(2.0, True)
    seen.append((x.requires_grad_(False) is x, x.requires_grad, x.is_leaf))
    seen.append((x.requires_grad_() is x, x.requires_grad_(requires_grad=True) is x, x.requires_grad))
    y = x * 3.0
    seen.append((y.requires_grad_(True) is y, y.requires_grad, y.is_leaf))
    with pytest.raises(RuntimeError, match="only .*leaf"):
        y.requires_grad_(False)
    for bad in (1, None):
        with pytest.raises(TypeError, match="must be (a )?bool"):
            x.requires_grad_(bad)
    c = make(2.0, False)
    u = c * 3.0  # computed, requires no grad: torch's leaf, made one that requires grad
    seen.append((u.is_leaf, u.requires_grad_() is u, u.is_leaf, u.requires_grad))
    for _ in range(2):
        (u * u).backward()  # accumulates into u, as into a leaf
    seen.append((float(u.grad), float(c.grad or 0.0)))
    return seen


def test_requires_grad__as_torch():
    torch = pytest.importorskip("torch")
    mine = _requires_grad_story(lambda x, r: Value(x, requires_grad=r))
    assert mine == _requires_grad_story(lambda x, r: torch.tensor(x, dtype=torch.float64, requires_grad=r))
    assert mine[-1] == (24.0, 0.0)


def test_requires_grad_set_false_on_a_computed_value_is_refused_at_the_assignment_as_torch():
    # Once accepted: an op made after it took the Value as a constant (a = x * 3, then a * x
    # gave d/dx 6 where the derivative is 12). torch refuses the assignment; so does this.
    torch = pytest.importorskip("torch")
    t = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf variables"):
        (t * 3).requires_grad = False
    x = Value(2.0, "x")
    a = x * 3.0
    with pytest.raises(RuntimeError, match=r"Value.requires_grad: only a leaf's requires_grad can be changed, and "
                                           r"this Value was computed by '\*' from others; use v.detach\(\)"):
        a.requires_grad = False
    assert a.requires_grad and not a.is_leaf
    (a * x).backward()
    assert x.grad == 12.0  # the true derivative, through a
    a.requires_grad = True  # unchanged: nothing to refuse
    data = Value(2.0, requires_grad=False) * 3.0  # computed from no Value that requires grad: a constant
    data.requires_grad = False
    data.requires_grad = True  # it becomes a leaf that does, as requires_grad_(True) makes it
    assert data.is_leaf and data.inputs == ()


@pytest.mark.parametrize("flag", ["False", 0, 1, None, np.bool_(False), 0.0])
def test_requires_grad_set_to_anything_but_a_bool_is_refused(flag):
    # "False" is truthy: the parameter the user froze went on training, silently
    w = Value(0.5, "w")
    with pytest.raises(TypeError, match=r"Value.requires_grad: requires_grad must be a bool, got "):
        w.requires_grad = flag
    assert w.requires_grad is True


def test_requires_grad__false_after_a_leaf_was_used_leaves_its_grad_as_torch():
    torch = pytest.importorskip("torch")
    seen = []
    for make in (Value, lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=True)):
        for freeze in (lambda v: v.requires_grad_(False), lambda v: setattr(v, "requires_grad", False)):
            a, b = make(2.0), make(5.0)
            y = a * b  # both used while they required grad
            freeze(a)  # frozen before backward (the method, or the attribute): torch's gives it no gradient
            y.backward()
            seen.append((float(a.grad or 0.0), float(b.grad)))
    assert seen == [(0.0, 2.0)] * 4
    net = mg.MLP(2, [3, 1], seed=0)
    loss = net([1.0, 2.0]) ** 2
    net.requires_grad_(False)
    net.layers[-1].requires_grad_(True)
    loss.backward()
    assert all(p.grad == 0.0 for p in net.layers[0].parameters())
    assert any(p.grad != 0.0 for p in net.layers[-1].parameters())


def test_backward_leaves_a_grad_of_none_on_a_leaf_that_requires_no_grad_as_torch():
    # a frozen parameter's .grad of None (after zero_grad(set_to_none=True)) became 0.0: torch's stays None
    net = mg.MLP(2, [3, 1], seed=0)
    net.layers[0].requires_grad_(False)
    net.zero_grad(set_to_none=True)
    (net([1.0, 2.0]) ** 2).backward()
    assert all(p.grad is None for p in net.layers[0].parameters())
    assert all(type(p.grad) is float for p in net.layers[-1].parameters())
    w, c, tw, tc = Value(2.0), Value(3.0, requires_grad=False), _tensor(2.0), _tensor(3.0, False)
    c.grad = w.grad = None
    (w * c).backward()
    (tw * tc).backward()
    assert (w.grad, c.grad) == (tw.grad.item(), tc.grad) == (3.0, None)


def test_detach__makes_a_leaf_as_torch_and_a_graph_that_used_it_refuses():
    torch = pytest.importorskip("torch")
    for make in (Value, lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=True)):
        x = make(2.0)
        y = x * 3.0
        z = y * y  # used y before it was detached
        assert y.detach_() is y and (y.requires_grad, y.is_leaf) == (False, True)
        (y * x).backward()  # y is now a constant 6
        assert float(x.grad) == 6.0
        with pytest.raises(RuntimeError, match="detach"):
            z.backward()  # never the gradient of a cut graph, silently
    x = Value(2.0, "x")
    y = x * 1.0
    z = y + 2.0  # (torch's add saves nothing and its graph would still reach x: here backward refuses)
    y.detach_()
    with pytest.raises(RuntimeError, match=r"backward: .*after '\+' used it \(or the Value was detached in place"):
        z.backward()
    with pytest.raises(RuntimeError, match="grad: .*detached in place"):
        mg.grad(z, [x])
    assert x.grad == 0.0 and y.inputs == () and y.op == ""
    leaf = Value(1.0)
    w = leaf * leaf
    leaf.detach_()  # a leaf too: torch refuses the graph that saved it
    with pytest.raises(RuntimeError, match="detached in place"):
        w.backward()


def test_detach__and_requires_grad__refuse_to_cut_a_graph_compile_records():
    v = Value(2.0, requires_grad=False)
    u = v * 3.0
    with observe_decisions(lambda kind, a, b, answer: answer):
        for call in (u.detach_, Value(1.0).detach_, u.requires_grad_):
            with pytest.raises(RuntimeError, match="refused while compile records"):
                call()
    assert u.inputs and not u.requires_grad


def test_values_are_made_safely_while_another_thread_observes_decisions():
    # compile patches Value's methods for the whole process while it records: a thread making
    # and setting Values meanwhile must see them work as always, even as the last recording ends
    errors: list = []
    stop = threading.Event()

    def maker():
        for _ in range(300_000):
            if stop.is_set():
                return
            try:
                Value(1.0).data = 3.0
            except Exception as e:  # noqa: BLE001 - collected, asserted below
                errors.append(e)
                return

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    t = threading.Thread(target=maker)
    try:
        t.start()
        for _ in range(20_000):
            if errors:
                break
            with observe_decisions(lambda kind, a, b, answer: answer):  # what compile does while recording
                pass
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(interval)
    assert errors == []


def test_detach_cuts_the_graph():
    x = Value(2.0)
    y = (x * 3).detach()
    z = y * x
    z.backward()
    assert y.inputs == () and y.data == 6.0 and x.grad == 6.0 and y.grad == 0.0


def test_constants_need_no_gradient():
    x = Value(2.0)
    y = 2 * x
    const = y.inputs[0]
    assert const.data == 2.0 and not const.requires_grad and y.inputs[1] is x


def test_million_node_chain_has_no_recursion_error():
    x = Value(1.0)
    y = x
    for _ in range(1_000_000):
        y = y + 1e-6
    y.backward()
    assert x.grad == 1.0
    assert y.data == pytest.approx(2.0, rel=1e-9)
    del y


def test_graph_has_no_reference_cycles():
    gc.collect()
    gc.disable()
    try:
        x = Value(0.5)
        y = ((x * x).tanh() + x.exp() / 2) ** 2
        y.backward()
        del x, y
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_pickle_and_deepcopy_keep_the_graph():
    x = Value(1.5, label="x")
    y = (x * x).sin()
    for clone in (pickle.loads(pickle.dumps(y)), copy.deepcopy(y)):
        (cx,) = clone.inputs[0].inputs[:1]
        clone.backward()
        assert cx.label == "x" and cx.grad == pytest.approx(2 * 1.5 * math.cos(2.25), rel=1e-15)
    assert x.grad == 0.0


# Each built-in op at a point where every input needs a gradient and no input sits at a kink.
OP_POINTS = {"+": (0.3, -1.2), "-": (0.3, -1.2), "*": (0.3, -1.2), "/": (0.3, -1.2), "**": (1.3, -1.2),
             "neg": (0.7,), "abs": (-0.7,), "exp": (0.7,), "log": (0.7,), "sqrt": (0.7,), "tanh": (0.7,),
             "sigmoid": (-0.7,), "relu": (0.7,), "leaky_relu": (-0.7, 0.2), "sin": (0.7,), "cos": (0.7,),
             "softplus": (0.7,), "dot": (0.3, -0.2, 1.1, 0.4, 0.05), "logsumexp": (0.3, -2.0, 1.5),
             "is_class": (0.5, 1.0), "log1p": (0.7,), "tanh_grad": (0.7,)}


def test_every_builtin_op_has_a_point_below():
    assert set(OP_POINTS) | {"take", "cross_entropy"} == mg.engine._BUILTIN  # their index is an integer: below


@pytest.mark.parametrize("index", [0.0, 1.0, 3.0])
def test_cross_entropy_op_derivatives_match_finite_differences_and_are_0_for_the_index(index):
    """cross_entropy(t, z) = -log softmax(z)[t]: each rule (floats, create_graph, and per input as
    mutation testing calls them) against central differences; an index carries no gradient."""
    op, zs = mg.get_op("cross_entropy"), [0.3, -1.2, 2.0, 0.5]
    t, vs = Value(index), [Value(z) for z in zs]
    out = op(t, *vs)
    assert out.data == pytest.approx(math.log(sum(math.exp(z) for z in zs)) - zs[int(index)], rel=1e-15)
    numeric = []
    for k in range(len(zs)):
        up, down = list(zs), list(zs)
        up[k] += 1e-6
        down[k] -= 1e-6
        numeric.append((op.forward(index, *up) - op.forward(index, *down)) / 2e-6)
    assert out._local[0] == 0.0 and list(out._local[1:]) == pytest.approx(numeric, rel=1e-7, abs=1e-9)
    assert [op.rule(i, 5)(index, *zs, out.data) for i in range(5)] == pytest.approx(list(out._local), rel=1e-14)
    assert [g.data for g in mg.grad(out, [t, *vs], create_graph=True)] == pytest.approx(list(out._local), rel=1e-14)
    for bad in (4.0, -1.0, 0.5):
        with pytest.raises(ValueError, match=r"cross_entropy\(.*\): index must be an integer in 0..3, got"):
            op(Value(bad), *vs)


def test_cross_entropy_op_is_exact_at_huge_logits_on_floats_values_and_arrays():
    # logsumexp(z) - z[t] gave 0.0 for z = (1e16, 1e16, 0), t = 0, and gradients (0, 1, 0)
    op, z = mg.get_op("cross_entropy"), [1e16, 1e16, 0.0]
    assert op(0.0, *z) == math.log(2.0)
    vs = [Value(x) for x in z]
    op(0.0, *vs).backward()
    assert [v.grad for v in vs] == [-0.5, 0.5, 0.0]
    arrays = op(np.array([0.0, 1.0, 2.0]), *(np.full(3, x) for x in z))
    assert arrays.tolist() == pytest.approx([math.log(2.0), math.log(2.0), 1e16], rel=1e-15)
    assert np.isnan(op(np.array([3.0]), np.ones(1), np.ones(1))).all()  # no index: replay names the sample


def test_cross_entropy_gradient_graph_is_linear_in_the_number_of_logits():
    # create_graph made each logit's softmax a cross_entropy node reading every logit: n**2 edges
    op = mg.get_op("cross_entropy")
    for n in (50, 400):
        z = [Value(0.01 * i) for i in range(n)]
        grads = mg.grad(op(3.0, *z), z, create_graph=True)
        edges = sum(len(v.inputs) for v in mg.topological_order(mg.dot(grads, z)))
        assert edges < 20 * n, (n, edges)
        probabilities = [math.exp(0.01 * i) for i in range(n)]
        assert [g.data for g in grads] == pytest.approx([p / sum(probabilities) - (k == 3)
                                                        for k, p in enumerate(probabilities)], rel=1e-13, abs=0)


def test_take_passes_the_gradient_to_the_option_picked_only():
    for index in (0.0, 2.0):
        i, xs = Value(index), [Value(x) for x in (0.3, -1.2, 0.7)]  # the index's derivative is 0
        out = mg.take(i, xs)
        assert out.data == xs[int(index)].data
        assert list(out._local) == [0.0, *(1.0 if k == index else 0.0 for k in range(3))]
        assert [g.data for g in mg.grad(out, [i, *xs], create_graph=True)] == list(out._local)
    for bad in (3.0, -1.0, 0.5):
        with pytest.raises(ValueError, match="index must be an integer in 0..2"):
            mg.take(Value(bad), [Value(1.0), Value(2.0), Value(3.0)])


@pytest.mark.parametrize("name", sorted(OP_POINTS))
def test_each_local_derivative_matches_finite_differences_of_the_forward(name):
    """Every derivative rule of every built-in op, input by input (leaky_relu's slope too), on the
    float path and on the create_graph path, against central differences of the float forward."""
    op, xs = mg.get_op(name), list(OP_POINTS[name])
    inputs = [Value(x) for x in xs]
    out = op(*inputs)
    for i in range(len(xs)):
        h = 1e-6 * max(1.0, abs(xs[i]))
        up, down = list(xs), list(xs)
        up[i] += h
        down[i] -= h
        numeric = (op.forward(*up) - op.forward(*down)) / (2 * h)
        assert out._local[i] == pytest.approx(numeric, rel=1e-7, abs=1e-9), f"{name}: input {i}"
    assert [g.data for g in mg.grad(out, inputs, create_graph=True)] == pytest.approx(list(out._local), rel=1e-15)


def test_replacing_an_ops_rules_reaches_every_path():
    """Mutation testing swaps `op.derivatives`: the unary and binary fast paths, the fused dot,
    logsumexp and create_graph must all use the replacement."""
    cases = {"tanh": lambda v: v[0].tanh(), "*": lambda v: v[0] * v[1], "dot": lambda v: mg.dot(v[:2], v[2:4], v[4]),
             "logsumexp": lambda v: mg.logsumexp(v[:3])}
    for name, f in cases.items():
        op = mg.get_op(name)
        vs = [Value(x) for x in (0.3, -0.2, 1.1, 0.4, 0.05)]
        right = f(vs)
        original = op.derivatives
        op.derivatives = tuple((lambda r: lambda *a: r(*a) * 2)(r) for r in original)
        try:
            doubled = f(vs)
            again = mg.grad(right, vs, create_graph=True, materialize_grads=True)
        finally:
            op.derivatives = original
        assert doubled._local == pytest.approx([2 * d for d in right._local], rel=1e-15), name
        plain = mg.grad(right, vs, materialize_grads=True)
        assert [g.data for g in again] == pytest.approx([2 * g for g in plain], rel=1e-15), name
    assert f(vs)._local == right._local  # restored


def test_define_op_runs_on_floats_values_and_create_graph():
    cube = mg.define_op("cube", lambda x: x ** 3, lambda x, out: 3 * x ** 2)
    assert cube(2.0) == 8.0
    x = Value(2.0)
    y = cube(x)
    assert y.op == "cube" and y.data == 8.0
    (g,) = mg.grad(y, x, create_graph=True)
    (g2,) = mg.grad(g, x)
    assert g.data == 12.0 and g2 == 12.0
    hyp = mg.define_op("hyp", math.hypot, lambda a, b, out: a / out, lambda a, b, out: b / out)
    a, b = Value(3.0), Value(4.0)
    hyp(a, b).backward()
    assert (a.grad, b.grad) == (0.6, 0.8)
    assert mg.get_op("cube") is cube and pickle.loads(pickle.dumps(y)).op == "cube"


def test_define_op_rejects_bad_definitions():
    with pytest.raises(ValueError, match="built-in"):
        mg.define_op("exp", math.exp, lambda a, out: out)
    with pytest.raises(TypeError, match="derivative"):
        mg.define_op("noderiv", math.exp)
    with pytest.raises(KeyError, match="no op named 'nosuch'"):
        mg.get_op("nosuch")


def test_module_functions_accept_floats_and_values():
    assert mg.exp(0.0) == 1.0 and mg.tanh(0.0) == 0.0 and mg.leaky_relu(-1.0, 0.2) == -0.2
    assert mg.sigmoid(Value(0.0)).data == 0.5 and mg.cos(Value(0.0)).op == "cos"


def test_dot_equals_unfused_sum_exactly():
    w = [Value(0.1 * i - 0.3) for i in range(5)]
    x = [Value(0.7 - 0.2 * i) for i in range(5)]
    b = Value(0.05)
    fused = mg.dot(w, x, b)
    unfused = b
    for wi, xi in zip(w, x):
        unfused = unfused + wi * xi
    assert fused.data == unfused.data
    fused.backward()
    g1 = [v.grad for v in w + x + [b]]
    mg.zero_grad(fused)
    unfused.backward()
    assert [v.grad for v in w + x + [b]] == g1
    with pytest.raises(ValueError, match="same length"):
        mg.dot(w, x[:2])


@pytest.mark.parametrize("frozen", [(), (5, 6), (0, 7), (10,), tuple(range(11))])
def test_dot_honours_requires_grad_as_the_unfused_graph_does(frozen):
    def inputs():
        vs = [Value(0.1 * i - 0.3, requires_grad=i not in frozen) for i in range(11)]
        return vs[:5], vs[5:10], vs[10]

    def unfused(w, x, b):
        z = b
        for wi, xi in zip(w, x):
            z = z + wi * xi
        return z
    results = []
    for build in (lambda w, x, b: mg.dot(w, x, b), unfused, lambda w, x, b: mg.dots([w], x, [b])[0]):
        w, x, b = inputs()
        out = build(w, x, b).tanh()
        if len(frozen) == 11:  # nothing needs a gradient, so neither does the output (PyTorch's rule)
            assert not out.requires_grad
            with pytest.raises(RuntimeError, match="does not require grad"):
                out.backward()
            continue
        out.backward()
        w2, x2, b2 = inputs()
        out2 = build(w2, x2, b2).tanh()
        second = mg.grad(out2, [v for v in w2 + x2 + [b2] if v.requires_grad], create_graph=True)
        results.append(([v.grad for v in w + x + [b]], [g.data for g in second]))
    if len(frozen) == 11:
        return
    assert results[0] == results[1] == results[2]
    assert all(results[0][0][i] == 0.0 for i in frozen)
    assert all(results[0][0][i] != 0.0 for i in range(11) if i not in frozen)


@pytest.mark.parametrize("weights", ["leaves", "one frozen", "one computed", "one float", "frozen bias",
                                     "computed bias"])
@pytest.mark.parametrize("x_kind", ["leaves", "frozen", "one frozen", "computed"])
def test_dots_makes_the_nodes_dot_makes(weights, x_kind):
    """A layer's `dots` takes shortcuts for trained weights (leaves that need gradients);
    every other mix of inputs must still give dot's values, order and gradients."""
    def inputs():
        ws = [[Value(0.3 * i - 0.2 * j + 0.1) for i in range(3)] for j in range(2)]
        bs = [Value(0.05), Value(-0.15)]
        if weights == "one frozen":
            ws[1][2].requires_grad = False
        elif weights == "one computed":  # deeper than x: the node's depth must come from it
            ws[1][0] = (((ws[1][0] * 1.5).tanh() + 0.2) * 0.7).exp()
        elif weights == "one float":
            ws[0][1] = 0.25
        elif weights == "frozen bias":
            bs[0].requires_grad = False
        elif weights == "computed bias":
            bs[1] = (bs[1] * 2.0).tanh().tanh()
        x = [Value(0.4), Value(-0.9), Value(1.3)]
        if x_kind == "frozen":
            x = [Value(v.data, requires_grad=False) for v in x]
        elif x_kind == "one frozen":
            x[1].requires_grad = False
        elif x_kind == "computed":
            x = [v.sin() for v in x]
        return ws, x, bs

    def run(build):
        ws, x, bs = inputs()
        zs = build(ws, x, bs)
        out = (zs[0] * zs[1].tanh()).exp()
        out.backward()
        leaves = [v for v in mg.topological_order(out) if v.is_leaf]
        return ([z.data for z in zs], [z.requires_grad for z in zs], [v.data for v in mg.topological_order(out)],
                [(v.data, v.grad) for v in leaves])

    assert run(lambda ws, x, bs: mg.dots(ws, x, bs)) == run(lambda ws, x, bs: [mg.dot(w, x, b) for w, b in zip(ws, bs)])


@pytest.mark.parametrize("x_needs", [False, True])
def test_dots_refuses_a_sum_that_is_not_finite_and_records_no_graph_under_no_grad_as_dot_does(x_needs):
    """`dots` makes a trained neuron's node itself; a sum that overflows is refused with dot's
    message, and under no_grad the results are plain numbers with no graph, as dot's."""
    def layer(scale):
        ws = [[Value(0.5), Value(-1.5)], [Value(scale), Value(2.0)]]
        return ws, [Value(scale, requires_grad=x_needs), Value(0.25, requires_grad=x_needs)], [Value(0.1), Value(0.0)]

    ws, x, bs = layer(1e200)
    with pytest.raises(OverflowError) as fused:
        mg.dots(ws, x, bs)
    with pytest.raises(OverflowError) as one:
        mg.dot(ws[1], x, bs[1])
    assert str(fused.value) == str(one.value) and "result is not finite" in str(fused.value)
    ws, x, bs = layer(3.0)
    with mg.no_grad():
        zs, expected = mg.dots(ws, x, bs), [mg.dot(w, x, b) for w, b in zip(ws, bs)]
    assert [(z.data, z.requires_grad, z.inputs, z.op) for z in zs] == \
        [(z.data, z.requires_grad, z.inputs, z.op) for z in expected]
    assert not zs[0].requires_grad and not zs[0].inputs


@pytest.mark.parametrize("x_needs", [False, True])
def test_dots_uses_dots_rules_even_when_a_test_swaps_them(x_needs):
    """`dots` reads trained neurons' local derivatives from the data (one tuple shared among
    neurons reading data); mutation testing swaps dot's rules, and each mutant must reach those
    nodes as it reaches `dot`'s."""
    from microgradnn.testing import mutation

    def grads(build):
        ws = [[Value(0.3 * i - 0.2 * j + 0.1) for i in range(3)] for j in range(2)]
        bs = [Value(0.05), Value(-0.15)]
        x = [Value(v, requires_grad=x_needs) for v in (0.4, -0.9, 1.3)]
        zs = build(ws, x, bs)
        (zs[0] * zs[1].tanh()).backward()
        return [v.grad for v in [*ws[0], *ws[1], *bs, *x]]

    mutants = mutation.mutants(["dot"])
    assert mutants
    for mutant in mutants:
        with mutation.applied(mutant):
            assert grads(mg.dots) == grads(lambda ws, x, bs: [mg.dot(w, x, b) for w, b in zip(ws, bs)]), mutant


# ---- higher-order gradients -------------------------------------------------------------

SECOND = [
    (lambda x: x ** 3, lambda x: 6 * x, 1.3),
    (lambda x: x.sin(), lambda x: -math.sin(x), 0.7),
    (lambda x: x.tanh(), lambda x: -2 * math.tanh(x) * (1 - math.tanh(x) ** 2), 0.4),
    (lambda x: x.sigmoid(), lambda x: (s := 1 / (1 + math.exp(-x))) * (1 - s) * (1 - 2 * s), -0.6),
    (lambda x: x.exp() * x, lambda x: math.exp(x) * (x + 2), 0.5),
    (lambda x: x.log(), lambda x: -1 / x ** 2, 2.5),
    (lambda x: x.log1p(), lambda x: -1 / (1 + x) ** 2, 0.6),
    (lambda x: 1 / x, lambda x: 2 / x ** 3, 1.7),
    (lambda x: x.sqrt(), lambda x: -0.25 * x ** -1.5, 3.0),
    (lambda x: x.softplus(), lambda x: (s := 1 / (1 + math.exp(-x))) * (1 - s), 0.9),
    (lambda x: 2 ** x, lambda x: math.log(2) ** 2 * 2 ** x, 0.8),
]


@pytest.mark.parametrize("f, d2, x0", SECOND)
def test_second_derivatives_match_closed_forms(f, d2, x0):
    x = Value(x0)
    (g,) = mg.grad(f(x), x, create_graph=True)
    (h,) = mg.grad(g, x)
    assert h == pytest.approx(d2(x0), rel=1e-12)
    assert x.grad == 0.0  # grad() leaves .grad alone


def test_second_derivatives_match_torch():
    torch = pytest.importorskip("torch")
    f = lambda a, b: (a * b).tanh() * a.exp() + (a / b).sin() * b ** 3
    a, b = Value(0.3), Value(1.1)
    ga, gb = mg.grad(f(a, b), [a, b], create_graph=True)
    hess = [mg.grad(g, [a, b]) for g in (ga, gb)]
    ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.3, 1.1))
    tga, tgb = torch.autograd.grad(f(ta, tb), [ta, tb], create_graph=True)
    t_hess = [[g.item() for g in torch.autograd.grad(tg, [ta, tb], retain_graph=True)] for tg in (tga, tgb)]
    assert [ga.data, gb.data] == pytest.approx([tga.item(), tgb.item()], rel=1e-12)
    assert [list(r) for r in hess] == [pytest.approx(r, rel=1e-12) for r in t_hess]


@pytest.mark.parametrize("a0, b0, expected", [
    (1e-20, 1e-158, -1e296),   # b * b is subnormal: the gradient was 1.6e-8 off
    (1e-300, 1e-300, -1e300),  # b * b underflows to 0: was refused as not finite
    (1e300, 1e300, -1e-300),   # b * b overflows: was 0
])
def test_division_gradient_wrt_the_divisor_where_b_squared_leaves_the_float_range(a0, b0, expected):
    a, b = Value(a0), Value(b0)
    (a / b).backward()
    assert b.grad == pytest.approx(expected, rel=1e-15)
    a, b = Value(a0), Value(b0)
    _, gb = mg.grad(a / b, [a, b], create_graph=True)
    assert gb.data == pytest.approx(expected, rel=1e-15)


def test_grad_refuses_an_unused_input_unless_allowed_as_torch():
    # it gave 0, where torch raises: a gradient asked of an input the output never saw is often a mistake
    x, y = Value(1.0), Value(2.0, "y")
    with pytest.raises(ValueError, match=r"grad: input 1 \(y=2.0\) was not used .* allow_unused=True"):
        mg.grad(x * 3, [x, y])
    tx, ty = _tensor(1.0), _tensor(2.0)
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        __import__("torch").autograd.grad(tx * 3, [tx, ty])
    assert mg.grad(x * 3, [x, y], allow_unused=True) == (3.0, None)
    assert mg.grad(x * 3, [x, y], materialize_grads=True) == (3.0, 0.0)
    assert [g.data for g in mg.grad(x * 3, [x, y], create_graph=True, materialize_grads=True)] == [3.0, 0.0]
    assert mg.grad(x * 0.0, x) == (0.0,)  # used, with gradient 0: no error, as torch
    with pytest.raises(ValueError, match="materialize_grads=True needs allow_unused=True"):
        mg.grad(x * 3, [x, y], allow_unused=False, materialize_grads=True)
    with pytest.raises(ValueError, match="at least one Value"):
        mg.grad(x * 3, [])
    with pytest.raises(RuntimeError, match="output does not require grad"):
        mg.grad(Value(2.0, requires_grad=False) * 3, x)
    with pytest.raises(TypeError, match="inputs must be Values"):
        mg.grad(x * 3, [1.0])


def test_grad_refuses_an_input_that_does_not_require_grad_as_torch():
    # d(c*c)/dc is 4 at c = 2, not the 0 that nothing recorded for c would give; torch raises
    c, w = Value(2.0, "c", requires_grad=False), Value(3.0)
    for inputs in (c, [w, c]):
        with pytest.raises(ValueError, match=r"grad: input \d \(c=2.0\) must have requires_grad=True"):
            mg.grad(c * c * w, inputs)
        with pytest.raises(ValueError, match="requires_grad=True"):
            mg.grad(c * c * w, inputs, create_graph=True)
    assert mg.grad(c * c * w, w) == (4.0,)


def test_backward_takes_torchs_one_item_gradient_as_grad_does():
    pytest.importorskip("torch")
    for gradient, want in (([None], 6.0), ((None,), 6.0), ([2.0], 12.0)):
        x, tx = Value(3.0), _tensor(3.0)
        (x * x).backward(gradient)
        (tx * tx).backward([g if g is None else _tensor(g, False) for g in gradient])
        assert x.grad == tx.grad.item() == want
    with pytest.raises(ValueError, match="backward: gradient must be finite, got nan"):
        (x * x).backward([math.nan])


def test_grad_takes_torchs_arguments_in_torchs_order():
    # torch.autograd.grad(y, x, 2.0) scales by grad_outputs=2.0; 2.0 must not become create_graph
    torch = pytest.importorskip("torch")
    x, tx, two = Value(3.0), _tensor(3.0), _tensor(2.0, False)
    assert mg.grad(x * x, x, 2.0) == mg.grad(x * x, x, [2.0]) == mg.grad(x * x, x, grad_outputs=2.0) == (12.0,)
    assert torch.autograd.grad(tx * tx, tx, two)[0].item() == 12.0
    assert mg.grad(x * x, x, [None]) == (6.0,) and torch.autograd.grad(tx * tx, tx, [None])[0].item() == 6.0
    (g,) = mg.grad(x * x, x, Value(2.0), None, True)  # grad_outputs, retain_graph, create_graph
    assert g.data == 12.0 and mg.grad(g, x) == (4.0,)
    y = x * x
    assert mg.grad(y, x, retain_graph=False) == mg.grad(y, x, retain_graph=True) == (6.0,)  # the graph is kept
    with pytest.raises(TypeError, match="grad: expected a number or Value, got bool"):
        mg.grad(x * x, x, True)
    with pytest.raises(ValueError, match="grad: gradient must be finite"):
        mg.grad(x * x, x, math.nan)
    with pytest.raises(TypeError, match="grad: allow_unused must be a bool or None, got int 1"):
        mg.grad(x * x, x, allow_unused=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'is_grads_batched'"):
        mg.grad(x * x, x, is_grads_batched=True)
    with pytest.raises(TypeError, match="grad: create_graph must be a bool, got float 2.0"):
        mg.grad(x * x, x, create_graph=2.0)
    (g,) = mg.grad(x * x, x, create_graph=True)
    assert g.data == 6.0


# ---- property-based ---------------------------------------------------------------------

UNARY = [lambda a: a.tanh(), lambda a: a.sigmoid(), lambda a: a.sin(), lambda a: (a * a + 1).log(),
         lambda a: a.exp() * 0.1, lambda a: -a, lambda a: a.softplus(), lambda a: (a * a + 0.5).sqrt(),
         lambda a: (a * a).log1p()]
BINARY = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
          lambda a, b: a / (b * b + 1), lambda a, b: (a * a + 1) ** b.tanh()]


@st.composite
def expressions(draw):
    """A random program over 3 inputs: each step applies an op to earlier results."""
    steps = draw(st.lists(st.tuples(st.booleans(), st.integers(0, len(UNARY) - 1), st.integers(0, 50), st.integers(0, 50)),
                          min_size=1, max_size=12))
    xs = draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=3, max_size=3))

    def f(*inputs):
        nodes = list(inputs)
        for binary, k, i, j in steps:
            a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
            nodes.append(BINARY[k % len(BINARY)](a, b) if binary else UNARY[k](a))
        return sum(nodes[3:], nodes[-1] * 0.0)
    return f, xs


@settings(max_examples=150, deadline=None)
@given(expressions())
def test_random_graphs_match_finite_differences(case):
    f, xs = case
    out, grads = analytic_grads(f, xs)
    numeric = numeric_grads(f, xs, h=1e-5)
    rounding = 1e-9 * abs(out)  # a central difference loses ~eps*|f|/h to rounding (|f| reaches 1e16 here)
    for g, n in zip(grads, numeric):
        assert g == pytest.approx(n, rel=1e-4, abs=1e-5 + rounding)


def _program_lse(*xs):
    return mg.logsumexp(xs) if type(xs[0]) is Value else _torch_module().logsumexp(_torch_module().stack(xs), 0)


def _program_softmax0(*xs):
    torch = _torch_module()
    return mg.losses.softmax(xs)[0] if type(xs[0]) is Value else torch.softmax(torch.stack(xs), 0)[0]


def _program_dot(a, b, c):
    return mg.dot([a, b], [c, a], b) if type(a) is Value else a * c + b * a + b


def _torch_module():
    import torch
    return torch


# op(a, b, c, k): k is a constant, an int, float, bool or numpy scalar as drawn on the Value side
# and its float on torch's; every op keeps its inputs in its domain
TORCH_OPS = [
    lambda a, b, c, k: a + b, lambda a, b, c, k: a - b * k, lambda a, b, c, k: k * a * b,
    lambda a, b, c, k: k - a, lambda a, b, c, k: a / (b * b + 1), lambda a, b, c, k: (a * a + 1) ** b.tanh(),
    lambda a, b, c, k: a ** 2, lambda a, b, c, k: (b * b + 0.5) ** k, lambda a, b, c, k: a.tanh(),
    lambda a, b, c, k: a.sigmoid(), lambda a, b, c, k: a.sin() * b.cos(), lambda a, b, c, k: (a * a + 1).log(),
    lambda a, b, c, k: a.tanh().exp(), lambda a, b, c, k: (a * a + 0.25).sqrt(), lambda a, b, c, k: -a.abs(),
    lambda a, b, c, k: (a * a).log1p(), lambda a, b, c, k: (a + 0.5).relu(), lambda a, b, c, k: a * a / a,
    lambda a, b, c, k: a - a + b, lambda a, b, c, k: _program_lse(a, b, c),
    lambda a, b, c, k: _program_softmax0(a, b, a), lambda a, b, c, k: _program_dot(a, b, c).tanh(),
]
CONSTANTS = [2, -1, 0.5, True, np.float64(1.5), np.int64(3), np.float32(0.25)]


@st.composite
def torch_programs(draw):
    """A random program over 3 inputs (some needing no gradient), results reused by later steps."""
    steps = draw(st.lists(st.tuples(*[st.integers(0, 50)] * 3, st.integers(0, len(TORCH_OPS) - 1),
                                    st.sampled_from(CONSTANTS)), min_size=1, max_size=10))
    xs = draw(st.lists(st.floats(-2, 2).filter(lambda x: abs(x) > 0.01), min_size=3, max_size=3))
    needs = draw(st.lists(st.booleans(), min_size=3, max_size=3).filter(any))
    return steps, xs, needs


def _run_program(steps, inputs, lift):
    nodes = list(inputs)
    for i, j, m, k, constant in steps:
        a, b, c = (nodes[n % len(nodes)] for n in (i, j, m))
        nodes.append(TORCH_OPS[k](a, b, c, lift(constant)))
    return nodes[-1] + nodes[len(inputs):][0]  # the last result and the first, which may be the same


# (not shrunk: a failing program is shown as drawn, where shrinking one through torch took minutes)
@settings(max_examples=60, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate])
@given(torch_programs())
def test_random_graphs_match_torch_to_second_order(program):
    # forward, backward twice (leaves accumulate), and grad(create_graph=True) differentiated again,
    # on graphs that reuse results, take numpy scalars on either side and leaves that need no gradient
    torch = pytest.importorskip("torch")
    steps, xs, needs = program
    vs = [Value(x, requires_grad=n) for x, n in zip(xs, needs)]
    ts = [_tensor(x, n) for x, n in zip(xs, needs)]
    out, t_out = _run_program(steps, vs, lambda k: k), _run_program(steps, ts, float)
    assert type(out) is Value and out.data == pytest.approx(t_out.item(), rel=1e-12, abs=1e-12)
    assert out.requires_grad is t_out.requires_grad
    if not out.requires_grad:  # computed from leaves that need no gradient only
        return
    out.backward()
    out.backward()
    (2 * t_out).backward(retain_graph=True)
    for v, t in zip(vs, ts):
        assert v.grad == (0.0 if t.grad is None else pytest.approx(t.grad.item(), rel=1e-9, abs=1e-12))
    wanted = [v for v in vs if v.requires_grad]
    firsts = mg.grad(out, wanted, create_graph=True, materialize_grads=True)
    t_firsts = torch.autograd.grad(t_out, [t for t in ts if t.requires_grad], create_graph=True,
                                   materialize_grads=True)
    total, t_total = sum(firsts), sum(t_firsts)
    assert total.data == pytest.approx(t_total.item(), rel=1e-9, abs=1e-12)
    if total.requires_grad and t_total.requires_grad:
        seconds = mg.grad(total, wanted, allow_unused=True)
        t_seconds = torch.autograd.grad(t_total, [t for t in ts if t.requires_grad], allow_unused=True)
        for g, t in zip(seconds, t_seconds):
            assert (g or 0.0) == pytest.approx(0.0 if t is None else t.item(), rel=1e-8, abs=1e-10)


@settings(max_examples=100, deadline=None)
@given(expressions())
def test_topological_order_lists_each_node_once_after_its_inputs(case):
    f, xs = case
    out = f(*map(Value, xs))
    order = mg.topological_order(out)
    position = {v: i for i, v in enumerate(order)}
    reachable, stack = {out}, [out]
    while stack:
        for x in stack.pop().inputs:
            if x not in reachable:
                reachable.add(x)
                stack.append(x)
    assert len(order) == len(position) and set(order) == reachable
    assert all(position[x] < position[v] for v in order for x in v.inputs)


@pytest.mark.parametrize("call, hint", [(mg.topological_order, "call it once per root"), (mg.tree, "call it once per root"),
                                        (mg.zero_grad, "pass them as zero_grad(*roots)")])
def test_graph_walks_refuse_what_is_not_a_value_naming_it(call, hint):
    # was: a list raised "unhashable type: 'list'" (or 'list' object has no attribute 'op'), a number
    # "'int' object has no attribute 'inputs'"
    a, b = Value(1.0), Value(2.0)
    name = call.__name__
    with pytest.raises(TypeError, match=rf"^{name}: expected a Value, got list \(for several roots, {re.escape(hint)}\)$"):
        call([a * b, b])
    for bad, kind in ((3, "int"), (None, "NoneType"), ((a,), "tuple")):
        with pytest.raises(TypeError, match=rf"^{name}: expected a Value, got {kind}"):
            call(bad)
    a.grad = 5.0
    with pytest.raises(TypeError):
        mg.zero_grad(a, [b])
    assert a.grad == 5.0  # checked before any .grad is reset


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy, lambda v: pickle.loads(pickle.dumps(v))])
def test_a_copy_of_a_graph_whose_input_changed_after_use_stays_refused(copier):
    x = Value(2.0, "x")
    y = x * x
    x.data = 3.0
    stale = copier(y)  # the copy gave d/dx = 4 (the derivative at 2) beside x = 3, as if current
    for differentiate in (stale.backward, lambda: mg.grad(stale, stale.inputs[0])):
        with pytest.raises(RuntimeError, match=r"the data of Value 'x' \(now 3.0\) was changed after '\*' used it"):
            differentiate()
    fresh = copier(x * x)
    fresh.backward()
    assert fresh.inputs[0].grad == 6.0


def test_backward_order_survives_pickling_and_new_ops_on_old_nodes():
    x = Value(0.7, label="x")
    long = x
    for _ in range(30):
        long = long * 1.01
    long, x = pickle.loads(pickle.dumps((long, x)))
    y = long + x * 2  # a 31-op path and a 2-op path from x
    y.backward()
    assert x.grad == pytest.approx(1.01 ** 30 + 2, rel=1e-14)


# ---- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("bad, error, message", [
    (lambda: Value("abc"), TypeError, "Value: expected a number or Value, got str 'abc'"),
    (lambda: Value(None), TypeError, "got NoneType None"),
    (lambda: Value([1, 2]), TypeError, r"got list \[1, 2\]"),
    (lambda: Value(float("nan"), label="w"), ValueError, "must be finite, got nan \\(label 'w'\\)"),
    (lambda: Value(2) + "x", TypeError, r"\+: expected a number or Value, got str 'x'"),
    (lambda: "x" * Value(2), TypeError, r"\*: expected a number or Value, got str"),
    (lambda: Value(-1.0, label="q").log(), ValueError, r"log\(q=-1.0\): input must be > 0"),
    (lambda: Value(0.0).log(), ValueError, r"log\(0.0\): input must be > 0"),
    (lambda: Value(-4.0).sqrt(), ValueError, r"sqrt\(-4.0\): input must be >= 0"),
    (lambda: Value(-2.0) ** 0.5, ValueError, "negative base needs an integer exponent"),
    (lambda: Value(0.0) ** -1, ValueError, "0 cannot be raised to a negative power"),
    (lambda: Value(1.0) / 0, ZeroDivisionError, r"1.0 / 0.0: division by zero"),
    (lambda: 1 / Value(0.0, label="d"), ZeroDivisionError, r"1.0 / d=0.0: division by zero"),
    (lambda: Value(1000.0).exp(), OverflowError, r"exp\(1000.0\): result is too large"),
    (lambda: Value(1e200) * 1e200, OverflowError, "result is not finite"),
    (lambda: mg.log(-1.0), ValueError, r"log\(-1.0\): input must be > 0"),
    (lambda: Value(-1.0, label="q").log1p(), ValueError, r"log1p\(q=-1.0\): input must be > -1"),
    (lambda: mg.log1p(-2.0), ValueError, r"log1p\(-2.0\): input must be > -1"),
])
def test_bad_input_raises_a_clear_error(bad, error, message):
    with pytest.raises(error, match=message):
        bad()


def test_gradient_at_a_singular_point_raises_only_if_it_flows():
    x = Value(0.0, label="x")
    y = x.sqrt()  # sqrt'(0) is infinite
    with pytest.raises(ValueError, match=r"derivative of sqrt\(x=0.0\) with respect to input 0"):
        y.backward()
    z = Value(0.0)
    (z.sqrt() * 0.0 + z).backward()  # no gradient flows into sqrt: fine
    assert z.grad == 1.0



def test_grad_runs_no_derivative_rule_off_the_paths_to_its_inputs():
    # as torch.autograd.grad: sqrt'(0) is undefined, but no gradient asked for goes through it
    v, w = Value(1.5), Value(0.0)
    out = 2.0 * v + w.sqrt()
    assert mg.grad(out, [v]) == (2.0,)
    (g,) = mg.grad(out, [v], create_graph=True)
    assert g.data == 2.0
    with pytest.raises(ValueError, match=r"grad: the derivative of sqrt\(0.0\) is not defined"):
        mg.grad(out, [v, w], create_graph=True)  # one that does

def test_a_gradient_that_overflows_raises():
    a = Value(1e-300)
    y = a * 1e300 * 1e300  # finite data (1e300), but dy/da = 1e600
    with pytest.raises(OverflowError, match="a gradient overflowed"):
        y.backward()


def test_negative_base_to_value_exponent_raises_when_exponent_needs_a_gradient():
    a, b = Value(-2.0), Value(3.0)
    y = a ** b
    assert y.data == -8.0
    with pytest.raises(ValueError, match="with respect to input 1"):
        y.backward()


def test_logsumexp_is_stable_and_its_gradient_is_softmax():
    xs = [Value(1000.0), Value(1001.0), Value(-5.0)]
    y = mg.logsumexp(xs)
    assert y.data == pytest.approx(1001.0 + math.log1p(math.exp(-1.0)), rel=1e-15)
    y.backward()
    total = sum(math.exp(x.data - 1001.0) for x in xs)
    assert [x.grad for x in xs] == pytest.approx([math.exp(x.data - 1001.0) / total for x in xs], rel=1e-14)
    f = lambda a, b, c: mg.logsumexp([a, b * a, c.sin()])
    assert analytic_grads(f, [0.3, -1.2, 2.0])[1] == pytest.approx(numeric_grads(f, [0.3, -1.2, 2.0]), rel=1e-7)
    with pytest.raises(ValueError, match="at least one input"):
        mg.logsumexp([])


# ---- reliability: requires_grad, finiteness, stale data, hooks (issue 15) ---------------------

def test_an_op_output_requires_grad_only_if_an_input_does():
    c, d, w = Value(0.0, requires_grad=False), Value(4.0, requires_grad=False), Value(2.0)
    assert not (c * d).requires_grad and not c.sqrt().requires_grad and not mg.dot([c], [d]).requires_grad
    assert (c * w).requires_grad and mg.dot([c], [w]).requires_grad
    # sqrt'(0) is infinite, but on a branch of data only it is never evaluated (as in PyTorch)
    y = w * c.sqrt() + w * d
    y.backward()
    assert w.grad == 4.0 and c.grad == 0.0
    with mg.no_grad():
        assert not (w * w).requires_grad


def test_grad_refuses_an_input_whose_requires_grad_was_set_after_it_was_used():
    a, c = Value(1.0), Value(2.0, "c", requires_grad=False)
    y = a * c.relu() + c * 0.0  # relu(c) and c * 0 made while c needed no gradient
    c.requires_grad = True  # d(y)/dc is 1, but no derivative was recorded for c: 0 was returned
    with pytest.raises(RuntimeError, match=r"grad: input 0 \(c=2.0\) of relu\(c=2.0\) had requires_grad=False"):
        mg.grad(y, c)
    assert mg.grad(y, a) == (2.0,)
    b = Value(3.0, "b", requires_grad=False)
    z = a * b
    b.requires_grad = True
    with pytest.raises(RuntimeError, match=r"grad: input 1 \(b=3.0\) of 1.0 \* b=3.0 had requires_grad=False"):
        mg.grad(z, b)
    d = Value(-1.0)
    assert mg.grad(a * d.relu(), d) == (0.0,)  # a derivative that is 0 is still 0




def test_backward_of_a_value_that_needs_no_gradient_raises():
    c = Value(2.0, requires_grad=False)
    with pytest.raises(RuntimeError, match="does not require grad"):
        (c * 3).backward()


def test_backward_finiteness_check_does_not_overflow_on_finite_gradients():
    x, z = Value(1e-300), Value(1e-300)
    (x * 1e308 + z * 1e308).backward()
    assert x.grad == 1e308 and z.grad == 1e308


def test_a_failed_backward_leaves_every_gradient_as_it_was():
    x, w = Value(1e-300, "x"), Value(1.0, "w")
    x.grad, w.grad = 0.5, 0.25
    y = x * 1e200 * 1e200 + w  # finite forward (1e100), but dy/dx = 1e400
    with pytest.raises(OverflowError, match="overflowed"):
        y.backward()
    assert (x.grad, w.grad) == (0.5, 0.25)
    assert all(v.grad == 0.0 for v in mg.topological_order(y) if v.inputs)
    with pytest.raises(ValueError, match=r"derivative of sqrt\(0.0\)"):
        (Value(0.0).sqrt() * w + w).backward()
    assert w.grad == 0.25


def test_backward_through_shared_layers_matches_grad_and_a_failure_restores_every_leaf():
    """A batch through one layer: wide nodes whose inputs backward has met already, leaves
    (weights, biases, inputs, constants) reached by many paths, and a leaf as the root."""
    ws = [[Value(0.1 * i - 0.2 * j + 0.05) for i in range(4)] for j in range(3)]
    bs = [Value(0.01 * j) for j in range(3)]
    params = [p for w in ws for p in w] + bs
    rows = [[Value(0.3 * k + 0.1 * i, requires_grad=k == 1) for i in range(4)] for k in range(3)]

    def loss():
        total = 0.0
        for x in rows:
            h = [z.tanh() for z in mg.dots(ws, x, bs)]
            total = total + mg.dot(ws[0][:3], h, bs[2]) * 0.5 + h[1] * h[2]
        return total
    expected = mg.grad(loss(), params + rows[1])
    loss().backward()
    assert [p.grad for p in params + rows[1]] == list(expected)
    assert all(x.grad == 0.0 for x in rows[0] + rows[2])
    same = loss()
    same.backward()
    same.backward()  # the same graph again: its interior grads start from 0 again, leaves add up
    assert [p.grad for p in params + rows[1]] == pytest.approx([3 * g for g in expected], rel=1e-15)
    before = [p.grad for p in params + rows[1]]
    bad = loss() + Value(0.0).sqrt() * ws[1][1]  # sqrt'(0) is infinite: backward must fail
    with pytest.raises(ValueError, match=r"derivative of sqrt\(0.0\)"):
        bad.backward()
    assert [p.grad for p in params + rows[1]] == before
    ws[0][0].backward(2.0)  # a leaf as the root adds into its own grad
    assert ws[0][0].grad == before[0] + 2.0


@pytest.mark.parametrize("power, second", [(3, lambda x: 6 * x), (5, lambda x: 20 * x ** 3)])
def test_second_derivative_of_pow_with_a_negative_base(power, second):
    x = Value(-2.0)
    g, = mg.grad(x ** power, [x], create_graph=True)
    g.backward()
    assert x.grad == second(-2.0)
    g, = mg.grad(x ** power, [x], create_graph=True)
    gg, = mg.grad(g, [x])
    assert gg == second(-2.0)


def test_changing_data_after_forward_makes_backward_and_grad_raise():
    x, w = Value(2.0, "x"), Value(3.0)
    y = (x * w).tanh()
    x.data = 2.5
    for attempt in (y.backward, lambda: mg.grad(y, [x]), lambda: mg.grad(y, [x], create_graph=True)):
        with pytest.raises(RuntimeError, match="'x'.*changed after '\\*' used it"):
            attempt()
    assert x.grad == 0.0 and w.grad == 0.0
    y = (x * w).tanh()  # a new forward pass at the new value is fine
    y.backward()
    assert x.grad == pytest.approx(3 * (1 - math.tanh(7.5) ** 2))
    with pytest.raises(ValueError, match="finite"):
        x.data = math.inf


def test_a_backward_hook_that_raises_warns_and_backward_still_runs():
    def broken(root, when):
        raise KeyError("oops")
    x = Value(2.0)
    with mg.engine.register_backward_hook(broken):
        with pytest.warns(RuntimeWarning, match="broken.*KeyError"):
            (x * x).backward()
    assert x.grad == 4.0


def test_removing_a_backward_hooks_handle_removes_that_registration_only_as_torchs():
    # the same hook registered twice (nested blocks, a cell run again): leaving the inner block
    # removed both, so the outer block's hook silently stopped being called
    calls = []

    def log(root, when):
        calls.append(when)
    x = Value(2.0)
    with mg.engine.register_backward_hook(log):
        with mg.engine.register_backward_hook(log):
            (x * x).backward()
        assert calls == ["before", "before", "after", "after"]
        (x * x).backward()
    assert calls[4:] == ["before", "after"]
    (x * x).backward()
    assert len(calls) == 6


def test_a_deepcopy_of_a_graph_keeps_its_ops_after_define_op_gives_the_name_to_another():
    # a cell defining an op, run again with another rule: the copy took the new op by name, so
    # its second derivative was the new op's (18) where the graph's is 2
    sq = mg.define_op("sq_redefined", lambda x: x * x, lambda x, out: 2 * x)
    x = Value(3.0)
    y = sq(x)
    mg.define_op("sq_redefined", lambda x: x * x * x, lambda x, out: 3 * x * x)
    for twin in (copy.deepcopy(y), copy.copy(y)):
        assert twin.op == "sq_redefined" and twin._op is sq
        (tx,) = twin.inputs
        assert mg.grad(mg.grad(twin, [tx], create_graph=True)[0], [tx]) == (2.0,)


def test_a_pickle_loaded_in_a_new_process_keeps_data_versions_newer_than_those_noted_before(tmp_path):
    # the version clock restarts in a new process, so a parameter set there looked older than the
    # version an unpickled optimizer had noted: its step overwrote the number set with a stale one
    path = tmp_path / "trained.pkl"
    save = f"""
import pickle, microgradnn as mg
m = mg.MLP(2, [3, 1], seed=0)
opt = mg.optim.SGD(m.parameters(), lr=0.1)
for _ in range(100):
    m.parameters()[0].data = 0.5  # the clock runs on, as in any training
opt.zero_grad(); m([1.0, 0.5]).backward(); opt.step()
pickle.dump((m, opt), open({str(path)!r}, "wb"))
"""
    load = f"""
import pickle
m, opt = pickle.load(open({str(path)!r}, "rb"))
p = m.parameters()[0]
p.data = 100.0
opt.zero_grad()
opt.step()  # every gradient 0: nothing moves
print(p.data)
"""
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(mg.__file__)))}
    for code in (save, load):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["100.0"]


def test_grad_with_create_graph_records_the_gradients_graph_inside_no_grad_as_torchs():
    # the gradient came back as a Value without a graph: a penalty on it added to a loss passed
    # no gradient, silently (torch's autograd.grad records it whatever the grad mode)
    torch = pytest.importorskip("torch")
    x = Value(3.0)
    y = x * x * x
    with mg.no_grad():
        (g,) = mg.grad(y, [x], create_graph=True)
        assert not mg.is_grad_enabled()
    assert g.requires_grad and g.data == 27.0 and mg.grad(g, [x]) == (18.0,)
    tx = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    ty = tx ** 3
    with torch.no_grad():
        (tg,) = torch.autograd.grad(ty, [tx], create_graph=True)
    assert tg.requires_grad and torch.autograd.grad(tg, [tx])[0].item() == 18.0


def test_deep_graphs_deepcopy_and_pickle_without_recursion():
    x = Value(0.5, "x")
    y = x
    for _ in range(5000):
        y = y * 1.0001 + 0.0
    y.backward()
    for twin in (copy.deepcopy(y), pickle.loads(pickle.dumps(y))):
        nodes = mg.topological_order(twin)
        assert len(nodes) == len(mg.topological_order(y)) and twin.data == y.data and twin.grad == y.grad
        (tx,) = [v for v in nodes if v.label == "x"]
        assert tx is not x and tx.grad == x.grad
        tx.grad = 0.0
        twin.backward()
        assert tx.grad == x.grad
    # the README's 100-sample loss
    X, ys = mg.data.make_moons(100, seed=0)
    model = mg.MLP(2, [4, 1], seed=0)
    loss = mg.losses.hinge([model(row) for row in X], ys * 2 - 1)
    assert copy.deepcopy(loss).data == loss.data and pickle.loads(pickle.dumps(loss)).data == loss.data


def chain(n):
    nodes = [Value(1.0, "x")]
    for _ in range(n):
        nodes.append(nodes[-1] * 1.0000001 + 0.0)
    return nodes


@pytest.mark.parametrize("order", ["root first", "middle first"])
def test_every_pickle_of_a_deep_graph_is_flat_whatever_was_pickled_before(order):
    nodes = chain(5000)
    picks = [nodes[-1], nodes[3000]] if order == "root first" else [nodes[3000], nodes[-1]]
    for node in picks * 2:
        assert pickle.loads(pickle.dumps(node)).data == node.data
        assert copy.deepcopy(node).data == node.data
    del nodes, picks
    for node in chain(5000)[::-1000]:  # a new graph, some of whose nodes reuse freed ids
        assert pickle.loads(pickle.dumps(node)).data == node.data


def test_many_nodes_of_one_graph_pickle_in_linear_size_and_keep_their_sharing():
    nodes = chain(3000)  # each listed every node below it again: 90 MB here (quadratic)
    data = pickle.dumps(nodes)
    assert len(data) < 400 * len(nodes)  # (five Values a link)
    for back in (pickle.loads(data), copy.deepcopy(nodes)):
        assert [v.data for v in back] == [v.data for v in nodes]
        assert all(back[k + 1].inputs[0].inputs[0] is back[k] for k in range(len(back) - 1))
    assert len(pickle.dumps(nodes[-1])) < 400 * len(nodes)  # and a later pickle lists its own nodes


def test_a_pickler_kept_alive_leaves_other_pickles_of_its_graph_flat():
    nodes = chain(5000)
    kept = pickle.Pickler(io.BytesIO())  # its memo (which holds what it listed) lives on
    kept.dump(nodes[-1])
    assert pickle.loads(pickle.dumps(nodes[-1])).data == nodes[-1].data  # was a RecursionError
    assert copy.deepcopy(nodes[3000]).data == nodes[3000].data
    kept.dump(nodes[-1])  # and the kept one still works
    del kept


def test_a_failed_pickle_leaves_no_trace_on_the_next():
    nodes = chain(5000)
    nodes[2000].origin = (lambda: None,)  # cannot be pickled
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(nodes[-1])
    nodes[2000].origin = None
    assert pickle.loads(pickle.dumps(nodes[3000])).data == nodes[3000].data


def test_tree_grows_linearly_with_depth():
    x = Value(1.0, "x")
    y = x
    for _ in range(20000):
        y = y + 1.0
    text = y.tree()
    assert len(text.splitlines()) == 40001 and len(text) < 150 * 40001  # (was ~1.6 GB: depth**2 spaces)
    assert "[level 20000] #20000 'x' leaf" in text


def test_define_op_checks_arity_and_on_first_use_what_rules_return():
    with pytest.raises(TypeError, match=r"define_op\('two'\): forward must take 1 input"):
        mg.define_op("two", lambda a, b: a * b, lambda a, out: 1.0)
    with pytest.raises(TypeError, match=r"derivative rule 1 must take \(\*inputs, out\): 3 arguments"):
        mg.define_op("two", lambda a, b: a * b, lambda a, b, out: b, lambda a, out: a)
    none_rule = mg.define_op("none_rule", lambda a: 2 * a, lambda a, out: None)
    with pytest.raises(TypeError, match="none_rule: derivative rule 0 returned NoneType"):
        none_rule(Value(1.0))
    list_rule = mg.define_op("list_rule", lambda a, b: a * b, lambda a, b, out: [b], lambda a, b, out: a)
    with pytest.raises(TypeError, match=r"list_rule: derivative rule 0 returned list \[2.0\]"):
        list_rule(Value(1.0), Value(2.0))
    twice = mg.define_op("twice_int", lambda a: 2 * a, lambda a, out: 2)  # an int is a number
    x = Value(1.5)
    twice(x).backward()
    assert x.grad == 2.0


def test_backward_from_a_value_gradient_adds_floats():
    x = Value(3.0)
    (x * x).backward(Value(2.0))  # a Value as the gradient to start from: its number, as torch's tensor
    assert type(x.grad) is float and x.grad == 12.0


@pytest.mark.parametrize("x", [1.0, 0.0, 1.5])
def test_a_value_is_no_list_index_outside_compile(x):
    with pytest.raises(TypeError):
        [10, 20][Value(x)]
    with pytest.raises(TypeError):
        int(Value(x))


@pytest.mark.parametrize("x, y_requires_grad", [(2.0, False), (0.0, True), (0.0, False), (-3.0, True)])
def test_the_base_derivative_of_a_power_of_0_is_0_with_create_graph_as_on_floats(x, y_requires_grad):
    a, b = Value(x), Value(0.0, requires_grad=y_requires_grad)
    out = a ** b
    g = mg.grad(out, [a], create_graph=True)[0]
    assert g.data == out._local[0] == 0.0  # a ** 0 is 1 for every a (torch gives 0 too)


@pytest.mark.parametrize("args", [(Value(1.0), Value(2.0)), (Value(1.0), 2.0), (1.0, 2.0)])
def test_an_op_called_with_the_wrong_number_of_inputs_says_how_many_it_takes(args):
    tanh = mg.engine.ops()["tanh"]
    with pytest.raises(TypeError, match="tanh: takes 1 inputs, got 2"):
        tanh(*args)
    with pytest.raises(TypeError, match="dot: cannot take 2 inputs"):
        mg.engine.ops()["dot"](*args)
    with pytest.raises(TypeError, match=r"\*: takes 2 inputs, got 3"):
        mg.engine.ops()["*"](*args, 3.0)


def test_tree_prints_data_and_grad(neuron_graph):
    o = neuron_graph
    lines = o.tree().splitlines()
    assert lines[0] == "#0 'o' tanh data=0.7071 grad=1"
    assert lines[1] == "  #1 + data=0.8814 grad=0.5"
    assert "    #9 'b' leaf data=6.881 grad=0.5" in lines
    assert len(lines) == 10
    x = Value(2.0, label="x")
    assert (x * x).tree(view="forward").splitlines() == ["#0 * data=4", "  #1 'x' leaf data=2", "  #1 'x' (shown above)"]


@pytest.mark.parametrize("call, message", [
    (lambda: Value(2.0) / math.inf, "/: a number used in a computation must be finite, got inf"),
    (lambda: math.inf / Value(2.0), "/: a number used in a computation must be finite, got inf"),
    (lambda: Value(1.0) ** math.nan, r"\*\*: a number used in a computation must be finite, got nan"),
    (lambda: Value(2.0) * np.float64("nan"), r"\*: a number used in a computation must be finite, got nan"),
    (lambda: Value(2.0).leaky_relu(math.inf), "leaky_relu: a number used in a computation must be finite, got inf"),
    (lambda: mg.engine.relu(float("nan")), "relu: a number used in a computation must be finite, got nan"),
    (lambda: mg.engine.sigmoid(-math.inf), "sigmoid: a number used in a computation must be finite, got -inf"),
    (lambda: mg.engine.dot([1.0], [math.inf]), "dot: a number used in a computation must be finite, got inf"),
    (lambda: mg.engine.dot([Value(1.0)], [2.0], math.nan), "dot: a number used in a computation must be finite"),
], ids=["div", "rdiv", "pow", "numpy", "slope", "relu", "sigmoid", "dot-numbers", "dot-bias"])
def test_a_number_that_is_not_finite_is_refused_where_it_enters(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("call, who", [
    (lambda: Value(10 ** 400), "Value"), (lambda: Value(1.0) + 10 ** 400, r"\+"),
    (lambda: mg.engine.exp(-10 ** 400), "exp"), (lambda: Value(1.0).backward(10 ** 400), "backward"),
], ids=["Value", "operand", "op", "backward"])
def test_an_int_too_large_for_a_float_is_refused_by_its_size(call, who):
    with pytest.raises(ValueError, match=rf"^{who}: expected a finite number, got an int of about 401 digits "
                                         r"\(too large for a float\)$"):
        call()


def test_a_value_compares_with_a_huge_int_exactly():
    assert Value(2.0) < 10 ** 400 and Value(2.0) > -10 ** 400 and not Value(2.0) >= 10 ** 400


def test_a_grad_set_to_none_starts_from_zero_as_in_pytorch():
    w = Value(2.0, "w")
    w.grad = None  # PyTorch's set-to-none idiom
    assert repr(w) == "Value(data=2, grad=None, label='w')" and "'w' leaf data=2 grad=None" in (w * 3).tree()
    (w * 3).backward()
    assert w.grad == 3.0 and type(w.grad) is float
    w.grad = None
    w.backward()  # the root itself a leaf
    assert w.grad == 1.0


@pytest.mark.parametrize("bad", ["1", [1.0], True])
def test_a_grad_that_is_not_a_number_is_refused_before_any_leaf_changes(bad):
    a, b = Value(2.0, "a"), Value(3.0, "b")
    a.grad, b.grad = None, bad
    with pytest.raises(TypeError, match=rf"backward: a leaf's .grad must be a number or None, got "
                                        rf"{type(bad).__name__} .* \(label 'b'\)"):
        (a * b).backward()
    assert a.grad is None and b.grad is bad
    assert "grad=" in repr(b)


@pytest.mark.parametrize("call", [lambda: Value(True), lambda: Value(np.bool_(False)), lambda: Value(1.0).backward(True)])
def test_a_bool_given_as_a_values_number_is_refused_and_an_operand_is_0_or_1(call):
    with pytest.raises(TypeError, match="expected a number or Value, got (bool|bool_) "):
        call()
    v = Value(1.0)
    with pytest.raises(TypeError, match="got bool True"):
        v.data = True
    assert v.data == 1.0
    # as an operand a bool is 0 or 1, as in Python and PyTorch (a mask)
    assert (v * True).data == 1.0 and (v * np.bool_(False)).data == 0.0 and mg.relu(True) == 1.0


def test_the_derivative_of_a_to_the_zero_is_zero_at_zero_as_in_torch():
    x = Value(0.0)
    (x ** 0.0).backward()
    assert x.grad == 0.0
    (g,) = mg.grad(x ** 0.0, [x], create_graph=True)
    assert g.data == 0.0
    w = Value(0.0)
    step = mg.compile(lambda s: (w * s[0]) ** s[1])  # replay agrees: 0 where the exponent is 0
    step([[1.0, 0.0], [2.0, 2.0]]).backward()
    assert w.grad == 0.0
    torch = pytest.importorskip("torch")
    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    (t ** 0.0).backward()
    assert t.grad.item() == 0.0


def test_the_derivative_of_a_to_the_zero_is_zero_where_a_to_the_minus_one_overflows():
    # 0 * 5e-324**-1 overflowed and backward was refused, where replay and PyTorch give 0
    x = Value(5e-324)
    (x ** 0.0).backward()
    assert x.grad == 0.0
    (g,) = mg.grad(x ** 0.0, [x], create_graph=True)  # with create_graph too (it refused 0 * inf)
    assert g.data == 0.0
    a, b = Value(5e-324), Value(1.0)  # d2(a**b)/da db = a**(b - 1) * (1 + b * log(a)), through a**0
    (ga, _) = mg.grad(a ** b, [a, b], create_graph=True)
    assert mg.grad(ga, [a, b]) == pytest.approx((0.0, 1.0 + math.log(5e-324)), rel=1e-15)


@pytest.mark.parametrize("f, x0, error, message", [
    (lambda x: x.log(), 5e-324, ValueError, r"the derivative of log\(5e-324\) with respect to input 0 \(5e-324\)"),
    (lambda x: 1 / x, 1e-200, ValueError, r"the derivative of 1.0 / 1e-200 with respect to input 1 \(1e-200\)"),
    (lambda x: x * 1e200 * 1e200, 1e-200, OverflowError, "a gradient overflowed"),  # each derivative finite
])
def test_grad_names_what_made_a_gradient_non_finite_as_backward_does(f, x0, error, message):
    # grad() said only "a gradient is not finite"
    x = Value(x0)
    with pytest.raises(error, match="grad: " + message):
        mg.grad(f(x), [x])
    with pytest.raises(error, match="backward: " + message):
        f(x).backward()


def test_logsumexp_gradient_where_an_input_is_far_below_the_result():
    # exp(x - out) with x - out = -inf (-1e308 - 1e308) is 0; backward refused it as not finite,
    # while compiled replay gave the gradient
    a, b = Value(-1e308), Value(1e308)
    mg.logsumexp([a, b]).backward()
    assert (a.grad, b.grad) == (0.0, 1.0)
    assert [g.data for g in mg.grad(mg.logsumexp([a, b]), [a, b], create_graph=True)] == [0.0, 1.0]


def test_grad_agrees_with_backward_where_a_zero_gradient_meets_an_infinite_derivative():
    x = Value(0.0)
    y = (mg.sqrt(x) - 1).relu()  # relu passes 0 back; sqrt'(0) is infinite
    (g,) = mg.grad(y, [x])
    y.backward()
    assert g == x.grad == 0.0
    (g,) = mg.grad(y, [x], create_graph=True)  # was "the derivative of sqrt(0.0) is not defined"
    assert g.data == 0.0


def test_repr_shows_a_grad_set_by_hand_whatever_it_is():
    v = Value(1.0)
    v.grad = 10 ** 400
    assert repr(v) == "Value(data=1, grad=an int of about 401 digits)"
    v.grad = None
    assert repr(v) == "Value(data=1, grad=None)"


def test_the_second_derivative_of_a_power_through_its_exponent_at_zero():
    a, b = Value(2.0), Value(0.0)
    (ga,) = mg.grad(a ** b, [a], create_graph=True)  # b * a**(b - 1)
    assert mg.grad(ga, [b]) == (pytest.approx(0.5),)  # d/db of it at b = 0: 1/a
    assert mg.testing.gradgradcheck(lambda x, y: x ** y, [2.0, 0.0])


def test_a_format_spec_formats_the_number_as_torch_does():
    loss = Value(0.123456, label="loss")
    assert f"{loss:.4f}" == "0.1235" and f"{loss:>8.2e}" == "1.23e-01" and f"{loss:.1%}" == "12.3%"
    assert f"{loss}" == str(loss) == repr(loss)  # no spec: the Value, as print shows it
    with pytest.raises(ValueError, match="Unknown format code 'd'"):
        f"{loss:d}"  # as for a float


# ---- every op against torch float64 at its edges, first and second derivatives ---------------

def _torch_first_and_second(f, point):
    """f's value, gradient and Hessian in torch float64 (None entries read as 0)."""
    torch = pytest.importorskip("torch")
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in point]
    y = f(torch, *ts)
    gs = torch.autograd.grad(y, ts, create_graph=True, allow_unused=True)
    hess = []
    for g in gs:
        if g is None or not g.requires_grad:
            hess.append([0.0] * len(ts))
            continue
        row = torch.autograd.grad(g, ts, retain_graph=True, allow_unused=True)
        hess.append([0.0 if h is None else h.item() for h in row])
    return y.item(), [0.0 if g is None else g.item() for g in gs], hess


def _ours_first_and_second(f, point):
    """f's value, backward's gradient, grad(create_graph=True)'s gradient and its Hessian."""
    vs = [Value(x) for x in point]
    y = f(mg, *vs)
    y.backward()
    ws = [Value(x) for x in point]
    gs = mg.grad(f(mg, *ws), ws, create_graph=True, materialize_grads=True)
    hess = [list(mg.grad(g, ws, materialize_grads=True)) if g.requires_grad else [0.0] * len(ws) for g in gs]
    return y.data, [v.grad for v in vs], [g.data for g in gs], hess


# (name, f(lib, *inputs) for lib = microgradnn or torch, points): the kinks (relu, abs, leaky_relu
# at +-0, where torch's convention is 0, 0 and the slope), pow's cases (a negative base with an
# integer exponent, x**0, 0**y, x**1 at 0), the variadic ops (ties, a repeated input) and tiny inputs.
_lse = lambda lib, *xs: lib.logsumexp(list(xs)) if lib is mg else lib.logsumexp(lib.stack(xs), 0)
_take = lambda lib, a, b, c: (mg.take(Value(1.0, requires_grad=False), [a, b, c]) if lib is mg
                              else lib.stack([a, b, c])[1]) ** 2
_xent = lambda lib, a, b, c: (mg.get_op("cross_entropy")(Value(1.0, requires_grad=False), a, b, c) if lib is mg
                              else lib.nn.functional.cross_entropy(lib.stack([a, b, c])[None], lib.tensor([1])))
EDGES = [
    ("relu", lambda lib, a: a.relu(), [(0.0,), (-0.0,), (1e-300,), (-1e-300,)]),
    ("abs", lambda lib, a: a.abs() * a.abs().abs(), [(0.0,), (-0.0,), (1e-300,), (-2.0,)]),
    ("leaky_relu", lambda lib, a: a.leaky_relu(0.1) if lib is mg else lib.nn.functional.leaky_relu(a, 0.1),
     [(0.0,), (-0.0,), (1e-300,), (-1e-300,)]),
    ("pow-negative-base", lambda lib, a: a ** 3.0 + a ** -3.0 + a ** -2.0, [(-2.0,), (-0.5,)]),
    ("pow-zero-exponent", lambda lib, a: a ** 0.0, [(0.0,), (-2.0,), (3.0,)]),
    ("pow-one-at-zero", lambda lib, a: a ** 1.0 + a ** 2.0 + a ** 3.0, [(0.0,), (-0.0,)]),
    ("pow-values", lambda lib, a, b: a ** b, [(3.0, -1.5), (0.5, 1.0)]),
    ("log-near-zero", lambda lib, a: a.log(), [(1e-150,), (1e-10,)]),
    ("log1p-near-zero-and-minus-1", lambda lib, a: a.log1p(), [(1e-300,), (1e-10,), (-1e-10,), (-1 + 1e-10,), (-0.999999,)]),
    ("sqrt-near-zero", lambda lib, a: a.sqrt(), [(1e-200,), (1e-10,)]),
    ("div-zero-numerator", lambda lib, a, b: a / b, [(0.0, 2.0), (0.0, -1e-100)]),
    ("tanh-saturated", lambda lib, a: a.tanh(), [(20.0,), (-40.0,), (0.0,)]),
    ("tanh-near-zero", lambda lib, a: a.tanh(), [(1e-20,), (1e-8,), (-1e-8,)]),
    ("sigmoid-saturated", lambda lib, a: a.sigmoid(), [(0.0,), (40.0,), (-40.0,), (-745.0,)]),
    ("softplus", lambda lib, a: a.softplus() if lib is mg else lib.nn.functional.softplus(a),
     [(0.0,), (-40.0,), (19.9,)]),
    ("exp-large", lambda lib, a: a.exp(), [(700.0,), (-745.0,)]),
    ("sin-cos-extremes", lambda lib, a: a.sin() * a.cos(), [(0.0,), (math.pi / 2,)]),
    ("logsumexp-tie", _lse, [(1.0, 1.0, 1.0), (0.3, -2.0, 1.5), (1000.0, -1000.0, 0.0), (0.0, 0.0, -800.0)]),
    ("logsumexp-repeated", lambda lib, a, b: _lse(lib, a, a, b) * a, [(0.3, -1.0)]),
    ("logsumexp-one", lambda lib, a: _lse(lib, a) * a, [(0.3,)]),
    ("dot", lambda lib, w0, w1, x0, x1, b: (mg.dot([w0, w1], [x0, x1], b) if lib is mg else w0 * x0 + w1 * x1 + b)
     ** 2, [(0.3, -0.2, 1.1, 0.4, 0.05), (0.0, 0.0, 0.0, 0.0, 0.0)]),
    ("dot-shared-inputs", lambda lib, w, x: mg.dot([w, w], [x, w], x) if lib is mg else w * x + w * w + x, [(0.3, -0.7)]),
    ("take", _take, [(0.3, -0.2, 1.1)]),
    ("cross_entropy", _xent, [(0.3, -0.2, 1.1), (1.0, 1.0, 1.0), (1e16, 1e16, 0.0), (-3e16, 2e15, -3e16 + 4.0),
                              (1.5e13, 1.5e13 + 0.75, -2.0), (700.0, -700.0, 0.0)]),
]
EDGE_CASES = [pytest.param(f, p, id=f"{name}-{p}") for name, f, points in EDGES for p in points]


@pytest.mark.parametrize("f, point", EDGE_CASES)
def test_first_and_second_derivatives_match_torch_float64_at_each_ops_edges(f, point):
    y, g, g_graph, hess = _ours_first_and_second(f, point)
    t_y, t_g, t_hess = _torch_first_and_second(f, point)
    assert y == pytest.approx(t_y, rel=1e-12, abs=1e-300)
    assert g == pytest.approx(t_g, rel=1e-12, abs=1e-300)
    assert g_graph == pytest.approx(t_g, rel=1e-12, abs=1e-300)
    assert [list(r) for r in hess] == [pytest.approx(r, rel=1e-12, abs=1e-290) for r in t_hess]


SMOOTH_EDGES = [pytest.param(f, p, id=f"{name}-{p}") for name, f, points in EDGES for p in points
                if name not in ("relu", "abs", "leaky_relu") and max(map(abs, p)) < 100
                and not (name.startswith("pow") and 0.0 in p) and "near-zero" not in name]


@pytest.mark.parametrize("f, point", SMOOTH_EDGES)
def test_gradients_at_the_edges_off_the_kinks_match_finite_differences(f, point):
    g = lambda *vs: f(mg, *vs)
    _, grads = analytic_grads(g, list(point))
    assert grads == pytest.approx(numeric_grads(g, list(point)), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("name", ["relu", "abs", "leaky_relu"])
def test_at_a_kink_the_gradient_is_one_of_the_one_sided_slopes_and_torchs(name):
    # relu'(0) = 0, abs'(0) = 0, leaky_relu'(0) = slope, as torch; each lies between the slopes
    # either side, which is what gradcheck accepts at a kink
    f = {"relu": lambda a: a.relu(), "abs": lambda a: a.abs(), "leaky_relu": lambda a: a.leaky_relu(0.1)}[name]
    _, (g,) = analytic_grads(f, [0.0])
    h = 1e-6
    left = (f(Value(0.0)).data - f(Value(-h)).data) / h
    right = (f(Value(h)).data - f(Value(0.0)).data) / h
    assert min(left, right) - 1e-9 <= g <= max(left, right) + 1e-9
    assert g == {"relu": 0.0, "abs": 0.0, "leaky_relu": 0.1}[name]
    assert mg.testing.gradcheck(f, [0.0])


@pytest.mark.parametrize("f, point", [
    (lambda a, b: a ** b, (0.0, 4.0)), (lambda a, b: a ** b, (0.0, 3.0)), (lambda a, b: a ** b, (0.5, 0.0)),
    (lambda a, b: a ** b, (2.0, 0.0)), (lambda b: 0.0 ** b, (2.0,)), (lambda b: 0.0 ** b, (0.5,)),
])
def test_second_derivatives_of_a_power_at_base_zero_or_exponent_zero_are_the_limits(f, point):
    """Where torch's second derivative of a**b is nan (base 0: 0 * log(0)) or 0 (exponent 0, masked
    with the first derivative), ours is the derivative itself: each Hessian row is checked against
    central differences of the first derivative, which is defined on both sides of these points
    (a**b at a = 0 only from the right: there one-sided)."""
    ws = [Value(x) for x in point]
    hess = [mg.grad(g, ws, materialize_grads=True) if g.requires_grad else (0.0,) * len(ws)
            for g in mg.grad(f(*ws), ws, create_graph=True)]

    def first(*xs):
        vs = [Value(x) for x in xs]
        return mg.grad(f(*vs), vs)
    for j, x in enumerate(point):
        h = 1e-6
        up, here = list(point), list(point)
        up[j] += h
        if x == 0.0 and j == 0 and len(point) == 2:  # base 0: right side only
            numeric = [(u - c) / h for u, c in zip(first(*up), first(*here))]
        else:
            down = list(point)
            down[j] -= h
            numeric = [(u - d) / (2 * h) for u, d in zip(first(*up), first(*down))]
        assert [row[j] for row in hess] == pytest.approx(numeric, rel=1e-5, abs=1e-5), f"column {j}"


def test_softplus_stays_exact_above_torchs_threshold_of_20():
    """torch's softplus returns x (gradient 1) above x = 20; ours is log(1 + e^x) and its exact
    gradient sigmoid(x) there too (README): 1.9e-9 apart at 20.1, checked against
    finite differences and against torch with its threshold raised."""
    for x0 in (20.1, 25.0, 36.0):
        out, (g,) = analytic_grads(lambda a: a.softplus(), [x0])
        assert out == pytest.approx(x0 + math.log1p(math.exp(-x0)), rel=1e-15)
        assert g == pytest.approx(1 / (1 + math.exp(-x0)), rel=1e-15)
        assert g == pytest.approx(numeric_grads(lambda a: a.softplus(), [x0], h=1e-4)[0], rel=1e-9)
        torch = pytest.importorskip("torch")
        t = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        torch.nn.functional.softplus(t, threshold=100.0).backward()
        assert g == pytest.approx(t.grad.item(), rel=1e-15)


# ---- the torch-named API against torch's 0-d float64 tensors ----

def _tensor(x, requires_grad=True):
    torch = pytest.importorskip("torch")
    return torch.tensor(x, dtype=torch.float64, requires_grad=requires_grad)


@pytest.mark.parametrize("x", [0.0, -0.0, 2.0, -1e-300])
def test_truth_of_a_value_is_its_numbers_as_a_torch_tensors(x):
    # it was always True, so `if loss:` or `v or default` took the wrong branch at 0
    assert bool(Value(x)) is bool(_tensor(x)) is (x != 0.0)
    assert bool(Value(x, requires_grad=False) * 1.0) is bool(_tensor(x, False) * 1.0)


def test_is_leaf_is_a_property_as_torchs():
    # a method: `if v.is_leaf:` was always true (a bound method), for every node
    x, c = Value(2.0), Value(2.0, requires_grad=False)
    tx, tc = _tensor(2.0), _tensor(2.0, False)
    for v, t in ((x, tx), (x * 3, tx * 3), (c * 3, tc * 3), (x.detach(), tx.detach()), (c, tc)):
        assert v.is_leaf is t.is_leaf
    with mg.no_grad():
        assert (x * 3).is_leaf is True


def test_backward_takes_torchs_arguments_and_refuses_create_graph():
    # retain_graph, create_graph and inputs were refused as unexpected keywords; inputs now
    # accumulates into those Values only, as torch's
    x, w, tx, tw = Value(3.0), Value(2.0), _tensor(3.0), _tensor(2.0)
    z, tz = x * w, tx * tw
    (z * z).backward(inputs=[z, x, x])  # a non-leaf input gets .grad too; each input once
    (tz * tz).backward(inputs=[tz, tx, tx])
    assert (z.grad, x.grad, w.grad) == (tz.grad.item(), tx.grad.item(), 0.0) and tw.grad is None
    (z * z).backward(2.0, None, False, x)  # torch's positional order; accumulates
    assert x.grad == 24.0 + 2 * 24.0
    u = Value(5.0)
    (x * x).backward(inputs=[x, u])  # an input not used keeps its .grad, as torch's
    assert u.grad == 0.0
    y = x * x
    x.grad = 0.0
    y.backward(retain_graph=True)
    y.backward(retain_graph=False)  # the graph is always kept: as torch with retain_graph=True
    assert x.grad == 12.0
    with pytest.raises(ValueError, match="create_graph=True is not supported.*grad\\(output, inputs, create_graph"):
        y.backward(create_graph=True)
    with pytest.raises(TypeError, match="backward: retain_graph must be a bool or None, got str"):
        y.backward(retain_graph="yes")
    with pytest.raises(ValueError, match="backward: inputs must hold at least one Value"):
        y.backward(inputs=[])
    with pytest.raises(ValueError, match=r"backward: input 0 \(2.0\) must have requires_grad=True"):
        y.backward(inputs=Value(2.0, requires_grad=False))
    assert x.grad == 12.0


def test_backward_inputs_leave_an_unused_inputs_grad_of_none_as_none():
    # it became 0.0, so an optimizer stepped the parameter (weight decay, momentum) that torch's skips
    x, u, tx, tu = Value(1.5), Value(2.0), _tensor(1.5), _tensor(2.0)
    opt = mg.optim.SGD([x, u], lr=0.1, weight_decay=0.5)
    opt.zero_grad(set_to_none=True)
    (x * x).backward(inputs=[x, u])
    (tx * tx).backward(inputs=[tx, tu])
    assert u.grad is None is tu.grad and x.grad == tx.grad.item() == 3.0
    opt.step()
    assert u.data == 2.0 and x.data == 1.5 - 0.1 * (3.0 + 0.5 * 1.5)


def test_backward_with_inputs_names_backward_in_its_errors():
    # they named grad, which the caller never called
    x = Value(2.0, "x")
    y = x * x
    with pytest.raises(ValueError, match=r"^backward: gradient must be finite, got nan"):
        y.backward(math.nan, inputs=[x])
    with pytest.raises(TypeError, match=r"^backward: expected a number or Value, got bool"):
        y.backward(True, inputs=[x])
    z = Value(1e-300, "z")
    with pytest.raises(ValueError, match=r"^backward: the derivative of 1.0 / z=1e-300 with respect to input 1"):
        (1.0 / z).backward(inputs=[z])
    x.data = 3.0
    with pytest.raises(RuntimeError, match=r"^backward: the data of Value 'x' \(now 3.0\) was changed"):
        y.backward(inputs=[x])
    assert x.grad == z.grad == 0.0


def test_the_array_readers_of_many_values_take_exact_floats_only_and_keep_their_bits():
    from microgradnn.engine import all_floats, float_array
    assert all_floats([0.5, -0.0]) and all_floats([]) and all_floats(x * 1.0 for x in range(3))
    for odd in (True, 1, None, np.float64(0.5), "0.5"):  # each takes the careful path of its reader
        assert not all_floats([0.5, odd])
    xs = [0.1, -0.0, 1e-310, -1.7976931348623157e308, 2.0 ** -1074]
    a = float_array(xs)
    assert a.dtype == np.float64 and a.tolist() == xs and np.signbit(a[1]) and not a.flags.writeable
    assert len(float_array([])) == 0


class _NeedsTwo(ValueError):
    def __init__(self, doc: str, pos: int) -> None:  # as json.JSONDecodeError: no one-message constructor
        super().__init__(f"{doc} at {pos}")


def test_an_op_refusing_with_an_error_that_takes_no_one_message_is_named_not_a_type_error():
    def forward(x):
        raise _NeedsTwo("bad input", 3)
    op = mg.define_op("refuses_oddly", forward, lambda x, out: 1.0)
    with pytest.raises(ValueError, match=r"refuses_oddly\(.*\): bad input at 3"):
        op(Value(1.0))  # was TypeError: __init__() missing 1 required positional argument


@pytest.mark.parametrize("call, message", [
    (lambda a, b: mg.dot({a, b}, [1.0, 2.0]), r"dot: w must be a sequence in order .* got set, whose order is arbitrary"),
    (lambda a, b: mg.dot([a, b], frozenset([1.0, 2.0])), r"dot: x must be a sequence in order .* got frozenset"),
    (lambda a, b: mg.dot((w for w in [a, b]), [1.0, 2.0]), r"dot: w must be a sequence in order .* got generator"),
    (lambda a, b: mg.dot(3, [1.0]), r"dot: w must be a sequence in order .* got int"),
    (lambda a, b: mg.dots([[a, b]], {1.0, 2.0}, [0.0]), r"dots: x must be a sequence in order .* got set"),
    (lambda a, b: mg.take(0, {a, b}), r"take: options must be a sequence in order .* got set"),
    (lambda a, b: mg.take(0, {a: 1, b: 2}), r"take: options must be a sequence in order .* got dict"),
    (lambda a, b: mg.logsumexp(x for x in [a, b]), r"logsumexp: xs must be a sequence in order .* got generator"),
])
def test_ops_over_many_inputs_refuse_a_set_a_dict_or_a_generator_by_name(call, message):
    # a set's order is arbitrary: dot paired weights with other inputs, take picked another option
    a, b = Value(1.0), Value(-2.0)
    with pytest.raises(TypeError, match=message):
        call(a, b)


def test_ops_over_many_inputs_still_take_tuples_arrays_and_a_generator_for_dots_x():
    a, b = Value(1.0), Value(-2.0)
    assert mg.dot((a, b), np.array([1.0, 2.0])).data == -3.0
    assert mg.dots([[a, b]], (x for x in [1.0, 2.0]), [0.5])[0].data == -2.5
    assert mg.take(1, (a, b)).data == -2.0
    assert mg.logsumexp((a, a)).data == pytest.approx(1.0 + math.log(2.0))


def test_backward_on_a_value_made_inside_no_grad_says_no_grad_may_be_why():
    x = Value(2.0)
    with mg.no_grad():
        y = x * x
    with pytest.raises(RuntimeError, match=r"backward: this Value does not require grad \(it was computed inside "
                                           r"no_grad\(\)"):
        y.backward()
    with pytest.raises(RuntimeError, match=r"grad: output does not require grad \(it was computed inside no_grad"):
        mg.grad(y, [x])


def test_tanh_second_derivative_keeps_float64_accuracy_near_0():
    # torch float64 gives -2e-20 and -1.9999999999999997e-08 (= -2 tanh(x) sech(x)^2); we gave 0 and -1.999999998947e-08
    for x, expected in ((1e-20, -2e-20), (1e-8, -1.9999999999999997e-08)):
        v = Value(x)
        (first,) = mg.grad(v.tanh(), v, create_graph=True)
        (second,) = mg.grad(first, v)
        assert second == pytest.approx(expected, rel=1e-14, abs=0)


@pytest.mark.parametrize("x0", [1e-20, 1e-8, 0.3, 5.0, 19.0, -1e-8, -5.0])
def test_tanh_first_second_and_third_derivatives_match_torch_float64(x0):
    # tanh's rule makes a tanh_grad node under create_graph, whose own rule -2 out does not cancel
    # near 0 as (1 - out)(1 + out)'s graph did; its derivative, -2, is the third derivative's
    torch = pytest.importorskip("torch")
    v = Value(x0)
    v.tanh().backward()
    (d1,) = mg.grad(v.tanh(), v, create_graph=True)
    (d2,) = mg.grad(d1, v, create_graph=True)
    (d3,) = mg.grad(d2, v)
    t = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    (t1,) = torch.autograd.grad(t.tanh(), t, create_graph=True)
    (t2,) = torch.autograd.grad(t1, t, create_graph=True)
    (t3,) = torch.autograd.grad(t2, t)
    assert d1.data == v.grad  # backward's number, exactly
    assert [d1.data, d2.data, d3] == pytest.approx([t1.item(), t2.item(), t3.item()], rel=1e-14, abs=0)


def test_tanh_passes_gradgradcheck_up_to_its_third_derivative():
    from microgradnn.testing import gradgradcheck
    assert gradgradcheck(lambda x, y: (x * y).tanh() + x.tanh() * y, [0.4, -0.7])
    assert gradgradcheck(lambda x: mg.grad(x.tanh(), x, create_graph=True)[0], [0.4])  # the third, against differences


def test_take_of_a_plain_index_is_the_option_itself_and_refuses_what_the_op_refuses():
    a, b = Value(1.0, "a"), Value(-2.0, "b")
    assert mg.take(1, [a, b]) is b and mg.take(1.0, (a, b)) is b  # as a list picks it: a stays out of the graph
    assert mg.take(1, [a, 2.5]).data == 2.5 and not mg.take(1, [a, 2.5]).requires_grad
    with pytest.raises(ValueError, match=r"take: a number used in a computation must be finite, got inf"):
        mg.take(0, [a, math.inf])  # an option the op refuses is refused, picked or not
    with pytest.raises(ValueError, match=r"take\(2.0, a=1.0, b=-2.0\): index must be an integer in 0..1, got 2.0"):
        mg.take(2, [a, b])


@pytest.mark.parametrize("numbers", [[1.0, math.inf], [1, 2.0], [math.nan, 1.0], [1.0, True], [2, 3]])
def test_assign_refuses_what_is_no_finite_float_and_changes_nothing(numbers):
    values = [Value(0.5), Value(-0.5)]
    version = mg.engine.data_version()
    with pytest.raises(ValueError, match="assign: a Value's data must be a finite float"):
        mg.engine.assign(values, numbers)
    assert [v.data for v in values] == [0.5, -0.5] and mg.engine.data_version() == version
    mg.engine.assign(values, [1.5, 2.5])
    assert [v.data for v in values] == [1.5, 2.5]
