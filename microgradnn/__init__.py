"""microgradnn: a scalar autograd engine with a small neural-network library on top.

Its parts load on first use (`mg.Value`, `mg.nn`, ...), so that importing the package, as pytest
does for its plugin in every project where microgradnn is installed, costs next to nothing.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import TYPE_CHECKING, Any

from microgradnn._version import __version__

if TYPE_CHECKING:
    from microgradnn import data, losses, models, optim, testing, viz
    from microgradnn.engine import (
        Op, Value, cos, define_op, dot, dots, enable_grad, exp, get_op, grad, is_grad_enabled, leaky_relu, log,
        logsumexp, no_grad, ops, register_backward_hook, relu, set_grad_enabled, sigmoid, sin, softplus, sqrt, take,
        tanh, topological_order, tree, zero_grad,
    )
    from microgradnn.nn import MLP, Layer, Module, Neuron, manual_seed
    from microgradnn.replay import compile
    from microgradnn.train import History, accuracy, fit

_HOME = {  # where each public name that is not a module of the package lives
    **dict.fromkeys(["Op", "Value", "cos", "define_op", "dot", "dots", "enable_grad", "exp", "get_op", "grad",
                     "is_grad_enabled", "leaky_relu", "log", "logsumexp", "no_grad", "ops", "register_backward_hook",
                     "relu", "set_grad_enabled", "sigmoid", "sin", "softplus", "sqrt", "take", "tanh",
                     "topological_order", "tree", "zero_grad"], "engine"),
    **dict.fromkeys(["MLP", "Layer", "Module", "Neuron", "manual_seed"], "nn"),
    "compile": "replay",
    **dict.fromkeys(["History", "accuracy", "fit"], "train"),
}


def __getattr__(name: str) -> Any:
    """Import a public name's module (or the submodule of that name) on first use."""
    if name in _HOME:
        value = getattr(importlib.import_module(f"microgradnn.{_HOME[name]}"), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"microgradnn.{name}") is not None:
        value = importlib.import_module(f"microgradnn.{name}")
    else:
        raise AttributeError(f"module 'microgradnn' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(shell) -> None:
    """`%load_ext microgradnn`: show Values and Modules as pictures in this IPython shell."""
    importlib.import_module("microgradnn.viz").register(shell)


if "IPython" in sys.modules:  # in IPython or Jupyter, Values and Modules show as pictures from the import on
    importlib.import_module("microgradnn.viz")

__all__ = [
    "Value", "Op", "define_op", "get_op", "ops", "grad", "no_grad", "enable_grad", "set_grad_enabled",
    "is_grad_enabled", "topological_order", "zero_grad", "tree", "register_backward_hook", "exp", "log", "sqrt",
    "tanh", "sigmoid", "relu", "leaky_relu", "sin", "cos", "softplus", "dot", "dots", "logsumexp", "take", "Module",
    "Neuron", "Layer", "MLP", "manual_seed", "fit", "accuracy",
    "History", "compile", "data", "losses", "models", "optim", "testing", "viz", "__version__",
]
