import copy
from fractions import Fraction

import numpy as np
import pytest

import microgradnn as mg
from microgradnn import Value
from microgradnn.optim import SGD, Adam, LinearLR


def _run(opt_factory, steps=5):
    """Minimise a fixed function with our optimizer; return the parameter trajectory."""
    ps = [Value(1.5), Value(-0.7)]
    opt = opt_factory(ps)
    path = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (ps[0] * ps[1]).tanh() + ps[0] ** 2 * 0.3 + ps[1].exp()
        loss.backward()
        opt.step()
        path.append([p.data for p in ps])
    return path


def _run_torch(opt_factory, steps=5):
    torch = pytest.importorskip("torch")
    ps = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.5, -0.7)]
    opt = opt_factory(torch.optim, ps)
    path = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (ps[0] * ps[1]).tanh() + ps[0] ** 2 * 0.3 + ps[1].exp()
        loss.backward()
        opt.step()
        path.append([p.item() for p in ps])
    return path


@pytest.mark.parametrize("kwargs", [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.5, weight_decay=0.1)])
def test_sgd_matches_torch(kwargs):
    ours = _run(lambda ps: SGD(ps, **kwargs))
    ref = _run_torch(lambda optim, ps: optim.SGD(ps, **kwargs))
    assert ours == [pytest.approx(r, rel=1e-13) for r in ref]


@pytest.mark.parametrize("kwargs", [dict(), dict(lr=0.1), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.2)])
def test_adam_matches_torch(kwargs):
    ours = _run(lambda ps: Adam(ps, **kwargs), steps=8)
    ref = _run_torch(lambda optim, ps: optim.Adam(ps, **kwargs), steps=8)
    assert ours == [pytest.approx(r, rel=1e-12) for r in ref]


def _linear_lr_pair(torch, lr: float, **kwargs):
    """Our SGD and LinearLR, and torch's, over one parameter from the same lr and schedule."""
    ours = SGD([Value(1.0)], lr=lr)
    t_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    return ours, LinearLR(ours, **kwargs), t_opt, torch.optim.lr_scheduler.LinearLR(t_opt, **kwargs)


@pytest.mark.parametrize("kwargs", [dict(), dict(start_factor=1.0, end_factor=0.1, total_iters=4),
                                    dict(start_factor=0.5, end_factor=0.0, total_iters=3)])
def test_linear_lr_matches_torch_schedule_and_defaults(kwargs):
    torch = pytest.importorskip("torch")
    ours, sched, t_opt, t_sched = _linear_lr_pair(torch, 0.5, **kwargs)
    for _ in range(8):
        assert isinstance(sched.get_last_lr(), list)
        assert sched.get_last_lr() == pytest.approx(t_sched.get_last_lr(), rel=1e-12)
        sched.step()
        t_opt.step()
        t_sched.step()


@pytest.mark.parametrize("start_factor, total_iters", [(0.9, 4), (0.3, 3), (0.999999, 7)])
def test_a_linear_lr_decaying_to_zero_ends_at_an_lr_of_zero(start_factor, total_iters):
    # the last factor of the ramp, 1 + (0 - s) / (n*s + (n-1)*(0 - s)), is 0 in exact arithmetic but
    # a rounding below it in floats: the lr became -5e-19, which the optimizer refused mid-training
    opt = Adam([Value(1.0)], lr=0.01)
    sched = LinearLR(opt, start_factor=start_factor, end_factor=0.0, total_iters=total_iters)
    for _ in range(total_iters + 2):
        sched.step()
    assert opt.lr == 0.0 and sched.get_last_lr() == [0.0]


def test_a_linear_lr_of_more_iterations_than_a_float_holds_is_refused_when_made_or_loaded():
    # it was taken, and its first step() raised a bare OverflowError "int too large to convert to float"
    opt = SGD([Value(1.0)], lr=0.1)
    with pytest.raises(ValueError, match=r"^LinearLR: total_iters must be at most 2\*\*62, got an int of about 401"):
        LinearLR(opt, total_iters=10**400)
    sched = LinearLR(opt, total_iters=2**62)
    sched.step()
    saved = sched.state_dict() | {"total_iters": 2**62 + 1}
    with pytest.raises(ValueError, match=r"^LinearLR.load_state_dict: total_iters must be at most 2\*\*62, got 46"):
        sched.load_state_dict(saved)
    assert sched.total_iters == 2**62 and sched.last_epoch == 1


def test_linear_lr_keeps_an_lr_set_by_hand_as_torch():
    # torch scales the lr the optimizer has, and leaves it alone after total_iters: a manual decay
    # after warm-up (or a change during it) is not silently reset to base_lr * factor
    torch = pytest.importorskip("torch")
    ours, sched, t_opt, t_sched = _linear_lr_pair(torch, 0.3, total_iters=3)
    for i in range(7):
        if i in (1, 5):
            ours.lr = t_opt.param_groups[0]["lr"] = 0.01 * i
        sched.step()
        t_opt.step()
        t_sched.step()
        assert sched.get_last_lr() == t_sched.get_last_lr()
    assert ours.lr == 0.05


def test_sgd_step_is_the_lessons_update_on_its_neuron(lesson_neuron):
    # "weight -= learning_rate * gradient", every weight and the bias, from one backward
    before = [p.data for p in lesson_neuron.parameters()]
    out = lesson_neuron([0.9, 0.6, 0.2])
    mg.losses.binary_cross_entropy([out], [1.0]).backward()
    grads = [p.grad for p in lesson_neuron.parameters()]
    assert all(g < 0 for g in grads)  # a 'yes' of 0.698 for a true 1: every weight should grow
    SGD(lesson_neuron.parameters(), lr=0.1).step()
    assert [p.data for p in lesson_neuron.parameters()] == [w - 0.1 * g for w, g in zip(before, grads)]
    assert lesson_neuron([0.9, 0.6, 0.2]).data > out.data


def test_sgd_refuses_torchs_positional_dampening_rather_than_taking_it_as_weight_decay():
    # torch.optim.SGD(params, 0.1, 0.9, 0.5) means dampening=0.5; it must not become weight_decay
    with pytest.raises(TypeError, match="positional"):
        SGD([Value(1.0)], 0.1, 0.9, 0.5)
    assert SGD([Value(1.0)], 0.1, 0.9, weight_decay=0.5).weight_decay == 0.5


@pytest.mark.parametrize("make, error, message", [
    (lambda: SGD([Value(1.0)], lr=-1), ValueError, r"SGD: lr must be a finite number >= 0, got -1"),
    (lambda: SGD([Value(1.0)], lr="0.1"), TypeError, r"SGD: lr must be a finite number >= 0, got str '0.1'"),
    (lambda: SGD([Value(1.0)], lr=True), TypeError, "got bool True"),
    (lambda: SGD([Value(1.0)], lr=0.1, momentum=1.0), ValueError, r"momentum must be a finite number in \[0, 1\)"),
    (lambda: Adam([Value(1.0)], betas=(0.9, 1.0)), ValueError, "betas"),
    (lambda: Adam([Value(1.0)], betas=0.9), TypeError, "betas must be a pair"),
    # numbers within the bounds that are not as floats: checked as the float they become
    (lambda: Adam([Value(1.0)], betas=(0.9, Fraction(2 ** 60 - 1, 2 ** 60))), ValueError,
     r"^Adam: betas must be a finite number in \[0, 1\), got Fraction\(1152921504606846975, .* \(1.0 as a float\)$"),
    (lambda: LinearLR(SGD([Value(1.0)], lr=0.1), start_factor=Fraction(1, 10 ** 400)), ValueError,
     r"^LinearLR: start_factor must be a finite number in \(0, 1\], got Fraction\(1, 1000.* \(0.0 as a float\)$"),
    # an int too large for a float, and one that is not: said apart (the float is shown only where the bounds differ)
    (lambda: SGD([Value(1.0)], lr=2 ** 1024), ValueError,
     r"^SGD: lr must be a finite number >= 0, got an int of about 309 digits \(too large for a float\)$"),
    # (floats end below 2 ** 1024: an int from 2 ** 1024 - 2 ** 970 rounds to it and overflows; it said no why)
    (lambda: SGD([Value(1.0)], lr=2 ** 1024 - 2 ** 970), ValueError,
     r"^SGD: lr must be a finite number >= 0, got an int of about 309 digits \(too large for a float\)$"),
    (lambda: SGD([Value(1.0)], lr=-10 ** 70), ValueError, r"^SGD: lr must be a finite number >= 0, got an int of about 71 digits$"),
    (lambda: Adam([]), ValueError, "empty parameter list"),
    (lambda: SGD([Value(1.0) * 2], lr=0.1), ValueError, r"SGD: parameters must be leaves .*, got parameter 0, "
                                                        r"made by '\*'"),
    (lambda: LinearLR(SGD([Value(1.0)], lr=0.1), total_iters=0), ValueError, "LinearLR: total_iters must be a positive int, got 0"),
    (lambda: LinearLR(SGD([Value(1.0)], lr=0.1), total_iters=True), TypeError, "total_iters must be a positive int, got bool"),
    (lambda: LinearLR(SGD([Value(1.0)], lr=0.1), total_iters=list(range(300))), TypeError,
     r"^LinearLR: total_iters must be a positive int, got list .{60}$"),  # cut, as every value shown
    (lambda: LinearLR(SGD([Value(1.0)], lr=0.1), start_factor=0.0), ValueError, r"start_factor must be a finite number in \(0, 1\]"),
    (lambda: LinearLR(SGD([Value(1.0)], lr=0.1), end_factor=1.5), ValueError, r"end_factor must be a finite number in \[0, 1\]"),
    (lambda: LinearLR(SGD([Value(1.0)], lr=0.1), end_factor=-0.1), ValueError, r"end_factor must be a finite number in \[0, 1\]"),
])
def test_bad_options_raise(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_step_refuses_a_non_finite_gradient():
    p = Value(1.0)
    p.grad = float("inf")
    with pytest.raises(ValueError, match="gradient of parameter 0"):
        SGD([p], lr=0.1).step()
    assert p.data == 1.0


# ---- issue 15: shared parameters, non-finite updates, eps ------------------------------------

def test_a_shared_parameter_is_listed_once_and_stepped_once():
    layer = mg.Layer(2, 2, seed=0)
    model = mg.MLP.from_layers([layer, layer])
    assert len(model.parameters()) == 6 and model.num_parameters() == 6
    assert [n for n, _ in model.named_parameters()][0] == "layers.0.neurons.0.w.0"
    p = Value(1.0)
    with pytest.warns(UserWarning, match="listed more than once") as caught:
        opt = SGD([p, p], lr=0.5)
    assert caught[0].filename == __file__  # the warning points at the line that listed it
    p.grad = 1.0
    opt.step()
    assert p.data == 0.5  # (torch 2.13 steps it once per listing, to 0.0, and warns that this will be an error)


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=1e300), lambda ps: SGD(ps, lr=1e300, momentum=0.9),
                                  lambda ps: Adam(ps, lr=1e307)])
def test_a_step_that_would_write_a_non_finite_value_changes_nothing(make):
    a, b = Value(1.0, "a"), Value(-1.79e308, "b")
    opt = make([a, b])
    a.grad, b.grad = 1.0, 1e10
    def state():  # the optimizer's state (arrays as lists, to compare)
        return {k: v.tolist() if hasattr(v, "tolist") else copy.deepcopy(v) for k, v in vars(opt).items()
                if k != "params"}
    before = state()
    with pytest.raises(OverflowError, match=r"parameter 1 \(Value\(data=-1.79e\+308.*label='b'\)\) would become -inf"
                                            r".*learning rate \(lr=1e\+30[07]\)"):
        opt.step()
    assert (a.data, b.data) == (1.0, -1.79e308)
    assert state() == before


def test_an_adam_step_whose_second_moment_would_overflow_changes_nothing():
    # g * g overflows v to inf: m / inf moved p by 0, that step and every later one (v stays inf),
    # and the state_dict it left could not be loaded
    p, q = Value(1.0, "p"), Value(2.0, "q")
    opt = Adam([p, q], lr=0.1)
    p.grad, q.grad = 1e160, 1.0
    before = opt.state_dict()
    with pytest.raises(OverflowError, match=r"^Adam.step: parameter 0 \(Value\(data=1, grad=1e\+160, label='p'\)\) "
                                            r"has a gradient too large for the optimizer: its state 'v' would become "
                                            r"inf, and the parameter would never move again; nothing was updated"):
        opt.step()
    assert (p.data, q.data) == (1.0, 2.0) and opt.state_dict() == before
    p.grad, q.grad = 3.0, -1.0
    opt.step()  # Adam's first step: lr * g / (|g| + eps), for each parameter
    assert [p.data, q.data] == pytest.approx([1.0 - 0.1 * 3.0 / (3.0 + 1e-8), 2.0 + 0.1 / (1.0 + 1e-8)], rel=1e-14)
    opt.load_state_dict(opt.state_dict())


def test_adam_refuses_eps_zero():
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        Adam([Value(1.0)], eps=0)


def test_a_parameter_set_between_steps_is_read_again():
    a, b = Value(1.0), Value(2.0)
    opt = SGD([a, b], lr=0.1)
    a.grad = b.grad = 1.0
    opt.step()
    a.data = -3.0  # the user moves a parameter, as load_state_dict or a manual edit would
    opt.step()
    assert (a.data, b.data) == (-3.0 - 0.1, 2.0 - 0.1 - 0.1)


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, weight_decay=0.01), lambda ps: Adam(ps, lr=0.1)])
def test_a_step_marks_the_parameters_changed(make):
    """A graph built before a step holds derivatives at the old parameters: backward refuses it."""
    a, b = Value(1.0, "a"), Value(-2.0, "b")
    opt = make([a, b])
    loss = (a * b).tanh()
    loss.backward()
    opt.step()
    assert a.data != 1.0 and b.data != -2.0
    with pytest.raises(RuntimeError, match="changed after"):
        loss.backward()
    opt.zero_grad()
    (a * b).tanh().backward()  # a new forward pass is fine


# ---- frozen parameters and missing gradients are skipped, as in torch --------------------------

_FREEZE = [set(), set(), {1}, {1}, {1}, set(), {0}, set()]  # which parameter is frozen at each step


def _run_frozen(opt_factory):
    ps = [Value(1.5), Value(-0.7)]
    opt = opt_factory(ps)
    path = []
    for frozen in _FREEZE:
        for i, p in enumerate(ps):
            p.requires_grad = i not in frozen
        opt.zero_grad()
        ((ps[0] * ps[1]).tanh() + ps[0] ** 2 * 0.3 + ps[1].exp()).backward()
        opt.step()
        path.append([p.data for p in ps])
    return path


def _run_frozen_torch(opt_factory):
    torch = pytest.importorskip("torch")
    ps = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.5, -0.7)]
    opt = opt_factory(torch.optim, ps)
    path = []
    for frozen in _FREEZE:
        for i, p in enumerate(ps):
            p.requires_grad_(i not in frozen)
        opt.zero_grad()
        ((ps[0] * ps[1]).tanh() + ps[0] ** 2 * 0.3 + ps[1].exp()).backward()
        opt.step()
        path.append([p.item() for p in ps])
    return path


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
                                          ("Adam", dict(lr=0.1, weight_decay=0.2))])
def test_a_frozen_parameter_is_skipped_as_torch_skips_it(name, kwargs):
    ours = _run_frozen(lambda ps: getattr(mg.optim, name)(ps, **kwargs))
    ref = _run_frozen_torch(lambda optim, ps: getattr(optim, name)(ps, **kwargs))
    assert ours == (ref if name == "Adam" else [pytest.approx(r, rel=1e-12) for r in ref])  # Adam: same arithmetic


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda ps: Adam(ps, lr=0.1, weight_decay=0.1)])
def test_a_frozen_parameter_and_its_state_do_not_change(make):
    w, b = Value(1.0), Value(1.0)
    opt = make([w, b])
    for _ in range(3):
        opt.zero_grad()
        (w * b + b).backward()
        opt.step()
    b.requires_grad = False
    frozen_at, state = b.data, {k: getattr(opt, k)[1] for k in ("velocity", "t", "m", "v") if hasattr(opt, k)}
    for _ in range(3):
        opt.zero_grad()
        (w * b + b).backward()
        opt.step()
    assert b.data == frozen_at
    assert {k: getattr(opt, k)[1] for k in state} == state
    assert w.data != 1.0


def test_a_gradient_of_none_is_skipped_and_a_bad_one_refused():
    a, b = Value(1.0, "a"), Value(2.0, "b")
    opt = Adam([a, b], lr=0.1)
    a.grad, b.grad = None, 1.0  # torch's idiom for "no gradient"
    opt.step()
    assert a.data == 1.0 and b.data == pytest.approx(1.9) and opt.t.tolist() == [0, 1]
    a.grad = "1.5"
    with pytest.raises(TypeError, match=r"Adam.step: the gradient of parameter 0 \('a'\) must be a "
                                        r"number or None, got str '1.5'"):
        opt.step()
    a.grad = Value(1.0)
    with pytest.raises(TypeError, match="got Value"):
        opt.step()
    for flag in (True, False):  # a bool is not a number here, as backward says too
        a.grad = flag
        with pytest.raises(TypeError, match=f"must be a number or None, got bool {flag}"):
            opt.step()
    a.grad = 10 ** 400
    with pytest.raises(ValueError, match=r"gradient of parameter 0 .* is too large for a float"):
        opt.step()
    assert (a.data, b.data) == (1.0, pytest.approx(1.9)) and opt.t.tolist() == [0, 1]
    a.grad = 3  # an int is a number
    SGD([a], lr=0.5).step()
    assert a.data == -0.5


def test_every_parameter_frozen_makes_a_step_that_changes_nothing():
    a = Value(1.0, requires_grad=False)
    a.grad = 1.0
    opt = Adam([a], lr=0.1)
    opt.step()
    assert a.data == 1.0 and opt.t.tolist() == [0]


def test_sgd_momentum_may_change_between_steps_as_in_torch():
    torch = pytest.importorskip("torch")
    w = Value(1.0)
    opt = SGD([w], lr=0.1)
    t = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    ref = torch.optim.SGD([t], lr=0.1)
    for momentum in (0.0, 0.9, 0.9, 0.0, 0.5):
        opt.momentum = ref.param_groups[0]["momentum"] = momentum
        opt.zero_grad()
        (w * w).backward()
        opt.step()
        ref.zero_grad()
        (t * t).backward()
        ref.step()
        assert w.data == pytest.approx(t.item(), rel=1e-15)


@pytest.mark.parametrize("opt", [SGD, Adam])
def test_optimizers_name_a_model_or_an_uncalled_parameters_given_as_params(opt):
    model = mg.MLP(2, [3, 1], seed=0)
    with pytest.raises(TypeError, match=rf"^{opt.__name__}: params must be an iterable of Values, such as "
                                        r"model.parameters\(\), got MLP$"):
        opt(model, lr=0.1)
    with pytest.raises(TypeError, match=r"got method \(call it: model.parameters\(\)\)"):
        opt(model.parameters, lr=0.1)
    with pytest.raises(TypeError, match="got Value"):
        opt(model.parameters()[0], lr=0.1)


def test_adam_with_beta1_zero_takes_the_gradient_itself_as_torch():
    # torch's lerp takes m from its nearer end: with beta1 0, m is the new gradient exactly. Ours
    # computed m + (g - m), which loses a small g after a large one: 1 + (1e-20 - 1) is 0, so the
    # step was 0 where torch's is lr (beta2 0 and a tiny eps make Adam sign-SGD here)
    torch = pytest.importorskip("torch")
    p, t = Value(1.0), torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    ours = Adam([p], lr=0.1, betas=(0.0, 0.0), eps=1e-30)
    ref = torch.optim.Adam([t], lr=0.1, betas=(0.0, 0.0), eps=1e-30)
    for g in (1.0, 1e-20, 3.0, -1e-19):
        p.grad, t.grad = g, torch.tensor(g, dtype=torch.float64)
        ours.step()
        ref.step()
        assert p.data == pytest.approx(t.item(), rel=1e-15, abs=0)


@pytest.mark.parametrize("make, name, value, error, message", [
    (lambda ps: SGD(ps, lr=0.1), "lr", "0.01", TypeError, r"^SGD: lr must be a finite number >= 0, got str '0.01'$"),
    (lambda ps: SGD(ps, lr=0.1), "lr", float("nan"), ValueError, r"^SGD: lr must be a finite number >= 0, got nan$"),
    (lambda ps: Adam(ps), "lr", -1e-3, ValueError, r"^Adam: lr must be a finite number >= 0, got -0.001$"),
    (lambda ps: SGD(ps, lr=0.1), "momentum", 1.5, ValueError, r"^SGD: momentum must be a finite number in \[0, 1\)"),
    (lambda ps: SGD(ps, lr=0.1), "weight_decay", None, TypeError, r"^SGD: weight_decay must be .* got NoneType"),
    (lambda ps: Adam(ps), "eps", 0.0, ValueError, r"^Adam: eps must be a finite number > 0, got 0.0$"),
    (lambda ps: Adam(ps), "betas", (0.9, 1.0), ValueError, r"^Adam: betas must be a finite number in \[0, 1\)"),
])
def test_a_hyperparameter_set_by_hand_is_checked_as_the_constructor_checks_it(make, name, value, error, message):
    # as torch users set param_groups[0]["lr"] between steps: a bad one failed deep in numpy
    # (a string), or as "lr too large" (NaN), or trained uphill (negative)
    p = Value(1.0)
    opt = make([p])
    before = getattr(opt, name)
    with pytest.raises(error, match=message):
        setattr(opt, name, value)
    assert getattr(opt, name) == before
    p.grad = 1.0
    opt.step()
    assert p.data < 1.0
    setattr(opt, name, before)  # a good value is taken


# ---- state_dict / load_state_dict: resuming training exactly ----------------------------------

def _loss(ps):
    return (ps[0] * ps[1]).tanh() + ps[0] ** 2 * 0.3 + ps[1].exp()


def _step_both(opt, ps, ref, tps) -> None:
    """One step of our optimizer on ps and of torch's on tps, on the same loss: the same numbers after."""
    opt.zero_grad()
    ref.zero_grad()
    _loss(ps).backward()
    _loss(tps).backward()
    opt.step()
    ref.step()
    assert [p.data for p in ps] == pytest.approx([t.item() for t in tps], rel=1e-12)


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
                                          ("Adam", dict(lr=0.1, betas=(0.8, 0.99), weight_decay=0.2))])
def test_a_state_dict_saved_mid_training_resumes_exactly_as_torch_does(name, kwargs):
    import json
    torch = pytest.importorskip("torch")
    ps = [Value(1.5), Value(-0.7)]
    opt = getattr(mg.optim, name)(ps, **kwargs)
    tps = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.5, -0.7)]
    ref = getattr(torch.optim, name)(tps, **kwargs)
    for i in range(12):
        if i == 3:  # a parameter without a gradient for a step: Adam's step counts then differ
            ps[1].requires_grad = False
            tps[1].requires_grad_(False)
        if i == 4:
            ps[1].requires_grad = True
            tps[1].requires_grad_(True)
        if i == 5:  # saved (through json), and loaded into a fresh optimizer built with other settings
            saved = json.loads(json.dumps(opt.state_dict()))
            opt = getattr(mg.optim, name)(ps, lr=0.5)
            opt.load_state_dict(saved)
            ref.load_state_dict(ref.state_dict())
        _step_both(opt, ps, ref, tps)
    assert opt.lr == 0.1 and opt.state_dict()["param_groups"][0]["params"] == [0, 1]
    if name == "Adam":
        assert opt.state_dict()["state"]["t"] == [12, 11]


def test_a_loaded_state_dict_continues_bit_for_bit():
    def run(resume_at):
        ps = [Value(1.5), Value(-0.7)]
        opt = Adam(ps, lr=0.05)
        for i in range(10):
            if i == resume_at:
                saved = opt.state_dict()
                opt = Adam(ps)
                opt.load_state_dict(saved)
            opt.zero_grad()
            _loss(ps).backward()
            opt.step()
        return [p.data for p in ps]
    assert run(None) == run(4)


@pytest.mark.parametrize("edit, error, message", [
    (lambda s: s["param_groups"][0].update(params=[0, 1, 2]), ValueError,
     r"^Adam.load_state_dict: the state is for 3 parameters, but this optimizer has 2; load it into an optimizer "
     r"over the same parameters$"),
    # in torch's, params [1, 0] maps the saved state to the parameters swapped: here it was read in order, silently
    (lambda s: s["param_groups"][0].update(params=[1, 0]), ValueError,
     r"^Adam.load_state_dict: the parameter group's 'params' must be \[0, 1\], as state_dict\(\) lists them "
     r"\(its state holds one entry per parameter, in order\), got \[1, 0\]$"),
    (lambda s: s["param_groups"][0].update(params=["a", None]), ValueError, r"'params' must be \[0, 1\], .* got \['a', None\]"),
    (lambda s: s["state"].update(m=[0.0]), ValueError,
     r"^Adam.load_state_dict: state 'm' must hold one number per parameter \(2\), got 1 entries$"),
    (lambda s: s["state"]["m"].__setitem__(1, float("nan")), ValueError,
     r"^Adam.load_state_dict: state 'm': entry 1 must be a finite number, got float nan$"),
    (lambda s: s["state"]["v"].__setitem__(0, -1.0), ValueError, r"state 'v': entry 0 must be a finite number >= 0"),
    (lambda s: s["state"]["t"].__setitem__(0, 1.5), ValueError, r"state 't': entry 0 must be an int in \[0, 2\*\*62\], got float 1.5"),
    (lambda s: s["state"]["t"].__setitem__(0, True), ValueError, r"state 't': entry 0 must be an int in \[0, 2\*\*62\], got bool"),
    # was: a raw OverflowError from numpy ("Python int too large to convert to C long")
    (lambda s: s["state"]["t"].__setitem__(1, 10 ** 400), ValueError,
     r"^Adam.load_state_dict: state 't': entry 1 must be an int in \[0, 2\*\*62\], got int an int of about 401 digits"),
    # one past int64's range; and one a step would wrap to a negative count
    (lambda s: s["state"]["t"].__setitem__(0, 2 ** 63), ValueError, r"state 't': entry 0 must be an int in \[0, 2\*\*62\]"),
    (lambda s: s["state"]["t"].__setitem__(0, 2 ** 63 - 1), ValueError, r"state 't': entry 0 must be an int in"),
    (lambda s: s["state"].update(m="abc"), ValueError, r"state 'm' must hold one number per parameter \(2\), got 3"),
    (lambda s: s["param_groups"][0].update(lr="0.1"), TypeError, r"^Adam: lr must be a finite number >= 0, got str"),
    (lambda s: s["param_groups"][0].update(betas=[0.9, 1.0]), ValueError, r"^Adam: betas must be"),
    (lambda s: s["param_groups"][0].update(nesterov=True), ValueError,
     r"^Adam.load_state_dict: Adam.state_dict\(\) has settings .* got \[.*'lr', 'maximize', 'nesterov', "),
    (lambda s: s.update(state={"velocity": [0.0, 0.0]}), ValueError, r"and state \['m', 't', 'v'\], got .* \['velocity'\]"),
    (lambda s: s.pop("state"), ValueError, r"expected the keys 'state' and 'param_groups' of state_dict\(\), got"),
    (lambda s: s.update(param_groups=[]), ValueError, "param_groups must be a list of one dict"),
])
def test_load_state_dict_refuses_a_state_that_does_not_fit_and_changes_nothing(edit, error, message):
    ps = [Value(1.5), Value(-0.7)]
    opt = Adam(ps, lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        _loss(ps).backward()
        opt.step()
    state = opt.state_dict()
    bad = copy.deepcopy(state)
    edit(bad)
    with pytest.raises(error, match=message):
        opt.load_state_dict(bad)
    assert opt.state_dict() == state
    with pytest.raises(TypeError, match=r"^SGD.load_state_dict: expected a dict from an optimizer's state_dict\(\)"):
        SGD(ps, lr=0.1).load_state_dict([1, 2])
    with pytest.raises(ValueError, match=r"^SGD.load_state_dict: SGD.state_dict\(\) has settings .* got .*\['m', 't', 'v'\]"):
        SGD(ps, lr=0.1).load_state_dict(state)


def test_a_linear_lr_resumed_from_its_state_dict_continues_the_schedule_as_torch():
    # without it a resumed schedule started over, scaling the loaded lr down again
    torch = pytest.importorskip("torch")
    opt, sched, t_opt, t_sched = _linear_lr_pair(torch, 0.3, start_factor=0.25, total_iters=6)
    for i in range(9):
        if i == 3:  # a fresh optimizer and scheduler, as a resumed run builds them, then loaded
            saved = opt.state_dict(), sched.state_dict()
            opt = SGD([Value(1.0)], lr=0.3)
            sched = LinearLR(opt, start_factor=0.25, total_iters=6)
            opt.load_state_dict(saved[0])
            sched.load_state_dict(saved[1])
            assert sched.last_epoch == t_sched.last_epoch == 3
        assert sched.get_last_lr() == pytest.approx(t_sched.get_last_lr(), rel=1e-12)
        sched.step()
        t_opt.step()
        t_sched.step()
    with pytest.raises(ValueError, match=r"^LinearLR.load_state_dict: last_epoch must be an int >= 0, got -1$"):
        sched.load_state_dict(saved[1] | {"last_epoch": -1})
    with pytest.raises(ValueError, match=r"^LinearLR.load_state_dict: expected a dict with the keys \['_last_lr', 'base_lrs'"):
        sched.load_state_dict(saved[0])
    for base in (0.3, [0.3, 0.3], []):
        with pytest.raises(ValueError, match=r"^LinearLR.load_state_dict: base_lrs must be a list of one lr"):
            sched.load_state_dict(saved[1] | {"base_lrs": base})
    assert sched.last_epoch == 9


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda ps: Adam(ps, lr=0.1, weight_decay=0.1)])
def test_zero_grad_set_to_none_leaves_an_unreached_parameter_alone_as_torch_does(make):
    # zero_grad(set_to_none=True) was Python's "unexpected keyword argument"; torch takes it (its default)
    torch = pytest.importorskip("torch")
    ps = [Value(1.5), Value(-0.7), Value(0.3)]
    ts = [torch.tensor(p.data, dtype=torch.float64, requires_grad=True) for p in ps]
    opt = make(ps)
    ref = (torch.optim.SGD(ts, lr=0.1, momentum=0.9, weight_decay=0.1) if isinstance(opt, SGD)
           else torch.optim.Adam(ts, lr=0.1, weight_decay=0.1))
    for step in range(4):
        opt.zero_grad(set_to_none=True)
        ref.zero_grad(set_to_none=True)
        assert all(p.grad is None for p in ps)
        used = 2 if step < 2 else 1  # the last parameter is never reached; the second stops being reached
        (sum((p * p for p in ps[:used]), Value(0.0)) * ps[0]).backward()
        (sum(t * t for t in ts[:used]) * ts[0]).backward()
        opt.step()
        ref.step()
        assert [p.data for p in ps] == pytest.approx([t.item() for t in ts], rel=1e-12)
    assert ps[2].data == 0.3
    opt.zero_grad(set_to_none=False)
    assert [p.grad for p in ps] == [0.0, 0.0, 0.0]
    opt.zero_grad()  # ours sets 0 by default (torch's default is None)
    assert [p.grad for p in ps] == [0.0, 0.0, 0.0]
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match=rf"zero_grad: set_to_none must be True or False, got {type(bad).__name__}"):
            opt.zero_grad(set_to_none=bad)


def test_linear_lr_get_last_lr_is_the_lr_of_the_last_step_as_torch():
    # get_last_lr() read the optimizer's lr now, so after a hand edit it gave that before any step computed it
    torch = pytest.importorskip("torch")
    ours, sched, t_opt, t_sched = _linear_lr_pair(torch, 0.3, total_iters=3)
    for i in range(6):
        if i in (0, 2, 4):  # during the ramp and after it
            ours.lr = t_opt.param_groups[0]["lr"] = 0.01 * (i + 1)
            assert sched.get_last_lr() != [ours.lr]  # the edit shows from the next step on
        assert sched.get_last_lr() == pytest.approx(t_sched.get_last_lr(), rel=1e-12)
        sched.step()
        t_opt.step()
        t_sched.step()
        assert sched.get_last_lr() == pytest.approx(t_sched.get_last_lr(), rel=1e-12)


# ---- param_groups: torch's one group, live ----------------------------------------------------

@pytest.mark.parametrize("name, writes", [
    ("SGD", [("lr", 0.05), ("momentum", 0.5), ("weight_decay", 0.1), ("nesterov", False), ("dampening", 0)]),
    ("Adam", [("lr", 0.02), ("betas", (0.5, 0.9)), ("eps", 1e-4), ("weight_decay", 0.2), ("amsgrad", False)]),
])
def test_param_groups_writes_and_reads_the_settings_as_torch(name, writes):
    # torch users set opt.param_groups[0]["lr"] (or loop over the groups); there was no param_groups
    torch = pytest.importorskip("torch")
    ps = [Value(1.5), Value(-0.7)]
    tps = [torch.tensor(p.data, dtype=torch.float64, requires_grad=True) for p in ps]
    opt, ref = getattr(mg.optim, name)(ps, lr=0.1), getattr(torch.optim, name)(tps, lr=0.1)
    assert list(opt.param_groups[0]) == list(ref.param_groups[0]) and len(opt.param_groups) == 1
    for step in range(4):
        if step == 2:
            for g, tg in zip(opt.param_groups, ref.param_groups):
                for key, value in writes:
                    g[key] = tg[key] = value
        ours = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
        assert ours == {k: v for k, v in ref.param_groups[0].items() if k != "params"}
        assert opt.param_groups[0]["params"] == ps
        _step_both(opt, ps, ref, tps)
    assert opt.lr == writes[0][1]
    saved = opt.state_dict()["param_groups"][0]  # the state_dict's group holds the same keys
    assert list(saved) == [k for k in ref.state_dict()["param_groups"][0]]
    assert saved == {k: list(v) if isinstance(v, tuple) else v for k, v in opt.param_groups[0].items()} | {
        "params": [0, 1]}


@pytest.mark.parametrize("write, error, message", [
    (lambda g: g.__setitem__("lr", -1.0), ValueError, r"^SGD: lr must be a finite number >= 0, got -1.0$"),
    (lambda g: g.__setitem__("nesterov", True), ValueError,
     r"^SGD.param_groups\[0\]\['nesterov'\] must be False \(SGD has no other nesterov\), got True$"),
    (lambda g: g.__setitem__("dampening", 0.5), ValueError, r"\['dampening'\] must be 0 .*got 0.5$"),
    (lambda g: g.__setitem__("maximize", 1), ValueError, r"\['maximize'\] must be False .*got 1$"),
    (lambda g: g.__setitem__("learning_rate", 0.1), KeyError, r"SGD.param_groups\[0\] has no key 'learning_rate'"),
    (lambda g: g.__setitem__("params", []), TypeError, r"\['params'\] cannot be set: make a new optimizer"),
    (lambda g: g["params"].append(Value(2.0)), TypeError, r"\['params'\] cannot be changed"),
    (lambda g: g.pop("lr"), TypeError, r"keys cannot be removed"),
])
def test_param_groups_refuses_a_write_it_cannot_honour_and_changes_nothing(write, error, message):
    opt = SGD([Value(1.0)], lr=0.1, momentum=0.9)
    before = opt.state_dict()
    with pytest.raises(error, match=message):
        write(opt.param_groups[0])
    with pytest.raises(TypeError, match=r"^SGD.param_groups holds the one group"):
        opt.param_groups.append({"params": [Value(2.0)], "lr": 0.1})
    assert opt.state_dict() == before


def test_an_optimizer_state_dict_saved_before_the_fixed_keys_still_loads():
    opt = Adam([Value(1.0)], lr=0.1)
    old = {"state": {"t": [2], "m": [0.5], "v": [0.25]},
           "param_groups": [{"lr": 0.01, "betas": [0.8, 0.9], "eps": 1e-6, "weight_decay": 0.0, "params": [0]}]}
    opt.load_state_dict(old)
    assert (opt.lr, opt.betas, opt.state_dict()["state"]) == (0.01, (0.8, 0.9), old["state"])
    with pytest.raises(ValueError, match=r"\['amsgrad'\] must be False \(Adam has no other amsgrad\), got True"):
        opt.load_state_dict(opt.state_dict() | {"param_groups": [opt.state_dict()["param_groups"][0] | {"amsgrad": True}]})


@pytest.mark.parametrize("name", ["SGD", "Adam", "LinearLR"])
def test_constructor_defaults_are_torchs(name):
    # SGD required lr, which torch defaults to 1e-3
    import inspect
    torch = pytest.importorskip("torch")
    ref = getattr(torch.optim, name, None) or torch.optim.lr_scheduler.LinearLR
    ours = inspect.signature(getattr(mg.optim, name)).parameters
    theirs = inspect.signature(ref).parameters
    for key, p in ours.items():
        assert theirs[key].default == p.default, key
    assert SGD([Value(1.0)]).lr == torch.optim.SGD([torch.zeros(1, requires_grad=True)]).param_groups[0]["lr"]


@pytest.mark.parametrize("load_optimizer", [True, False])
def test_linear_lr_get_last_lr_after_load_state_dict_is_the_saved_one_as_torch(load_optimizer):
    # just after load_state_dict, get_last_lr() gave the optimizer's lr, not the lr the schedule last set
    torch = pytest.importorskip("torch")
    opt, sched, t_opt, t_sched = _linear_lr_pair(torch, 0.3, start_factor=0.25, total_iters=6)
    for _ in range(3):
        opt.step()
        t_opt.step()
        sched.step()
        t_sched.step()
    opt.lr = t_opt.param_groups[0]["lr"] = 0.05  # set by hand after the last step, then saved
    saved, t_saved = (opt.state_dict(), sched.state_dict()), (t_opt.state_dict(), t_sched.state_dict())
    opt, sched, t_opt, t_sched = _linear_lr_pair(torch, 0.3, start_factor=0.25, total_iters=6)
    if load_optimizer:
        opt.load_state_dict(saved[0])
        t_opt.load_state_dict(t_saved[0])
    sched.load_state_dict(saved[1])
    t_sched.load_state_dict(t_saved[1])
    assert sched.get_last_lr() == pytest.approx(t_sched.get_last_lr(), rel=1e-12)
    assert sched.get_last_lr() != [opt.lr]
    sched.step()
    t_sched.step()
    assert sched.get_last_lr() == pytest.approx(t_sched.get_last_lr(), rel=1e-12)


def test_linear_lr_loads_a_state_dict_saved_without_last_lr():
    opt = SGD([Value(1.0)], lr=0.2)
    sched = LinearLR(opt)
    old = {"start_factor": 0.5, "end_factor": 1.0, "total_iters": 4, "base_lrs": [0.2], "last_epoch": 2}
    sched.load_state_dict(old)
    assert sched.get_last_lr() == [opt.lr] and sched.state_dict() == old | {"_last_lr": [opt.lr]}
    with pytest.raises(ValueError, match=r"^LinearLR.load_state_dict: _last_lr must be a finite number >= 0, got"):
        sched.load_state_dict(old | {"_last_lr": [float("nan")]})
    with pytest.raises(ValueError, match=r"^LinearLR.load_state_dict: _last_lr must be a list of one lr"):
        sched.load_state_dict(old | {"_last_lr": 0.1})


@pytest.mark.parametrize("make", [mg.optim.SGD, mg.optim.Adam])
def test_optimizers_refuse_a_set_of_parameters_whose_order_changes_between_runs_as_torch_does(make):
    model = mg.MLP(2, [3, 1], seed=0)
    with pytest.raises(TypeError, match=r"params must be in a fixed order .* got a set"):
        make(set(model.parameters()), lr=0.1)
    with pytest.raises(TypeError, match=r"got a set"):
        make(frozenset(model.parameters()), lr=0.1)
    make(tuple(model.parameters()), lr=0.1)  # ordered: fine


def test_optimizers_and_the_scheduler_show_their_settings_in_a_repl():
    params = mg.MLP(2, [4, 1], seed=0).parameters()
    sgd = mg.optim.SGD(params, lr=0.1, momentum=0.9)
    assert repr(sgd) == "SGD(17 parameters, lr=0.1, momentum=0.9, weight_decay=0.0)"
    adam = mg.optim.Adam(params, lr=0.03)
    scheduler = mg.optim.LinearLR(adam, start_factor=0.5, total_iters=2)
    scheduler.step()
    assert repr(scheduler) == "LinearLR(Adam, start_factor=0.5, end_factor=1.0, total_iters=2, last_epoch=1)"
    assert repr(adam) == f"Adam(17 parameters, lr={adam.lr!r}, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)"
    assert adam.lr == pytest.approx(0.0225)  # the lr shown is the one set now


def test_adam_state_of_parameters_never_stepped_loads_and_resumes_the_same():
    # step counts of 0 and second moments of 0 (a parameter whose .grad stayed None, a fresh Adam)
    # are a state Adam makes itself: its own state_dict must load
    a, b = Value(1.0), Value(2.0)
    opt = Adam([a, b], lr=0.1)
    fresh = Adam([Value(1.0), Value(2.0)], lr=0.1)
    fresh.load_state_dict(opt.state_dict())
    a.grad, b.grad = 0.5, None
    opt.step()
    assert opt.state_dict()["state"]["t"] == [1, 0] and opt.state_dict()["state"]["v"][1] == 0.0
    twin_a, twin_b = Value(a.data), Value(b.data)
    twin = Adam([twin_a, twin_b], lr=0.1)
    twin.load_state_dict(opt.state_dict())
    for o, x, y in ((opt, a, b), (twin, twin_a, twin_b)):
        x.grad, y.grad = -0.25, 0.75
        o.step()
    assert (a.data, b.data) == (twin_a.data, twin_b.data)


@pytest.mark.parametrize("key, value", [("nesterov", False), ("nesterov", np.False_), ("foreach", None),
                                        ("maximize", False)])
def test_param_groups_take_a_fixed_setting_at_its_own_value_as_torch(key, value):
    opt = SGD([Value(1.0)], lr=0.1)
    opt.param_groups[0][key] = value  # torch users copy a group's settings back: no error
    assert opt.param_groups[0][key] is (False if value is np.False_ else value)
    assert len(opt.param_groups[0]) == len(list(opt.param_groups[0])) == len(dict(opt.param_groups[0]))
