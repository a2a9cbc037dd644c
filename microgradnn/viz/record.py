"""`record`: a picture of every forward and backward pass of a training loop."""
from __future__ import annotations

import contextlib
import os
import re
from typing import Iterator

from microgradnn._checks import flag, positive_int
from microgradnn._files import check_overwrite, user_path
from microgradnn.engine import Value, register_backward_hook
from microgradnn.nn import Module
from microgradnn.viz.files import save
from microgradnn.viz.format import MAX_NODES
from microgradnn.viz.graph import _draw

_FORMATS = ("svg", "png", "pdf", "dot")
# the names record writes, in any of its formats: what overwrite=True clears from an earlier recording
_STEP_FILE = re.compile(rf"step-\d{{4,}}-(?:forward|backward)\.(?:{'|'.join(_FORMATS)})")


@contextlib.contextmanager
def record(directory: str | os.PathLike, model: Module | None = None, *, every: int = 1, format: str = "svg",
           collapse: bool | None = None, max_nodes: int = MAX_NODES, overwrite: bool = False) -> Iterator[list]:
    """Inside the block, each `backward()` writes `step-NNNN-forward.<format>` (the graph as it
    was computed) and `step-NNNN-backward.<format>` (with grads and local derivatives).

    `every=n` keeps every n-th step; `collapse` (default: True when `model` is given) draws each call of a
    neuron as one node. Yields the list of written paths, which grows as the loop runs.
    Refuses a directory that already holds step files unless `overwrite=True`, which first removes
    the step files an earlier recording left there (only names record writes, in any of its
    formats: a shorter run never sits beside the longer one's later steps). Only scalar
    `Value.backward()` calls are drawn (a compiled replay has no per-sample graph to draw).
    """
    directory = user_path(directory, "record")
    if format not in _FORMATS:
        raise ValueError(f"record: format must be svg, png, pdf or dot, got {format!r}")
    positive_int(every, "record", "every")
    positive_int(max_nodes, "record", "max_nodes")
    check_overwrite(overwrite, "record")
    if model is not None and not isinstance(model, Module):  # (it decides collapse's default)
        raise TypeError(f"record: model must be a Module or None, got {type(model).__name__} {model!r:.60}")
    if collapse is not None:
        flag(collapse, "record", "collapse")
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise NotADirectoryError(f"record: {directory} is a file, not a folder; give a folder for the step files")
    os.makedirs(directory, exist_ok=True)
    if not overwrite and any(n.startswith("step-") for n in os.listdir(directory)):
        raise FileExistsError(f"record: {directory} already holds step-* files; pass overwrite=True or "
                              f"use another directory")
    if overwrite:
        for name in os.listdir(directory):
            if _STEP_FILE.fullmatch(name) and not os.path.isdir(os.path.join(directory, name)):
                os.remove(os.path.join(directory, name))
    collapse = model is not None if collapse is None else collapse
    written: list[str] = []
    step = 0

    def hook(root: Value, phase: str) -> None:
        nonlocal step
        if phase == "before":
            step += 1
        if (step - 1) % every:
            return
        view = "forward" if phase == "before" else "backward"
        g = _draw(root, view, "LR", False, False, collapse, max_nodes, f"step {step} · {view}", None, "record")
        path = os.path.join(directory, f"step-{step:04d}-{view}.{format}")
        written.append(save(g, path, overwrite=True))

    with register_backward_hook(hook):
        yield written


