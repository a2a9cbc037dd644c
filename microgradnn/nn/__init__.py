"""Neural networks on `Value`.

module: `Module` (parameters, the call, state, files, predictions); layers: `Neuron`,
`Layer`, `MLP`; init: initial weights and `manual_seed`; files: the JSON model file;
blocks: `Linear`, `Embedding`, `RMSNorm`; convert: to and from PyTorch.
"""
from microgradnn.nn.blocks import Embedding, Linear, RMSNorm
from microgradnn.nn.init import manual_seed
from microgradnn.nn.layers import ACTIVATIONS, MLP, Layer, Neuron
from microgradnn.nn.module import Module, from_config, tag_modules

__all__ = ["Module", "Neuron", "Layer", "MLP", "Linear", "Embedding", "RMSNorm", "manual_seed", "ACTIVATIONS",
           "from_config", "tag_modules"]
