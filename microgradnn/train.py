"""The training loop: `fit` with a live progress line, and `accuracy`."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from microgradnn import losses as _losses, optim as _optim
from microgradnn.nn import Module
from microgradnn.nn.module import as_matrix as _as_matrix

__all__ = ["fit", "accuracy", "History"]

# Below the threshold a single output means class 0 (scores, logits, margins).
_PROBABILITY_LOSSES = {_losses.binary_cross_entropy}


@dataclass
class History:
    """Per-epoch mean training loss and training accuracy (from the epoch's own forward passes)."""
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


def _label_threshold(y: np.ndarray) -> float:
    """0/1 labels split at 0.5, -1/+1 labels at 0."""
    return (float(y.min()) + float(y.max())) / 2


def _correct(scores: np.ndarray, y: np.ndarray, threshold: float) -> np.ndarray:
    if scores.ndim == 2:
        return scores.argmax(axis=1) == y
    return (scores > threshold) == (y > _label_threshold(y))


def accuracy(model: Module, X, y, threshold: float | None = None) -> float:
    """Fraction of rows of X the model classifies as y (argmax, or one output against a threshold)."""
    X = _as_matrix(X, model.nin)
    y = _as_labels(y, len(X))
    scores = model.decision_function(X)
    return float(_correct(scores, y, model.threshold if threshold is None else threshold).mean())


def _as_labels(y, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=float).reshape(-1)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)} labels")
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinity")
    return y


def _resolve(value, table: dict, what: str):
    if isinstance(value, str):
        if value not in table:
            raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(table)}")
        return table[value]
    return value


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (where stderr shows as a red box that looks like an error)."""
    ipython = sys.modules.get("IPython")  # not imported means no IPython is running
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _notebook_bar(epochs: int):
    """tqdm's notebook progress bar (tqdm.auto), when tqdm and ipywidgets are installed."""
    try:
        import ipywidgets  # noqa: F401  (without it tqdm.auto falls back to a text bar on stderr)
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=epochs, unit="epoch", desc="fit")


class _Progress:
    """Progress of `fit`: in a notebook a tqdm bar or a plain line on stdout (never stderr); in a
    terminal one status line on stderr, redrawn in place, and every 10% when not a terminal."""

    def __init__(self, epochs: int, enabled: bool) -> None:
        self.epochs, self.enabled = epochs, enabled
        notebook = enabled and _in_notebook()
        self.bar = _notebook_bar(epochs) if notebook else None
        self.stream = sys.stdout if notebook else sys.stderr
        self.live = enabled and (notebook or self.stream.isatty())
        self.start = time.perf_counter()

    def update(self, epoch: int, loss: float, acc: float) -> None:
        if not self.enabled:
            return
        last = epoch == self.epochs
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", accuracy=f"{acc:.1%}", refresh=False)
            self.bar.update(1)
            if last:
                self.bar.close()
            return
        line = (f"epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  loss {loss:.4f}  "
                f"accuracy {acc:6.1%}  {time.perf_counter() - self.start:5.1f}s")
        if self.live:
            self.stream.write("\r" + line + ("\n" if last else ""))
        elif last or epoch == 1 or epoch % max(1, self.epochs // 10) == 0:
            self.stream.write(line + "\n")
        self.stream.flush()


def fit(model: Module, X, y, loss: Callable | str, optimizer: _optim.Optimizer | str, epochs: int,
        batch_size: int | None = None, *, lr: float = 0.05, scheduler=None, seed=0,
        verbose: bool = True, compiled: bool = False) -> History:
    """Train `model` on (X, y): forward, loss, zero_grad, backward, step; `epochs` times.

    `loss` is a function from `microgradnn.losses` or its name; `optimizer` an optimizer
    or "sgd"/"adam" (built with `lr`). `batch_size=None` uses the whole batch each step,
    otherwise shuffled mini-batches (seeded). `scheduler.step()` runs once per epoch.
    `compiled=True` replays the recorded graph over the batch with numpy
    (`microgradnn.compile`). Returns the per-epoch History.
    """
    X = _as_matrix(X, model.nin)
    y = _as_labels(y, len(X))
    loss_fn = _resolve(loss, _losses.LOSSES, "loss")
    opt = _resolve(optimizer, _optim.OPTIMIZERS, "optimizer")
    if isinstance(opt, type):
        opt = opt(model.parameters(), lr=lr)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"fit: batch_size must be None or a positive int, got {batch_size!r}")
    # Labels outside the loss's domain fail here, before any parameter changes.
    loss_fn([[0.0] * model.nout] * len(y) if model.nout > 1 else [0.5] * len(y), y)

    threshold = 0.5 if loss_fn in _PROBABILITY_LOSSES else (
        _label_threshold(y) if loss_fn is _losses.mse else 0.0)
    step = _compiled_step(model, loss_fn) if compiled else _scalar_step(model, loss_fn)
    rng = np.random.default_rng(seed)
    history, progress = History(), _Progress(epochs, verbose)
    for epoch in range(1, epochs + 1):
        order = np.arange(len(X)) if batch_size is None else rng.permutation(len(X))
        size = batch_size or len(X)
        total, scores = 0.0, np.empty((len(X), model.nout)) if model.nout > 1 else np.empty(len(X))
        for start in range(0, len(X), size):
            idx = order[start:start + size]
            opt.zero_grad()
            batch_loss, batch_scores = step(X[idx], y[idx])
            opt.step()
            total += batch_loss * len(idx)
            scores[idx] = batch_scores
        if scheduler is not None:
            scheduler.step()
        history.loss.append(total / len(X))
        history.accuracy.append(float(_correct(scores, y, threshold).mean()))
        progress.update(epoch, history.loss[-1], history.accuracy[-1])
    return history


def _scalar_step(model: Module, loss_fn: Callable):
    def step(Xb: np.ndarray, yb: np.ndarray):
        outs = [model(x) for x in Xb]
        value = loss_fn(outs, yb)
        value.backward()
        scores = np.array([[v.data for v in o] if isinstance(o, list) else o.data for o in outs])
        return value.data, scores
    return step


def _compiled_step(model: Module, loss_fn: Callable):
    from microgradnn.replay import compile_model_loss
    run = compile_model_loss(model, loss_fn)

    def step(Xb: np.ndarray, yb: np.ndarray):
        result = run(Xb, yb)
        result.backward()
        return result.data, result.outputs
    return step
