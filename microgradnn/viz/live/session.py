"""The playground's state: a checked configuration, its data and model, and training by epochs.

Every number the page shows comes from here, and every one is the engine's: training and the
heatmaps replay the model's recorded graph (`replay`), a clicked point runs the model on Values.
"""
from __future__ import annotations

import copy
import csv
import io
import math
import threading

import numpy as np

from microgradnn import data, losses, optim
from microgradnn.engine import Value
from microgradnn.nn import MLP
from microgradnn.nn.module import classify
from microgradnn.nn.files import model_payload
from microgradnn.nn.layers import ACTIVATIONS
from microgradnn.replay import Compiled, compile_model_loss
from microgradnn.viz.format import GraphTooLarge
from microgradnn.viz.graph import draw_graph
from microgradnn.viz.network import draw_network

# What one local page may ask for: enough to learn with, small enough to stay responsive.
LIMITS = {"samples": 2000, "layers": 6, "neurons": 16, "classes": 8, "upload_bytes": 1_000_000,
          "epochs": 100_000, "graph_nodes": 1500}
GRID = 32  # heatmap cells per side
DATASET_NAMES = [*data.DATASETS, "csv"]
LOSS_NAMES = ["binary_cross_entropy_with_logits", "cross_entropy", "hinge", "mse", "binary_cross_entropy"]
DEFAULTS = {"dataset": "moons", "samples": 200, "noise": 0.1, "classes": 3, "test": 0.3, "seed": 0,
            "hidden": [8, 8], "activation": "tanh", "loss": "binary_cross_entropy_with_logits",
            "optimizer": "adam", "lr": 0.03, "batch": 32, "l2": 0.0}
# Keys whose change needs new data or a new model (the others only rebuild the optimizer).
REBUILDS = {"dataset", "samples", "noise", "classes", "test", "seed", "hidden", "activation", "loss"}


class ConfigError(ValueError):
    """A configuration, upload or request the playground refuses, with the reason."""


def _number(raw, key: str, lo: float, hi: float, integer: bool = False):
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number, got {raw!r}") from None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ConfigError(f"{key} must be a finite number, got {raw!r}")
    if integer:
        if raw != int(raw):
            raise ConfigError(f"{key} must be a whole number, got {raw!r}")
        raw = int(raw)
    if not lo <= raw <= hi:
        raise ConfigError(f"{key} must lie in [{lo}, {hi}], got {raw!r}")
    return raw if integer else float(raw)


def _choice(raw, key: str, names: list[str]) -> str:
    if raw not in names:
        raise ConfigError(f"{key} must be one of {', '.join(names)}, got {str(raw)[:40]!r}")
    return raw


def _hidden(raw) -> list[int]:
    if isinstance(raw, str):
        raw = [s for s in raw.split(",") if s.strip()] if raw.strip() else []
    if not isinstance(raw, list):
        raise ConfigError(f"hidden must be a list of layer sizes, got {str(raw)[:40]!r}")
    if len(raw) > LIMITS["layers"]:
        raise ConfigError(f"hidden: at most {LIMITS['layers']} hidden layers, got {len(raw)}")
    return [_number(n, "hidden layer size", 1, LIMITS["neurons"], integer=True) for n in raw]


def check_config(raw: dict, base: dict | None = None) -> dict:
    """`raw` (from JSON or the URL) over `base`, every value checked; unknown keys are refused."""
    if not isinstance(raw, dict):
        raise ConfigError(f"a configuration must be a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}; the settings are {', '.join(DEFAULTS)}")
    c = {**(base or DEFAULTS), **raw}
    return {"dataset": _choice(c["dataset"], "dataset", DATASET_NAMES),
            "samples": _number(c["samples"], "samples", 4, LIMITS["samples"], integer=True),
            "noise": _number(c["noise"], "noise", 0.0, 1.0),
            "classes": _number(c["classes"], "classes", 2, LIMITS["classes"], integer=True),
            "test": _number(c["test"], "test", 0.1, 0.9),
            "seed": _number(c["seed"], "seed", 0, 2 ** 31 - 1, integer=True),
            "hidden": _hidden(c["hidden"]),
            "activation": _choice(c["activation"], "activation", [a for a in ACTIVATIONS if a != "linear"]),
            "loss": _choice(c["loss"], "loss", LOSS_NAMES),
            "optimizer": _choice(c["optimizer"], "optimizer", list(optim.OPTIMIZERS)),
            "lr": _number(c["lr"], "lr", 1e-6, 10.0),
            "batch": _number(c["batch"], "batch", 1, LIMITS["samples"], integer=True),
            "l2": _number(c["l2"], "l2", 0.0, 1.0)}


def parse_csv(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows `x1,x2,label` (an optional header line; labels 0, 1, ... as whole numbers)."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(cell.strip() for cell in r)]
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]  # a header
    if len(rows) < 4:
        raise ConfigError(f"the CSV needs at least 4 rows of x1,x2,label, got {len(rows)}")
    if len(rows) > LIMITS["samples"]:
        raise ConfigError(f"the CSV has {len(rows)} rows; the playground takes at most {LIMITS['samples']}")
    X, y = [], []
    for line, r in enumerate(rows, 1):
        if len(r) != 3 or not all(_is_number(cell) for cell in r):
            raise ConfigError(f"CSV row {line}: expected three numbers x1,x2,label, got {','.join(r)[:60]!r}")
        x1, x2, label = (float(cell) for cell in r)
        if not (math.isfinite(x1) and math.isfinite(x2)) or label != int(label) or not 0 <= label < LIMITS["classes"]:
            raise ConfigError(f"CSV row {line}: x1, x2 must be finite and the label a whole number "
                              f"0..{LIMITS['classes'] - 1}, got {','.join(r)[:60]!r}")
        X.append((x1, x2))
        y.append(int(label))
    y = np.array(y)
    if len(np.unique(y)) < 2:
        raise ConfigError("the CSV's labels are all the same; a classifier needs at least two classes")
    return np.array(X, dtype=float), y


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def make_data(config: dict, upload=None) -> tuple[np.ndarray, np.ndarray]:
    """The configured dataset (the uploaded CSV for "csv"), labels 0..k-1."""
    name, n, noise, seed = config["dataset"], config["samples"], config["noise"], config["seed"]
    if name == "csv":
        if upload is None:
            raise ConfigError("dataset csv: no CSV uploaded to this server yet; upload one (x1,x2,label rows)")
        return upload
    if name == "blobs":
        return data.make_blobs(n, config["classes"], cluster_std=1.0 + 4 * noise, seed=seed)
    if name == "spiral":
        return data.make_spiral(n, config["classes"], noise=noise, seed=seed)
    return data.DATASETS[name](n, noise=noise, seed=seed)


def split(n: int, test: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): a seeded shuffle, the first `round(n * test)` rows for testing."""
    order = np.random.default_rng(seed).permutation(n)
    k = min(max(1, round(n * test)), n - 1)
    return np.sort(order[k:]), np.sort(order[:k])


def targets(loss: str, y: np.ndarray) -> np.ndarray:
    """Labels as the loss reads them: -1/+1 for hinge, else 0..k-1."""
    return y * 2.0 - 1.0 if loss == "hinge" else y.astype(float)


class Session:
    """One playground: configuration, data, model, optimizer and history, behind one lock."""

    def __init__(self, config: dict | None = None) -> None:
        self.lock = threading.RLock()  # the state: data, model, optimizer, history
        self._epoch_lock = threading.Lock()  # one epoch at a time (the trainer thread, or a "step")
        self.upload: tuple[np.ndarray, np.ndarray] | None = None
        self.running, self.error, self.version, self.data_version = False, None, 0, 0
        self.config = check_config(config or {})
        self._build()

    # ---- building --------------------------------------------------------------------------

    def configure(self, raw: dict, rebuild: bool = False) -> dict:
        """Apply a (partial) configuration; data and model are rebuilt only when they change
        (or `rebuild`). A refused configuration changes nothing."""
        with self.lock:
            new = check_config(raw, self.config)
            if "loss" not in raw and new["loss"] != "cross_entropy" and self._classes_of(new) > 2:
                new["loss"] = "cross_entropy"  # new data with more classes: the one loss that reads them
            rebuild = rebuild or any(new[k] != self.config[k] for k in REBUILDS)
            old, self.config = self.config, new
            try:
                self._build() if rebuild else self._new_optimizer()
            except ConfigError:
                self.config = old
                raise
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
        self.epoch, self.history, self.error, self.running = 0, [], None, False
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
            for start in range(0, len(Xt), size):
                with self.lock:
                    if self.data_version != built:
                        return
                    idx = order[start:start + size]
                    self.optimizer.zero_grad()
                    self.step_fn(Xt[idx], tt[idx]).backward()
                    self.optimizer.step()
            with self.lock:
                if self.data_version != built:
                    return
                self.epoch += 1
                self.history.append([self.epoch, *self.metrics()])
                self.version += 1

    def metrics(self) -> list[float]:
        """[train loss, test loss, train accuracy, test accuracy] of the current model."""
        out = []
        for rows in (self.train, self.test):
            r = self.step_fn(self.X[rows], self.t[rows])
            out.append((r.data, self._accuracy(r.outputs, rows)))
        return [out[0][0], out[1][0], out[0][1], out[1][1]]

    def _accuracy(self, outputs: np.ndarray, rows: np.ndarray) -> float:
        return float((self._classes(outputs) == self.y[rows]).mean())

    def _classes(self, outputs: np.ndarray) -> np.ndarray:
        return classify(outputs, self.model.threshold)

    def reset(self) -> None:
        with self.lock:
            self._build()

    # ---- what the page polls ---------------------------------------------------------------

    def state(self, since: int = 0) -> dict:
        """Status, the history after epoch `since`, and the heatmaps of the output and of every neuron."""
        with self.lock:
            error = self.error
            try:
                metrics = self.history[-1][1:] if self.history else self.metrics()
                boundary, neurons = self._heatmaps()
            except (ValueError, ArithmeticError) as e:  # non-finite weights (diverged, or edited so): say so, draw nothing
                metrics, boundary, neurons = None, None, None
                error = error or f"the model's outputs are not finite ({e}); reset it or edit the weight back"
            return {"version": self.version, "data_version": self.data_version, "epoch": self.epoch, "running": self.running, "error": error,
                    "config": self.config, "classes": self.k, "metrics": metrics,
                    "history": [h for h in self.history if h[0] > since],
                    "boundary": boundary, "neurons": neurons}

    def _heatmaps(self) -> tuple[dict, list]:
        """The predicted class and its confidence over the grid, and every hidden neuron's output there."""
        r = self.probe(self.grid, np.full(len(self.grid), self.t.max()))
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
            model = copy.deepcopy(self.model)
            x, label, target = self.X[i], int(self.y[i]), float(self.t[i])
            loss_name = self.config["loss"]
        out = model(x)
        outs = out if isinstance(out, list) else [out]
        loss = self.loss_fn([out], [target])
        loss.backward()
        scores = np.array([o.data for o in outs]) if len(outs) > 1 else np.float64(outs[0].data)
        try:
            graph = svg(draw_graph(loss, view="both", collapse=not expand, max_nodes=LIMITS["graph_nodes"],
                                   title=f"point {i}: forward and backward ({loss_name} loss)"))
        except GraphTooLarge as e:
            graph = None
            note = f"the expanded graph is too large to draw ({e}); collapse it per neuron"
        else:
            note = None
        return {"index": i, "x": x.tolist(), "label": label, "split": "test" if i in set(self.test.tolist()) else "train",
                "outputs": [o.data for o in outs], "prediction": int(self._classes(scores)),
                "loss": loss.data, "graph": graph, "note": note, "expanded": expand,
                "network": svg(draw_network(model, x, legend=False))}

    def network(self) -> dict:
        with self.lock:
            model = copy.deepcopy(self.model)
        return {"network": svg(draw_network(model, legend=False))}

    def _parameter(self, name: str) -> Value:
        params = dict(self.model.named_parameters())
        if name not in params:
            raise ConfigError(f"no parameter named {str(name)[:60]!r}; names look like layers.0.neurons.1.w.0")
        return params[name]

    def parameter(self, name: str) -> dict:
        """A parameter's value and d(mean training loss)/d(parameter) at the current weights."""
        with self.lock:
            p = self._parameter(name)
            saved = [q.grad for q in self.model.parameters()]
            for q in self.model.parameters():
                q.grad = 0.0
            self.step_fn(self.X[self.train], self.t[self.train]).backward()
            grad = p.grad
            for q, g in zip(self.model.parameters(), saved):
                q.grad = g
            return {"name": name, "value": p.data, "grad": grad}

    def set_parameter(self, name: str, value) -> dict:
        with self.lock:
            p = self._parameter(name)
            p.data = _number(value, name, -1e6, 1e6)
            self.version += 1
            return self.parameter(name)

    # ---- keep and share --------------------------------------------------------------------

    def model_file(self) -> dict:
        with self.lock:
            return model_payload(self.model.config(), self.model.state_dict(), self.model.__dict__.get("_threshold"))

    def script(self) -> str:
        """A Python script that rebuilds this setup with the library and trains it as many epochs."""
        with self.lock:
            return script(self.config, max(self.epoch, 1))


def svg(diagram) -> str:
    return diagram.pipe(format="svg", encoding="utf-8", quiet=True)  # dot's layout warnings stay off the terminal


def script(c: dict, epochs: int) -> str:
    """The library calls that rebuild configuration `c` and train it for `epochs` epochs."""
    name = c["dataset"]
    if name == "csv":
        load = ('rows = np.loadtxt("data.csv", delimiter=",", skiprows=0)  # your uploaded x1,x2,label rows\n'
                'X, y = rows[:, :2], rows[:, 2].astype(int)')
    elif name == "blobs":
        load = f"X, y = mg.data.make_blobs({c['samples']}, {c['classes']}, cluster_std={1.0 + 4 * c['noise']!r}, seed={c['seed']})"
    elif name == "spiral":
        load = f"X, y = mg.data.make_spiral({c['samples']}, {c['classes']}, noise={c['noise']!r}, seed={c['seed']})"
    else:
        load = f"X, y = mg.data.{data.DATASETS[name].__name__}({c['samples']}, noise={c['noise']!r}, seed={c['seed']})"
    hinge = c["loss"] == "hinge"
    nout = "int(y.max()) + 1" if c["loss"] == "cross_entropy" else "1"
    out_act = "sigmoid" if c["loss"] == "binary_cross_entropy" else "linear"
    optimizer = {"sgd": "SGD", "adam": "Adam"}[c["optimizer"]]
    return f'''"""The microgradnn playground's setup, rebuilt and trained with the library."""
import numpy as np

import microgradnn as mg

{load}
t = {"y * 2.0 - 1.0  # hinge reads labels as -1/+1" if hinge else "y.astype(float)"}
order = np.random.default_rng({c['seed']}).permutation(len(X))  # the playground's train/test split
k = min(max(1, round(len(X) * {c['test']!r})), len(X) - 1)
train, test = np.sort(order[k:]), np.sort(order[:k])

model = mg.MLP(2, [{", ".join(str(n) for n in c["hidden"])}{", " if c["hidden"] else ""}{nout}], "{c['activation']}", "{out_act}", seed={c['seed']})
optimizer = mg.optim.{optimizer}(model.parameters(), lr={c['lr']!r}, weight_decay={c['l2']!r})
history = mg.fit(model, X[train], t[train], "{c['loss']}", optimizer, epochs={epochs},
                 batch_size={c['batch']}, seed={c['seed']}, compiled=True)
print(model)
print(f"train accuracy {{mg.accuracy(model, X[train], t[train]):.1%}}, "
      f"test accuracy {{mg.accuracy(model, X[test], t[test]):.1%}}")
model.save("playground_model.json", overwrite=True)
'''
