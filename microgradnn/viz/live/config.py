"""The playground's settings: what the page may ask for, checked, and the data they make.

Everything the page sends is data: numbers within limits and names from fixed lists.
"""
from __future__ import annotations

import csv
import io
import math

import numpy as np

from microgradnn import data, optim
from microgradnn.nn.layers import ACTIVATIONS

# What one local page may ask for: enough to learn with, small enough to stay responsive.
LIMITS = {"samples": 2000, "layers": 6, "neurons": 16, "classes": 8, "upload_bytes": 1_000_000,
          "epochs": 100_000, "graph_nodes": 1500}
COORDINATE = 1e6  # the largest |x1|, |x2| of an uploaded point
DATASET_NAMES = [*data.DATASETS, "csv"]
LOSS_NAMES = ["binary_cross_entropy_with_logits", "cross_entropy", "hinge", "mse", "binary_cross_entropy"]
DEFAULTS = {"dataset": "moons", "samples": 200, "noise": 0.1, "classes": 3, "test": 0.3, "seed": 0,
            "hidden": [8, 8], "activation": "tanh", "loss": "binary_cross_entropy_with_logits",
            "optimizer": "adam", "lr": 0.03, "batch": 32, "l2": 0.0}
# Keys whose change needs new data or a new model (the others only rebuild the optimizer).
REBUILDS = {"dataset", "samples", "noise", "classes", "test", "seed", "hidden", "activation", "loss"}
TRAINING = ("optimizer", "lr", "batch", "l2")  # the rest: they change how the same model trains on


class ConfigError(ValueError):
    """A configuration, upload or request the playground refuses, with the reason."""


def number(raw, key: str, lo: float, hi: float, integer: bool = False):
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number, got {raw[:40]!r}") from None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ConfigError(f"{key} must be a finite number, got {str(raw)[:40]!r}")
    if isinstance(raw, int) and not -2 ** 63 <= raw < 2 ** 63:  # float(raw) may overflow
        raise ConfigError(f"{key} must lie in [{lo}, {hi}], got an integer of {raw.bit_length()} bits")
    if not math.isfinite(raw):
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
    return [number(n, "hidden layer size", 1, LIMITS["neurons"], integer=True) for n in raw]


def check_config(raw: dict, base: dict | None = None) -> dict:
    """`raw` (from JSON or the URL) over `base`, every value checked; unknown keys are refused."""
    if not isinstance(raw, dict):
        raise ConfigError(f"a configuration must be a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(DEFAULTS), key=str)  # a dict from Python may have keys of any type
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r:.60}; the settings are {', '.join(DEFAULTS)}")
    c = {**(base or DEFAULTS), **raw}
    return {"dataset": _choice(c["dataset"], "dataset", DATASET_NAMES),
            "samples": number(c["samples"], "samples", 4, LIMITS["samples"], integer=True),
            "noise": number(c["noise"], "noise", 0.0, 1.0),
            "classes": number(c["classes"], "classes", 2, LIMITS["classes"], integer=True),
            "test": number(c["test"], "test", 0.1, 0.9),
            "seed": number(c["seed"], "seed", 0, 2 ** 31 - 1, integer=True),
            "hidden": _hidden(c["hidden"]),
            "activation": _choice(c["activation"], "activation", [a for a in ACTIVATIONS if a != "linear"]),
            "loss": _choice(c["loss"], "loss", LOSS_NAMES),
            "optimizer": _choice(c["optimizer"], "optimizer", list(optim.OPTIMIZERS)),
            "lr": number(c["lr"], "lr", 1e-6, 10.0),
            "batch": number(c["batch"], "batch", 1, LIMITS["samples"], integer=True),
            "l2": number(c["l2"], "l2", 0.0, 1.0)}


def parse_csv(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows `x1,x2,label` (an optional header line; labels 0, 1, ... as whole numbers)."""
    # a UTF-8 BOM (Excel's "CSV UTF-8") would make the first row's first cell no number: a header
    reader, start = csv.reader(io.StringIO(text.removeprefix("\ufeff"))), 1
    rows: list[tuple[int, list[str]]] = []  # each with the line it starts on (a quoted cell may span lines)
    try:
        for r in reader:
            if r and any(cell.strip() for cell in r):
                rows.append((start, r))
            start = reader.line_num + 1
    except csv.Error as e:  # a field over csv's size limit, a NUL byte, ...
        raise ConfigError(f"the CSV cannot be read at line {reader.line_num}: {e}") from None
    if rows and not any(_is_number(cell) for cell in rows[0][1]):
        rows = rows[1:]  # a header (a row with a number in it is data: a bad one is refused, not dropped)
    if len(rows) < 4:
        raise ConfigError(f"the CSV needs at least 4 rows of x1,x2,label, got {len(rows)}")
    if len(rows) > LIMITS["samples"]:
        raise ConfigError(f"the CSV has {len(rows)} rows; the playground takes at most {LIMITS['samples']}")
    X, y = [], []
    for line, r in rows:  # named by its line, as an editor or a spreadsheet numbers it (a header counted)
        if len(r) != 3 or not all(_is_number(cell) for cell in r):
            raise ConfigError(f"CSV row {line}: expected three numbers x1,x2,label, got {','.join(r)[:60]!r}")
        x1, x2, label = (float(cell) for cell in r)
        if not (abs(x1) <= COORDINATE and abs(x2) <= COORDINATE):  # NaN too; the plane drawn must be finite
            raise ConfigError(f"CSV row {line}: x1 and x2 must be finite numbers within ±{COORDINATE:g}, "
                              f"got {','.join(r)[:60]!r}")
        if not (0 <= label < LIMITS["classes"] and label == int(label)):  # NaN fails the first test
            raise ConfigError(f"CSV row {line}: the label must be a whole number 0..{LIMITS['classes'] - 1}, "
                              f"got {r[2][:40]!r}")
        X.append((x1, x2))
        y.append(int(label))
    labels = np.array(y)
    if len(np.unique(labels)) < 2:
        raise ConfigError("the CSV's labels are all the same; a classifier needs at least two classes")
    return np.array(X, dtype=float), labels


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def dataset_call(config: dict) -> tuple[str, tuple, dict]:
    """The `microgradnn.data` function, and its arguments, that make a built-in dataset
    (for blobs, noise widens the clusters: cluster_std = 1 + 4 * noise)."""
    name, n, noise, seed = config["dataset"], config["samples"], config["noise"], config["seed"]
    if name == "blobs":
        return "make_blobs", (n,), {"centers": config["classes"], "cluster_std": 1.0 + 4 * noise, "seed": seed}
    if name == "spiral":
        return "make_spiral", (n, config["classes"]), {"noise": noise, "seed": seed}
    return data.DATASETS[name].__name__, (n,), {"noise": noise, "seed": seed}


def make_data(config: dict, upload=None) -> tuple[np.ndarray, np.ndarray]:
    """The configured dataset (the uploaded CSV for "csv"), labels 0..k-1."""
    if config["dataset"] == "csv":
        if upload is None:
            raise ConfigError("dataset csv: no CSV uploaded to this server yet; upload one (x1,x2,label rows)")
        return upload
    function, args, kwargs = dataset_call(config)
    return getattr(data, function)(*args, **kwargs)


def split(n: int, test: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): a seeded shuffle, the first `round(n * test)` rows for testing."""
    # a stream of its own: the dataset shuffles with default_rng(seed), and the same permutation
    # again would put the same part of the unshuffled data (one class) in the test set more often
    order = np.random.default_rng([seed, 1]).permutation(n)
    k = min(max(1, round(n * test)), n - 1)
    return np.sort(order[k:]), np.sort(order[:k])


def targets(loss: str, y: np.ndarray) -> np.ndarray:
    """Labels as the loss reads them: -1/+1 for hinge, class indices (ints) for cross_entropy,
    else 0.0..k-1."""
    if loss == "cross_entropy":
        return y.astype(int)
    return y * 2.0 - 1.0 if loss == "hinge" else y.astype(float)
