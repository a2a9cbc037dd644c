"""Conversion to and from PyTorch (optional): MLPs as `torch.nn.Sequential`, the GPT as a module of its own."""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, NamedTuple

import numpy as np

from microgradnn.nn.module import later_names


class LayerSpec(NamedTuple):
    """One layer as plain data: weights as rows (one per neuron), biases, the activation's name,
    whether the weight and the bias train (requires_grad), and the earlier layer whose Linear
    this is (a shared layer), if any."""
    weights: list[list[float]]
    biases: list[float]
    activation: str
    requires_grad: tuple[bool, bool] = (True, True)
    same_as: int | None = None

_TORCH_ACTIVATIONS = {
    "relu": lambda torch: torch.nn.ReLU(), "tanh": lambda torch: torch.nn.Tanh(),
    "sigmoid": lambda torch: torch.nn.Sigmoid(), "leaky_relu": lambda torch: torch.nn.LeakyReLU(0.01),
}


def import_torch(what: str):
    """The torch module, or an ImportError that says how to install it."""
    try:
        import torch
    except ImportError:
        raise ImportError(f"{what} needs PyTorch: pip install torch") from None
    return torch


def to_sequential(layers: list[LayerSpec]):
    """A float64 `torch.nn.Sequential` of Linear (+ activation) layers with these weights and
    requires_grad flags; a layer `same_as` an earlier one is that layer's Linear again."""
    torch = import_torch("to_torch")
    modules: list[Any] = []
    linears: list[Any] = []
    for weights, biases, activation, (weight_grad, bias_grad), same_as in layers:
        if same_as is None:
            linear = torch.nn.Linear(len(weights[0]), len(weights), dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.tensor(weights, dtype=torch.float64))
                linear.bias.copy_(torch.tensor(biases, dtype=torch.float64))
            linear.weight.requires_grad_(weight_grad), linear.bias.requires_grad_(bias_grad)
        else:
            linear = linears[same_as]
        linears.append(linear)
        modules.append(linear)
        if activation != "linear":
            modules.append(_TORCH_ACTIVATIONS[activation](torch))
    return torch.nn.Sequential(*modules)


def one_flag(flags: list[bool], what: str) -> bool:
    """The requires_grad of a torch tensor holding parameters with these flags: refused if they
    differ, as a tensor has one (the frozen ones would train in torch, or the others not)."""
    if len(set(flags)) > 1:
        raise ValueError(f"to_torch: {what} is partly frozen ({flags.count(False)} of {len(flags)} parameters "
                         "require no grad), but a torch tensor has one requires_grad; freeze or unfreeze it whole")
    return flags[0]


def _tied(module) -> None:
    """Refuse a module two of whose submodules hold one parameter tensor (tied weights; one
    module used twice, a shared layer, is read as one), or two tensors sharing memory: the model
    would hold two copies, trained apart."""
    tied = later_names((name, p) for prefix, sub in module.named_modules()
                       for name, p in sub.named_parameters(prefix=prefix, recurse=False))
    if tied:
        name, first = next(iter(tied.items()))
        raise ValueError(f"from_torch: {first!r} and {name!r} are one tensor (tied weights), "
                         "which the model cannot hold as one; untie them (a copy each) first")
    one_memory(((name, p) for prefix, sub in module.named_modules()
                for name, p in sub.named_parameters(prefix=prefix, recurse=False)), "give each a copy of its own")


def one_memory(named, fix: str) -> None:
    """Refuse two distinct tensors among `named` ((name, tensor) pairs; one tensor under two names
    is the caller's to read) whose entries share memory (`nn.Parameter(other.weight)`, views of one
    tensor): torch's optimizers step both in that memory, as one tensor, where the model read from
    them would hold two copies, trained apart. `fix` says what to do instead."""
    strided = import_torch("from_torch").strided
    spans, seen = [], set()
    for name, tensor in named:
        if id(tensor) in seen or tensor.numel() == 0 or tensor.is_meta or tensor.layout != strided:
            continue
        seen.add(id(tensor))
        start, size = tensor.data_ptr(), tensor.element_size()  # (the address of its first entry)
        last = sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride()))
        spans.append((start, start + (last + 1) * size, name, tensor))
    spans.sort(key=lambda span: span[:2])
    for i, (_, end, name, tensor) in enumerate(spans):
        for other_start, _, other, other_tensor in spans[i + 1:]:
            if other_start >= end:
                break
            if tensor.element_size() != other_tensor.element_size() or \
                    np.intersect1d(_addresses(tensor), _addresses(other_tensor)).size:
                raise ValueError(f"from_torch: tensors {name!r} and {other!r} share memory (one is a view of "
                                 "the other, or nn.Parameter() of it), so torch trains them as one (its optimizer "
                                 f"steps both in that memory); the model would hold two copies trained apart: {fix}")


def _addresses(tensor) -> np.ndarray:
    """The address of each entry of a strided tensor."""
    offsets = np.zeros(1, dtype=np.int64)
    for n, stride in zip(tensor.shape, tensor.stride()):
        offsets = (offsets[:, None] + np.arange(n, dtype=np.int64) * stride).ravel()
    return tensor.data_ptr() + offsets * tensor.element_size()


def from_sequential(sequential) -> list[LayerSpec]:
    """The layers of a `torch.nn.Sequential` of Linear layers, each optionally followed by ReLU,
    Tanh, Sigmoid, LeakyReLU(0.01) or Identity; refused if it holds a tensor this does not read."""
    torch = import_torch("from_torch")
    if not isinstance(sequential, torch.nn.Sequential):
        raise TypeError(f"from_torch: expected a torch.nn.Sequential, got {type(sequential).__name__}")
    _own_forward(sequential, torch.nn.Sequential, "the Sequential")
    names = {torch.nn.ReLU: "relu", torch.nn.Tanh: "tanh", torch.nn.Sigmoid: "sigmoid",
             torch.nn.LeakyReLU: "leaky_relu", torch.nn.Identity: "linear"}
    modules, i = list(sequential._modules.items()), 0  # (named_children() lists a module used twice once)
    layers: list[LayerSpec] = []
    read: set[str] = set()
    first: dict[int, int] = {}  # id of a Linear -> the layer that first reads it
    while i < len(modules):
        key, linear = modules[i]
        if not isinstance(linear, torch.nn.Linear) or linear.bias is None:
            raise ValueError(f"from_torch: expected a Linear layer with bias at position {i}, got {linear!r}")
        _own_forward(linear, torch.nn.Linear, f"layer {len(layers)} ({key!r})")
        weight, bias = (_finite(t, f"{key}.{n}", f"layer {len(layers)}")
                        for t, n in ((linear.weight, "weight"), (linear.bias, "bias")))
        if weight.ndim != 2 or bias.shape != weight.shape[:1]:
            raise ValueError(f"from_torch: layer {len(layers)} ({key!r}) needs weight (out, in) and bias (out,), "
                             f"got shapes {weight.shape} and {bias.shape}")
        if 0 in weight.shape:
            raise ValueError(f"from_torch: layer {len(layers)} ({key!r}) has weight shape {weight.shape}, but a layer "
                             "needs at least one input and one output")
        if layers and weight.shape[1] != len(layers[-1].weights):
            raise ValueError(f"from_torch: layer {len(layers)} ({key!r}) takes {weight.shape[1]} inputs but layer "
                             f"{len(layers) - 1} gives {len(layers[-1].weights)} outputs; the Sequential cannot run")
        read |= {f"{key}.weight", f"{key}.bias"}
        activation = "linear"
        if i + 1 < len(modules) and type(modules[i + 1][1]) in names:
            act = modules[i + 1][1]
            if isinstance(act, torch.nn.LeakyReLU) and act.negative_slope != 0.01:
                raise ValueError(f"from_torch: LeakyReLU slope must be 0.01, got {act.negative_slope}")
            activation = names[type(act)]
            i += 1
        same_as = first.setdefault(id(linear), len(layers))
        layers.append(LayerSpec(weight.tolist(), bias.tolist(), activation,
                                (linear.weight.requires_grad, linear.bias.requires_grad),
                                None if same_as == len(layers) else same_as))
        i += 1
    if not layers:
        raise ValueError("from_torch: the Sequential has no layers")
    _refuse_unread(sequential, read)
    _tied(sequential)
    return layers


def float64_outputs(module, inputs, failed: str, who: str) -> np.ndarray:
    """What a torch module computes for `inputs` with its floating tensors in float64, as a model
    read from it holds them (a float16 module differs by its rounding), refused if it computes other
    outputs in training mode than in eval mode (a Dropout), as the model has no mode; `failed` leads
    the error of a module that raises (a hook or a forward of the user's own), `who` (the module,
    named as ours) the others. The module's modes and torch's random state are left as they were."""
    torch = import_torch("from_torch")
    tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    device = next((t.device for t in tensors.values()), "cpu")
    # (copies, even of float64 ones: a hook changing a tensor in place changes the probe's, not the user's)
    wide = {k: t.to(torch.float64, copy=True) if t.is_floating_point() else t.clone() for k, t in tensors.items()}
    outputs = []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            for training in (True, False):
                with _every_mode(module, training):
                    out = torch.func.functional_call(module, wide, (torch.as_tensor(inputs, device=device),))
                outputs.append(out.double().cpu().numpy())
    except Exception as e:
        raise ValueError(f"{failed}: {type(e).__name__}: {e}") from e
    trained, evaluated = outputs
    if trained.shape != evaluated.shape or not np.allclose(trained, evaluated, rtol=1e-12, atol=1e-15):
        raise ValueError(f"{who} computes other outputs in training mode (module.train()) than in eval mode "
                         "(module.eval()), as a Dropout does, but the model has no mode and would compute one of "
                         "them always; remove what depends on the mode")
    return evaluated


@contextlib.contextmanager
def _every_mode(module, training: bool):
    """Every submodule of `module` in training mode (or eval mode) for the while, then each in its
    own mode again (set as attributes: `module.train()` would run overrides of the user's)."""
    modes = [(m, m.training) for m in module.modules()]
    try:
        for m, _ in modes:
            m.training = training
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def check_outputs(sequential, model) -> None:
    """Refuse a Sequential whose outputs on probe inputs (in training or eval mode), or their gradients,
    differ from those of the MLP read from it (a hook, a global one, or another change its tensors do not show;
    not a global backward hook, which the hook-free module compared with runs as well)."""
    probe = np.random.default_rng(0).normal(size=(3, model.nin))
    theirs = float64_outputs(sequential, probe, "from_torch: the Sequential failed on probe inputs",
                             "from_torch: the Sequential")
    ours = model.decision_function(probe).reshape(len(probe), -1)
    if theirs.shape != ours.shape or not np.allclose(theirs, ours, rtol=1e-9, atol=1e-12):
        raise ValueError("from_torch: the Sequential's outputs on probe inputs differ from those of the MLP its "
                         f"layers describe ({model!r}): a forward hook (register_forward_hook, or a pre-hook) "
                         "changes what it computes; remove it")
    with import_torch("from_torch").random.fork_rng(devices=[]):  # (its Linears' init draws no number of the user's)
        clean = model.to_torch()  # the same layers, with no hook
    pairs = list(zip(*(_linear_tensors(module) for module in (sequential, clean))))
    check_gradients(sequential, clean, probe, pairs, "from_torch: the Sequential's gradients on probe inputs differ "
                    f"from those of the MLP its layers describe ({model!r})",
                    "from_torch: the Sequential failed on probe inputs", "from_torch: the Sequential")


def _linear_tensors(sequential) -> list[str]:
    """The names of the weight and bias of each Linear of a Sequential, each Linear once."""
    linears: dict[int, str] = {}
    for key, module in sequential._modules.items():
        if isinstance(module, import_torch("from_torch").nn.Linear):
            linears.setdefault(id(module), key)
    return [f"{key}.{name}" for key in linears.values() for name in ("weight", "bias")]


def float64_gradients(module, inputs, names: list[str], failed: str, weights_of=None) -> tuple[np.ndarray, list]:
    """What a torch module computes with grad enabled for `inputs` (made to require grad if they are
    floating-point numbers), and the gradients of its sum as to those inputs and to its tensors `names` that require
    grad, with its floating tensors in float64, its backward hooks run, and those of its tensors
    (Tensor.register_hook); or with the tensors of `weights_of` (a module with the same names; tied
    ones one tensor), without theirs. `failed` leads the error of a module that raises, named as ours."""
    torch = import_torch("from_torch")
    source = module if weights_of is None else weights_of
    tensors = {**dict(source.named_parameters(remove_duplicate=False)), **dict(source.named_buffers())}
    # (with grad on where from_torch is called under no_grad or inference_mode, and copies: a module
    # made under inference_mode holds tensors autograd cannot save, and a hook may change one in place;
    # a module drawing random numbers draws none of the user's)
    with torch.inference_mode(False), torch.enable_grad(), torch.random.fork_rng(devices=[]):
        made: dict[int, Any] = {}
        for t in tensors.values():
            if id(t) not in made:
                made[id(t)] = t.detach().to(torch.float64, copy=True).requires_grad_(t.requires_grad) \
                    if t.is_floating_point() else t.clone()
        wide = {k: made[id(t)] for k, t in tensors.items()}
        try:
            for name, tensor in tensors.items() if weights_of is None else ():
                for hook in list((getattr(tensor, "_backward_hooks", None) or {}).values()):
                    wide[name].register_hook(hook)
            x = torch.tensor(inputs, device=next((t.device for t in tensors.values()), "cpu"))
            x = x.requires_grad_() if x.is_floating_point() else x
            out = torch.func.functional_call(module, wide, (x,))
            among = [x] * x.requires_grad + [wide[n] for n in names if n in wide and wide[n].requires_grad]
            outputs = out.detach().double().cpu().numpy()
            if not out.requires_grad:  # nothing trains (or a hook detached the outputs): gradients of 0
                return outputs, [torch.zeros_like(t) for t in among]
            return outputs, list(torch.autograd.grad(out.double().sum(), among, allow_unused=True,
                                                     materialize_grads=True))
        except Exception as e:
            raise ValueError(f"{failed}: {type(e).__name__}: {e}") from e


def check_gradients(module, clean, inputs, pairs: list[tuple[str, str]], differ: str, failed: str, who: str,
                    same_weights: bool = False) -> None:
    """Refuse a torch module whose float64 gradients on `inputs` differ from those of `clean`, a
    module of its model's with no hooks (`to_torch`'s, or with `same_weights` one computing with the
    module's tensors, by their names), tensor by tensor (`pairs` of their names in each): a backward
    hook (of a module, or a tensor's) changes them, which its model would not; or whose outputs
    there (with grad enabled) differ from `clean`'s (`who`, the module, named as ours). The module is
    probed in training mode (as torch trains it) and in eval mode, and left in its modes as they were."""
    clean_outputs, ours = float64_gradients(clean, inputs, [b for _, b in pairs], failed,
                                            module if same_weights else None)
    for training in (True, False):  # (a hook may read module.training)
        with _every_mode(module, training):
            outputs, theirs = float64_gradients(module, inputs, [a for a, _ in pairs], failed)
        if outputs.shape != clean_outputs.shape or not np.allclose(outputs, clean_outputs, rtol=1e-9, atol=1e-12):
            raise ValueError(f"{who} computes other outputs with grad enabled (as torch trains it) than under "
                             "torch.no_grad() (a forward hook reading torch.is_grad_enabled()), which the model "
                             "would not; remove it")
        if len(theirs) != len(ours) or not all(a.shape == b.shape and np.allclose(a.cpu().numpy(), b.numpy(),
                                                                                  rtol=1e-9, atol=1e-12)
                                               for a, b in zip(theirs, ours)):
            raise ValueError(f"{differ}: a backward hook (register_full_backward_hook, or a tensor's "
                             "register_hook), or a forward hook that detaches, changes them, which the model would "
                             "not; remove it")


def _own_forward(module, base: Any, what: str) -> None:
    """Refuse a subclass of `base` with a forward of its own: the MLP would compute base's."""
    if type(module).forward is not base.forward:
        raise ValueError(f"from_torch: {what} is a {type(module).__name__}, a {base.__name__} with a forward "
                         f"of its own, which the MLP would not compute; expected a plain {base.__name__}")


def _finite(tensor, name: str, where: str = "") -> np.ndarray:
    """A tensor as a float64 array; a ValueError naming the tensor and index of a NaN or infinity."""
    torch, at = import_torch("from_torch"), f"{name!r}{f', {where}' if where else ''}"
    if isinstance(tensor, torch.nn.parameter.UninitializedTensorMixin):  # torch's error would name no tensor
        raise ValueError(f"from_torch: tensor {at} is not initialized (a lazy module's, as LazyLinear's): "
                         "call the module on an input first, which gives it its shape and numbers")
    if tensor.layout != torch.strided:  # torch's error would be "can't convert Sparse layout tensor to numpy"
        raise TypeError(f"from_torch: every weight must be a dense tensor, got a {tensor.layout} one in tensor {at}; "
                        "make it dense (.to_dense()) first")
    if not tensor.is_floating_point():  # .double() would drop a complex tensor's imaginary parts
        raise TypeError(f"from_torch: every weight must be a real floating-point number, got {tensor.dtype} "
                        f"in tensor {name!r}{f', {where}' if where else ''}")
    if tensor.is_meta:  # torch's own error would be "Cannot copy out of meta tensor"
        raise ValueError(f"from_torch: tensor {name!r}{f', {where}' if where else ''} is on the meta device and "
                         "holds no numbers; load its weights first (module.to_empty(), load_state_dict)")
    array = tensor.detach().to("cpu").double().numpy()
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        index = tuple(int(k) for k in bad[0])
        neuron = f" (neuron {index[0]})" if where and array.ndim else ""
        raise ValueError(f"from_torch: every weight must be finite, got {array[index]} in tensor {name!r} at "
                         f"index {index}{f', {where}' if where else ''}{neuron}")
    return array


def _refuse_unread(module, read: set[str]) -> None:
    """Refuse a module holding tensors that the conversion would silently drop."""
    unread = [name for name in module.state_dict() if name not in read]
    if unread:
        raise ValueError(f"from_torch: the module holds tensors the model has no place for: {unread[:5]}")


def torch_gpt(config: dict, state: dict[str, float], eps: float, requires_grad: dict[str, bool],
              tied: dict[str, str]):
    """A float64 torch module computing what `microgradnn.models.GPT` computes, with `state`'s
    weights, their `requires_grad` flags (by the same names), its shared ones (`tied`, as
    `tied_names` gives them) as one tensor, and its norms' `eps`."""
    module = _torch_classes()["_TorchGPT"](config, eps)
    load_flat_state(module, state, requires_grad)
    tie_tensors(module, tied)
    return module


_MAKING = threading.Lock()


def _torch_classes() -> dict[str, Any]:
    """torch_gpt's classes, made at first use (importing this module needs no torch); each is
    found here by its qualified name (`__getattr__`), so its modules pickle as torch's do."""
    with _MAKING:  # threads at once would each make classes, and pickle find only one's
        return _made_torch_classes()


@functools.cache
def _made_torch_classes() -> dict[str, Any]:
    torch = import_torch("to_torch")
    nn: Any = torch.nn
    F = torch.nn.functional

    class Attention(nn.Module):
        def __init__(self, d: int, n_head: int):
            super().__init__()
            self.n_head = n_head
            self.query, self.key, self.value, self.proj = (nn.Linear(d, d, bias=False, dtype=torch.float64)
                                                           for _ in range(4))

        def forward(self, x):
            B, T, d = x.shape
            split = lambda t: t.view(B, T, self.n_head, d // self.n_head).transpose(1, 2)  # noqa: E731
            q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
            scores = (q * (d // self.n_head) ** -0.5) @ k.transpose(-2, -1)
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            weights = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
            return self.proj((weights @ v).transpose(1, 2).reshape(B, T, d))

    class MLPBlock(nn.Module):
        def __init__(self, d: int):
            super().__init__()
            self.fc = nn.Linear(d, 4 * d, bias=False, dtype=torch.float64)
            self.proj = nn.Linear(4 * d, d, bias=False, dtype=torch.float64)

        def forward(self, x):
            return self.proj(F.relu(self.fc(x)))

    class Block(nn.Module):
        def __init__(self, d: int, n_head: int, eps: float):
            super().__init__()
            self.norm1, self.attn = nn.RMSNorm(d, eps=eps, dtype=torch.float64), Attention(d, n_head)
            self.norm2, self.mlp = nn.RMSNorm(d, eps=eps, dtype=torch.float64), MLPBlock(d)

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class GPT(nn.Module):
        """microgradnn's GPT in PyTorch: idx (B, T) -> logits (B, T, vocab_size)."""

        def __init__(self, config: dict, eps: float):
            super().__init__()
            self.config = dict(config)
            d, vocab = config["n_embd"], config["vocab_size"]
            self.token_embedding = nn.Embedding(vocab, d, dtype=torch.float64)
            self.position_embedding = nn.Embedding(config["block_size"], d, dtype=torch.float64)
            self.blocks = nn.ModuleList(Block(d, config["n_head"], eps) for _ in range(config["n_layer"]))
            self.head = nn.Linear(d, vocab, bias=False, dtype=torch.float64)

        def forward(self, idx):
            block = self.position_embedding.num_embeddings  # (what it computes with, whatever .config says)
            if idx.dim() != 2 or idx.shape[1] > block:
                raise ValueError(f"GPT: expected token ids of shape (B, T) with T <= {block}, got {tuple(idx.shape)}")
            pos = torch.arange(idx.shape[1], device=idx.device)
            x = self.token_embedding(idx) + self.position_embedding(pos)
            for block_ in self.blocks:
                x = block_(x)
            return self.head(x)

        def loss(self, idx):
            """Mean next-token cross-entropy over every position of every row (as GPT.loss per row, averaged)."""
            block = self.position_embedding.num_embeddings
            if idx.dim() != 2 or not 2 <= idx.shape[1] <= block + 1:  # one token: a loss of nan
                raise ValueError(f"GPT.loss: expected token ids of shape (B, T) with T from 2 to block_size + 1 = "
                                 f"{block + 1}, got {tuple(idx.shape)}")
            logits = self(idx[:, :-1])
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), idx[:, 1:].reshape(-1))

    classes = {}
    for cls in (Attention, MLPBlock, Block, GPT):  # named as before in a module's repr, found here by pickle
        cls.__qualname__, cls.__module__ = f"_Torch{cls.__name__}", __name__
        classes[cls.__qualname__] = cls
    return classes


def __getattr__(name: str) -> Any:
    if name in ("_TorchAttention", "_TorchMLPBlock", "_TorchBlock", "_TorchGPT"):
        return _torch_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tie_tensors(module, tied: dict[str, str]) -> None:
    """Make each tensor whose entries are the same parameters as those of an earlier tensor that
    tensor (GPT-2's head tied to its embedding); refused if a tensor shares only some entries, or
    with other places than one tensor's same entries, which no torch tensor can hold."""
    tensors = dict(module.named_parameters())
    for name, tensor in tensors.items():
        indices = [".".join(map(str, index)) for index in np.ndindex(*tensor.shape)]
        targets = [tied.get(f"{name}.{index}") for index in indices]
        if not any(targets):
            continue
        first = str(targets[0]).rsplit(".", tensor.ndim)[0]
        if first not in tensors or targets != [f"{first}.{index}" for index in indices]:
            shared = next(f"{name}.{index}" for index, t in zip(indices, targets) if t)
            raise ValueError(f"to_torch: tensor {name!r} shares parameters ({shared!r} is {tied[shared]!r}) but is "
                             "not one other tensor whole, which a torch tensor cannot hold; share whole tensors "
                             "(model.head.weight = model.token_embedding.weight)")
        owner, _, attribute = name.rpartition(".")
        setattr(module.get_submodule(owner), attribute, tensors[first])


def load_flat_state(module, state: dict[str, float], requires_grad: dict[str, bool]) -> None:
    """Copy a flat microgradnn state ({"a.weight.3.1": x}) and its requires_grad flags into a torch
    module's parameters of the same names; refused if one tensor's entries have different flags."""
    torch = import_torch("to_torch")
    with torch.no_grad():
        for name, tensor in module.named_parameters():
            names = [".".join([name, *map(str, index)]) for index in np.ndindex(*tensor.shape)]
            tensor.view(-1).copy_(torch.tensor([state[n] for n in names], dtype=tensor.dtype))
            tensor.requires_grad_(one_flag([requires_grad[n] for n in names], f"tensor {name!r}"))


def state_from_torch(module, model) -> tuple[dict[str, float], dict[str, bool], dict[str, str]]:
    """The flat microgradnn state of `model`'s parameter names, read from a torch module's tensors,
    each one's requires_grad (its tensor's), and which are one parameter, {name: first name}, where
    a tensor is held in two places (tied weights); refused if a tensor's shape is not the model's,
    or the module holds a tensor the model has no place for."""
    tensors = {name: _finite(t, name) for name, t in module.state_dict().items()}
    one_memory(module.state_dict(keep_vars=True).items(), "make them one tensor (module.head.weight = "
               "module.token_embedding.weight), or give each a copy of its own")
    places = list(module.named_parameters(remove_duplicate=False))
    trains = {name for name, t in places if t.requires_grad}
    same_as = later_names(places)
    state: dict[str, float] = {}
    requires_grad: dict[str, bool] = {}
    tied: dict[str, str] = {}
    read: dict[str, list[int]] = {}  # tensor name -> the shape its entries read span
    for name in model.state_dict():
        parts = name.split(".")
        cut = next((i for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in tensors), None)
        if cut is None:
            raise ValueError(f"from_torch: the module has no tensor for parameter {name!r}")
        tensor_name, index = ".".join(parts[:cut]), tuple(int(p) for p in parts[cut:])
        tensor = tensors[tensor_name]
        if len(index) != tensor.ndim or any(not 0 <= i < n for i, n in zip(index, tensor.shape)):
            raise ValueError(f"from_torch: tensor {tensor_name!r} has shape {tensor.shape}, "
                             f"which has no entry for parameter {name!r}")
        state[name], requires_grad[name] = float(tensor[index]), tensor_name in trains
        if tensor_name in same_as:
            tied[name] = same_as[tensor_name] + name[len(tensor_name):]
        shape = read.setdefault(tensor_name, [0] * len(index))
        shape[:] = [max(n, i + 1) for n, i in zip(shape, index)]
    for tensor_name, shape in read.items():
        if tensors[tensor_name].shape != tuple(shape):
            raise ValueError(f"from_torch: tensor {tensor_name!r} must have shape {tuple(shape)} "
                             f"(from the module's config), got {tensors[tensor_name].shape}")
    _refuse_unread(module, set(read))
    return state, requires_grad, tied
