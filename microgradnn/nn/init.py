"""Where initial weights come from: the seeded generator and the scaling for each activation."""
from __future__ import annotations

import math
from typing import Union

import numpy as np

__all__ = ["manual_seed"]

Seed = Union[int, np.random.Generator, None]  # an int, a Generator to draw from, or None (manual_seed's)

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Fix the RNG that modules built with `seed=None` draw their initial weights from."""
    global _rng
    _rng = np.random.default_rng(seed)


def generator(seed: Seed) -> np.random.Generator:
    """The generator for `seed`: the shared one for None, a given Generator, else a new seeded one."""
    if seed is None:
        return _rng
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def init_weights(nin: int, nout: int, activation: str, rng: np.random.Generator) -> np.ndarray:
    """He-normal for (leaky) ReLU, Xavier/Glorot-uniform for tanh, sigmoid and linear."""
    if activation in ("relu", "leaky_relu"):
        return rng.normal(0.0, math.sqrt(2.0 / nin), size=(nout, nin))
    bound = math.sqrt(6.0 / (nin + nout))
    return rng.uniform(-bound, bound, size=(nout, nin))
