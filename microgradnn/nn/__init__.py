"""Neural networks on `Value`.

module: `Module` (parameters, the call, state, files, predictions); layers: `Neuron`,
`Layer`, `MLP`; init: initial weights and `manual_seed`; files: the JSON model file;
convert: to and from `torch.nn.Sequential`.
"""
from microgradnn.nn.init import manual_seed
from microgradnn.nn.layers import ACTIVATIONS, MLP, Layer, Neuron
from microgradnn.nn.module import Module, from_config

__all__ = ["Module", "Neuron", "Layer", "MLP", "manual_seed", "ACTIVATIONS", "from_config"]
