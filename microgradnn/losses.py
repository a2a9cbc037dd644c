"""Losses over a batch: each takes `(predictions, targets)` and returns the mean as one Value."""
from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from microgradnn._checks import one_of, shown
from microgradnn.engine import Value, get_op, in_order, is_sample_float, log, log1p, relu, softmax_of, softplus

__all__ = ["mse", "binary_cross_entropy", "binary_cross_entropy_with_logits", "hinge",
           "cross_entropy", "softmax", "decision_threshold", "LOSSES"]


def _batch(predictions, targets, name: str, classes: bool = False) -> tuple[list, list]:
    """Predictions as a list (one per sample) and targets of the same length: floats (ints for
    `classes`), or the Values given (a target Value stays in the graph, which
    `microgradnn.compile` relies on)."""
    # a 0-d array is its one value, as a 0-d tensor is to torch's losses
    predictions, targets = (x.item() if isinstance(x, np.ndarray) and x.ndim == 0 else x
                            for x in (predictions, targets))
    preds = [predictions] if isinstance(predictions, (Value, int, float)) else _listed(predictions, name, "predictions")
    if not isinstance(targets, (np.ndarray, str, Value)) and hasattr(targets, "__iter__"):
        targets = _listed(targets, name, "targets")  # (a generator: np.ndim says 0, one target)
    if isinstance(targets, Value) or np.ndim(targets) == 0:
        targets = [targets]
    given = np.asarray(targets, dtype=object).reshape(-1)
    if len(preds) != len(given):
        raise ValueError(f"{name}: targets must be class indices, one per sample (one-hot or probability targets "
                         f"are not supported: for one-hot rows pass y.argmax(axis=1)), got {len(given)} targets for "
                         f"{len(preds)} predictions" if classes else
                         f"{name}: got {len(preds)} predictions but {len(given)} targets")
    t = [_target(x, i, name, classes) for i, x in enumerate(given)]
    if len(preds) == 0:
        raise ValueError(f"{name}: the batch is empty")
    if not all(type(p) is Value for p in preds):  # plain numbers (or a sample's logits) given
        for i, p in enumerate(preds):
            for x in (p if isinstance(p, (list, tuple, np.ndarray)) else (p,)):
                if type(x) is not Value and isinstance(x, numbers.Real) and not _finite(x):
                    raise ValueError(f"{name}: predictions contain NaN or infinity: prediction {i} is "
                                     f"{_short(p)}")
    return preds, t


def _listed(xs, name: str, what: str) -> list:
    """xs as a list, or a TypeError naming the loss (rather than "'NoneType' object is not iterable");
    a set (in no fixed order: each prediction would meet another's target) and a dict are refused."""
    if not hasattr(xs, "__iter__") or getattr(xs, "ndim", 1) == 0:  # (a 0-d array cannot be iterated)
        raise TypeError(f"{name}: {what} must be a sequence, got {type(xs).__name__} {xs!r:.60}")
    return list(in_order(xs, name, what, "a list", sized=False))


def _target(x, i: int, name: str, classes: bool = False) -> float | Value:
    """A target as a finite float: a number (a bool is 0 or 1, as a label made by a comparison);
    for `classes`, an int (a class index: as torch's cross_entropy, neither a bool nor a float)."""
    if isinstance(x, Value):  # kept in the graph; a float of the sample while compile records is no class index
        if classes and is_sample_float(x):
            raise TypeError(f"{name}: targets must be class indices (ints), got float {x._data!r} at target {i} "
                            f"(a float of the sample, which the scalar loop refuses too: give class ids as ints)")
        return x
    if not isinstance(x, numbers.Real):  # "1" would be read as 1.0, None fail inside float()
        raise TypeError(f"{name}: targets must be numbers, got {type(x).__name__} {x!r:.60} at target {i}")
    if not _finite(x):  # (float() of an int beyond float's range would raise OverflowError)
        raise ValueError(f"{name}: targets contain NaN or infinity: target {i} is {shown(x)}")
    if classes:
        if not isinstance(x, numbers.Integral) or isinstance(x, bool):
            raise TypeError(f"{name}: targets must be class indices (ints), got {type(x).__name__} {x!r:.60} "
                            f"at target {i}")
        return int(x)
    return float(x)


def _finite(x: numbers.Real) -> bool:
    """x is finite as a float: an int too large for one is not."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def _one_each(preds: list, name: str) -> None:
    """A loss of one output per sample refuses anything else as a prediction (a model's list of
    outputs, a string) by name, rather than failing inside the arithmetic."""
    if all(type(p) is Value for p in preds):
        return
    for i, p in enumerate(preds):
        if not isinstance(p, (Value, numbers.Real)):
            raise TypeError(f"{name}: each prediction must be one number or Value, got {type(p).__name__} "
                            f"{_short(p)} at prediction {i}; for several outputs per sample use cross_entropy")


def _short(p) -> str:
    """A prediction (a number, or a sample's logits) as plain floats, at most 80 characters."""
    def plain(x):
        if type(x) is Value or not isinstance(x, numbers.Real):
            return x
        return shown(x) if isinstance(x, numbers.Integral) and not _finite(x) else float(x)
    text = repr([plain(x) for x in p] if isinstance(p, (list, tuple, np.ndarray)) else plain(p))
    return text if len(text) <= 80 else text[:77] + "..."


def _mean(terms: list) -> Value:
    # a loss of plain numbers requires no grad (torch's): its backward is refused, not a silent no-op
    if len(terms) == 1:  # one sample: its loss, with no extra node
        return terms[0] if type(terms[0]) is Value else Value(terms[0], requires_grad=False)
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total / len(terms) if type(total) is Value else Value(total / len(terms), requires_grad=False)


def mse(predictions: Sequence, targets: ArrayLike) -> Value:
    """Mean squared error: mean((p - t)^2)."""
    preds, t = _batch(predictions, targets, "mse")
    _one_each(preds, "mse")
    return _mean([(p - ti) ** 2 for p, ti in zip(preds, t)])


def binary_cross_entropy(predictions: Sequence, targets: ArrayLike) -> Value:
    """-mean(t log p + (1 - t) log(1 - p)) for probabilities p in [0, 1] and targets in [0, 1].

    Exact where torch's is not: torch clamps each log at -100 (p below about 4e-44) and divides
    its gradient by max(p(1 - p), 1e-12) (p within 1e-12 of 0 or 1), so there its loss and
    gradient differ from this; a p of 0 or 1 whose term counts is refused here."""
    preds, t = _batch(predictions, targets, "binary_cross_entropy")
    _one_each(preds, "binary_cross_entropy")
    _check_range(t, 0.0, 1.0, "binary_cross_entropy", "targets")
    _check_range(preds, 0.0, 1.0, "binary_cross_entropy", "predictions (probabilities)")
    terms = []
    for p, ti in zip(preds, t):
        term = 0.0
        for weight, q, log_q in ((ti, p, log), (1.0 - ti, 1.0 - p, _log_1_minus)):
            # A zero-weight term adds nothing, even where log(q) is -inf; a target Value
            # keeps both terms so the graph is the same for every sample.
            if isinstance(weight, Value) or weight:
                if q <= 0.0:
                    if isinstance(weight, Value) and weight == 0.0:  # a target Value of compile's (a decision
                        continue  # there): its zero weight adds nothing, as a plain target's does
                    raise ValueError(f"binary_cross_entropy: prediction {_number(p)} for target {_number(ti)} gives an "
                                     "infinite loss; use binary_cross_entropy_with_logits on raw scores")
                term = term - weight * log_q(p)
        terms.append(term)
    return _mean(terms)


def _log_1_minus(p):
    """log(1 - p) as log1p(-p), as torch's: 1 - p rounds p's digits away where p is tiny (p = 1e-10
    was 8e-8 off, 1e-300 gave 0)."""
    return log1p(-p)


def binary_cross_entropy_with_logits(predictions: Sequence, targets: ArrayLike) -> Value:
    """Binary cross-entropy on raw scores z, t softplus(-z) + (1 - t) softplus(z): a sum of terms >= 0,
    so a confident right score keeps its small loss (softplus(z) - t z gave 0 for 4e-18 at z = 40, t = 1)."""
    preds, t = _batch(predictions, targets, "binary_cross_entropy_with_logits")
    _one_each(preds, "binary_cross_entropy_with_logits")
    _check_range(t, 0.0, 1.0, "binary_cross_entropy_with_logits", "targets")
    return _mean([ti * softplus(-z) + (1.0 - ti) * softplus(z) for z, ti in zip(preds, t)])


def hinge(predictions: Sequence, targets: ArrayLike) -> Value:
    """SVM max-margin loss mean(max(0, 1 - t s)) for labels t in {-1, +1}."""
    preds, t = _batch(predictions, targets, "hinge")
    _one_each(preds, "hinge")
    bad = sorted({_number(x) for x in t if _not_a_label(x)})
    if bad:
        raise ValueError(f"hinge: targets must be -1 or +1, got {bad[:3]} (for 0/1 labels pass y * 2 - 1)")
    return _mean([relu(1.0 - ti * s) for s, ti in zip(preds, t)])


def softmax(logits: Sequence) -> list:
    """exp(z_i) / sum_j exp(z_j) for one sample's logits, computed stably (as exact as torch's at
    logits of 1e15); of no logits, none (as torch's)."""
    z = _listed(logits, "softmax", "logits (one sample's)")
    return softmax_of(z) if z else []


def cross_entropy(predictions: Sequence, targets: ArrayLike) -> Value:
    """Multi-class cross-entropy: mean(-log softmax(z)[t]) for logits z and class indices t."""
    batch = _listed(predictions, "cross_entropy", "predictions")
    if batch and not isinstance(batch[0], (list, tuple, np.ndarray)):
        batch = [batch]  # one sample's logits
    preds, t = _batch(batch, targets, "cross_entropy", classes=True)
    k = len(preds[0])
    if k < 2 or any(len(z) != k for z in preds):
        raise ValueError(f"cross_entropy: every sample needs the same number (>= 2) of logits, "
                         f"got {sorted({len(z) for z in preds})}")
    # A target Value (data while `compile` records) is checked by the op, for every sample, when its graph runs.
    bad = sorted({x for x in t if type(x) is not Value and not 0 <= x < k})
    if bad:
        raise ValueError(f"cross_entropy: targets must be class indices 0..{k - 1}, got {bad[:3]}")
    return _mean([_CROSS_ENTROPY(ti, *z) for z, ti in zip(preds, t)])


_CROSS_ENTROPY = get_op("cross_entropy")  # one sample's -log softmax(z)[t], stable for large logits


# The checks below compare Values rather than read their numbers, so `compile` turns each
# into a per-sample check of the whole batch (see microgradnn.replay).

def _check_range(xs: list, lo: float, hi: float, name: str, what: str) -> None:
    bad = [x for x in xs if not lo <= x <= hi]
    if bad:
        raise ValueError(f"{name}: {what} must lie in [{lo}, {hi}], got {_number(bad[0])}")


def _not_a_label(x) -> bool:
    """x is neither -1 nor +1; for a Value, as comparisons of |x| with 1 that every valid label
    answers alike (so compile keeps one recording for both classes)."""
    if type(x) is Value:
        size = abs(x)
        return size > 1.0 or size < 1.0
    return x not in (-1.0, 1.0)


def _number(x) -> float:
    return x.data if type(x) is Value else x


def decision_threshold(loss: Callable | str, targets: ArrayLike) -> float | None:
    """The score above which one output means class 1 for a model trained with `loss` on
    `targets`: 0.5 for probabilities (binary_cross_entropy), the middle of the two target
    values for mse, 0 for scores and logits (hinge, binary_cross_entropy_with_logits); None
    when the loss does not say (cross_entropy takes the argmax; a loss of your own)."""
    if isinstance(loss, str):  # a name of LOSSES, as fit takes it
        loss = LOSSES[one_of(loss, LOSSES, "decision_threshold", "loss")]
    if not callable(loss):
        raise TypeError(f"decision_threshold: loss must be a loss function or the name of one, got "
                        f"{type(loss).__name__} {loss!r:.60}")
    if loss is binary_cross_entropy:
        return 0.5
    if loss is mse:  # by the label convention, so a batch of one class is split where it should be
        given = np.asarray(targets, dtype=object).reshape(-1)
        t = np.array([_target(x, i, "decision_threshold") for i, x in enumerate(given)], dtype=float)
        values = set(np.unique(t).tolist())
        if values <= {0.0, 1.0}:
            return 0.5
        if values <= {-1.0, 1.0}:
            return 0.0
        return (float(t.min()) + float(t.max())) / 2
    if loss in (hinge, binary_cross_entropy_with_logits):
        return 0.0
    return None


LOSSES = {"mse": mse, "binary_cross_entropy": binary_cross_entropy,
          "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
          "hinge": hinge, "cross_entropy": cross_entropy}
