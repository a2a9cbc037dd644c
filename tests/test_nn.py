import copy
import dataclasses
import errno
import functools
import inspect
import json
import os
import math
import stat
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import microgradnn as mg
from microgradnn import MLP, Layer, Neuron, Value
from conftest import numeric_param_grads


def relu(x): return max(0.0, x)
def sigmoid(x): return 1.0 / (1.0 + math.exp(-x))


def test_restaurant_neuron_gives_the_lessons_numbers():
    inputs, weights, bias = [0.9, 0.6, 0.2], [0.6, 0.3, 0.1], 0.1
    raw = Neuron.from_weights(weights, bias, "linear")(inputs)
    assert f"{raw.data:.3f}" == "0.840"
    assert f"{Neuron.from_weights(weights, bias, 'relu')(inputs).data:.3f}" == "0.840"
    assert f"{Neuron.from_weights(weights, bias, 'sigmoid')(inputs).data:.3f}" == "0.698"
    # and the same as the lesson's own plain-Python neuron
    lesson_raw = sum(x * w for x, w in zip(inputs, weights)) + bias
    assert raw.data == pytest.approx(lesson_raw, rel=1e-15)


def test_lessons_two_three_one_network_gives_its_prediction():
    hidden = Layer.from_weights([([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3), ([-0.6, 0.3], 0.5)], "relu")
    output = Layer.from_weights([([0.7, 0.4, -0.5], 0.2)], "sigmoid")
    pred = MLP.from_layers([hidden, output])([1.0, 0.5])
    line = f"Prediction: {pred.data:.4f}  ->  {'Yes' if pred.data >= 0.5 else 'No'} ({pred.data:.1%} confidence)"
    assert line == "Prediction: 0.6399  ->  Yes (64.0% confidence)"


def test_lessons_practice_challenge_relu_neuron():
    assert Neuron.from_weights([0.5, -1.0], 1.0, "relu")([2.0, 3.0]).data == 0.0


def test_single_neuron_classifier_exercise():
    # The lesson gives the weights and bias but not its three examples; these are ours.
    examples = [([1.0, 0.5], 1), ([0.2, 0.9], 0), ([0.6, 0.1], 1)]
    neuron = Neuron.from_weights([0.8, -0.5], 0.1, "sigmoid")
    for x, label in examples:
        pred = neuron(x).data
        lesson = sigmoid(sum(xi * wi for xi, wi in zip(x, [0.8, -0.5])) + 0.1)
        assert f"{pred:.4f}" == f"{lesson:.4f}"
        assert (round(pred) == label) is True
    assert f"{neuron([1.0, 0.5]).data:.4f}" == "0.6570"


def test_lessons_voting_panel_on_the_zero_to_ten_scale(lesson_neuron):
    # "0.6*9 + 0.3*6 + 0.1*2 = 7.4. The bias is a mood nudge - say +0.1": far above 0, a strong yes
    assert f"{Neuron.from_weights([0.6, 0.3, 0.1], 0.0, 'linear')([9, 6, 2]).data:.1f}" == "7.4"
    assert f"{Neuron.from_weights([0.6, 0.3, 0.1], 0.1, 'linear')([9, 6, 2]).data:.1f}" == "7.5"
    assert lesson_neuron([9, 6, 2]).data == pytest.approx(sigmoid(7.5), rel=1e-15) and sigmoid(7.5) > 0.999
    assert f"{lesson_neuron([0.9, 0.6, 0.2]).data:.3f}" == "0.698"


def test_lessons_fix_the_bug_and_fill_in_the_blank_challenges():
    # Challenge #2's bug leaves the bias out; challenge #3's neuron, filled in, is sigmoid(total + bias).
    inputs, weights, bias = [1.0, 0.5], [0.8, -0.5], 0.1

    def neuron(inputs, weights, bias):
        total = sum(x * w for x, w in zip(inputs, weights)) + bias
        return sigmoid(total)

    buggy = sigmoid(sum(x * w for x, w in zip(inputs, weights)))
    fixed = Neuron.from_weights(weights, bias, "sigmoid")(inputs).data
    assert fixed == pytest.approx(neuron(inputs, weights, bias), rel=1e-15)
    assert (f"{buggy:.4f}", f"{fixed:.4f}") == ("0.6341", "0.6570")
    assert Neuron.from_weights(weights, 0.0, "sigmoid")(inputs).data == pytest.approx(buggy, rel=1e-15)


def test_lessons_reorder_challenge_one_hidden_layer_network():
    # Challenge #4's lines in their order (1, 5, 4, 2, 3): 2 inputs -> 2 ReLU neurons -> 1 sigmoid output.
    hidden = [([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3)]
    output_ws, output_b = [0.7, 0.4], 0.2
    hidden_out = [relu(sum(x * w for x, w in zip([1.0, 0.5], ws)) + b) for ws, b in hidden]
    raw = sum(h * w for h, w in zip(hidden_out, output_ws)) + output_b
    net = MLP.from_layers([Layer.from_weights(hidden, "relu"), Layer.from_weights([(output_ws, output_b)], "sigmoid")])
    assert [round(h.data, 4) for h in net.layers[0]([1.0, 0.5])] == [0.4, 0.3]
    assert net([1.0, 0.5]).data == pytest.approx(sigmoid(raw), rel=1e-15)
    assert f"{net([1.0, 0.5]).data:.4f}" == f"{sigmoid(raw):.4f}" == "0.6457"


def test_parameter_count_names_and_repr():
    m = MLP(2, [16, 16, 1], seed=0)
    assert len(m.parameters()) == 337 == m.num_parameters()
    names = [n for n, _ in m.named_parameters()]
    assert names[:3] == ["layers.0.neurons.0.w.0", "layers.0.neurons.0.w.1", "layers.0.neurons.0.b"]
    assert names[-1] == "layers.2.neurons.0.b" and len(set(names)) == 337
    assert repr(m) == "MLP(2 -> 16 relu -> 16 relu -> 1 linear, 337 parameters)"
    assert repr(Layer(3, 2, "tanh", seed=0)) == "Layer(3 -> 2 tanh, 8 parameters)"
    assert repr(Neuron(3, seed=0)) == "Neuron(3 -> relu, 4 parameters)"


def test_same_seed_same_parameters_and_manual_seed():
    a, b, c = MLP(2, [4, 1], seed=3), MLP(2, [4, 1], seed=3), MLP(2, [4, 1], seed=4)
    assert a.state_dict() == b.state_dict() != c.state_dict()
    mg.manual_seed(7)
    d = MLP(2, [4, 1])
    mg.manual_seed(7)
    e = MLP(2, [4, 1])
    assert d.state_dict() == e.state_dict()



def test_a_fresh_process_builds_unseeded_modules_before_any_manual_seed():
    # (every other test's process has called manual_seed by then, which sets the shared generator)
    code = ("import microgradnn as mg; a, b = mg.MLP(2, [3]), mg.nn.Linear(2, 3); "
            "print(a.state_dict() != mg.MLP(2, [3]).state_dict(), len(b.parameters()))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(mg.__file__)),
                                                                    os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert (out.returncode, out.stdout) == (0, "True 9\n"), out.stderr

def test_from_config_draws_each_layer_afresh_not_the_same_numbers_again():
    config = MLP(2, [16, 16, 16, 1], seed=5).config()
    fresh = mg.nn.from_config(config)
    weights = [np.array([[w.data for w in n.w] for n in layer.neurons]) for layer in fresh.layers]
    assert not np.array_equal(weights[1], weights[2])  # two 16 x 16 layers: one seed each made them equal
    assert abs(np.corrcoef(weights[1].ravel(), weights[2].ravel())[0, 1]) < 0.5
    assert fresh.state_dict() == MLP(2, [16, 16, 16, 1], seed=0).state_dict()  # as a model built with seed 0


def test_initialisation_is_scaled_for_the_activation():
    relu_w = np.array([p.data for n, p in MLP(400, [400], "relu", "relu", seed=0).named_parameters() if ".w." in n])
    tanh_w = np.array([p.data for n, p in MLP(400, [400], "tanh", "tanh", seed=0).named_parameters() if ".w." in n])
    assert relu_w.std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)  # He
    assert tanh_w.std() == pytest.approx(math.sqrt(2 / 800), rel=0.02)  # Glorot
    assert np.abs(tanh_w).max() <= math.sqrt(6 / 800)
    assert relu_w.mean() == pytest.approx(0.0, abs=0.005) and tanh_w.mean() == pytest.approx(0.0, abs=0.005)


def test_calls_accept_lists_values_and_arrays_and_shape_outputs():
    m = MLP(2, [3, 2], seed=0)
    out = m(np.array([0.5, -1.0]))
    assert isinstance(out, list) and len(out) == 2
    assert [v.data for v in m([Value(0.5), -1.0])] == [v.data for v in out]
    assert isinstance(MLP(2, [3, 1], seed=0)([1, 2]), Value)
    assert isinstance(Layer(2, 1, seed=0)([1, 2]), list)
    one = MLP(2, [16, 1, 1], seed=0)  # a one-neuron hidden layer (micrograd's breaks)
    y = one([0.3, -0.2])
    y.backward()
    assert isinstance(y, Value) and one.num_parameters() == 48 + 17 + 2


def test_deepcopy_is_independent():
    m = MLP(2, [3, 1], seed=0)
    c = copy.deepcopy(m)
    c.layers[0].neurons[0].w[0].data += 1.0
    assert c([1.0, 1.0]).data != m([1.0, 1.0]).data
    assert [p.data for p in c.parameters()][1:] == [p.data for p in m.parameters()][1:]


def test_zero_grad_and_backward_reach_every_parameter():
    m = MLP(2, [4, 1], "tanh", seed=0)
    m([0.5, 0.3]).backward()
    assert all(p.grad != 0.0 for p in m.parameters())
    m.zero_grad()
    assert all(p.grad == 0.0 for p in m.parameters())


def test_fused_and_unfused_neurons_are_identical():
    x = [0.3, -1.2, 0.7]
    for act in mg.nn.ACTIVATIONS:
        fused = Layer(3, 4, act, seed=1)
        plain = Layer(3, 4, act, seed=1, fused=False)
        for f, p in zip(fused(x), plain(x)):
            assert f.data == p.data
            f.backward(), p.backward()
        assert [p.grad for p in fused.parameters()] == [p.grad for p in plain.parameters()]
    assert Neuron(3, seed=1, fused=False)(x).inputs[0].op == "+"
    assert Neuron(3, seed=1)(x).inputs[0].op == "dot"


@pytest.mark.parametrize("call, message", [
    (lambda: MLP(2, [3, 1], seed=0)([1.0, 2.0, 3.0]), "MLP: expected 2 inputs, got 3"),
    (lambda: Neuron(3, seed=0)(np.zeros((2, 3))), r"got shape \(2, 3\)"),
    (lambda: MLP(2, [3, 1], activation="gelu"), "MLP: activation must be one of relu, tanh, sigmoid, leaky_relu, linear, got 'gelu'"),
    (lambda: MLP(2, []), "non-empty list"),
    (lambda: MLP.from_layers([Layer(2, 3, seed=0), Layer(2, 1, seed=0)]), "layer 0 has 3 outputs but layer 1 expects 2"),
    (lambda: MLP.from_layers([]), "MLP.from_layers: needs a non-empty list of Layer objects"),
    (lambda: MLP.from_layers([Layer(2, 3, seed=0), Neuron(3, seed=0)]), "MLP.from_layers: needs a non-empty list of Layer"),
    (lambda: Neuron(2, seed=0)([1.0, float("inf")]), "finite numbers"),
])
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: Neuron(True), "Neuron: nin must be a positive int, got bool True"),
    (lambda: Layer(2, 2.0), "Layer: nout must be a positive int, got float 2.0"),
    (lambda: MLP(2, 3), "MLP: nouts must be a non-empty list of layer sizes, got int 3"),
    (lambda: MLP(2, [3, True]), "MLP: each layer size in nouts must be a positive int, got bool True"),
    (lambda: MLP(2, [3, 1], activation=None), "MLP: activation must be one of relu"),
    (lambda: Neuron(2, seed=0)("ab"), "Neuron: expected a list of numbers or Values, got str"),
])
def test_wrong_types_raise_type_error(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_save_then_load_gives_identical_predictions(tmp_path):
    X, _ = mg.data.make_moons(20, seed=0)
    m = MLP(2, [8, 8, 1], seed=0)
    path = tmp_path / "model.json"
    m.save(path)
    fresh = MLP(2, [8, 8, 1], seed=99).load(path)
    assert np.array_equal(fresh.decision_function(X), m.decision_function(X))
    rebuilt = mg.Module.from_file(path)
    assert repr(rebuilt) == repr(m) and rebuilt.state_dict() == m.state_dict()
    assert json.loads(path.read_text())["format"] == "microgradnn-model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # no temp file left behind


def test_save_refuses_to_overwrite_without_asking(tmp_path):
    path = tmp_path / "model.json"
    MLP(2, [2, 1], seed=0).save(path)
    before = path.read_text()
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        MLP(2, [2, 1], seed=1).save(path)
    assert path.read_text() == before
    MLP(2, [2, 1], seed=1).save(path, overwrite=True)
    assert path.read_text() != before


def test_save_never_leaves_a_half_written_file(tmp_path, monkeypatch):
    path = tmp_path / "model.json"
    MLP(2, [2, 1], seed=0).save(path)
    before = path.read_text()

    def broken_fsync(fd):
        raise OSError("disk full")
    monkeypatch.setattr(os, "fsync", broken_fsync)  # fails after the temporary file is written
    with pytest.raises(OSError, match="disk full"):
        MLP(2, [2, 1], seed=1).save(path, overwrite=True)
    assert path.read_text() == before and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("content, error, message", [
    (None, FileNotFoundError, "no such file"),
    ("{not json", ValueError, "invalid JSON"),
    ('{"hello": 1}', ValueError, "not a microgradnn model file"),
    ("ARCH", ValueError, r"holds MLP\(2 -> 4 relu -> 1 linear\), not this model's MLP\(2 -> 8 relu -> 1 linear\)"),
    ("TEXT", ValueError, r"holds MLP\(2 -> 8 relu -> 1 linear\) \(its nin is '2'\), not this model's MLP\(2 -> 8"),
    ("NAN", ValueError, "must be a finite number"),
    ("MISSING", ValueError, "missing \\['layers.1.neurons.0.b'\\]"),
])
def test_failed_load_raises_and_leaves_the_model_unchanged(tmp_path, content, error, message):
    path = tmp_path / "m.json"
    if content == "ARCH":
        MLP(2, [4, 1], seed=0).save(path)
    elif content in ("NAN", "MISSING", "TEXT"):
        MLP(2, [8, 1], seed=0).save(path)
        payload = json.loads(path.read_text())
        if content == "TEXT":  # a size as text: shown quoted, or the two models would read alike
            payload["config"]["nin"] = "2"
        elif content == "NAN":
            payload["state"]["layers.0.neurons.0.w.0"] = "nan"
        else:
            del payload["state"]["layers.1.neurons.0.b"]
        path.write_text(json.dumps(payload))
    elif content is not None:
        path.write_text(content)
    m = MLP(2, [8, 1], seed=5)
    before = m.state_dict()
    with pytest.raises(error, match=message):
        m.load(path)
    assert m.state_dict() == before


def test_named_modules_and_a_neurons_output_says_who_made_it():
    m = MLP(2, [3, 1], output_activation="tanh", seed=0)
    assert [n for n, _ in m.named_modules()][:3] == ["", "layers.0", "layers.0.neurons.0"]
    out = m([1.0, 2.0])
    assert out.origin == (m, m.layers[1].neurons[0])
    assert out.inputs[0].origin is None  # only what a neuron returns is tagged
    assert out.inputs[0].inputs[3].origin == (m, m.layers[0].neurons[0])  # dot(w0..w2, x0..x2, b)
    hidden = m.layers[0]([1.0, 2.0])
    assert hidden[2].origin == (m.layers[0], m.layers[0].neurons[2])
    assert (hidden[0] * 2).origin is None



def test_a_module_of_ones_own_finds_its_parameters_in_its_attributes_as_torchs():
    class Net(mg.nn.Module):
        def __init__(self):
            self.nin, self.nout, self.output_activation = 2, 1, "linear"
            self.fc1 = mg.nn.Linear(2, 2, seed=0)
            self.blocks = [mg.nn.Linear(2, 2, seed=1), mg.nn.Linear(2, 1, bias=False, seed=2)]
            self.scale = Value(2.0)

        def forward(self, x):
            h = [v.relu() for v in self.fc1(x)]
            return self.blocks[1](self.blocks[0](h))[0] * self.scale

    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names[:3] == ["scale", "fc1.weight.0.0", "fc1.weight.0.1"]  # its own first, as torch's
    assert "blocks.0.bias.1" in names and names[-2:] == ["blocks.1.weight.0.0", "blocks.1.weight.0.1"]
    assert len(net.parameters()) == 6 + 6 + 2 + 1 and list(net.state_dict()) == names
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "blocks.0", "blocks.1"]
    before = net.state_dict()
    mg.fit(net, [[1.0, 2.0], [-1.0, 0.5]], [1.0, 0.0], "mse", "sgd", 2, verbose=False)
    assert net.state_dict() != before  # (it trained: without the names, no parameter was found)


def test_a_frozen_leaf_value_is_listed_and_saved_as_torchs_frozen_parameter():
    class Net(mg.nn.Module):
        def __init__(self):
            self.nin = 1
            self.w, self.c = Value(0.5), Value(3.0, requires_grad=False)

        def forward(self, x):
            return self.w * x[0] + self.c

    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["w", "c"] and net.state_dict() == {"w": 0.5, "c": 3.0}
    net([2.0]).backward()
    mg.optim.SGD(net.parameters(), lr=0.1).step()
    assert net.c.data == 3.0 and net.w.data != 0.5  # the optimizer skips it, as torch's a frozen Parameter


def test_a_module_of_ones_own_lists_its_parameters_in_torchs_order():
    torch = pytest.importorskip("torch")

    class Ours(mg.nn.Module):
        def __init__(self):
            self.nin = 1
            self.fc = mg.nn.Linear(1, 1, seed=0)
            self.scale = Value(2.0)
            self.blocks = [mg.nn.Linear(1, 1, seed=1)]
            self.shift = Value(0.0)

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(1, 1)
            self.scale = torch.nn.Parameter(torch.ones(1))
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(1, 1)])
            self.shift = torch.nn.Parameter(torch.ones(1))

    def tensors(names):  # fc.weight.0.0 and fc.weight.0.1 are parts of one tensor, fc.weight
        return list(dict.fromkeys(n.split(".weight")[0] + ".weight" if ".weight" in n
                                  else n.split(".bias")[0] + ".bias" if ".bias" in n else n for n in names))

    ours, theirs = Ours(), Theirs()
    assert tensors(n for n, _ in ours.named_parameters()) == [n for n, _ in theirs.named_parameters()]
    assert tensors(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules() if n != "blocks"]


def test_a_module_of_ones_own_finds_the_modules_in_a_dict_as_torchs_moduledict():
    class Net(mg.nn.Module):
        def __init__(self):
            self.nin, self.nout, self.output_activation = 2, 1, "linear"
            self.heads = {"a": mg.nn.Linear(2, 1, seed=0), "b": mg.nn.Linear(2, 1, seed=1)}
            self.gains = [{"g": Value(1.5)}]

        def forward(self, x):
            return self.heads["a"](x)[0] * self.gains[0]["g"] + self.heads["b"](x)[0]

    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["heads.a.weight.0.0", "heads.a.weight.0.1", "heads.a.bias.0",
                     "heads.b.weight.0.0", "heads.b.weight.0.1", "heads.b.bias.0", "gains.0.g"]
    assert [n for n, _ in net.named_modules()] == ["", "heads.a", "heads.b"]
    before = net.state_dict()
    mg.fit(net, [[1.0, 2.0], [-1.0, 0.5]], [1.0, 0.0], "mse", "sgd", 2, verbose=False)
    assert all(net.state_dict()[n] != before[n] for n in ("heads.a.bias.0", "heads.b.bias.0", "gains.0.g"))


def test_a_module_of_ones_own_refuses_dict_keys_that_would_name_two_parameters_alike():
    class Net(mg.nn.Module):
        def __init__(self, table):
            self.nin = 1
            self.table = table

    for table in ({1: Value(1.0), "1": Value(2.0)}, {"a.b": Value(3.0), "a": {"b": Value(4.0)}}):
        # one was left out of parameters(), or a save and load set both to one number, silently
        with pytest.raises(ValueError, match=r"Net: two parameters or submodules would both be named 'table\.(1|a\.b)'"):
            Net(table).named_parameters()
        with pytest.raises(ValueError, match="both be named"):
            Net(table).state_dict()
    net = Net({0: Value(1.0), 1: [Value(2.0)], "x": "no Value"})  # other keys name them as str(key)
    assert [n for n, _ in net.named_parameters()] == ["table.0", "table.1.0"]


def test_a_module_of_ones_own_refuses_parameters_or_modules_held_in_a_set():
    # a set's Values were silently no parameters: never stepped, saved or loaded (lists, tuples
    # and dicts are searched; a set's order would give its parameters no stable names)
    class Net(mg.nn.Module):
        def __init__(self, held):
            self.nin, self.nout, self.output_activation = 1, 1, "linear"
            self.bias = Value(0.0)
            self.held = held

        def forward(self, x):
            return self.bias + x[0]

    for held, where in (({Value(1.0), Value(2.0)}, "held"), ([Value(1.0), {"w": frozenset({Value(2.0)})}], r"held\.1\.w"),
                        ({mg.nn.Linear(1, 1, seed=0)}, "held")):
        net = Net(held)
        for call in (net.parameters, net.state_dict, net.named_modules, lambda: mg.optim.SGD(net.parameters())):
            with pytest.raises(TypeError, match=rf"Net\.{where}: a set of Values or Modules is in no "
                                                "fixed order.*hold them in a list, a tuple or a dict"):
                list(call())
    assert [n for n, _ in Net({1.0, "a"}).named_parameters()] == ["bias"]  # a set of other things is no concern


def test_a_module_of_ones_own_lists_leaves_only_and_refuses_a_cycle():
    class Net(mg.nn.Module):
        def __init__(self, parent=None):
            self.nin, self.nout, self.output_activation = 1, 1, "linear"
            self.w, self.last = Value(0.5), None
            if parent is not None:
                self.parent = parent

        def forward(self, x):
            self.last = self.w * x[0]  # kept from the forward pass: a node, not a parameter
            return self.last

    net = Net()
    net([2.0])
    assert [n for n, _ in net.named_parameters()] == ["w"]
    mg.optim.SGD(net.parameters(), lr=0.1)  # (a listed node would be refused: not a leaf)
    inner = Net()
    outer = Net()
    outer.child, inner.parent = inner, outer
    with pytest.raises(ValueError, match=r"Net.parent is Net, a module this one is part of"):
        outer.parameters()


def test_values_a_forward_keeps_that_require_no_grad_are_plain_attributes_as_torchs_tensors():
    class Net(mg.nn.Module):
        def __init__(self, keep):
            self.nin, self.nout, self.output_activation = 2, 1, "linear"
            self.fc, self.keep = mg.nn.Linear(2, 1, seed=0), keep

        def forward(self, x):
            if self.keep == "inputs":
                self.last = x  # the sample's input leaves: after one call they were parameters
            elif self.keep == "detached":
                self.c = {"first": x[0].detach()}
            elif self.keep == "numbers":
                self.last = [v.data for v in x]
            self.h = self.fc(x)  # computed (a leaf under no_grad, as in predict): a plain attribute too
            return self.h[0]

    weights = ["fc.weight.0.0", "fc.weight.0.1", "fc.bias.0"]
    for keep in ("inputs", "detached", "numbers"):
        net = Net(keep)
        net([1.0, 2.0])
        net.predict(np.array([[1.0, 2.0]]))  # under no_grad, self.h holds a result without inputs
        assert [n for n, _ in net.named_parameters()] == weights and list(net.state_dict()) == weights, keep
        history = mg.fit(net, np.array([[1.0, 2.0], [0.0, 1.0]]), np.array([1.0, 0.0]), "mse", "sgd", 2,
                         verbose=False)
        assert len(history.loss) == 2
    net.extra = Value(1.0)  # set between calls, as in __init__: a parameter, as torch's Parameter set so
    assert "extra" in net.state_dict()
    net([1.0, 2.0])
    net.h = Value(2.0)  # set again outside a call: a parameter, as any leaf Value set so
    assert "h" in net.state_dict()


def test_a_module_made_or_a_parameter_made_while_another_runs_is_a_parameter_but_one_replaced_is_refused():
    class Scale(mg.nn.Module):
        def __init__(self, s):
            self.nin, self.s = 1, Value(s)

        def forward(self, x):
            return [x[0] * self.s]

    class Net(mg.nn.Module):
        def __init__(self, lazy):
            self.nin, self.nout, self.output_activation, self.lazy = 1, 1, "linear", lazy

        def forward(self, x):
            if not self.lazy:
                return Scale(2.0)(x)[0]  # a helper made and dropped in forward: its __init__ is no forward
            if not hasattr(self, "head"):
                self.head = Scale(3.0)  # a layer made at the first call, as a module made in __init__
            else:
                self.head.last = x  # a sample's inputs kept on it: plain attributes
            return self.head(x)[0]

    assert Net(False)([1.0]).data == 2.0
    net = Net(True)
    assert net([1.0]).data == 3.0 and net([1.0]).data == 3.0
    assert [n for n, _ in net.named_parameters()] == ["head.s"]

    class Fresh(mg.nn.Module):
        def __init__(self):
            self.nin, self.nout, self.output_activation = 1, 1, "linear"

        def forward(self, x):
            self.w = Value(0.5)  # a new parameter at every call: the optimizer would step the first one
            return x[0] * self.w

    fresh = Fresh()
    fresh([1.0])
    assert [n for n, _ in fresh.named_parameters()] == ["w"]
    with pytest.raises(ValueError, match=r"^Fresh\.w: a new Value set while a module runs, in place of a parameter, "
                                         r"would leave an optimizer built before stepping the old one"):
        fresh([1.0])


def test_which_attributes_are_plain_is_each_modules_own_after_a_copy_and_apart_from_a_subclasss_attributes():
    class Net(mg.nn.Module):
        def __init__(self):
            self.nin, self.nout, self.output_activation = 1, 1, "linear"
            self._plain, self.w = "a name of the user's own", Value(0.5)

        def forward(self, x):
            self.last = x  # the sample's inputs: a plain attribute
            return self.w * x[0]

    net = Net()
    net([1.0])
    twin = copy.copy(net)
    twin.last = Value(2.0)  # set outside a call: a parameter of the copy only
    assert [n for n, _ in twin.named_parameters()] == ["w", "last"]
    assert [n for n, _ in net.named_parameters()] == ["w"]
    other = copy.deepcopy(net)
    assert [n for n, _ in other.named_parameters()] == ["w"] and other._plain == "a name of the user's own"


def test_a_module_made_while_another_runs_keeps_the_frozen_parameters_its_init_sets():
    class Shift(mg.nn.Module):
        def __init__(self):
            self.nin, self.s = 1, Value(2.0)
            self._frozen()

        def _frozen(self):  # (set by a method __init__ calls)
            self.shift = Value(1.0, requires_grad=False)  # frozen: saved, as torch's frozen Parameter

        def forward(self, x):
            self.last = x  # the sample's inputs, set while it runs: plain
            return [x[0] * self.s + self.shift]

    class Net(mg.nn.Module):
        def __init__(self, lazy):
            self.nin, self.nout, self.output_activation = 1, 1, "linear"
            if not lazy:
                self.head = Shift()

        def forward(self, x):
            if not hasattr(self, "head"):
                self.head = Shift()  # a layer made at the first call, as one made in __init__
            return self.head(x)[0]

    for lazy in (False, True):
        net = Net(lazy)
        assert net([1.0]).data == 3.0 and net([1.0]).data == 3.0
        assert list(net.state_dict()) == ["head.s", "head.shift"], lazy


def test_a_parameter_replaced_while_a_module_runs_by_a_value_that_is_no_parameter_is_refused_not_dropped():
    class Net(mg.nn.Module):
        def __init__(self, how):
            self.nin, self.nout, self.output_activation, self.how = 1, 1, "linear", how
            self.w, self.mean = Value(0.5), Value(0.0, requires_grad=False)  # mean: a frozen parameter, saved

        def forward(self, x):
            if self.how == "frozen":  # a running mean kept as a new frozen Value: was dropped from state_dict
                self.mean = Value(0.9 * self.mean.data + 0.1 * x[0].data, requires_grad=False)
            elif self.how == "detached":
                self.w = self.w.detach()
            elif self.how == "computed":
                self.w = self.w * 1.0
            else:  # the same parameters set again: still parameters
                self.w, self.mean = self.w, self.mean
            return self.w * (x[0] - self.mean)

    for how in ("frozen", "detached", "computed"):
        net = Net(how)
        with pytest.raises(ValueError, match=r"^Net\.(mean|w): a new Value set while a module runs, in place of a "
                                             r"parameter.*would drop it from state_dict and save"):
            net([1.0])
        assert list(net.state_dict()) == ["w", "mean"], how
    net = Net("same")
    net([1.0])
    net.predict(np.array([[1.0]]))
    assert list(net.state_dict()) == ["w", "mean"]


def test_children_and_modules_list_each_submodule_once_in_torchs_order():
    torch = pytest.importorskip("torch")

    class Inner(mg.nn.Module):
        def __init__(self):
            self.nin, self.fc, self.gain = 1, mg.nn.Linear(1, 1, seed=0), Value(1.0)

    class Ours(mg.nn.Module):
        def __init__(self):
            self.nin = 1
            self.fc, self.inner = mg.nn.Linear(1, 1, seed=0), Inner()
            self.again = self.fc  # shared: listed once, under its first name

    class TheirInner(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.gain = torch.nn.Linear(1, 1), torch.nn.Parameter(torch.ones(1))

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.inner = torch.nn.Linear(1, 1), TheirInner()
            self.again = self.fc

    ours, theirs = Ours(), Theirs()
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()] == ["fc", "inner"]
    assert [type(m).__name__ for m in ours.children()] == ["Linear", "Inner"]
    assert [m for m in ours.children()] == [ours.fc, ours.inner]
    assert [type(m).__name__ for m in ours.modules()] == ["Ours", "Linear", "Inner", "Linear"]
    assert [type(m).__name__ for m in theirs.modules()] == ["Theirs", "Linear", "TheirInner", "Linear"]
    assert list(ours.modules()) == [m for _, m in ours.named_modules()]
    mlp = MLP(2, [3, 1], seed=0)  # a list's modules are children themselves: there is no ModuleList
    assert [n for n, _ in mlp.named_children()] == ["layers.0", "layers.1"] and next(mlp.children()) is mlp.layers[0]


def test_requires_grad_sets_every_parameters_flag_and_returns_the_module_as_torchs():
    torch = pytest.importorskip("torch")
    ours, theirs = mg.nn.Linear(2, 1, seed=0), torch.nn.Linear(2, 1)
    assert ours.requires_grad_(False) is ours and theirs.requires_grad_(False) is theirs
    assert not any(p.requires_grad for p in ours.parameters()) and not any(p.requires_grad for p in theirs.parameters())
    assert not ours([1.0, 2.0])[0].requires_grad  # nothing to differentiate, as torch's output of a frozen module
    before = ours.state_dict()  # and the optimizers skip its parameters
    mg.optim.SGD(ours.parameters(), lr=0.1).step()
    assert ours.state_dict() == before
    assert ours.requires_grad_() is ours and all(p.requires_grad for p in ours.parameters())
    for wrong in (1, "no", None):
        with pytest.raises(TypeError):
            theirs.requires_grad_(wrong)
        with pytest.raises(TypeError, match=f"Linear.requires_grad_: requires_grad must be True or False, got "
                                            f"{type(wrong).__name__}"):
            ours.requires_grad_(wrong)


def test_a_module_of_ones_own_without_nin_says_so():
    class Net(mg.nn.Module):
        def __init__(self):
            self.fc = mg.nn.Linear(2, 1, seed=0)

        def forward(self, x):
            return self.fc(x)[0]

    with pytest.raises(AttributeError, match=r"Net has no 'nin': set self.nin in __init__"):
        Net()([1.0, 2.0])
    with pytest.raises(AttributeError, match=r"Net has no 'nin'"):
        mg.fit(Net(), [[1.0, 2.0]], [1.0], "mse", "sgd", 1, verbose=False)
    with pytest.raises(AttributeError, match=r"'Net' object has no attribute 'other'"):
        _ = Net().other


def test_module_attribute_reads_stay_on_cpythons_fast_path():
    # A class with __getattr__ has every attribute read go through it (3x slower in CPython 3.11:
    # no specialization), and a forward pass reads self.w, self.b, ... for every neuron.
    assert not any("__getattr__" in vars(cls) for cls in type(MLP(2, [2, 1], seed=0)).__mro__)
    assert MLP(2, [2, 1], seed=0).nin == 2 and mg.nn.Linear(2, 3, seed=0).nout == 3


def test_named_modules_lists_a_shared_module_once_as_torchs():
    layer = Layer(2, 2, seed=0)
    m = MLP.from_layers([layer, layer])
    assert [n for n, _ in m.named_modules()] == ["", "layers.0", "layers.0.neurons.0", "layers.0.neurons.1"]
    assert [n for n, _ in m.named_modules(prefix="net")][:2] == ["net", "net.layers.0"]
    torch = pytest.importorskip("torch")
    shared = torch.nn.Linear(2, 2)
    assert [n for n, _ in torch.nn.Sequential(shared, shared).named_modules()] == ["", "0"]


def test_named_modules_takes_torchs_arguments_memo_prefix_and_remove_duplicate():
    torch = pytest.importorskip("torch")
    ours_layer, theirs_layer = Layer(2, 2, seed=0), torch.nn.Linear(2, 2)

    class Ours(mg.Module):
        def __init__(self):
            self.a, self.b = ours_layer, ours_layer

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = theirs_layer, theirs_layer

    ours, theirs = Ours(), Theirs()
    names = lambda pairs: [n for n, _ in pairs if ".neurons." not in n]  # noqa: E731  (torch's Linear has no neurons)
    for args, kwargs in [((), {}), ((None, "net"), {}), ((), {"prefix": "m", "remove_duplicate": False})]:
        assert names(ours.named_modules(*args, **kwargs)) == names(theirs.named_modules(*args, **kwargs))
    memo_ours, memo_theirs = {ours_layer}, {theirs_layer}  # modules already listed are left out, and memo grows
    assert names(ours.named_modules(memo_ours)) == names(theirs.named_modules(memo_theirs)) == [""]
    assert memo_ours == {ours_layer, ours} and len(memo_theirs) == 2
    with pytest.raises(TypeError, match=r"named_modules: prefix must be a str, got int 3"):
        list(ours.named_modules(None, 3))
    with pytest.raises(TypeError, match=r"named_modules: memo must be a set of modules or None, got str 'net'"):
        list(ours.named_modules("net"))  # an old call naming the prefix first is refused, not read as a memo

# ---- issue 15: saves that lose nothing, loads with bounded cost -------------------------------

def test_save_refuses_non_finite_parameters_and_keeps_the_good_checkpoint(tmp_path):
    path = tmp_path / "model.json"
    m = MLP(2, [2, 1], seed=0)
    m.save(path)
    before = path.read_text()
    m.layers[1].neurons[0].b._data = math.inf  # (setting .data refuses inf; a file must too)
    with pytest.raises(ValueError, match=r"parameter 'layers.1.neurons.0.b' is inf .*model.json was not written"):
        m.save(path, overwrite=True)
    assert path.read_text() == before and len(list(tmp_path.iterdir())) == 1


def test_save_counts_a_dangling_symlink_as_existing(tmp_path):
    link = tmp_path / "model.json"
    os.symlink(tmp_path / "nowhere", link)
    with pytest.raises(FileExistsError, match="already exists"):
        MLP(2, [2, 1], seed=0).save(link)
    assert os.path.islink(link) and not (tmp_path / "nowhere").exists()



def test_save_and_load_refuse_a_pipe_or_device_and_leave_it(tmp_path):
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    m = MLP(2, [2, 1], seed=0)
    for overwrite in (False, True):  # with overwrite, the pipe was replaced by a file (as root, /dev/null too)
        with pytest.raises(ValueError, match="pipe.json is not a regular file"):
            m.save(pipe, overwrite=overwrite)
        assert stat.S_ISFIFO(os.stat(pipe).st_mode) and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(ValueError, match="is not a regular file"):  # (/dev/zero was read until memory ran out,
        m.load(os.devnull)  # and a pipe's open() waited for a writer forever)
    m.save(tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text()
    for encoded in (b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16"), ("\n  " + text).encode("utf-32-le")):
        (tmp_path / "other.json").write_bytes(encoded)  # what JSON's reader takes is still taken
        assert mg.Module.from_file(tmp_path / "other.json").state_dict() == m.state_dict()
    (tmp_path / "other.json").write_bytes(b"\x00\x01" * 100_000)
    with pytest.raises(ValueError, match=r"other.json is not a microgradnn model file \(invalid JSON: it starts with b'\\x00"):
        m.load(tmp_path / "other.json")


def test_a_path_with_a_nul_character_is_refused_naming_the_path(tmp_path):
    # load said "not a microgradnn model file (invalid JSON: embedded null byte)"; save, a bare "embedded null byte"
    m, path = MLP(2, [2, 1], seed=0), str(tmp_path / "m\0.json")
    with pytest.raises(ValueError, match=r"save: path must not contain a NUL character \(\\0\), got '.*m\\x00.json'"):
        m.save(path)
    with pytest.raises(ValueError, match=r"load: path must not contain a NUL character"):
        m.load(path)
    assert list(tmp_path.iterdir()) == []


def test_save_with_overwrite_writes_through_a_symlink_as_open_does(tmp_path):
    (tmp_path / "runs").mkdir()
    target, link = tmp_path / "runs" / "model.json", tmp_path / "best.json"
    MLP(2, [2, 1], seed=0).save(target)
    os.symlink(target, link)
    newer = MLP(2, [2, 1], seed=1)
    newer.save(link, overwrite=True)  # replacing the link instead would leave runs/model.json stale
    assert os.path.islink(link) and mg.Module.from_file(target).state_dict() == newer.state_dict()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["best.json", "model.json", "runs"]
    os.symlink(tmp_path / "nowhere" / "m.json", tmp_path / "dangling.json")
    with pytest.raises(FileNotFoundError, match=r"dangling.json: folder .*nowhere does not exist"):
        newer.save(tmp_path / "dangling.json", overwrite=True)


def _lose_the_race(monkeypatch, path, winner: bytes):
    """Make save's destination check let another save write `winner` to `path` just after it; returns the real check."""
    import microgradnn.nn.files as files
    real_check = files.check_writable

    def check_then_lose_the_race(p, overwrite, who):
        checked = real_check(p, overwrite, who)
        path.write_bytes(winner)  # the other save lands between our check and our write
        return checked
    monkeypatch.setattr(files, "check_writable", check_then_lose_the_race)
    return real_check


def test_of_two_racing_saves_without_overwrite_only_one_succeeds(tmp_path, monkeypatch):
    path = tmp_path / "model.json"
    MLP(2, [3, 1], seed=7).save(path)
    winner = path.read_bytes()
    path.unlink()
    _lose_the_race(monkeypatch, path, winner)
    with pytest.raises(FileExistsError, match="already exists"):
        MLP(2, [2, 1], seed=0).save(path)
    monkeypatch.undo()
    assert mg.Module.from_file(path).config() == MLP(2, [3, 1]).config()  # the winner's file, intact
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_save_checks_the_destination_first_and_names_the_users_path(tmp_path, monkeypatch):
    m = MLP(2, [2, 1], seed=0)
    with pytest.raises(FileNotFoundError, match=r"cannot write .*missing.model.json: folder .*missing does not exist"):
        m.save(tmp_path / "missing" / "model.json")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        m.save(tmp_path, overwrite=True)

    def full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"save: cannot write .*model.json: No space left on device") as info:
        m.save(tmp_path / "model.json")
    assert ".tmp-" not in str(info.value) and list(tmp_path.iterdir()) == []


def test_save_reads_a_path_as_open_does_and_refuses_one_it_cannot_write_before_writing(tmp_path):
    # 'x/../m.json' (no folder x) and 'm.json/' passed the check, abspath dropping 'x/..' and the '/', and failed at
    # the write (after a CLI's training); with overwrite they wrote m.json, and 'link/../m.json' the file beside link
    m = MLP(2, [2, 1], seed=0)
    for overwrite in (False, True):
        with pytest.raises(FileNotFoundError, match=r"cannot write .*x/\.\./m.json: folder .*x/\.\. does not exist"):
            m.save(f"{tmp_path}/x/../m.json", overwrite=overwrite)
        with pytest.raises(ValueError, match=r"save: .*m.json/ names a folder \(it ends with '/'\); give a file name"):
            m.save(f"{tmp_path}/m.json/", overwrite=overwrite)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "runs" / "best").mkdir(parents=True)
    os.symlink(tmp_path / "runs" / "best", tmp_path / "link")
    for overwrite in (False, True):  # link/.. is runs, the folder link's target is in
        m.save(f"{tmp_path}/link/../m{overwrite}.json", overwrite=overwrite)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["best", "mFalse.json", "mTrue.json"]


def test_on_a_file_system_without_hard_links_save_still_neither_replaces_nor_leaves_half_a_file(tmp_path, monkeypatch):
    import microgradnn.nn.files as files

    def no_links(src, dst):  # FAT, some network shares
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(os, "link", no_links)
    path, m = tmp_path / "model.json", MLP(2, [3, 1], seed=7)
    m.save(path)
    assert mg.Module.from_file(path).state_dict() == m.state_dict() and list(tmp_path.iterdir()) == [path]
    winner = path.read_bytes()
    path.unlink()
    real_check = _lose_the_race(monkeypatch, path, winner)
    with pytest.raises(FileExistsError, match="model.json already exists; pass overwrite=True to replace it"):
        MLP(2, [2, 1], seed=0).save(path)
    assert path.read_bytes() == winner and list(tmp_path.iterdir()) == [path]
    monkeypatch.setattr(files, "check_writable", real_check)
    path.unlink()
    synced = []

    def full_at_the_copy(fd):
        synced.append(fd)
        if len(synced) == 2:  # the temporary file's went through; the copy's fails
            raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_at_the_copy)
    with pytest.raises(OSError, match=r"^save: cannot write .*model.json: No space left on device$"):
        m.save(path)
    assert list(tmp_path.iterdir()) == []  # neither the half copy nor the temporary file

    def denied(src, dst):  # any other error is the write's
        raise OSError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(os, "link", denied)
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    with pytest.raises(PermissionError, match=r"^save: cannot write .*model.json: Permission denied$"):
        m.save(path)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_file_name_longer_than_its_file_system_takes_before_writing(tmp_path):
    # (the write's own error came after the work, a CLI's training: "cannot write ...: File name too long")
    path, limit = tmp_path / ("m" * 300 + ".json"), os.pathconf(tmp_path, "PC_NAME_MAX")
    with pytest.raises(OSError, match=rf"^save: the file name is 305 bytes long, more than the {limit} its folder's file "
                                      rf"system takes; give a shorter name, got .{{60}}\.\.\. \({len(str(path))} "
                                      r"characters\)$") as info:
        MLP(2, [2, 1], seed=0).save(path)
    assert info.value.errno == errno.ENAMETOOLONG and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_what_changes_at_the_path_between_saves_check_and_its_write_is_refused_as_up_front(tmp_path, monkeypatch,
                                                                                           overwrite):
    import microgradnn.nn.files as files
    (tmp_path / "runs").mkdir()
    path, real_check, change = tmp_path / "runs" / "model.json", files.check_writable, []

    def check_then_change(p, overwrite, who):
        checked = real_check(p, overwrite, who)
        change[0]()
        return checked
    monkeypatch.setattr(files, "check_writable", check_then_change)
    m = MLP(2, [2, 1], seed=0)
    change[:] = [lambda: os.mkfifo(path)]  # with overwrite, the pipe was replaced by a file
    with pytest.raises(ValueError, match=r"^save: .*model.json is not a regular file"):
        m.save(path, overwrite=overwrite)
    assert stat.S_ISFIFO(os.stat(path).st_mode) and list((tmp_path / "runs").iterdir()) == [path]
    path.unlink()
    change[:] = [lambda: path.write_text("theirs")]  # another save's, kept whole
    if not overwrite:
        with pytest.raises(FileExistsError) as info:
            m.save(path, overwrite=overwrite)
        assert str(info.value) == f"save: {path} already exists; pass overwrite=True to replace it"
        assert path.read_text() == "theirs" and list((tmp_path / "runs").iterdir()) == [path]
    path.unlink(missing_ok=True)
    change[:] = [lambda: (tmp_path / "runs").rmdir()]  # the folder removed during the work
    with pytest.raises(FileNotFoundError) as info:
        m.save(path, overwrite=overwrite)
    assert str(info.value) == f"save: cannot write {path}: No such file or directory"



def test_save_and_load_refuse_a_path_of_another_type_naming_it(tmp_path):
    m = MLP(2, [2, 1], seed=0)
    for call in (lambda: m.save(3), lambda: m.load(None), lambda: mg.Module.from_file([str(tmp_path / "m.json")])):
        with pytest.raises(TypeError, match=r"^(save|load): path must be a str or os.PathLike, got (int 3|NoneType None|"
                                            r"list \[)"):
            call()


def test_a_tiny_file_claiming_a_huge_layer_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    path = tmp_path / "evil.json"
    path.write_text('{"format":"microgradnn-model","version":1,"config":{"type":"Layer","nin":3000,'
                    '"nout":3000,"activation":"relu"},"state":{}}\n')
    assert len(path.read_bytes()) == 123

    def no_building(*args, **kwargs):
        raise AssertionError("a model was built")
    monkeypatch.setattr(mg.nn.module, "from_config", no_building)
    monkeypatch.setattr(Layer, "__init__", no_building)
    with pytest.raises(ValueError, match=r"evil.json describes Layer\(nin=3000, nout=3000, activation=relu\) "
                                         r"with 9003000 parameters but holds 0"):
        mg.Module.from_file(path)
    with pytest.raises(ValueError, match=r"holds Layer\(nin=3000, nout=3000, activation=relu\), not this model's"):
        Neuron.from_weights([1.0], 0.0).load(path)


@pytest.mark.parametrize("text, message", [
    ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"format": "microgradnn-model", "config": {}, "state": {"a": ' + "9" * 5000 + "}}", "invalid JSON"),
    ('{"format":"microgradnn-model","config":{"type":"MLP","nin":2,"layers":[{"nout":1e400,"activation":"relu"}]},'
     '"state":{}}', "nout must be a positive int"),
    ('{"format":"microgradnn-model","config":{"type":"MLP","nin":2,"layers":7},"state":{}}', "layers must be"),
    ('{"format":"microgradnn-model","config":{"type":"Linear","nin":' + "9" * 4000 + ',"nout":' + "9" * 4000
     + ',"bias":true},"state":{}}', r"nin=\(an int of about 4001 digits\).* with \(an int of about 8001 digits\) "
                                  "parameters but holds 0"),
    ('{"format":"microgradnn-model","config":{"type":["MLP"],"nin":2,"layers":[]},"state":{}}',
     "unknown module type a JSON array; expected one of"),
    ('{"format":"microgradnn-model","config":{"type":{"a":1}},"state":{}}', "unknown module type a JSON object"),
    # was a message of 100,000 characters: the error showed the value whole
    ('{"format":"microgradnn-model","config":{"type":"Linear","nin":"' + "x" * 100_000 + '","nout":1,"bias":true},'
     '"state":{}}', r"not a valid model description: .* \(TypeError: Linear: nin must be a positive int, got str 'xxx"),
], ids=["deep", "huge-int", "float-size", "layers-not-list", "huge-size", "type-list", "type-object", "long-value"])
def test_hostile_model_files_get_one_clear_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        mg.Module.from_file(path)
    assert "bad.json" in str(info.value) and len(str(info.value)) < 400


def test_to_torch_and_back_is_exact():
    torch = pytest.importorskip("torch")
    for act in ("relu", "tanh", "sigmoid", "leaky_relu"):
        model = MLP(2, [5, 4, 3], act, "sigmoid", seed=0)
        seq = model.to_torch()
        X, _ = mg.data.make_moons(20, seed=0)
        assert seq(torch.tensor(X)).detach().numpy() == pytest.approx(model.decision_function(X), rel=1e-12)
        back = MLP.from_torch(seq)
        assert back.state_dict() == model.state_dict() and repr(back) == repr(model)
    with pytest.raises(ValueError, match="expected a Linear layer"):
        MLP.from_torch(torch.nn.Sequential(torch.nn.ReLU()))
    with pytest.raises(ValueError, match="slope must be 0.01"):
        MLP.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.LeakyReLU(0.2)))


def test_from_torch_refuses_what_it_cannot_read_exactly():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="from_torch: expected a torch.nn.Sequential, got Linear"):
        MLP.from_torch(torch.nn.Linear(2, 1))
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    seq[2].weight.data[0, 2] = float("nan")
    with pytest.raises(ValueError, match=r"nan in tensor '2.weight' at index \(0, 2\), layer 1 \(neuron 0\)"):
        MLP.from_torch(seq)
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    seq.register_buffer("scale", torch.ones(1))
    with pytest.raises(ValueError, match=r"tensors the model has no place for: \['scale'\]"):
        MLP.from_torch(seq)


def test_from_torch_reads_an_activation_module_used_twice_at_both_places():
    torch = pytest.importorskip("torch")
    act = torch.nn.ReLU()  # one instance after each Linear: named_children() lists it once
    seq = torch.nn.Sequential(torch.nn.Linear(3, 4, dtype=torch.float64), act,
                              torch.nn.Linear(4, 2, dtype=torch.float64), act)
    model = MLP.from_torch(seq)  # was MLP(3 -> 4 relu -> 2 linear): the last ReLU dropped
    assert repr(model) == "MLP(3 -> 4 relu -> 2 relu, 26 parameters)"
    X = np.random.default_rng(0).normal(size=(8, 3))
    assert model.decision_function(X) == pytest.approx(seq(torch.tensor(X)).detach().numpy(), abs=1e-12)


@pytest.mark.parametrize("activations", [("tanh", "tanh"), ("tanh", "linear")])
def test_a_shared_layer_stays_one_layer_through_torch_and_trains_as_one(activations):
    torch = pytest.importorskip("torch")
    shared = Layer(3, 3, activations[0], seed=0)
    model = MLP.from_layers([shared, shared if activations[1] == "tanh" else
                             Layer.from_weights([([w.data for w in n.w], n.b.data) for n in shared.neurons], "linear")])
    if activations[1] == "linear":  # the same Values after another activation
        for a, b in zip(model.layers[1].neurons, shared.neurons):
            a.w, a.b = b.w, b.b
    seq = model.to_torch()  # was two Linears: trained in torch, the copies drifted apart
    assert seq[0] is seq[2] and len(list(seq.parameters())) == 2
    X = np.random.default_rng(0).normal(size=(1, 3))
    seq(torch.tensor(X)).sum().backward()
    model.zero_grad()
    sum(model(X[0]), Value(0.0)).backward()
    assert [n.b.grad for n in shared.neurons] == pytest.approx(seq[0].bias.grad.tolist(), abs=1e-12)
    back = MLP.from_torch(seq)  # was refused: "no place for ['2.weight', '2.bias']"
    assert len(back.parameters()) == 12 and back.state_dict() == model.state_dict()
    assert repr(back) == repr(model)
    again = back.to_torch()
    assert again[0] is again[2]


def test_torch_conversions_keep_frozen_weights_frozen_and_refuse_what_a_tensor_cannot_say():
    torch = pytest.importorskip("torch")
    model = MLP(3, [4, 1], seed=0)
    model.layers[0].requires_grad_(False)
    seq = model.to_torch()  # was all trainable: torch's optimizer stepped the frozen layer
    assert [p.requires_grad for p in seq.parameters()] == [False, False, True, True]
    model.layers[1].neurons[0].b.requires_grad_(False)  # a bias alone frozen: its tensor alone
    assert [p.requires_grad for p in model.to_torch().parameters()] == [False, False, True, False]
    model.layers[1].neurons[0].b.requires_grad_(True)
    seq[2].bias.requires_grad_(False)
    back = MLP.from_torch(seq)
    assert [p.requires_grad for p in back.layers[0].parameters()] == [False] * 16
    assert [n.b.requires_grad for n in back.layers[1].neurons] == [False]
    assert all(w.requires_grad for w in back.layers[1].neurons[0].w)
    model.layers[0].requires_grad_(True).neurons[1].w[2].requires_grad_(False)
    with pytest.raises(ValueError, match=r"to_torch: layer 0's weight is partly frozen \(1 of 12 parameters"):
        model.to_torch()
    first_layer, second_layer = Layer(3, 3, "tanh", seed=0), Layer(3, 3, "tanh", seed=1)
    second_layer.neurons[0] = first_layer.neurons[0]  # part of a layer shared: no Linear can hold it
    with pytest.raises(ValueError, match="to_torch: a parameter is shared within a layer or between parts"):
        MLP.from_layers([first_layer, second_layer]).to_torch()
    first, second = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    second.weight = first.weight
    with pytest.raises(ValueError, match=r"from_torch: '0.weight' and '1.weight' are one tensor \(tied weights\)"):
        MLP.from_torch(torch.nn.Sequential(first, second))


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
def test_from_torch_names_the_layers_whose_shapes_do_not_chain_or_are_empty():
    torch = pytest.importorskip("torch")
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    with pytest.raises(ValueError, match=r"^from_torch: layer 1 \('2'\) takes 4 inputs but layer 0 gives 3 outputs"):
        MLP.from_torch(seq)  # was "MLP.from_layers: layer 0 has 3 outputs ...", a function the user never called
    for empty, shape in ((torch.nn.Linear(0, 3), r"\(3, 0\)"), (torch.nn.Linear(2, 0), r"\(0, 2\)")):
        with pytest.raises(ValueError, match=rf"^from_torch: layer 0 \('0'\) has weight shape {shape}, but a layer "
                                             "needs at least one input and one output"):
            MLP.from_torch(torch.nn.Sequential(empty))  # was "Neuron.from_weights: weights must not be empty"


def test_from_torch_refuses_tensors_sharing_memory_which_torch_trains_as_one():
    torch = pytest.importorskip("torch")
    first, second = (torch.nn.Linear(2, 2, dtype=torch.float64) for _ in range(2))
    second.weight = torch.nn.Parameter(first.weight)  # another Parameter, the same memory: torch steps both there
    seq = torch.nn.Sequential(first, torch.nn.Tanh(), second)
    with pytest.raises(ValueError, match=r"from_torch: tensors '0.weight' and '2.weight' share memory .* two copies "
                                         r"trained apart"):
        MLP.from_torch(seq)  # was read as two layers: after 3 SGD steps their outputs were 0.5 apart from torch's
    flat = torch.randn(2 * 3 + 3, dtype=torch.float64)  # views of one buffer that share no entry are apart
    third = torch.nn.Linear(2, 3, dtype=torch.float64)
    third.weight, third.bias = torch.nn.Parameter(flat[:6].view(3, 2)), torch.nn.Parameter(flat[6:])
    columns = torch.randn(3, 4, dtype=torch.float64)
    even, odd = torch.nn.Linear(2, 3, dtype=torch.float64), torch.nn.Linear(2, 3, dtype=torch.float64)
    even.weight, odd.weight = torch.nn.Parameter(columns[:, ::2]), torch.nn.Parameter(columns[:, 1::2])
    middle = torch.nn.Linear(3, 2, dtype=torch.float64)
    assert MLP.from_torch(torch.nn.Sequential(third, torch.nn.Tanh(), middle)).num_parameters() == 17
    assert MLP.from_torch(torch.nn.Sequential(even, torch.nn.Tanh(), middle, torch.nn.Tanh(), odd)).nin == 2
    odd.weight = torch.nn.Parameter(columns[:, 2:])  # shares column 2 with even's weight
    with pytest.raises(ValueError, match="'0.weight' and '4.weight' share memory"):
        MLP.from_torch(torch.nn.Sequential(even, torch.nn.Tanh(), middle, torch.nn.Tanh(), odd))


def test_from_torch_refuses_a_sequential_whose_hooks_change_what_it_computes():
    torch = pytest.importorskip("torch")
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    seen = []
    seq[0].register_forward_hook(lambda module, inputs, output: seen.append(output.shape))  # a logging hook
    assert MLP.from_torch(seq).nin == 2 and seen
    MLP.from_torch(seq.to(torch.float16))  # its own rounding is no change: the weights are read in float64
    seq[2].register_forward_hook(lambda module, inputs, output: 2 * output)
    with pytest.raises(ValueError, match="from_torch: the Sequential's outputs on probe inputs differ .* forward hook"):
        MLP.from_torch(seq)  # was read as if the hook were not there
    seq = torch.nn.Sequential(torch.nn.Linear(2, 1))
    seq.register_forward_pre_hook(lambda module, inputs: (inputs[0].flip(-1),))
    with pytest.raises(ValueError, match="outputs on probe inputs differ"):
        MLP.from_torch(seq)
    seq.register_forward_pre_hook(lambda module, inputs: 1 / 0)
    with pytest.raises(ValueError, match="from_torch: the Sequential failed on probe inputs: ZeroDivisionError"):
        MLP.from_torch(seq)


def test_from_torch_refuses_a_sequential_whose_backward_hooks_change_its_gradients():
    torch = pytest.importorskip("torch")

    def make():
        return torch.nn.Sequential(torch.nn.Linear(2, 3, dtype=torch.float64), torch.nn.Tanh(),
                                   torch.nn.Linear(3, 1, dtype=torch.float64))
    seq, seen = make(), []
    seq[0].weight.register_hook(seen.append)  # logging hooks change nothing: read
    seq[2].register_full_backward_hook(lambda module, grad_in, grad_out: seen.append(grad_out) and None)
    state = torch.get_rng_state()
    assert MLP.from_torch(seq).num_parameters() == 13 and seen
    assert torch.equal(torch.get_rng_state(), state)  # the probe's Linears drew no number of the user's
    assert all(p.grad is None for p in seq.parameters())  # (the probe's gradients are its own)
    clipped = make()
    clipped[0].weight.register_hook(lambda grad: grad.clamp(-1e-3, 1e-3))  # torch trains with clipped gradients
    doubled = make()
    doubled[2].register_full_backward_hook(lambda module, grad_in, grad_out: (2 * grad_in[0],))
    early = make()
    early.register_full_backward_pre_hook(lambda module, grad_out: (3 * grad_out[0],))
    for seq in (clipped, doubled, early):  # each was read as if the hook were not there: trained apart from torch
        with pytest.raises(ValueError, match=r"^from_torch: the Sequential's gradients on probe inputs differ from "
                                             r"those of the MLP .* a backward hook"):
            MLP.from_torch(seq)
    with torch.no_grad(), pytest.raises(ValueError, match="a backward hook"):  # (the probe turns grad on)
        MLP.from_torch(clipped)
    shared = torch.nn.Linear(2, 2, dtype=torch.float64)  # a Linear used twice, an Identity: its tensors are found
    MLP.from_torch(torch.nn.Sequential(shared, torch.nn.Tanh(), shared, torch.nn.Identity(), torch.nn.Linear(2, 1)))
    seq = make()
    seq.register_forward_hook(lambda module, inputs, output: output.detach())  # the same outputs, no gradient
    with pytest.raises(ValueError, match="or a forward hook that detaches"):
        MLP.from_torch(seq)
    seq = make()
    seq[2].bias.register_hook(lambda grad: 1 / 0)
    with pytest.raises(ValueError, match="from_torch: the Sequential failed on probe inputs: ZeroDivisionError"):
        MLP.from_torch(seq)


def test_from_torch_refuses_a_sequential_computing_otherwise_in_training_mode():
    torch = pytest.importorskip("torch")
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).eval()
    seq[2].register_forward_hook(lambda module, inputs, output: 2 * output if module.training else None)
    with pytest.raises(ValueError, match=r"^from_torch: the Sequential computes other outputs in training mode"):
        MLP.from_torch(seq)  # was read in eval mode, where the hook does nothing
    assert not any(m.training for m in seq.modules())


def test_from_torch_refuses_a_backward_hook_acting_only_in_the_mode_the_sequential_is_not_in():
    torch = pytest.importorskip("torch")
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).eval()
    seq[2].register_full_backward_hook(lambda module, grad_in, grad_out: (2 * grad_in[0],) if module.training else None)
    with pytest.raises(ValueError, match=r"^from_torch: the Sequential's gradients on probe inputs differ .* a backward "
                                         r"hook"):
        MLP.from_torch(seq)  # was read: its gradients were probed in eval mode only, and torch trains it doubled
    assert not any(m.training for m in seq.modules())
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))  # in training mode
    seq[2].register_full_backward_hook(lambda module, grad_in, grad_out: None if module.training else (2 * grad_in[0],))
    with pytest.raises(ValueError, match="a backward hook"):
        MLP.from_torch(seq)
    assert all(m.training for m in seq.modules())


def test_from_torch_refuses_a_forward_hook_acting_only_with_grad_enabled():
    torch = pytest.importorskip("torch")
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    seq.register_forward_hook(lambda module, inputs, output: output + 1 if torch.is_grad_enabled() else None)
    with pytest.raises(ValueError, match=r"^from_torch: the Sequential computes other outputs with grad enabled \(as "
                                         r"torch trains it\) than under torch.no_grad\(\)"):
        MLP.from_torch(seq)  # was read: its outputs were compared under no_grad only, its gradients are the same


def test_from_torch_leaves_the_sequentials_tensors_and_torchs_random_state_as_they_were():
    torch = pytest.importorskip("torch")
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3, dtype=torch.float64), torch.nn.Tanh(),
                              torch.nn.Linear(3, 1, dtype=torch.float64))
    seq.register_buffer("calls", torch.zeros((), dtype=torch.long), persistent=False)  # not in its state: read
    seq.register_forward_hook(lambda module, inputs, output: module.calls.add_(1) and None)  # counts its calls
    seq.register_forward_hook(lambda module, inputs, output: torch.rand(()) and None)  # draws, changes nothing
    state = torch.get_rng_state()
    MLP.from_torch(seq)
    assert int(seq.calls) == 0  # was 3: the probes ran it on its own tensors
    assert torch.equal(torch.get_rng_state(), state)  # the gradient probe drew from the user's random state
    weight = seq[0].weight.detach().clone()
    seq[0].register_forward_pre_hook(lambda linear, inputs: (linear.weight.mul_(2), None)[1])  # under no_grad
    with pytest.raises(ValueError, match="^from_torch: the Sequential computes other outputs"):  # (each call anew)
        MLP.from_torch(seq)
    assert torch.equal(seq[0].weight, weight)  # was doubled twice by the output probe


def test_torch_conversions_without_torch_say_how_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"^to_torch needs PyTorch: pip install torch$"):
        MLP(2, [3, 1], seed=0).to_torch()
    with pytest.raises(ImportError, match=r"^from_torch needs PyTorch: pip install torch$"):
        MLP.from_torch(None)


def test_a_bytes_path_is_refused_clearly(tmp_path):
    path = os.fsencode(tmp_path / "m.json")
    with pytest.raises(TypeError, match="save: path must be a str or os.PathLike, got bytes"):
        MLP(2, [1], seed=0).save(path)
    MLP(2, [1], seed=0).save(tmp_path / "m.json")
    with pytest.raises(TypeError, match="load: path must be a str or os.PathLike, got bytes"):
        mg.Module.from_file(path)
    with pytest.raises(TypeError, match="load: path must be a str or os.PathLike, got bytes"):
        MLP(2, [1], seed=0).load(path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


@pytest.mark.parametrize("threshold, shown", [("abc", "'abc'"), (math.nan, "nan"), (True, "True"),
                                              (10 ** 400, "an int of about 401 digits")],
                         ids=["str", "nan", "bool", "huge-int"])
def test_load_checks_the_files_threshold_before_changing_anything(tmp_path, threshold, shown):
    path = tmp_path / "m.json"
    MLP(2, [1], seed=0).save(path)
    payload = json.loads(path.read_text())
    payload["threshold"] = threshold
    path.write_text(json.dumps(payload))
    m = MLP(2, [1], seed=5)
    m.threshold = 0.25
    before = m.state_dict()
    message = rf"load: {path}: threshold must be a finite number or absent, got {shown}"
    with pytest.raises(ValueError, match=message):
        m.load(path)
    assert m.state_dict() == before and m.threshold == 0.25
    with pytest.raises(ValueError, match=message):
        mg.Module.from_file(path)


def test_a_parameter_too_large_for_a_float_is_refused_clearly(tmp_path):
    m = MLP(1, [1], seed=0)
    before = m.state_dict()
    with pytest.raises(ValueError, match=r"load_state_dict: parameter 'layers.0.neurons.0.w.0' must be a finite "
                                         r"number, got an int of about 401 digits \(too large for a float\)$"):
        m.load_state_dict({"layers.0.neurons.0.w.0": 10 ** 400, "layers.0.neurons.0.b": 0.0})
    path = tmp_path / "m.json"
    m.save(path)
    path.write_text(path.read_text().replace(repr(before["layers.0.neurons.0.w.0"]), "1" + "0" * 400))
    for read in (mg.Module.from_file, MLP(1, [1], seed=3).load):
        with pytest.raises(ValueError, match=rf"load: {path}: .*got an int of about 401 digits"):
            read(path)
    assert m.state_dict() == before


def test_a_model_with_a_shared_layer_lists_every_name_and_round_trips(tmp_path):
    shared = Layer(2, 2, "tanh", seed=0)
    m = MLP.from_layers([shared, shared, Layer(2, 1, "linear", seed=1)])
    assert m.num_parameters() == 9 and len(m.named_parameters()) == 9  # each parameter once, as torch's
    state = m.state_dict()  # every name, as torch's Sequential(lin, lin).state_dict()
    assert len(state) == 15 and state["layers.1.neurons.0.w.0"] == state["layers.0.neurons.0.w.0"]
    m.save(tmp_path / "m.json")
    back = mg.Module.from_file(tmp_path / "m.json")
    X, _ = mg.data.make_moons(10, seed=0)
    assert np.array_equal(back.decision_function(X), m.decision_function(X))
    m.load(tmp_path / "m.json")
    m.load_state_dict(state)
    bad = dict(state, **{"layers.1.neurons.0.w.0": 5.0})
    with pytest.raises(ValueError, match=r"'layers.0.neurons.0.w.0' and 'layers.1.neurons.0.w.0' are one parameter"):
        m.load_state_dict(bad)
    assert m.state_dict() == state


@pytest.mark.parametrize("threshold, error", [(math.nan, ValueError), (math.inf, ValueError), ("0", TypeError),
                                              (True, TypeError), (10 ** 400, ValueError)],
                         ids=["nan", "inf", "str", "bool", "huge-int"])
def test_predict_checks_its_threshold(threshold, error):
    X, _ = mg.data.make_moons(8, seed=0)
    with pytest.raises(error, match="predict: threshold must be a finite number, got"):
        MLP(2, [4, 1], seed=0).predict(X, threshold=threshold)
    assert MLP(2, [4, 1], seed=0).predict(X, threshold=0).shape == (8,)


def test_predict_refuses_a_threshold_a_model_of_several_outputs_would_ignore():
    X, _ = mg.data.make_moons(8, seed=0)
    model = MLP(2, [4, 3], seed=0)
    with pytest.raises(ValueError, match="predict: threshold applies to a model with one output; this one has 3"):
        model.predict(X, threshold=0.5)
    assert (model.predict(X) == model.decision_function(X).argmax(axis=1)).all()
    assert model.decision_function(X[:0]).shape == (0, 3) and model.predict(X[:0]).shape == (0,)
    assert MLP(2, [4, 1], seed=0).decision_function(X[:0]).shape == (0,)


class TiedTwice(mg.Module):
    """A module of the user's own that applies one layer twice (no config_size of its own)."""

    def __init__(self, n: int) -> None:
        self.nin, self.layer = n, Layer(n, n, "tanh", seed=0)

    nout = property(lambda self: self.nin)

    def _named_items(self):
        return [("a", self.layer), ("b", self.layer)]

    def forward(self, x):
        return self.layer(self.layer(x))

    def config(self) -> dict:
        return {"type": "TiedTwice", "n": self.nin}

    @classmethod
    def from_config(cls, config: dict) -> "TiedTwice":
        return cls(config["n"])


def test_a_users_module_with_a_shared_layer_reopens_from_its_file(tmp_path):
    model = TiedTwice(2)
    model.save(tmp_path / "tied.json")
    again = mg.Module.from_file(tmp_path / "tied.json")
    assert again.state_dict() == model.state_dict() and len(model.state_dict()) == 12


class SharesOne(mg.Module):
    """A module of the user's own whose second layer's first weight is the first layer's (tied
    after it is built: its from_config does not tie it)."""

    def __init__(self) -> None:
        self.nin, self.fc, self.out = 2, mg.nn.Linear(2, 2, seed=0), mg.nn.Linear(2, 1, seed=1)

    nout = property(lambda self: 1)

    def forward(self, x):
        return self.out([v.tanh() for v in self.fc(x)])[0]

    def config(self) -> dict:
        return {"type": "SharesOne"}

    @classmethod
    def from_config(cls, config: dict) -> "SharesOne":
        return cls()


def _shared_layer_mlp():
    shared = Layer(2, 2, "tanh", seed=0)
    return MLP.from_layers([shared, shared, Layer(2, 1, "linear", seed=1)])


def _shares_one():
    model = SharesOne()
    model.out.weight[0][0] = model.fc.weight[1][0]
    return model


def _from_torch_linear_used_twice():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    lin = torch.nn.Linear(2, 2, dtype=torch.float64)
    return MLP.from_torch(torch.nn.Sequential(lin, torch.nn.Tanh(), lin, torch.nn.Linear(2, 1, dtype=torch.float64)))


def _one_step(model, X, y):
    opt = mg.optim.Adam(model.parameters(), lr=0.1)
    mg.losses.mse([model(x) for x in X], y).backward()
    opt.step()
    return model.state_dict()


@pytest.mark.parametrize("make", [_shared_layer_mlp, _shares_one, _from_torch_linear_used_twice],
                         ids=["shared-layer", "one-shared-value", "from-torch-linear-twice"])
def test_shared_parameters_stay_shared_through_a_model_file_and_train_as_the_original(tmp_path, make):
    model = make()
    model.save(tmp_path / "m.json")
    back = mg.Module.from_file(tmp_path / "m.json")
    assert back.num_parameters() == model.num_parameters() < len(model.state_dict())
    saved = model.state_dict()
    assert back.state_dict() == saved
    X, y = mg.data.make_moons(6, seed=0)
    assert _one_step(back, X, y) == _one_step(model, X, y)  # a copy trained apart would drift at once
    model.load(tmp_path / "m.json")  # into a model that shares them too: its ties are kept
    assert model.state_dict() == saved and model.num_parameters() == back.num_parameters()
    if isinstance(back, MLP):  # one Linear used twice in torch, as the original's
        pytest.importorskip("torch")
        assert len(list(back.to_torch().parameters())) == len(list(model.to_torch().parameters())) == 4


def test_loading_a_file_of_shared_parameters_into_a_model_holding_them_apart_is_refused(tmp_path):
    _shared_layer_mlp().save(tmp_path / "m.json")
    apart = MLP.from_config(_shared_layer_mlp().config())
    before = apart.state_dict()
    with pytest.raises(ValueError, match=r"load: .*m.json: 'layers.0.neurons.0.w.0' and 'layers.1.neurons.0.w.0' "
                                         r"are one parameter in the file's model but two in this one"):
        apart.load(tmp_path / "m.json")
    assert apart.state_dict() == before


def test_a_model_file_of_version_1_still_loads(tmp_path):
    path = tmp_path / "old.json"  # as microgradnn wrote it before shared parameters were recorded
    path.write_text('{"format": "microgradnn-model", "version": 1, "config": {"type": "MLP", "nin": 2, "layers": '
                    '[{"nout": 2, "activation": "tanh"}, {"nout": 1, "activation": "linear"}]}, "state": '
                    '{"layers.0.neurons.0.w.0": 0.5, "layers.0.neurons.0.w.1": -0.25, "layers.0.neurons.0.b": 0.0, '
                    '"layers.0.neurons.1.w.0": 1.5, "layers.0.neurons.1.w.1": 2.0, "layers.0.neurons.1.b": 0.125, '
                    '"layers.1.neurons.0.w.0": -1.0, "layers.1.neurons.0.w.1": 0.75, "layers.1.neurons.0.b": 0.5}}')
    model = mg.Module.from_file(path)
    assert model.state_dict()["layers.0.neurons.1.w.0"] == 1.5 and model.num_parameters() == 9
    model.save(tmp_path / "again.json")  # nothing shared: the same format, readable by older versions
    assert json.loads((tmp_path / "again.json").read_text()) == json.loads(path.read_text())


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.update(tied=[["layers.0.neurons.0.w.0", "layers.1.neurons.0.w.0"]]),
     r"tied must be an object mapping a name in state to the first name of the same parameter, got list"),
    (lambda p: p.update(version=1), r"tied needs format version 2, got version 1"),
    (lambda p: p["tied"].update({"layers.9.w": "layers.0.neurons.0.b"}), r"\(state has no 'layers.9.w'\), got"),
    (lambda p: p["tied"].update({"layers.2.neurons.0.b": "layers.1.neurons.0.b"}),
     r"\('layers.1.neurons.0.b' is itself tied\)"),
    (lambda p: p["tied"].update({"layers.2.neurons.0.b": 3}), r"\(it is no name\), got 'layers.2.neurons.0.b': 3"),
    (lambda p: p["state"].update({"layers.1.neurons.0.w.0": 9.0}),
     r"'layers.0.neurons.0.w.0' and 'layers.1.neurons.0.w.0' are one parameter .* different values"),
], ids=["list", "version-1", "unknown-name", "chain", "not-a-name", "values-differ"])
def test_a_model_file_whose_tied_entries_are_malformed_is_refused(tmp_path, edit, message):
    path = tmp_path / "m.json"
    _shared_layer_mlp().save(path)
    payload = json.loads(path.read_text())
    edit(payload)
    path.write_text(json.dumps(payload))
    for read in (mg.Module.from_file, _shared_layer_mlp().load):
        with pytest.raises(ValueError, match=rf"load: {path}: .*{message}"):
            read(path)


def test_a_tie_to_a_name_the_model_has_no_parameter_by_is_refused_by_name(tmp_path):
    # a hand-edited file: a parameter renamed in state, and a tie to the new name (it raised KeyError)
    path = tmp_path / "m.json"
    _shared_layer_mlp().save(path)
    payload = json.loads(path.read_text())
    payload["state"]["renamed"] = payload["state"].pop("layers.2.neurons.0.b")
    payload["tied"] = {next(iter(payload["tied"])): "renamed"}
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=rf"load: {path}: load_state_dict: .*missing \['layers.2.neurons.0.b'\], "
                                         r"unexpected \['renamed'\]"):
        mg.Module.from_file(path)


def test_a_tie_a_model_built_from_its_config_has_no_place_for_is_refused(tmp_path):
    class InTuple(mg.Module):
        def __init__(self):
            self.nin, self.pair = 1, (Value(1.0), Value(2.0))

        def config(self):
            return {"type": "InTuple"}

        @classmethod
        def from_config(cls, config):
            return cls()

    model = InTuple()
    model.pair = (model.pair[0], model.pair[0])
    model.save(tmp_path / "t.json")
    with pytest.raises(ValueError, match=r"load: .*t.json: 'pair.1' must be the same parameter as 'pair.0', but the "
                                         r"InTuple its config builds has no place by that name to set"):
        mg.Module.from_file(tmp_path / "t.json")


def test_from_torch_refuses_complex_weights_instead_of_dropping_their_imaginary_parts():
    torch = pytest.importorskip("torch")
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1, dtype=torch.complex128))
    with pytest.raises(TypeError, match=r"real floating-point number, got torch.complex128 in tensor '2.weight', "
                                        r"layer 1"):
        MLP.from_torch(seq)


def test_a_model_file_giving_a_name_twice_is_refused_not_read_by_its_last_value(tmp_path):
    path = tmp_path / "edited.json"
    Neuron.from_weights([1.0, 2.0], 0.5).save(path)
    text = path.read_text()
    path.write_text(text.replace('"w.0": 1.0', '"w.0": 1.0, "w.0": -7.0'))  # a hand edit: which weight is meant?
    assert path.read_text() != text
    model = Neuron.from_weights([3.0, 4.0], 0.0)
    for read in (mg.Module.from_file, model.load):
        with pytest.raises(ValueError, match=r"edited.json is not a microgradnn model file \(invalid JSON: the name "
                                             r"'w.0' is given twice in one object\)"):
            read(path)
    assert model.state_dict() == {"w.0": 3.0, "w.1": 4.0, "b": 0.0}


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.update(version=3), "has format version 3; this microgradnn reads versions 1 and 2"),
    (lambda p: p.update(version="1"), "has format version '1'; this microgradnn reads versions 1 and 2"),
    # a later version's file, with an entry of its own: told its version (a newer microgradnn reads it),
    # not only that an entry is unknown
    (lambda p: p.update(version=3, optimizer={}), "has format version 3; this microgradnn reads versions 1 and 2"),
    (lambda p: p["config"].update(dropout=0.5), r"the description .*dropout.* has settings this microgradnn does "
                                                "not read"),
    (lambda p: p["config"]["layers"][0].update(negative_slope=0.2), "negative_slope.* has settings this"),
    (lambda p: p.update(treshold=0.7), "m.json has entries this microgradnn does not read: 'treshold'; it reads "
                                       "format, .*, threshold"),
], ids=["version-3", "version-str", "version-3-own-entry", "extra-setting", "extra-layer-setting", "misspelt-threshold"])
def test_a_model_file_with_what_this_version_does_not_read_is_refused(tmp_path, edit, message):
    path = tmp_path / "m.json"
    MLP(2, [3, 1], "leaky_relu", seed=0).save(path)
    payload = json.loads(path.read_text())
    edit(payload)
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=message):
        mg.Module.from_file(path)
    del payload["version"]  # a file without a version is read as version 1
    path.write_text(json.dumps(payload))
    if "optimizer" in payload:  # as version 1, its entry is one this version does not read
        with pytest.raises(ValueError, match="has entries this microgradnn does not read: 'optimizer'"):
            mg.Module.from_file(path)
    elif "version" in message:
        assert mg.Module.from_file(path).state_dict() == MLP(2, [3, 1], "leaky_relu", seed=0).state_dict()


def test_a_model_file_with_a_shuffled_vocabulary_or_several_unknown_entries_is_refused_saying_so(tmp_path):
    path = tmp_path / "m.json"
    MLP(2, [3, 1], seed=0).save(path)
    payload = json.loads(path.read_text())
    path.write_text(json.dumps(dict(payload, vocabulary="tcrba")))  # ids are the sorted characters' places
    for read in (mg.Module.from_file, MLP(2, [3, 1]).load):
        with pytest.raises(ValueError, match=r"m.json: vocabulary must be a str of distinct characters in sorted "
                                             r"order or absent, got 'tcrba'$"):
            read(path)
    from microgradnn.nn.files import write_model  # (a character-level model's file: the CLI's gpt --save)
    m = MLP(2, [3, 1], seed=0)
    with pytest.raises(ValueError, match=r"^save: vocabulary must be a str of distinct characters in sorted order"):
        write_model(tmp_path / "v.json", m.config(), m.state_dict(), False, vocabulary="tcrba")
    assert not (tmp_path / "v.json").exists()
    write_model(tmp_path / "v.json", m.config(), m.state_dict(), False, vocabulary="abcrt")
    assert json.loads((tmp_path / "v.json").read_text())["vocabulary"] == "abcrt"
    assert mg.Module.from_file(tmp_path / "v.json").state_dict() == m.state_dict()
    path.write_text(json.dumps(dict(payload, treshold=0.7, optimiser={}, epoch=3)))
    with pytest.raises(ValueError, match=r"m.json has entries this microgradnn does not read: 'treshold' and 2 more; "):
        mg.Module.from_file(path)
    path.write_text(json.dumps(dict(payload, treshold=0.7, optimiser={})))
    with pytest.raises(ValueError, match=r"does not read: 'treshold' and 1 more; "):
        mg.Module.from_file(path)


def test_load_of_a_folder_says_it_is_a_folder(tmp_path):
    for read in (mg.Module.from_file, MLP(2, [3, 1]).load):
        with pytest.raises(IsADirectoryError, match=r"^load: .* is a folder, not a model file$"):
            read(tmp_path)


@pytest.mark.parametrize("x, error, message", [
    ([True, 0.5], TypeError, "got bool True at index 0"),
    (np.array([True, False]), TypeError, "got bool True at index 0"),
    ([1.0, "2"], TypeError, "got str '2' at index 1"),
    ([1.0, 10 ** 400], ValueError, "got an int of about 401 digits .* at index 1"),
    ([float("nan"), 1.0], ValueError, "got nan at index 0"),
    (np.array([1.0, -np.inf]), ValueError, "got -inf at index 1"),
], ids=["bool", "bool-array", "str", "huge-int", "nan", "inf-array"])
def test_module_input_refuses_bools_and_non_numbers_by_type(x, error, message):
    for module in (MLP(2, [3, 1], seed=0), mg.nn.Linear(2, 2, seed=0), mg.nn.RMSNorm(2)):
        with pytest.raises(error, match=f"{type(module).__name__}: inputs must be finite numbers or Values, {message}"):
            module(x)


@pytest.mark.parametrize("X, error, message", [
    ([["1", "2"]], TypeError, "X must hold finite numbers, got str '1'"),
    ([[True, 1.5]], TypeError, "X must hold finite numbers, got bool True"),
    (np.array([[True, False]]), TypeError, "X must hold finite numbers, got an array of bool"),
    ([[1.0, 2.0], [1.0]], ValueError, r"expected an array of shape \(n, 2\), got rows of different lengths"),
    ([[10 ** 400, 1.0]], ValueError, "X must hold finite numbers, got an int of about 401 digits"),
    ([[1j, 1.0]], TypeError, "X must hold finite numbers, got complex 1j"),
], ids=["str", "bool", "bool-array", "ragged", "huge-int", "complex"])
def test_predict_refuses_non_numbers_in_a_batch(X, error, message):
    model = MLP(2, [3, 1], seed=0)
    with pytest.raises(error, match=f"^predict: {message}"):
        model.predict(X)
    with pytest.raises(error, match=f"^decision_function: {message}"):
        model.decision_function(X)
    with pytest.raises(error, match=f"^accuracy: {message}"):
        mg.accuracy(model, X, [1] * len(X))


def test_predict_on_one_sample_says_who_and_how_to_pass_it():
    model = MLP(2, [3, 1], seed=0)
    with pytest.raises(ValueError, match=r"^predict: expected an array of shape \(n, 2\), got shape \(2,\) "
                                         r"\(one sample\? pass \[x\]\)$"):
        model.predict([0.5, 1.0])
    assert model.predict([[0.5, 1.0]]).shape == (1,)


def test_predict_and_accuracy_go_through_a_subclass_decision_function():
    class Flipped(MLP):
        def decision_function(self, X):
            return -super().decision_function(X)
    model, X = Flipped(2, [3, 1], seed=0), [[0.5, 1.0], [-1.0, 0.2], [2.0, -1.5]]
    scores = model.decision_function(X)
    assert list(model.predict(X)) == [int(s > model.threshold) for s in scores]
    assert mg.accuracy(model, X, model.predict(X)) == 1.0


def _weights(made) -> list:
    return made if isinstance(made, list) else [p.data for p in made.parameters()]


_X, _Y = mg.data.make_moons(12, noise=0.1, seed=0)
SEEDED = [
    (lambda seed: MLP(2, [3, 1], seed=seed), "MLP"), (lambda seed: Neuron(2, seed=seed), "Neuron"),
    (lambda seed: Layer(2, 2, seed=seed), "Layer"), (lambda seed: mg.nn.Linear(2, 2, seed=seed), "Linear"),
    (lambda seed: mg.nn.Embedding(3, 2, seed=seed), "Embedding"), (lambda seed: mg.models.GPT(5, 4, 2, seed=seed), "GPT"),
    (lambda seed: mg.models.GPT(5, 4, 2, seed=0).generate([0], 8, seed=seed), "generate"),
    (lambda seed: mg.fit(MLP(2, [1], seed=0), _X, _Y, "mse", "sgd", 1, 4, seed=seed, verbose=False).loss, "fit"),
]
IDS = ["MLP", "Neuron", "Layer", "Linear", "Embedding", "GPT", "generate", "fit"]


@pytest.mark.parametrize("build, who", SEEDED + [(lambda seed: mg.nn.manual_seed(seed), "manual_seed")],
                         ids=IDS + ["manual_seed"])
def test_seeds_are_checked_as_ints(build, who):
    anything = ", a numpy Generator or RandomState, or None" if who != "manual_seed" else ""
    with pytest.raises(TypeError, match=f"^{who}: seed must be an int >= 0{anything}, got bool True$"):  # was seed 1
        build(True)
    with pytest.raises(TypeError, match=f"^{who}: seed must be an int >= 0{anything}, got float 1.5$"):
        build(1.5)
    with pytest.raises(ValueError, match=f"^{who}: seed must be an int >= 0, got -1$"):
        build(-1)
    build(np.int64(3))


@pytest.mark.parametrize("build, who", SEEDED, ids=IDS)
def test_a_module_or_model_takes_a_seed_as_the_data_functions_do(build, who):
    # a RandomState was refused ("seed must be an int >= 0, got RandomState"), where make_moons takes one
    a, b = _weights(build(np.random.RandomState(7))), _weights(build(np.random.RandomState(7)))
    assert a == b
    state = np.random.RandomState(7)
    assert _weights(build(state)) == a and _weights(build(state)) != a  # one draw from it seeds each
    rng = np.random.default_rng(5)
    assert _weights(build(np.random.default_rng(5))) == _weights(build(rng)) != _weights(build(rng))
    assert _weights(build(3)) == _weights(build(3))


def test_fused_must_be_a_bool():
    for build in (lambda: Neuron(2, fused="no"), lambda: Layer(2, 2, fused=0), lambda: MLP(2, [1], fused="no"),
                  lambda: Neuron.from_weights([1.0], 0.0, fused=None)):
        with pytest.raises(TypeError, match="Neuron: fused must be True or False"):
            build()


def test_from_torch_refuses_a_linear_or_sequential_that_computes_something_else():
    torch = pytest.importorskip("torch")

    class Doubled(torch.nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    class Skipping(torch.nn.Sequential):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match=r"layer 1 \('1'\) is a Doubled, a Linear with a forward of its own"):
        MLP.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), Doubled(2, 1)))
    with pytest.raises(ValueError, match="the Sequential is a Skipping, a Sequential with a forward of its own"):
        MLP.from_torch(Skipping(torch.nn.Linear(2, 2)))

    class Named(torch.nn.Linear):  # a subclass that computes what Linear does is read
        pass

    assert repr(MLP.from_torch(torch.nn.Sequential(Named(2, 1)))) == "MLP(2 -> 1 linear, 3 parameters)"


def test_load_state_dict_has_torchs_strict_and_result_and_says_typeerror_for_a_non_number():
    m = MLP(2, [2, 1], seed=0)
    state = MLP(2, [2, 1], seed=1).state_dict()
    assert m.load_state_dict(state) == ([], []) and m.state_dict() == state
    result = m.load_state_dict({"layers.1.neurons.0.b": 0.5, "head.bias": 1.0}, strict=False)
    assert result.missing_keys == [n for n in state if n != "layers.1.neurons.0.b"]
    assert result.unexpected_keys == ["head.bias"]
    assert m.state_dict() == dict(state, **{"layers.1.neurons.0.b": 0.5})
    with pytest.raises(ValueError, match=r"missing \['layers.0.neurons.0.w.0'.*unexpected \['head.bias'\]"):
        m.load_state_dict({"head.bias": 1.0})
    with pytest.raises(TypeError, match=r"load_state_dict: strict must be True or False, got str 'no'"):
        m.load_state_dict(state, strict="no")
    with pytest.raises(TypeError, match=r"parameter 'layers.0.neurons.0.w.0' must be a finite number, got '0.5'"):
        m.load_state_dict(dict(state, **{"layers.0.neurons.0.w.0": "0.5"}))
    with pytest.raises(TypeError, match=r"parameter 'layers.0.neurons.0.w.0' must be a finite number, got True"):
        m.load_state_dict(dict(state, **{"layers.0.neurons.0.w.0": True}), strict=False)
    assert m.state_dict() == dict(state, **{"layers.1.neurons.0.b": 0.5})


def test_from_torch_names_a_lazy_or_sparse_tensor_instead_of_torchs_error_from_inside():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"^from_torch: tensor '0.weight', layer 0 is not initialized \(a lazy "):
        MLP.from_torch(torch.nn.Sequential(torch.nn.LazyLinear(3)))  # was torch's "Attempted to use an uninitialized"
    linear = torch.nn.Linear(2, 3)
    linear.weight = torch.nn.Parameter(linear.weight.detach().to_sparse())
    with pytest.raises(TypeError, match=r"^from_torch: every weight must be a dense tensor, got a torch.sparse_coo "
                                        r"one in tensor '0.weight', layer 0"):
        MLP.from_torch(torch.nn.Sequential(linear))  # was torch's "can't convert Sparse layout tensor to numpy"


def test_from_torch_says_a_meta_tensor_holds_no_numbers():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"tensor '0.weight', layer 0 is on the meta device and holds no numbers"):
        MLP.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 1, device="meta")))


@pytest.mark.parametrize("make, message", [
    (lambda: Neuron.from_weights(0.5, 0.1), "Neuron.from_weights: weights must be a list of numbers, got float 0.5"),
    (lambda: Neuron.from_weights(np.zeros((2, 2)), 0.1), "Neuron.from_weights: weights must be a list of numbers"),
    (lambda: Layer.from_weights([0.5, -0.4]), r"Layer.from_weights: each neuron must be a \(weights, bias\) pair, "
                                             "got float 0.5 at position 0"),
    (lambda: Layer.from_weights([([0.5], 0.1, "relu")]), r"\(weights, bias\) pair, got tuple .* at position 0"),
    (lambda: Layer.from_weights(np.array([[0.5, 0.1]])), "Layer.from_weights: neurons must be a list of"),
    (lambda: Layer.from_weights(iter([([0.5], 0.1)])), "Layer.from_weights: neurons must be a list of"),
])
def test_from_weights_names_a_wrong_shape_of_weights(make, message):
    with pytest.raises(TypeError, match=message):
        make()
    assert Neuron.from_weights(np.array([0.5, 1.0]), 0.1).nin == 2
    assert Layer.from_weights(([[0.5], 0.1], ([1.0], 0.0))).nout == 2


@pytest.mark.parametrize("x", [2.0, 2, np.float64(2.0), np.float32(2.0), np.int64(2), Value(2.0), [2.0], np.array([2.0])])
def test_a_one_input_module_takes_one_number_of_any_numeric_type(x):
    assert Neuron.from_weights([0.5], 0.25, "linear")(x).data == 1.25


def test_module_zero_grad_takes_set_to_none_as_torch_does():
    # zero_grad(set_to_none=True) was Python's "unexpected keyword argument"
    model = MLP(2, [3, 1], seed=0)
    model([1.0, 2.0]).backward()
    grads = [p.grad for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in model.parameters())
    model([1.0, 2.0]).backward()  # backward adds into None as into 0
    assert [p.grad for p in model.parameters()] == grads
    model.zero_grad(set_to_none=False)
    assert all(p.grad == 0.0 for p in model.parameters())
    model([1.0, 2.0]).backward()
    model.zero_grad()  # our default: 0 (torch's is None)
    assert all(p.grad == 0.0 for p in model.parameters())
    with pytest.raises(TypeError, match="MLP.zero_grad: set_to_none must be True or False, got int 1"):
        model.zero_grad(set_to_none=1)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "linear"])
def test_mlp_parameter_gradients_match_finite_differences_and_torch(activation, fused):
    """Neuron, Layer and MLP, fused and unfused (the teaching graph), every activation: the
    gradient of a loss in every weight and bias against central differences and torch float64."""
    model = MLP(2, [3, 2, 1], activation, "tanh", seed=4, fused=fused)
    X = [[0.3, -1.2], [1.1, 0.4], [-0.7, 0.9]]
    loss = lambda: sum((model(x) - 0.5) ** 2 for x in X)
    params = model.parameters()
    model.zero_grad()
    loss().backward()
    grads = [p.grad for p in params]
    assert grads == pytest.approx(numeric_param_grads(loss, params), rel=1e-6, abs=1e-8)
    torch = pytest.importorskip("torch")
    seq = model.to_torch()
    ((seq(torch.tensor(X, dtype=torch.float64)) - 0.5) ** 2).sum().backward()
    theirs = [t for lin in seq if isinstance(lin, torch.nn.Linear) for t in (lin.weight, lin.bias)]
    ours_by_tensor = []
    for W, b in zip(theirs[::2], theirs[1::2]):
        for i in range(W.shape[0]):
            ours_by_tensor += W.grad[i].tolist() + [b.grad[i].item()]
    assert grads == pytest.approx(ours_by_tensor, rel=1e-12, abs=1e-15)


def test_a_neurons_gradient_at_relus_kink_is_torchs_zero():
    # w . x + b = 0 exactly: relu'(0) = 0 as torch's, for the fused and the unfused neuron
    for fused in (True, False):
        n = Neuron.from_weights([0.5, -0.25], 0.0, activation="relu", fused=fused)
        out = n([1.0, 2.0])
        out.backward()
        assert out.data == 0.0 and [p.grad for p in n.parameters()] == [0.0, 0.0, 0.0]


def test_an_init_given_after_the_class_or_by_a_mixin_counts_as_init_in_a_module_made_while_one_runs():
    # @dataclass adds __init__ after the class is made, a mixin's is no Module's: a frozen leaf
    # each sets is a parameter, made inside a call as outside (it was a plain attribute, unsaved)
    @dataclasses.dataclass(eq=False)
    class Affine(mg.nn.Module):
        scale: Value
        shift: Value

    class Frozen:
        def __init__(self) -> None:
            self.scale = Value(2.0, requires_grad=False)

    class Scaled(Frozen, mg.nn.Module):
        pass

    class Shifted(mg.nn.Module):
        __init__ = functools.partialmethod(lambda self, s: setattr(self, "s", Value(s, requires_grad=False)), 1.0)

    made = {}

    class Net(mg.nn.Module):
        def __init__(self) -> None:
            self.nin, self.nout, self.output_activation = 1, 1, "linear"

        def forward(self, x):
            if not made:
                made.update(a=Affine(Value(3.0, requires_grad=False), Value(1.0)), b=Scaled(), c=Shifted())
            return x[0]

    Net()([1.0])
    assert [list(m.state_dict()) for m in made.values()] == [["scale", "shift"], ["scale"], ["s"]]
    assert [list(m.state_dict()) for m in (Affine(Value(3.0, requires_grad=False), Value(1.0)), Scaled())] == [
        ["scale", "shift"], ["scale"]]
    with pytest.raises(TypeError, match=r"Bare\(\) takes no arguments"):
        type("Bare", (mg.nn.Module,), {})(1)  # no __init__ anywhere: as object's
    assert str(inspect.signature(Affine)) == "(scale: microgradnn.engine.Value, shift: microgradnn.engine.Value) -> None"


def test_a_copy_made_inside_a_modules_own_init_is_no_module_being_made():
    class Net(mg.nn.Module):
        def __init__(self, twin: bool = True) -> None:
            self.nin, self.nout, self.output_activation = 1, 1, "linear"
            self.w = Value(0.5)
            if twin:  # copies made while __init__ runs: they must not stay "being made"
                self.twins = [copy.copy(self), copy.deepcopy(self)]  # (pickle: the same __getstate__)

        def forward(self, x):
            self.last = Value(x[0], requires_grad=False)  # a sample kept: a plain attribute
            return x[0] * self.w

    for twin in Net().twins:
        twin([1.0])
        assert list(twin.state_dict()) == ["w"]  # "last" was listed as a parameter


def test_a_module_class_keeps_its_signature_and_its_subclass_init_counts_as_init():
    # __init__ is wrapped to know when a module is being made (see Module.__setattr__): help() and
    # inspect must still show the class's own arguments, and a subclass's __init__ after super()'s
    class Base(mg.nn.Module):
        def __init__(self, scale: float, *, frozen: bool = True):
            self.nin, self.nout, self.output_activation = 1, 1, "linear"
            self.s = Value(scale)

        def forward(self, x):
            return x[0] * self.s + self.shift

    class Child(Base):
        def __init__(self, scale: float):
            super().__init__(scale)
            self.shift = Value(1.0, requires_grad=False)  # after the base's __init__ returned: still __init__

    class Net(mg.nn.Module):
        def __init__(self):
            self.nin, self.nout, self.output_activation = 1, 1, "linear"

        def forward(self, x):
            if not hasattr(self, "head"):
                self.head = Child(2.0)  # made while Net runs
            return self.head(x)

    assert str(inspect.signature(Base)) == "(scale: float, *, frozen: bool = True)"
    assert str(inspect.signature(Child)) == "(scale: float)" and Child.__init__.__name__ == "__init__"
    net = Net()
    assert net([1.0]).data == 3.0 and list(net.state_dict()) == ["head.s", "head.shift"]


def test_a_one_output_layer_or_linear_predicts_by_its_threshold_as_the_mlp_of_it_does():
    X, y = mg.data.make_moons(20, noise=0.1, seed=0)
    layer = Layer.from_weights([([1.0, 0.0], 0.0)], activation="sigmoid")
    mlp = MLP.from_layers([layer])
    assert layer.decision_function(X).shape == (20,)  # was (20, 1), classified by an argmax: all class 0
    assert (layer.decision_function(X) == mlp.decision_function(X)).all()
    assert (layer.predict(X) == mlp.predict(X)).all() and layer.predict(X).any()
    assert mg.accuracy(layer, X, y) == mg.accuracy(mlp, X, y) == 0.65
    linear = mg.nn.Linear(2, 1, seed=0)
    linear.weight[0][0].data, linear.weight[0][1].data, linear.bias[0].data = 1.0, 0.0, 0.0
    assert linear.output_activation == "linear" and linear.threshold == 0.0  # was an AttributeError
    assert (linear.predict(X) == (X[:, 0] > 0)).all()
    assert mg.accuracy(linear, X, y) == mg.accuracy(MLP.from_layers([Layer.from_weights([([1.0, 0.0], 0.0)], "linear")]),
                                                    X, y)


def test_a_neuron_has_one_output_so_accuracy_and_fit_take_it():
    X, y = mg.data.make_moons(20, noise=0.1, seed=0)
    neuron = Neuron.from_weights([1.0, 0.0], 0.0, activation="sigmoid")
    assert neuron.nout == 1  # was an AttributeError telling the user to set it
    assert mg.accuracy(neuron, X, y) == float((neuron.predict(X) == y).mean())
    assert len(mg.fit(neuron, X, y, "binary_cross_entropy", "sgd", 2, verbose=False).accuracy) == 2


def test_named_parameters_and_parameters_take_torchs_arguments():
    torch = pytest.importorskip("torch")

    class Net(mg.Module):
        def __init__(self) -> None:
            self.nin, self.scale = 1, Value(2.0)
            self.fc = mg.nn.Linear(1, 1, seed=0)
            self.tied = self.fc

    class TorchNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(2.0))
            self.fc = torch.nn.Linear(1, 1)
            self.tied = self.fc

    ours, theirs = Net(), TorchNet()
    tensor = lambda name: name.rsplit(".", 2)[0] if ".weight." in name else name.rsplit(".", 1)[0] \
        if ".bias." in name else name  # noqa: E731  (fc.weight.0.0 is an entry of torch's fc.weight)
    for kwargs in [{}, {"prefix": "net"}, {"recurse": False}, {"remove_duplicate": False},
                   {"prefix": "net", "recurse": False, "remove_duplicate": False}]:  # were TypeErrors
        names = list(dict.fromkeys(tensor(n) for n, _ in ours.named_parameters(**kwargs)))
        assert names == [n for n, _ in theirs.named_parameters(**kwargs)], kwargs
    assert ours.parameters(recurse=False) == [ours.scale] and ours.parameters() == [ours.scale, *ours.fc.parameters()]
    assert len(list(theirs.parameters(recurse=False))) == 1
    with pytest.raises(TypeError, match="^parameters: recurse must be True or False, got int 0"):
        ours.parameters(recurse=0)  # (it named named_parameters, which the user did not call)
    with pytest.raises(TypeError, match="^named_parameters: recurse must be True or False, got int 0"):
        ours.named_parameters(recurse=0)
    with pytest.raises(TypeError, match="named_parameters: prefix must be a str, got NoneType None"):
        ours.named_parameters(prefix=None)


@pytest.mark.parametrize("build, count", [(lambda: Neuron(7), 8), (lambda: Layer(3, 4), 16),
                                          (lambda: MLP(2, [16, 16, 1], seed=0), 337)])
def test_a_module_above_max_parameters_is_refused_before_it_is_built(monkeypatch, build, count):
    # a Value per parameter (about 200 bytes): MLP(2, [10**5, 10**5]) would fill any memory, slowly
    monkeypatch.setattr(mg.nn.init, "MAX_PARAMETERS", count - 1)
    with pytest.raises(ValueError, match=rf"make {count} parameters, more than MAX_PARAMETERS={count - 1} .*"
                                         r"set microgradnn\.nn\.init\.MAX_PARAMETERS higher"):
        build()
    monkeypatch.setattr(mg.nn.init, "MAX_PARAMETERS", count)
    assert len(build().parameters()) == count



def test_max_parameters_is_ten_million_and_the_refusal_says_the_memory_asked_for():
    with pytest.raises(ValueError, match=r"^RMSNorm: dim=1000000000 make 1,000,000,000 parameters, more than "
                                         r"MAX_PARAMETERS=10,000,000 \(each is a Value of about 200 bytes: 200\.0 GB\)"):
        mg.nn.RMSNorm(10**9)

def test_a_layers_activation_set_by_hand_is_the_one_its_neurons_compute(tmp_path):
    # layer.activation was a copy: setting it changed the repr, the saved file and to_torch but not what the
    # neurons computed, so the file's model gave other outputs than the one saved
    model = MLP(2, [3, 1], seed=0)
    model.layers[0].activation = "tanh"
    tanh = MLP.from_layers([Layer.from_weights([([w.data for w in n.w], n.b.data) for n in layer.neurons],
                                               activation)
                            for layer, activation in zip(model.layers, ["tanh", "linear"])])
    x = [0.5, -1.0]
    assert model(x).data == tanh(x).data and repr(model) == "MLP(2 -> 3 tanh -> 1 linear, 13 parameters)"
    model.save(tmp_path / "m.json")
    assert mg.Module.from_file(tmp_path / "m.json")(x).data == model(x).data
    with pytest.raises(ValueError, match="^Layer: activation must be one of relu"):
        model.layers[0].activation = "gelu"
    model.layers[0].neurons[1].activation = "relu"  # one neuron apart: no file or torch module can say so
    assert repr(model.layers[0]) == "Layer(2 -> 3 relu/tanh, 9 parameters)"
    with pytest.raises(ValueError, match="^Layer: a layer has one activation, but its neurons' are relu, tanh"):
        model.save(tmp_path / "mixed.json")


def test_a_neurons_activation_set_to_no_activation_is_refused_by_name_when_it_computes():
    # it gave a bare KeyError: 'gelu' from inside the forward pass
    neuron, layer = Neuron(2, seed=0), Layer(2, 2, seed=0)
    neuron.activation = layer.neurons[1].activation = "gelu"
    for module in (neuron, layer):
        with pytest.raises(ValueError, match="^Neuron: activation must be one of relu, tanh, sigmoid, leaky_relu, "
                                             "linear, got 'gelu'$"):
            module([0.5, -1.0])


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.integers(min_value=2**60) | st.floats()
                     | st.text(max_size=8) | st.sampled_from(["MLP", "Layer", "GPT", "relu", "linear", "x" * 100_000]),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                     max_leaves=8)
# the places of a model file a hand edit (or an attacker) may change: (path of keys to the holder, key)
_PLACES = [((), "format"), ((), "version"), ((), "config"), ((), "state"), ((), "threshold"), ((), "tied"),
           ((), "vocabulary"), ((), "extra"), (("config",), "type"), (("config",), "nin"), (("config",), "layers"),
           (("config",), "extra"), (("config", "layers"), 0), (("config", "layers", 0), "nout"),
           (("config", "layers", 1), "activation"), (("state",), "layers.0.neurons.0.w.0"), (("state",), "extra")]


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(st.sampled_from(_PLACES), _JSON)
def test_a_model_file_with_any_json_in_any_place_loads_as_it_says_or_is_refused_naming_it(tmp_path_factory, place, value):
    # was: a list or object as the config's "type" raised a bare TypeError ("unhashable type: 'list'")
    path = tmp_path_factory.mktemp("m") / "m.json"
    MLP(2, [3, 1], seed=0).save(path)
    payload = json.loads(path.read_text())
    (keys, key), holder = place, payload
    for k in keys:
        holder = holder[k]
    holder[key] = value
    path.write_text(json.dumps(payload))
    model = MLP(2, [3, 1], seed=1)
    before = model.state_dict()
    for read in (mg.Module.from_file, model.load):
        try:
            loaded = read(path)
        except ValueError as e:
            assert "m.json" in str(e) and len(str(e)) < 600 + len(str(path))
            assert model.state_dict() == before
        else:  # only a value the file may hold there: the state as the file gives it
            assert loaded.state_dict() == {k: float(v) for k, v in payload["state"].items()}


def test_one_output_exactly_at_the_threshold_is_class_0_and_an_empty_batch_keeps_its_shape():
    # predict's rule: class 1 where the output exceeds the threshold, so a tie is class 0
    model = MLP(1, [1], seed=0)
    neuron = model.layers[0].neurons[0]
    neuron.w[0].data, neuron.b.data = 0.0, 0.5
    model.threshold = 0.5
    assert model.decision_function([[1.0]]).tolist() == [0.5] and model.predict([[1.0]]).tolist() == [0]
    assert mg.accuracy(model, [[1.0]], [0]) == 1.0
    none = np.zeros((0, 1))
    assert model.decision_function(none).shape == (0,) and model.predict(none).shape == (0,)
    assert MLP(1, [3], seed=0).decision_function(none).shape == (0, 3)
