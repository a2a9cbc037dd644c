"""The playground's "Python script": a setup rebuilt with the library, trained as the page trained it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from microgradnn.optim import OPTIMIZERS
from microgradnn.viz.live.config import dataset_call

SAVE_AS = "playground_retrained.json"  # not the page's "model (JSON)" download, playground_model.json


@dataclass
class Run:
    """How a run trained: the settings it started with, each epoch's (mini-batch size, optimizer
    steps done), the changes made on the way, as (optimizer steps done before it, "settings" or
    "set", what), and the number of training rows (an epoch's full pass is ceil(rows / size) steps)."""
    start: dict
    epochs: list[tuple[int, int]]
    changes: list[tuple[int, str, Any]]
    rows: int

    def whole(self) -> bool:
        """Whether every epoch begun ran to its end."""
        return all(done == -(-self.rows // size) for size, done in self.epochs)


class _Parts(NamedTuple):
    load: str
    targets: str
    model: str
    loss: str


def script(c: dict, run: Run, upload: tuple[np.ndarray, np.ndarray] | None = None) -> str:
    """The library calls that rebuild configuration `c` and train it as `run` did: `fit` for
    whole epochs without changes, else the run replayed step by step (an uploaded CSV's rows
    are written into the script, so it runs on its own)."""
    parts = _parts(c, upload)
    if run.changes or not run.whole():
        body = _replay(c, parts, run)
    elif not run.epochs:
        body = ("# The page has not trained this model yet, so neither does this script: it saves it as built.\n"
                f"model.threshold = mg.losses.decision_threshold(mg.losses.{parts.loss}, t[train])"
                "  # what one output means, as the page (and fit) set it\n")
    else:
        body = f'''optimizer = {_optimizer(c)}
history = mg.fit(model, X[train], t[train], "{parts.loss}", optimizer, epochs={len(run.epochs)},
                 batch_size={c['batch']}, seed={c['seed']}, compiled=True)
'''
    return f'''"""The microgradnn playground's setup, rebuilt and trained with the library."""
import os
import sys

import numpy as np

import microgradnn as mg

SAVE_AS = "{SAVE_AS}"  # where the trained model goes (not the page's download, playground_model.json)
if os.path.lexists(SAVE_AS):
    sys.exit(f"{{SAVE_AS}} already exists and is kept; move it away (or change SAVE_AS) and run this again")

{parts.load}
t = {parts.targets}
# the playground's train/test split, on a stream of its own (the dataset shuffled with seed {c['seed']} alone)
order = np.random.default_rng([{c['seed']}, 1]).permutation(len(X))
k = min(max(1, round(len(X) * {c['test']!r})), len(X) - 1)
train, test = np.sort(order[k:]), np.sort(order[:k])

model = {parts.model}
{body}print(model)
print(f"train accuracy {{mg.accuracy(model, X[train], t[train]):.1%}}, "
      f"test accuracy {{mg.accuracy(model, X[test], t[test]):.1%}}")
model.save(SAVE_AS)  # never replaces a file: checked above, and save refuses to as well
print(f"saved {{SAVE_AS}}")
'''


def _parts(c: dict, upload: tuple[np.ndarray, np.ndarray] | None) -> _Parts:
    if c["dataset"] == "csv":
        if upload is None:
            raise ValueError("script: the dataset is an uploaded CSV, but no upload was given")
        X, y = upload
        load = (f"X = np.array({X.tolist()!r})  # your uploaded x1,x2,label rows\n"
                f"y = np.array({y.tolist()!r})")
    else:
        function, args, kwargs = dataset_call(c)
        call = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        load = f"X, y = mg.data.{function}({call})"
    targets = {"hinge": "y * 2.0 - 1.0  # hinge reads labels as -1/+1",
               "cross_entropy": "y.astype(int)  # class indices"}.get(c["loss"], "y.astype(float)")
    nout = "int(y.max()) + 1" if c["loss"] == "cross_entropy" else "1"
    out_act = "sigmoid" if c["loss"] == "binary_cross_entropy" else "linear"
    sizes = ", ".join(map(str, [*c["hidden"], nout]))
    model = f'mg.MLP(2, [{sizes}], "{c["activation"]}", "{out_act}", seed={c["seed"]})'
    return _Parts(load, targets, model, c["loss"])


def _optimizer(s: dict) -> str:
    return (f"mg.optim.{OPTIMIZERS[s['optimizer']].__name__}(model.parameters(), lr={s['lr']!r}, "
            f"weight_decay={s['l2']!r})")


def _replay(c: dict, parts: _Parts, run: Run) -> str:
    """The training loop `fit` runs, with the run's changes made between the same steps."""
    changes = "".join(f"    ({step}, {kind!r}, {what!r}),\n" for step, kind, what in run.changes)
    return f'''loss = mg.losses.{parts.loss}
model.threshold = mg.losses.decision_threshold(loss, t[train])  # what one output means, as fit sets it
step = mg.compile(lambda x, target: loss([model(x)], [target]))  # fit(..., compiled=True) trains so

# The page changed settings or weights during this run, or stopped an epoch part way (this
# was downloaded mid-epoch, or a step was refused with an error),
# so the script replays it step by step: each epoch's (mini-batch size, optimizer steps done),
# and each change by the number of optimizer steps before it (new settings start a new
# optimizer, whose state starts afresh; "set" is a weight set by hand).
epochs = {run.epochs!r}
changes = [
{changes}]
params = dict(model.named_parameters())


def new_optimizer(optimizer, lr, batch, l2):
    return mg.optim.OPTIMIZERS[optimizer](model.parameters(), lr=lr, weight_decay=l2)


def catch_up(done):
    """Make the changes the page made before optimizer step `done`."""
    global optimizer
    while changes and changes[0][0] <= done:
        _, kind, what = changes.pop(0)
        if kind == "settings":
            optimizer = new_optimizer(**what)
        else:
            name, value = what
            params[name].data = value


optimizer = new_optimizer(**{run.start!r})
rng = np.random.default_rng({c['seed']})  # mini-batch order, as fit draws it
Xt, tt, done = X[train], t[train], 0
for size, steps in epochs:
    order = rng.permutation(len(Xt))
    for start in range(0, steps * size, size):  # a whole pass, or as far as the page went
        catch_up(done)
        idx = order[start:start + size]
        optimizer.zero_grad()
        step(Xt[idx], tt[idx]).backward()
        optimizer.step()
        done += 1
catch_up(done)
'''
