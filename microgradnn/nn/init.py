"""Where initial weights come from: the seeded generator and the scaling for each activation."""
from __future__ import annotations

import math
from typing import Union

import numpy as np

from microgradnn._checks import integer

__all__ = ["manual_seed"]

Seed = Union[int, np.random.Generator, None]  # an int, a Generator to draw from, or None (manual_seed's)

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Fix the RNG that modules built with `seed=None` draw their initial weights from."""
    global _rng
    _rng = np.random.default_rng(integer(seed, "manual_seed", "seed", at_least=0))


def generator(seed: Seed, who: str = "generator") -> np.random.Generator:
    """The generator for `seed`: the shared one for None, a given Generator, else a new seeded one
    (`seed` an int >= 0, as numpy's rule; a bool is not one)."""
    if seed is None:
        return _rng
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(integer(seed, who, "seed", at_least=0))


def init_weights(nin: int, nout: int, activation: str, rng: np.random.Generator) -> np.ndarray:
    """He-normal for (leaky) ReLU, Xavier/Glorot-uniform for tanh, sigmoid and linear."""
    if activation in ("relu", "leaky_relu"):
        return rng.normal(0.0, math.sqrt(2.0 / nin), size=(nout, nin))
    bound = math.sqrt(6.0 / (nin + nout))
    return rng.uniform(-bound, bound, size=(nout, nin))
