"""The training loop: `fit` with a live progress line, and `accuracy`."""
from __future__ import annotations

import math
import numbers
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike

from microgradnn import losses as _losses, optim as _optim
from microgradnn._checks import Seed, _is_number, flag, generator_of, is_finite, number, one_of, positive_int, shown
from microgradnn.engine import Value, is_grad_enabled, no_grad, reworded, topological_order
from microgradnn.nn import Module
from microgradnn.nn.module import as_matrix as _as_matrix, classify

__all__ = ["fit", "accuracy", "History"]

_DEFAULT_LR = 0.05  # of an optimizer fit builds from its name


@dataclass
class History:
    """Per-epoch mean training loss and training accuracy (from the epoch's own forward passes);
    no accuracy when the labels are not classes (regression targets: more than two values for
    one output, or not class indices 0..nout-1 for several; the rule `accuracy` refuses by)."""
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


def _classes_of_labels(y: np.ndarray, two: bool, threshold: float) -> np.ndarray:
    """Labels as classes: class indices as they are; two classes given as -1/+1 (or any two
    values) as 0/1, the larger value being class 1; one value of neither kind (a batch of one
    class labelled 5) is on the side of `threshold` it lies."""
    if not two:
        return y
    values = np.unique(y)
    if set(values.tolist()) <= {-1.0, 1.0}:
        return (y > 0).astype(int)
    if set(values.tolist()) <= {0.0, 1.0}:
        return y.astype(int)
    if len(values) == 1:
        return (y > threshold).astype(int)
    return (y > (values.min() + values.max()) / 2).astype(int)


def _correct(scores: np.ndarray, y: np.ndarray, threshold: float) -> np.ndarray:
    return classify(scores, threshold, "accuracy") == _classes_of_labels(y, scores.ndim == 1, threshold)


def accuracy(model: Module, X: ArrayLike, y: ArrayLike, threshold: float | None = None) -> float:
    """Fraction of rows of X the model classifies as y: `model.predict`'s classes (argmax, or one
    output against `model.threshold`, which `fit` sets) against the labels."""
    if threshold is not None:
        threshold = number(threshold, "accuracy", "threshold")
    X = _as_matrix(X, model.nin, "accuracy")
    y = _as_labels(y, len(X), "accuracy")
    _check_classes(y, model.nout)
    scores = model.decision_function(X)
    if threshold is None:  # (several outputs are classed by argmax: no threshold to read)
        threshold = model.threshold if scores.ndim == 1 else 0.0
    elif scores.ndim == 2:  # as predict: a threshold given would do nothing
        raise ValueError(f"accuracy: threshold applies to a model with one output; this one has "
                         f"{scores.shape[1]}, classified by their argmax")
    return float(_correct(scores, y, threshold).mean())


def _as_labels(y, n: int, who: str) -> np.ndarray:
    if n == 0:  # accuracy would be 0/0, a NaN; fit would have no batch
        raise ValueError(f"{who}: X has no rows; it needs at least one sample")
    try:
        array = np.asarray(y)
    except ValueError:  # numpy's "inhomogeneous shape"
        raise ValueError(f"{who}: y must be one label per row of X, got rows of different lengths") from None
    if array.dtype.kind not in "biuf":  # strings (numpy reads "1" as 1.0 but fails on "cat"), None, objects
        for label in array.flat:
            if not isinstance(label, (numbers.Real, np.bool_)):
                label = label.item() if isinstance(label, np.generic) else label
                raise TypeError(f"{who}: y must hold numbers (class indices, or two values such as 0 and 1), "
                                f"got {type(label).__name__} {label!r:.60}")
    try:
        y = array.astype(float).reshape(-1)
    except OverflowError:  # a number beyond float's range (a huge int or Fraction)
        big = next(label for label in array.flat if _is_number(label) and not is_finite(label))
        raise ValueError(f"{who}: y must hold finite numbers, got {shown(big)}") from None
    if len(y) != n:
        one_hot = array.ndim == 2 and len(array) == n  # (n, classes): cross_entropy takes class indices
        raise ValueError(f"{who}: X has {n} rows but y has {len(y)} labels"
                         + (f" (y has shape {array.shape}: for one-hot rows, pass the class indices, "
                            f"y.argmax(axis=1))" if one_hot else ""))
    if not np.isfinite(y).all():
        raise ValueError(f"{who}: y contains NaN or infinity")
    return y


def _not_classes(y: np.ndarray, nout: int) -> str | None:
    """Why y are not class labels a model with `nout` outputs can score (regression targets),
    or None if they are: class indices 0..nout-1, or at most two values for one output. The
    one rule behind accuracy and fit's accuracy."""
    if nout > 1:
        bad = y[(y != np.floor(y)) | (y < 0) | (y >= nout)]
        if bad.size:
            return f"labels must be class indices 0..{nout - 1} for a model with {nout} outputs, got {bad[0]:g}"
    elif len(values := np.unique(y)) > 2:
        shown = ", ".join(f"{v:g}" for v in values[:3]) + (", ..." if len(values) > 3 else "")
        return f"a model with one output tells two classes apart, but y has {len(values)} different labels ({shown})"
    return None


def _check_classes(y: np.ndarray, nout: int) -> None:
    """Labels a model with `nout` outputs can score: class indices, or two values for one output."""
    problem = _not_classes(y, nout)
    if problem is not None:
        raise ValueError(f"accuracy: {problem}")


def _resolve(value, table: dict, what: str):
    return table[one_of(value, table, "fit", what)] if isinstance(value, str) else value


def _optimizer(model: Module, optimizer, scheduler, lr: float | None) -> _optim.Optimizer:
    """The optimizer fit steps, checked to train this model and to be the scheduler's."""
    if scheduler is not None and isinstance(optimizer, str):
        raise ValueError(f"fit: a scheduler needs the optimizer it schedules, but optimizer is the name "
                         f"{optimizer!r}, so fit would build one the scheduler never sees; build it yourself: "
                         "opt = optim.SGD(model.parameters(), lr=...), scheduler = optim.LinearLR(opt), "
                         "and pass both")
    opt = _resolve(optimizer, _optim.OPTIMIZERS, "optimizer")
    if isinstance(opt, type) and issubclass(opt, (_optim.SGD, _optim.Adam)):
        opt = opt(model.parameters(), lr=_DEFAULT_LR if lr is None else lr)
    if not isinstance(opt, _optim.Optimizer):
        raise TypeError(f"fit: optimizer must be an Optimizer or one of {', '.join(_optim.OPTIMIZERS)}, "
                        f"got {type(opt).__name__} {opt!r}"[:300])
    if lr is not None and lr != opt.lr:  # silently training at another lr than the one asked for
        raise ValueError(f"fit: lr builds an optimizer given by name, but this optimizer has its own lr "
                         f"({opt.lr:g}), so lr={shown(lr)} would be ignored; set the lr when building the optimizer")
    held = set(model.parameters()).intersection(opt.params)
    if not held:
        raise ValueError("fit: the optimizer holds none of the model's parameters (built on another model?), "
                         "so training would change nothing; build it with model.parameters()")
    if not any(p.requires_grad for p in held):  # (backward would say only that the loss does not require grad)
        raise ValueError(f"fit: the {len(held)} parameters of the model the optimizer steps are all frozen "
                         "(requires_grad=False), so training would change nothing; unfreeze them: "
                         "model.requires_grad_(True)")
    if scheduler is not None:
        if not callable(getattr(scheduler, "step", None)):
            raise TypeError(f"fit: scheduler must be a scheduler such as optim.LinearLR (with a step() method) "
                            f"or None, got {type(scheduler).__name__} {scheduler!r}"[:300])
        if getattr(scheduler, "optimizer", opt) is not opt:
            raise ValueError("fit: the scheduler was built on another optimizer than the one given, so it would "
                             "change that one's learning rate; build it on this optimizer")
    return opt


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
    terminal one status line on stderr, redrawn in place (at most every 0.1 s), and every 10% when
    not a terminal."""

    def __init__(self, epochs: int, enabled: bool) -> None:
        self.epochs, self.enabled = epochs, enabled
        notebook = enabled and _in_notebook()
        self.bar = _notebook_bar(epochs) if notebook else None
        self.stream = sys.stdout if notebook else sys.stderr
        self.live = enabled and (notebook or self.stream.isatty())
        self.start = self.shown = time.perf_counter()

    def update(self, epoch: int, loss: float, acc: float | None) -> None:
        if not self.enabled:
            return
        last = epoch == self.epochs
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", **({} if acc is None else {"accuracy": f"{acc:.1%}"}),
                                 refresh=False)
            self.bar.update(1)
            if last:
                self.bar.close()
            return
        now = time.perf_counter()
        if self.live:  # redrawn at most every 0.1 s, as tqdm's: a notebook keeps each redraw as an output
            if not (last or epoch == 1 or now - self.shown >= 0.1):
                return
            self.shown = now
        elif not (last or epoch == 1 or epoch % max(1, self.epochs // 10) == 0):
            return
        line = (f"epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  loss {loss:.4f}  "
                + ("" if acc is None else f"accuracy {acc:6.1%}  ") + f"{now - self.start:5.1f}s")
        self.stream.write(("\r" + line + ("\n" if last else "")) if self.live else line + "\n")
        self.stream.flush()


def fit(model: Module, X: ArrayLike, y: ArrayLike, loss: Callable | str, optimizer: _optim.Optimizer | str, epochs: int,
        batch_size: int | None = None, *, lr: float | None = None, scheduler: _optim.LinearLR | None = None,
        seed: Seed = 0,
        verbose: bool = True, compiled: bool = False) -> History:
    """Train `model` on (X, y): forward, loss, zero_grad, backward, step; `epochs` times.

    `loss` is a function from `microgradnn.losses` or its name; `optimizer` an optimizer
    or "sgd"/"adam" (built with `lr`, 0.05 if None; an optimizer has its own).
    `batch_size=None` uses the whole batch each step, otherwise shuffled mini-batches: from
    `seed`, an int (each call starts the same shuffles again), None, a numpy Generator,
    which each call draws on from where the last one stopped, or a RandomState (one draw seeds them).
    `scheduler.step()` runs once per epoch; to resume training, load the saved model, then the
    optimizer's and scheduler's `load_state_dict`, and call fit again; with mini-batches, pass a
    Generator (`np.random.default_rng(0)`) as seed and save `rng.bit_generator.state` too, so
    that N + N epochs are exactly 2N.
    `compiled=True` replays the recorded graph over the batch with numpy
    (`microgradnn.compile`), one sample at a time averaged, so a loss of your own must be
    a mean over the samples. A one-output Layer or Linear trains as the MLP of it: the loss gets
    each sample's one Value, not a list of it. Returns the per-epoch History.
    """
    X = _as_matrix(X, model.nin, "fit")
    y = _as_labels(y, len(X), "fit")
    loss_fn = _resolve(loss, _losses.LOSSES, "loss")
    opt = _optimizer(model, optimizer, scheduler, lr)
    params = model.named_parameters()  # before any forward pass here
    epochs = positive_int(epochs, "fit", "epochs")
    verbose, compiled = flag(verbose, "fit", "verbose"), flag(compiled, "fit", "compiled")  # "no" would read as True
    if batch_size is not None:
        batch_size = positive_int(batch_size, "fit", "batch_size")
    rng = generator_of(seed, "fit")
    if not is_grad_enabled():  # (backward would say only that the loss does not require grad)
        raise RuntimeError("fit: graph recording is off here (inside no_grad(), or after set_grad_enabled(False)), "
                           "so no gradient can be taken; call fit outside it, or inside enable_grad()")
    _check_outputs_fit_loss(model, loss_fn)
    targets = _class_indices(y, model.nout) if loss_fn is _losses.cross_entropy else y
    # Labels outside the loss's domain fail here, before any parameter changes. The outputs are
    # Values, as the model gives them (a loss of one's own may call their methods: p.tanh()).
    try:
        with no_grad():
            out = Value(0.0 if model.nout > 1 else 0.5, requires_grad=False)
            loss_fn([[out] * model.nout] * len(y) if model.nout > 1 else [out] * len(y), targets)
    except TypeError as e:
        raise TypeError(f"fit: the loss cannot take this model's outputs ({model.nout} per sample): "
                        f"{_short(e)}") from None
    except (ArithmeticError, ValueError):
        if loss_fn in _losses.LOSSES.values():  # ours refuse labels only here: their words name them
            raise
        # a loss of one's own refusing made-up outputs (log(0)) says nothing of the model's: the
        # first step computes it on those, before any parameter changes

    forward = _one_score(model)
    if compiled:
        _check_mean_loss(forward, loss_fn, X, y)

    # what a single output means for this loss, for accuracy and predict too: set on the model at
    # the first step, so a fit refused before it leaves the model's predictions as they were
    chosen = _losses.decision_threshold(loss_fn, y) if model.nout == 1 else None
    step = _compiled_step(forward, loss_fn) if compiled else _scalar_step(forward, loss_fn)
    # labels that are not classes are regression targets: an accuracy there would mean nothing
    classes = _not_classes(y, model.nout) is None
    # read before any step (a module of one's own without output_activation says so now, not
    # after the first epoch changed its parameters); several outputs are classed by argmax
    threshold = (model.threshold if chosen is None else chosen) if classes and model.nout == 1 else 0.0
    history, progress = History(), _Progress(epochs, verbose)
    stepped = False  # before the first step no parameter has changed: a failure then is no divergence
    for epoch in range(1, epochs + 1):
        order = np.arange(len(X)) if batch_size is None else rng.permutation(len(X))
        size = batch_size or len(X)
        total, scores = 0.0, np.empty((len(X), model.nout)) if model.nout > 1 else np.empty(len(X))
        for start in range(0, len(X), size):
            idx = order[start:start + size]
            opt.zero_grad()
            try:
                batch_loss, batch_scores = step(X[idx], targets[idx])
            except _StepTooLarge as e:
                raise ValueError(str(e)) from None
            except (ArithmeticError, ValueError) as e:
                if not stepped:
                    raise reworded(e, f"fit: the first step failed, before any parameter changed (so not for "
                                      f"the learning rate): {_short(e, 300)}{_output_hint(model, loss_fn)}") from None
                raise _diverged(e, epoch, opt) from None
            try:
                opt.step()
            except (ArithmeticError, ValueError) as e:
                raise _diverged(e, epoch, opt) from None
            if not stepped and chosen is not None:
                model.threshold = chosen
            stepped = True
            total += batch_loss * len(idx)
            scores[idx] = batch_scores
        if epoch in (1, epochs):  # a walk over the model costs as much as an epoch of moons: first and last
            _check_same_parameters(model, params, epoch)
        if scheduler is not None:
            scheduler.step()
        history.loss.append(total / len(X))
        if classes:
            history.accuracy.append(float(_correct(scores, y, threshold).mean()))
        progress.update(epoch, history.loss[-1], history.accuracy[-1] if classes else None)
    return history


def _check_same_parameters(model: Module, before: list[tuple[str, Value]], epoch: int) -> None:
    """Refuse a model whose parameters changed while it trained: its forward kept Values (a sample's
    inputs, a Value it made) in a list or dict attribute, which made them parameters the optimizer
    never steps, and save would write them as weights."""
    now, known = model.named_parameters(), {id(p) for _, p in before}
    if len(now) != len(before) or not known.issuperset(id(p) for _, p in now):  # (another order is no change)
        new = [name for name, p in now if id(p) not in known]
        raise ValueError(f"fit: the model's parameters changed by the end of epoch {epoch} ({len(before)} before, "
                         f"{len(now)} now; new: {new[:3] or 'none'}): its forward keeps Values in an attribute, "
                         "which makes them parameters the optimizer does not know; keep numbers there "
                         "(v.data), and create parameters in __init__")


def _class_indices(y: np.ndarray, nout: int) -> np.ndarray:
    """Labels (read as floats) as the ints cross_entropy takes, as torch's does: 1.0 from a float
    array is class 1 here, but no float is a class index there."""
    problem = _not_classes(y, nout)
    if problem is not None:
        raise ValueError(f"fit: cross_entropy takes class indices: {problem}")
    return y.astype(int)


def _diverged(e: Exception, epoch: int, opt: _optim.Optimizer) -> Exception:
    """The error of a step after the first: the inputs were checked, so the arithmetic ran away."""
    hint = "" if "learning rate" in str(e) else f"; try a smaller learning rate (lr={opt.lr:g})"
    return reworded(e, f"fit: training diverged in epoch {epoch}: {_short(e, 300)}{hint}")


def _output_hint(model: Module, loss_fn: Callable) -> str:
    output = getattr(model, "output_activation", None)
    if loss_fn is _losses.binary_cross_entropy and output not in (None, "sigmoid"):
        return (f"; binary_cross_entropy takes probabilities, but the model's output is {output}: give it a "
                "sigmoid output, or use binary_cross_entropy_with_logits")
    return ""


def _short(e: Exception, limit: int = 160) -> str:
    text = str(e)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_outputs_fit_loss(model: Module, loss_fn: Callable) -> None:
    name = getattr(loss_fn, "__name__", "the loss")
    if loss_fn is _losses.cross_entropy and model.nout < 2:
        raise ValueError(f"fit: cross_entropy needs one output per class (>= 2), but the model has {model.nout} "
                         "output; for two classes with one output use binary_cross_entropy_with_logits or hinge")
    if loss_fn in _losses.LOSSES.values() and loss_fn is not _losses.cross_entropy and model.nout != 1:
        raise ValueError(f"fit: {name} needs one output per sample, but the model has {model.nout} outputs; "
                         "use cross_entropy for several classes")


def _check_mean_loss(forward: Callable, loss_fn: Callable, X: np.ndarray, y: np.ndarray) -> None:
    """compiled=True averages the loss of one sample at a time: refuse a loss of the user's own
    that is not that mean (a sum, say), which would train something else than compiled=False."""
    if loss_fn in _losses.LOSSES.values():  # each is a mean
        return
    k = min(3, len(X))
    with no_grad():
        outs = [forward(x) for x in X[:k]]
        whole = _as_number(loss_fn(outs, y[:k]))
        mean = sum(_as_number(loss_fn([out], [t])) for out, t in zip(outs, y[:k])) / k
    if not math.isclose(whole, mean, rel_tol=1e-9):
        raise ValueError(f"fit: compiled=True needs a loss that is the mean of per-sample losses (it averages "
                         f"the loss of one sample at a time), but on the first {k} samples the loss gives "
                         f"{whole!r} for the batch and {mean!r} as the mean of per-sample losses; use "
                         "compiled=False, or make the loss a mean")


MAX_STEP_BYTES = 2 * 10**9  # a scalar step's graph: each sample's nodes (about 250 bytes) and edges (40)


class _StepTooLarge(ValueError):
    """A scalar step's graph would take more than MAX_STEP_BYTES."""


def _check_step_graph(out, size: int) -> None:
    """Refuse a scalar step whose graph over `size` samples would not fit in memory, from the graph
    `out` of its first sample, before the others are computed."""
    outs = [v for v in (out if isinstance(out, list) else [out]) if isinstance(v, Value)]
    made = {id(v): v for o in outs for v in topological_order(o) if v.inputs}  # parameters and inputs are leaves
    nodes, edges = len(made), sum(len(v.inputs) for v in made.values())
    per_sample = 250 * nodes + 40 * edges
    if size * per_sample > MAX_STEP_BYTES:
        raise _StepTooLarge(f"fit: a step over {size:,} samples builds a scalar graph of {size * nodes:,} nodes and "
                           f"{size * edges:,} edges, about {size * per_sample / 1e9:,.1f} GB, more than "
                           f"MAX_STEP_BYTES={MAX_STEP_BYTES:,}; pass compiled=True, or a batch_size of at most "
                           f"{MAX_STEP_BYTES // per_sample:,}, or set microgradnn.train.MAX_STEP_BYTES higher")


def _as_number(loss) -> float:
    return loss.data if isinstance(loss, Value) else float(loss)


def _one_score(model: Module) -> Callable:
    """The model's forward for the loss: a one-output model's list of one Value (a Layer's, a
    Linear's) read as its Value, as an MLP with one output gives it and `predict` reads it; an
    output that is no Value (a forward returning a float, which no gradient reaches) refused."""
    one = model.nout == 1

    def forward(x):
        out = model(x)
        if one and isinstance(out, list) and len(out) == 1:
            out = out[0]
        if type(out) is not Value and not (isinstance(out, list) and all(type(v) is Value for v in out)):
            raise TypeError(f"fit: the model must return a Value (or a list of Values, one per output) computed "
                            f"from its parameters, got {type(out).__name__} {out!r:.60}")
        return out
    return forward


def _scalar_step(model: Callable, loss_fn: Callable):
    first = True  # the first batch is the largest

    def step(Xb: np.ndarray, yb: np.ndarray):
        nonlocal first
        outs = [model(Xb[0])]
        if first:
            _check_step_graph(outs[0], len(Xb))
            first = False
        outs += [model(x) for x in Xb[1:]]
        value = loss_fn(outs, yb)
        if not isinstance(value, Value):
            raise TypeError(f"fit: the loss must return a Value (the mean over the batch), got "
                            f"{type(value).__name__} {value!r:.60}")
        value.backward()
        scores = np.array([[v.data for v in o] if isinstance(o, list) else o.data for o in outs])
        return value.data, scores
    return step


def _compiled_step(model: Callable, loss_fn: Callable):
    from microgradnn.replay import compile_model_loss
    run = compile_model_loss(model, loss_fn)

    def step(Xb: np.ndarray, yb: np.ndarray):
        result = run(Xb, yb)
        result.backward()
        return result.data, result.outputs
    return step
