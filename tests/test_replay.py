import gc
import math
import re
import warnings
import weakref

import numpy as np
import pytest

import microgradnn as mg
from microgradnn import MLP, Value, losses
from conftest import numeric_param_grads

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


def test_a_number_read_out_of_a_value_gets_a_recording_per_sample_or_a_clear_refusal():
    w = Value(0.5)
    fns = {"data": lambda x, t: (x[0] * w if x[0].data > 0 else x[0] * w * w) - t,
           "float": lambda x, t: w * float(x[0]) - t}
    X, t = np.array([[1.0], [2.0], [-1.0], [-2.0]]), np.zeros(4)
    for name, fn in fns.items():
        compiled = mg.compile(fn)
        result = compiled(X, t)
        result.backward()
        assert compiled.tapes == 4 and result.tapes == 4, name
        assert w.grad == pytest.approx(scalar_mean_grads(fn, X, t, [w])[0], rel=1e-12)
        w.grad = 0.0
        with pytest.raises(ValueError, match=r"needs more than max_tapes=2 recordings of fn: sample 2 decides "
                                             r"differently at a Value's number \(float\(\), .item\(\), .data or Value\(v\)\) "
                                             r"at .*test_replay.py:\d+ \(its number differs"):
            mg.compile(fn, max_tapes=2)(X, t)
    fine = mg.compile(lambda x, t: (x[0] * w).relu() - t)  # relu has no Python branch on data
    fine(X, np.zeros(4)).backward()
    assert w.grad == pytest.approx((1.0 + 2.0) / 4)


def test_replay_reports_non_finite_values_and_bad_shapes():
    w = Value(1.0)
    compiled = mg.compile(lambda x, t: (x[0] * w).log() - t)
    with pytest.raises(ValueError, match=r"compiled, sample 1: log\(-2.0\): input must be > 0"):
        compiled(np.array([[1.0], [-2.0], [3.0], [4.0], [5.0]]), np.zeros(5))  # 0, 2, 4 are recorded
    with pytest.raises(ValueError, match="expected X of shape"):
        compiled(np.array([1.0, 2.0]), np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        compiled(np.array([[np.nan]]), np.zeros(1))
    with pytest.raises(TypeError, match="must return a Value"):
        mg.compile(lambda x, t: 1.0)(np.ones((2, 1)), np.zeros(2))


def test_a_sample_of_finite_numbers_whose_sum_overflows_is_taken_as_the_scalar_loop_takes_it():
    w = Value(1e-300)
    step = mg.compile(lambda s: w * s[0] + w * s[3])
    assert step([[1e308] * 4]).data == pytest.approx(2e8)  # the numbers are finite: no NaN, no infinity
    with pytest.raises(OverflowError, match=r"sample 0"):  # the scalar engine's error, with the sample
        mg.compile(lambda s: s[0] * 2.0 + w)([[1e308] * 4])
    with pytest.raises(ValueError, match="NaN or infinity"):
        step([[1.0, float("inf"), 1.0, 1.0]])


@pytest.mark.parametrize("fn, X, message", [
    # a non-finite number the loss never sees: relu(-inf) is 0, tanh(inf) is 1, a decision
    (lambda x, t, w: (w * x[0] - t) ** 2 + mg.log(x[0]).relu(), [[1.0], [0.0], [2.0]],
     r"log\((x0=)?0.0\): input must be > 0"),
    (lambda x, t, w: (w * x[0] - t) ** 2 if mg.log(x[0]) < 5.0 else w, [[1.0], [0.0], [2.0]],
     r"log\((x0=)?0.0\): input must be > 0"),
    (lambda x, t, w: (w * x[0]).exp().tanh() - t, [[1.0], [1000.0], [2.0]],
     r"exp\(1000.0\): result is too large for a float"),
])
def test_compiled_refuses_what_the_scalar_engine_refuses_even_off_the_loss_path(fn, X, message):
    w = Value(1.0)
    X, y = np.array(X), np.zeros(len(X))
    with pytest.raises((ValueError, OverflowError), match=message):
        fn([Value(float(X[1, 0]))], 0.0, w)  # the scalar engine, on sample 1 (compile names its numbers x0, ...)
    with pytest.raises((ValueError, OverflowError), match="compiled, sample 1: " + message):
        mg.compile(lambda x, t: fn(x, t, w))(X, y)


def test_compiled_refuses_a_mean_loss_that_overflows_as_the_scalar_sum_does():
    w = Value(1.0)
    fn = lambda x, t: x[0] * x[0] * w - t  # noqa: E731  (1e308 for each sample: finite)
    X, y = np.array([[1e154], [1e154]]), np.zeros(2)
    with pytest.raises(OverflowError, match="not finite"):
        (fn([Value(1e154)], 0.0) + fn([Value(1e154)], 0.0)) / 2  # the scalar engine
    with pytest.raises(OverflowError, match=r"compiled: the mean loss of 2 samples is not finite"):
        mg.compile(fn)(X, y)


def test_compiled_refuses_an_overflow_inside_a_layers_matrix_product():
    layer = mg.Layer(2, 1, activation="tanh", seed=0)  # tanh(inf) would hide it from the loss
    for p in layer.parameters():
        p.data = 1.0
    compiled = mg.compile(lambda x, t: layer(x)[0] - t)
    with pytest.raises(OverflowError, match=r"compiled, sample 1: dot\(w0=1.0, w1=1.0, x0=1e\+308, x1=1e\+308, b=1.0\): "
                                            r"result is not finite \(inf\)"):
        compiled(np.array([[1.0, 1.0], [1e308, 1e308], [0.5, 0.5]]), np.zeros(3))


def test_an_array_forward_that_computes_another_number_than_the_forward_is_refused():
    # was: every sample replayed through the wrong formula, r.data 30.0 where the scalar mean is 36.0
    wrong = mg.define_op("replay_cube_wrong", lambda x: x ** 3, lambda x, out: 3 * x ** 2,
                         array_forward=lambda x: 3 * x ** 2)
    right = mg.define_op("replay_cube", lambda x: x ** 3, lambda x, out: 3 * x ** 2, array_forward=lambda x: x ** 3)
    w, X, y = Value(2.0), np.array([[1.0], [2.0]]), np.zeros(2)
    with pytest.raises(ValueError, match=r"^compile: replay_cube_wrong's array_forward gives 12.0 where its forward "
                                         r"gives 8.0, at \(2.0\); replay computes every sample with it: fix "
                                         r"array_forward, or leave it out \(replay then runs forward per sample\)$"):
        mg.compile(lambda x, t: wrong(x[0] * w) - t)(X, y)
    assert mg.compile(lambda x, t: right(x[0] * w) - t)(X, y).data == 36.0


def test_an_array_forward_right_at_the_recorded_sample_only_is_refused_for_the_sample_it_gets_wrong():
    # was: array_forward x (|x| for x >= 0 only) replayed -2.0 for sample 1, mean 0.667 where the scalar mean is 2.0
    absish = mg.define_op("replay_abs_positive_only", lambda x: abs(x), lambda x, out: 1.0 if x >= 0 else -1.0,
                          array_forward=lambda x: x)
    w, X, y = Value(1.0), np.array([[1.0], [-2.0], [3.0]]), np.zeros(3)
    with pytest.raises(ValueError, match=r"^compiled, sample 1: replay_abs_positive_only's array_forward gives -2.0 "
                                         r"where its forward gives 2.0, at \(-2.0\); replay computes every sample "
                                         r"with it: fix array_forward, or leave it out \(replay then runs forward per "
                                         r"sample\)$"):
        mg.compile(lambda x, t: absish(x[0] * w) - t)(X, y)


def test_an_array_forward_that_makes_inf_where_the_op_does_not_is_named():
    twice = mg.define_op("replay_twice_badly", lambda x: 2 * x, lambda x, out: 2.0,
                         array_forward=lambda x: np.where(x > 1.5, np.inf, 2 * x))
    w = Value(1.0)
    with pytest.raises(ValueError, match=r"^compiled, sample 1: replay_twice_badly's array_forward gives inf where its "
                                         r"forward gives 4.0, at \(2.0\); replay computes every sample with it: fix "
                                         r"array_forward, or leave it out \(replay then runs forward per sample\)$"):
        mg.compile(lambda x, t: twice(x[0] * w) - t)(np.array([[1.0], [2.0]]), np.zeros(2))


def test_backward_passes_nothing_through_a_node_whose_gradient_is_0_as_the_scalar_engine():
    # sqrt'(0) is infinite; relu(-0) passes back 0, and 0 × inf must not make the gradient NaN
    w = Value(0.0)
    fn = lambda x, t: (-mg.sqrt(w * w * x[0])).relu() + (w - t) ** 2  # noqa: E731
    X, y = np.array([[1.0], [2.0]]), np.array([0.5, 1.0])
    result = mg.compile(fn)(X, y)
    result.backward()
    assert w.grad == scalar_mean_grads(fn, X, y, [w])[0] == -1.5


def test_backward_names_a_non_finite_derivative_where_a_gradient_flows_and_adds_nothing():
    w = Value(0.0)
    fn = lambda x, t: mg.sqrt(w * w * x[0]) + (w - t) ** 2  # noqa: E731
    with pytest.raises(ValueError, match=r"derivative of sqrt\(0.0\) with respect to input 0 .* is not finite"):
        fn([Value(1.0)], 0.5).backward()  # the scalar engine
    w.grad = 0.25
    result = mg.compile(fn)(np.array([[1.0], [2.0]]), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"compiled backward, sample 0: the derivative of sqrt\(0\) with respect "
                                         r"to input 0 is not finite"):
        result.backward()
    assert w.grad == 0.25


def test_a_domain_error_on_the_branch_a_sample_does_not_take_is_no_error():
    w = Value(0.5)
    fn = lambda x, t: mg.log(x[0]) * w - t if x[0] > 0 else (x[0] * w - t) ** 2  # noqa: E731
    X, y = np.array([[1.0], [-2.0], [3.0], [-1.0]]), np.array([0.0, 1.0, 2.0, 3.0])
    result = mg.compile(fn)(X, y)
    result.backward()
    assert result.tapes == 2
    assert w.grad == pytest.approx(scalar_mean_grads(fn, X, y, [w])[0], rel=1e-12)


def test_a_dot_whose_b_is_read_again_keeps_that_row():
    # dot's array forward once added w * x into b's row of the replay (`+=` on a view): here x
    # became 4x for the `* x` after it and for the gradient (40 and 40 instead of 10 and 2.5)
    w = Value(3.0)
    fn = lambda x, t: mg.dot([w], [x[0]], x[0]) * x[0] - t  # noqa: E731
    X, y = np.array([[1.0], [2.0]]), np.zeros(2)
    result = mg.compile(fn)(X, y)
    result.backward()
    assert result.data == 10.0 and w.grad == scalar_mean_grads(fn, X, y, [w])[0] == 2.5
    b = np.ones(2)
    assert mg.get_op("dot")(np.full(2, 3.0), np.full(2, 2.0), b).tolist() == [7.0, 7.0] and b.tolist() == [1.0, 1.0]


def test_the_mean_loss_is_summed_in_order_as_the_scalar_engine_sums_it():
    p = Value(1.0)
    fn = lambda x, t: x[0] * p  # noqa: E731
    X = np.array([[1e308]] * 8 + [[-1e308]] * 8)  # a pairwise sum gives 0; in order it overflows at once
    with pytest.raises(OverflowError):
        sum((fn([Value(x)], 0.0) for x in X[:, 0]), Value(0.0))
    with pytest.raises(OverflowError, match="the mean loss of 16 samples is not finite"):
        mg.compile(fn)(X, np.zeros(16))
    result = mg.compile(fn)(np.array([[1e308], [-1e308]] * 8), np.zeros(16))  # in order it never does
    result.backward()
    assert result.data == 0.0 and p.grad == 0.0


def test_a_small_logsumexp_replays_to_the_scalar_engines_number():
    # logsumexp's array forward was numpy's logaddexp, which rounds otherwise: 4.25e-18 for
    # logsumexp(0, -40) (a well classified sample's loss), where the scalar engine, as PyTorch, gives 0
    w = Value(1.0)
    fn = lambda x, t: mg.logsumexp([w * x[0], x[1]])  # noqa: E731
    X, y = np.array([[0.0, -40.0], [-40.0, 0.0], [1.0, 2.0], [-0.5, -0.5]]), np.zeros(4)
    result = mg.compile(fn)(X, y)
    expected = [fn([Value(a), Value(b)], 0.0).data for a, b in X]
    assert result.losses.tolist() == pytest.approx(expected, rel=1e-15, abs=0.0)
    assert expected[:2] == [0.0, 0.0]


def test_a_rule_that_fails_for_one_node_of_a_group_spoils_no_other_derivative():
    # two ** nodes in one group; the exponent's rule runs for both (b needs it) and fails for
    # the negative base of the other, whose exponent is a constant: d/dbase must still be -5
    w, a, b = Value(0.5), Value(1.0), Value(2.0)
    fn = lambda x, t: (w * x[0] - t) ** 2.0 + (a * x[1] + 1.0) ** b  # noqa: E731
    X, y = np.array([[1.0, 1.0], [2.0, 0.5]]), np.array([3.0, 0.0])
    result = mg.compile(fn)(X, y)
    result.backward()
    assert [w.grad, a.grad, b.grad] == pytest.approx(scalar_mean_grads(fn, X, y, [w, a, b]), rel=1e-12)


def test_a_parameter_frozen_after_the_recording_is_a_constant_as_in_the_scalar_engine():
    w, q = Value(1.0), Value(1.0)
    fn = lambda x, t: mg.sqrt(w) * x[0] + q * x[0]  # noqa: E731
    compiled, X, y = mg.compile(fn), np.array([[1.0], [2.0]]), np.zeros(2)
    compiled(X, y).backward()  # recorded while w trains
    w.requires_grad, w.data, w.grad, q.grad = False, 0.0, 0.0, 0.0  # frozen at sqrt's kink
    compiled(X, y).backward()
    assert (w.grad, q.grad) == (0.0, 1.5)
    w.requires_grad, w.data = True, 4.0  # trained again
    compiled(X, y).backward()
    assert w.grad == pytest.approx(0.25 * 1.5) and q.grad == 3.0


@pytest.mark.parametrize("max_tapes", [16, 1])
def test_a_sample_refused_at_a_decision_is_named_with_the_engines_message(max_tapes):
    p = Value(1.0)

    def fn(x, t):
        h = mg.log(x[0] * p)
        return h if h > 5.0 else p * x[1]
    with pytest.raises(ValueError, match=r"compiled, sample 1: log\(-1.0\): input must be > 0"):
        mg.compile(fn, max_tapes=max_tapes)(np.array([[1.0, 2.0], [-1.0, 2.0]]), np.zeros(2))


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


def test_an_older_result_still_gives_its_own_gradient():
    w = Value(0.5)
    compiled = mg.compile(lambda x, t: (x[0] * w - t) ** 2)
    X, t = np.array([[1.0], [2.0]]), np.zeros(2)
    first = compiled(X, t)
    second = compiled(2 * X, t)
    second.backward()
    assert w.grad == pytest.approx(((2 * 0.5 * 2) * 2 + (4 * 0.5 * 2) * 4) / 2)
    w.grad = 0.0
    first.backward()  # each result keeps its own arrays
    assert w.grad == pytest.approx(((1 * 0.5 * 2) * 1 + (2 * 0.5 * 2) * 2) / 2)
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


def test_a_layer_whose_first_input_is_data_passes_gradients_to_its_other_inputs():
    h = Value(0.7)  # a learned input beside a data input: [x, h] into a layer of two neurons
    ws, bs = [[Value(0.3), Value(-0.2)], [Value(0.5), Value(0.1)]], [Value(0.05), Value(-0.1)]
    fn = lambda x, t: (mg.dot(ws[0], [x[0], h], bs[0]).tanh() * mg.dot(ws[1], [x[0], h], bs[1]) - t) ** 2  # noqa: E731
    X, y = np.array([[1.0], [-0.5], [2.0]]), np.array([0.1, 0.2, 0.3])
    everything = [h, *ws[0], *ws[1], *bs]
    result = mg.compile(fn)(X, y)
    result.backward()
    assert [v.grad for v in everything] == pytest.approx(scalar_mean_grads(fn, X, y, everything), rel=1e-12)
    assert h.grad != 0.0


# ---- any samples, gathers, shapes and guards ------------------------------------------------------

def scalar_mean(fn, samples, params):
    """The reference for fn(sample): the scalar mean loss and its gradient, grads left as found."""
    saved = [p.grad for p in params]
    for p in params:
        p.grad = 0.0
    total = None
    for s in samples:
        loss = fn(s)
        total = loss if total is None else total + loss
    mean = total / len(samples)
    mean.backward()
    grads = np.array([p.grad for p in params])
    for p, g in zip(params, saved):
        p.grad = g
    return mean.data, grads


def compiled_mean(compiled, samples, params):
    for p in params:
        p.grad = 0.0
    result = compiled(samples)
    result.backward()
    return result, np.array([p.grad for p in params])


def assert_close(got, expected, rel=1e-10):
    scale = np.abs(expected).max()
    assert np.abs(np.asarray(got) - expected).max() <= rel * scale, (got, expected)


def compiled_as_scalar(fn, samples, params):
    """Compile fn, check its mean loss and gradient on the samples against the scalar engine's,
    and return the one tape it recorded (for what the replay made of the graph)."""
    compiled = mg.compile(fn)
    result, got = compiled_mean(compiled, samples, params)
    loss, expected = scalar_mean(fn, samples, params)
    assert compiled.tapes == 1 and result.data == pytest.approx(loss, rel=1e-12)
    assert_close(got, expected)
    tape, = compiled._tapes[next(iter(compiled._tapes))]
    return tape


def test_a_branch_none_of_the_old_probe_rows_take_is_replayed_exactly():
    # The old compile recorded rows 0, n//2 and n-1 and replayed everything on their graph.
    w = Value(0.5)
    fn = lambda x, t: (x[0] * w * w if x[0] > 0.0 else (x[0] * w).exp()) - t  # noqa: E731
    X = np.array([[-1.0], [2.0], [-0.5], [1.0], [3.0], [-2.5], [1.5], [-2.0], [0.5], [-1.5]])
    assert (X[:, 0] > 0).sum() == 5 and not (X[[0, 5, 9], 0] > 0).any()  # half, but none of rows 0, n//2, n-1
    y = np.linspace(0.0, 1.0, 10)
    compiled = mg.compile(fn)
    result = compiled(X, y)
    result.backward()
    expected = scalar_mean_grads(fn, X, y, [w])
    scalar_loss = np.mean([(x * 0.25 if x > 0 else np.exp(x * 0.5)) - t for x, t in zip(X[:, 0], y)])
    assert result.data == pytest.approx(scalar_loss, rel=1e-12)
    assert w.grad == pytest.approx(expected[0], rel=1e-12)
    assert result.tapes == 2 and compiled.tapes == 2


def test_half_the_batch_branching_on_a_comparison_of_samples():
    a, b = Value(0.3), Value(-0.4)

    def fn(sample):
        x, t = sample
        h = a * x[0] + b * x[1]
        return (h.tanh() - t) ** 2 if x[0] < x[1] else (h - t).relu() * a
    rng = np.random.default_rng(0)
    n = 20
    samples = [([float(u), float(v)], float(t)) for u, v, t in rng.normal(size=(n, 3))]
    for i in (0, n // 2, n - 1):  # the rows the old compile looked at all take the else branch
        samples[i] = ([1.0, -1.0], 0.5)
    assert sum(s[0][0] < s[0][1] for s in samples) >= 5
    result, got = compiled_mean(mg.compile(fn), samples, [a, b])
    loss, expected = scalar_mean(fn, samples, [a, b])
    assert result.data == pytest.approx(loss, rel=1e-12)
    assert_close(got, expected, 1e-12)
    assert result.tapes == 2


def test_a_decision_off_the_loss_path_takes_no_derivative():
    # sqrt'(0) is infinite, but the sqrt only decides a branch: no gradient flows through it,
    # so, as in the scalar engine, its derivative is never taken.
    w = Value(0.0)
    fn = lambda x, t: (w * x[0] - t) ** 2 if mg.sqrt(w * w) < 1.0 else w  # noqa: E731
    X, y = np.array([[1.0], [2.0], [-1.0]]), np.array([0.5, -1.0, 2.0])
    result = mg.compile(fn)(X, y)
    result.backward()
    assert result.tapes == 1
    assert w.grad == pytest.approx(scalar_mean_grads(fn, X, y, [w])[0], rel=1e-12)


@pytest.mark.parametrize("bad", [0.0, 2.0, -3.0, 0.999999])
def test_compiled_hinge_refuses_a_bad_label_at_any_row(bad):
    model = MLP(2, [1], seed=0)
    compiled = mg.compile(lambda x, t: losses.hinge([model(x)], [t]))
    y = np.array([1.0, -1.0, 1.0, bad, -1.0])
    with pytest.raises(ValueError, match=r"hinge: targets must be -1 or \+1"):
        compiled(np.ones((5, 2)), y)


def test_compiled_cross_entropy_is_torchs_at_huge_logits():
    # replay ran logsumexp(z) - z[t] on arrays: 0.0 for z = (1e16, 1e16, 0), t = 0, where torch gives log 2
    torch = pytest.importorskip("torch")
    b = [Value(0.0) for _ in range(3)]
    fn = lambda s: losses.cross_entropy([[s[i] + b[i] for i in range(3)]], [s[3]])  # noqa: E731
    samples = [[1e16, 1e16, 0.0, 0], [-3e16, 2e15, -3e16 + 4.0, 2], [1.5e13, 1.5e13 + 0.75, -2.0, 1], [0.3, -1.2, 2.0, 2]]
    result, got = compiled_mean(mg.compile(fn), samples, b)
    z = torch.tensor([s[:3] for s in samples], dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(z, torch.tensor([s[3] for s in samples]))
    ref.backward()
    assert result.data == pytest.approx(ref.item(), rel=1e-12)
    assert got.tolist() == pytest.approx(z.grad.sum(axis=0).tolist(), rel=1e-12)


@pytest.mark.parametrize("shared", [True, False])
def test_compiled_cross_entropy_over_shared_or_constant_logits_is_the_scalar_loops(shared):
    # replay adds a group's logit gradients at once: into logits two losses share, or (one
    # logit a constant) input by input
    w = [Value(0.3 * i - 0.5) for i in range(5)]

    def fn(s):
        z = [s[0] * wi + s[1] for wi in w]
        return losses.cross_entropy([z, z if shared else z[:4] + [s[1]]], [s[2], s[3]])
    samples = [[1.5, 0.25, 0, 4], [-2.0, 1e16, 3, 1], [4e15, -0.5, 2, 2], [0.7, 3.0, 4, 0]]
    result, got = compiled_mean(mg.compile(fn), samples, w)
    loss, expected = scalar_mean(fn, samples, w)
    assert result.data == pytest.approx(loss, rel=1e-12)
    assert_close(got, expected)


def test_compiled_cross_entropy_refuses_a_bad_target_whose_nan_the_loss_does_not_show():
    # cross_entropy's NaN for a target that is no index raises no flag; is_class(NaN, k) is 0, so
    # the loss was finite and a sample the scalar loop refuses passed silently
    w = Value(0.5)
    fn = lambda s: w * w + mg.engine.is_class(losses.cross_entropy([[s[0] * w, s[1]]], [s[2]]), 0.25)  # noqa: E731
    with pytest.raises(ValueError, match=r"compiled, sample 1: cross_entropy\(s2=5.0, .*\): index must be an "
                                         r"integer in 0..1, got 5.0"):
        mg.compile(fn)([[1.0, 2.0, 0], [1.0, 2.0, 5], [1.0, 2.0, 1]])


def test_gathers_serve_every_index_from_one_tape():
    emb = mg.nn.Embedding(7, 3, seed=0)
    head = mg.nn.Linear(3, 7, seed=1)

    def fn(pair):  # predict the second token from the first
        return losses.cross_entropy([head(emb(pair[0]))], [pair[1]])
    pairs = [[i % 7, (3 * i + 1) % 7] for i in range(30)]
    compiled = mg.compile(fn)
    result, got = compiled_mean(compiled, pairs, emb.parameters() + head.parameters())
    loss, expected = scalar_mean(fn, pairs, emb.parameters() + head.parameters())
    assert compiled.tapes == 1 and result.data == pytest.approx(loss, rel=1e-12)
    assert_close(got, expected, 1e-12)
    tape, = compiled._tapes[next(iter(compiled._tapes))]
    assert [g.op.name for g in tape.groups].count("take") == 1  # the row lookup (the target's is in cross_entropy)
    assert [g.op.name for g in tape.groups].count("cross_entropy") == 1
    with pytest.raises(ValueError, match=r"compiled, sample 1: take\(s0=7.0, .*\): index must be an integer in 0..6, got 7.0"):
        compiled([[1, 2], [7, 2]])
    with pytest.raises(ValueError, match=r"compiled, sample 1: cross_entropy\(s1=7.0, .*\): index must be an integer "
                                         r"in 0..6, got 7.0"):
        compiled([[1, 2], [2, 7]])
    with pytest.raises(TypeError, match=r"Embedding: index must be an int in 0..6, got float 0.5"):
        compiled([[0.5, 2]])  # a float: recorded on its own, and refused as the scalar call refuses it


def gpt_and_batch():
    from microgradnn.models import GPT
    model = GPT(12, n_embd=8, n_head=2, n_layer=2, block_size=8, seed=0)
    rng = np.random.default_rng(3)
    for p in model.parameters():
        p.data += rng.normal(0.0, 0.05)
    lengths = [2, 5, 9, 5, 3, 9, 7, 5, 2, 9]
    batch = [[0] + [int(t) for t in rng.integers(1, 12, size=n - 2)] + [0] for n in lengths]
    return model, batch


def test_gpt_compiled_equals_scalar_on_sequences_of_mixed_lengths():
    model, batch = gpt_and_batch()
    step = mg.compile(model.loss)
    params = model.parameters()
    result, got = compiled_mean(step, batch, params)
    loss, expected = scalar_mean(model.loss, batch, params)
    assert result.data == pytest.approx(loss, rel=1e-12)
    for name, g, e in zip((n for n, _ in model.named_parameters()), got, expected):
        assert g == pytest.approx(e, rel=1e-10, abs=1e-10 * np.abs(expected).max()), name
    assert step.tapes == 5 and result.tapes == 5  # one per length
    assert result.losses == pytest.approx([model.loss(s).data for s in batch], rel=1e-12)
    assert "5 tapes for 5 sample shapes" in repr(step)
    # a second batch reuses the tapes; parameters are read fresh
    for p in params:
        p.data *= 0.9
    result, got = compiled_mean(step, batch[:4], params)
    loss, expected = scalar_mean(model.loss, batch[:4], params)
    assert step.recordings == 5 and result.data == pytest.approx(loss, rel=1e-12)
    assert_close(got, expected)


@pytest.mark.parametrize("name", ["dot", "logsumexp", "cross_entropy", "*", "-", "exp"])
def test_a_replaced_rule_reaches_the_compiled_gpt(name):
    """Mutation testing swaps `op.derivatives`; every replay path (blocks of dots and
    logsumexps at one depth joined, gathers, elementwise groups) must use the replacement."""
    model, batch = gpt_and_batch()
    params = model.parameters()
    _, right = scalar_mean(model.loss, batch, params)
    op = mg.get_op(name)
    original = op.derivatives
    op.derivatives = tuple((lambda r: lambda *a: r(*a) * 2)(r) for r in original)
    try:
        _, got = compiled_mean(mg.compile(model.loss), batch, params)
        _, expected = scalar_mean(model.loss, batch, params)
    finally:
        op.derivatives = original
    assert not np.allclose(expected, right)
    assert_close(got, expected)


def test_softmaxes_of_rows_of_several_lengths_replay_as_the_scalar_engine_at_any_logits():
    # attention's softmaxes (one per position, of 1..t+1 scores) replay as one block: the loss
    # and gradients are the scalar engine's, also at logits far apart (the exact softmax)
    ws = [Value(x) for x in (0.5, -1.5, 2.0, 0.25)]

    def fn(s):
        z = [w * x for w, x in zip(ws, s)]
        rows = [losses.softmax(z[:k]) for k in (1, 3, 2, 4)]
        return sum((p * (i + 1) * (j - 1.5) for i, row in enumerate(rows) for j, p in enumerate(row)), Value(0.0))
    batch = [[1.0, 2.0, -3.0, 0.5], [400.0, -300.0, 10.0, 0.0], [-1e3, 2e3, 7.0, -1.0], [0.0, 0.0, 0.0, 0.0]]
    tape = compiled_as_scalar(fn, batch, ws)
    assert [g.op.name for g in tape.groups].count("exp") == 0  # the softmaxes are one block


def attention_fn(params, T=8, heads=2, size=2, biases=None):
    """A sample's loss through causal attention written with dot and softmax; the keys are the
    queries (one vector both w and x of the scores). `biases(t, h)` gives the scores' and the
    outputs' dot b at position t, head h: by default two parameters."""
    wq, wv = params[:2], params[2:4]
    biases = biases or (lambda t, h: (params[4], params[5]))

    def fn(s):
        q = [[wq[h] * s[t] * (j + 1) - s[(t + j) % T] for h in range(heads) for j in range(size)] for t in range(T)]
        v = [[wv[h] * s[t] + j for h in range(heads) for j in range(size)] for t in range(T)]
        loss = Value(0.0)
        for t in range(T):
            for h in range(heads):
                part = slice(h * size, (h + 1) * size)
                b_score, b_out = biases(t, h)
                scores = [mg.dot(q[t][part], q[u][part], b_score) for u in range(t + 1)]
                weights = losses.softmax(scores)
                out = [mg.dot(weights, [v[u][part][j] for u in range(t + 1)], b_out) for j in range(size)]
                loss = loss + sum((o * (t - j) for j, o in enumerate(out)), scores[0] * 0.5)
        return loss
    return fn


def test_attention_replays_as_matrix_products_as_the_scalar_engine():
    # attention's scores and weighted sums replay as batched matrix products (blocks: heads)
    params = [Value(x) for x in (0.7, -0.4, 1.3, 0.2, 0.1, -0.3)]
    fn = attention_fn(params)
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(6, 8)).round(3).tolist()
    tape = compiled_as_scalar(fn, batch, params)
    assert sum(getattr(g, "products", None) is not None for g in tape.groups) == 2


def test_attention_whose_dot_bs_are_partly_made_under_no_grad_passes_them_no_gradient():
    # a b made under no_grad needs no gradient, as in the scalar engine, though the b's beside
    # it (the same op at the same depth, so one group) do: none may reach its parameter
    params = [Value(x) for x in (0.7, -0.4, 1.3, 0.2, 0.1, -0.3)]
    made = {}

    def biases(t, h):  # each call of fn makes them anew: under no_grad for half the positions
        if (t, h) == (0, 0):
            with mg.no_grad():
                made["frozen"] = [b * 2.0 for b in params[4:]]
            made["live"] = [b * 3.0 for b in params[4:]]
        return made[["frozen", "live"][(t + h) % 2]]
    batch = np.random.default_rng(0).normal(size=(3, 8)).round(3).tolist()
    compiled_as_scalar(attention_fn(params, biases=biases), batch, params)


def test_dots_of_a_few_vectors_in_many_pairs_each_pass_their_gradient_when_a_pair_is_made_twice():
    # scores of every query with every key, each dot made twice (two nodes of one pair): both
    # nodes' gradients reach the vectors, as in the scalar engine
    params = [Value(0.1 * (k + 1)) for k in range(16)]

    def fn(s):
        vectors = [[params[2 * i] * s[0], params[2 * i + 1] * s[1]] for i in range(8)]
        pairs = [(i, j) for i in range(4) for j in range(4, 8)] * 2
        return sum((mg.dot(vectors[i], vectors[j]) * (k + 1) for k, (i, j) in enumerate(pairs)), Value(0.0))
    batch = [[1.0, 2.0], [0.5, -1.0]]
    result, got = compiled_mean(mg.compile(fn), batch, params)
    loss, expected = scalar_mean(fn, batch, params)
    assert result.data == pytest.approx(loss, rel=1e-12)
    assert_close(got, expected)


def test_attention_scores_that_overflow_are_refused_as_the_scalar_engine_refuses_them():
    params = [Value(x) for x in (0.7, -0.4, 1.3, 0.2, 0.1, -0.3)]
    fn = attention_fn(params)
    batch = [[0.1] * 8, [1e200] + [0.2] * 7]
    with pytest.raises(Exception) as scalar:
        fn(batch[1])
    with pytest.raises(type(scalar.value), match=r"compiled, sample 1: "):
        mg.compile(fn)(batch)


def test_a_layer_at_several_places_reads_a_held_bias_again_at_every_call():
    # dots' b's that fn lifted into the graph are added as one number; a held one is read again
    ws = [[Value(0.1 * (r + i)) for i in range(3)] for r in range(4)]
    bias = Value(0.5, requires_grad=False)

    def fn(s):
        places = [s[p:p + 3] for p in range(3)]
        return sum((mg.dot(w, x, bias) * (r + 1) for x in places for r, w in enumerate(ws)), Value(0.0))
    step = mg.compile(fn)
    batch = [[1.0, 2.0, 3.0, 4.0, 5.0], [0.5, -1.0, 2.0, 0.0, 1.5]]
    assert step(batch).data == pytest.approx(np.mean([fn(s).data for s in batch]), rel=1e-12)
    bias.data = -2.0
    assert step(batch).data == pytest.approx(np.mean([fn(s).data for s in batch]), rel=1e-12)
    tape, = step._tapes[next(iter(step._tapes))]
    assert any(g.places is not None for g in tape.groups)


def test_a_replaced_take_rule_reaches_the_gathers():
    ws = [Value(0.5), Value(-1.5), Value(2.0)]
    fn = lambda s: mg.take(s[0], ws) * s[1]  # noqa: E731
    batch = [[0, 1.0], [2, 3.0], [2, -1.0], [1, 0.5]]
    op, expected = mg.get_op("take"), np.array([1.0, 0.5, 2.0]) / 4
    original = op.derivatives
    op.derivatives = tuple((lambda r: lambda *a: r(*a) * 2)(r) for r in original)
    try:
        _, got = compiled_mean(mg.compile(fn), batch, ws)
        _, scalar = scalar_mean(lambda s: fn([Value(float(s[0]), requires_grad=False), s[1]]), batch, ws)
    finally:
        op.derivatives = original
    assert_close(scalar, 2 * expected)
    assert_close(got, 2 * expected)


def test_gpt_compiled_equals_pytorch():
    torch = pytest.importorskip("torch")
    model, batch = gpt_and_batch()
    batch = [s for s in batch if len(s) == 9]
    reference = model.to_torch()
    result, got = compiled_mean(mg.compile(model.loss), batch, model.parameters())
    theirs = reference.loss(torch.tensor(batch))
    theirs.backward()
    assert result.data == pytest.approx(theirs.item(), rel=1e-12)
    grads = dict(reference.named_parameters())
    for (name, _), g in zip(model.named_parameters(), got):
        parts = name.split(".")
        cut = max(i for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in grads)
        t = grads[".".join(parts[:cut])].grad[tuple(int(i) for i in parts[cut:])].item()
        assert g == pytest.approx(t, rel=1e-10, abs=1e-14), name


def test_the_number_of_tapes_is_bounded_and_old_ones_are_dropped():
    w = Value(1.0)
    fn = lambda s: w * len(s) * s[0]  # noqa: E731 - one shape per length
    compiled = mg.compile(fn, max_tapes=3)
    compiled([[1.0], [1.0, 2.0], [1.0, 2.0, 3.0]])
    assert compiled.tapes == 3
    with pytest.raises(ValueError, match="needs more than max_tapes=3 recordings"):
        compiled([[1.0], [1.0, 2.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]])
    result = compiled([[2.0] * 5, [3.0] * 6])  # tapes this call does not use make room
    assert compiled.tapes == 3 and compiled.recordings == 5 and result.data == pytest.approx((10 + 18) / 2)


def test_a_batch_of_more_shapes_than_max_tapes_is_refused_naming_how_many_and_which():
    w = Value(1.0)
    compiled = mg.compile(lambda s: w * len(s) * s[0], max_tapes=3)
    with pytest.raises(ValueError, match=r"max_tapes=3 recordings of fn: its samples come in 4 shapes "
                                         r"\(list of 1, list of 2, list of 3, list of 4\), and each shape needs"):
        compiled([[1.0], [1.0, 2.0], [1.0, 2.0, 3.0], [1.0] * 4])
    assert "<lambda>: 3 tapes for 3 sample shapes," in repr(compiled)  # the refused one has none
    with pytest.raises(IndexError):
        compiled([[]])  # a sample fn refuses: no tape, and no shape counted
    assert f"<lambda>: {compiled.tapes} tapes for {compiled.tapes} sample shapes," in repr(compiled)


def test_recordings_dropped_and_made_again_across_batches_warn_once():
    w = Value(1.0)
    compiled = mg.compile(lambda s: w * len(s) * s[0], max_tapes=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in (1, 2, 3, 1):  # three shapes, two kept: each call records (up to 2 x max_tapes, silently)
            compiled([[1.0] * n])
    with pytest.warns(RuntimeWarning, match=r"compile: 4 recordings made for max_tapes=2 kept: .* raise max_tapes="):
        compiled([[1.0, 2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in (3, 1, 2):
            assert compiled([[2.0] * n]).data == 2.0 * n
    assert compiled.recordings == 8


def test_the_warning_that_recordings_are_dropped_points_at_the_callers_line():
    # it pointed inside replay.py (Compiled.__call__), where no user can change anything
    w = Value(1.0)
    compiled = mg.compile(lambda s: w * len(s) * s[0], max_tapes=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in (1, 2, 3):
            compiled([[1.0] * n])  # the third call records a third time and warns
    assert [(w.filename, w.category) for w in caught] == [(__file__, RuntimeWarning)]


def test_a_sample_whose_recording_fails_leaves_no_trace_of_its_shape():
    # each refused sample of a new shape (here: the object in it) kept an empty entry for its shape,
    # which no eviction removes: memory, and the time of every later call, grew with the refusals
    class Tag:
        pass
    w = Value(0.5)
    compiled = mg.compile(lambda s: (s["x"] * w).log(), max_tapes=2)
    assert compiled([{"tag": "ok", "x": 1.0}]).data == math.log(0.5)
    refs = []
    for _ in range(3):
        tag = Tag()
        refs.append(weakref.ref(tag))
        try:
            compiled([{"tag": tag, "x": -1.0}])
        except ValueError as e:
            assert "log(-0.5)" in str(e)
        else:
            raise AssertionError("log of a negative number was not refused")
        del tag
    gc.collect()
    assert [r() for r in refs] == [None] * 3
    assert compiled([{"tag": "ok", "x": 2.0}]).data == math.log(1.0)


def test_a_decision_on_a_parameter_is_checked_again_at_every_call():
    w = Value(1.0)
    fn = lambda s: w * s[0] if w > 0 else -w * s[0]  # noqa: E731
    compiled = mg.compile(fn)
    assert compiled([[2.0], [4.0]]).data == 3.0
    w.data = -1.0
    assert compiled([[2.0], [4.0]]).data == 3.0 and compiled.tapes == 2


def test_equality_with_numbers_and_indexing_behave_as_with_plain_numbers():
    table = [Value(0.1), Value(0.2), Value(0.3)]
    w = Value(2.0)

    def fn(sample):
        k, x = sample
        bonus = 1.0 if k == 2 else 0.0       # == on a sample's number compares numbers
        return table[k] * w * x + bonus      # a list indexed by a sample's number
    samples = [(0, 1.0), (2, 1.0), (1, 3.0), (2, 0.5)]
    compiled = mg.compile(fn)
    result, got = compiled_mean(compiled, samples, [w, *table])
    loss, expected = scalar_mean(fn, samples, [w, *table])
    assert result.data == pytest.approx(loss) and got == pytest.approx(expected)
    assert compiled.tapes == 3  # one per index used


def test_a_float_of_the_sample_as_an_index_is_refused_as_the_scalar_loop_refuses_it():
    table = [Value(0.1), Value(0.2), Value(0.3), Value(0.4)]
    emb = mg.nn.Embedding(4, 2, seed=0)
    uses = {"a list": lambda s: table[s[0]] * 2, "a computed index": lambda s: table[s[0] + 1] * 2,
            "range": lambda s: sum(table[i] for i in range(s[1])) * 1,
            "an Embedding": lambda s: sum(sum(emb(t)) for t in s)}

    def outcome(run):
        try:
            return run()
        except Exception as e:
            return type(e)
    for what, fn in uses.items():
        for samples in ([[1.0, 2.0]], [[1, 2]], [[True, 2]], [(1, 2.0)], [{"a": 1}]):
            if what in ("range", "an Embedding") and isinstance(samples[0], dict):
                continue
            f = (lambda s, fn=fn: fn(list(s.values()))) if isinstance(samples[0], dict) else fn
            scalar = outcome(lambda: f(samples[0]).data)
            compiled = outcome(lambda: mg.compile(f)(samples).data)
            assert compiled == scalar, (what, samples, scalar, compiled)
    with pytest.raises(TypeError, match="sample's numbers, 1.0, as an index, but it is a float"):
        mg.compile(uses["a list"])([[1.0, 2.0]])
    with pytest.raises(TypeError, match="Embedding: index must be an int in 0..3, got float 1.0"):
        mg.compile(uses["an Embedding"])([[1.0, 2.0]])


def test_a_sample_failing_its_own_recordings_checks_is_refused():
    # an op whose numpy forward differs from its float forward in the last digits: the
    # comparison on the recorded sample comes out differently at replay
    nudge = mg.define_op("replay_nudge", lambda x: x, lambda x, out: 1.0, array_forward=lambda x: x + 1e-12)
    w = Value(1.0)
    compiled = mg.compile(lambda s: w * s[0] if nudge(w * s[0]) > 1.0 else w)
    with pytest.raises(RuntimeError, match="sample 0 fails the checks of its own recording at a comparison `>`.*"
                                           "rounding"):
        compiled([[1.0]])


def test_bad_batches_are_refused_clearly():
    w = Value(1.0)
    compiled = mg.compile(lambda s: w * s[0])
    with pytest.raises(ValueError, match="non-empty list of samples"):
        compiled([])
    with pytest.raises(ValueError, match=r"NaN or infinity \(sample 1\)"):
        compiled([[1.0], [float("nan")]])
    with pytest.raises(TypeError, match="plain numbers, not Values"):
        compiled([[Value(1.0)]])
    with pytest.raises(TypeError, match="call with a list of samples, or with X and y; got 3"):
        compiled([1], [2], [3])


def test_a_result_refuses_backward_after_a_parameter_changed():
    w = Value(0.5, "w")
    step = mg.compile(lambda s: (s[0] * w - s[1]) ** 2)
    result = step([[1.0, 0.0], [2.0, 1.0]])
    w.data = 0.7  # as an optimizer step before backward would
    with pytest.raises(RuntimeError, match=r"data of parameter 'w' \(now 0.7\) was changed after this batch"):
        result.backward()
    assert w.grad == 0.0
    again = step([[1.0, 0.0], [2.0, 1.0]])
    again.backward()
    assert w.grad == pytest.approx(((0.7 * 2) * 1 + (1.4 - 1) * 2 * 2) / 2)


def test_a_value_without_gradient_set_after_recording_is_read_again():
    w, p = Value(2.0, "w", requires_grad=False), Value(1.0, "p")  # a frozen weight, a parameter
    step = mg.compile(lambda s: (s[0] * w + p) ** 2)
    assert step([[1.0], [2.0]]).data == ((1 * 2 + 1) ** 2 + (2 * 2 + 1) ** 2) / 2
    w.data = 3.0
    result = step([[1.0], [2.0]])
    result.backward()
    assert result.data == ((1 * 3 + 1) ** 2 + (2 * 3 + 1) ** 2) / 2  # was the old 17.0, silently
    assert p.grad == (2 * 4 + 2 * 7) / 2 and w.grad == 0.0


def test_freezing_or_unfreezing_a_value_after_recording_follows_the_scalar_engine():
    w, p = Value(2.0, "w", requires_grad=False), Value(1.0, "p")
    step = mg.compile(lambda s: (s[0] * w + p) ** 2)
    step([[1.0], [2.0]]).backward()
    assert w.grad == 0.0 and p.grad == (2 * 3 + 2 * 5) / 2
    w.requires_grad, p.requires_grad = True, False  # train w from now on, freeze p
    w.grad = p.grad = 0.0
    result = step([[1.0], [2.0]])
    result.backward()
    assert w.grad == (2 * 3 * 1 + 2 * 5 * 2) / 2 and p.grad == 0.0
    assert step.recordings == 2


def test_recordings_made_again_for_a_freeze_schedule_do_not_pile_up_parameters():
    # a recording made again because a parameter was frozen or unfrozen kept the parameters only
    # the old one read: fn's own Value(0.0) (a leaf that requires grad) one more at every step,
    # each read at every call and backward (3,000 steps: 3,017 parameters, each step twice as slow)
    w = Value(0.5, "w")

    def fn(s):
        total = Value(0.0)
        return total + (s[0] * w) ** 2
    step = mg.compile(fn)
    for i in range(120):
        w.requires_grad_(i % 2 == 0)  # w trains every other step
        step([[1.0], [2.0]])
    assert step.recordings == 120
    assert len(step.params) <= 2 * 2 + 64, repr(step)
    w.requires_grad_(True)
    w.grad = 0.0
    step([[1.0], [2.0]]).backward()
    assert w.grad == pytest.approx((2 * 0.5 * 1 + 2 * 0.5 * 4) / 2)


def test_a_parameter_frozen_between_a_batch_and_its_backward_gets_no_gradient_as_the_scalar_engine():
    w, p = Value(0.5, "w"), Value(1.0, "p")
    step = mg.compile(lambda s: (s[0] * w + p) ** 2)
    freezes = (lambda: w.requires_grad_(False), lambda: setattr(w, "requires_grad", False))  # method, attribute
    for freeze in freezes:
        for _ in range(2):  # recorded, then replayed
            w.grad, p.grad = None, 0.0
            result = step([[1.0], [2.0]])
            freeze()  # frozen after the call: torch's backward gives it nothing
            result.backward()
            assert (w.grad, p.grad) == (None, (2 * 1.5 + 2 * 2) / 2)  # it was 5.5, added into w anyway
            w.requires_grad_(True)
    for freeze in freezes:
        w.grad, p.grad = None, 0.0
        scalar = sum((x * w + p) ** 2 for x in (1.0, 2.0)) / 2
        freeze()
        scalar.backward()
        assert (w.grad, p.grad) == (None, 3.5)
        w.requires_grad_(True)


def test_backward_leaves_the_grad_of_a_parameter_the_batch_does_not_reach_as_it_was():
    w1, w2, c = Value(0.7, "w1"), Value(0.3, "w2"), Value(0.5, "c")

    def fn(s):  # w2 only on the other branch; c only decided on, no gradient flows into it
        loss = (w1 * s[0]) ** 2 if s[0] > 0 else (w2 * s[0]) ** 2
        return loss * 2 if c > 0 else loss
    step = mg.compile(fn)
    step([[1.0], [-1.0]])  # both branches recorded: w2 is one of the compiled function's parameters
    for grads in ((None, None, None), (0.0, True, "not a number"), (0.0, 3, 7)):
        for mode in ("scalar", "compiled"):
            w1.grad, w2.grad, c.grad = grads
            if mode == "scalar":
                ((fn([2.0]) + fn([3.0])) / 2).backward()
            else:
                step([[2.0], [3.0]]).backward()
            assert w1.grad == pytest.approx(4 * 0.7 * 13 / 2, rel=1e-12)
            assert (w2.grad, c.grad) == grads[1:], mode  # untouched, as torch's: an optimizer skips a None
    for mode in ("scalar", "compiled"):  # frozen at the call, not at backward: the scalar engine starts its .grad
        w1.requires_grad, w1.grad = False, None
        result = ((fn([2.0]) + fn([-3.0])) / 2) if mode == "scalar" else step([[2.0], [-3.0]])
        w1.requires_grad = True
        result.backward()
        assert w1.grad == 0.0, mode


def test_a_parameter_the_batch_does_not_use_may_be_set_before_its_backward_as_in_the_scalar_engine():
    w1, w2, c = Value(0.7, "w1"), Value(0.3, "w2"), Value(0.5, "c")
    fn = lambda s: ((w1 * s[0]) ** 2 if s[0] > 0 else (w2 * s[0]) ** 2) * (2 if c > 0 else 1)  # noqa: E731
    step = mg.compile(fn)
    step([[1.0], [-1.0]])  # w2 is one of the compiled function's parameters
    for mode in ("scalar", "compiled"):
        w1.grad = 0.0
        result = ((fn([2.0]) + fn([3.0])) / 2) if mode == "scalar" else step([[2.0], [3.0]])
        w2.data, c.data = 0.25, 0.75  # neither in this batch's graph (c only decided on)
        result.backward()
        assert w1.grad == pytest.approx(4 * 0.7 * 13 / 2, rel=1e-12), mode
        w1.data = 0.5
        with pytest.raises(RuntimeError, match="w1"):
            result.backward()
        w1.data = 0.7


def test_a_call_inside_no_grad_and_one_outside_each_replay_a_recording_made_in_their_mode():
    w = Value(0.5, "w")
    fn = lambda s: (w * s[0] - s[1]) ** 2  # noqa: E731
    samples = [[1.0, 2.0], [3.0, -1.0]]
    step = mg.compile(fn)
    with mg.no_grad():  # recorded here first: a tape through which no gradient flows
        assert step(samples).data == 4.25
    result, got = compiled_mean(step, samples, [w])  # outside: as the scalar loop, a gradient
    loss, expected = scalar_mean(fn, samples, [w])
    assert result.data == pytest.approx(loss, rel=1e-12) and got == pytest.approx(expected, rel=1e-12)
    with mg.no_grad():  # a recording with gradient replayed here would give one, which the scalar loop refuses
        result = step(samples)
    with pytest.raises(RuntimeError, match="compiled backward: the mean loss does not require grad"):
        result.backward()
    assert step.tapes == 2 and step.recordings == 2


def test_fn_that_sets_the_grad_mode_for_the_code_after_it_is_refused_as_a_replay_could_not_follow():
    w = Value(0.5, "w")

    def fn(s):
        mg.set_grad_enabled(False)  # a plain call: the mode stays off after fn returns
        return (s[0] * w) ** 2
    step = mg.compile(fn)
    for _ in range(2):  # the recording left the mode off, the replays on: refused, the mode put back
        with pytest.raises(RuntimeError, match="compile: fn turned graph recording off .*set_grad_enabled"):
            step([[1.0], [2.0]])
        assert mg.is_grad_enabled()

    def scoped(s):
        with mg.set_grad_enabled(False):  # put back on leaving: replayed as recorded
            c = s[0] * w
        return c * w
    assert mg.compile(scoped)([[2.0]]).data == 0.5 and mg.is_grad_enabled()


def same_as_scalar(fn, samples, params, **options):
    """mg.compile(fn), after checking its mean loss and gradient on `samples` are the scalar loop's."""
    compiled = mg.compile(fn, **options)
    result, got = compiled_mean(compiled, samples, params)
    loss, expected = scalar_mean(fn, samples, params)
    assert result.data == pytest.approx(loss, rel=1e-12) and got == pytest.approx(expected, rel=1e-12)
    return compiled


def scalar_then_compiled(fn, batch, reset, between=lambda: None, refusal=""):
    """[scalar loop's, compile's] (mean loss, then each .grad of the Values `reset()` returns after
    backward()), or "refused" where backward raises a RuntimeError saying `refusal`; `between` runs
    between the call and backward()."""
    seen: list = []
    for compiled in (False, True):
        values = reset()
        mean = mg.compile(fn)(batch) if compiled else sum(fn(s) for s in batch) / len(batch)
        between()
        try:
            mean.backward()
            seen.append((mean.data, *(v.grad for v in values)))
        except RuntimeError as e:
            assert refusal in str(e)
            seen.append("refused")
    return seen


def test_no_grad_and_detach_inside_fn_are_replayed_for_each_sample():
    w = Value(0.5, "w")

    def under_no_grad(s):
        with mg.no_grad():
            c = s[0] * 2 + w * s[0]  # no gradient flows through c (compile once baked in sample 0's number)
        return w * c
    for fn in (under_no_grad, lambda s: w * (w * s[0]).detach()):
        assert same_as_scalar(fn, [[1.0], [2.0], [3.0]], [w]).tapes == 1


def test_a_gradient_grad_returns_as_a_float_inside_fn_is_a_decision():
    w = Value(0.5, "w")

    def fn(s):
        h = (w * s[0]).tanh()
        d, = mg.grad(h, [w])  # a plain float
        return h * d
    samples = [[1.0], [2.0], [-3.0]]
    assert same_as_scalar(fn, samples, [w]).tapes == 3
    with pytest.raises(ValueError, match=r"sample 1 decides differently at a gradient that mg.grad\(\) returned as "
                                         r"a float .* create_graph=True\) and .detach\(\)"):
        mg.compile(fn, max_tapes=1)(samples)

    def kept(s):  # the gradient as a Value, detached: the same loss, replayed on one tape
        h = (w * s[0]).tanh()
        d, = mg.grad(h, [w], create_graph=True)
        return h * d.detach()
    assert same_as_scalar(kept, samples, [w]).tapes == 1


def test_a_gradient_of_tanh_kept_in_the_graph_is_replayed_with_its_own_derivative():
    # under create_graph tanh's rule makes a tanh_grad node: replay runs its forward and its rule on arrays
    w = Value(0.5, "w")

    def fn(s):
        d, = mg.grad((w * s[0]).tanh(), [w], create_graph=True)
        return d * d
    compiled = same_as_scalar(fn, [[1.0], [2.0], [-3.0], [1e-8]], [w])
    assert compiled.tapes == 1
    assert any(v.op == "tanh_grad" for v in mg.topological_order(fn([Value(1.0)])))


def test_a_float_read_of_a_layers_output_is_answered_by_the_replay_of_the_recorded_sample():
    # the replay's matrix product rounds otherwise than the scalar engine's sums: the recorded
    # sample must still pass its own float() check
    model = MLP(8, [32, 1], seed=0)

    def fn(s):
        out = model(s)
        return out ** 2 if float(out) < 10 else out
    samples = [list(x) for x in np.random.default_rng(0).normal(size=(4, 8))]
    compiled = mg.compile(fn, max_tapes=64)
    result, got = compiled_mean(compiled, samples, model.parameters())
    loss, expected = scalar_mean(fn, samples, model.parameters())
    assert result.data == pytest.approx(loss, rel=1e-12) and got == pytest.approx(expected, rel=1e-10, abs=1e-15)
    assert compiled.tapes == 4
    compiled(samples)
    assert compiled.recordings == 4  # the same samples again: the same tapes


def test_equality_of_sample_numbers_compares_numbers_and_a_values_own_stays_identity():
    w, b = Value(0.5, "w"), Value(-0.2, "b")
    samples = [[1, 2, 1.5], [2, 2, 0.5], [4, 4, -1.0]]
    for fn in (lambda s: w * s[2] if s[0] == s[1] else b * s[2],
               lambda s: w * s[2] if s[1] == np.int64(2) else b * s[2],
               lambda s: w * s[2] if s[0] != np.float32(2.0) else b * s[2],
               lambda s: w * s[2] if s[0] * 2 == s[1] + s[1] else b * s[2]):  # computed from the sample alone
        same_as_scalar(fn, samples, [w, b])
    # in the scalar loop these are Values, so == is identity: never equal
    for fn in (lambda s: w * s[2] if w == 0.5 else b * s[2],
               lambda s: w * s[2] if s[1] == Value(2.0, requires_grad=False) else b * s[2],
               lambda s: w * s[2] if s[1] * w == 1.0 else b * s[2]):
        same_as_scalar(fn, samples, [w, b])


def test_the_truth_of_a_sample_number_is_a_decision():
    w = Value(0.5, "w")

    def fn(s):  # a 0/1 label
        return -(w * s[0]).sigmoid().log() if s[1] else -(1 - (w * s[0]).sigmoid()).log()
    assert same_as_scalar(fn, [[1.0, 1], [2.0, 0], [3.0, 1]], [w]).tapes == 2
    # a Value of the user's own is its number's truth, as a torch tensor's: a decision too
    same_as_scalar(lambda s: w * s[0] if w - 0.5 else -w, [[1.0], [2.0]], [w])
    same_as_scalar(lambda s: w * s[0] if w * s[0] - 1.0 else -w, [[1.0], [2.0], [4.0]], [w])


def test_a_sample_number_as_a_dict_key_or_set_member_hashes_as_the_number():
    w, b = Value(0.7, "w"), Value(-0.2, "b")
    samples = [[1, 1, 2], [1, 2, 3], [3, 3, 3], [2, 1, 1.0]]

    def counts(s):
        seen = {}
        for t in s:
            seen[t] = seen.get(t, 0) + 1
        return w * max(seen.values()) + b
    for fn in (lambda s: w * len(set(s)) + b, counts, lambda s: w * {1: 2.0, 3: 5.0}.get(s[0], 1.0) + b,
               lambda s: w * (s[0] in {2, 3}) + b):
        same_as_scalar(fn, samples, [w, b])
    with pytest.raises(ValueError, match=r"max_tapes=2 .* decides differently at a sample's number hashed "
                                         r"\(a dict key or set member\)"):
        mg.compile(lambda s: w * len(set(s)), max_tapes=2)(samples)
    h = mg.compile(lambda s: w * len({w, b, w}) * s[0])  # a Value of the user's own hashes by identity, as always
    assert h([[1.0], [2.0]]).data == pytest.approx(2 * 0.7 * 1.5) and h.recordings == 1


def test_the_text_of_a_sample_number_is_the_plain_numbers_text():
    w, b = Value(0.7, "w"), Value(-0.2, "b")
    samples = [[1, 2.5], [10, 0.5], [1, 2.5], [3, -1.25], [0, -0.0], [0, 0.0]]
    weights = {"1": 2.0, "10": 3.0, "2.5": 4.0, " 1": 5.0, "1.00": 6.0, "-0.0": 7.0, "0.5": 8.0, "2": 9.0}
    fns = [lambda s: w * len(str(s[0])) + b * len(str(s[1])),
           lambda s: w * weights.get(f"{s[0]}", 1.0) + b * weights.get(f"{s[1]}", 1.0),
           lambda s: w * weights.get(f"{s[0]:>2}", 1.0) + b * weights.get(f"{s[1]:.2f}", 1.0),
           lambda s: w * len(repr(s[1])) + b * weights.get("%s" % s[0], 1.0),
           lambda s: w * len(str(s)) + b * len("{} {!r}".format(*s)),
           # numbers computed from the sample's numbers alone: an int stays an int, `/` gives a float
           lambda s: w * weights.get(str(s[0] / 2), 1.0) + b * weights.get(str(s[0] * 2), 1.0),
           lambda s: w * len(str(s[0] + 0.5)) + b * len(str(sum(s[:1]) - 1)) + w * len(f"{abs(-s[0]) ** 2}"),
           lambda s: w * len(str(2 ** (s[0] - 1))) + b * len(str(s[0] * True))]
    for fn in fns:
        same_as_scalar(fn, samples, [w, b])


def test_an_int_beyond_2_to_the_53_computed_from_sample_ints_is_refused_as_text_or_key():
    # compile holds 3 ** 40 as a float, rounded: its text and hash are another int's (was a silently different loss)
    w = Value(0.7, "w")
    for fn in (lambda s: w * int(str(s[0] ** 40)[-1]), lambda s: w * {3 ** 40: 5.0}.get(s[0] ** 40, 1.0),
               lambda s: w * (2.0 if s[0] ** 40 == 3 ** 40 else 1.0), lambda s: w * (2.0 if s[0] ** 40 == s[0] ** 40 + 1 else 1.0)):
        with pytest.raises(ValueError, match=r"compile: .* an int beyond 2\*\*53 .*\(1\.216e\+19\)"):
            mg.compile(fn)([[3], [3]])
    same_as_scalar(lambda s: w * len(str(s[0] ** 2)) + w * {9: 2.0}.get(s[0] ** 2, 1.0), [[3], [4]], [w])
    same_as_scalar(lambda s: w * (2.0 if s[0] ** 2 == 9 else 1.0), [[3], [4]], [w])


def test_an_int_to_an_int_power_shows_as_an_int_or_a_float_by_the_exponents_sign():
    # 1 ** 1 is 1, 1 ** -1 is 1.0 in the plain call: one number, two texts
    w = Value(0.7, "w")
    compiled = same_as_scalar(lambda s: w * len(str(s[0] ** s[1])), [[1, 1], [1, -1], [1, 2], [1, -2], [2, -1]], [w])
    assert compiled.recordings >= 2


def test_samples_whose_numbers_show_other_text_take_other_recordings():
    w = Value(0.7, "w")
    seen = []

    def fn(s):
        seen.append((str(w), repr(w * s[0])))  # Values that are no sample's number keep their repr
        return w * len(str(s[0]))
    compiled = same_as_scalar(fn, [[1], [10], [1], [2], [10]], [w])
    assert compiled.recordings == 3 and all(a.startswith("Value(data=0.7") and b.startswith("Value(") for a, b in seen)


def test_a_frozen_value_and_what_it_computes_keep_their_repr_and_identity_hash():
    w, scale = Value(0.7, "w"), Value(2.0, "scale", requires_grad=False)  # made before compile: a Value in the loop too
    seen = []

    def fn(s):
        seen.append((str(scale), repr(scale * s[0]), len({scale * s[0], scale * s[0]})))
        return w * s[0] * scale
    same_as_scalar(fn, [[1], [2], [1.5]], [w])
    assert all(a.startswith("Value(data=2") and b.startswith("Value(data=") and n == 2 for a, b, n in seen), seen


def test_a_number_read_out_of_a_value_tells_minus_zero_from_zero_as_the_scalar_loop_does():
    w = Value(0.5, "w")
    for fn in (lambda s: w * math.copysign(1.0, float(s[0])),  # 1 for 0.0, -1 for -0.0
               lambda s: w * math.atan2((w * s[0] * 0.0).data, -1.0)):  # pi, or -pi for x < 0
        for samples in ([[0.0], [-0.0]], [[-0.0], [0.0]], [[1.0], [-1.0]]):
            result, got = compiled_mean(mg.compile(fn), samples, [w])
            loss, expected = scalar_mean(fn, samples, [w])
            assert result.data == pytest.approx(loss, rel=1e-12) and got == pytest.approx(expected, rel=1e-12)


def test_a_print_of_a_sample_number_inside_fn_is_refused_beyond_max_tapes_naming_the_line(capsys):
    w = Value(0.7, "w")

    def fn(s):
        print("sample:", s[0])
        return w * s[0]
    line = fn.__code__.co_firstlineno + 1
    with pytest.raises(ValueError, match=rf"max_tapes=2 .* decides differently at a sample's number shown as text "
                                         rf"\(str\(\), repr\(\), an f-string\) at .*test_replay.py:{line} \(the text of "
                                         rf"a sample's number decides per number.*a print\(\)"):
        mg.compile(fn, max_tapes=2)([[1.0], [2.0], [3.0]])
    assert capsys.readouterr().out.startswith("sample: 1.0\nsample: 2.0\n")


def test_floor_division_modulo_and_round_of_sample_numbers_are_refused_clearly():
    w = Value(1.0)
    for op, fn in (("//", lambda s: w * (s[0] // 2)), ("%", lambda s: w * (s[0] % 3)),
                   ("//", lambda s: w * (7 // s[0])), ("round()", lambda s: w * round(s[0]))):
        with pytest.raises(TypeError, match=rf"fn applies {re.escape(op)} to one of the sample's numbers, which "
                                            r"compile turned into a Value while recording; .* is not recorded"):
            mg.compile(fn)([[5.0]])
    with pytest.raises(TypeError, match="unsupported operand"):  # a Value of the user's own: as the engine says
        mg.compile(lambda s: (w // 2) * s[0])([[5.0]])



def test_trunc_bitwise_ops_and_number_attributes_of_sample_numbers_are_refused_clearly():
    # each works on the number in the scalar loop; compile gave "type Value doesn't define __trunc__",
    # "unsupported operand type(s) for <<", "'Value' object has no attribute 'real'", or hasattr() False
    w = Value(1.0)
    for op, error, fn in (
            ("math.trunc()", TypeError, lambda s: w * math.trunc(s[0])), ("<<", TypeError, lambda s: w * (s[1] << 1)),
            ("<<", TypeError, lambda s: w * (1 << s[1])), (">>", TypeError, lambda s: w * (s[1] >> 1)),
            ("&", TypeError, lambda s: w * (s[1] & 1)), ("|", TypeError, lambda s: w * (2 | s[1])),
            ("^", TypeError, lambda s: w * (s[1] ^ 1)), ("~", TypeError, lambda s: w * ~s[1]),
            (".real", AttributeError, lambda s: w * s[0].real), (".is_integer", AttributeError,
                                                                  lambda s: w * s[0].is_integer()),
            (".hex", AttributeError, lambda s: w * len(s[0].hex())),
            (".bit_length", AttributeError, lambda s: w * s[1].bit_length()),
            (".real", TypeError, lambda s: w * hasattr(s[0], "real"))):  # fn caught it: no other branch taken
        plain = fn([5.5, 5])
        assert isinstance(plain, Value)
        with pytest.raises(error, match=rf"compile: fn (applies|reads) {re.escape(op)} (to|of) one of the sample's "
                                        rf"numbers, which compile turned into a Value while recording; "
                                        rf"{re.escape(op)} is not recorded"):
            mg.compile(fn)([[5.5, 5]])
    for error, message, fn in (  # a Value of the user's own: as the engine says without compile
            (AttributeError, "'Value' object has no attribute 'real'", lambda s: w.real * s[0]),
            (TypeError, "type Value doesn't define __trunc__ method", lambda s: math.trunc(w) * s[0]),
            (TypeError, "bad operand type for unary ~: 'Value'", lambda s: ~w * s[0]),
            (TypeError, r"unsupported operand type\(s\) for &: 'Value' and 'int'", lambda s: (w & 1) * s[0])):
        with pytest.raises(error, match=message):
            fn([5.0])
        with pytest.raises(error, match=rf"^compiled, sample 0: {message}$"):
            mg.compile(fn)([[5.0]])
    assert not hasattr(w, "real")

def test_a_value_made_outside_fn_from_a_changed_value_is_refused_as_the_scalar_engine_refuses_it():
    w = Value(0.5, "w")
    w2 = w * 2  # made before compiling: its number stays 1.0 in the scalar engine
    step = mg.compile(lambda s: w2 * s[0])
    assert same_as_scalar(lambda s: w2 * s[0], [[1.0], [2.0]], [w]).tapes == 1
    step([[1.0], [2.0]]).backward()
    w.data = 0.7
    message = r"fn uses a Value made outside fn \(Value\(data=1, .*by '\*'\) from a Value 'w' whose data has changed"
    with pytest.raises(RuntimeError, match=message):
        step([[1.0], [2.0]])
    with pytest.raises(RuntimeError, match=message):  # a new recording too
        mg.compile(lambda s: w2 * s[0])([[1.0], [2.0]])
    with pytest.raises(RuntimeError, match="was changed after"):  # the scalar engine
        (w2 * 1.0).backward()


def test_a_value_made_outside_fn_whose_own_data_was_set_is_refused():
    w = Value(0.5, "w")
    w2 = w * 2
    w2.data = 5.0  # the scalar engine uses 5; replay would compute w * 2 = 1
    message = r"fn uses a Value made outside fn \(Value\(data=5, .*by '\*'\) whose data was set after it was computed"
    with pytest.raises(RuntimeError, match=message):
        mg.compile(lambda s: w2 * s[0])([[1.0], [2.0]])
    w3 = w * 3
    step = mg.compile(lambda s: w3 * s[0])
    step([[1.0], [2.0]])
    w3.data = 5.0  # set after the recording
    with pytest.raises(RuntimeError, match=message.replace("data=5", "data=5").replace("w2", "w3")):
        step([[1.0], [2.0]])


def test_a_value_made_outside_fn_and_made_a_leaf_since_is_recorded_again():
    w, k = Value(0.5, "w"), Value(2.0, "k", requires_grad=False)
    k2 = k * k  # made outside fn, from a Value without gradient: a node replay computes from k
    fn = lambda s: (w * k2 * s[0] - s[1]) ** 2  # noqa: E731
    samples = [[1.0, 2.0], [3.0, -1.0]]
    step = same_as_scalar(fn, samples, [w])
    k2.requires_grad = True  # a leaf now, that requires grad: the scalar engine passes it a gradient
    result, got = compiled_mean(step, samples, [w, k2])
    loss, expected = scalar_mean(fn, samples, [w, k2])
    assert result.data == pytest.approx(loss, rel=1e-12) and got == pytest.approx(expected, rel=1e-12)
    assert expected[1] != 0.0
    b = Value(0.5, "b")
    b2 = b * 2
    fn = lambda s: (w * b2 * s[0] - s[1]) ** 2  # noqa: E731
    step = same_as_scalar(fn, samples, [w, b])
    b2.detach_()  # a leaf without gradient: a number of its own, and b no longer reached
    result, got = compiled_mean(step, samples, [w, b])
    loss, expected = scalar_mean(fn, samples, [w, b])
    assert result.data == pytest.approx(loss, rel=1e-12) and got == pytest.approx(expected, rel=1e-12)
    b2.data = 3.0
    result, got = compiled_mean(step, samples, [w, b])
    loss, expected = scalar_mean(fn, samples, [w, b])
    assert result.data == pytest.approx(loss, rel=1e-12) and got == pytest.approx(expected, rel=1e-12)


def test_a_value_made_outside_fn_set_or_detached_between_a_batch_and_its_backward_refuses_it():
    w, b = Value(0.5, "w"), Value(0.25, "b")
    samples = [[1.0, 2.0], [3.0, -1.0]]
    for change in (lambda v: setattr(v, "data", 5.0), lambda v: v.detach_()):
        b2 = b * 2  # made outside fn: replay computes it from b, the scalar engine holds its number
        fn = lambda s: (w * b2 * s[0] - s[1]) ** 2  # noqa: E731
        scalar = scalar_mean(fn, samples, [w, b])[0]
        result = mg.compile(fn)(samples)
        assert result.data == pytest.approx(scalar, rel=1e-12)
        mean = sum((fn(s) for s in samples), Value(0.0)) / 2
        change(b2)
        with pytest.raises(RuntimeError, match="was changed after"):  # the scalar engine
            mean.backward()
        with pytest.raises(RuntimeError, match=r"backward: the data of Value \(now .*\) was changed after this "
                                               r"batch was computed"):
            result.backward()
        assert w.grad == 0.0 and b.grad == 0.0


def test_backward_of_a_loss_that_needs_no_gradient_is_refused_as_the_scalar_engine_refuses_it():
    w = Value(0.5, "w", requires_grad=False)
    fn = lambda s: w * s[0]  # noqa: E731
    with pytest.raises(RuntimeError, match="does not require grad"):
        (fn([1.0]) + fn([2.0])).backward()
    result = mg.compile(fn)([[1.0], [2.0]])
    assert result.data == 0.75
    with pytest.raises(RuntimeError, match="compiled backward: the mean loss does not require grad"):
        result.backward()
    p = Value(1.0, "p")  # one sample's loss needing a gradient is enough, as for the scalar sum
    result = mg.compile(lambda s: p * s[0] if s[0] > 1 else w * s[0])([[1.0], [2.0]])
    result.backward()
    assert p.grad == 1.0


def test_sample_ints_that_a_float_would_round_are_refused():
    w = Value(1.0)
    compiled = mg.compile(lambda s: w * (s[0] - s[1]))
    big = 2 ** 53 + 1
    for samples in ([[big, 2 ** 53]], [[1, 2], [np.int64(big), 0]], [[1.5, 2], [big, 0.5]]):
        with pytest.raises(ValueError, match=rf"a sample holds an int no float holds exactly, {big}; compile "
                                             r"computes in floats, which hold every int up to 2\*\*53"):
            compiled(samples)
    with pytest.raises(ValueError, match="an int no float holds exactly"):
        mg.compile(lambda x, t: w * x[0] - t)(np.array([[big]]), [0])
    # too large for a float, too long to print (Python refuses str() of an int over 4300 digits)
    for n, digits in ((10 ** 400, 401), (-10 ** 5000, 5001)):
        message = rf"an int no float holds exactly, an int of about {digits} digits \(too large for a float\)"
        for samples in ([[n, 1]], [(1.0, n)], [{"a": n, "b": 1}], [[[n], 1]]):
            with pytest.raises(ValueError, match=message + r".* \(sample 0\)"):
                compiled(samples)
        with pytest.raises(ValueError, match=message):
            mg.compile(lambda s: w * s)([1.0, n])
        for X, y in (([[n]], [0]), ([[1.0]], [n]), (np.array([[n]], dtype=object), [0])):
            with pytest.raises(ValueError, match=message):
                mg.compile(lambda x, t: w * x[0] - t)(X, y)
    assert compiled([[2 ** 53, 2 ** 53 - 2]]).data == 2.0  # exact ones pass
    # found wherever they stand, a NaN or infinity beside them (min and max of a list with a NaN mislead)
    for sample in ([math.nan, big], [big, math.nan], [-math.inf, -big], [0.5, -big, math.inf]):
        with pytest.raises(ValueError, match=rf"an int no float holds exactly, -?{big}"):
            mg.compile(lambda s: w * s[0])([sample])


def test_x_and_y_of_anything_but_real_numbers_are_refused_not_converted():
    w = Value(0.5, "w")
    step = mg.compile(lambda x, t: (w * x[0] - t) ** 2)
    for X, y, what in ((np.array([[1 + 2j, 1.0]]), [1.0], r"X must hold real numbers, got an array of complex128"),
                       ([["1.5", "2"]], [1.0], r"X must hold real numbers, got strings"),
                       ([[1.5, 2.0]], ["1"], r"y must hold real numbers, got strings"),
                       (np.array([[1.5, "a"]], dtype=object), [1.0], r"X must hold real numbers, got str 'a'"),
                       ([[Value(1.5), 2.0]], [1.0], r"X must hold real numbers, got Value"),
                       ([[1.0, 2.0], [3.0]], [1.0, 2.0], r"X must be rows of equal length")):
        with pytest.raises((TypeError, ValueError), match=r"compiled: " + what):
            step(X, y)
    assert step(np.array([[1.5, 2]], dtype=object), [True]).data == pytest.approx(0.0625)


def test_a_coefficient_held_in_a_value_without_gradient_is_read_at_every_call():
    w = Value(0.5, "w")
    coefficient = Value(1.0, requires_grad=False)  # not a Python float, which recording bakes in
    fn = lambda s: w * s[0] * coefficient  # noqa: E731
    step = mg.compile(fn)
    assert step([[1.0], [3.0]]).data == 1.0
    coefficient.data = 3.0  # annealed
    assert same_as_scalar(fn, [[1.0], [3.0]], [w]).tapes == 1
    assert step([[1.0], [3.0]]).data == 3.0 and step.recordings == 1


def test_a_result_refuses_backward_after_a_value_without_gradient_it_read_was_set():
    w, k = Value(0.5, "w"), Value(2.0, "k", requires_grad=False)
    step = mg.compile(lambda s: w * s[0] * k)
    result = step([[1.0], [3.0]])
    k.data = 5.0  # as the scalar engine refuses backward through a graph that used k's old number
    with pytest.raises(RuntimeError, match=r"backward: the data of Value 'k' \(now 5.0\) was changed after this "
                                           r"batch was computed; run the compiled function again"):
        result.backward()
    assert w.grad == 0.0
    result = step([[1.0], [3.0]])
    result.backward()
    assert w.grad == pytest.approx(2 * 5.0)


def test_a_value_without_gradient_that_fn_makes_on_its_first_call_and_keeps_is_read_at_every_call():
    w, kept = Value(0.5, "w"), {}

    def fn(s):
        if "t" not in kept:  # made lazily, on the first call (a buffer a module makes on first use)
            kept["t"] = Value(2.0, "t", requires_grad=False)
        return (w * s[0] / kept["t"]) ** 2
    samples = [[1.0], [3.0]]
    step = same_as_scalar(fn, samples, [w])
    kept["t"].data = 4.0  # the scalar loop divides by 4 from now on
    result, got = compiled_mean(step, samples, [w])
    loss, expected = scalar_mean(fn, samples, [w])
    assert result.data == pytest.approx(loss, rel=1e-12) and got == pytest.approx(expected, rel=1e-12)
    kept["t"].requires_grad = True  # and passes it a gradient
    result, got = compiled_mean(step, samples, [w, kept["t"]])
    loss, expected = scalar_mean(fn, samples, [w, kept["t"]])
    assert result.data == pytest.approx(loss, rel=1e-12) and got == pytest.approx(expected, rel=1e-12)
    assert step.recordings == 2


def test_fn_that_sets_the_data_of_a_value_it_computes_with_is_refused_as_a_replay_would_not():
    w, k = Value(1.25, "w"), Value(2.0, "k", requires_grad=False)

    def clipped(s):  # replayed, the clip would not happen: the loss at w = 1.25 where the scalar loop's is at 1
        if w > 1.0:
            w.data = 1.0
        return (w * s[0] - 3.0) ** 2

    def node_set(s):
        z = w * s[0]
        z.data = 1.0  # the scalar loop goes on with 1.0, a replay with w * x
        return z * z

    def set_after_use(s):
        y = w * s[0] * k
        k.data = 3.0  # the scalar loop's y used 2.0 (and its backward refuses), a replay's 3.0
        return y * k

    def sample_set(s):  # the scalar loop's s[0] is a float, without .data
        s[0].data = 5.0
        return w * s[0]
    for fn, what in ((clipped, r"parameter 'w'"), (node_set, r"a Value made by '\*' inside fn"),
                     (set_after_use, r"Value 'k', after an op used it"), (sample_set, "the sample's number s0")):
        w.data, k.data = 1.25, 2.0
        with pytest.raises(RuntimeError, match=rf"^compile: fn set the \.data of {what}.*, while compile recorded it; "
                                               r"a replay does not run fn"):
            mg.compile(fn)([[1.0], [2.0]])
    w.data = 0.5  # no clip: recorded and replayed as the scalar loop; set outside fn, as usual, is fine
    step = same_as_scalar(clipped, [[1.0], [2.0]], [w])
    w.data = 0.75
    assert step([[1.0], [2.0]]).data == pytest.approx(((0.75 - 3) ** 2 + (1.5 - 3) ** 2) / 2, rel=1e-12)

    def own(s):  # a Value fn makes and sets before any op uses it: no refusal
        c = Value(0.0, requires_grad=False)
        c.data = 3.0
        return (w * s[0] - c) ** 2
    assert same_as_scalar(own, [[1.0], [2.0]], [w]).tapes == 1


def test_fn_that_sets_the_data_of_a_value_without_gradient_made_outside_it_is_refused():
    w, t = Value(0.5, "w"), Value(2.0, "t", requires_grad=False)

    def annealed(s):  # the scalar loop halves t at every sample; a replay, not running fn, never would
        t.data = t.data * 0.5
        return (w * s[0] * t - 1.0) ** 2
    with pytest.raises(RuntimeError, match=r"^compile: fn set the \.data of Value 't', made outside fn, while compile "
                                           r"recorded it; a replay does not run fn"):
        mg.compile(annealed)([[1.0], [2.0]])
    t.data = 2.0
    fn = lambda s: (w * s[0] * 2.0 * t - 1.0) ** 2  # noqa: E731  # (numbers ops lift are no Values of the user's)

    def own(s):  # set before use, as numbers ops lift after a set: fine
        c = Value(0.0, requires_grad=False)
        c.data = 1.0
        return fn(s) * c
    assert same_as_scalar(own, [[1.0], [2.0]], [w]).tapes == 1


def test_fn_that_reads_then_sets_a_value_it_made_and_keeps_is_refused():
    w, kept = Value(0.5, "w"), {}

    def annealed(s):  # a buffer made on first use and halved at every sample: a replay would never halve it
        if "t" not in kept:
            kept["t"] = Value(2.0, "t", requires_grad=False)
        kept["t"].data = kept["t"].data * 0.5
        return (w * s[0] * kept["t"] - 1.0) ** 2
    with pytest.raises(RuntimeError, match=r"^compile: fn set the \.data of Value 't', after fn read it \(a Value's "
                                           r"number .* at .*test_replay\.py:\d+\), while compile recorded it"):
        mg.compile(annealed)([[1.0], [2.0]])
    kept.clear()

    def flipped(s):  # the same, decided on by a comparison
        if "t" not in kept:
            kept["t"] = Value(2.0, "t", requires_grad=False)
        if kept["t"] > 1.5:
            kept["t"].data = 1.0
        return (w * s[0] * kept["t"] - 1.0) ** 2
    with pytest.raises(RuntimeError, match=r"^compile: fn set the \.data of Value 't', after fn read it \(a "
                                           r"comparison `>`"):
        mg.compile(flipped)([[1.0], [2.0]])


def test_fn_may_set_a_value_it_read_as_a_number_only_to_one_that_reads_alike():
    w = Value(0.5, "w")

    def made(read, new):  # fn keeps a buffer, reads it as a number, and sets it
        kept = {}

        def fn(s):
            if "t" not in kept:
                kept["t"] = Value(2.0, "t", requires_grad=False)
            read(kept["t"])
            kept["t"].data = new
            return (w * s[0] * kept["t"] - 1.0) ** 2
        return fn
    for read in (int, float):
        with pytest.raises(RuntimeError, match=r"fn set the \.data of Value 't', after fn read it"):
            mg.compile(made(read, 3.0))([[1.0], [2.0]])
    # int(2.5) is int(2.0): read alike (int() of a Value of fn's own works only while compile records)
    assert mg.compile(made(int, 2.5))([[1.0], [2.0]]).data == ((0.5 * 2.5 - 1) ** 2 + (2 * 0.5 * 2.5 - 1) ** 2) / 2
    assert mg.compile(made(float, 2.0))([[1.0], [2.0]]).data == ((0.5 * 2.0 - 1) ** 2 + (2 * 0.5 * 2.0 - 1) ** 2) / 2


def test_backward_adds_into_grads_set_to_none_and_refuses_grads_that_are_not_numbers():
    model = MLP(2, [3, 1], seed=0)
    params = model.parameters()
    step = mg.compile(lambda x, t: (model(x) - t) ** 2)
    X, y = np.random.default_rng(0).random((4, 2)), np.random.default_rng(1).random(4)
    expected = scalar_mean_grads(lambda x, t: (model(x) - t) ** 2, X, y, params)
    for p in params:
        p.grad = None  # PyTorch's set-to-none idiom: the scalar backward starts such a .grad from 0
    step(X, y).backward()
    assert [p.grad for p in params] == pytest.approx(expected, rel=1e-12)
    for bad, error, message in ((True, TypeError, "must be a number or None, got bool True"),
                                ("0", TypeError, "must be a number or None, got str '0'"),
                                (10 ** 400, ValueError, "must be finite, got an int of about 401 digits")):
        for p in params:
            p.grad = None
        params[1].grad = bad
        with pytest.raises(error, match=rf"compiled backward: the .grad of parameter {params[1].label} .*{message}"):
            step(X, y).backward()
        assert params[0].grad is None and params[-1].grad is None  # refused before any changed


def test_comparisons_with_ints_no_float_holds_decide_exactly_as_the_scalar_engine():
    # Python compares a float with an int exactly (2.0**53 < 2**53 + 1), and so does the scalar loop
    w = Value(0.5, "w")
    samples = [[2.0 ** 53], [2.0 ** 53 + 2], [1.0], [-2.0 ** 53], [-2.0 ** 53 - 2]]
    for n in (2 ** 53 + 1, -(2 ** 53 + 1), 10 ** 400, -10 ** 400, 2 ** 60):
        for fn in (lambda s: w * s[0] if s[0] < n else w * 0.5 - s[0],
                   lambda s: w * s[0] if s[0] <= n else w * 0.5 - s[0],
                   lambda s: w * s[0] if n < s[0] else w * 0.5 - s[0],
                   lambda s: w * s[0] if s[0] >= n else w * 0.5 - s[0],
                   lambda s: w * s[0] if s[0] == n else w * 2.0,
                   lambda s: w * s[0] if s[0] != n else w * 2.0):
            same_as_scalar(fn, samples, [w])



def test_grad_inside_fn_runs_no_derivative_rule_off_the_paths_to_its_inputs():
    v, w = Value(1.5, "v"), Value(0.0, "w")  # sqrt'(0) is undefined, but grad() asks for v only

    def fn(s):
        out = s[0] * v + mg.sqrt(w)
        (g,) = mg.grad(out, [v])
        return s[0] * v * g
    assert same_as_scalar(fn, [[2.0], [3.0], [2.0]], [v, w]).tapes == 2  # the gradient, a float, is s[0]


def test_an_error_fn_catches_is_a_decision_so_no_sample_takes_the_other_path():
    w, b = Value(0.7, "w"), Value(-0.2, "b")

    def fn(s):
        try:
            return mg.log(s[0]) * w + w / (s[0] - 1.0)
        except (ValueError, ZeroDivisionError):
            return b * s[1]
    # the recorded sample is refused by log, the next ones by / or by nothing: each path its own tape
    compiled = same_as_scalar(fn, [[-1.0, 2.0], [1.0, 3.0], [2.0, 1.0], [-3.0, 1.0], [1.0, 1.0]], [w, b])
    assert compiled.tapes == 3


def test_an_op_whose_result_fn_drops_still_refuses_what_the_scalar_engine_refuses():
    w = Value(0.7, "w")

    def fn(s):
        mg.log(s[0])  # a check whose result is not used
        return w * s[1]
    with pytest.raises(ValueError, match="log"):
        fn([-1.0, 3.0])
    with pytest.raises(ValueError, match=r"compiled, sample 1: log\((s0=)?-1.0\): input must be > 0"):
        mg.compile(fn)([[1.0, 2.0], [-1.0, 3.0]])


def test_a_sample_an_op_refuses_on_another_samples_recording_gets_its_own_as_fn_may_catch_it():
    w, b = Value(0.7, "w"), Value(-0.2, "b")

    def fn(s):
        try:
            return mg.log(s[0]) * w
        except ValueError:
            return b * s[1]
    assert same_as_scalar(fn, [[1.0, 2.0], [-1.0, 3.0], [2.0, 1.0], [-2.0, 1.0]], [w, b]).tapes == 2


def test_a_refusal_of_floor_division_that_fn_catches_still_refuses_the_recording():
    w = Value(0.7, "w")

    def fn(s):
        try:
            k = s[0] // 1  # a number for the scalar loop; compile cannot record it
        except TypeError:
            k = 0.0
        return w * k
    assert scalar_mean(fn, [[2.5]], [w])[0] == pytest.approx(1.4)
    with pytest.raises(TypeError, match=r"fn applies // .* fn caught the error, but the scalar loop has no error"):
        mg.compile(fn)([[2.5], [3.5]])


@pytest.mark.filterwarnings("ignore:compile.*recordings made:RuntimeWarning")  # dropped by design
def test_shapes_whose_tapes_were_dropped_are_forgotten():
    w = Value(0.7, "w")
    compiled = mg.compile(lambda s: w * s["x"], max_tapes=2)
    for i in range(50):  # a string is part of a sample's shape: each id is a shape of its own
        compiled([{"id": f"sample {i}", "x": 1.0}])
    assert len(compiled._tapes) == 2
    compiled = mg.compile(lambda s: w * s[0], max_tapes=2)
    for n in range(1, 30):
        compiled([[1.0] * n])
    assert "2 tapes for 2 sample shapes" in repr(compiled)


@pytest.mark.filterwarnings("ignore:compile.*recordings made:RuntimeWarning")  # dropped by design
def test_parameters_only_dropped_tapes_read_are_forgotten_and_results_keep_their_gradients():
    w = Value(0.5, "w")

    def fn(s):
        target = Value(2.0)  # fn's own Value (requires grad): a new one at every recording
        if s[0] > 1:
            return (w * s[0] - target) ** 2
        return w * s[0] + target if s[0] > 0 else w * s[0] - target
    compiled = mg.compile(fn, max_tapes=2)
    early = compiled([[5.0], [0.5]])
    for _ in range(100):  # the tape of s[0] > 1 is kept; the other two take turns
        compiled([[5.0], [-1.0]])
        latest = compiled([[5.0], [0.5]])
    assert len(compiled.params) < 100
    for result in (early, latest):
        w.grad = 0.0
        result.backward()
        assert w.grad == pytest.approx(scalar_mean(fn, [[5.0], [0.5]], [w])[1][0], rel=1e-12)


def test_a_sample_an_op_refuses_when_the_tapes_are_full_gets_the_engines_error_or_the_true_reason():
    w = Value(1.0)

    def branch(s):
        return mg.exp(s[0] * w) if s[0] > 0 else s[0] * w

    step = mg.compile(branch, max_tapes=2)
    step([[1.0], [-1.0]])
    with pytest.raises(OverflowError, match=r"compiled, sample 2: exp\(1000.0\): result is too large"):
        step([[1.0], [-1.0], [1000.0]])

    def caught(s):
        try:
            return mg.exp(s[0] * w)
        except OverflowError:
            return s[0] * w

    step = mg.compile(caught, max_tapes=1)
    step([[1.0]])
    with pytest.raises(ValueError, match=r"max_tapes=1 .* sample 1 takes the path of a recording on which an op "
                                         r"refuses its numbers, an error fn catches"):
        step([[1.0], [1000.0]])


def test_a_call_form_fn_cannot_take_is_named_with_both_forms():
    model = mg.MLP(2, [3, 1], seed=0)
    X, y = mg.data.make_moons(6, seed=0)
    pair = mg.compile(lambda x, t: mg.losses.mse([model(x)], [t]))
    one = mg.compile(lambda x: model(x))
    for call in (lambda: pair((X, y)), lambda: pair(X), lambda: one(X, y)):
        with pytest.raises(TypeError, match=r"^compiled: <lambda> cannot be called as fn\((x, y|sample)\): call the "
                                            r"compiled function with X and y, compiled\(X, y\), for fn\(x, y\), or "
                                            r"with a list of samples, compiled\(samples\), for fn\(sample\)$"):
            call()
    assert len(pair(X, y).losses) == 6 and len(one(X).losses) == 6


@pytest.mark.parametrize("y", [[2.0, 1.0], np.array([2.0, 1.0]), [True, False], np.array([True, False]), [1, 2.0]],
                         ids=["floats", "float array", "bools", "bool array", "an int and a float"])
def test_class_ids_that_are_floats_or_bools_are_refused_in_X_y_as_the_scalar_loop_refuses_them(y):
    # compiled(X, y) made every y a float, and took 2.0 or True as a class id the scalar loop refuses
    m = mg.nn.Linear(2, 3, seed=0)

    def fn(x, t):
        return losses.cross_entropy([m(x)], [t])
    X = np.array([[0.1, 0.2], [0.3, -0.4]])
    with pytest.raises(TypeError, match=r"targets must be (class indices \(ints\)|numbers), got (float|bool)"):
        [fn(list(x), t) for x, t in zip(X, y)]  # the scalar loop
    with pytest.raises(TypeError, match=r"compiled, sample [01]: cross_entropy: targets must be class indices "
                                        r"\(ints\), got (float 2.0|bool True)"):
        mg.compile(fn)(X, y)
    compiled = mg.compile(fn)
    assert compiled(X, [2, 1]).data == pytest.approx(losses.cross_entropy([m(list(x)) for x in X], [2, 1]).data)
    with pytest.raises(TypeError, match="targets must be class indices"):  # not replayed on the ints' recording
        compiled(X, y)


def test_class_ids_and_token_ids_that_are_floats_are_refused_in_every_call_form():
    m, emb = mg.nn.Linear(2, 3, seed=0), mg.nn.Embedding(5, 3, seed=0)
    with pytest.raises(TypeError, match=r"compiled, sample 1: cross_entropy: targets must be class indices \(ints\), "
                                        r"got float 2.0 at target 0"):
        mg.compile(lambda s: losses.cross_entropy([m(s[:2])], [s[2]]))([[0.1, 0.2, 1], [0.1, 0.2, 2.0]])
    with pytest.raises(TypeError, match=r"compiled, sample 0: cross_entropy: targets must be class indices \(ints\), "
                                        r"got bool True"):
        mg.compile(lambda s: losses.cross_entropy([m(s[:2])], [s[2]]))([[0.1, 0.2, True]])

    def by_token(x, t):
        return losses.mse([emb(x[0])[0]], [t])
    with pytest.raises(TypeError, match=r"Embedding: index must be an int in 0..4, got float64 np.float64\(1.0\)"):
        by_token([np.float64(1.0)], 0.5)  # the scalar loop, on a row of a float array
    with pytest.raises(TypeError, match=r"compiled, sample 0: Embedding: index must be an int in 0..4, got float 1.0"):
        mg.compile(by_token)(np.array([[1.0], [2.0]]), [0.5, 0.5])
    compiled = mg.compile(by_token)
    assert compiled([[1], [2]], [0.5, 0.5]).data == pytest.approx(
        (by_token([1], 0.5).data + by_token([2], 0.5).data) / 2, rel=1e-12)
    assert compiled.tapes == 1


def test_X_given_as_lists_keeps_each_columns_kind_of_number():
    # lists of one kind per column take a path without a loop over the rows: each column keeps its kind
    emb = mg.nn.Embedding(5, 1, seed=0)

    def fn(x, t):
        return losses.mse([emb(x[0])[0] * x[1]], [t])

    compiled = mg.compile(fn)
    X, y = [[1, 0.5], [3, 2.0]], [0.25, 1]
    assert compiled(X, y).data == pytest.approx(sum(fn(x, t).data for x, t in zip(X, y)) / 2, rel=1e-12)
    with pytest.raises(TypeError, match=r"compiled, sample 1: Embedding: index must be an int in 0..4, got float 3.0"):
        compiled([[1, 0.5], [3.0, 2.0]], y)  # the column's kinds differ: each row its own


def test_a_value_made_from_a_sample_number_or_a_parameter_inside_fn_holds_each_calls_number():
    # Value(v) read v's number unnoticed: the recorded sample's number, or the parameter's then, served every call
    w, b = Value(0.5), Value(-0.2)
    fns = [lambda x: b * Value(x, requires_grad=False), lambda x: b * x * Value(w)]
    for fn in fns:
        compiled = mg.compile(fn)
        for samples in ([1.0, 2.0, 1.0], [3.0, 2.0]):
            result, got = compiled_mean(compiled, samples, [w, b])
            loss, expected = scalar_mean(fn, samples, [w, b])
            assert result.data == pytest.approx(loss, rel=1e-12) and got == pytest.approx(expected, rel=1e-12)
            w.data += 1.0
    with pytest.raises(ValueError, match=r"max_tapes=2 .*float\(\), .item\(\), .data or Value\(v\)\) at .*test_replay"):
        mg.compile(fns[0], max_tapes=2)([1.0, 2.0, 3.0])


def test_an_array_in_a_sample_or_a_row_of_an_array_X_reaches_fn_as_an_array():
    # as a list, `x * 2` repeated it and `x == 1.0` was one False: another loss, silently
    w, b = Value(0.5), Value(-0.2)

    def fn(x):
        return w * (x * 2)[1] + b * np.sum(x == 1.0)

    def fn2(x):
        return w * b * x[1, 0]
    for f, samples in ((fn, [np.array([1.0, 2.0]), np.array([3.0, -1.0])]),
                       (fn2, [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[3, -1], [1, 5]])])):
        result, got = compiled_mean(mg.compile(f), samples, [w, b])
        loss, expected = scalar_mean(f, samples, [w, b])
        assert result.data == pytest.approx(loss, rel=1e-12) and got == pytest.approx(expected, rel=1e-12)
    X, y = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([1.0, 0.0])
    fxy = lambda x, t: w * (x * 2)[1] + b * t  # noqa: E731
    for rows in (X, list(X)):  # X[i] is an array for the scalar loop either way
        assert mg.compile(fxy)(rows, y).data == pytest.approx(sum(fxy(x, t).data for x, t in zip(X, y)) / 2)


def _kinks_loss(lib, w, v, s, x):
    """One sample's loss whose rows sit on relu's, abs's and leaky_relu's kinks and pow's cases."""
    relu = lib.relu
    leaky = (lambda t: t.leaky_relu(0.1)) if lib is mg else (lambda t: lib.nn.functional.leaky_relu(t, 0.1))
    z = w * x[0] - v
    return relu(z) + abs(z) * 2 + leaky(z) * 3 + (w * x[1]) ** s + (v * v + 1) ** (s * x[2]) + z.tanh() ** 2.0


def test_compiled_gradients_at_kinks_and_powers_edges_match_torch_and_finite_differences():
    """compile's gradients, where samples put relu, abs and leaky_relu at 0 (torch's 0, 0 and the
    slope) and a**b at base 0 and exponent 0, against torch float64 and, off the kinks, central
    differences of the mean loss."""
    w, v, s = Value(0.5), Value(0.25), Value(2.0)
    X = [[1.5, 0.0, 1.0], [1.0, 2.0, -0.5], [-1.0, 1.5, 0.0], [2.0, 0.5, 3.0]]  # row 0: a base of 0; row 2: exponent 0
    X[1][0] = 0.5  # w * 0.5 - 0.25 = 0: every kink at once
    step = mg.compile(lambda x: _kinks_loss(mg, w, v, s, x))
    result = step(X)
    result.backward()
    compiled = [w.grad, v.grad, s.grad]
    smooth = [X[0], X[2], X[3]]  # no kink: finite differences apply
    for p in (w, v, s):
        p.grad = 0.0
    step(smooth).backward()
    loss = lambda: sum(_kinks_loss(mg, w, v, s, x) for x in smooth) / len(smooth)
    assert [w.grad, v.grad, s.grad] == pytest.approx(numeric_param_grads(loss, [w, v, s]), rel=1e-6, abs=1e-8)
    torch = pytest.importorskip("torch")
    tw, tv, ts = (torch.tensor(p.data, dtype=torch.float64, requires_grad=True) for p in (w, v, s))
    mean = sum(_kinks_loss(torch, tw, tv, ts, torch.tensor(x, dtype=torch.float64)) for x in X) / len(X)
    mean.backward()
    assert result.data == pytest.approx(mean.item(), rel=1e-12)
    assert compiled == pytest.approx([tw.grad.item(), tv.grad.item(), ts.grad.item()], rel=1e-12)


class _NeedsTwo(ValueError):
    def __init__(self, doc: str, pos: int) -> None:  # as json.JSONDecodeError: no one-message constructor
        super().__init__(f"{doc} at {pos}")


def test_fn_raising_an_error_that_takes_no_one_message_is_named_with_its_sample():
    def fn(x):
        if x.data > 1:
            raise _NeedsTwo("too big", 7)
        return x * 2
    with pytest.raises(ValueError, match=r"^compiled, sample 1: too big at 7"):  # was the error without its sample
        mg.compile(fn)([0.5, 2.0])


def test_one_compiled_function_called_from_two_threads_gives_each_batch_its_own_gradient():
    # the tapes reuse their arrays from call to call: two threads at once mixed their gradients
    import sys
    import threading
    model = MLP(2, [32, 32, 1], seed=0)
    step = mg.compile(lambda x, t: losses.mse([model(x)], [t]))
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(128, 2)), rng.normal(size=128)) for _ in range(2)]
    expected = []
    for X, y in batches:
        r = step(X, y)
        r.backward()
        expected.append(r.grads.copy())
    wrong = []

    def work(k: int) -> None:
        for _ in range(20):
            r = step(*batches[k])
            r.backward()
            if not np.allclose(r.grads, expected[k], rtol=1e-12, atol=0):
                wrong.append(k)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(interval)
    assert not any(t.is_alive() for t in threads)
    assert wrong == []


@pytest.mark.parametrize("reader, frame", [("call", "<genexpr>"), ("repr", "<setcomp>")])
def test_a_read_from_another_thread_while_a_call_records_a_new_shape_is_not_broken(reader, frame):
    # a call (sizing its matrix work) and repr read the recordings without the lock while another
    # thread's call added a shape: RuntimeError 'OrderedDict mutated during iteration'
    import sys
    import threading
    if frame == "<setcomp>" and sys.version_info >= (3, 12):
        pytest.skip("comprehensions run inline from Python 3.12: no frame to hold the thread in")
    w = Value(0.5)
    step = mg.compile(lambda s: sum((w * x for x in s), w * 0))
    step([[1.0]])
    caller = {"call": "__call__", "repr": "__repr__"}[reader]
    paused, recorded = threading.Event(), threading.Event()

    def pause_in_the_read(f, event, arg):  # holds the second thread inside its read of the recordings
        if event == "call" and f.f_code.co_name == frame and not paused.is_set() \
                and f.f_back is not None and f.f_back.f_code.co_name == caller:
            paused.set()
            recorded.wait(30)
    results, errors = [], []

    def second() -> None:
        sys.settrace(pause_in_the_read)
        try:
            results.append(step([[1.0]]).data if reader == "call" else repr(step))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            sys.settrace(None)
    thread = threading.Thread(target=second)
    thread.start()
    assert paused.wait(30)
    try:
        assert step([[1.0, 2.0]]).data == 1.5  # a new shape: a new entry among the recordings
    finally:
        recorded.set()
        thread.join(60)
    assert errors == [] and len(results) == 1
    assert results[0] == 0.5 if reader == "call" else "tape" in results[0]


def test_a_copied_compiled_function_replays_the_live_model_as_the_original_does():
    import copy
    model = MLP(2, [4, 1], seed=1)
    step = mg.compile(lambda x, t: losses.mse([model(x)], [t]))
    X, y = np.array([[0.5, -1.0], [1.5, 2.0]]), np.array([1.0, -1.0])
    step(X, y)  # recorded
    for p in model.parameters():
        p.data += 0.25
    twin = copy.deepcopy(step)
    assert twin is not step and copy.copy(step) is not step
    model.zero_grad()
    result = twin(X, y)
    result.backward()
    scalar = sum(losses.mse([model(x)], [t]).data for x, t in zip(X.tolist(), y.tolist())) / len(y)
    assert result.data == pytest.approx(scalar, rel=1e-12)
    assert any(p.grad != 0 for p in model.parameters())  # its backward reaches the model's parameters


def test_a_replay_runs_numpy_blas_on_one_thread_and_gives_the_setting_back():
    # With two OpenBLAS threads on two cores, the compiled GPT step took 2 to 3 times as long (CPU
    # and wall time): its matrix products are too small to share. The replay sets one thread
    # while it runs (seen here by an op's array_forward, which runs inside it) and restores it.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []

    def threads() -> int:
        return max(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")

    def spy(x):
        seen.append(threads())
        return x * 1.0
    ident = mg.define_op("replay_blas_spy", lambda x: x, lambda x, out: 1.0, array_forward=spy)
    layer = mg.Layer.from_weights([([0.01 * (i + j) for j in range(64)], 0.0) for i in range(64)], "linear")
    step = mg.compile(lambda x, t: ident(mg.losses.mse(layer(list(x)), [t] * 64)))
    X, y = np.random.default_rng(0).standard_normal((32, 64)), np.zeros(32)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if threads() != 2:
            pytest.skip("this numpy's BLAS keeps one thread")
        step(X, y)  # records, then replays with the tape's size known
        seen.clear()
        result = step(X, y)
        result.backward()
        after = threads()
    assert seen == [1] and after == 2
    small = mg.compile(lambda x, t: ident(x[0] * t))  # no matrix product: the setting is not touched
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        small(X[:, :1], y)
        seen.clear()
        small(X[:, :1], y)
    assert seen == [2]


@pytest.mark.parametrize("lookup", ["embedding", "take"])
def test_rows_no_sample_picks_keep_their_grad_none_compiled_as_in_the_scalar_loop(lookup):
    # An Embedding's int index returns its row: the scalar loop's graph holds no other row, and
    # after zero_grad(set_to_none=True) those rows' .grad stay None, so Adam skips them. Compiled,
    # the recording gathers from every row, and backward set them to 0.0: Adam moved rows no
    # sample used (Embedding(3, 1), batches [[0]] then [[1]]: scalar [None, -2.26, None], compiled
    # [0.0, -2.26, 0.0]). A plain index picks the option itself in mg.take too.
    def make():
        table = mg.nn.Embedding(3, 2, seed=0)
        w = Value(0.5, "w")
        if lookup == "embedding":
            row = table
        else:
            def row(i):
                return [mg.take(i, [r[j] for r in table.weight]) for j in range(2)]
        return table, w, (lambda s: (w * row(s[0])[0] + row(s[0])[1] - s[1]) ** 2)
    runs = []
    for compiled in (False, True):
        table, w, loss = make()
        params = [*table.parameters(), w]
        opt = mg.optim.Adam(params, lr=0.1)
        step = mg.compile(loss) if compiled else None
        seen = []
        for batch in ([[0, 1.0]], [[1, -1.0], [1, 2.0]], [[0, 0.5]]):
            opt.zero_grad(set_to_none=True)
            if compiled:
                step(batch).backward()
            else:
                (sum(loss(s) for s in batch) / len(batch)).backward()
            seen.append([p.grad for p in params])
            opt.step()
        runs.append((seen, [p.data for p in params]))
    (scalar, scalar_data), (replayed, replayed_data) = runs
    assert [[g is None for g in step] for step in replayed] == [[g is None for g in step] for step in scalar]
    assert scalar[0][2] is None and scalar[0][4] is None  # row 1 and 2 unused in the first batch
    for a, b in zip(scalar, replayed):
        assert [g for g in a if g is not None] == pytest.approx([g for g in b if g is not None], rel=1e-10)
    assert replayed_data == pytest.approx(scalar_data, rel=1e-10)


def test_take_of_computed_options_or_a_parameter_index_gives_grads_compiled_as_in_the_scalar_loop():
    # Only a take's parameter options are left to the rows a sample picks: a parameter behind a
    # computed option (a loss picking a log-probability by target) is reached through the option
    # the sample picks, and a parameter index is a Value in the scalar loop, its take node
    # linking every option (0.0 for the others, not None).
    def fns(w, u, idx):
        return [lambda s: -mg.take(s[0], [w * s[1], u * s[1]]),
                lambda s: mg.take(idx, [w, u]) * s[1]]
    for k in range(2):
        seen = []
        for compiled in (False, True):
            w, u, idx = Value(0.5, "w"), Value(-0.3, "u"), Value(1.0, "idx")
            w.grad = u.grad = None  # (zero_grad(set_to_none=True))
            fn = fns(w, u, idx)[k]
            batch = [[0, 1.0], [1, 2.0]]
            if compiled:
                mg.compile(fn)(batch).backward()
            else:
                (sum(fn(s) for s in batch) / len(batch)).backward()
            seen.append([w.grad, u.grad])
        assert seen[1] == seen[0], k


def test_a_linear_with_bias_applied_at_every_position_sums_its_bias_gradient_over_them():
    lin = mg.nn.Linear(2, 3, seed=0)  # bias=True; the same layer at several places of a sequence
    w = Value(0.3, "w")

    def fn(seq):
        outs = [lin([a, b]) for a, b in seq]
        return sum((o * w).tanh() for out in outs for o in out) * (1.0 / len(seq))
    batch = [[[0.5, -1.0], [1.5, 0.25], [-0.5, 2.0]], [[1.0, 1.0], [0.0, -2.0], [2.0, 0.5]]]
    compiled = same_as_scalar(fn, batch, [w, *lin.parameters()])
    assert compiled.recordings == 1


def test_neurons_of_their_own_reading_other_inputs_at_one_depth_get_their_own_bias_gradients():
    # two neurons, each with its weights and bias, on overlapping windows of the sample (a locally
    # connected layer): replayed as one batched product over two places, each bias its own
    a, b = mg.Neuron(2, "linear", seed=0), mg.Neuron(2, "linear", seed=1)
    fn = lambda s: (a([s[0], s[1]]) * b([s[1], s[2]])).tanh()  # noqa: E731
    same_as_scalar(fn, [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [1.0, 1.0, 1.0]], [*a.parameters(), *b.parameters()])


def test_a_sample_number_compared_with_an_int_no_float_equals_decides_alike_for_every_sample():
    w = Value(0.5, "w")
    big = 2 ** 53 + 1  # no float equals it: every float sample decides == as False, != as True
    fn = lambda s: w * s[0] * (3.0 if s[0] == big else 1.0) + w * (2.0 if s[0] > 0 else -1.0)  # noqa: E731
    assert same_as_scalar(fn, [[1.0], [2.0 ** 53], [-4.5], [-1.0], [3.0]], [w]).recordings == 2


def test_an_embedding_row_picked_gets_its_gradient_after_zero_grad_to_none_and_the_others_keep_none():
    emb = mg.nn.Embedding(3, 1, seed=0)
    step = mg.compile(lambda s: emb(s[0])[0] ** 2)
    for p in emb.parameters():
        p.grad = None
    step([[0], [2], [0]]).backward()
    rows = [emb.weight[i][0] for i in range(3)]
    assert rows[1].grad is None
    assert rows[0].grad == pytest.approx(2 * 2 * rows[0].data / 3) and rows[2].grad == pytest.approx(2 * rows[2].data / 3)


def test_a_take_whose_result_never_reaches_the_loss_leaves_the_picked_rows_grad_none():
    # In the scalar loop a plain index picks the option itself, and an option whose pick the loss
    # never uses (an embedding's other column; a take's sum dropped by min()) is not in its graph:
    # its .grad stays None. Replay gave it 0.0, as though its take node were on the loss's path.
    def fns(emb, w):
        return [lambda s: emb(s["k"])[1] * s["t"],
                lambda s: min(w[2] * s["t"] + mg.take(s["k"], w[:2]), w[2])]
    for k in range(2):
        seen = []
        for compiled in (False, True):
            mg.manual_seed(0)
            emb, w = mg.nn.Embedding(3, 2), [Value(0.5, "w0"), Value(-0.3, "w1"), Value(2.0, "w2")]
            params = [*emb.parameters(), *w]
            for p in params:
                p.grad = None  # (zero_grad(set_to_none=True))
            fn = fns(emb, w)[k]
            batch = [{"k": 0, "t": 1.0}, {"k": 1, "t": 1.0}]
            if compiled:
                mg.compile(fn)(batch).backward()
            else:
                (sum(fn(s) for s in batch) / len(batch)).backward()
            seen.append([p.grad for p in params])
        assert seen[1] == seen[0], k


def test_a_batch_whose_takes_pick_only_frozen_options_refuses_backward_as_the_scalar_loop():
    # In the scalar loop a plain index picks the option itself: a sample that picks a frozen row
    # of a table has a loss that requires no grad, and backward of their mean is refused. Replay's
    # take node has every row as an input, so its mean took a backward that added nothing.
    w = [Value(0.5, "w0"), Value(2.0, "w1")]
    w[1].requires_grad_(False)

    def fn(s):
        return mg.take(s[0], w) * 3.0
    for batch, refused in (([[1]], True), ([[1], [1]], True), ([[0], [1]], False)):
        for compiled in (False, True):
            w[0].grad = w[1].grad = None
            mean = mg.compile(fn)(batch) if compiled else sum(fn(s) for s in batch) / len(batch)
            if refused:
                with pytest.raises(RuntimeError, match="does not require grad"):
                    mean.backward()
            else:
                mean.backward()
                assert (w[0].grad, w[1].grad) == (1.5, None)


def test_binary_cross_entropy_of_a_saturated_right_prediction_is_zero_compiled_as_in_the_scalar_loop():
    # sigmoid(40) is 1.0: for target 1 the scalar loop's term of weight 1 - t = 0 adds nothing, and
    # the loss is 0. Compiled, the target is a Value, both terms are kept, and log(1 - p) at p = 1
    # was refused: "prediction 1.0 for target 1.0 gives an infinite loss".
    w = Value(1.0, "w")

    def fn(s):
        return losses.binary_cross_entropy([(w * s[0]).sigmoid()], [s[1]])
    for batch in ([[0.5, 1], [40.0, 1]], [[-800.0, 0]], [[40.0, 1.0], [-800.0, 0.0]]):
        seen = []
        for compiled in (False, True):
            w.grad = None
            mean = mg.compile(fn)(batch) if compiled else sum(fn(s) for s in batch) / len(batch)
            mean.backward()
            seen.append((mean.data, w.grad))
        assert seen[1] == pytest.approx(seen[0], rel=1e-12), batch
    with pytest.raises(ValueError, match=r"prediction 1.0 for target 0(\.0)? gives an infinite loss"):
        mg.compile(fn)([[0.5, 1], [40.0, 0]])  # the wrong way round: infinite, refused as in the scalar loop
    with pytest.raises(ValueError, match=r"prediction 1.0 for target 0(\.0)? gives an infinite loss"):
        fn([40.0, 0])


def test_take_of_computed_options_reaches_only_the_picked_options_parameters_as_the_scalar_loop():
    # A plain index picks the option itself in the scalar loop: the parameters behind the options
    # no sample picks are not in the graph (.grad stays None), and a batch picking only a constant
    # option has a loss that requires no grad (backward refused). Replay reached every option's
    # parameters for every sample: .grad 0.0, and a backward that added nothing.
    w, u = Value(0.5, "w"), Value(2.0, "u")
    fns = [lambda s: mg.take(s[0], [w * s[1], u * s[1]]), lambda s: mg.take(s[0], [w * s[1], 2.0])]
    def reset():
        w.grad = u.grad = None
        return w, u
    for k, fn in enumerate(fns):
        for batch in ([[0, 1.0]], [[1, 1.0]], [[0, 1.0], [1, 3.0]]):
            seen = scalar_then_compiled(fn, batch, reset, refusal="does not require grad")
            assert seen[1] == seen[0], (k, batch)


def test_a_call_inside_no_grad_whose_fn_returns_a_parameter_itself_refuses_backward():
    # max() returns one of its arguments: a sample's loss may be the parameter w1 itself, which
    # requires grad inside no_grad() too. The scalar mean of the batch is an op made inside
    # no_grad(), so its backward is refused; compiled, it ran and added into w1.grad.
    w = [Value(0.5, "w0"), Value(1.0, "w1")]

    def fn(s):
        return max(w[0] * s[0], w[1])
    for batch in ([[1.0], [3.0]], [[1.0]]):
        for compiled in (False, True):
            w[0].grad = w[1].grad = None
            with mg.no_grad():
                mean = mg.compile(fn)(batch) if compiled else sum(fn(s) for s in batch) / len(batch)
            with pytest.raises(RuntimeError, match="does not require grad"):
                mean.backward()
            assert (w[0].grad, w[1].grad) == (None, None)


def test_setting_a_take_option_no_sample_picked_leaves_backward_as_the_scalar_loop():
    # The scalar graph of take(k, table) with a plain k holds the picked row alone: setting another
    # row's data between the forward and backward changes nothing there, and backward runs. The
    # compiled result refused it ("the data of parameter 'E[2,0]' was changed") as if every row were used.
    for compiled in (False, True):
        mg.manual_seed(0)
        emb = mg.nn.Embedding(3, 1)
        w = [Value(0.5, "w0"), Value(-0.3, "w1")]

        def fn(s):
            return emb(s[0])[0] * mg.take(s[0], w) * s[1]
        batch = [[0, 1.0], [0, 2.0]]
        mean = mg.compile(fn)(batch) if compiled else sum(fn(s) for s in batch) / len(batch)
        emb.parameters()[2].data = 7.0
        w[1].data = 7.0
        mean.backward()
        assert (emb.parameters()[0].grad, w[0].grad) == pytest.approx((0.5 * 1.5, emb.parameters()[0].data * 1.5))
        emb.parameters()[0].data = 7.0  # a row a sample picked: refused, compiled or not
        with pytest.raises(RuntimeError, match="changed"):
            mean.backward()


def test_fn_returning_a_plain_number_for_some_samples_is_a_constant_loss_as_in_the_scalar_loop():
    # A hand-written hinge, max(0, 1 - y * s), returns the int 0 for a sample beyond the margin: the
    # scalar loop's sum takes it as a constant. Compiled, such a sample was refused ("fn must return
    # a Value"). A batch on which fn returns numbers only is still refused: its scalar mean is a
    # plain number, with no .backward().
    w = Value(0.5, "w")

    def fn(x, y):
        return max(0, 1 - y * (w * x[0]))
    for X, y in (([[1.0], [4.0], [-1.0]], [1, 1, 1]), ([[4.0], [1.0]], [1, -1])):
        seen = []
        for compiled in (False, True):
            w.grad = None
            mean = mg.compile(fn)(X, y) if compiled else sum(fn(x, t) for x, t in zip(X, y)) / len(X)
            mean.backward()
            seen.append((mean.data, w.grad))
        assert seen[1] == pytest.approx(seen[0], rel=1e-12)
    with pytest.raises(TypeError, match="must return a Value"):
        mg.compile(fn)([[4.0], [8.0]], [1, 1])


def test_a_value_inside_a_computed_take_option_no_sample_picked_is_out_of_backward_as_in_the_scalar_loop():
    # The scalar graph of take(k, [w * 2, u * 3]) with a plain k holds the picked option alone:
    # setting u.data, or unfreezing a frozen u, between the call and backward() changes nothing when
    # no sample picked u * 3 (its .grad stays None). Compiled, every option's Values counted for
    # every sample: backward was refused as though u were in the graph, or unfrozen u got .grad 0.0.
    w, u = Value(0.5, "w"), Value(2.0, "u")
    cases = [(lambda s: mg.take(s[0], [w * s[1], u * 3.0]), lambda: setattr(u, "data", 5.0)),
             (lambda s: mg.take(s[0], [w * s[1], u]), lambda: setattr(u, "data", 5.0)),
             (lambda s: mg.take(s[0], [w * s[1], u * 3.0]), lambda: u.requires_grad_(True)),
             (lambda s: mg.take(s[0], [w * s[1], u]), lambda: u.requires_grad_(True))]
    for k, (fn, between) in enumerate(cases):
        def reset(k=k):
            u.data, w.grad, u.grad = 2.0, None, None
            u.requires_grad_(k < 2)
            return w, u
        for batch in ([[0, 1.0]], [[0, 1.0], [0, 3.0]], [[0, 1.0], [1, 3.0]]):
            seen = scalar_then_compiled(fn, batch, reset, between, refusal="changed after")
            assert seen[1] == seen[0], (k, batch, seen)
    assert seen[0] == (1.25, 0.5, 0.0)  # (a sample that picks u has it in its graph: unfrozen, its .grad starts)
