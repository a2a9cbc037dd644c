import math
import subprocess
import sys

import numpy as np
import pytest

import microgradnn as mg
from microgradnn import MLP, Value, losses
from microgradnn.testing import (assert_gradients_close, check_module_gradients, compare_with_torch,
                                 gradcheck, gradgradcheck)

BUILTINS = {
    "+": (lambda a, b: a + b, [0.3, -1.2]), "-": (lambda a, b: a - b, [0.3, -1.2]),
    "*": (lambda a, b: a * b, [0.3, -1.2]), "/": (lambda a, b: a / b, [0.3, -1.2]),
    "**": (lambda a, b: a ** b, [1.3, -1.2]), "neg": (lambda a: -a, [0.7]),
    "abs": (lambda a: a.abs(), [-0.7]), "exp": (lambda a: a.exp(), [0.7]), "log": (lambda a: a.log(), [0.7]),
    "sqrt": (lambda a: a.sqrt(), [0.7]), "tanh": (lambda a: a.tanh(), [0.7]),
    "sigmoid": (lambda a: a.sigmoid(), [-0.7]), "relu": (lambda a: a.relu(), [0.7]),
    "leaky_relu": (lambda a: a.leaky_relu(0.2), [-0.7]), "sin": (lambda a: a.sin(), [0.7]),
    "cos": (lambda a: a.cos(), [0.7]), "softplus": (lambda a: a.softplus(), [0.7]),
    "dot": (lambda w0, w1, x0, x1, b: mg.dot([w0, w1], [x0, x1], b), [0.3, -0.2, 1.1, 0.4, 0.05]),
    "logsumexp": (lambda a, b, c: mg.logsumexp([a, b, c]), [0.3, -2.0, 1.5]),
    "is_class": (lambda t, k: mg.engine.is_class(t, k), [0.5, 1.0]),  # a constant 0 away from t == k
    "take": (lambda a, b, c: mg.take(1, [a, b, c]), [0.3, -2.0, 1.5]),  # the index is data, not differentiated
}


def test_every_builtin_op_is_covered():
    assert set(BUILTINS) == mg.engine._BUILTIN


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_ops_pass_gradcheck(name):
    f, point = BUILTINS[name]
    report = gradcheck(f, point)
    assert report and not report.kinks and len(report.rows) == len(point)


@pytest.mark.parametrize("name", [n for n in BUILTINS if n not in ("leaky_relu", "softplus", "dot", "logsumexp", "is_class", "take")])
def test_builtin_ops_match_torch(name):
    pytest.importorskip("torch")
    f, point = BUILTINS[name]
    report = compare_with_torch(f, point)
    assert report and [r.name for r in report.rows] == ["output"] + [f"x[{i}]" for i in range(len(point))]


def test_wrong_custom_derivative_is_named_with_its_numbers():
    square = mg.define_op("bad_square", lambda x: x * x, lambda x, out: 3 * x)  # should be 2x
    report = gradcheck(lambda x, y: square(x).tanh() * y, {"x": 0.5, "y": 2.0})
    assert not report and [r.name for r in report.failures] == ["x"]
    text = str(report)
    assert "1 of 2 entries FAILED" in text
    assert "first wrong node: op 'bad_square' at bad_square(x=0.5): d/d(input 0) is 1.5 but finite differences give 1" in text
    row = report.failures[0]
    assert row.analytic == pytest.approx(1.5 * 2 * (1 - math.tanh(0.25) ** 2))
    assert row.reference == pytest.approx(1.0 * 2 * (1 - math.tanh(0.25) ** 2), rel=1e-8)
    with pytest.raises(AssertionError) as info:
        assert_gradients_close(lambda x, y: square(x).tanh() * y, {"x": 0.5, "y": 2.0})
    lines = str(info.value).splitlines()
    assert lines[1].split() == ["input", "analytic", "numeric", "abs", "err", "rel", "err", "status"]
    assert lines[2].startswith("> x ") and lines[2].endswith("FAIL")  # worst first, marked


def test_kinks_are_reported_as_non_differentiable():
    report = gradcheck(lambda a, b: a.relu() + b.abs(), [0.0, 0.0])
    assert report  # not a false failure
    assert [r.status for r in report.rows] == ["non-differentiable"] * 2
    assert "2 at a non-differentiable point" in str(report)


def test_non_finite_is_reported_not_passed():
    report = gradcheck(lambda x: x.log(), 1e-9)  # the finite-difference step leaves the domain
    assert not report and report.rows[0].status == "non-finite"


def test_input_forms_and_grads_left_alone():
    w = Value(2.0)
    w.grad = 7.0
    f = lambda x: x * w
    assert [r.name for r in gradcheck(f, 1.5).rows] == ["x"]
    assert w.grad == 7.0
    assert [r.name for r in gradcheck(lambda a, b: a * b, np.array([1.0, 2.0])).rows] == ["x[0]", "x[1]"]
    assert [r.name for r in gradcheck(lambda *v: v[0] * v[3], np.ones((2, 2))).rows] == \
        ["x[0, 0]", "x[0, 1]", "x[1, 0]", "x[1, 1]"]
    with pytest.raises(ValueError, match="must be finite"):
        gradcheck(f, [float("nan")])
    with pytest.raises(TypeError, match="f must return a Value"):
        gradcheck(lambda x: 3.0, 1.0)


def test_gradgradcheck_passes_and_catches_a_first_derivative_that_hides_its_input():
    assert gradgradcheck(lambda x, y: (x * y).sin() * x.exp(), [0.4, 0.7])
    cube = mg.define_op("cube_data", lambda x: x ** 3, lambda x, out: 3 * float(x) ** 2)  # float() cuts the graph
    report = gradgradcheck(lambda x: cube(x), [1.5])
    assert not report and report.rows[0].analytic == 0.0 and report.rows[0].reference == pytest.approx(9.0)


def test_compare_with_torch_without_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install torch==2.13.0"):
        compare_with_torch(lambda x: x, [1.0])


@pytest.mark.parametrize("loss, out_act, nout, transform", [
    (losses.mse, "linear", 1, lambda y: y), (losses.hinge, "linear", 1, lambda y: y * 2 - 1),
    (losses.binary_cross_entropy, "sigmoid", 1, lambda y: y),
    (losses.binary_cross_entropy_with_logits, "linear", 1, lambda y: y),
    (losses.cross_entropy, "linear", 2, lambda y: y),
])
def test_check_module_gradients_passes_for_each_loss(loss, out_act, nout, transform):
    X, y = mg.data.make_moons(8, noise=0.2, seed=1)
    model = MLP(2, [4, nout], "tanh", out_act, seed=0)
    before = [(p.data, p.grad) for p in model.parameters()]
    report = check_module_gradients(model, loss, X, transform(y))
    assert report and len(report.rows) == model.num_parameters()
    assert [(p.data, p.grad) for p in model.parameters()] == before


def test_check_module_gradients_ignores_gradients_already_held():
    X, y = mg.data.make_moons(6, seed=0)
    model = MLP(2, [3, 1], "tanh", seed=0)
    for p in model.parameters():
        p.grad = 5.0  # left over from a training step
    assert check_module_gradients(model, losses.mse, X, y)
    assert all(p.grad == 5.0 for p in model.parameters())


def test_check_module_gradients_names_a_corrupted_parameter_and_samples():
    model = MLP(2, [3, 1], "tanh", seed=0)
    doubled = mg.define_op("wrong_identity", lambda x: x, lambda x, out: 2.0)
    target = model.layers[0].neurons[1].w[0]
    X, y = mg.data.make_moons(6, seed=0)
    loss_fn = lambda outs, t: losses.mse(outs, t) + doubled(target) * 0.5
    report = check_module_gradients(model, loss_fn, X, y)
    assert [r.name for r in report.failures] == ["layers.0.neurons.1.w.0"]
    assert "op 'wrong_identity'" in str(report)
    sampled = check_module_gradients(model, losses.mse, X, y, sample=5, seed=3)
    assert len(sampled.rows) == 5 and sampled.rows == check_module_gradients(model, losses.mse, X, y, sample=5, seed=3).rows


USER_TEST = '''
import pytest
import microgradnn as mg

pytestmark = pytest.mark.gradcheck_tolerance(atol=1e-7, rtol=1e-6)

softsign = mg.define_op("softsign", lambda x: x / (1 + abs(x)), lambda x, out: {derivative})


def test_softsign(gradcheck):
    gradcheck(softsign, [0.7])
    gradcheck(lambda x, y: softsign(x * y), {{"x": -0.3, "y": 2.0}})


def test_against_torch(compare_with_torch):
    compare_with_torch(lambda x: x.tanh() * x.sigmoid() / x.abs().sqrt(), [0.4])
'''


def _run_user_tests(tmp_path, derivative: str):
    (tmp_path / "test_user.py").write_text(USER_TEST.format(derivative=derivative))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_plugin_fixtures_work_in_a_users_own_test_folder(tmp_path):
    pytest.importorskip("torch")
    ok = _run_user_tests(tmp_path, "1 / (1 + abs(x)) ** 2")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "2 passed" in ok.stdout


def test_plugin_failure_shows_the_table(tmp_path):
    pytest.importorskip("torch")
    bad = _run_user_tests(tmp_path, "1 / (1 + abs(x))")  # the square is missing
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "gradcheck of softsign (eps=1e-06, atol=1e-07, rtol=1e-06): 1 of 1 entries FAILED" in bad.stdout
    assert "> x[0]" in bad.stdout and "first wrong node: op 'softsign'" in bad.stdout
    assert "1 failed, 1 passed" in bad.stdout
