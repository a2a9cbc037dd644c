"""The model file: JSON with a format header, the architecture (config), the parameters (state)
and, from version 2, which of the state's names are one parameter (tied)."""
from __future__ import annotations

import json
import math
import os

from microgradnn._checks import is_finite, shown
from microgradnn._files import check_regular, check_writable, user_path, write_atomic

FORMAT = "microgradnn-model"
_ENTRIES = ("format", "version", "config", "state", "tied", "threshold", "vocabulary")  # what a model file may hold


def write_model(path: str | os.PathLike, config: dict, state: dict, overwrite: bool,
                threshold: float | None = None, vocabulary: str | None = None, *, tied: dict | None = None) -> None:
    """Write a model file atomically; an existing file is only replaced with `overwrite=True`.
    `threshold`: the class threshold `fit` chose, if any (kept by `load`); `vocabulary`: the
    characters of a character-level model's tokenizer (`CharTokenizer.chars`), if any; `tied`:
    {name: the first name of the same parameter} (`tied_names`). A parameter that is not finite is
    refused before anything is written."""
    path = check_writable(path, overwrite, "save")
    payload = model_payload(config, state, threshold, tied=tied, who="save", note=f"; {path} was not written")
    if vocabulary is not None:
        payload["vocabulary"] = check_vocabulary(vocabulary, "save")
    write_atomic(path, json.dumps(payload, indent=1, allow_nan=False).encode(), overwrite=overwrite, who="save")


def model_payload(config: dict, state: dict, threshold: float | None = None, *, tied: dict | None = None,
                  who: str = "model_payload", note: str = "") -> dict:
    """What a model file holds: the format header, the architecture, the parameters, the class
    threshold `fit` chose, if any, and the names that are one parameter, if any (version 2: a
    reader of version 1 would load them as separate parameters, trained apart). A parameter that
    is not finite is refused."""
    bad = [name for name, x in state.items() if not math.isfinite(x)]
    if bad:
        raise ValueError(f"{who}: parameter {bad[0]!r} is {state[bad[0]]} ({len(bad)} not finite in all){note} "
                         "(training that diverges needs a smaller learning rate)")
    payload: dict = {"format": FORMAT, "version": 2 if tied else 1, "config": config, "state": state}
    if tied:
        payload["tied"] = tied
    if threshold is not None:
        payload["threshold"] = threshold
    return payload


def check_vocabulary(vocabulary: object, who: str) -> str:
    """A saved vocabulary: the tokenizer's characters, distinct and sorted (token id i + 1 is the
    i-th), so that the ids it gives cannot differ from the ones the model was trained with."""
    if not isinstance(vocabulary, str) or list(vocabulary) != sorted(set(vocabulary)):
        raise ValueError(f"{who}: vocabulary must be a str of distinct characters in sorted order or absent, "
                         f"got {shown(vocabulary)}")
    return vocabulary


def read_model(path: str | os.PathLike) -> dict:
    """The payload of a model file, checked to be one ({"config": ..., "state": {...}})."""
    path = user_path(path, "load")
    check_regular(path, "load")
    try:
        with open(path, "rb") as f:
            start = f.read(4096)
            text = start.decode(json.detect_encoding(start), "ignore").lstrip()  # (json reads UTF-16 and BOMs too)
            if text[:1] not in ("{", ""):  # not a JSON object: refused before a huge file fills memory
                raise ValueError(f"it starts with {start[:12]!r}, not {{")
            payload = json.loads(start + f.read(), object_pairs_hook=_unique_keys)
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such file: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"load: {path} is a folder, not a model file") from None
    except OSError as e:
        raise type(e)(f"load: cannot read {path}: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, integers too long, nesting too deep
        what = "nested too deeply" if isinstance(e, RecursionError) else f"invalid JSON: {str(e)[:120]}"
        raise ValueError(f"load: {path} is not a microgradnn model file ({what})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "config" not in payload \
            or not isinstance(payload.get("state"), dict):
        raise ValueError(f"load: {path} is not a microgradnn model file (no {FORMAT!r} header)")
    version = payload.get("version", 1)  # first: a later version's file may hold entries of its own
    if type(version) is not int or version not in (1, 2):  # a later format may mean something else by the same names
        raise ValueError(f"load: {path} has format version {shown(version)}; this microgradnn reads versions 1 and 2")
    unknown = [name for name in payload if name not in _ENTRIES]
    if unknown:  # a misspelt "treshold" would load with the default one, predicting other classes
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        raise ValueError(f"load: {path} has entries this microgradnn does not read: {unknown[0]!r:.60}{more}; "
                         f"it reads {', '.join(_ENTRIES)}")
    if "tied" in payload:
        check_tied(payload, f"load: {path}")
    threshold = payload.get("threshold")
    if threshold is not None and not is_finite(threshold):  # checked before `load` changes anything
        raise ValueError(f"load: {path}: threshold must be a finite number or absent, got {shown(threshold)}")
    if "vocabulary" in payload:
        check_vocabulary(payload["vocabulary"], f"load: {path}")
    return payload


def check_tied(payload: dict, who: str) -> None:
    """A file's `tied` (version 2): an object mapping names of the state to the first name of the
    same parameter, itself not tied to another (one level: no chains, no cycles)."""
    tied, state = payload["tied"], payload["state"]
    rule = "tied must be an object mapping a name in state to the first name of the same parameter"
    if payload.get("version") != 2:
        raise ValueError(f"{who}: tied needs format version 2, got version {shown(payload.get('version', 1))}")
    if not isinstance(tied, dict):
        raise ValueError(f"{who}: {rule}, got {type(tied).__name__} {shown(tied)}")
    for name, first in tied.items():
        if not isinstance(first, str) or name not in state or first not in state or first in tied:
            why = ("it is no name" if not isinstance(first, str) else f"state has no {name!r}" if name not in state
                   else f"state has no {first!r}" if first not in state else f"{first!r} is itself tied")
            raise ValueError(f"{who}: {rule} ({why}), got {name!r:.80}: {shown(first)}")


def _unique_keys(pairs: list) -> dict:
    """A JSON object whose names are all different: of a name given twice (a hand edit), json
    would silently keep the last value."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"the name {name!r:.80} is given twice in one object")
            seen.add(name)
    return out
