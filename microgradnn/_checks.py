"""Argument checks shared by every public function: TypeError for a wrong type, ValueError
for a wrong value, each message "who: what must hold, got X". Bools are not numbers here."""
from __future__ import annotations

import math
import numbers
from typing import Union

import numpy as np

# A seed, wherever one is taken (data, modules, models, fit): an int >= 0, a Generator to draw from,
# a RandomState (scikit-learn's random_state), or None
Seed = Union[int, np.random.Generator, np.random.RandomState, None]


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def is_finite(x) -> bool:
    """True for a number (not a bool) that is finite as a float (an int too large for one is not)."""
    try:
        return _is_number(x) and math.isfinite(x)
    except OverflowError:  # an int beyond float's range
        return False


def digits(n: int) -> int:
    """About how many decimal digits n has, without str() (which Python refuses past 4300 digits)."""
    return int(n.bit_length() * math.log10(2)) + 1


def shown(x) -> str:
    """x as an error message shows it: its repr (cut at 60 characters), but an int too long for
    that by its size (str() of one beyond 4300 digits raises)."""
    if _is_int(x) and abs(x) >= 10 ** 59:
        return f"an int of about {digits(x)} digits" + (
            " (too large for a float)" if not is_finite(x) else "")  # (from 2 ** 1024 - 2 ** 970: it rounds up)
    return f"{x!r:.60}"


def integer(x, who: str, what: str, *, at_least: int) -> int:
    """x as an int >= at_least."""
    rule = "a positive int" if at_least == 1 else f"an int >= {at_least}"
    if not _is_int(x):
        raise TypeError(f"{who}: {what} must be {rule}, got {type(x).__name__} {x!r:.60}")
    if x < at_least:
        raise ValueError(f"{who}: {what} must be {rule}, got {shown(x)}")
    return int(x)


def positive_int(x, who: str, what: str) -> int:
    """x as an int >= 1 (True is not 1 here)."""
    return integer(x, who, what, at_least=1)


def number(x, who: str, what: str, lo: float = -math.inf, hi: float = math.inf, *,
           lo_open: bool = False, hi_open: bool = False) -> float:
    """x as a finite float within [lo, hi] (either end open on request)."""
    rule = "a finite number"
    if lo > -math.inf and hi < math.inf:
        rule += f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo > -math.inf:
        rule += f" {'>' if lo_open else '>='} {lo:g}"
    elif hi < math.inf:
        rule += f" {'<' if hi_open else '<='} {hi:g}"
    if not _is_number(x):
        raise TypeError(f"{who}: {what} must be {rule}, got {type(x).__name__} {x!r:.60}")

    def within(y) -> bool:
        return (lo < y if lo_open else lo <= y) and (y < hi if hi_open else y <= hi)
    v = float(x) if is_finite(x) else math.nan  # checked as the float it becomes: 1 - 2**-60 as a longdouble is 1.0
    if not within(v):
        as_float = f" ({v!r} as a float)" if not math.isnan(v) and within(x) else ""
        raise ValueError(f"{who}: {what} must be {rule}, got {shown(x)}{as_float}")
    return v


def flag(x, who: str, what: str) -> bool:
    """x, which must be True or False: a truthy string ("no") must not switch an option on."""
    if not isinstance(x, bool):
        raise TypeError(f"{who}: {what} must be True or False, got {type(x).__name__} {x!r:.60}")
    return x


def one_of(x, choices, who: str, what: str):
    """x, which must be one of `choices` (a str choice for a str)."""
    rule = f"{what} must be one of {', '.join(map(str, choices))}"
    if not isinstance(x, str):
        raise TypeError(f"{who}: {rule}, got {type(x).__name__} {x!r:.60}")
    if x not in choices:
        raise ValueError(f"{who}: {rule}, got {x!r:.60}")
    return x


def generator_of(seed: Seed, who: str) -> np.random.Generator:
    """The Generator a seed gives: an int >= 0 seeds a new one (numpy's rule; a bool is no int);
    a Generator is itself, drawn from; a RandomState seeds a new one with one draw; None a fresh one."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(0, 2**63 - 1, dtype=np.int64))
    if seed is not None and not _is_int(seed):
        raise TypeError(f"{who}: seed must be an int >= 0, a numpy Generator or RandomState, or None, "
                        f"got {type(seed).__name__} {shown(seed)}")
    return np.random.default_rng(None if seed is None else integer(seed, who, "seed", at_least=0))
