"""Neural networks on `Value`: Module, Neuron, Layer, MLP, with JSON save and load."""
from __future__ import annotations

import contextvars
import json
import math
import os
from typing import TYPE_CHECKING, Any, Iterator, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike

from microgradnn._files import check_writable, write_atomic
from microgradnn.engine import Value, dot, no_grad

Seed = Union[int, np.random.Generator, None]  # an int, a Generator to draw from, or None (manual_seed's)

__all__ = ["Module", "Neuron", "Layer", "MLP", "manual_seed", "ACTIVATIONS"]

ACTIVATIONS = {
    "relu": Value.relu,
    "tanh": Value.tanh,
    "sigmoid": Value.sigmoid,
    "leaky_relu": Value.leaky_relu,
    "linear": lambda v: v,
}
_FORMAT = "microgradnn-model"
_rng = np.random.default_rng()
_CALL_STACK: contextvars.ContextVar[tuple] = contextvars.ContextVar("microgradnn_modules", default=())


def manual_seed(seed: int) -> None:
    """Fix the RNG that modules built with `seed=None` draw their initial weights from."""
    global _rng
    _rng = np.random.default_rng(seed)


def _generator(seed) -> np.random.Generator:
    if seed is None:
        return _rng
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    return activation


def _init_weights(nin: int, nout: int, activation: str, rng: np.random.Generator) -> np.ndarray:
    """He-normal for (leaky) ReLU, Xavier/Glorot-uniform for tanh, sigmoid and linear."""
    if activation in ("relu", "leaky_relu"):
        return rng.normal(0.0, math.sqrt(2.0 / nin), size=(nout, nin))
    bound = math.sqrt(6.0 / (nin + nout))
    return rng.uniform(-bound, bound, size=(nout, nin))


def _positive_int(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{what} must be a positive int, got {n!r}")
    return int(n)


class Module:
    """Base class: parameters, names, gradients, state and files, as in `torch.nn.Module`."""

    nin: int  # set by each subclass, as are these two properties:
    if TYPE_CHECKING:
        @property
        def nout(self) -> int: ...
        @property
        def output_activation(self) -> str: ...

    def _named_items(self) -> list[tuple[str, "Module | Value"]]:
        """Direct parameters and submodules, in a stable order."""
        return []

    def named_parameters(self) -> list[tuple[str, Value]]:
        """(dotted name, parameter) pairs, e.g. `layers.0.neurons.3.w.1`."""
        out = []
        for name, item in self._named_items():
            if isinstance(item, Value):
                out.append((name, item))
            else:
                out.extend((f"{name}.{sub}", p) for sub, p in item.named_parameters())
        return out

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module and every submodule."""
        yield prefix, self
        for name, item in self._named_items():
            if isinstance(item, Module):
                yield from item.named_modules(f"{prefix}.{name}" if prefix else name)

    def parameters(self) -> list[Value]:
        """Every trainable Value, in `named_parameters()` order."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """How many scalar parameters the module has."""
        return len(self.named_parameters())

    def zero_grad(self) -> None:
        """Set every parameter's `.grad` to 0."""
        for p in self.parameters():
            p.grad = 0.0

    def __call__(self, x: Sequence[Value | float] | np.ndarray) -> Any:
        """Run the module on one sample (a list of numbers or Values, or a 1-D array)."""
        x = _as_inputs(x, self.nin, type(self).__name__)
        token = _CALL_STACK.set(_CALL_STACK.get() + (self,))
        try:
            return self.forward(x)
        finally:
            _CALL_STACK.reset(token)

    def forward(self, x: list) -> Any:
        """The module's computation on one sample (subclasses define it)."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # ---- state -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, float]:
        """{parameter name: value} as plain floats."""
        return {name: p.data for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict) -> None:
        """Set every parameter from `state`; on any mismatch raise and change nothing."""
        if not isinstance(state, dict):
            raise TypeError(f"load_state_dict: expected a dict, got {type(state).__name__}")
        params = self.named_parameters()
        names = [n for n, _ in params]
        missing = [n for n in names if n not in state]
        extra = [n for n in state if n not in set(names)]
        if missing or extra:
            raise ValueError(f"load_state_dict: state does not match {self!r}: "
                             f"missing {missing[:3] or 'none'}, unexpected {extra[:3] or 'none'}")
        values = {}
        for n in names:
            v = state[n]
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
                raise ValueError(f"load_state_dict: parameter {n!r} must be a finite number, got {v!r}")
            values[n] = float(v)
        for n, p in params:
            p.data = values[n]

    def config(self) -> dict:
        """The architecture, enough to rebuild the module with `from_config`."""
        raise NotImplementedError(f"{type(self).__name__} does not define config()")

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write architecture and parameters as JSON, atomically (temp file, then rename).

        An existing file is only replaced with `overwrite=True`.
        """
        path = check_writable(path, overwrite, "save")
        payload = {"format": _FORMAT, "version": 1, "config": self.config(), "state": self.state_dict()}
        write_atomic(path, json.dumps(payload, indent=1).encode())

    def load(self, path: str | os.PathLike) -> "Module":
        """Read parameters saved by `save` into this module; on any error change nothing."""
        payload = _read_model_file(path)
        if payload["config"] != self.config():
            raise ValueError(f"load: {os.fspath(path)} holds {_describe(payload['config'])}, "
                             f"not this model's {_describe(self.config())}")
        self.load_state_dict(payload["state"])
        return self

    @staticmethod
    def from_file(path: str | os.PathLike) -> "Module":
        """Build the module saved in `path` (any of Neuron, Layer, MLP)."""
        payload = _read_model_file(path)
        model = from_config(payload["config"])
        model.load_state_dict(payload["state"])
        return model

    # ---- batches -------------------------------------------------------------------------

    @no_grad()
    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Raw outputs for each row of X, shape (n,) or (n, nout), without recording a graph."""
        X = _as_matrix(X, self.nin)
        rows = [self(x) for x in X]
        return np.array([[v.data for v in r] if isinstance(r, list) else r.data for r in rows])

    @property
    def threshold(self) -> float:
        """The score above which a single output means class 1: 0.5 after a sigmoid, else 0."""
        return 0.5 if self.output_activation == "sigmoid" else 0.0

    def predict(self, X: ArrayLike, threshold: float | None = None) -> np.ndarray:
        """Class labels: argmax for several outputs; for one output, 1 where it exceeds
        `threshold` (default `self.threshold`)."""
        scores = self.decision_function(X)
        if scores.ndim == 2:
            return scores.argmax(axis=1)
        return (scores > (self.threshold if threshold is None else threshold)).astype(int)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from microgradnn.viz import mimebundle
        return mimebundle(self)


class Neuron(Module):
    """activation(w·x + b), with weights `w` (list of Values) and bias `b`.

    `fused=True` (the default) builds one `dot` node for w·x + b; `fused=False` builds the
    separate `*` and `+` nodes, for teaching. Both give bit-identical values and gradients.
    """

    def __init__(self, nin: int, activation: str = "relu", *, seed: Seed = None, fused: bool = True) -> None:
        nin = _positive_int(nin, "Neuron: nin")
        weights = _init_weights(nin, 1, _check_activation(activation), _generator(seed))[0]
        self._setup(list(weights), 0.0, activation, fused)

    def _setup(self, weights, bias, activation: str, fused: bool) -> None:
        self.nin = len(weights)
        self.w = [Value(w, f"w{i}") for i, w in enumerate(weights)]
        self.b = Value(bias, "b")
        self.activation = _check_activation(activation)
        self.fused = fused

    @classmethod
    def from_weights(cls, weights: Sequence[float], bias: float, activation: str = "relu",
                     *, fused: bool = True) -> "Neuron":
        """A neuron with the given weights and bias, as the lesson writes one."""
        if len(weights) == 0:
            raise ValueError("Neuron.from_weights: weights must not be empty")
        neuron = cls.__new__(cls)
        neuron._setup(list(weights), bias, activation, fused)
        return neuron

    @property
    def output_activation(self) -> str:
        return self.activation

    def _named_items(self):
        return [*((f"w.{i}", w) for i, w in enumerate(self.w)), ("b", self.b)]

    def forward(self, x: list) -> Value:
        if self.fused:
            z = dot(self.w, x, self.b)
        else:
            z = self.b
            for wi, xi in zip(self.w, x):
                z = z + wi * xi
        out = ACTIVATIONS[self.activation](z)
        _mark_made_here(out, x, _CALL_STACK.get())
        return out

    def config(self) -> dict:
        return {"type": "Neuron", "nin": self.nin, "activation": self.activation}

    def __repr__(self) -> str:
        return f"Neuron({self.nin} -> {self.activation}, {self.num_parameters()} parameters)"


class Layer(Module):
    """`nout` neurons that all read the same inputs; calling it returns a list of Values."""

    def __init__(self, nin: int, nout: int, activation: str = "relu", *, seed: Seed = None, fused: bool = True) -> None:
        nin, nout = _positive_int(nin, "Layer: nin"), _positive_int(nout, "Layer: nout")
        weights = _init_weights(nin, nout, _check_activation(activation), _generator(seed))
        self._setup([Neuron.from_weights(list(w), 0.0, activation, fused=fused) for w in weights])

    def _setup(self, neurons: list[Neuron]) -> None:
        self.neurons = neurons
        self.nin = neurons[0].nin
        self.activation = neurons[0].activation

    @classmethod
    def from_weights(cls, neurons: Sequence[tuple[Sequence[float], float]], activation: str = "relu",
                     *, fused: bool = True) -> "Layer":
        """A layer from `[(weights, bias), ...]`, one pair per neuron, as the lesson writes one."""
        if len(neurons) == 0:
            raise ValueError("Layer.from_weights: needs at least one (weights, bias) pair")
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
        return [n(x) for n in self.neurons]

    def config(self) -> dict:
        return {"type": "Layer", "nin": self.nin, "nout": self.nout, "activation": self.activation}

    def __repr__(self) -> str:
        return f"Layer({self.nin} -> {self.nout} {self.activation}, {self.num_parameters()} parameters)"


class MLP(Module):
    """A feedforward network: layers of sizes `nouts`; one output gives a Value, more a list."""

    def __init__(self, nin: int, nouts: Sequence[int], activation: str = "relu",
                 output_activation: str = "linear", *, seed: Seed = None, fused: bool = True) -> None:
        nin = _positive_int(nin, "MLP: nin")
        if isinstance(nouts, (int, np.integer)) or len(nouts) == 0:
            raise ValueError(f"MLP: nouts must be a non-empty list of layer sizes, got {nouts!r}")
        _check_activation(activation), _check_activation(output_activation)
        rng = _generator(seed)
        sizes = [nin, *nouts]
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
        """An equivalent float64 `torch.nn.Sequential` (Linear + activation per layer)."""
        torch = _import_torch("to_torch")
        modules = []
        for layer in self.layers:
            linear = torch.nn.Linear(layer.nin, layer.nout, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=torch.float64))
                linear.bias.copy_(torch.tensor([n.b.data for n in layer.neurons], dtype=torch.float64))
            modules.append(linear)
            if layer.activation != "linear":
                modules.append(_TORCH_ACTIVATIONS[layer.activation](torch))
        return torch.nn.Sequential(*modules)

    @classmethod
    def from_torch(cls, sequential: Any) -> "MLP":
        """Read a `torch.nn.Sequential` of Linear layers, each optionally followed by ReLU,
        Tanh, Sigmoid or LeakyReLU(0.01), into an MLP with the same weights."""
        torch = _import_torch("from_torch")
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
            weights = linear.weight.detach().to(torch.float64).tolist()
            biases = linear.bias.detach().to(torch.float64).tolist()
            layers.append(Layer.from_weights(list(zip(weights, biases)), activation))
            i += 1
        if not layers:
            raise ValueError("from_torch: the Sequential has no layers")
        return cls.from_layers(layers)

    def config(self) -> dict:
        return {"type": "MLP", "nin": self.nin,
                "layers": [{"nout": layer.nout, "activation": layer.activation} for layer in self.layers]}

    def __repr__(self) -> str:
        parts = [str(self.nin)] + [f"{layer.nout} {layer.activation}" for layer in self.layers]
        return f"MLP({' -> '.join(parts)}, {self.num_parameters()} parameters)"


# ---- helpers -------------------------------------------------------------------------------

_TORCH_ACTIVATIONS = {
    "relu": lambda torch: torch.nn.ReLU(), "tanh": lambda torch: torch.nn.Tanh(),
    "sigmoid": lambda torch: torch.nn.Sigmoid(), "leaky_relu": lambda torch: torch.nn.LeakyReLU(0.01),
}


def _import_torch(what: str):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{what} needs PyTorch: pip install torch") from None
    return torch

def _mark_made_here(out: Value, inputs: list, modules: tuple) -> None:
    """Tag the nodes a neuron just made (between `inputs` and `out`) with the calling modules."""
    stop = {id(v) for v in inputs if type(v) is Value}
    stack = [out]
    while stack:
        v = stack.pop()
        if id(v) in stop or not v.inputs or getattr(v, "_modules", None) is not None:
            continue
        v._modules = modules
        stack.extend(v.inputs)


def _as_inputs(x, nin: int, who: str) -> list:
    if isinstance(x, np.ndarray):
        if x.ndim != 1:
            raise ValueError(f"{who}: expected one sample as a 1-D array of {nin} numbers, got shape {x.shape}")
        x = x.tolist()
    elif isinstance(x, (Value, int, float)):
        x = [x]
    elif not isinstance(x, (list, tuple)):
        raise TypeError(f"{who}: expected a list of numbers or Values, got {type(x).__name__}")
    if len(x) != nin:
        raise ValueError(f"{who}: expected {nin} inputs, got {len(x)}")
    for xi in x:
        if type(xi) is not Value and not (isinstance(xi, (int, float, np.number)) and math.isfinite(xi)):
            raise ValueError(f"{who}: inputs must be finite numbers or Values, got {xi!r}")
    # Numbers become one labelled input node each, shared by every neuron that reads them.
    return [xi if type(xi) is Value else Value(float(xi), f"x{i}", requires_grad=False) for i, xi in enumerate(x)]


def _as_matrix(X, nin: int) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != nin:
        raise ValueError(f"expected an array of shape (n, {nin}), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity")
    return X


def _describe(config: dict) -> str:
    try:
        return repr(from_config(config)).split(",")[0] + ")"
    except ValueError:
        return json.dumps(config)


def from_config(config: dict) -> Module:
    """A freshly initialised module with the architecture `config` describes."""
    try:
        kind = config["type"]
        if kind == "MLP":
            sizes = [config["nin"]] + [layer["nout"] for layer in config["layers"]]
            return MLP.from_layers([Layer(sizes[i], sizes[i + 1], layer["activation"], seed=0)
                                    for i, layer in enumerate(config["layers"])])
        if kind == "Layer":
            return Layer(config["nin"], config["nout"], config["activation"], seed=0)
        if kind == "Neuron":
            return Neuron(config["nin"], config["activation"], seed=0)
    except (KeyError, TypeError) as e:
        raise ValueError(f"not a valid model description: {config!r:.200} ({e})") from None
    raise ValueError(f"unknown module type {config.get('type')!r}; expected MLP, Layer or Neuron")


def _read_model_file(path) -> dict:
    path = os.fspath(path)
    try:
        with open(path) as f:
            payload = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"load: {path} is not a microgradnn model file (invalid JSON: {e})") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT or "config" not in payload \
            or not isinstance(payload.get("state"), dict):
        raise ValueError(f"load: {path} is not a microgradnn model file (no {_FORMAT!r} header)")
    return payload
