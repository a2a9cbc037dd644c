"""Conversion between layer descriptions and `torch.nn.Sequential` (PyTorch is optional)."""
from __future__ import annotations

# One layer as plain data: (weights as rows, one per neuron; biases; activation name).
LayerSpec = tuple[list[list[float]], list[float], str]

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
    """A float64 `torch.nn.Sequential` of Linear (+ activation) layers with these weights."""
    torch = import_torch("to_torch")
    modules = []
    for weights, biases, activation in layers:
        linear = torch.nn.Linear(len(weights[0]), len(weights), dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(weights, dtype=torch.float64))
            linear.bias.copy_(torch.tensor(biases, dtype=torch.float64))
        modules.append(linear)
        if activation != "linear":
            modules.append(_TORCH_ACTIVATIONS[activation](torch))
    return torch.nn.Sequential(*modules)


def from_sequential(sequential) -> list[LayerSpec]:
    """The layers of a `torch.nn.Sequential` of Linear layers, each optionally followed by ReLU,
    Tanh, Sigmoid, LeakyReLU(0.01) or Identity."""
    torch = import_torch("from_torch")
    names = {torch.nn.ReLU: "relu", torch.nn.Tanh: "tanh", torch.nn.Sigmoid: "sigmoid",
             torch.nn.LeakyReLU: "leaky_relu", torch.nn.Identity: "linear"}
    modules, layers, i = list(sequential), [], 0
    while i < len(modules):
        linear = modules[i]
        if not isinstance(linear, torch.nn.Linear) or linear.bias is None:
            raise ValueError(f"from_torch: expected a Linear layer with bias at position {i}, got {linear!r}")
        activation = "linear"
        if i + 1 < len(modules) and type(modules[i + 1]) in names:
            act = modules[i + 1]
            if isinstance(act, torch.nn.LeakyReLU) and act.negative_slope != 0.01:
                raise ValueError(f"from_torch: LeakyReLU slope must be 0.01, got {act.negative_slope}")
            activation = names[type(act)]
            i += 1
        layers.append((linear.weight.detach().to(torch.float64).tolist(),
                       linear.bias.detach().to(torch.float64).tolist(), activation))
        i += 1
    if not layers:
        raise ValueError("from_torch: the Sequential has no layers")
    return layers
