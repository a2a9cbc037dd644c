"""Matplotlib pictures of training (optional extra `plot`): decision boundary and loss curve."""
from __future__ import annotations

import io
import os

import numpy as np
import matplotlib
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from microgradnn._checks import _is_number, integer, is_finite, shown
from microgradnn._files import check_writable, extension, user_path, write_atomic
from microgradnn.nn import Module
from microgradnn.nn.module import as_matrix
from microgradnn.train import History, _as_labels, _classes_of_labels, _not_classes

__all__ = ["decision_boundary", "loss_curve"]

PALETTE = ["#2E86C1", "#E67E22", "#27AE60", "#8E44AD", "#C0392B"]
MAX_RESOLUTION = 1000  # a million points to score: more takes minutes and gigabytes for no visible gain


def _colours(k: int) -> list:
    """k colours, one per class: the palette's, then tab10's hues (tab20 adds a light twin of each,
    which the shading's alpha makes almost white), else evenly spaced hues."""
    if k <= len(PALETTE):
        return PALETTE[:k]
    if k <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(k)]
    if k <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(k)]  # (an int indexes its 20 colours)
    return [matplotlib.colormaps["hsv"](i / k) for i in range(k)]


def _destination(path: str | os.PathLike, overwrite: bool, who: str) -> tuple[str, str]:
    """The path, checked before any drawing, and the format its extension names."""
    path = user_path(path, who)
    formats = tuple("." + f for f in sorted(FigureCanvasBase.get_supported_filetypes()))
    ext = extension(path, formats, who)
    return check_writable(path, overwrite, who), ext[1:]


def _write(fig, path: str, fmt: str, overwrite: bool, who: str) -> str:
    """Write the figure atomically; an existing file is only replaced with `overwrite=True`."""
    data = io.BytesIO()
    fig.savefig(data, format=fmt)
    write_atomic(path, data.getvalue(), overwrite=overwrite, who=who)
    return path


def decision_boundary(model: Module, X: np.ndarray, y: np.ndarray, path: str | os.PathLike, *, resolution: int = 80,
                      overwrite: bool = False) -> str:
    """Shade the plane by the model's predicted class and scatter the data on top; the extension
    picks the format. An existing file is only replaced with `overwrite=True`."""
    who = "decision_boundary"
    path, fmt = _destination(path, overwrite, who)
    if not isinstance(model, Module):
        raise TypeError(f"{who}: model must be a Module, got {type(model).__name__}")
    if model.nin != 2:
        raise ValueError(f"{who}: the picture is a plane of 2 inputs, but the model takes {model.nin}")
    integer(resolution, who, "resolution", at_least=2)
    if resolution > MAX_RESOLUTION:
        raise ValueError(f"{who}: resolution must be at most {MAX_RESOLUTION} (points per side), got {resolution}")
    X = as_matrix(X, 2, who)
    y = _as_labels(y, len(X), who)
    problem = _not_classes(y, model.nout)
    if problem is not None:  # colours are classes: regression targets would get arbitrary ones
        raise ValueError(f"{who}: {problem}")
    y = _classes_of_labels(y, model.nout == 1, model.threshold)  # -1/+1 as 0/1, as accuracy reads them
    # a margin in proportion to each axis's span, so that data of any scale fills the picture and
    # its outer points are not cut by the frame (0.3 where all points share a coordinate)
    low, high = X.min(axis=0), X.max(axis=0)
    with np.errstate(over="ignore"):
        span = high - low
        pad = np.where(span > 0, 0.08 * span, np.maximum(0.3, 0.1 * np.abs(low)))
        (x0, y0), (x1, y1) = low - pad, high + pad
        if not np.isfinite([x1 - x0, y1 - y0]).all():
            raise ValueError(f"{who}: X spans more than a float holds (from {low.min():g} to {high.max():g}); "
                             "scale it down to draw it")
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.c_[gx.ravel(), gy.ravel()]
    k = max(int(y.max()) + 1, model.nout, 2)
    try:
        # one output: the score itself, so the boundary is the smooth threshold contour; several: the class
        shade = model.decision_function(grid).reshape(*gx.shape, -1)[..., 0 if model.nout == 1 else slice(None)]
    except ArithmeticError as e:  # the engine's own words name the node; say where it came from
        raise type(e)(f"{who}: the model fails somewhere on the plane drawn (x from {x0:g} to "
                      f"{x1:g}, y from {y0:g} to {y1:g}): {e}") from None
    # a Figure of its own, not pyplot's: no backend to load (an interactive one fails with no display), no
    # figure left open in the user's session
    fig = Figure(figsize=(5, 4.2), dpi=110)
    ax = fig.subplots()
    colours = _colours(k)
    cmap = ListedColormap(colours)
    if model.nout == 1:
        threshold = model.threshold
        # the bands just beyond the scores and the threshold (min - 1 is the min itself from 1e16 on,
        # which matplotlib refuses as levels not increasing); class 0 at or below the threshold, as predict
        low = np.nextafter(min(shade.min(), threshold), -np.inf)
        high = np.nextafter(max(shade.max(), threshold), np.inf)
        ax.contourf(gx, gy, shade, levels=[low, threshold, high], colors=colours[:2], alpha=0.25)
        ax.contour(gx, gy, shade, levels=[threshold], colors="#555555", linewidths=0.8)
    else:
        # each class where its score is above every other's, the 0 contour of its margin: smooth edges, and
        # no strip of a class the model never predicts between two others (contouring the labels as numbers
        # drew one along the edge of classes 0 and 2); below them, and alone where scores tie or margins
        # overflow, each grid cell in predict's class (the first maximum): it shows
        # in the gaps the contours leave near a point where three classes meet (each margin is
        # interpolated on its own); opaque, in the colours a quarter of each class's over white gives
        light = [tuple(0.75 + 0.25 * np.array(to_rgb(c))) for c in colours]
        ax.pcolormesh(gx, gy, shade.argmax(axis=-1), shading="nearest", cmap=ListedColormap(light), vmin=-0.5,
                      vmax=k - 0.5)
        with np.errstate(over="ignore", invalid="ignore"):
            margins = [shade[..., c] - np.delete(shade, c, axis=-1).max(axis=-1) for c in range(shade.shape[-1])]
        if all(np.isfinite(m).all() and (m != 0).all() for m in margins):
            for c, margin in enumerate(margins):
                if margin.max() > 0:
                    ax.contourf(gx, gy, margin, levels=[0.0, margin.max()], colors=[light[c]])
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=k - 0.5, s=18, edgecolors="white", linewidths=0.4)
    ax.set_title("decision boundary")
    fig.tight_layout()
    return _write(fig, path, fmt, overwrite, "decision_boundary")


def _per_epoch(values, what: str, fraction: bool = False) -> list[float]:
    """A History list as the numbers to draw, one per epoch: finite (matplotlib leaves a gap for NaN or
    infinity and draws strings on a categorical axis), and for accuracy within the axis's 0..1."""
    if not isinstance(values, (list, tuple, np.ndarray)) or np.ndim(values) != 1:
        raise TypeError(f"loss_curve: history.{what} must be a list of numbers, one per epoch, "
                        f"got {type(values).__name__}")
    for i, v in enumerate(values):
        where = f"loss_curve: history.{what}[{i}] (epoch {i + 1})"
        if not is_finite(v):
            got = f"{v:g}" if isinstance(v, float) else shown(v) if _is_number(v) else f"{type(v).__name__} {shown(v)}"
            raise ValueError(f"{where} must be a finite number, got {got}")
        if fraction and not 0 <= v <= 1:
            raise ValueError(f"{where} must be a fraction in [0, 1], got {v:g}")
    return [float(v) for v in values]


def loss_curve(history: History, path: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Training loss (left axis) and accuracy (right axis) per epoch; the extension picks the
    format. An existing file is only replaced with `overwrite=True`."""
    path, fmt = _destination(path, overwrite, "loss_curve")
    if not isinstance(history, History):
        raise TypeError(f"loss_curve: history must be the History fit returns, got {type(history).__name__}")
    loss, accuracy = _per_epoch(history.loss, "loss"), _per_epoch(history.accuracy, "accuracy", fraction=True)
    if not loss:
        raise ValueError("loss_curve: history has no epochs to draw")
    if accuracy and len(accuracy) != len(loss):
        raise ValueError(f"loss_curve: history has {len(loss)} losses but {len(accuracy)} accuracies; one of each "
                         "per epoch (or no accuracy, for regression)")
    fig = Figure(figsize=(5, 3.4), dpi=110)
    ax = fig.subplots()
    epochs = np.arange(1, len(loss) + 1)
    marker = "o" if len(epochs) <= 30 else None  # a line of one point draws nothing
    ax.plot(epochs, loss, color=PALETTE[0], label="loss", marker=marker, markersize=3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # epochs are whole: no tick at 1.5
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss", color=PALETTE[0])
    if accuracy:  # none for regression
        acc = ax.twinx()
        acc.plot(epochs, accuracy, color=PALETTE[1], label="accuracy", marker=marker, markersize=3)
        acc.set_ylabel("accuracy", color=PALETTE[1])
        acc.set_ylim(-0.05, 1.05)  # (a marker on the frame is cut in half)
    ax.set_title("training")
    fig.tight_layout()
    return _write(fig, path, fmt, overwrite, "loss_curve")
