"""Shared test helpers: an independent central-difference reference."""
from __future__ import annotations

import microgradnn as mg


def numeric_grads(f, xs: list[float], h: float = 1e-6) -> list[float]:
    """Central differences of f (Values in, Value out) using only forward `.data`."""
    def at(values):
        return f(*[mg.Value(v) for v in values]).data
    out = []
    for i, x in enumerate(xs):
        step = h * max(1.0, abs(x))
        up, down = list(xs), list(xs)
        up[i], down[i] = x + step, x - step
        out.append((at(up) - at(down)) / (2 * step))
    return out


def analytic_grads(f, xs: list[float]) -> tuple[float, list[float]]:
    """Output data and `.grad` of each input after one backward()."""
    vs = [mg.Value(x) for x in xs]
    y = f(*vs)
    y.backward()
    return y.data, [v.grad for v in vs]
