"""The model file: JSON with a format header, the architecture (config) and the parameters (state)."""
from __future__ import annotations

import json
import os

from microgradnn._files import check_writable, write_atomic

FORMAT = "microgradnn-model"


def write_model(path: str | os.PathLike, config: dict, state: dict, overwrite: bool,
                threshold: float | None = None) -> None:
    """Write a model file atomically; an existing file is only replaced with `overwrite=True`.
    `threshold`: the class threshold `fit` chose, if any (kept by `load`)."""
    path = check_writable(path, overwrite, "save")
    payload = {"format": FORMAT, "version": 1, "config": config, "state": state}
    if threshold is not None:
        payload["threshold"] = threshold
    write_atomic(path, json.dumps(payload, indent=1).encode())


def read_model(path: str | os.PathLike) -> dict:
    """The payload of a model file, checked to be one ({"config": ..., "state": {...}})."""
    path = os.fspath(path)
    try:
        with open(path) as f:
            payload = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"load: {path} is not a microgradnn model file (invalid JSON: {e})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "config" not in payload \
            or not isinstance(payload.get("state"), dict):
        raise ValueError(f"load: {path} is not a microgradnn model file (no {FORMAT!r} header)")
    return payload
