import json
import tracemalloc

import numpy as np
import pytest

import microgradnn as mg
from microgradnn import Value
from microgradnn.nn import Embedding, Linear, RMSNorm
from conftest import numeric_grads, numeric_param_grads


def test_linear_is_w_x_plus_b_with_torch_names():
    layer = Linear(3, 2, seed=0)
    layer.bias[0].data, layer.bias[1].data = 0.0, 0.5
    x = [1.0, -2.0, 0.5]
    out = layer(x)
    W = np.array([[w.data for w in row] for row in layer.weight])
    assert [o.data for o in out] == pytest.approx(W @ np.array(x) + [0.0, 0.5], rel=1e-15)
    names = [n for n, _ in layer.named_parameters()]
    assert names[:2] == ["weight.0.0", "weight.0.1"] and names[-1] == "bias.1" and len(names) == 8
    assert all(abs(w.data) <= 1 / 3 ** 0.5 for row in layer.weight for w in row)  # torch's U(±1/sqrt(nin))
    assert Linear(3, 2, bias=False).num_parameters() == 6
    assert repr(Linear(3, 2, bias=False, seed=0)) == "Linear(3 -> 2, no bias, 6 parameters)"


def test_linear_starts_as_torchs_biases_too_uniform_in_one_over_sqrt_nin():
    layer = Linear(4, 2000, seed=0)  # torch: weight and bias both U(-1/sqrt(in_features), 1/sqrt(in_features))
    biases = np.array([b.data for b in layer.bias])
    weights = np.array([[w.data for w in row] for row in layer.weight])
    for drawn in (biases, weights.ravel()):
        assert np.abs(drawn).max() <= 0.5 and np.abs(drawn).max() > 0.49 and abs(drawn.mean()) < 0.02
    assert abs(biases.std() - 0.5 / 3 ** 0.5) < 0.01  # a uniform's, not 0
    assert all(b.data == 0.0 for b in Linear(4, 3, std=0.02, seed=0).bias)  # N(0, std) weights: biases at 0


def test_seeds_make_the_same_weights():
    assert Linear(4, 3, seed=7).state_dict() == Linear(4, 3, seed=7).state_dict()
    assert Linear(4, 3, seed=7).state_dict() != Linear(4, 3, seed=8).state_dict()
    assert Embedding(5, 3, seed=1).state_dict() == Embedding(5, 3, seed=1).state_dict()
    mg.manual_seed(3)
    a = Embedding(5, 3).state_dict()
    mg.manual_seed(3)
    assert Embedding(5, 3).state_dict() == a


def test_embedding_std_none_is_torchs_start_as_linears():
    # std=None (Linear's "as torch starts") drew every row from U(-0, 0): a table of zeros, silently
    assert Embedding(4, 3, std=None, seed=0).state_dict() == Embedding(4, 3, seed=0).state_dict()
    assert Embedding(4, 3, std=1.0, seed=0).state_dict() == Embedding(4, 3, seed=0).state_dict()


def test_embedding_rows_are_the_parameters_themselves():
    emb = Embedding(4, 3, seed=0)
    row = emb(2)
    assert all(v is w for v, w in zip(row, emb.weight[2], strict=True)) and all(v.requires_grad for v in row)
    with pytest.raises(IndexError, match=r"index must be an int in 0\.\.3, got 4"):
        emb(4)
    with pytest.raises(IndexError, match=r"index must be an int in 0\.\.3, got -1"):
        emb(-1)
    for wrong in (True, 1.0, np.bool_(False), "1", None):  # a wrong type, as torch refuses a float or bool index
        with pytest.raises(TypeError, match=rf"Embedding: index must be an int in 0\.\.3, got {type(wrong).__name__} "):
            emb(wrong)
    assert [n for n, _ in emb.named_parameters()][:2] == ["weight.0.0", "weight.0.1"]


def test_changing_the_list_an_embedding_gives_leaves_its_table_as_it_was():
    # emb(i) was the table's row list itself: `x = emb(3); x += emb(1)` made row 3 four entries long (and the
    # state held weight.3.2, which no file of an Embedding(4, 2) loads), `x[0] = x[0] * 2` put a computed Value
    # in place of a parameter; torch's emb(i) is a new tensor, whose changes leave emb.weight as it was
    emb = Embedding(4, 2, seed=0)
    state, params = emb.state_dict(), [id(p) for p in emb.parameters()]
    x = emb(3)
    x += emb(1)
    y = emb(2)
    y[0] = y[0] * 2
    y.append(y[1])
    assert emb.state_dict() == state and [id(p) for p in emb.parameters()] == params
    assert all(v is w for v, w in zip(emb(3), emb.weight[3], strict=True))  # the parameters themselves still


def test_rmsnorm_matches_its_formula_and_its_gradient():
    norm = RMSNorm(3, eps=1e-5)
    norm.weight[0].data = 2.0
    x = [Value(1.0), Value(-2.0), Value(0.5)]
    out = norm(x)
    xs = np.array([1.0, -2.0, 0.5])
    expected = xs / np.sqrt((xs ** 2).mean() + 1e-5) * [2.0, 1.0, 1.0]
    assert [o.data for o in out] == pytest.approx(expected, rel=1e-14)
    report = mg.testing.gradcheck(lambda a, b, c: sum(RMSNorm(3)([a, b, c])[i] * (i + 1) for i in range(3)),
                                  {"a": 1.0, "b": -2.0, "c": 0.5})
    assert report, report
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        RMSNorm(3, eps=0)
    with pytest.raises(ValueError, match="expected 3 inputs, got 2"):
        norm([1.0, 2.0])


def test_rmsnorm_default_eps_is_torchs():
    # torch.nn.RMSNorm(eps=None) adds float64's machine epsilon, not 1e-5: small inputs differ 3x
    torch = pytest.importorskip("torch")
    x = [1e-3, -2e-3, 5e-4, 0.0]
    ours = [o.data for o in RMSNorm(4)(x)]
    theirs = torch.nn.RMSNorm(4, dtype=torch.float64)(torch.tensor(x, dtype=torch.float64)).tolist()
    assert ours == pytest.approx(theirs, rel=1e-12)
    assert RMSNorm(4).eps == torch.finfo(torch.float64).eps


@pytest.mark.parametrize("make", [lambda: Linear(3, 2, seed=1), lambda: Embedding(4, 2, seed=1), lambda: RMSNorm(3)])
def test_save_and_load_like_the_other_modules(tmp_path, make):
    model = make()
    for p in model.parameters():
        p.data += 0.25
    model.save(tmp_path / "m.json")
    back = mg.Module.from_file(tmp_path / "m.json")
    assert type(back) is type(model) and back.state_dict() == model.state_dict()
    fresh = make()
    fresh.load(tmp_path / "m.json")
    assert fresh.state_dict() == model.state_dict()
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.json")


def test_blocks_equal_torch_modules():
    torch = pytest.importorskip("torch")
    layer, norm = Linear(3, 4, seed=0), RMSNorm(4)
    for i, g in enumerate(norm.weight):
        g.data = 1.0 + 0.1 * i
    x = [0.3, -1.2, 2.0]
    ours = [o.data for o in norm(layer(x))]
    t_layer = torch.nn.Linear(3, 4, dtype=torch.float64)
    t_norm = torch.nn.RMSNorm(4, dtype=torch.float64)  # both defaults: the same eps
    with torch.no_grad():
        t_layer.weight.copy_(torch.tensor([[w.data for w in row] for row in layer.weight], dtype=torch.float64))
        t_layer.bias.copy_(torch.tensor([b.data for b in layer.bias], dtype=torch.float64))
        t_norm.weight.copy_(torch.tensor([g.data for g in norm.weight], dtype=torch.float64))
    theirs = t_norm(t_layer(torch.tensor(x, dtype=torch.float64))).tolist()
    assert ours == pytest.approx(theirs, rel=1e-13)


@pytest.mark.parametrize("config, size, shown", [
    ({"type": "Embedding", "num": 1000, "dim": 1000}, 1_000_000, r"Embedding\(num=1000, dim=1000\)"),
    ({"type": "Linear", "nin": 3000, "nout": 3000, "bias": True}, 9_003_000, r"Linear\(nin=3000, nout=3000, bias=True\)"),
    ({"type": "RMSNorm", "dim": 10_000_000, "eps": 1e-5}, 10_000_000, r"RMSNorm\(dim=10000000"),
], ids=["Embedding", "Linear", "RMSNorm"])
def test_a_tiny_file_claiming_a_huge_block_is_refused_without_building_it(tmp_path, config, size, shown):
    path = tmp_path / "evil.json"
    path.write_text(json.dumps({"format": "microgradnn-model", "config": config, "state": {}}))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=rf"evil.json describes {shown}.* with {size} parameters but holds 0"):
            mg.Module.from_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # building the block would take hundreds of MB


@pytest.mark.parametrize("make", [lambda: Linear(3, 2), lambda: Linear(3, 2, bias=False), lambda: Embedding(4, 2),
                                  lambda: RMSNorm(3), lambda: mg.Neuron(3), lambda: mg.Layer(3, 2),
                                  lambda: mg.MLP(3, [4, 2, 1])])
def test_config_size_counts_the_parameters_from_the_config_alone(make):
    model = make()
    assert type(model).config_size(model.config()) == model.num_parameters()
    assert "config_size" in type(model).__dict__  # the fallback would build the module to count


def test_linear_bias_and_rmsnorm_eps_are_checked():
    with pytest.raises(TypeError, match="Linear: bias must be True or False, got str 'no'"):
        Linear(2, 2, bias="no")
    with pytest.raises(TypeError, match="RMSNorm: eps must be a finite number > 0, got str 'x'"):
        RMSNorm(2, eps="x")
    with pytest.raises(ValueError, match="RMSNorm: eps must be a finite number > 0, got 0.0"):
        RMSNorm(2, eps=0.0)
    assert RMSNorm(2, eps=np.float32(1e-3)).eps == pytest.approx(1e-3)



@pytest.mark.parametrize("bias", ["yes", None, 1])
def test_a_file_whose_linear_bias_is_no_bool_is_refused_by_name(tmp_path, bias):
    path = tmp_path / "linear.json"
    path.write_text(json.dumps({"format": "microgradnn-model", "config": {"type": "Linear", "nin": 2, "nout": 1,
                                                                          "bias": bias}, "state": {}}))
    with pytest.raises(ValueError, match=rf"\(TypeError: Linear: bias must be True or False, got {bias!r}\)"):
        mg.Module.from_file(path)

def test_std_is_checked_naming_the_module_typeerror_for_a_wrong_type():
    with pytest.raises(TypeError, match=r"Linear: std \(None, or a number\) must be a finite number >= 0, got str"):
        Linear(2, 2, std="0.1")
    with pytest.raises(TypeError, match=r"Embedding: std .* got bool"):
        Embedding(3, 2, std=True)
    with pytest.raises(ValueError, match=r"Embedding: std .* got -1"):
        Embedding(3, 2, std=-1)
    assert Linear(2, 2, std=np.float32(0.5), seed=0).weight[0][0].data != 0.0


def _blocks_loss(layer, emb, norm, x, index):
    """A loss through all three blocks: norm(layer(x) + emb(index)), weighted."""
    h = [a + e for a, e in zip(layer(x), emb(index))]
    return sum(o * (k + 1) for k, o in enumerate(norm(h)))


@pytest.mark.parametrize("index_as_value", [False, True])
def test_linear_embedding_and_rmsnorm_gradients_match_finite_differences_and_torch(index_as_value):
    """Every parameter of the three blocks and every input, against central differences and
    torch float64 (the Embedding picked by an int and by a Value index, a take node)."""
    layer, emb, norm = Linear(3, 4, seed=0), Embedding(5, 4, seed=1), RMSNorm(4, eps=1e-5)
    for i, g in enumerate(norm.weight):
        g.data = 1.0 + 0.1 * i
    x0 = [0.3, -1.2, 2.0]
    index = lambda: Value(2.0, requires_grad=False) if index_as_value else 2
    params = layer.parameters() + emb.parameters() + norm.parameters()
    loss = lambda: _blocks_loss(layer, emb, norm, x0, index())
    out = loss()
    out.backward()
    grads = [p.grad for p in params]
    assert grads == pytest.approx(numeric_param_grads(loss, params), rel=1e-6, abs=1e-8)
    xs = [Value(v) for v in x0]
    _blocks_loss(layer, emb, norm, xs, index()).backward()
    f = lambda *vs: _blocks_loss(layer, emb, norm, list(vs), index())
    assert [v.grad for v in xs] == pytest.approx(numeric_grads(f, x0), rel=1e-6, abs=1e-8)
    torch = pytest.importorskip("torch")
    t_layer = torch.nn.Linear(3, 4, dtype=torch.float64)
    t_emb = torch.nn.Embedding(5, 4, dtype=torch.float64)
    t_norm = torch.nn.RMSNorm(4, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        t_layer.weight.copy_(torch.tensor([[w.data for w in row] for row in layer.weight], dtype=torch.float64))
        t_layer.bias.copy_(torch.tensor([b.data for b in layer.bias], dtype=torch.float64))
        t_emb.weight.copy_(torch.tensor([[w.data for w in row] for row in emb.weight], dtype=torch.float64))
        t_norm.weight.copy_(torch.tensor([g.data for g in norm.weight], dtype=torch.float64))
    tx = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    t_out = (t_norm(t_layer(tx) + t_emb(torch.tensor(2))) * torch.arange(1.0, 5.0, dtype=torch.float64)).sum()
    t_out.backward()
    assert out.data == pytest.approx(t_out.item(), rel=1e-12)
    theirs = [*t_layer.weight.grad.flatten().tolist(), *t_layer.bias.grad.tolist(), *t_emb.weight.grad.flatten().tolist(),
              *t_norm.weight.grad.tolist()]
    assert [n for n, _ in layer.named_parameters()][:3] == ["weight.0.0", "weight.0.1", "weight.0.2"]
    assert grads == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    assert [v.grad for v in xs] == pytest.approx(tx.grad.tolist(), rel=1e-12)


@pytest.mark.parametrize("build, count", [(lambda: Linear(3, 4), 16), (lambda: Linear(3, 4, bias=False), 12),
                                          (lambda: Embedding(5, 3), 15), (lambda: RMSNorm(6), 6)])
def test_a_block_above_max_parameters_is_refused_before_it_is_built(monkeypatch, build, count):
    monkeypatch.setattr(mg.nn.init, "MAX_PARAMETERS", count - 1)
    with pytest.raises(ValueError, match=rf"make {count} parameters, more than MAX_PARAMETERS={count - 1} "):
        build()
    monkeypatch.setattr(mg.nn.init, "MAX_PARAMETERS", count)
    assert len(build().parameters()) == count
