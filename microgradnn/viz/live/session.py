"""The playground's state: its data and model, training by epochs, and what the page polls.

Every number the page shows comes from here, and every one is the engine's: training and the
heatmaps replay the model's recorded graph (`replay`), a clicked point runs the model on Values.
"""
from __future__ import annotations

import copy
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from microgradnn import losses, optim
from microgradnn.engine import Value, assign, restore, version_of
from microgradnn.nn import MLP
from microgradnn.nn.files import model_payload
from microgradnn.nn.module import classify
from microgradnn.replay import Compiled, compile_model_loss
from microgradnn.viz.format import GraphTooLarge
from microgradnn.viz.graph import draw_graph
from microgradnn.viz.live.config import (LIMITS, REBUILDS, TRAINING, ConfigError, check_config, make_data,
                                         number, parse_csv, split, targets)
from microgradnn.viz.live.script import Run, script
from microgradnn.viz.network import draw_network

GRID = 32  # heatmap cells per side


class Session:
    """One playground: configuration, data, model, optimizer and history, behind one lock."""

    def __init__(self, config: dict | None = None) -> None:
        self.lock = threading.RLock()  # the state: data, model, optimizer, history
        self._epoch_lock = threading.Lock()  # one epoch at a time (the trainer thread, or a "step")
        self.upload: tuple[np.ndarray, np.ndarray] | None = None
        self.error: str | None = None
        self.running, self.version, self.data_version = False, 0, 0
        self.config = check_config({} if config is None else config)
        self._build()

    # ---- building --------------------------------------------------------------------------

    def configure(self, raw: dict, rebuild: bool = False) -> dict:
        """Apply a (partial) configuration; data and model are rebuilt only when they change
        (or `rebuild`), the optimizer only when its settings do. A refused configuration changes nothing."""
        with self.lock:
            new = check_config(raw, self.config)
            if new["dataset"] == "csv" and self.upload is not None:  # its samples are its rows, however many
                rows = len(self.upload[0])
                if "samples" in raw and new["samples"] != rows:  # a rebuild on the same rows, another count shown
                    raise ConfigError(f"samples: the data is the uploaded CSV's {rows} rows, got {new['samples']}; "
                                      "upload another CSV to change them")
                new["samples"] = rows
            if "loss" not in raw and new["loss"] != "cross_entropy" and self._classes_of(new) > 2:
                new["loss"] = "cross_entropy"  # new data with more classes: the one loss that reads them
            rebuild = rebuild or any(new[k] != self.config[k] for k in REBUILDS)
            if not rebuild and all(new[k] == self.config[k] for k in TRAINING):
                return new  # nothing changes (a page reloaded, a second tab): the optimizer keeps its state
            old, self.config = self.config, new
            try:
                self._build() if rebuild else self._new_optimizer()
            except ConfigError:
                self.config = old
                raise
            if not rebuild:  # the same model trains on with a new optimizer: the script replays this
                self.changes.append((self.steps, "settings", {k: new[k] for k in TRAINING}))
            return new

    def set_upload(self, text: str) -> dict:
        """Take a CSV upload and train on it from now on; a refused one changes nothing."""
        X, y = parse_csv(text)
        with self.lock:
            old, self.upload = self.upload, (X, y)
            try:
                return self.configure({"dataset": "csv", "samples": len(X)}, rebuild=True)
            except ConfigError:
                self.upload = old
                raise

    def _classes_of(self, config: dict) -> int:
        if config["dataset"] == "csv":
            return int(self.upload[1].max()) + 1 if self.upload is not None else 2
        return config["classes"] if config["dataset"] in ("blobs", "spiral") else 2

    def _build(self) -> None:
        c = self.config
        X, y = make_data(c, self.upload)
        k = int(y.max()) + 1
        if k > 2 and c["loss"] != "cross_entropy":
            raise ConfigError(f"loss {c['loss']} needs two classes but this data has {k}; choose cross_entropy")
        train, test = split(len(X), c["test"], c["seed"])
        self.X, self.y, self.k = X, y, k
        self.train, self.test = train, test
        self.t = targets(c["loss"], y)
        nout = k if c["loss"] == "cross_entropy" else 1
        out_act = "sigmoid" if c["loss"] == "binary_cross_entropy" else "linear"
        self.model = MLP(2, [*c["hidden"], nout], c["activation"], out_act, seed=c["seed"])
        self.loss_fn = losses.LOSSES[c["loss"]]
        self.model.threshold = losses.decision_threshold(self.loss_fn, self.t)  # as `fit` sets it
        self.step_fn = compile_model_loss(self.model, self.loss_fn)
        self.probe = self._probe()
        lo, hi = X.min(axis=0), X.max(axis=0)
        pad = np.maximum((hi - lo) * 0.15, 0.25)
        self.extent = [float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])]
        gx = np.linspace(self.extent[0], self.extent[1], GRID)
        gy = np.linspace(self.extent[3], self.extent[2], GRID)  # top row first
        self.grid = np.array([(a, b) for b in gy for a in gx])
        self.rng = np.random.default_rng(c["seed"])  # mini-batch order, as `fit` draws it
        self.history: list[list[float]] = []
        self.epoch, self.error, self.running = 0, None, False
        # while an epoch runs, the weights it started from (those of `epoch`, with the edits made
        # since) and their key: what the page is shown, so that every picture and number it gets
        # at once is of one epoch; and the last metrics measured, by the key of their weights
        self._epoch_start: tuple[tuple, list[float]] | None = None
        self._measured: tuple[tuple, list[float]] | None = None
        # what the script needs to replay this run: each epoch's [mini-batch size, optimizer steps
        # done] (fewer than a full pass while it runs, or if it broke off with an error: a refused
        # step changes nothing), the steps done in all, and the changes made on the way (new
        # settings, weights set by hand) by the step they came before
        self.start = {k: c[k] for k in TRAINING}
        self.epoch_steps: list[list[int]] = []
        self.steps = 0
        self.changes: list[tuple[int, str, Any]] = []
        self._new_optimizer()
        self.version += 1
        self.data_version += 1

    def _new_optimizer(self) -> None:
        c = self.config
        self.optimizer = optim.OPTIMIZERS[c["optimizer"]](self.model.parameters(), lr=c["lr"], weight_decay=c["l2"])

    def _probe(self) -> Compiled:
        """The model's replayed forward, reporting every neuron's output (hidden, then outputs)."""
        watched: list = []

        def fn(x, y):
            watched.clear()
            h = x
            for layer in self.model.layers:
                h = layer(h)
                watched.extend(h)
            return self.loss_fn([h[0] if len(h) == 1 else h], [y])
        return Compiled(fn, watch=lambda: list(watched))

    # ---- training --------------------------------------------------------------------------

    def train_epoch(self) -> None:
        """One pass over the training rows in mini-batches, as `fit(..., compiled=True)` makes it."""
        # One epoch at a time; the state lock is let go between mini-batches so that the page's
        # requests never wait long. A rebuild (new data or model) mid-epoch ends the epoch.
        with self._epoch_lock:
            with self.lock:
                built = self.data_version
                Xt, tt = self.X[self.train], self.t[self.train]
                size = self.config["batch"]
                order = self.rng.permutation(len(Xt))
                done = [size, 0]
                self.epoch_steps.append(done)
                self._epoch_start = (self._weights_key(), [p.data for p in self.model.parameters()])
            try:
                self._run_epoch(built, Xt, tt, size, order, done)
            finally:
                with self.lock:
                    self._epoch_start = None

    def _run_epoch(self, built: int, Xt: np.ndarray, tt: np.ndarray, size: int, order: np.ndarray,
                   done: list[int]) -> None:
        """The epoch's mini-batches, each under the lock, then its metrics; a rebuild ends it."""
        for start in range(0, len(Xt), size):
            with self.lock:
                if self.data_version != built:
                    return
                idx = order[start:start + size]
                self.optimizer.zero_grad()
                self.step_fn(Xt[idx], tt[idx]).backward()
                self.optimizer.step()  # a step refused here or above changed no weight
                self.steps += 1
                done[1] += 1
        with self.lock:
            if self.data_version != built:
                return
            self.epoch += 1
            self._epoch_start = None  # with the count: a poll between would show the new epoch with the old weights
            self.history.append([self.epoch, *self._metrics_of(self._weights_key())])
            self.version += 1

    def metrics(self) -> list[float]:
        """[train loss, test loss, train accuracy, test accuracy] of the current model."""
        out = []
        for rows in (self.train, self.test):
            r = self.step_fn(self.X[rows], self.t[rows])
            assert r.outputs is not None  # the step watches the model's outputs
            out.append((r.data, self._accuracy(r.outputs, rows)))
        return [out[0][0], out[1][0], out[0][1], out[1][1]]

    def _weights_key(self) -> tuple:
        """What identifies the current weights: the model, the steps trained, the edits made."""
        return self.data_version, self.steps, len(self.changes)

    def _metrics_of(self, key: tuple) -> list[float]:
        """`metrics()` of the current weights, whose key is `key`, measured once."""
        if self._measured is None or self._measured[0] != key:
            self._measured = (key, self.metrics())
        return self._measured[1]

    @contextmanager
    def _weights_at(self, weights: list[float] | None) -> Iterator[None]:
        """The model with these weights for the while (the lock held), then its own again."""
        if weights is None:
            yield
            return
        params = self.model.parameters()
        own, versions = [p.data for p in params], [version_of(p) for p in params]
        try:
            assign(params, weights)
            yield
        finally:  # the very numbers, with their versions: nothing computed from them goes stale
            restore(params, own, versions)

    def _accuracy(self, outputs: np.ndarray, rows: np.ndarray) -> float:
        return float((self._classes(outputs) == self.y[rows]).mean())

    def _classes(self, outputs: np.ndarray) -> np.ndarray:
        return classify(outputs, self.model.threshold)

    def reset(self) -> None:
        with self.lock:
            self._build()

    # ---- what the page polls ---------------------------------------------------------------

    def state(self, since: int = 0) -> dict:
        """Status, the history after epoch `since`, and the metrics and heatmaps (of the output and
        of every neuron) of the weights at the end of epoch `epoch`, with the edits made since: mid-epoch,
        those the running epoch started from, so that the pictures and numbers are of one epoch."""
        with self.lock:
            error = self.error
            key, weights = self._epoch_start or (self._weights_key(), None)
            try:
                with self._weights_at(weights):
                    metrics = self._metrics_of(key)
                    boundary, neurons = self._heatmaps()
                boundary["epoch"] = self.epoch
            except (ValueError, ArithmeticError) as e:  # non-finite weights (diverged, or edited): say so, draw nothing
                metrics, boundary, neurons = None, None, None
                error = error or f"the model's outputs are not finite ({e}); reset it or edit the weight back"
            return {"version": self.version, "data_version": self.data_version, "epoch": self.epoch,
                    "running": self.running, "error": error,
                    "config": self.config, "classes": self.k, "metrics": metrics,
                    "history": [h for h in self.history if h[0] > since],
                    "boundary": boundary, "neurons": neurons}

    def _heatmaps(self) -> tuple[dict, list]:
        """The predicted class and its confidence over the grid, and every hidden neuron's output there."""
        r = self.probe(self.grid, np.full(len(self.grid), self.t.max()))
        assert r.outputs is not None  # the probe watches every neuron's output
        acts = r.outputs.reshape(len(self.grid), -1)
        nout = self.model.nout
        scores = acts[:, -nout:] if nout > 1 else acts[:, -1]
        if not np.isfinite(acts).all():
            raise ValueError("a neuron's output is NaN or infinite on the plane")
        cls = self._classes(scores)
        if nout > 1:
            z = scores - scores.max(axis=1, keepdims=True)
            conf = (np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)).max(axis=1)
        else:
            conf = 1 / (1 + np.exp(-4 * np.abs(scores - self.model.threshold)))
        neurons, at = [], 0
        for layer in self.model.layers[:-1]:
            neurons.append([np.round(acts[:, at + j], 3).tolist() for j in range(layer.nout)])
            at += layer.nout
        return ({"cls": cls.tolist(), "conf": np.round(conf, 3).tolist(), "grid": GRID, "extent": self.extent},
                neurons)

    def points(self) -> dict:
        with self.lock:
            return {"X": np.round(self.X, 6).tolist(), "y": self.y.tolist(), "test": self.test.tolist(),
                    "extent": self.extent, "data_version": self.data_version}

    # ---- one point, one parameter ----------------------------------------------------------

    def point(self, i: int, expand: bool = False) -> dict:
        """Row i run through a copy of the model on Values: outputs, loss, gradients and pictures."""
        with self.lock:
            if not 0 <= i < len(self.X):
                raise ConfigError(f"point: index must lie in 0..{len(self.X) - 1}, got {i}")
            # all of one setup, read under the lock: the point computes outside it, while a change may come
            model = copy.deepcopy(self.model)
            loss_name, loss_fn, threshold = self.config["loss"], self.loss_fn, self.model.threshold
            x, label = self.X[i], int(self.y[i])
            target = label if loss_name == "cross_entropy" else float(self.t[i])  # a class index is an int
            split = "test" if i in set(self.test.tolist()) else "train"
        model.zero_grad()  # the copy came with the last training step's gradients
        out = model(x)
        outs = out if isinstance(out, list) else [out]
        loss = loss_fn([out], [target])
        loss.backward()
        scores = np.array([[o.data for o in outs]]) if len(outs) > 1 else np.array([outs[0].data])  # one row
        graph: str | None = None
        note: str | None = None
        try:
            graph = svg(draw_graph(loss, view="both", collapse=not expand, max_nodes=LIMITS["graph_nodes"],
                                   title=f"point {i}: forward and backward ({loss_name} loss)"))
        except GraphTooLarge as e:
            note = f"the expanded graph is too large to draw ({e}); collapse it per neuron"
        return {"index": i, "x": x.tolist(), "label": label, "split": split,
                "outputs": [o.data for o in outs], "prediction": int(classify(scores, threshold)[0]),
                "loss": loss.data, "graph": graph, "note": note, "expanded": expand,
                "grads": {name: q.grad for name, q in model.named_parameters()},  # d(this point's loss)/d(q)
                "network": svg(draw_network(model, x, legend=False))}

    def network(self) -> dict:
        with self.lock:
            model = copy.deepcopy(self.model)
        return {"network": svg(draw_network(model, legend=False))}

    def _parameter(self, name: str) -> Value:
        params = dict(self.model.named_parameters())
        if not isinstance(name, str) or name not in params:  # a list or dict is unhashable
            raise ConfigError(f"no parameter named {str(name)[:60]!r}; names look like layers.0.neurons.1.w.0")
        return params[name]

    def parameter(self, name: str) -> dict:
        """A parameter's value and d(mean training loss)/d(parameter) at the current weights;
        the gradient is None, and `grad_error` says why, when the loss is not finite there (a
        diverged model: its weights can still be read and edited, to mend it)."""
        with self.lock:
            p = self._parameter(name)
            saved = [q.grad for q in self.model.parameters()]
            for q in self.model.parameters():
                q.grad = 0.0
            try:
                self.step_fn(self.X[self.train], self.t[self.train]).backward()
                grad, why = p.grad, None
            except (ValueError, ArithmeticError) as e:
                grad, why = None, f"no gradient: the model's loss is not finite at these weights ({e})"
            finally:
                for q, g in zip(self.model.parameters(), saved):
                    q.grad = g
            return {"name": name, "value": p.data, "grad": grad, **({"grad_error": why} if why else {})}

    def set_parameter(self, name: str, value) -> dict:
        with self.lock:
            p = self._parameter(name)
            p.data = number(value, name, -1e6, 1e6)
            self.changes.append((self.steps, "set", (name, p.data)))
            self.version += 1
            return self.parameter(name)

    # ---- keep and share --------------------------------------------------------------------

    def model_file(self) -> dict:
        with self.lock:
            return model_payload(self.model.config(), self.model.state_dict(), self.model.__dict__.get("_threshold"))

    def script(self) -> str:
        """A Python script that rebuilds this setup with the library and trains it as this run
        has trained it so far: the same optimizer steps, with the settings changes and weight
        edits made on the way, so that it ends with the weights the page has now."""
        with self.lock:
            run = Run(self.start, [(size, done) for size, done in self.epoch_steps], list(self.changes),
                      len(self.train))
            return script(self.config, run, self.upload)


def svg(diagram) -> str:
    return diagram.pipe(format="svg", encoding="utf-8", quiet=True)  # dot's layout warnings stay off the terminal
