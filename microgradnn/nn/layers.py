"""The networks of the lesson: `Neuron` (activation(w·x + b)), `Layer` and `MLP`."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from microgradnn._checks import flag, one_of, positive_int
from microgradnn.engine import Value, dot, dots, leaky_relu, relu, sigmoid, tanh
from microgradnn.nn import convert
from microgradnn.nn.init import Seed, check_size, generator, init_weights
from microgradnn.nn.module import _OUTERMOST, Module

__all__ = ["Neuron", "Layer", "MLP", "ACTIVATIONS"]

class _Activations(dict):
    """The activations by name; a name that is none (`neuron.activation = "gelu"`) is refused by
    name when a neuron computes (`__missing__` costs nothing on the names that are)."""

    def __missing__(self, name: Any) -> Callable[[Value], Value]:
        return one_of(name, self, "Neuron", "activation")  # raises: the name is not in self


ACTIVATIONS: dict[str, Callable[[Value], Value]] = _Activations({
    "relu": relu,
    "tanh": tanh,
    "sigmoid": sigmoid,
    "leaky_relu": leaky_relu,
    "linear": lambda v: v,
})


def _check_activation(activation: str, who: str) -> str:
    return one_of(activation, ACTIVATIONS, who, "activation")


class Neuron(Module):
    """activation(w·x + b), with weights `w` (list of Values) and bias `b`.

    `fused=True` (the default) builds one `dot` node for w·x + b; `fused=False` builds the
    separate `*` and `+` nodes, for teaching. Both give bit-identical values and gradients.
    """

    def __init__(self, nin: int, activation: str = "relu", *, seed: Seed = None, fused: bool = True) -> None:
        nin = positive_int(nin, "Neuron", "nin")
        check_size(nin + 1, "Neuron", f"nin={nin}")
        weights = init_weights(nin, 1, _check_activation(activation, "Neuron"), generator(seed, "Neuron"))[0]
        self._setup(list(weights), 0.0, activation, fused)

    def _setup(self, weights, bias, activation: str, fused: bool) -> None:
        self.nin = len(weights)
        self.w = [Value(w, f"w{i}") for i, w in enumerate(weights)]
        self.b = Value(bias, "b")
        self.activation = _check_activation(activation, "Neuron")
        self.fused = flag(fused, "Neuron", "fused")  # fused="no" would read as True

    @classmethod
    def from_weights(cls, weights: Sequence[float], bias: float, activation: str = "relu",
                     *, fused: bool = True) -> "Neuron":
        """A neuron with the given weights and bias, as the lesson writes one."""
        if not isinstance(weights, (list, tuple, np.ndarray)) or getattr(weights, "ndim", 1) != 1:
            raise TypeError(f"Neuron.from_weights: weights must be a list of numbers, got "
                            f"{type(weights).__name__} {weights!r:.60}")
        if len(weights) == 0:
            raise ValueError("Neuron.from_weights: weights must not be empty")
        neuron = cls.__new__(cls)
        neuron._setup(list(weights), bias, activation, fused)
        return neuron

    @property
    def nout(self) -> int:
        return 1

    @property
    def output_activation(self) -> str:
        return self.activation

    def _named_items(self):
        return [*((f"w.{i}", w) for i, w in enumerate(self.w)), ("b", self.b)]

    def forward(self, x: list) -> Value:
        if self.fused:
            z = dot(self.w, x, self.b)
        else:
            if len(x) != self.nin:
                raise ValueError(f"Neuron: expected {self.nin} inputs, got {len(x)}")
            z = self.b
            for wi, xi in zip(self.w, x):
                z = z + wi * xi
        return self._activate(z)  # type: ignore[arg-type]

    def _activate(self, z: Value) -> Value:
        out = ACTIVATIONS[self.activation](z)
        out.origin = (_OUTERMOST.get() or self, self)  # drawings find the neuron's other nodes from here
        return out

    def config(self) -> dict:
        return {"type": "Neuron", "nin": self.nin, "activation": self.activation}

    @classmethod
    def config_size(cls, config: dict) -> int:
        _check_activation(config["activation"], "Neuron")
        return positive_int(config["nin"], "Neuron", "nin") + 1

    @classmethod
    def from_config(cls, config: dict) -> "Neuron":
        """A freshly initialised neuron of this architecture."""
        return cls(config["nin"], config["activation"], seed=0)

    def __repr__(self) -> str:
        return f"Neuron({self.nin} -> {self.activation}, {self.num_parameters()} parameters)"


class Layer(Module):
    """`nout` neurons that all read the same inputs; calling it returns a list of Values."""

    def __init__(self, nin: int, nout: int, activation: str = "relu", *, seed: Seed = None, fused: bool = True) -> None:
        nin, nout = positive_int(nin, "Layer", "nin"), positive_int(nout, "Layer", "nout")
        check_size(nout * (nin + 1), "Layer", f"nin={nin}, nout={nout}")
        weights = init_weights(nin, nout, _check_activation(activation, "Layer"), generator(seed, "Layer"))
        self._setup([Neuron.from_weights(list(w), 0.0, activation, fused=fused) for w in weights])

    def _setup(self, neurons: list[Neuron]) -> None:
        self.neurons = neurons
        self.nin = neurons[0].nin

    @property
    def activation(self) -> str:
        """The activation of the layer's neurons, which compute it; setting it sets theirs."""
        shown = self._activations()
        if "/" in shown:  # a file, torch or a drawing would give the layer one of them
            raise ValueError(f"Layer: a layer has one activation, but its neurons' are {shown.replace('/', ', ')}; "
                             "set layer.activation to set every neuron's")
        return shown

    @activation.setter
    def activation(self, name: str) -> None:
        name = _check_activation(name, "Layer")
        for n in self.neurons:
            n.activation = name

    def _activations(self) -> str:
        """The neurons' activations as a repr shows them: one name, or several joined by /."""
        return "/".join(sorted({n.activation for n in self.neurons}))

    @classmethod
    def from_weights(cls, neurons: Sequence[tuple[Sequence[float], float]], activation: str = "relu",
                     *, fused: bool = True) -> "Layer":
        """A layer from `[(weights, bias), ...]`, one pair per neuron, as the lesson writes one."""
        if not isinstance(neurons, (list, tuple)):
            raise TypeError(f"Layer.from_weights: neurons must be a list of (weights, bias) pairs, got "
                            f"{type(neurons).__name__} {neurons!r:.60}")
        if len(neurons) == 0:
            raise ValueError("Layer.from_weights: needs at least one (weights, bias) pair")
        for k, pair in enumerate(neurons):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise TypeError(f"Layer.from_weights: each neuron must be a (weights, bias) pair, got "
                                f"{type(pair).__name__} {pair!r:.60} at position {k}")
        built = [Neuron.from_weights(w, b, activation, fused=fused) for w, b in neurons]
        if len({n.nin for n in built}) != 1:
            raise ValueError(f"Layer.from_weights: every neuron needs the same number of weights, "
                             f"got {[n.nin for n in built]}")
        layer = cls.__new__(cls)
        layer._setup(built)
        return layer

    @property
    def nout(self) -> int:
        return len(self.neurons)

    @property
    def output_activation(self) -> str:
        return self.activation

    def _named_items(self):
        return [(f"neurons.{i}", n) for i, n in enumerate(self.neurons)]

    def forward(self, x: list) -> list[Value]:
        neurons = self.neurons
        if all([n.fused for n in neurons]):  # one dots call: the same nodes, x read once
            zs = dots([n.w for n in neurons], x, [n.b for n in neurons])
            outs = [ACTIVATIONS[n.activation](z) for n, z in zip(neurons, zs)]
            top = _OUTERMOST.get()
            for n, out in zip(neurons, outs):  # Neuron._activate's tag, for the whole layer at once
                out.origin = (top or n, n)
            return outs
        return [n.forward(x) for n in neurons]

    def config(self) -> dict:
        return {"type": "Layer", "nin": self.nin, "nout": self.nout, "activation": self.activation}

    @classmethod
    def config_size(cls, config: dict) -> int:
        _check_activation(config["activation"], "Layer")
        return positive_int(config["nout"], "Layer", "nout") * (positive_int(config["nin"], "Layer", "nin") + 1)

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        """A freshly initialised layer of this architecture."""
        return cls(config["nin"], config["nout"], config["activation"], seed=0)

    def __repr__(self) -> str:
        return f"Layer({self.nin} -> {self.nout} {self._activations()}, {self.num_parameters()} parameters)"


def _ids(layer: Layer) -> list[int]:
    """The identities of a layer's weights and biases, neuron by neuron."""
    return [id(v) for n in layer.neurons for v in (*n.w, n.b)]


class MLP(Module):
    """A feedforward network: layers of sizes `nouts`; one output gives a Value, more a list."""

    def __init__(self, nin: int, nouts: Sequence[int], activation: str = "relu",
                 output_activation: str = "linear", *, seed: Seed = None, fused: bool = True) -> None:
        nin = positive_int(nin, "MLP", "nin")
        if not isinstance(nouts, (list, tuple)):
            raise TypeError(f"MLP: nouts must be a non-empty list of layer sizes, got {type(nouts).__name__} {nouts!r}")
        if len(nouts) == 0:
            raise ValueError(f"MLP: nouts must be a non-empty list of layer sizes, got {nouts!r}")
        nouts = [positive_int(n, "MLP", "each layer size in nouts") for n in nouts]
        _check_activation(activation, "MLP"), _check_activation(output_activation, "MLP")
        rng = generator(seed, "MLP")
        sizes = [nin, *nouts]
        check_size(sum(b * (a + 1) for a, b in zip(sizes, sizes[1:])), "MLP", f"nin={nin}, nouts={nouts!r:.100}")
        self._setup([Layer(sizes[i], sizes[i + 1], activation if i < len(nouts) - 1 else output_activation,
                           seed=rng, fused=fused) for i in range(len(nouts))])

    def _setup(self, layers: list[Layer]) -> None:
        self.layers = layers
        self.nin = layers[0].nin

    @classmethod
    def from_layers(cls, layers: Sequence[Layer]) -> "MLP":
        """A network from ready-made layers, checking that their sizes chain."""
        layers = list(layers)
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise ValueError("MLP.from_layers: needs a non-empty list of Layer objects")
        for i, (a, b) in enumerate(zip(layers, layers[1:])):
            if a.nout != b.nin:
                raise ValueError(f"MLP.from_layers: layer {i} has {a.nout} outputs but layer {i + 1} "
                                 f"expects {b.nin} inputs")
        mlp = cls.__new__(cls)
        mlp._setup(layers)
        return mlp

    @property
    def nout(self) -> int:
        return self.layers[-1].nout

    @property
    def output_activation(self) -> str:
        return self.layers[-1].activation

    def _named_items(self):
        return [(f"layers.{i}", layer) for i, layer in enumerate(self.layers)]

    def forward(self, x: list) -> Value | list[Value]:
        for layer in self.layers:
            x = layer(x)
        return x[0] if len(x) == 1 else x

    def to_torch(self) -> Any:
        """An equivalent float64 `torch.nn.Sequential` (Linear + activation per layer): a frozen
        weight's tensor requires no grad, and a layer used twice is one Linear used twice."""
        specs: list[convert.LayerSpec] = []
        for i, layer in enumerate(self.layers):
            values = [[*n.w, n.b] for n in layer.neurons]
            same_as = next((j for j in range(i) if _ids(self.layers[j]) == _ids(layer)), None)
            specs.append(convert.LayerSpec(
                [[w.data for w in row[:-1]] for row in values], [row[-1].data for row in values], layer.activation,
                (convert.one_flag([w.requires_grad for row in values for w in row[:-1]], f"layer {i}'s weight"),
                 convert.one_flag([row[-1].requires_grad for row in values], f"layer {i}'s bias")), same_as))
        ids = [i for layer, spec in zip(self.layers, specs) if spec.same_as is None for i in _ids(layer)]
        if len(ids) != len(set(ids)):
            raise ValueError("to_torch: a parameter is shared within a layer or between parts of layers, which "
                             "torch.nn.Linear cannot hold; only whole layers can be shared (MLP.from_layers([l, l]))")
        return convert.to_sequential(specs)

    @classmethod
    def from_torch(cls, sequential: Any) -> "MLP":
        """Read a `torch.nn.Sequential` of Linear layers, each optionally followed by ReLU,
        Tanh, Sigmoid or LeakyReLU(0.01), into an MLP with the same weights and requires_grad
        flags; a Linear used twice is one layer's weights used twice."""
        layers: list[Layer] = []
        for weights, biases, activation, (weight_grad, bias_grad), same_as in convert.from_sequential(sequential):
            if same_as is not None and layers[same_as].activation == activation:
                layers.append(layers[same_as])
                continue
            layer = Layer.from_weights(list(zip(weights, biases)), activation)
            for i, n in enumerate(layer.neurons):
                if same_as is not None:  # one Linear, another activation after it: the same Values
                    n.w, n.b = layers[same_as].neurons[i].w, layers[same_as].neurons[i].b
                for w in n.w:
                    w.requires_grad_(weight_grad)
                n.b.requires_grad_(bias_grad)
            layers.append(layer)
        model = cls.from_layers(layers)
        convert.check_outputs(sequential, model)
        return model

    def config(self) -> dict:
        return {"type": "MLP", "nin": self.nin,
                "layers": [{"nout": layer.nout, "activation": layer.activation} for layer in self.layers]}

    @classmethod
    def config_size(cls, config: dict) -> int:
        if not isinstance(config["layers"], list) or not config["layers"]:
            raise ValueError("layers must be a non-empty list")
        sizes = [config["nin"]] + [layer["nout"] for layer in config["layers"]]
        return sum(Layer.config_size({"nin": a, "nout": b, "activation": layer["activation"]})
                   for a, b, layer in zip(sizes, sizes[1:], config["layers"]))

    @classmethod
    def from_config(cls, config: dict) -> "MLP":
        """A freshly initialised network of this architecture."""
        sizes = [config["nin"]] + [layer["nout"] for layer in config["layers"]]
        rng = generator(0, "MLP")  # one stream for all layers, as MLP(..., seed=0): one seed each repeated them
        return cls.from_layers([Layer(sizes[i], sizes[i + 1], layer["activation"], seed=rng)
                                for i, layer in enumerate(config["layers"])])

    def __repr__(self) -> str:
        parts = [str(self.nin)] + [f"{layer.nout} {layer._activations()}" for layer in self.layers]
        return f"MLP({' -> '.join(parts)}, {self.num_parameters()} parameters)"
