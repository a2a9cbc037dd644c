import numpy as np
import pytest

import microgradnn as mg
from microgradnn import MLP, Value, losses

CASES = [(losses.mse, "linear", 1, lambda y: y), (losses.hinge, "linear", 1, lambda y: 2 * y - 1),
         (losses.binary_cross_entropy, "sigmoid", 1, lambda y: y),
         (losses.binary_cross_entropy_with_logits, "linear", 1, lambda y: y),
         (losses.cross_entropy, "linear", 3, lambda y: y)]


def scalar_step(model, loss, X, t):
    model.zero_grad()
    value = loss([model(x) for x in X], t)
    value.backward()
    return value.data, np.array([p.grad for p in model.parameters()])


def scalar_mean_grads(fn, X, y, params):
    """The reference: d(mean of fn over the samples)/d(param) from the scalar engine, grads left as found."""
    saved = [p.grad for p in params]
    for p in params:
        p.grad = 0.0
    losses = [fn([Value(float(v)) for v in row], t) for row, t in zip(X, y)]
    total = losses[0]
    for loss in losses[1:]:
        total = total + loss
    (total / len(losses)).backward()
    grads = [p.grad for p in params]
    for p, g in zip(params, saved):
        p.grad = g
    return grads


def compiled_step(model, compiled, X, t):
    model.zero_grad()
    result = compiled(X, t)
    result.backward()
    return result.data, np.array([p.grad for p in model.parameters()])


@pytest.mark.parametrize("loss, out_act, nout, targets", CASES, ids=lambda c: getattr(c, "__name__", None))
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "linear"])
@pytest.mark.parametrize("fused", [True, False])
def test_replay_matches_the_scalar_loop(loss, out_act, nout, targets, activation, fused):
    X, y = mg.data.make_spiral(24, classes=3, seed=0) if nout == 3 else mg.data.make_moons(24, noise=0.2, seed=0)
    t = targets(y)
    model = MLP(2, [6, 5, nout], activation, out_act, seed=3, fused=fused)
    compiled = mg.compile(lambda x, target: loss([model(x)], [target]))
    expected_loss, expected = scalar_step(model, loss, X, t)
    got_loss, got = compiled_step(model, compiled, X, t)
    assert got_loss == pytest.approx(expected_loss, rel=1e-12)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_parameters_are_read_fresh_so_training_loops_work():
    X, y = mg.data.make_moons(40, noise=0.1, seed=1)
    model = MLP(2, [8, 8, 1], seed=0)
    twin = MLP(2, [8, 8, 1], seed=0)
    compiled = mg.compile(lambda x, t: losses.hinge([model(x)], [t]))
    opt, twin_opt = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), mg.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    for _ in range(5):
        compiled_step(model, compiled, X, 2 * y - 1)
        opt.step()
        scalar_step(twin, losses.hinge, X, 2 * y - 1)
        twin_opt.step()
    assert [p.data for p in model.parameters()] == pytest.approx([p.data for p in twin.parameters()], rel=1e-10)


def test_batch_result_and_watched_outputs():
    X, y = mg.data.make_blobs(10, centers=3, seed=0)
    model = MLP(2, [4, 3], seed=0)
    from microgradnn.replay import compile_model_loss
    result = compile_model_loss(model, losses.cross_entropy)(X, y)
    assert result.outputs.shape == (10, 3)
    assert result.outputs == pytest.approx(model.decision_function(X), rel=1e-13)
    assert result.losses.shape == (10,) and result.data == pytest.approx(result.losses.mean())


def test_data_dependent_graphs_are_refused():
    w = Value(0.5)
    branching = mg.compile(lambda x, t: (x[0] * w if x[0].data > 0 else x[0] * w * w) - t)
    X = np.array([[1.0], [2.0], [-1.0], [-2.0]])
    with pytest.raises(ValueError, match="different graph for sample 0 and sample 2.*depend on the data"):
        branching(X, np.zeros(4))
    constant = mg.compile(lambda x, t: w * float(x[0]) - t)
    with pytest.raises(ValueError, match="'const'"):
        constant(np.array([[1.0], [2.0], [3.0]]), np.zeros(3))
    fine = mg.compile(lambda x, t: (x[0] * w).relu() - t)  # relu has no Python branch on data
    fine(X, np.zeros(4)).backward()
    assert w.grad == pytest.approx((1.0 + 2.0) / 4)


def test_replay_reports_non_finite_values_and_bad_shapes():
    w = Value(1.0)
    compiled = mg.compile(lambda x, t: (x[0] * w).log() - t)
    with pytest.raises(ValueError, match=r"compiled: log\(-2\) is not finite for sample 1"):
        compiled(np.array([[1.0], [-2.0], [3.0], [4.0], [5.0]]), np.zeros(5))  # 0, 2, 4 are recorded
    with pytest.raises(ValueError, match="expected X of shape"):
        compiled(np.array([1.0, 2.0]), np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        compiled(np.array([[np.nan]]), np.zeros(1))
    with pytest.raises(TypeError, match="must return a Value"):
        mg.compile(lambda x, t: 1.0)(np.ones((2, 1)), np.zeros(2))


def test_custom_ops_replay_element_by_element():
    cube = mg.define_op("replay_cube", lambda x: x ** 3, lambda x, out: 3 * x ** 2)
    step = mg.define_op("replay_step", lambda x: x if x > 0 else 0.5 * x, lambda x, out: 1.0 if x > 0 else 0.5)
    w = Value(0.7)
    compiled = mg.compile(lambda x, t: step(cube(x[0] * w) - t))
    X, t = np.array([[1.0], [-2.0], [0.5]]), np.array([0.1, 0.2, 0.3])
    result = compiled(X, t)
    result.backward()
    scalar = [step(cube(Value(float(xi)) * w) - ti) for xi, ti in zip(X[:, 0], t)]
    grad_expected = 0.0
    for xi, ti in zip(X[:, 0], t):
        v = Value(0.7)
        out = step(cube(xi * v) - ti)
        out.backward()
        grad_expected += v.grad / 3
    assert result.data == pytest.approx(sum(s.data for s in scalar) / 3, rel=1e-14)
    assert w.grad == pytest.approx(grad_expected, rel=1e-13)


def test_fit_compiled_gives_the_same_history():
    X, y = mg.data.make_moons(50, noise=0.1, seed=0)
    a, b = MLP(2, [8, 8, 1], seed=1), MLP(2, [8, 8, 1], seed=1)
    h1 = mg.fit(a, X, 2 * y - 1, "hinge", mg.optim.SGD(a.parameters(), lr=0.1, momentum=0.9), 15, verbose=False)
    h2 = mg.fit(b, X, 2 * y - 1, "hinge", mg.optim.SGD(b.parameters(), lr=0.1, momentum=0.9), 15, verbose=False,
                compiled=True)
    assert h2.loss == pytest.approx(h1.loss, rel=1e-10) and h2.accuracy == h1.accuracy
    X3, y3 = mg.data.make_spiral(30, classes=3, seed=0)
    c, d = MLP(2, [8, 3], seed=1), MLP(2, [8, 3], seed=1)
    h3 = mg.fit(c, X3, y3, "cross_entropy", mg.optim.Adam(c.parameters(), lr=0.05), 10, batch_size=8, verbose=False)
    h4 = mg.fit(d, X3, y3, "cross_entropy", mg.optim.Adam(d.parameters(), lr=0.05), 10, batch_size=8, verbose=False,
                compiled=True)
    assert h4.loss == pytest.approx(h3.loss, rel=1e-9) and h4.accuracy == h3.accuracy


def test_a_stale_result_refuses_backward():
    w = Value(0.5)
    compiled = mg.compile(lambda x, t: (x[0] * w - t) ** 2)
    X, t = np.array([[1.0], [2.0]]), np.zeros(2)
    first = compiled(X, t)
    second = compiled(2 * X, t)
    with pytest.raises(RuntimeError, match="has run again since this result was made"):
        first.backward()
    second.backward()
    assert w.grad == pytest.approx(((2 * 0.5 * 2) * 2 + (4 * 0.5 * 2) * 4) / 2)
    assert first.data == pytest.approx((0.25 + 1.0) / 2) and first.losses.tolist() == [0.25, 1.0]


def test_a_loss_that_is_a_parameter_itself():
    w = Value(0.5)
    result = mg.compile(lambda x, t: w)(np.ones((3, 1)), np.zeros(3))
    result.backward()
    assert result.data == 0.5 and w.grad == 1.0


def test_layers_with_weights_in_any_order_replay_exactly():
    ws = [[Value(0.3), Value(-0.2)], [Value(0.5), Value(0.1)]]
    bs = [Value(0.05), Value(-0.1)]

    def fn(x, t):  # two neurons over shared inputs; one weight is also used on its own at both ends
        h = [mg.dot([ws[1][1], ws[0][0]], x, bs[1]).tanh(), mg.dot([ws[0][1], ws[1][0]], x, bs[0]).tanh()]
        return (ws[0][1] * 0.5 + h[0] * h[1] + ws[0][1] * 0.25 - t) ** 2
    X, y = mg.data.make_moons(10, seed=0)
    compiled = mg.compile(fn)
    result = compiled(X, y)
    result.backward()
    params = [*ws[0], *ws[1], *bs]
    assert [v.grad for v in params] == pytest.approx(scalar_mean_grads(fn, X, y, params), rel=1e-12)


def test_parameters_used_as_a_layers_inputs_get_their_gradients():
    p, q = Value(0.4), Value(-0.7)  # shared inputs of two neurons, themselves parameters
    ws, bs = [[Value(0.3), Value(-0.2)], [Value(0.5), Value(0.1)]], [Value(0.05), Value(-0.1)]

    def fn(x, t):
        h = [mg.dot(w, [p, q], b).tanh() for w, b in zip(ws, bs)]
        return (h[0] * x[0] + h[1] * x[1] - t) ** 2
    X, y = mg.data.make_moons(8, seed=0)
    everything = [p, q, *ws[0], *ws[1], *bs]
    result = mg.compile(fn)(X, y)
    result.backward()
    assert [v.grad for v in everything] == pytest.approx(scalar_mean_grads(fn, X, y, everything), rel=1e-12)
    assert p.grad != 0.0
