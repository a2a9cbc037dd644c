"""microgradnn: a scalar autograd engine with a small neural-network library on top."""
from microgradnn.engine import (
    Op, Value, cos, define_op, dot, dots, enable_grad, exp, get_op, grad, is_grad_enabled, leaky_relu, log,
    log1p, logsumexp, no_grad, ops, register_backward_hook, relu, set_grad_enabled, sigmoid, sin, softplus, sqrt,
    take, tanh, topological_order, tree, zero_grad,
)
from microgradnn import data, losses, models, optim, testing, viz
from microgradnn.nn import MLP, Layer, Module, Neuron, manual_seed
from microgradnn.replay import compile
from microgradnn.train import History, accuracy, fit
from microgradnn._version import __version__



def load_ipython_extension(shell) -> None:
    """`%load_ext microgradnn`: show Values and Modules as pictures in this IPython shell."""
    viz.register(shell)

__all__ = [
    "Value", "Op", "define_op", "get_op", "ops", "grad", "no_grad", "enable_grad", "set_grad_enabled",
    "is_grad_enabled", "topological_order", "zero_grad", "tree", "register_backward_hook", "exp", "log", "log1p",
    "sqrt", "tanh", "sigmoid", "relu", "leaky_relu", "sin", "cos", "softplus", "dot", "dots", "logsumexp", "take",
    "Module", "Neuron", "Layer", "MLP", "manual_seed", "fit", "accuracy",
    "History", "compile", "data", "losses", "models", "optim", "testing", "viz", "__version__",
]
