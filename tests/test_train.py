import json
import math
import sys
import types
from fractions import Fraction

import numpy as np
import pytest

import microgradnn as mg
from microgradnn import MLP, Value, data, optim


def test_moons_reaches_full_accuracy_with_hinge_loss():
    X, y = data.make_moons(100, noise=0.1, seed=0)
    model = MLP(2, [16, 16, 1], seed=1)
    history = mg.fit(model, X, y * 2 - 1, "hinge", optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                     epochs=80, verbose=False)
    assert history.accuracy[-1] == 1.0 and mg.accuracy(model, X, y) == 1.0
    assert history.loss[-1] < history.loss[0] and len(history.loss) == 80


def test_spiral_three_classes_with_cross_entropy_and_adam():
    X, y = data.make_spiral(60, classes=3, seed=0)
    model = MLP(2, [16, 16, 3], seed=1)
    history = mg.fit(model, X, y, mg.losses.cross_entropy, optim.Adam(model.parameters(), lr=0.05),
                     epochs=60, verbose=False)
    assert history.accuracy[-1] >= 0.95 and mg.accuracy(model, X, y) >= 0.95


def test_xor_solved_by_a_2_4_1_tanh_network():
    X, y = data.xor()
    model = MLP(2, [4, 1], "tanh", "sigmoid", seed=0)
    mg.fit(model, X, y, "binary_cross_entropy", "adam", epochs=150, lr=0.1, verbose=False)
    assert model.predict(X).tolist() == [0, 1, 1, 0]


def test_minibatches_scheduler_and_progress_line(capsys):
    X, y = data.make_blobs(30, centers=2, seed=0)
    model = MLP(2, [4, 2], seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=10)
    history = mg.fit(model, X, y, "cross_entropy", opt, epochs=10, batch_size=8, scheduler=sched)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("epoch  1/10  loss ") and err[-1].startswith("epoch 10/10")
    assert f"accuracy {history.accuracy[-1]:6.1%}" in err[-1]
    assert opt.lr == 0.0 and len(history.accuracy) == 10


def test_verbose_false_prints_nothing(capsys):
    X, y = data.xor()
    mg.fit(MLP(2, [2, 1], seed=0), X, y, "mse", "sgd", epochs=2, verbose=False)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("kwargs, message", [
    (dict(loss="l1"), "fit: loss must be one of mse, binary_cross_entropy, .*, got 'l1'"),
    (dict(optimizer="rmsprop"), "fit: optimizer must be one of sgd, adam, got 'rmsprop'"),
    (dict(loss="l" * 300), "^fit: loss must be one of mse, .*, got 'l{59}$"),  # cut, as every value shown
    (dict(loss="hinge"), r"hinge: targets must be -1 or \+1"),
    (dict(y=[1, -1, 1, 0], loss="hinge"), r"hinge: targets must be -1 or \+1, got \[0.0\]"),
    (dict(y=[0, 1, 1, 2], loss="binary_cross_entropy"), r"targets must lie in \[0.0, 1.0\], got 2.0"),
    (dict(X=np.array([[0.0, np.nan]] * 4)), "^fit: X contains NaN"),
    (dict(X=np.zeros((4, 3))), r"^fit: expected an array of shape \(n, 2\), got shape \(4, 3\)"),
    (dict(y=[0, 1]), "^fit: X has 4 rows but y has 2 labels$"),
    (dict(y=np.eye(4)[[0, 1, 1, 0]], loss="cross_entropy"),
     r"^fit: X has 4 rows but y has 16 labels \(y has shape \(4, 4\): for one-hot rows, pass the class indices"),
    (dict(epochs=0), "epochs must be a positive int"),
    (dict(X=np.zeros((0, 2)), y=[]), "^fit: X has no rows; it needs at least one sample"),
])
def test_fit_rejects_bad_input_before_training(kwargs, message):
    X, y = data.xor()
    model = MLP(2, [2, 1], seed=0)
    before = model.state_dict()
    args = dict(X=X, y=y, loss="mse", optimizer="sgd", epochs=3, verbose=False) | kwargs
    with pytest.raises(ValueError, match=message):
        mg.fit(model, **args)
    assert model.state_dict() == before


def test_accuracy_fit_and_train_are_right_when_every_label_is_one_class(tmp_path):
    # issue 15: the threshold came from the labels, (min + max) / 2, so one class scored 0%
    X = [[1.0, 0.0], [2.0, 1.0], [0.5, 0.5]]
    model = mg.MLP(2, [1], seed=0)
    model.layers[0].neurons[0].w[0].data, model.layers[0].neurons[0].w[1].data = 1.0, 0.0
    model.layers[0].neurons[0].b.data = 0.1
    assert mg.accuracy(model, X, [1, 1, 1]) == 1.0
    assert mg.accuracy(model, X, [0, 0, 0]) == 0.0
    assert mg.accuracy(model, [[-1.0, 0.0]], [-1]) == 1.0 and mg.accuracy(model, [[-1.0, 0.0]], [0]) == 1.0
    for loss in ("hinge", "mse", "binary_cross_entropy_with_logits"):
        history = mg.fit(mg.MLP(2, [1], seed=0), X, [1, 1, 1], loss, "sgd", 30, lr=0.1, verbose=False)
        assert history.accuracy[-1] == 1.0, loss


def test_accuracy_of_one_class_labelled_by_another_value_than_0_or_1():
    # mse on labels 2 and 5 (threshold 3.5): the samples labelled 5 alone scored 0%, as the one label
    # value was taken for class 0
    model = mg.MLP(2, [1], seed=0)
    model.threshold = 3.5
    X = [[4.0, 0.0], [5.0, 1.0]]
    neuron = model.layers[0].neurons[0]
    neuron.w[0].data, neuron.w[1].data, neuron.b.data = 1.0, 0.0, 0.0  # scores 4 and 5: class 1
    assert mg.accuracy(model, X, [5, 5]) == 1.0 and mg.accuracy(model, X, [2, 2]) == 0.0
    assert mg.accuracy(model, X, [1, 1]) == 1.0 and mg.accuracy(model, X, [2, 5]) == 0.5


@pytest.mark.parametrize("nout, loss, message", [
    (2, "mse", "mse needs one output per sample, but the model has 2 outputs"),
    (3, "hinge", "hinge needs one output per sample"),
    (1, "cross_entropy", "cross_entropy needs one output per class"),
    (2, lambda p, t: sum(p) - 1.0, r"the loss cannot take this model's outputs \(2 per sample\)")])
def test_fit_says_when_the_model_outputs_do_not_fit_the_loss(nout, loss, message):
    model = mg.MLP(2, [3, nout], seed=0)
    before = model.state_dict()
    with pytest.raises((ValueError, TypeError), match=message):
        mg.fit(model, [[0.0, 1.0], [1.0, 0.0]], [0, 1], loss, "sgd", 3, verbose=False)
    assert model.state_dict() == before


def test_a_diverging_fit_stops_with_a_short_message_and_a_learning_rate_hint():
    X, y = mg.data.make_moons(20, seed=0)
    model = mg.MLP(2, [16, 16, 1], "relu", seed=0)
    with pytest.raises((OverflowError, ValueError)) as info:
        mg.fit(model, X * 1e150, y, "mse", "sgd", 50, lr=1e150, verbose=False)
    text = str(info.value)
    assert len(text) < 400 and "diverged in epoch" in text and "learning rate (lr=1e+150)" in text, text
    assert all(math.isfinite(p.data) for p in model.parameters())


def test_a_first_step_that_fails_is_not_called_divergence_nor_blamed_on_the_learning_rate():
    # a linear output with binary_cross_entropy failed its first step "diverged in epoch 1 ... try a
    # smaller learning rate", which no learning rate fixes
    X, y = mg.data.make_moons(20, seed=0)
    model = mg.MLP(2, [4, 1], seed=0)
    before = model.state_dict()
    with pytest.raises(ValueError) as info:
        mg.fit(model, X, y, "binary_cross_entropy", "sgd", 5, lr=1e-6, verbose=False)
    text = str(info.value)
    assert text.startswith("fit: the first step failed, before any parameter changed") and "diverged" not in text
    assert "smaller learning rate" not in text and "the model's output is linear: give it a sigmoid output" in text
    assert model.state_dict() == before


def test_fit_on_regression_targets_reports_no_accuracy(capsys):
    # mse on a continuous target reported an "accuracy" (labels split at their midpoint) that means
    # nothing, where mg.accuracy refuses such labels
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = X[:, 0] * 3.0 - X[:, 1]
    model = mg.MLP(2, [8, 1], seed=0)
    history = mg.fit(model, X, y, "mse", "adam", 30, lr=0.02)
    assert history.accuracy == [] and len(history.loss) == 30 and history.loss[-1] < history.loss[0]
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("epoch 30/30  loss ") and "accuracy" not in last
    two = mg.fit(mg.MLP(2, [8, 1], seed=0), X, y > 0, "mse", "sgd", 2, verbose=False)
    assert len(two.accuracy) == 2  # two label values are classes


def _first_output_mse(predictions, targets):
    """A loss of one's own for a model of several outputs: mse of the first output."""
    terms = [(p[0] - t) ** 2 for p, t in zip(predictions, targets)]
    return sum(terms[1:], terms[0]) / len(terms)


@pytest.mark.parametrize("nout", [1, 3])
@pytest.mark.parametrize("labels", [[1, 1, 1], [5, 5, 5], [0.0, 1.0, 0.0], [-1, 2, -1], [-2, -2, -2],
                                    [0.5, 0.25, 0.5], [0, 1, 2], [0, 1, 2.5], [-1, 0, 1], [2.0, 0.0, 1.0]])
def test_fit_reports_an_accuracy_exactly_where_accuracy_takes_the_labels_as_classes(nout, labels):
    # fit decided "classes or regression targets" by a rule of its own: with 3 outputs it reported an
    # accuracy against labels like 5, -1 or 0.5, which mg.accuracy refuses as no class indices
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    model = MLP(2, [4, nout], seed=0)
    history = mg.fit(model, X, labels, "mse" if nout == 1 else _first_output_mse, "sgd", 1, lr=0.01,
                     verbose=False)
    try:
        mg.accuracy(model, X, labels)
        classes = True
    except ValueError:
        classes = False
    assert bool(history.accuracy) == classes


class ZMQInteractiveShell:
    """Stands in for a Jupyter kernel's shell: `_in_notebook` recognises it by its class name."""


def fake_ipython(monkeypatch):
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: ZMQInteractiveShell()
    monkeypatch.setitem(sys.modules, "IPython", module)


def test_in_a_notebook_progress_is_plain_stdout_without_tqdm(capsys, monkeypatch):
    fake_ipython(monkeypatch)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed: importing it raises ImportError
    X, y = mg.data.xor()
    clock = iter(range(10**6))  # a second per reading: every epoch is shown
    monkeypatch.setattr(mg.train.time, "perf_counter", lambda: float(next(clock)))
    mg.fit(MLP(2, [4, 1], "tanh", seed=0), X, y, "mse", "sgd", epochs=3)
    out, err = capsys.readouterr()
    assert err == "" and out.count("\r") == 3 and out.endswith("\n") and "epoch 3/3" in out


def test_in_a_notebook_progress_is_redrawn_at_most_every_tenth_of_a_second(capsys, monkeypatch):
    # each redraw is an output a notebook keeps (and its HTML export shows as a line): 2,000 quick
    # epochs showed 2,000 lines; now the first, those 0.1 s apart, and the last
    fake_ipython(monkeypatch)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    ticks = iter(range(10**6))  # 0.03 s per reading
    monkeypatch.setattr(mg.train.time, "perf_counter", lambda: 0.03 * next(ticks))
    X, y = mg.data.xor()
    mg.fit(MLP(2, [2, 1], "tanh", seed=0), X, y, "mse", "sgd", epochs=40)
    out, err = capsys.readouterr()
    shown = [int(part.split("/")[0].split()[-1]) for part in out.split("\r")[1:]]
    assert err == "" and shown[0] == 1 and shown[-1] == 40 and out.endswith("\n")
    assert 10 <= len(shown) <= 15 and all(b - a >= 3 for a, b in zip(shown[1:-2], shown[2:-1])), shown


def test_in_a_notebook_progress_is_tqdms_notebook_bar_when_installed(capsys, monkeypatch):
    fake_ipython(monkeypatch)
    bars = []

    class Bar:
        def __init__(self, total, unit, desc):
            self.total, self.n, self.postfix, self.closed = total, 0, None, False
            bars.append(self)

        def set_postfix(self, refresh, **fields):
            self.postfix = fields

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = Bar
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    monkeypatch.setitem(sys.modules, "ipywidgets", types.ModuleType("ipywidgets"))
    X, y = mg.data.xor()
    history = mg.fit(MLP(2, [4, 1], "tanh", seed=0), X, y, "mse", "sgd", epochs=4)
    (bar,) = bars
    assert (bar.total, bar.n, bar.closed) == (4, 4, True)
    assert bar.postfix == {"loss": f"{history.loss[-1]:.4f}", "accuracy": f"{history.accuracy[-1]:.1%}"}
    assert capsys.readouterr() == ("", "")
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # tqdm without widgets would write to stderr
    mg.fit(MLP(2, [4, 1], "tanh", seed=0), X, y, "mse", "sgd", epochs=2)
    out, err = capsys.readouterr()
    assert len(bars) == 1 and err == "" and "epoch 2/2" in out


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=True), "fit: epochs must be a positive int, got bool True"),
    (dict(batch_size=True), "fit: batch_size must be a positive int, got bool True"),
    (dict(epochs=2.0), "fit: epochs must be a positive int, got float 2.0"),
])
def test_fit_rejects_wrong_types_with_type_error(kwargs, message):
    X, y = data.xor()
    args = dict(X=X, y=y, loss="mse", optimizer="sgd", epochs=3, verbose=False) | kwargs
    with pytest.raises(TypeError, match=message):
        mg.fit(MLP(2, [2, 1], seed=0), **args)


@pytest.mark.parametrize("loss, labels, out_act, threshold", [
    ("mse", "01", "linear", 0.5), ("mse", "pm", "linear", 0.0), ("hinge", "pm", "linear", 0.0),
    ("binary_cross_entropy", "01", "sigmoid", 0.5), ("binary_cross_entropy_with_logits", "01", "linear", 0.0),
])
def test_fit_accuracy_predict_and_plots_share_one_threshold(loss, labels, out_act, threshold):
    X, y = data.make_moons(60, noise=0.3, seed=0)
    t = y if labels == "01" else y * 2 - 1
    model = MLP(2, [4, 1], "tanh", out_act, seed=0)
    history = mg.fit(model, X, t, loss, "sgd", epochs=5, lr=0.05, verbose=False)
    assert model.threshold == threshold
    # The last epoch's accuracy is measured on the forward passes before the last step: with
    # the step undone (lr 0), fit, accuracy and predict see the same scores and must agree.
    again = mg.fit(model, X, t, loss, optim.SGD(model.parameters(), lr=0.0), epochs=1, verbose=False)
    acc = mg.accuracy(model, X, t)
    assert again.accuracy[-1] == acc
    assert acc == (model.predict(X) == (t > threshold if labels == "pm" else t)).mean()
    assert 0.0 < acc < 1.0 and len(history.accuracy) == 5


def test_the_threshold_fit_chose_is_saved_with_the_model(tmp_path):
    X, y = data.make_moons(20, seed=0)
    model = MLP(2, [3, 1], seed=0)
    mg.fit(model, X, y, "mse", "sgd", epochs=1, verbose=False)
    model.save(tmp_path / "m.json")
    assert mg.Module.from_file(tmp_path / "m.json").threshold == 0.5
    assert MLP(2, [3, 1], seed=0).load(tmp_path / "m.json").threshold == 0.5
    assert MLP(2, [3, 1], seed=0).threshold == 0.0


def test_compiled_fit_refuses_a_loss_that_is_not_a_per_sample_mean():
    X, y = data.make_moons(20, noise=0.1, seed=0)
    sum_mse = lambda preds, t: sum((p - ti) ** 2 for p, ti in zip(preds, t))  # noqa: E731
    model = MLP(2, [4, 1], seed=0)
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"compiled=True needs a loss that is the mean of per-sample losses.*"
                                         r"first 3 samples.*use compiled=False"):
        mg.fit(model, X, y, sum_mse, "sgd", 2, lr=0.01, verbose=False, compiled=True)
    assert model.state_dict() == before
    mean_mse = lambda preds, t: sum_mse(preds, t) / len(preds)  # noqa: E731
    histories = [mg.fit(MLP(2, [4, 1], seed=0), X, y, mean_mse, "sgd", 2, lr=0.01, verbose=False, compiled=c)
                 for c in (False, True)]
    assert histories[1].loss == pytest.approx(histories[0].loss, rel=1e-12)


@pytest.mark.parametrize("make, error, message", [
    (lambda m: dict(optimizer=optim.SGD(MLP(2, [2, 1], seed=1).parameters(), lr=0.5)), ValueError,
     "the optimizer holds none of the model's parameters"),
    (lambda m: dict(optimizer=5), TypeError, "fit: optimizer must be an Optimizer or one of sgd, adam, got int 5"),
    (lambda m: dict(scheduler=5, optimizer=optim.SGD(m.parameters(), lr=0.1)), TypeError,
     "fit: scheduler must be a scheduler such as optim.LinearLR .* got int 5"),
    (lambda m: dict(scheduler=optim.LinearLR(optim.SGD(m.parameters(), lr=0.1)),
                    optimizer=optim.SGD(m.parameters(), lr=0.1)), ValueError,
     "the scheduler was built on another optimizer"),
    (lambda m: dict(scheduler=optim.LinearLR(optim.SGD(m.parameters(), lr=0.1)), optimizer="sgd"), ValueError,
     "a scheduler needs the optimizer it schedules, but optimizer is the name 'sgd'"),
    (lambda m: dict(optimizer=optim.SGD(m.parameters(), lr=0.1), lr=0.5), ValueError,
     r"fit: lr builds an optimizer given by name, but this optimizer has its own lr \(0.1\), so lr=0.5 would "
     r"be ignored; set the lr when building the optimizer"),
    (lambda m: dict(seed="abc"), TypeError,
     "fit: seed must be an int >= 0, a numpy Generator or RandomState, or None, got str 'abc'"),
    (lambda m: dict(seed=-1), ValueError, "fit: seed must be an int >= 0, got -1"),
])
def test_fit_refuses_a_mis_wired_optimizer_scheduler_or_seed_before_training(make, error, message):
    X, y = data.make_moons(20, seed=0)
    model = MLP(2, [2, 1], seed=0)
    before = model.state_dict(), model.threshold
    args = dict(loss="binary_cross_entropy_with_logits", optimizer="sgd", epochs=2, verbose=False) | make(model)
    with pytest.raises(error, match=message):
        mg.fit(model, X, y, **args)
    assert (model.state_dict(), model.threshold) == before
    mg.fit(model, X, y, "mse", optim.SGD(model.parameters()[:3], lr=0.1), 1, verbose=False)  # a subset is fine
    mg.fit(model, X, y, "mse", optim.SGD(model.parameters(), lr=0.1), 1, lr=0.1, verbose=False)  # the same lr


def test_a_fit_refused_before_its_first_step_leaves_the_class_threshold_as_it_was():
    # the threshold of the new loss was set before the first step, which then failed: predict and
    # accuracy changed (0 -> 0.5) though the error said no parameter had changed
    X, y = data.make_moons(40, noise=0.1, seed=0)
    model = MLP(2, [8, 1], seed=0)
    mg.fit(model, X, y * 2 - 1, "hinge", "sgd", 20, verbose=False)
    before = model.state_dict(), model.threshold, model.predict(X).tolist(), mg.accuracy(model, X, y)
    with pytest.raises(ValueError, match="fit: the first step failed, before any parameter changed"):
        mg.fit(model, X, y, "binary_cross_entropy", "sgd", 5, verbose=False)  # a linear output is no probability
    assert (model.state_dict(), model.threshold, model.predict(X).tolist(), mg.accuracy(model, X, y)) == before
    mg.fit(model, X, y, "mse", "sgd", 1, verbose=False)  # one that trains sets its loss's threshold
    assert model.threshold == 0.5


@pytest.mark.parametrize("compiled", [False, True])
def test_fit_refuses_a_model_whose_stepped_parameters_are_all_frozen(compiled):
    # it failed in the first backward with "backward: this Value does not require grad", naming neither fit
    # nor the frozen parameters
    X, y = data.make_moons(20, noise=0.1, seed=0)
    model = MLP(2, [4, 1], seed=0).requires_grad_(False)
    with pytest.raises(ValueError, match=r"^fit: the 17 parameters of the model the optimizer steps are all frozen "
                                         r"\(requires_grad=False\).*model.requires_grad_\(True\)"):
        mg.fit(model, X, y * 2 - 1, "hinge", "sgd", 2, verbose=False, compiled=compiled)
    model.layers[1].requires_grad_(True)  # some trainable: fine
    before = model.layers[0].state_dict()
    mg.fit(model, X, y * 2 - 1, "hinge", "sgd", 2, verbose=False, compiled=compiled)
    assert model.layers[0].state_dict() == before


@pytest.mark.parametrize("compiled", [False, True])
def test_fit_takes_a_loss_of_ones_own_written_with_value_methods(compiled):
    # fit's check of the labels called the loss on floats first: p.tanh() raised AttributeError
    # ('numpy.float64' object has no attribute 'tanh') though the loss works on the model's Values
    X, y = data.make_moons(20, noise=0.1, seed=0)

    def loss(preds, targets):
        return sum(((p - t) ** 2).tanh() for p, t in zip(preds, targets)) / len(preds)

    model = MLP(2, [4, 1], seed=0)
    expected = loss([model(x) for x in X], y).data
    history = mg.fit(model, X, y, loss, "sgd", 2, verbose=False, compiled=compiled)
    assert history.loss[0] == pytest.approx(expected, rel=1e-12) and history.loss[1] < history.loss[0]


@pytest.mark.parametrize("compiled", [False, True])
def test_fit_takes_a_loss_of_ones_own_that_made_up_outputs_would_fail(compiled):
    # the check of the labels ran the loss on outputs of 0.0: "ValueError: log(0.0): input must be > 0",
    # for a loss that the model's probabilities (a sigmoid output layer) never take there
    X, y = data.make_spiral(30, seed=0)

    def nll(preds, targets):
        return -sum(mg.log(p[int(t)]) for p, t in zip(preds, targets)) / len(preds)

    model = MLP(2, [4, 3], output_activation="sigmoid", seed=0)
    expected = nll([model(x) for x in X], y).data
    history = mg.fit(model, X, y, nll, "sgd", 2, verbose=False, compiled=compiled)
    assert history.loss[0] == pytest.approx(expected, rel=1e-12) and history.loss[1] < history.loss[0]


def test_fit_builds_a_named_optimizer_with_lr_or_its_default():
    X, y = data.make_moons(20, seed=0)
    models = [MLP(2, [2, 1], seed=0) for _ in range(3)]
    mg.fit(models[0], X, y, "mse", "sgd", 2, verbose=False)
    mg.fit(models[1], X, y, "mse", optim.SGD(models[1].parameters(), lr=0.05), 2, verbose=False)
    mg.fit(models[2], X, y, "mse", "sgd", 2, lr=0.05, verbose=False)
    assert models[0].state_dict() == models[1].state_dict() == models[2].state_dict()


@pytest.mark.parametrize("nout, labels, message", [
    (3, [7] * 20, "accuracy: labels must be class indices 0..2 for a model with 3 outputs, got 7"),
    (3, [0.5] * 20, "class indices 0..2 .* got 0.5"),
    (3, [-1] * 20, "class indices 0..2 .* got -1"),
    (3, [0, 1, 2, 3] * 5, "class indices 0..2 .* got 3"),  # one past the last class
    (1, [0, 1, 2, 3] * 5, r"a model with one output tells two classes apart, but y has 4 different labels \(0, 1, 2, ...\)"),
])
def test_accuracy_refuses_labels_that_are_not_classes_of_the_model(nout, labels, message):
    X, _ = data.make_moons(20, seed=0)
    with pytest.raises(ValueError, match=message):
        mg.accuracy(MLP(2, [nout], seed=0), X, labels)
    assert 0.0 <= mg.accuracy(MLP(2, [nout], seed=0), X, [0, 1] * 10) <= 1.0


def test_accuracy_names_itself_when_its_threshold_is_wrong():
    X, y = data.make_moons(20, seed=0)
    with pytest.raises(ValueError, match="accuracy: threshold must be a finite number, got nan"):
        mg.accuracy(MLP(2, [1], seed=0), X, y, threshold=float("nan"))


def test_accuracy_of_no_samples_is_an_error_not_nan():
    with pytest.raises(ValueError, match="^accuracy: X has no rows; it needs at least one sample"):
        mg.accuracy(MLP(2, [1], seed=0), np.zeros((0, 2)), [])


@pytest.mark.parametrize("labels, error, message", [
    (["cat", "dog"] * 2, TypeError, r"y must hold numbers \(class indices, or two values such as 0 and 1\), got str 'cat'"),
    (["0", "1", "1", "0"], TypeError, "y must hold numbers .* got str '0'"),  # X refuses "1" too
    ([0, None, 1, 0], TypeError, "y must hold numbers .* got NoneType None"),
    ([[0], [1, 1], 1, 0], ValueError, "y must be one label per row of X, got rows of different lengths"),
])
def test_fit_and_accuracy_name_labels_that_are_not_numbers(labels, error, message):
    X, _ = data.xor()
    model = MLP(2, [2, 1], seed=0)
    before = model.state_dict()
    with pytest.raises(error, match="^fit: " + message):
        mg.fit(model, X, labels, "mse", "sgd", 1, verbose=False)
    assert model.state_dict() == before
    with pytest.raises(error, match="^accuracy: " + message):
        mg.accuracy(model, X, labels)
    assert mg.accuracy(model, X, [False, True, True, False]) == mg.accuracy(model, X, [0, 1, 1, 0])  # bools are fine


def test_fit_with_cross_entropy_takes_whole_number_float_labels_as_class_indices():
    # cross_entropy refuses float targets (as torch's); fit reads labels as floats, so it hands the loss ints
    X, y = data.make_spiral(30, classes=3, seed=0)
    for labels in (y, y.astype(float), list(y.astype(float))):
        history = mg.fit(MLP(2, [8, 3], seed=0), X, labels, "cross_entropy", "adam", 3, verbose=False)
        assert len(history.loss) == 3
    with pytest.raises(ValueError, match=r"^fit: cross_entropy takes class indices: labels must be class indices "
                                         r"0..2 for a model with 3 outputs, got 0.5"):
        mg.fit(MLP(2, [8, 3], seed=0), X[:3], [0, 0.5, 1], "cross_entropy", "adam", 3, verbose=False)


@pytest.mark.parametrize("compiled", [False, True])
def test_fit_resumes_mini_batch_training_exactly_from_saved_files(tmp_path, compiled):
    # fit(seed=0) called again started the same shuffles over, so resuming by the docstring's
    # recipe silently trained on other batches than one call of 2N epochs; a Generator as seed
    # continues its stream, and its state saves as the rest does
    X, y = data.make_moons(40, noise=0.1, seed=0)

    def build():
        model = MLP(2, [4, 1], seed=1)
        opt = optim.Adam(model.parameters(), lr=0.05)
        return model, opt, optim.LinearLR(opt, total_iters=5)

    def train(model, opt, scheduler, epochs, rng):
        mg.fit(model, X, y, "binary_cross_entropy_with_logits", opt, epochs, 8, scheduler=scheduler, seed=rng,
               verbose=False, compiled=compiled)

    model, opt, scheduler = build()
    train(model, opt, scheduler, 6, 0)
    whole = model.state_dict()
    model, opt, scheduler = build()
    rng = np.random.default_rng(0)
    train(model, opt, scheduler, 3, rng)
    model.save(tmp_path / "model.json")
    (tmp_path / "rest.json").write_text(json.dumps([opt.state_dict(), scheduler.state_dict(), rng.bit_generator.state]))
    model, opt, scheduler = build()
    model.load(tmp_path / "model.json")
    opt_state, scheduler_state, rng_state = json.loads((tmp_path / "rest.json").read_text())
    opt.load_state_dict(opt_state)
    scheduler.load_state_dict(scheduler_state)
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    train(model, opt, scheduler, 3, rng)
    assert model.state_dict() == whole


def test_a_module_of_ones_own_without_output_activation_is_told_before_any_step():
    # fit read output_activation (for the class threshold) at the end of the first epoch, after
    # its steps had changed the parameters; with several outputs it is not needed at all (argmax)
    class Mine(mg.nn.Module):
        def __init__(self, nout: int) -> None:
            self.nin, self.nout = 2, nout
            self.fc = mg.nn.Linear(2, nout, seed=0)

        def forward(self, x):
            out = self.fc(x)
            return out if self.nout > 1 else out[0]

    X, y = data.make_moons(20, seed=0)
    one = Mine(1)
    before = [p.data for p in one.parameters()]
    with pytest.raises(AttributeError, match=r"^Mine has no 'output_activation': set self.output_activation"):
        mg.fit(one, X, y, lambda preds, t: mg.losses.mse(preds, t), "sgd", epochs=2, verbose=False)
    assert [p.data for p in one.parameters()] == before
    two = Mine(2)
    history = mg.fit(two, X, y, "cross_entropy", "sgd", epochs=2, verbose=False)
    assert len(history.accuracy) == 2 and mg.accuracy(two, X, y) == pytest.approx(history.accuracy[-1], abs=0.1)


def test_fit_takes_a_model_whose_forward_reorders_its_submodules():
    class Net(mg.nn.Module):  # the same parameters, listed in another order after each call
        def __init__(self):
            self.nin, self.nout, self.output_activation = 1, 1, "linear"
            self.blocks = [mg.nn.Linear(1, 1, seed=0), mg.nn.Linear(1, 1, seed=1)]

        def forward(self, x):
            self.blocks.reverse()  # e.g. alternating the direction: one more call brings the order back
            return self.blocks[1](self.blocks[0](x))[0]

    net = Net()
    params = set(net.parameters())
    history = mg.fit(net, np.zeros((3, 1)), np.zeros(3), "mse", "sgd", 2, verbose=False)
    assert len(history.loss) == 2 and set(net.parameters()) == params


def test_fit_refuses_a_model_whose_forward_makes_parameters_the_optimizer_does_not_know():
    class Net(mg.nn.Module):
        def __init__(self):
            self.nin, self.nout, self.output_activation = 2, 1, "linear"
            self.fc, self.seen = mg.nn.Linear(2, 1, seed=0), []

        def forward(self, x):
            self.seen.append(x[0])  # a sample's input leaf kept in a list: listed as a parameter
            return self.fc(x)[0]

    with pytest.raises(ValueError, match=r"fit: the model's parameters changed by the end of epoch 1 \(3 before, 7 now; "
                                         r"new: \['seen.0', 'seen.1', 'seen.2'\]\): its forward keeps Values"):
        mg.fit(Net(), np.zeros((4, 2)), np.zeros(4), "mse", "sgd", 2, verbose=False)

    class Later(Net):  # keeps one input, once, in the second epoch: told at the end (checked after the first and last)
        def forward(self, x):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 6:
                self.seen.append(x[0])
            return self.fc(x)[0]

    with pytest.raises(ValueError, match=r"fit: the model's parameters changed by the end of epoch 3 \(3 before, 4 now; "
                                         r"new: \['seen.0'\]\)"):
        mg.fit(Later(), np.zeros((4, 2)), np.zeros(4), "mse", "sgd", 3, verbose=False)

    class Swapped(Net):  # as many parameters, but one a new Value the optimizer does not step
        def forward(self, x):
            self.seen[:] = [x[0]] if self.seen else [mg.Value(0.0)]
            return self.fc(x)[0] + 0.0 * self.seen[0]

    swapped = Swapped()
    swapped.seen.append(mg.Value(0.0))
    with pytest.raises(ValueError, match=r"fit: the model's parameters changed by the end of epoch 1 \(4 before, 4 now; "
                                         r"new: \['seen.0'\]\)"):
        mg.fit(swapped, np.zeros((4, 2)), np.zeros(4), "mse", "sgd", 2, verbose=False)


@pytest.mark.parametrize("option", ["verbose", "compiled"])
def test_fit_takes_its_switches_as_bools_only(option, capsys):
    X, y = data.xor()
    model = MLP(2, [2, 1], seed=0)
    before = model.state_dict()
    for value in ("no", 0, 1, None):  # compiled="no" trained compiled, verbose="no" printed
        with pytest.raises(TypeError, match=f"^fit: {option} must be True or False, got {type(value).__name__}"):
            mg.fit(model, X, y, "mse", "sgd", 1, **{"verbose": False, option: value})
    assert model.state_dict() == before and capsys.readouterr().err == ""


def test_accuracy_refuses_a_threshold_a_model_of_several_outputs_would_ignore():
    X, y = data.make_moons(20, seed=0)
    model = MLP(2, [4, 3], seed=0)
    with pytest.raises(ValueError, match="^accuracy: threshold applies to a model with one output; this one has 3"):
        mg.accuracy(model, X, y, threshold=0.3)  # was the argmax's accuracy, the threshold silently unused
    with pytest.raises(TypeError, match="^accuracy: threshold must be a finite number, got str '0'"):
        mg.accuracy(model, X, y, threshold="0")
    assert mg.accuracy(model, X, y) == float((model.predict(X) == y).mean())


def test_fit_names_a_loss_of_ones_own_that_returns_no_value():
    X, y = data.xor()
    with pytest.raises(TypeError, match=r"^fit: the loss must return a Value \(the mean over the batch\), got float 1.0"):
        mg.fit(MLP(2, [2, 1], seed=0), X, y, lambda p, t: 1.0, "sgd", 1, verbose=False)  # was an AttributeError


def test_accuracy_names_a_label_too_large_for_a_float():
    X, _ = data.xor()
    with pytest.raises(ValueError, match=r"^accuracy: y must hold finite numbers, got an int of about 401 digits"):
        mg.accuracy(MLP(2, [2, 1], seed=0), X, [0, 1, 10 ** 400, 0])  # was OverflowError naming no one
    with pytest.raises(ValueError, match=r"^fit: y must hold finite numbers, got Fraction\(1000"):
        mg.fit(MLP(2, [2, 1], seed=0), X, [0, 1, Fraction(10 ** 400), 0], "mse", "sgd", 1)  # was a bare StopIteration


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("loss, activation", [("mse", "tanh"), ("hinge", "linear"),
                                              ("binary_cross_entropy_with_logits", "linear"),
                                              ("binary_cross_entropy", "sigmoid")])
def test_fit_trains_a_one_output_layer_or_linear_as_the_mlp_of_it(loss, activation, compiled):
    # was: a TypeError from the loss, which got lists of one Value where the MLP gives the Value
    X, y = data.make_moons(24, noise=0.1, seed=0)
    y = y * 2 - 1 if loss == "hinge" else y
    models = [mg.Layer(2, 1, activation, seed=3)]
    if activation == "linear":
        models.append(mg.nn.Linear(2, 1, seed=3))
    for model in models:
        params = model.parameters()
        w, b = [p.data for p in params[:2]], params[2].data
        mlp = MLP.from_layers([mg.Layer.from_weights([(w, b)], activation)])
        runs = [mg.fit(m, X, y, loss, "sgd", 4, batch_size=8, lr=0.1, verbose=False, compiled=compiled)
                for m in (model, mlp)]
        assert np.allclose(runs[0].loss, runs[1].loss, rtol=1e-12, atol=0) and runs[0].accuracy == runs[1].accuracy
        for p, q in zip(params, mlp.parameters(), strict=True):  # the last step's gradients and the weights after
            assert p.grad == pytest.approx(q.grad, rel=1e-12, abs=1e-15) and p.data == pytest.approx(q.data, rel=1e-12)
        assert model.threshold == mlp.threshold and (model.predict(X) == mlp.predict(X)).all()


@pytest.mark.parametrize("after_a_step", [False, True])
def test_fit_names_itself_when_a_loss_raises_an_error_that_takes_more_than_a_message(after_a_step):
    # rebuilt from the message alone, a JSONDecodeError (a ValueError) became "TypeError: JSONDecodeError.__init__()
    # missing 2 required positional arguments: 'doc' and 'pos'", and fit's own words were lost
    X, y = data.xor()
    model = MLP(2, [2, 1], seed=0)
    first = model.parameters()[0].data

    def loss(preds, targets):
        if isinstance(preds[0], Value) and (model.parameters()[0].data != first or not after_a_step):
            json.loads("{")
        return mg.losses.mse(preds, targets)
    said = "training diverged in epoch 2" if after_a_step else "the first step failed"
    with pytest.raises(ValueError, match=f"^fit: {said}.*Expecting property name"):
        mg.fit(model, X, y, loss, "sgd", 3, verbose=False)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("turn_off", [mg.no_grad, lambda: mg.set_grad_enabled(False)])
def test_fit_inside_no_grad_says_recording_is_off_before_any_work(compiled, turn_off, capsys):
    # backward's "the loss does not require grad (no Value it was computed from has
    # requires_grad=True)" blamed the parameters, which do
    X, y = mg.data.make_moons(20, noise=0.1, seed=0)
    model = MLP(2, [4, 1], seed=0)
    before = model.state_dict()
    with turn_off():
        with pytest.raises(RuntimeError, match=r"fit: graph recording is off here \(inside no_grad\(\), or after "
                                               r"set_grad_enabled\(False\)\).*call fit outside it, or inside "
                                               r"enable_grad\(\)"):
            mg.fit(model, X, y, "mse", "sgd", 2, compiled=compiled)
        with mg.enable_grad():
            mg.fit(model, X, y, "mse", "sgd", 1, verbose=False, compiled=compiled)
    assert model.state_dict() != before and mg.is_grad_enabled()
    assert capsys.readouterr().out == ""


def test_fit_refuses_a_scalar_step_too_large_for_memory_before_training(monkeypatch):
    # fit on 100,000 moons, full batch, ran 38 s and 2.3 GB into a MemoryError (the graph needs about 3 GB)
    X, y = mg.data.make_moons(40, seed=0)
    model = mg.MLP(2, [3, 1], seed=0)
    before = [p.data for p in model.parameters()]
    monkeypatch.setattr(mg.train, "MAX_STEP_BYTES", 30_000)  # 7 nodes and 25 edges a sample: 2,750 bytes
    with pytest.raises(ValueError, match=r"fit: a step over 40 samples builds a scalar graph of 280 nodes and "
                                         r"1,000 edges, about [0-9.]+ GB, more than MAX_STEP_BYTES=30,000; pass "
                                         r"compiled=True, or a batch_size of at most 10, or set "
                                         r"microgradnn\.train\.MAX_STEP_BYTES higher"):
        mg.fit(model, X, y, "mse", "sgd", 1, verbose=False)
    assert [p.data for p in model.parameters()] == before
    mg.fit(model, X, y, "mse", "sgd", 1, batch_size=10, verbose=False)
    mg.fit(model, X, y, "mse", "sgd", 1, compiled=True, verbose=False)
    assert [p.data for p in model.parameters()] != before


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("returned", [0.5, [0.5], None])
def test_fit_refuses_a_model_that_returns_no_value(compiled, returned):
    # was: compiled, a raw AttributeError ('float' object has no attribute '_depth'); scalar, backward's
    # "does not require grad", which did not say the model was the cause
    class Plain(mg.nn.Module):
        def __init__(self):
            self.nin, self.nout, self.output_activation = 2, 1, "linear"
            self.fc = mg.nn.Linear(2, 1, seed=0)

        def forward(self, x):
            return returned

    X, y = data.make_moons(8, seed=0)
    with pytest.raises(TypeError, match=r"^(compiled, sample 0: )?fit: the model must return a Value \(or a list of Values, one per "
                                        r"output\) computed from its parameters, got "):
        mg.fit(Plain(), X, 2 * y - 1, "hinge", "sgd", 2, verbose=False, compiled=compiled)
