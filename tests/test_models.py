import tracemalloc

import numpy as np
import pytest

import microgradnn as mg
from microgradnn.models import GPT
from conftest import names_huge_ints_by_size, numeric_param_grads

SEQUENCES = [[0, 5, 3, 7, 1, 2, 0], [0, 9, 9, 0], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0]]


def small_gpt(**kwargs):
    model = GPT(16, n_embd=8, n_head=2, n_layer=2, block_size=16, seed=0, **kwargs)
    rng = np.random.default_rng(1)
    for p in model.parameters():  # the norms' gains too, so every weight matters
        p.data += rng.normal(0.0, 0.05)
    return model


def test_gpt_shape_names_and_repr():
    model = GPT(27, seed=0)
    assert model.num_parameters() == 27 * 16 + 16 * 16 + 4 * 16 * 16 + 2 * 16 * 64 + 2 * 16 + 16 * 27
    names = [n for n, _ in model.named_parameters()]
    assert names[0] == "token_embedding.weight.0.0" and names[-1] == "head.weight.26.15"
    assert "blocks.0.attn.query.weight.3.2" in names and "blocks.0.norm2.weight.15" in names
    assert repr(model) == "GPT(vocab 27, n_embd 16, 4 heads, 1 layer, block 16, 4224 parameters)"
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPT(27, n_embd=10, n_head=4)



def test_a_gpt_starts_with_small_weights_and_norm_gains_of_one():
    model = GPT(27, seed=0)  # every matrix N(0, 0.08), as tiny GPTs train best
    gains = [p.data for n, p in model.named_parameters() if ".norm" in n]
    weights = [p.data for n, p in model.named_parameters() if ".norm" not in n]
    assert gains == [1.0] * 32 and len(weights) == 4224 - 32
    assert np.mean(weights) == pytest.approx(0.0, abs=0.005) and np.std(weights) == pytest.approx(0.08, rel=0.05)

def test_gpt_loss_and_every_gradient_equal_pytorch():
    torch = pytest.importorskip("torch")
    model = small_gpt()
    reference = model.to_torch()
    for tokens in SEQUENCES:
        model.zero_grad()
        reference.zero_grad()
        loss = model.loss(tokens)
        loss.backward()
        theirs = reference.loss(torch.tensor([tokens]))
        theirs.backward()
        assert loss.data == pytest.approx(theirs.item(), rel=1e-12)
        grads = {name: p.grad for name, p in reference.named_parameters()}
        ours = mg.models.GPT.from_torch(reference)  # names map one to one
        for name, p in model.named_parameters():
            tensor_name, index = _split(name, grads)
            assert p.grad == pytest.approx(grads[tensor_name][index].item(), rel=1e-10, abs=1e-14), name
        assert ours.state_dict() == model.state_dict()


def _split(name, tensors):
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        if ".".join(parts[:cut]) in tensors:
            return ".".join(parts[:cut]), tuple(int(p) for p in parts[cut:])
    raise KeyError(name)


def test_the_module_to_torch_makes_pickles_as_torch_modules_do(tmp_path):
    # its classes were local to a function: torch.save(module) and a spawned worker's pickle failed with
    # "Can't pickle local object 'torch_gpt.<locals>.GPT'"
    torch = pytest.importorskip("torch")
    import pickle
    model = small_gpt()
    module = model.to_torch()
    torch.save(module, tmp_path / "gpt.pt")
    for back in (torch.load(tmp_path / "gpt.pt", weights_only=False), pickle.loads(pickle.dumps(module))):
        tokens = torch.tensor([SEQUENCES[0]])
        assert torch.equal(back(tokens), module(tokens)) and type(back).__name__ == "GPT"
        assert GPT.from_torch(back).state_dict() == model.state_dict()
    # one process's pickle read in another, where no module was made yet
    code = (f"import pickle, torch; m = pickle.load(open({str(tmp_path / 'gpt.pkl')!r}, 'rb')); "
            f"print(m(torch.tensor([{SEQUENCES[0]}])).shape)")
    (tmp_path / "gpt.pkl").write_bytes(pickle.dumps(module))
    import os
    import subprocess
    import sys
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(mg.__file__)))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == f"torch.Size([1, {len(SEQUENCES[0])}, 16])", done.stderr


def test_the_torch_classes_made_by_threads_at_once_are_the_ones_pickle_finds():
    # made at first use and cached unlocked: threads that came at once each made classes, the last kept,
    # so the others' modules failed to pickle ("not the same object as microgradnn.nn.convert._TorchGPT")
    pytest.importorskip("torch")
    code = """
import importlib, sys, threading
import microgradnn.nn.convert as convert
sys.setswitchinterval(1e-6)
for trial in range(40):
    importlib.reload(convert)  # its classes not made yet
    start, got = threading.Barrier(8), []
    def first_use():
        start.wait()
        got.append(convert._TorchGPT)
    threads = [threading.Thread(target=first_use) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(cls is convert._TorchGPT for cls in got), trial
print("ok")
"""
    import os
    import subprocess
    import sys
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(mg.__file__)))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "ok", done.stderr[-500:]


def test_the_torch_modules_loss_refuses_what_gpt_loss_refuses():
    # one token gave a loss of nan; a row (no batch) "IndexError: too many indices"; and block_size + 2
    # tokens an error about the forward's shape, with one token fewer than given
    torch = pytest.importorskip("torch")
    module = GPT(5, n_embd=4, n_head=2, n_layer=1, block_size=4, seed=0).to_torch()
    for idx in ([[0]], [0, 1, 2], [[0, 1, 2, 3, 4, 0]]):
        with pytest.raises(ValueError, match=r"GPT.loss: expected token ids of shape \(B, T\) with T from 2 to "
                                             rf"block_size \+ 1 = 5, got \({len(idx)},"):
            module.loss(torch.tensor(idx))
    assert module.loss(torch.tensor([[0, 1, 2, 3, 0]])).item() > 0


def test_to_torch_gives_the_same_logits_at_every_position_and_round_trips():
    torch = pytest.importorskip("torch")
    model = small_gpt()
    module = model.to_torch()
    tokens = SEQUENCES[2][:16]
    cache = model.new_cache()
    ours = np.array([[v.data for v in model(t, pos, cache)] for pos, t in enumerate(tokens)])
    theirs = module(torch.tensor([tokens]))[0].detach().numpy()
    assert np.abs(ours - theirs).max() <= 1e-12 * np.abs(theirs).max()
    back = GPT.from_torch(module)
    assert back.state_dict() == model.state_dict() and back.config() == model.config()
    with torch.no_grad():
        module.head.weight[0, 0] += 1.0
    assert GPT.from_torch(module).state_dict()["head.weight.0.0"] == model.state_dict()["head.weight.0.0"] + 1.0
    with pytest.raises(ValueError, match="made by GPT.to_torch"):
        GPT.from_torch(torch.nn.Linear(2, 2))


def test_from_torch_refuses_tensors_it_would_drop_or_cut_and_names_a_nan():
    torch = pytest.importorskip("torch")
    model = GPT(6, n_embd=8, n_head=2, block_size=5, seed=1)
    changes = {  # each would be silently dropped or cut down to the config's sizes
        "head.bias": lambda t: setattr(t, "head", torch.nn.Linear(8, 6, bias=True, dtype=torch.float64)),
        "'token_embedding.weight' must have shape \\(6, 8\\).*got \\(10, 8\\)":
            lambda t: setattr(t, "token_embedding", torch.nn.Embedding(10, 8, dtype=torch.float64)),
        "'position_embedding.weight' must have shape \\(5, 8\\).*got \\(50, 8\\)":
            lambda t: setattr(t, "position_embedding", torch.nn.Embedding(50, 8, dtype=torch.float64)),
        "'head.weight' at index \\(1, 2\\)": lambda t: t.head.weight.data.__setitem__((1, 2), float("nan")),
    }
    for message, change in changes.items():
        module = model.to_torch()
        change(module)
        with pytest.raises(ValueError, match=message):
            GPT.from_torch(module)


def test_to_torch_and_from_torch_keep_frozen_weights_frozen():
    pytest.importorskip("torch")
    model = GPT(6, n_embd=6, n_head=3, n_layer=2, block_size=5, seed=1)
    model.blocks[1].attn.requires_grad_(False)
    module = model.to_torch()  # was all trainable: torch's optimizer stepped the frozen attention
    frozen = [name for name, p in module.named_parameters() if not p.requires_grad]
    assert frozen == [f"blocks.1.attn.{n}.weight" for n in ("query", "key", "value", "proj")]
    module.head.weight.requires_grad_(False)
    back = GPT.from_torch(module)  # was all trainable
    assert {n for n, p in back.named_parameters() if not p.requires_grad} == \
        {n for n, p in model.named_parameters() if not p.requires_grad or n.startswith("head.")}
    model.head.parameters()[3].requires_grad_(False)
    with pytest.raises(ValueError, match=r"to_torch: tensor 'head.weight' is partly frozen \(1 of 36 parameters"):
        model.to_torch()


def tied_gpt():
    model = GPT(6, n_embd=4, n_head=2, block_size=5, seed=1)
    model.head.weight = model.token_embedding.weight  # GPT-2's tie: one table embeds and reads out
    return model


def _gpt_step(model, tokens):
    opt = mg.optim.Adam(model.parameters(), lr=0.05)
    model.loss(tokens).backward()
    opt.step()
    return model.state_dict()


def test_a_gpt_with_its_head_tied_to_its_embedding_keeps_the_tie_through_torch_and_files(tmp_path):
    torch = pytest.importorskip("torch")
    model, tokens = tied_gpt(), [0, 3, 1, 4, 2, 0]
    module = model.to_torch()  # was two tensors: torch trained the head and the embedding apart
    assert module.head.weight is module.token_embedding.weight
    # as torch's: state_dict (and named_parameters(remove_duplicate=False)) under both names, parameters() once
    assert sum(t.numel() for t in module.state_dict().values()) == len(model.state_dict()) == \
        len(model.named_parameters(remove_duplicate=False))
    assert sum(t.numel() for t in module.parameters()) == model.num_parameters() == len(model.parameters())
    assert {"token_embedding.weight", "head.weight"} <= set(module.state_dict())
    back = GPT.from_torch(module)  # was refused: the GPT could not hold one tensor in two places
    assert back.head.weight[5][3] is back.token_embedding.weight[5][3]
    assert back.num_parameters() == model.num_parameters() == len(model.state_dict()) - 6 * 4
    back.save(tmp_path / "tied.json")
    again = GPT.from_torch(mg.Module.from_file(tmp_path / "tied.json").to_torch())
    assert again.state_dict() == model.state_dict()
    loss = module.loss(torch.tensor([tokens]))
    loss.backward()
    ours = model.loss(tokens)
    ours.backward()
    assert ours.data == pytest.approx(loss.item(), rel=1e-12)  # the tied table's gradient: both uses summed
    grad = module.token_embedding.weight.grad.numpy()
    assert [w.grad for row in model.token_embedding.weight for w in row] == pytest.approx(grad.ravel(), abs=1e-12)
    model.zero_grad()
    assert _gpt_step(again, tokens) == _gpt_step(model, tokens)


def test_from_torch_refuses_a_head_sharing_the_embeddings_memory_as_another_tensor():
    torch = pytest.importorskip("torch")
    module = GPT(6, n_embd=4, n_head=2, block_size=5, seed=1).to_torch()
    module.head.weight = torch.nn.Parameter(module.token_embedding.weight)  # torch trains them as one memory
    with pytest.raises(ValueError, match=r"from_torch: tensors 'token_embedding.weight' and 'head.weight' share "
                                         r"memory .* make them one tensor"):
        GPT.from_torch(module)  # was read as two tables, trained apart
    module.head.weight = module.token_embedding.weight  # one tensor: one parameter each
    back = GPT.from_torch(module)
    assert back.head.weight[5][3] is back.token_embedding.weight[5][3]


@pytest.mark.parametrize("bad", [3, None, "model.pt", {"type": "GPT"}])
def test_from_torch_of_what_is_no_torch_module_is_a_type_error(bad):
    pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"^GPT.from_torch: expected a torch.nn.Module made by GPT.to_torch, got "):
        GPT.from_torch(bad)  # was a ValueError, as for a torch module of another kind (MLP.from_torch's is a TypeError)


def test_from_torch_refuses_a_module_whose_backward_hooks_change_its_gradients():
    torch = pytest.importorskip("torch")
    model = GPT(6, n_embd=4, n_head=2, block_size=5, seed=1)
    module = model.to_torch()
    module.head.weight.register_hook(lambda grad: None)  # a logging hook: read
    state = torch.get_rng_state()
    assert GPT.from_torch(module).state_dict() == model.state_dict()
    assert torch.equal(torch.get_rng_state(), state)  # the probe's module drew no number of the user's
    module.blocks[0].mlp.fc.weight.register_hook(lambda grad: 0 * grad)  # torch would never train it
    with pytest.raises(ValueError, match=r"^GPT.from_torch: the module's gradients on the token ids \[0, 1, 2\] "
                                         r"differ .* a backward hook"):
        GPT.from_torch(module)  # was read as if the hook were not there
    module = model.to_torch()
    module.blocks[0].attn.register_full_backward_hook(lambda attention, grad_in, grad_out: (2 * grad_in[0],))
    with pytest.raises(ValueError, match="a backward hook"):
        GPT.from_torch(module)
    with torch.inference_mode():  # its tensors are inference tensors, which autograd cannot save: copied
        assert GPT.from_torch(model.to_torch()).state_dict() == model.state_dict()
    frozen = GPT.from_torch(model.to_torch().requires_grad_(False))  # no gradient to compare: read
    assert not any(p.requires_grad for p in frozen.parameters())


def test_from_torch_refuses_a_module_computing_otherwise_in_training_mode_and_leaves_its_modes():
    torch = pytest.importorskip("torch")
    from microgradnn.nn.convert import _TorchGPT
    model = GPT(6, n_embd=4, n_head=2, block_size=5, seed=1)

    class WithDropout(_TorchGPT):  # the same state names, and a dropout on the logits
        def __init__(self, p):
            super().__init__(model.config(), 1e-5)
            self.drop = torch.nn.Dropout(p)

        def forward(self, idx):
            return self.drop(super().forward(idx))
    module = WithDropout(0.5)
    module.load_state_dict(model.to_torch().state_dict())
    module.eval()  # was read: its logits agree in eval mode, and torch would train it with dropout
    module.blocks[0].train()
    modes, state = [m.training for m in module.modules()], torch.get_rng_state()
    with pytest.raises(ValueError, match=r"^GPT.from_torch: the module computes other outputs in training mode "
                                         r"\(module.train\(\)\) than in eval mode"):
        GPT.from_torch(module)
    assert [m.training for m in module.modules()] == modes and True in modes and False in modes
    assert torch.equal(torch.get_rng_state(), state)  # the probe's dropout draws no number of the user's
    none = WithDropout(0.0)
    none.load_state_dict(model.to_torch().state_dict())
    assert GPT.from_torch(none).state_dict() == model.state_dict()  # no dropout: no difference


def test_from_torch_refuses_a_backward_hook_acting_only_in_training_mode_of_a_module_in_eval_mode():
    pytest.importorskip("torch")
    module = GPT(6, n_embd=4, n_head=2, block_size=5, seed=1).to_torch().eval()
    module.head.register_full_backward_hook(lambda head, grad_in, grad_out: (2 * grad_in[0],) if head.training else None)
    with pytest.raises(ValueError, match=r"^GPT.from_torch: the module's gradients on the token ids \[0, 1, 2\] "
                                         r"differ .* a backward hook"):
        GPT.from_torch(module)  # was read: its gradients were probed in eval mode, and torch trains it doubled
    assert not any(m.training for m in module.modules())


def test_from_torch_refuses_a_forward_hook_acting_only_with_grad_enabled():
    torch = pytest.importorskip("torch")
    module = GPT(6, n_embd=4, n_head=2, block_size=5, seed=1).to_torch()
    module.register_forward_hook(lambda gpt, inputs, logits: logits + 1 if torch.is_grad_enabled() else None)
    with pytest.raises(ValueError, match=r"^GPT.from_torch: the module computes other outputs with grad enabled"):
        GPT.from_torch(module)  # was read: its logits were compared under no_grad only, its gradients are the same


def test_from_torch_leaves_a_modules_buffers_as_they_were():
    torch = pytest.importorskip("torch")
    from microgradnn.nn.convert import _TorchGPT
    model = GPT(6, n_embd=4, n_head=2, block_size=5, seed=1)

    class Counting(_TorchGPT):  # the same state names, and a count of its training steps
        def __init__(self):
            super().__init__(model.config(), 1e-5)
            self.register_buffer("steps", torch.zeros((), dtype=torch.long), persistent=False)

        def forward(self, idx):
            if self.training:
                self.steps += 1
            return super().forward(idx)
    module = Counting()
    module.load_state_dict(model.to_torch().state_dict())
    for training in (False, True):
        assert GPT.from_torch(module.train(training)).state_dict() == model.state_dict()
        assert int(module.steps) == 0  # was 2: the probes ran it on its own buffer


def test_from_torch_refuses_logits_changed_by_a_millionth_by_a_forward_hook():
    pytest.importorskip("torch")
    module = GPT(6, n_embd=4, n_head=2, block_size=5, seed=1).to_torch()
    module.register_forward_hook(lambda gpt, inputs, logits: logits * (1 + 1e-6))
    with pytest.raises(ValueError, match=r"^GPT.from_torch: the module's logits on the token ids \[0, 1, 2\] differ "
                                         r".* no forward hook change it"):
        GPT.from_torch(module)  # was read: the logits were compared to 1e-5 of the largest


def test_a_tied_gpts_gradient_agrees_with_finite_differences():
    model = GPT(3, n_embd=2, n_head=1, block_size=3, seed=0)
    model.head.weight = model.token_embedding.weight
    tokens = [0, 2, 1, 0]
    model.loss(tokens).backward()
    shared = [w for row in model.token_embedding.weight for w in row]
    assert [w.grad for w in shared] == pytest.approx(numeric_param_grads(lambda: model.loss(tokens), shared),
                                                     rel=1e-6, abs=1e-9)


def test_to_torch_refuses_a_gpt_sharing_part_of_a_tensor():
    pytest.importorskip("torch")
    model = GPT(6, n_embd=4, n_head=2, block_size=5, seed=1)
    model.head.weight[2][1] = model.token_embedding.weight[0][0]
    with pytest.raises(ValueError, match=r"to_torch: tensor 'head.weight' shares parameters \('head.weight.2.1' is "
                                         r"'token_embedding.weight.0.0'\) but is not one other tensor whole"):
        model.to_torch()


def test_from_torch_refuses_a_module_whose_config_says_other_than_it_computes():
    torch = pytest.importorskip("torch")
    model = GPT(6, n_embd=8, n_head=2, block_size=5, seed=1)
    module = model.to_torch()
    module.config["n_head"] = 4  # the head count is in no tensor: the module still computes 2 heads
    with pytest.raises(ValueError, match=r"logits on the token ids \[0, 1, 2\] differ .*n_head=4"):
        GPT.from_torch(module)
    module.config["n_head"] = 2
    single = module.float()  # a float32 module is read as it computes, to its rounding
    assert GPT.from_torch(single).config() == model.config()
    module.forward = lambda idx: torch.zeros(1, 3, 6)  # computes something else entirely
    with pytest.raises(ValueError, match="differ"):
        GPT.from_torch(module)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_from_torch_reads_a_half_precision_module_as_its_weights_say(dtype):
    torch = pytest.importorskip("torch")
    model = GPT(6, n_embd=8, n_head=2, block_size=5, seed=1)
    module = model.to_torch().to(getattr(torch, dtype))  # its own logits differ from float64's by its rounding
    back = GPT.from_torch(module)  # was refused: "its config (n_head=2?) must say what it computes"
    assert back.config() == model.config()
    assert back.state_dict()["head.weight.0.0"] == float(module.state_dict()["head.weight"][0, 0])
    assert module.state_dict()["head.weight"].dtype == getattr(torch, dtype)  # the module is left as it was


def test_loss_checks_the_sequence_length():
    model = GPT(5, n_embd=4, n_head=2, block_size=4, seed=0)
    with pytest.raises(ValueError, match="needs 2 to block_size \\+ 1 = 5 tokens, got 6"):
        model.loss([0, 1, 2, 3, 4, 0])
    with pytest.raises(ValueError, match="got 1"):
        model.loss([0])
    with pytest.raises(IndexError, match=r"GPT.loss: tokens\[0\] must be a token id \(an int in 0..4\), got int 7"):
        model.loss([7, 0])
    with pytest.raises(IndexError, match=r"GPT.loss: tokens\[1\] must be a token id \(an int in 0..4\), got int 7"):
        model.loss([0, 7])
    assert model.loss([0, 1, 2, 3, 4]).data > 0


def test_generate_samples_with_a_temperature():
    model = small_gpt()
    a = model.generate([0], temperature=1.0, stop=0, seed=5)
    assert a == model.generate([0], temperature=1.0, stop=0, seed=5)
    assert 0 not in a and len(a) <= 16
    greedy = model.generate([0], temperature=0, max_new_tokens=5)
    cache = model.new_cache()
    logits = model(0, 0, cache)
    assert greedy[0] == int(np.argmax([v.data for v in logits])) and len(greedy) == 5
    assert len(model.generate([0, 3, 4], max_new_tokens=100, seed=0)) == 14  # the block fills up
    # at temperature 1 tokens come as often as softmax(logits) says; a cold one picks the likeliest
    p = np.exp([v.data for v in logits])
    p /= p.sum()
    rng = np.random.default_rng(0)
    drawn = [model.generate([0], max_new_tokens=1, seed=rng)[0] for _ in range(2000)]
    assert np.bincount(drawn, minlength=16) / 2000 == pytest.approx(p, abs=0.03)
    assert {model.generate([0], temperature=1e-6, max_new_tokens=1, seed=s)[0] for s in range(10)} == {greedy[0]}
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        model.generate([0], temperature=-1)


def test_gpt_saves_and_loads(tmp_path):
    model = small_gpt()
    model.save(tmp_path / "gpt.json")
    back = mg.Module.from_file(tmp_path / "gpt.json")
    assert isinstance(back, GPT) and back.state_dict() == model.state_dict()
    assert back.loss(SEQUENCES[0]).data == model.loss(SEQUENCES[0]).data


def test_gpt_gradients_pass_the_finite_difference_check():
    model = GPT(6, n_embd=4, n_head=2, block_size=4, seed=0)
    # no rows in X: the loss function reads the model itself
    report = mg.testing.check_module_gradients(model, lambda outs, y: model.loss([0, 3, 5, 1, 0]),
                                               np.zeros((0, 0)), None)
    assert report, report
    assert len(report.rows) == model.num_parameters()


def test_draw_modules_boxes_each_module_of_a_position():
    model = small_gpt()
    block = model.blocks[0]
    chosen = [model.token_embedding, model.position_embedding, block.norm1, block.attn, block.norm2, block.mlp,
              model.blocks[1], model.head, block, model]
    untagged = model.loss([0, 3, 5, 7])  # built outside tag_modules(): nothing says which module made what
    assert untagged.origin is None and all(v.origin is None for v in mg.topological_order(untagged))
    with pytest.raises(ValueError, match=r"build the graph inside `with microgradnn.nn.tag_modules\(\):`"):
        mg.viz.draw_modules(untagged, chosen)
    cache = model.new_cache()
    with mg.nn.tag_modules():
        for pos, t in enumerate([0, 3, 5]):
            logits = model(t, pos, cache)
        loss = mg.losses.cross_entropy([logits], [7])
    source = mg.viz.draw_modules(loss, chosen).source
    for name in ("blocks.0.norm1", "blocks.0.attn", "blocks.0.mlp", "blocks.1", "head", "gpt"):
        assert f"<{name}<BR/>" in source, name
    # every node made inside a chosen module is in its box: only the loss's own nodes are left
    assert source.count("shape=plaintext") == 1  # cross_entropy(t, z), one node (z is the head's output)
    assert "blocks.0.attn<BR/>CausalSelfAttention, 256 params" in source



def test_tag_modules_leaves_the_nodes_of_positions_read_before_it_untagged():
    model = small_gpt()
    cache = model.new_cache()
    first = model(0, 0, cache)  # read outside tag_modules(): its keys and values stay in the cache
    before = [v for v in mg.topological_order(mg.losses.cross_entropy([first], [1])) if v.inputs]
    with mg.nn.tag_modules():
        model(3, 1, cache)
    assert before and all(v.origin is None for v in before)  # not the GPT's own nodes of the new position

@pytest.mark.parametrize("kwargs, error, message", [
    (dict(stop="x"), TypeError, r"generate: stop must be None or a token id \(an int in 0..15\), got str 'x'"),
    (dict(stop=16), ValueError, r"stop must be None or a token id \(an int in 0..15\), got int 16"),
    (dict(seed="x"), TypeError, "generate: seed must be an int >= 0, a numpy Generator or RandomState, or None, "
                                  "got str 'x'"),
    (dict(seed=-1), ValueError, "generate: seed must be an int >= 0, got -1"),
    (dict(temperature="1"), TypeError, "generate: temperature must be a finite number >= 0, got str '1'"),
    (dict(temperature=float("inf")), ValueError, "temperature must be a finite number >= 0, got inf"),
])
def test_generate_checks_stop_seed_and_temperature(kwargs, error, message):
    model = small_gpt()
    with pytest.raises(error, match=message):
        model.generate([0], **kwargs)
    # any real temperature, a numpy token id as stop, a Generator as seed
    a = model.generate([0], temperature=np.float32(0.5), stop=np.int64(0), seed=np.random.default_rng(3))
    assert a == model.generate([0], temperature=0.5, stop=0, seed=np.random.default_rng(3))


def test_a_tiny_file_claiming_a_huge_gpt_is_refused_without_building_it(tmp_path):
    assert GPT.config_size(small_gpt().config()) == small_gpt().num_parameters()
    path = tmp_path / "evil.json"
    path.write_text('{"format":"microgradnn-model","config":{"type":"GPT","vocab_size":27,"n_embd":1024,'
                    '"n_head":4,"n_layer":4,"block_size":16},"state":{}}')
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"evil.json describes GPT\(vocab_size=27, n_embd=1024.* "
                                             r"with 50411520 parameters but holds 0"):
            mg.Module.from_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # building it would take gigabytes


def test_from_torch_refuses_complex_weights_instead_of_dropping_their_imaginary_parts():
    torch = pytest.importorskip("torch")
    module = GPT(6, n_embd=8, n_head=2, block_size=5, seed=1).to_torch()
    module.head.weight.data = module.head.weight.data.to(torch.complex128)
    with pytest.raises(TypeError, match="real floating-point number, got torch.complex128 in tensor 'head.weight'"):
        GPT.from_torch(module)


def test_from_torch_checks_the_config_sizes_against_the_tensors_before_building():
    pytest.importorskip("torch")
    module = GPT(6, n_embd=8, n_head=2, block_size=5, seed=1).to_torch()
    module.config = dict(module.config, vocab_size=10**12)  # was built first: 10**5 took 14 s, this a MemoryError
    with pytest.raises(ValueError, match=r"describes 16000000000824 parameters but its tensors hold 920"):
        GPT.from_torch(module)
    module.config = dict(module.config, vocab_size=10**5000)
    with pytest.raises(ValueError, match=r"describes .*an int of about \d+ digits.* parameters"):
        GPT.from_torch(module)
    del module.config["n_layer"]
    with pytest.raises(ValueError, match="the module's config has no 'n_layer'"):
        GPT.from_torch(module)


def test_from_torch_refuses_norms_that_compute_something_else():
    torch = pytest.importorskip("torch")
    model = GPT(6, n_embd=8, n_head=2, block_size=5, seed=1)
    for norm in (torch.nn.RMSNorm(8, dtype=torch.float64),  # torch's default eps, not the GPT's 1e-5
                 torch.nn.LayerNorm(8, bias=False, dtype=torch.float64)):  # the same state names
        module = model.to_torch()
        module.blocks[0].norm2 = norm
        with pytest.raises(ValueError, match=r"blocks.0.norm2 must be torch.nn.RMSNorm\(eps=1e-05\) as in the GPT, "
                                             f"got {type(norm).__name__}"):
            GPT.from_torch(module)


@pytest.mark.parametrize("tokens, message", [
    ([0, 1.0], r"tokens\[1\] must be a token id \(an int in 0..4\), got float 1.0"),
    ([0, True], r"tokens\[1\] must be a token id \(an int in 0..4\), got bool True"),
    ([0.0, 1], r"tokens\[0\] must be a token id \(an int in 0..4\), got float 0.0"),
    ("ab", "tokens must be a list of token ids, got str 'ab'"),
], ids=["float-target", "bool-target", "float-input", "str"])
def test_loss_refuses_tokens_that_are_not_token_ids(tokens, message):
    model = GPT(5, n_embd=4, n_head=2, block_size=4, seed=0)
    with pytest.raises(TypeError, match=f"GPT.loss: {message}"):
        model.loss(tokens)
    assert model.loss((x for x in [0, 1])).data == model.loss([0, 1]).data  # any iterable of ids


def test_generate_names_a_bad_start_token():
    model = GPT(5, n_embd=4, n_head=2, block_size=4, seed=0)
    with pytest.raises(IndexError, match=r"generate: start\[1\] must be a token id \(an int in 0..4\), got int 9"):
        model.generate([0, 9])
    with pytest.raises(TypeError, match="generate: start must be a list of token ids, got int 0"):
        model.generate(0)
    # a 0-d array or tensor (one id) raised a bare "TypeError: iteration over a 0-d array"
    with pytest.raises(TypeError, match=r"generate: start must be a list of token ids, got ndarray array\(0\)"):
        model.generate(np.array(0))
    with pytest.raises(TypeError, match=r"GPT.loss: tokens must be a list of token ids, got ndarray array\(2\)"):
        model.loss(np.array(2))



@pytest.mark.parametrize("length", [0, 17])
def test_generate_names_a_start_that_is_empty_or_fills_more_than_the_block(length):
    with pytest.raises(ValueError, match=rf"generate: start needs 1 to block_size = 16 tokens, got {length}"):
        small_gpt().generate([0] * length, seed=0)

def test_generate_at_a_tiny_temperature_picks_the_likeliest_without_a_warning():
    import warnings
    model = GPT(5, n_embd=4, n_head=2, block_size=4, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in divide" was printed
        assert model.generate([0], temperature=1e-320, seed=0) == model.generate([0], temperature=0)


def test_compiled_loss_names_a_token_id_out_of_range_as_the_scalar_loss_does():
    # was: "compiled, sample 1: take(s2=9.0, 0.0151..., ...): index must be an integer in 0..4,
    # got 9.0", the embedding's column and not the token's place; outside compile a Value token too
    model = GPT(5, n_embd=4, n_head=2, block_size=4, seed=0)
    step = mg.compile(model.loss)
    good = step([[0, 1, 2], [0, 2, 3]]).data
    for bad, where, got in [([0, 9, 3], 1, "9"), ([0, 2, -1], 2, "-1"), ([0, 2, 3, 4, 5], 4, "5")]:
        with pytest.raises(IndexError, match=rf"compiled, sample 1: GPT.loss: tokens\[{where}\] must be a token id "
                                             rf"\(an int in 0..4\), got {got}$"):
            step([[0, 1, 2], bad])
    assert step([[0, 1, 2], [0, 2, 3]]).data == good and "1 recording)" in repr(step)  # one for the valid ones
    with pytest.raises(IndexError, match=r"GPT.loss: tokens\[1\] must be a token id \(an int in 0..4\), "
                                         r"got Value\(data=9, grad=0\)$"):
        model.loss([mg.Value(0.0), mg.Value(9.0)])


@pytest.mark.parametrize("bad, where", [([0, 2.0], 1), ([0.0, 1, 2], 0), ([0, 1, 1.5], 2)])
def test_compiled_loss_names_a_float_token_as_the_scalar_loss_does(bad, where):
    # was: "cross_entropy: targets must be class indices (ints), got float 2.0 at target 0 ...", or
    # the Embedding's message: another function's words, and another place than the token's
    model = GPT(5, n_embd=4, n_head=2, block_size=4, seed=0)
    message = rf"GPT.loss: tokens\[{where}\] must be a token id \(an int in 0..4\), got float {bad[where]}$"
    with pytest.raises(TypeError, match=message):
        model.loss(bad)
    with pytest.raises(TypeError, match="compiled, sample 1: " + message):
        mg.compile(model.loss)([[0, 1], bad])


def test_a_cache_not_made_for_the_model_is_refused():
    # was: a one-layer cache ran a two-layer model's first block only, and another model's cache
    # its keys sliced to this one's heads: logits either way, silently wrong
    from microgradnn.models import KVCache
    model = GPT(5, n_embd=4, n_head=2, n_layer=2, block_size=4, seed=0)
    other = GPT(5, n_embd=8, n_head=2, n_layer=2, block_size=4, seed=0)
    used = other.new_cache()
    other(1, 0, used)
    for cache in (KVCache(1), KVCache(3), used):
        with pytest.raises(ValueError, match=r"GPT: cache must be this model's \(from model.new_cache\(\)\), got a "):
            model(1, len(cache), cache)
    for cache in (None, [], {}):
        with pytest.raises(TypeError, match=r"GPT: cache must be a KVCache \(from model.new_cache\(\)\), got "):
            model(1, 0, cache)
    with pytest.raises(ValueError, match="KVCache: n_layer must be a positive int, got 0"):
        KVCache(0)
    mine = KVCache(2)  # one made by hand for this model's layers serves
    assert [v.data for v in model(1, 0, mine)] == [v.data for v in model(1, 0, model.new_cache())]


def test_a_cache_made_before_blocks_were_added_is_refused():
    # its one layer of keys ran the model's first block only: the added one was skipped, logits silently wrong
    model = GPT(5, n_embd=8, n_head=2, n_layer=1, block_size=4, seed=0)
    cache = model.new_cache()
    model(0, 0, cache)
    model.blocks.append(mg.models.Block(8, 2, seed=1))
    with pytest.raises(ValueError, match=r"GPT: cache must have a layer for each of the model's 2 blocks, got a "
                                         r"1-layer cache made before its blocks changed"):
        model(1, 1, cache)
    assert len(cache) == 1


def test_a_vocabulary_of_one_token_is_refused_up_front():
    # was: GPT(1) was built, and its loss failed inside cross_entropy ("every sample needs the
    # same number (>= 2) of logits, got [1]"): a tokenizer of an empty corpus has BOS only
    tok = mg.data.CharTokenizer([])
    with pytest.raises(ValueError, match=r"GPT: vocab_size \(BOS and at least one character\) must be an int >= 2, "
                                         r"got 1"):
        GPT(tok.vocab_size, n_embd=2, n_head=1, block_size=2)
    with pytest.raises(TypeError, match=r"GPT: vocab_size \(BOS and at least one character\) must be an int >= 2"):
        GPT(2.0)


def test_generate_of_no_new_tokens_returns_none_as_nanogpt_returns_the_input():
    # max_new_tokens=0 was refused ("must be a positive int"); nanoGPT's generate returns idx unchanged
    model = small_gpt()
    assert model.generate([0, 3], max_new_tokens=0) == [] and model.generate([0], 0, stop=0, seed=1) == []
    with pytest.raises(ValueError, match=r"generate: max_new_tokens must be an int >= 0, got -1"):
        model.generate([0], max_new_tokens=-1)
    with pytest.raises(TypeError, match=r"generate: max_new_tokens must be an int >= 0, got bool False"):
        model.generate([0], max_new_tokens=False)
    with pytest.raises(IndexError, match=r"generate: start\[1\] must be a token id"):  # start is still checked
        model.generate([0, 99], max_new_tokens=0)


def test_gpt_repr_of_one_head_says_head():
    # was: "1 heads"
    assert "1 head, 1 layer," in repr(GPT(5, n_embd=4, n_head=1, n_layer=1, block_size=4, seed=0))
    assert "2 heads, 2 layers," in repr(GPT(5, n_embd=4, n_head=2, n_layer=2, block_size=4, seed=0))


def test_a_one_head_gpt_saves_and_converts(tmp_path):
    model = GPT(5, n_embd=4, n_head=1, n_layer=1, block_size=4, seed=0)
    model.save(tmp_path / "gpt.json")
    assert mg.Module.from_file(tmp_path / "gpt.json").state_dict() == model.state_dict()
    assert GPT.from_torch(model.to_torch()).config()["n_head"] == 1


def test_gpt_gradients_match_finite_differences():
    """The GPT's gradient (embeddings, attention, MLP block, norms, head) against central
    differences, in a seeded sample of parameters from every tensor (all would take seconds)."""
    model = GPT(6, n_embd=4, n_head=2, n_layer=1, block_size=4, seed=0)
    rng = np.random.default_rng(3)
    for p in model.parameters():
        p.data += rng.normal(0.0, 0.05)
    tokens = [0, 3, 5, 1, 0]
    loss = lambda: model.loss(tokens)
    model.zero_grad()
    loss().backward()
    by_tensor = {}
    for name, p in model.named_parameters():
        by_tensor.setdefault(name.split(".weight")[0].split(".bias")[0], []).append(p)
    picked = [ps[int(i)] for ps in by_tensor.values() for i in rng.choice(len(ps), size=min(2, len(ps)), replace=False)]
    assert len(by_tensor) >= 10
    assert [p.grad for p in picked] == pytest.approx(numeric_param_grads(loss, picked), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("call, message", [
    (lambda n: GPT(3, 4, 1, seed=0).generate([0], stop=n),
     r"generate: stop must be None or a token id \(an int in 0..2\), got int "),
    (lambda n: GPT(3, 4, 1, seed=0).generate([0], -n), "generate: max_new_tokens must be an int >= 0, got "),
], ids=["stop", "max_new_tokens"])
def test_generate_names_an_int_too_long_to_print_by_its_size(call, message):
    names_huge_ints_by_size(call, message)  # was Python's "Exceeds the limit" error, or 60 digits of another number


def test_fit_predict_and_accuracy_on_a_gpt_say_it_takes_no_samples_of_numbers_not_to_edit_the_library():
    model = small_gpt()
    for call in (lambda: mg.fit(model, [[0, 1]], [2], "cross_entropy", "adam", 1, verbose=False),
                 lambda: model.predict([[0, 1]]), lambda: mg.accuracy(model, [[0, 1]], [2])):
        with pytest.raises(AttributeError, match=r"GPT has no 'nin' \(numbers per sample\): it maps no sample of "
                                                 r"numbers .*a GPT on model.loss") as err:
            call()
        assert "set self.nin" not in str(err.value)


def test_a_gpt_above_max_parameters_is_refused_before_it_is_built(monkeypatch):
    # GPT(27, n_embd=4096, n_layer=8) took 20 s and 2 GB to die of MemoryError: 1.6e9 Values of 200 bytes
    count = GPT.config_size({"vocab_size": 5, "n_embd": 4, "n_head": 2, "n_layer": 1, "block_size": 3})
    monkeypatch.setattr(mg.nn.init, "MAX_PARAMETERS", count - 1)
    with pytest.raises(ValueError, match=rf"GPT: vocab_size=5, n_embd=4, n_head=2, n_layer=1, block_size=3 make "
                                         rf"{count} parameters, more than MAX_PARAMETERS={count - 1} "):
        GPT(5, n_embd=4, n_head=2, n_layer=1, block_size=3, seed=0)
    monkeypatch.setattr(mg.nn.init, "MAX_PARAMETERS", count)
    assert len(GPT(5, n_embd=4, n_head=2, n_layer=1, block_size=3, seed=0).parameters()) == count


@pytest.mark.parametrize("size", ["vocab_size", "n_embd", "n_head", "n_layer", "block_size"])
def test_a_gpts_sizes_are_those_it_computes_with_and_setting_one_is_refused(size, tmp_path):
    # they were copies: model.n_head = 1 changed config() and so the saved file, whose model computed with
    # one head where this one used two
    model = GPT(5, n_embd=4, n_head=2, n_layer=1, block_size=4, seed=0)
    with pytest.raises(AttributeError):
        setattr(model, size, 1)
    assert model.config() == {"type": "GPT", "vocab_size": 5, "n_embd": 4, "n_head": 2, "n_layer": 1, "block_size": 4}
    model.save(tmp_path / "gpt.json")
    assert mg.Module.from_file(tmp_path / "gpt.json").loss([0, 1, 2, 0]).data == model.loss([0, 1, 2, 0]).data


@pytest.mark.parametrize("change, what", [
    (lambda m: setattr(m.blocks[0].norm1, "eps", 1.0), r"blocks.0.norm1 is RMSNorm\(4, eps=1\), but .* RMSNorm\(4, eps=1e-05\)"),
    (lambda m: setattr(m.blocks[0], "norm2", mg.nn.RMSNorm(4)), r"blocks.0.norm2 is RMSNorm\(4, eps=2.22045e-16\)"),
    (lambda m: setattr(m, "head", mg.nn.Linear(4, 5, seed=0)), r"head is Linear\(4 -> 5, 25 parameters\), but .* "
                                                               r"Linear\(4 -> 5, no bias\)"),
    (lambda m: setattr(m.blocks[1].attn, "n_head", 1) or setattr(m.blocks[1].attn, "head_size", 4),
     r"blocks.1.attn has 1 head of 4, but .* 2 heads of 2"),
    (lambda m: setattr(m.blocks[1], "mlp", mg.nn.Linear(4, 4, bias=False)), r"blocks.1.mlp is Linear\(4 -> 4, no bias"),
    (lambda m: setattr(m.blocks[1].mlp, "fc", mg.nn.Linear(4, 16, seed=0)), r"blocks.1.mlp.fc is Linear\(4 -> 16, 80 "
                                                                        r"parameters\), but .* Linear\(4 -> 16, no bias\)"),
])
def test_a_gpt_whose_parts_differ_from_its_config_is_refused_by_save_and_to_torch(change, what, tmp_path):
    # config() read the sizes only: a norm's eps set, a block's head count changed or a head with bias
    # was saved, and converted, as the GPT of the config, a model computing other logits (a bias
    # silently dropped by to_torch, and saved in a file that no load could read)
    model = GPT(5, n_embd=4, n_head=2, n_layer=2, block_size=4, seed=0)
    change(model)
    model.loss([0, 1, 2, 0])  # it still computes, as it now is
    with pytest.raises(ValueError, match="GPT: " + what):
        model.save(tmp_path / "gpt.json")
    assert not (tmp_path / "gpt.json").exists()
    with pytest.raises(ValueError, match=what):
        model.to_torch()




@pytest.mark.parametrize("n_head", [0, 3])
def test_a_gpt_whose_first_block_has_heads_not_splitting_n_embd_is_refused_by_save(n_head, tmp_path):
    model = GPT(5, n_embd=4, n_head=2, n_layer=2, block_size=4, seed=0)
    model.blocks[0].attn.n_head = n_head
    with pytest.raises(ValueError, match=r"GPT: blocks.0.attn has .*, but the GPT's config describes n_embd 4 split "
                                         r"into equal heads"):
        model.save(tmp_path / "gpt.json")
    assert not (tmp_path / "gpt.json").exists()


def test_a_gpt_whose_blocks_were_all_removed_is_refused_by_save_and_to_torch(tmp_path):
    model = GPT(5, n_embd=4, n_head=2, n_layer=2, block_size=4, seed=0)
    model.blocks = []
    for call in (lambda: model.save(tmp_path / "gpt.json"), model.to_torch):
        with pytest.raises(ValueError, match=r"GPT: blocks is \[\], but the GPT's config describes a list of one "
                                             r"Block or more"):
            call()
    assert not (tmp_path / "gpt.json").exists()
    # its repr raised IndexError (a REPL showing the model failed), and loss and generate blamed KVCache
    assert repr(model) == f"GPT(vocab 5, n_embd 4, no blocks, block 4, {model.num_parameters()} parameters)"
    for call in (lambda: model.loss([1, 2, 3]), lambda: model.generate([1], 2, seed=0), lambda: model.n_head):
        with pytest.raises(ValueError, match=r"^GPT: blocks is \[\], so it has no n_head and computes nothing"):
            call()


def test_a_call_that_fails_midway_leaves_the_cache_as_it_was():
    # the first block had added the position's keys, the second not: len(cache) said one more position
    # was read, so the next position's call was taken and the second block attended with its keys a
    # position out of step (a Ctrl-C in a sampling loop of one's own, an overflow in a late layer)
    model = small_gpt()
    cache, fresh = model.new_cache(), model.new_cache()
    model(3, 0, cache)

    def interrupted(x):
        raise KeyboardInterrupt

    model.blocks[1].mlp.forward = interrupted
    with pytest.raises(KeyboardInterrupt):
        model(5, 1, cache)
    del model.blocks[1].mlp.forward
    assert len(cache) == 1 and all(len(k) == len(v) == 1 for k, v in zip(cache.keys, cache.values))
    model(3, 0, fresh)
    assert [v.data for v in model(5, 1, cache)] == [v.data for v in model(5, 1, fresh)]


def test_a_position_given_as_a_float_is_refused_by_name_not_by_the_cache_rollback():
    # 0.0 == len(cache) passed the position check; the embedding refused it, and taking the position back
    # out of the cache (keys[0.0:]) replaced that error with "slice indices must be integers or None"
    model = small_gpt()
    for pos in (0.0, np.float64(0.0)):
        cache = model.new_cache()
        with pytest.raises(TypeError, match=r"GPT: position must be an int, the cache's length \(0\), got float"):
            model(3, pos, cache)
        assert len(cache) == 0


@pytest.mark.parametrize("token, pos, error, message", [
    (16, 1, IndexError, r"GPT: token must be a token id \(an int in 0..15\), got int 16"),
    (-1, 1, IndexError, r"GPT: token must be a token id \(an int in 0..15\), got int -1"),
    (3.0, 1, TypeError, r"GPT: token must be a token id \(an int in 0..15\), got float 3.0"),
    (True, 1, TypeError, r"GPT: token must be a token id \(an int in 0..15\), got bool True"),
    (None, 1, TypeError, r"GPT: token must be a token id \(an int in 0..15\), got NoneType None"),
    (3, True, TypeError, r"GPT: position must be an int, the cache's length \(1\), got bool True"),
    (3, "1", TypeError, r"GPT: position must be an int, the cache's length \(1\), got str '1'"),
    (3, None, TypeError, r"GPT: position must be an int, the cache's length \(1\), got NoneType None"),
])
def test_a_call_names_a_bad_token_or_position(token, pos, error, message):
    # the token and the position went to the embeddings unchecked: "Embedding: index must be an int in
    # 0..15, got 16" for either (vocab_size and block_size are both 16), and a position "1" read
    # "GPT: position 1 must be the cache's length (1)"
    model = small_gpt()
    cache = model.new_cache()
    model(3, 0, cache)
    with pytest.raises(error, match=message):
        model(token, pos, cache)
    assert len(cache) == 1
    assert len(model(np.int64(5), np.int64(1), cache)) == 16


def test_a_gpt_sized_by_numpy_ints_saves_and_converts(tmp_path):
    # n_head was kept as given: config() held np.int64(2), and save raised json's "TypeError: Object of
    # type int64 is not JSON serializable"
    sizes = [np.int64(n) for n in (5, 4, 2, 1, 3)]
    model = GPT(*sizes, seed=0)
    assert all(type(v) is int for k, v in model.config().items() if k != "type")
    model.save(tmp_path / "gpt.json")
    assert mg.Module.from_file(tmp_path / "gpt.json").state_dict() == model.state_dict()


@pytest.mark.parametrize("cls", [mg.models.CausalSelfAttention, mg.models.Block])
@pytest.mark.parametrize("n_embd, n_head", [(8, 3), (6, 4), (8, 16)])
def test_attention_and_block_refuse_n_embd_not_a_multiple_of_n_head(cls, n_embd, n_head):
    # were built: the heads covered n_head * (n_embd // n_head) of the n_embd dimensions, and the first
    # call failed inside, "Linear: expected 8 inputs, got 6" or a ZeroDivisionError (heads of 0)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: n_embd \({n_embd}\) must be a multiple of "
                                         rf"n_head \({n_head}\)"):
        cls(n_embd, n_head, seed=0)


@pytest.mark.parametrize("build, error, message", [
    (lambda: mg.models.Block(0, 2), ValueError, "Block: n_embd must be a positive int, got 0"),
    (lambda: mg.models.Block(8.0, 2), TypeError, "Block: n_embd must be a positive int, got float 8.0"),
    (lambda: mg.models.Block(8, 0), ValueError, "Block: n_head must be a positive int, got 0"),
    (lambda: mg.models.MLPBlock(0), ValueError, "MLPBlock: n_embd must be a positive int, got 0"),
    (lambda: mg.models.MLPBlock(2.5), TypeError, "MLPBlock: n_embd must be a positive int, got float 2.5"),
    (lambda: mg.models.MLPBlock(True), TypeError, "MLPBlock: n_embd must be a positive int, got bool True"),
])
def test_block_and_mlp_block_name_themselves_for_a_bad_size(build, error, message):
    # the error named the part that first used the size: "RMSNorm: dim ...", "CausalSelfAttention: n_head ...",
    # "Linear: nin ..."
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize("call, error, message", [
    (lambda a, b, m: a([1.0] * 3, [], []), ValueError, "CausalSelfAttention: expected 4 inputs, got 3"),
    (lambda a, b, m: b([float("nan"), 1.0, 1.0, 1.0], [], []), ValueError,
     "Block: inputs must be finite numbers or Values, got nan at index 0"),
    (lambda a, b, m: m([1.0] * 5), ValueError, "MLPBlock: expected 4 inputs, got 5"),
    (lambda a, b, m: a([1.0] * 4, None, None), TypeError,
     r"CausalSelfAttention: keys and values must be lists \(a layer's cache, cache.keys\[i\] and cache.values\[i\]\), "
     "got NoneType and NoneType"),
    (lambda a, b, m: b([1.0] * 4, [], ()), TypeError, "Block: keys and values must be lists .* got list and tuple"),
    (lambda a, b, m: a([1.0] * 4, [[1.0] * 4], []), ValueError,
     "CausalSelfAttention: keys and values must hold as many positions, got 1 and 0"),
    (lambda a, b, m: b([1.0] * 4, [[1.0] * 4], [[1.0] * 3]), ValueError,
     r"Block: values\[0\] must be a list of n_embd = 4 Values, got list of 3 entries"),
    (lambda a, b, m: a([1.0] * 4, [None], [None]), TypeError,
     r"CausalSelfAttention: keys\[0\] must be a list of n_embd = 4 Values, got NoneType None"),
])
def test_attention_block_and_mlp_block_called_alone_name_a_bad_position_or_cache(call, error, message):
    # the error named an inner part ("Linear: expected 4 inputs", "dot: a number ... must be finite") or was
    # raw ("'NoneType' object has no attribute 'append'")
    parts = (mg.models.CausalSelfAttention(4, 2, seed=0), mg.models.Block(4, 2, seed=0), mg.models.MLPBlock(4, seed=0))
    with pytest.raises(error, match=message):
        call(*parts)


def test_attention_refuses_the_longer_keys_of_another_sized_attention():
    # they were read in part: each head's slice of the first 4 of 8 entries, a silent wrong answer
    keys, values = [], []
    mg.models.CausalSelfAttention(8, 2, seed=0)([1.0] * 8, keys, values)
    small = mg.models.CausalSelfAttention(4, 2, seed=0)
    with pytest.raises(ValueError, match=r"CausalSelfAttention: keys\[0\] must be a list of n_embd = 4 Values, got "
                                         "list of 8 entries"):
        small([1.0] * 4, keys, values)
    assert len(keys) == len(values) == 1  # nothing added
    out = small([1.0] * 4, [], [])  # a fresh cache: checked numbers or Values
    assert len(out) == 4 and len(small([1.0, 2.0, 3.0, 4.0], [[1.0] * 4], [[2.0] * 4])) == 4
