"""Where initial weights come from: the seeded generator and the scaling for each activation."""
from __future__ import annotations

import math

import numpy as np

from microgradnn._checks import Seed, generator_of, integer

__all__ = ["manual_seed"]

_rng = np.random.default_rng()

MAX_PARAMETERS = 10_000_000  # a Value per parameter, about 200 bytes and 5 us each here: 2 GB and a minute


def check_size(count: int, who: str, sizes: str) -> None:
    """Refuse, before anything is built, a module of more than MAX_PARAMETERS parameters."""
    if count > MAX_PARAMETERS:
        raise ValueError(f"{who}: {sizes} make {count:,} parameters, more than MAX_PARAMETERS={MAX_PARAMETERS:,} "
                         f"(each is a Value of about 200 bytes: {count * 200 / 1e9:,.1f} GB); "
                         f"set microgradnn.nn.init.MAX_PARAMETERS higher to build it anyway")


def manual_seed(seed: int) -> None:
    """Fix the RNG that modules built with `seed=None` draw their initial weights from."""
    global _rng
    _rng = np.random.default_rng(integer(seed, "manual_seed", "seed", at_least=0))


def generator(seed: Seed, who: str = "generator") -> np.random.Generator:
    """The generator for `seed`: the shared one (manual_seed's) for None, else as the data
    functions take a seed (`_checks.generator_of`: an int, a Generator, a RandomState)."""
    return _rng if seed is None else generator_of(seed, who)


def init_weights(nin: int, nout: int, activation: str, rng: np.random.Generator) -> np.ndarray:
    """He-normal for (leaky) ReLU, Xavier/Glorot-uniform for tanh, sigmoid and linear."""
    if activation in ("relu", "leaky_relu"):
        return rng.normal(0.0, math.sqrt(2.0 / nin), size=(nout, nin))
    bound = math.sqrt(6.0 / (nin + nout))
    return rng.uniform(-bound, bound, size=(nout, nin))
