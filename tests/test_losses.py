import math
import re

import numpy as np
import pytest

import microgradnn as mg
from microgradnn import MLP, Value, losses
from conftest import analytic_grads, numeric_grads


def _torch_forward(model, x, torch):
    acts = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda t: t,
            "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01)}
    params, h = [], x
    for layer in model.layers:
        W = torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=torch.float64, requires_grad=True)
        b = torch.tensor([n.b.data for n in layer.neurons], dtype=torch.float64, requires_grad=True)
        params += [W, b]
        h = acts[layer.activation](h @ W.T + b)
    return h, params


def _torch_grads_in_our_order(model, params):
    out = []
    for (W, b), layer in zip(zip(params[::2], params[1::2]), model.layers):
        for i, _ in enumerate(layer.neurons):
            out += W.grad[i].tolist() + [b.grad[i].item()]
    return out


LOSS_CASES = [
    (losses.mse, "linear", 1, lambda y: y.astype(float), lambda F, o, t: F.mse_loss(o[:, 0], t)),
    (losses.hinge, "linear", 1, lambda y: y * 2.0 - 1, lambda F, o, t: F.relu(1 - t * o[:, 0]).mean()),
    (losses.binary_cross_entropy, "sigmoid", 1, lambda y: y.astype(float), lambda F, o, t: F.binary_cross_entropy(o[:, 0], t)),
    (losses.binary_cross_entropy_with_logits, "linear", 1, lambda y: y.astype(float),
     lambda F, o, t: F.binary_cross_entropy_with_logits(o[:, 0], t)),
    (losses.cross_entropy, "linear", 3, lambda y: y, lambda F, o, t: F.cross_entropy(o, t)),
]


@pytest.mark.parametrize("loss, out_act, nout, targets, torch_loss", LOSS_CASES, ids=lambda c: getattr(c, "__name__", None))
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu"])
def test_mlp_loss_gradients_match_torch(loss, out_act, nout, targets, torch_loss, activation):
    torch = pytest.importorskip("torch")
    X, y = mg.data.make_spiral(12, classes=3, seed=0) if nout == 3 else mg.data.make_moons(12, noise=0.1, seed=0)
    t = targets(y)
    model = MLP(2, [5, 4, nout], activation, out_act, seed=2)
    ours = loss([model(x) for x in X], t)
    ours.backward()
    out, params = _torch_forward(model, torch.tensor(X, dtype=torch.float64), torch)
    tt = torch.tensor(t, dtype=torch.long if nout == 3 else torch.float64)
    ref = torch_loss(torch.nn.functional, out, tt)
    ref.backward()
    assert ours.data == pytest.approx(ref.item(), rel=1e-10)
    assert [p.grad for p in model.parameters()] == pytest.approx(_torch_grads_in_our_order(model, params), rel=1e-10, abs=1e-13)


def test_softmax_is_stable_and_sums_to_one():
    probs = losses.softmax([Value(1000.0), Value(1001.0), Value(-1000.0)])
    assert sum(p.data for p in probs) == pytest.approx(1.0)
    assert probs[1].data == pytest.approx(1 / (1 + math.exp(-1)))
    assert losses.binary_cross_entropy_with_logits([Value(800.0)], [0.0]).data == 800.0


def test_softmax_of_no_logits_is_none_as_torchs():
    # was "ValueError: logsumexp: needs at least one input", naming a function the caller never called
    assert losses.softmax([]) == [] and losses.softmax(np.zeros(0)) == []


def test_softmax_keeps_float64_accuracy_at_large_logits():
    torch = pytest.importorskip("torch")
    zs = [1e10, 1e10 - 1, 1e10 - 3]  # exp(z - logsumexp(z)) was off by 2e-7: z - logsumexp(z) carries 1e10's rounding
    for big in (zs, [1e15, 1e15 - 2, 1e15 + 1.5], [-3e12, -3e12 + 0.25, -3e12 - 4]):
        z = [Value(v) for v in big]
        ours = losses.softmax(z)
        (ours[0] * 2.0 + ours[1] * ours[2]).backward()
        t = torch.tensor(big, dtype=torch.float64, requires_grad=True)
        theirs = torch.softmax(t, 0)
        (theirs[0] * 2.0 + theirs[1] * theirs[2]).backward()
        assert [p.data for p in ours] == pytest.approx(theirs.tolist(), rel=1e-15, abs=0)
        assert [v.grad for v in z] == pytest.approx(t.grad.tolist(), rel=1e-12, abs=0)


def test_bce_with_logits_keeps_the_small_loss_of_a_confident_right_score():
    # softplus(40) - 40 was 0: softplus(40) rounds to 40; the loss is log(1 + e^-40), its gradient -sigmoid(-40)
    for z, t in ((40.0, 1.0), (-40.0, 0.0)):
        x = Value(z)
        loss = losses.binary_cross_entropy_with_logits([x], [t])
        loss.backward()
        assert loss.data == pytest.approx(math.log1p(math.exp(-40.0)), rel=1e-15, abs=0)
        assert x.grad == pytest.approx(math.copysign(1.0 / (1.0 + math.exp(40.0)), -z), rel=1e-15, abs=0)


def test_bce_keeps_float64_accuracy_for_a_probability_near_0_with_target_0():
    # torch float64: 1.00000000005e-10 (-log1p(-1e-10)); ours 1.000000082790371e-10, 8e-8 off (1e-300 gave 0)
    assert losses.binary_cross_entropy([Value(1e-10)], [0.0]).data == pytest.approx(-math.log1p(-1e-10), rel=1e-15, abs=0)
    p = Value(1e-300)
    loss = losses.binary_cross_entropy([p], [0.0])
    loss.backward()
    assert loss.data == 1e-300 and p.grad == 1.0  # torch's gradient is 1e-288 here: see the docstring
    assert losses.binary_cross_entropy([1e-10, 0.5], [0.0, 1.0]).data == (-math.log1p(-1e-10) + math.log(2)) / 2


def test_compiled_bce_with_tiny_probabilities_is_the_scalar_loops():
    # the target is a Value while compile records, so both terms stay in the graph: log1p(-p) on arrays
    w = Value(1.0)
    fn = lambda x, t: losses.binary_cross_entropy([w * x[0]], [t])  # noqa: E731
    X, y = np.array([[1e-10], [1e-300], [0.3], [0.999999]]), np.array([0.0, 0.0, 0.25, 1.0])
    result = mg.compile(fn)(X, y)
    result.backward()
    scalar = [fn([Value(x[0])], t) for x, t in zip(X, y)]
    assert result.losses.tolist() == pytest.approx([s.data for s in scalar], rel=1e-15, abs=0)
    assert result.losses[:2].tolist() == [-math.log1p(-1e-10), 1e-300]
    expected = sum(mg.grad(s, [w])[0] for s in scalar) / len(scalar)
    assert w.grad == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("call, message", [
    (lambda: losses.hinge([Value(0.5)], [0]), r"hinge: targets must be -1 or \+1, got \[0.0\]"),
    (lambda: losses.binary_cross_entropy([Value(0.5)], [2]), r"targets must lie in \[0.0, 1.0\], got 2.0"),
    (lambda: losses.binary_cross_entropy([Value(1.5)], [1]), "predictions .probabilities. must lie in"),
    (lambda: losses.binary_cross_entropy_with_logits([Value(0.2)], [1.5]), r"targets must lie in \[0.0, 1.0\], got 1.5"),
    (lambda: losses.binary_cross_entropy_with_logits([Value(0.2)], [-0.5]), r"targets must lie in \[0.0, 1.0\], got -0.5"),
    (lambda: losses.binary_cross_entropy([Value(0.0)], [1]), "infinite loss; use binary_cross_entropy_with_logits"),
    (lambda: losses.binary_cross_entropy([Value(1.0)], [0]), "infinite loss; use binary_cross_entropy_with_logits"),
    (lambda: losses.cross_entropy([[Value(1.0), Value(2.0)], [Value(1.0), Value(2.0), Value(3.0)]], [0, 1]),
     r"every sample needs the same number \(>= 2\) of logits, got \[2, 3\]"),
    (lambda: losses.cross_entropy([[Value(1.0), Value(2.0)]], [2]), r"class indices 0..1, got \[2\]"),
    (lambda: losses.mse([Value(1.0), Value(2.0)], [1.0]), "got 2 predictions but 1 targets"),
    (lambda: losses.mse([Value(1.0)], [float("nan")]), "NaN"),
])
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("loss, targets, expected", [
    (losses.mse, [0, 1, 1], 0.5), (losses.mse, [-1, 1], 0.0), (losses.hinge, [-1, 1], 0.0),
    (losses.binary_cross_entropy, [0, 1], 0.5), (losses.binary_cross_entropy_with_logits, [0, 1], 0.0),
    (losses.cross_entropy, [0, 2], None), (lambda p, t: p, [0, 1], None),
    # a batch of one class is split by the label convention, not at its one value
    (losses.mse, [0, 0, 0], 0.5), (losses.mse, [1, 1], 0.5), (losses.mse, [-1, -1], 0.0), (losses.mse, [1], 0.5),
])
def test_decision_threshold_says_what_one_output_means(loss, targets, expected):
    assert losses.decision_threshold(loss, np.array(targets)) == expected


@pytest.mark.parametrize("loss", [losses.mse, losses.hinge, losses.binary_cross_entropy,
                                  losses.binary_cross_entropy_with_logits])
def test_a_loss_of_one_output_names_a_prediction_that_is_not_one_number(loss):
    # a model's list of outputs failed inside the arithmetic: "unsupported operand type(s) for -: 'list'"
    with pytest.raises(TypeError, match=f"{loss.__name__}: each prediction must be one number or Value, got list "
                                        r"\[Value\(data=0.5.* at prediction 0; for several outputs .* cross_entropy"):
        loss([[Value(0.5)], [Value(0.2)]], [1, 1])


@pytest.mark.parametrize("target, shown", [("1", "str '1'"), (None, "NoneType None"), (1j, "complex 1j")])
def test_a_target_that_is_not_a_number_is_refused_naming_the_loss(target, shown):
    # "1" was read as 1.0, silently; None and 1j failed inside float() without naming the loss
    for loss in losses.LOSSES.values():
        prediction = [Value(0.5), Value(0.1)] if loss is losses.cross_entropy else Value(0.5)
        with pytest.raises(TypeError, match=rf"{loss.__name__}: targets must be numbers, got {shown} at target 0"):
            loss([prediction], [target])
    assert losses.mse([Value(0.5)], [True]).data == 0.25  # a bool label is 0 or 1


def test_decision_threshold_takes_a_loss_by_name_as_fit_does():
    # the annotation says a name may be given, but every name gave None ("the loss does not say")
    for name, loss in losses.LOSSES.items():
        assert losses.decision_threshold(name, [0, 1]) == losses.decision_threshold(loss, [0, 1]), name
    assert losses.decision_threshold("binary_cross_entropy", [0, 1]) == 0.5
    with pytest.raises(ValueError, match="decision_threshold: loss must be one of mse, .*, got 'l1'"):
        losses.decision_threshold("l1", [0, 1])


@pytest.mark.parametrize("call, message", [
    (lambda: losses.hinge([float("nan")], [1]), "hinge: predictions contain NaN or infinity: prediction 0 is nan"),
    (lambda: losses.mse([1.0, float("inf")], [1, 1]), "mse: predictions contain NaN or infinity: prediction 1 is inf"),
    (lambda: losses.binary_cross_entropy_with_logits(np.array([1.0, np.nan]), [1, 0]),
     "binary_cross_entropy_with_logits: predictions contain NaN or infinity: prediction 1 is nan"),
    (lambda: losses.cross_entropy([[Value(0.0), 1.0], [0.0, float("-inf")]], [1, 0]),
     r"cross_entropy: predictions contain NaN or infinity: prediction 1 is \[0.0, -inf\]"),
    (lambda: losses.hinge([Value(1.0), 0.5], [1, float("inf")]),
     "hinge: targets contain NaN or infinity: target 1 is inf"),
])
def test_a_non_finite_plain_number_is_refused_naming_the_loss_and_the_sample(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("loss", list(losses.LOSSES.values()))
def test_an_int_too_large_for_a_float_is_refused_naming_the_loss_and_the_sample(loss):
    # a target or prediction of 10**400 raised a bare OverflowError from inside float()
    sample = (lambda x: [x, 0.0]) if loss is losses.cross_entropy else (lambda x: x)
    with pytest.raises(ValueError, match=f"{loss.__name__}: targets contain NaN or infinity: target 1 is "
                                         r"an int of about 401 digits \(too large for a float\)"):
        loss([sample(Value(0.5)), sample(Value(0.5))], [1, 10 ** 400])
    with pytest.raises(ValueError, match=f"{loss.__name__}: predictions contain NaN or infinity: prediction 0 is "
                                         ".*an int of about 401 digits"):
        loss([sample(-10 ** 400)], [1])


@pytest.mark.parametrize("call, message", [
    (lambda: losses.softmax(3), r"softmax: logits \(one sample's\) must be a sequence, got int 3"),
    (lambda: losses.softmax(Value(1.0)), r"softmax: logits \(one sample's\) must be a sequence, got Value"),
    (lambda: losses.cross_entropy(Value(1.0), [0]), "cross_entropy: predictions must be a sequence, got Value"),
    (lambda: losses.mse(None, [0]), "mse: predictions must be a sequence, got NoneType None"),
    # a 0-d array raised "iteration over a 0-d array", naming nothing
    (lambda: losses.softmax(np.array(3.0)), r"softmax: logits \(one sample's\) must be a sequence, got ndarray"),
    (lambda: losses.cross_entropy(np.array(3.0), 0), "cross_entropy: predictions must be a sequence, got ndarray"),
])
def test_predictions_that_are_not_a_sequence_are_refused_naming_the_function(call, message):
    # these raised Python's own "'int' object is not iterable", naming nothing
    with pytest.raises(TypeError, match=message):
        call()


def test_a_0d_array_is_one_prediction_or_target_as_a_number_is():
    # mse(np.array(3.0), 1.0) raised a bare "iteration over a 0-d array", and a 0-d target was refused
    # as no number; torch takes 0-d tensors as one value
    assert losses.mse(np.array(3.0), np.array(1.0)).data == losses.mse(3.0, 1.0).data == 4.0
    assert losses.hinge([Value(0.5)], np.array(1)).data == losses.hinge([Value(0.5)], 1).data == 0.5


def test_a_set_or_dict_is_refused_as_it_pairs_predictions_with_targets_in_no_fixed_order():
    # mse(set(ps), ts) paired each prediction with an arbitrary target (7.0 here, not 0), and a
    # set of logits gave softmax's probabilities in an arbitrary order: torch takes tensors only
    ps = [Value(float(i)) for i in range(6)]
    with pytest.raises(TypeError, match=r"mse: predictions must be a sequence in order \(a list\), got set, "
                                        "whose order is arbitrary"):
        losses.mse(set(ps), range(6))
    with pytest.raises(TypeError, match=r"hinge: targets must be a sequence in order \(a list\), got frozenset"):
        losses.hinge(ps[:2], frozenset({1.0, -1.0}))
    with pytest.raises(TypeError, match=r"softmax: logits \(one sample's\) must be a sequence in order"):
        losses.softmax({Value(3.0), Value(1.0), Value(2.0)})
    with pytest.raises(TypeError, match="cross_entropy: predictions must be a sequence in order .* got dict"):
        losses.cross_entropy({Value(1.0): 0, Value(2.0): 1}, 0)


def test_targets_given_as_a_generator_are_read_as_the_predictions_are():
    # a generator was taken for one target: "got 2 predictions but 1 targets"
    ps = [Value(1.0), Value(-2.0)]
    assert losses.mse(ps, (t for t in [0.0, 1.0])).data == losses.mse(ps, [0.0, 1.0]).data == 5.0
    assert losses.mse((p for p in ps), iter([0.0, 1.0])).data == 5.0
    assert losses.cross_entropy([[Value(1.0), Value(2.0)]], (t for t in [1])).data == pytest.approx(math.log1p(math.exp(-1)))


@pytest.mark.parametrize("targets, shown", [([1, True], "bool True at target 1"), ([0, 1.0], "float 1.0 at target 1"),
                                            (np.array([0.0, 2.0]), "float 0.0 at target 0"),
                                            (np.array([False, True]), "bool False at target 0")])
def test_cross_entropy_refuses_bools_and_floats_as_class_indices_as_torch_does(targets, shown):
    # True was read as class 1 and 1.0 as class 1; torch's F.cross_entropy needs an integer dtype
    logits = [[Value(0.0), Value(1.0), Value(2.0)]] * 2
    with pytest.raises(TypeError, match=rf"^cross_entropy: targets must be class indices \(ints\), got {shown}"):
        losses.cross_entropy(logits, targets)
    ok = losses.cross_entropy(logits, np.array([0, 2])).data  # numpy ints stay accepted
    assert ok == losses.cross_entropy(logits, [np.int64(0), 2]).data == losses.cross_entropy(logits, [0, 2]).data


@pytest.mark.parametrize("targets", [np.eye(3)[[0, 2]], [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]])
def test_cross_entropy_says_one_hot_or_probability_targets_are_not_supported(targets):
    # was: "cross_entropy: got 2 predictions but 6 targets"
    with pytest.raises(ValueError, match=r"^cross_entropy: targets must be class indices, one per sample \(one-hot "
                                         r"or probability targets are not supported.*argmax.*\), got 6 targets "
                                         r"for 2 predictions"):
        losses.cross_entropy([[Value(0.0), Value(1.0), Value(2.0)]] * 2, targets)


# (loss, predictions given flat, how to regroup them, targets, torch's loss on (F, predictions, targets)):
# ordinary points and the edges: hinge with a margin of exactly 1 (relu's kink, where torch's
# gradient is 0), tied and far-apart logits, soft targets, saturated logits and probabilities near 0 and 1.
FLAT_CASES = [
    ("mse", losses.mse, [0.3, -1.2, 2.0], None, [0.0, 1.0, -1.0], lambda F, p, t: F.mse_loss(p, t)),
    ("hinge", losses.hinge, [0.3, -1.2, 2.0], None, [1.0, -1.0, 1.0], lambda F, p, t: F.relu(1 - t * p).mean()),
    ("hinge-margin-1", losses.hinge, [1.0, -1.0, 0.5], None, [1.0, -1.0, -1.0], lambda F, p, t: F.relu(1 - t * p).mean()),
    ("bce", losses.binary_cross_entropy, [0.3, 0.9, 0.5], None, [0.0, 1.0, 0.25],
     lambda F, p, t: F.binary_cross_entropy(p, t)),
    ("bce-near-0-and-1", losses.binary_cross_entropy, [1e-6, 1 - 2 ** -20, 1e-5], None, [1.0, 0.0, 0.3],
     lambda F, p, t: F.binary_cross_entropy(p, t)),
    # log(1 - p) lost p's digits: 8e-8 of the loss off at p = 1e-10 (torch's is -log1p(-p))
    ("bce-tiny-with-target-0", losses.binary_cross_entropy, [1e-10, 2e-11, 3e-9], None, [0.0, 0.0, 0.0],
     lambda F, p, t: F.binary_cross_entropy(p, t)),
    ("bce-logits", losses.binary_cross_entropy_with_logits, [0.3, -1.2, 2.0], None, [0.0, 1.0, 0.7],
     lambda F, p, t: F.binary_cross_entropy_with_logits(p, t)),
    ("bce-logits-saturated", losses.binary_cross_entropy_with_logits, [40.0, -40.0, 0.0], None, [0.0, 1.0, 1.0],
     lambda F, p, t: F.binary_cross_entropy_with_logits(p, t)),
    ("cross-entropy", losses.cross_entropy, [0.3, -1.2, 2.0, 0.5, 0.5, -0.1], 3, [2, 0],
     lambda F, p, t: F.cross_entropy(p.reshape(-1, 3), t)),
    ("cross-entropy-tie", losses.cross_entropy, [1.0, 1.0, 1.0, 0.0, 0.0, 5.0], 3, [1, 2],
     lambda F, p, t: F.cross_entropy(p.reshape(-1, 3), t)),
    ("cross-entropy-far-apart", losses.cross_entropy, [500.0, -500.0, 0.0, -30.0, 30.0, 29.0], 3, [1, 2],
     lambda F, p, t: F.cross_entropy(p.reshape(-1, 3), t)),
    # logsumexp(z) - z[t] lost every digit here: 0.0 and gradients (0, 1, 0) for the first sample
    ("cross-entropy-huge", losses.cross_entropy, [1e16, 1e16, 0.0, -3e16, 2e15, -3e16 + 4.0, 1.5e13, 1.5e13 + 0.75,
                                                  -2.0, 0.0, -1e300, 1e300], 3, [0, 2, 1, 2],
     lambda F, p, t: F.cross_entropy(p.reshape(-1, 3), t)),
]
FLAT_IDS = [c[0] for c in FLAT_CASES]


def _flat_loss(loss, width, targets):
    def f(*ps):
        preds = list(ps) if width is None else [list(ps[i:i + width]) for i in range(0, len(ps), width)]
        return loss(preds, targets)
    return f


@pytest.mark.parametrize("name, loss, xs, width, targets, torch_loss", FLAT_CASES, ids=FLAT_IDS)
def test_each_losss_gradient_in_its_predictions_matches_torch_float64(name, loss, xs, width, targets, torch_loss):
    torch = pytest.importorskip("torch")
    out, grads = analytic_grads(_flat_loss(loss, width, targets), xs)
    p = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(targets, dtype=torch.long if width else torch.float64)
    ref = torch_loss(torch.nn.functional, p, t)
    ref.backward()
    assert out == pytest.approx(ref.item(), rel=1e-12, abs=0)  # (approx's default abs=1e-12 passed any tiny loss)
    assert grads == pytest.approx(p.grad.tolist(), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("name, loss, xs, width, targets, torch_loss",
                         [c for c in FLAT_CASES if c[0] not in ("hinge-margin-1", "cross-entropy-huge")],
                         ids=[i for i in FLAT_IDS if i not in ("hinge-margin-1", "cross-entropy-huge")])
def test_each_losss_gradient_in_its_predictions_matches_finite_differences(name, loss, xs, width, targets, torch_loss):
    f = _flat_loss(loss, width, targets)
    _, grads = analytic_grads(f, xs)
    assert grads == pytest.approx(_numeric_in_range(f, xs), rel=1e-6, abs=1e-8)


def test_cross_entropy_at_ordinary_logits_equals_logsumexp_minus_the_targets_logit():
    # the fused op gives what the two nodes gave, where they lose no precision
    rng = np.random.default_rng(0)
    for k in (2, 3, 7):
        z, t = rng.normal(scale=3.0, size=(5, k)).tolist(), rng.integers(k, size=5).tolist()
        ours = [[Value(x) for x in row] for row in z]
        old = [[Value(x) for x in row] for row in z]
        fused = losses.cross_entropy(ours, t)
        fused.backward()
        two_nodes = sum(mg.logsumexp(row) - row[ti] for row, ti in zip(old, t)) / len(t)
        two_nodes.backward()
        assert fused.data == pytest.approx(two_nodes.data, rel=1e-12)
        for a, b in zip(ours, old):
            assert [v.grad for v in a] == pytest.approx([v.grad for v in b], rel=1e-12, abs=1e-15)


def _numeric_in_range(f, xs):
    """Central differences with steps of 1e-6 of the input, shortened to stay inside (0, 1)."""
    out = []
    for i, x in enumerate(xs):
        h = min(1e-6 * max(1.0, abs(x)), 1e-3 * x if 0 < x < 1 else 1.0, 1e-3 * (1 - x) if 0 < x < 1 else 1.0)
        up, down = list(xs), list(xs)
        up[i], down[i] = x + h, x - h
        out.append((f(*map(Value, up)).data - f(*map(Value, down)).data) / (2 * h))
    return out


def test_binary_cross_entropy_is_exact_where_torchs_gradient_clamps_p_times_1_minus_p_at_1e_12():
    # torch's gradient divides by max(p(1 - p), 1e-12): at p = 1e-30, target 0 it gives 1e-18 for
    # d/dp -log(1 - p) = 1; ours is the derivative, checked against finite differences where
    # they resolve it (steps a fraction of the distance to 0 or 1, exact in floats)
    xs, targets = [1e-30, 1e-13, 1 - 2 ** -42], [0.0, 1.0, 0.0]
    f = _flat_loss(losses.binary_cross_entropy, None, targets)
    _, grads = analytic_grads(f, xs)
    exact = [(-t / p + (1 - t) / (1 - p)) / 3 for p, t in zip(xs, targets)]
    assert grads == pytest.approx(exact, rel=1e-12)
    for i, h in ((1, 1e-17), (2, 2 ** -52)):
        up, down = list(xs), list(xs)
        up[i], down[i] = xs[i] + h, xs[i] - h
        assert grads[i] == pytest.approx((f(*map(Value, up)).data - f(*map(Value, down)).data) / (2 * h), rel=1e-4)


def test_hinge_at_a_margin_of_exactly_one_takes_relus_zero_and_gradcheck_accepts_it():
    f = _flat_loss(losses.hinge, None, [1.0, -1.0])
    _, grads = analytic_grads(f, [1.0, -1.0])
    assert grads == [0.0, 0.0]  # torch's relu'(0) = 0, one of the one-sided slopes (0 and -1/2)
    assert mg.testing.gradcheck(f, [1.0, -1.0])


def test_softmax_gradient_matches_torch_and_finite_differences():
    torch = pytest.importorskip("torch")
    xs = [0.3, -1.2, 2.0, 2.0]
    f = lambda *zs: sum(p * (i + 1) for i, p in enumerate(losses.softmax(list(zs))))
    _, grads = analytic_grads(f, xs)
    t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    (torch.softmax(t, 0) * torch.arange(1.0, 5.0, dtype=torch.float64)).sum().backward()
    assert grads == pytest.approx(t.grad.tolist(), rel=1e-12)
    assert grads == pytest.approx(numeric_grads(f, xs), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("loss, targets, error, message", [
    (losses.mse, [math.nan, 1.0], ValueError, "targets contain NaN or infinity: target 0 is nan"),  # was nan
    (losses.mse, [0.0, math.inf], ValueError, "targets contain NaN or infinity: target 1 is inf"),  # was inf
    (losses.mse, ["a", 1.0], TypeError, "targets must be numbers, got str 'a' at target 0"),  # was numpy's error
    (5, [0, 1], TypeError, "loss must be a loss function or the name of one, got int 5"),  # was None
])
def test_decision_threshold_refuses_targets_and_losses_it_cannot_read(loss, targets, error, message):
    with pytest.raises(error, match=f"^decision_threshold: {re.escape(message)}"):
        losses.decision_threshold(loss, targets)
    assert losses.decision_threshold(losses.mse, [2.0, 4.0]) == 3.0 and losses.decision_threshold("mse", [[0], [1]]) == 0.5


@pytest.mark.parametrize("loss, predictions, targets", [
    (losses.mse, [0.3], [1.0]), (losses.mse, [0.3, 0.6], [1.0, 0.0]), (losses.hinge, [0.3, -2.0], [1, -1]),
    (losses.binary_cross_entropy, [0.3, 0.6], [1.0, 0.0]),
    (losses.binary_cross_entropy_with_logits, [0.3, 0.6], [1.0, 0.0]), (losses.cross_entropy, [[1.0, 2.0]], [1]),
], ids=lambda c: getattr(c, "__name__", None))
def test_a_loss_of_plain_numbers_requires_no_grad_as_torchs(loss, predictions, targets):
    # it was a Value that required grad: backward ran and changed nothing, where predictions read
    # as numbers (`model(x).data`) were a mistake torch's backward refuses
    out = loss(predictions, targets)
    assert type(out) is Value and not out.requires_grad
    with pytest.raises(RuntimeError, match="backward: this Value does not require grad"):
        out.backward()
    assert loss([[Value(x) for x in p] if type(p) is list else Value(p) for p in predictions], targets).requires_grad


@pytest.mark.parametrize("p, t, grad", [(1.0, 1, -1.0), (0.0, 0, 1.0), (1.0, 1.0, -1.0)])
def test_binary_cross_entropy_of_a_certain_right_prediction_is_zero(p, t, grad):
    # only the term whose weight is not 0 counts: log(1 - p) at p = 1 is not taken when t = 1
    # (torch clamps p(1 - p) at 1e-12 and gives a gradient of 0 there; this is the exact -t/p + (1 - t)/(1 - p))
    x = Value(p)
    loss = losses.binary_cross_entropy([x], [t])
    loss.backward()
    assert loss.data == 0.0 and x.grad == grad
