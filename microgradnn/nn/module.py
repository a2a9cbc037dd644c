"""`Module`, the base of every network: parameters and their names, the call on one sample,
state and files, and predictions over a batch."""
from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import threading
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, NamedTuple, Sequence, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from microgradnn._checks import _is_number, digits, flag, is_finite, number, shown
from microgradnn.engine import Value, no_grad, reset_grads
from microgradnn.nn.files import read_model, write_model

__all__ = ["Module", "tag_modules"]

# The module whose call is running (the outermost one), so nested calls skip the checks.
_OUTERMOST: contextvars.ContextVar["Module | None"] = contextvars.ContextVar("microgradnn_outermost", default=None)
# Inside `tag_modules()`: block modules tag every node they make (see there).
_TAGGING: contextvars.ContextVar[bool] = contextvars.ContextVar("microgradnn_tag_modules", default=False)


@contextlib.contextmanager
def tag_modules() -> Iterator[None]:
    """Inside the block, every node that a call of Linear, Embedding, RMSNorm or a GPT module
    makes (and no module inside it does) gets `Value.origin = (outermost module, module)`, so
    `viz.draw_modules` can draw each module as one box. Off by default: tagging walks every
    new node after each call, which costs a GPT step about a third more."""
    token = _TAGGING.set(True)
    try:
        yield
    finally:
        _TAGGING.reset(token)


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict` found: the parameter names `state` lacked, and the names it held
    that the module has no parameter for (both empty unless strict=False), as torch's."""
    missing_keys: list[str]
    unexpected_keys: list[str]


_PLAIN_LOCK = threading.Lock()  # see Module.__setattr__
_M = TypeVar("_M", bound="Module")

# Module types a model file can name, by class name: every subclass that defines `from_config`.
_TYPES: dict[str, Any] = {}


_SIZES = {"nin": "numbers per sample", "nout": "outputs per sample",
          "output_activation": "the last activation's name, e.g. 'linear'"}


class _Size:
    """A size the library reads from every module (`nin`, ...), as Module's class attribute: a value
    set on the instance (or a subclass's property) is found first; only a module of the user's own
    that never set it gets here, with what to do instead of failing deep inside a call or fit.
    (Not Module.__getattr__: a class with one has every attribute read slowed, 3x in CPython 3.11.)"""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, module: Any, owner: type) -> Any:
        if module is None:
            return self
        if type(module).__module__.startswith("microgradnn."):  # the library's (a GPT): no advice to edit it
            raise AttributeError(f"{type(module).__name__} has no {self.name!r} ({_SIZES[self.name]}): it maps no "
                                 "sample of numbers to outputs, as fit, predict and accuracy need; train it with an "
                                 "optimizer on a loss of its own (a GPT on model.loss, as demos/08_gpt.py does)")
        raise AttributeError(f"{type(module).__name__} has no {self.name!r}: set self.{self.name} in __init__ "
                             f"({_SIZES[self.name]}); a call, fit, predict and accuracy read it")


def _items_in(attributes: Mapping[str, Any], who: str) -> Iterator[tuple[str, "Module | Value"]]:
    """(name, item) for the Modules and leaf Values among `attributes` (of module class `who`),
    lists, tuples and dicts searched too, as torch's ModuleList and ModuleDict (`heads.a`); a Value
    computed from others, kept from a forward pass, is no parameter: torch's tensors that are not
    Parameters are not either. A set of them is refused: its order, and so their names, would vary."""
    for name, item in attributes.items():
        if isinstance(item, Module) or (isinstance(item, Value) and not item.inputs):
            yield name, item
        elif isinstance(item, (list, tuple)):
            yield from _items_in({f"{name}.{i}": x for i, x in enumerate(item)}, who)
        elif isinstance(item, dict):  # (key by key: 1 and "1" would be one key of a dict of names)
            for key, x in item.items():
                yield from _items_in({f"{name}.{key}": x}, who)
        elif isinstance(item, (set, frozenset)) and any(isinstance(x, (Module, Value)) for x in item):
            raise TypeError(f"{who}.{name}: a set of Values or Modules is in no fixed order, so its parameters would "
                            "have no stable names (state_dict, save, an optimizer's state); hold them in a list, a "
                            "tuple or a dict")


def _holds_parameters(module: "Module", name: str, leaves: list[Value]) -> bool:
    """True if attribute `name` holds parameters; while a module runs they may be set again but
    not replaced (`leaves`, the new value's leaf Values, must be the same ones): refused."""
    old = {id(v) for _, v in _items_in({name: getattr(module, name)}, type(module).__name__) if isinstance(v, Value)}
    if old and old != set(map(id, leaves)):
        raise ValueError(f"{type(module).__name__}.{name}: a new Value set while a module runs, in place of a "
                         "parameter, would leave an optimizer built before stepping the old one (a detached or "
                         "computed one, or none, would drop it from state_dict and save); create parameters once "
                         "(in __init__, or at the first call), and set their .data to change them")
    return bool(old)


def _counted(init: Any) -> Any:
    """A module class's __init__ (as the class gives it: a function, or what a descriptor such as
    partialmethod gives) that counts, on the module, how many of its __init__s are running."""
    @functools.wraps(init)
    def __init__(self: "Module", *args: Any, **kwargs: Any) -> None:
        depth = self._Module__initializing  # type: ignore[attr-defined]
        object.__setattr__(self, "_Module__initializing", depth + 1)
        try:
            init(self, *args, **kwargs)
        finally:
            object.__setattr__(self, "_Module__initializing", depth)
    __init__._counts_inits = True  # type: ignore[attr-defined]
    return __init__


class Module:
    """Base class: parameters, names, gradients, state and files, as in `torch.nn.Module`."""

    nin: int  # set by each subclass, as are these two properties:
    if TYPE_CHECKING:
        @property
        def nout(self) -> int: ...
        @property
        def output_activation(self) -> str: ...

    if not TYPE_CHECKING:  # (to mypy they are the int and str declared above)
        nin, nout, output_activation = _Size(), _Size(), _Size()

    # the names of the attributes set while a module ran to Values that require no grad (private
    # to Module: a subclass's own self.__plain or _plain is another attribute)
    __plain: frozenset[str] = frozenset()
    __initializing = 0  # how many __init__s of this module are running (a subclass's calls its base's)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "from_config" in cls.__dict__:
            _TYPES.setdefault(cls.__name__, cls)

    def __new__(cls: type[_M], *args: Any, **kwargs: Any) -> _M:
        # the class's __init__, whoever gave it (the class, a base, @dataclass after the class was
        # made, a mixin that is no Module), counted while it runs (see __setattr__) from the first
        # module made, before it runs
        init = cls.__init__
        if init is object.__init__:  # (which sets nothing; with a __new__ here, it would take any arguments)
            if args or kwargs:
                raise TypeError(f"{cls.__name__}() takes no arguments")
        elif not getattr(init, "_counts_inits", False):
            cls.__init__ = _counted(init)  # type: ignore[method-assign]
        return super().__new__(cls)

    def __getstate__(self) -> dict[str, Any]:
        # a copy or pickle made while this module's __init__ runs (copy.deepcopy(self) there) is
        # no module being made: without the count, it sets its Values as any module does
        state = dict(vars(self))
        state.pop("_Module__initializing", None)
        return state

    def __setattr__(self, name: str, value: Any) -> None:
        # While a module runs, Values that require no grad (a sample's inputs, results under
        # no_grad, detached ones) are plain attributes, as torch's tensors that are no Parameter;
        # a leaf that requires grad made there is a parameter (a layer made at its first call), but
        # replacing a parameter there is refused: an optimizer built before keeps the old one.
        if type(self)._named_items is Module._named_items:
            was_plain, plain = name in self.__plain, False
            # (a module made while another runs, a helper or a layer made at the first call, sets
            # its own in __init__ as one made outside a call does)
            if _OUTERMOST.get() is not None and not self.__initializing:
                leaves = [v for _, v in _items_in({name: value}, type(self).__name__) if isinstance(v, Value)]
                held = not was_plain and name in self.__dict__ and _holds_parameters(self, name, leaves)
                plain = bool(leaves) and not held and not any(v.requires_grad for v in leaves)
            if plain != was_plain:  # a new set, not changed in place: copy.copy(module) shares it
                with _PLAIN_LOCK:  # (two threads' calls setting two names: both kept)
                    names = self.__plain | {name} if plain else self.__plain - {name}
                    object.__setattr__(self, "_Module__plain", names)
        object.__setattr__(self, name, value)

    def _named_items(self) -> list[tuple[str, "Module | Value"]]:
        """Direct parameters and submodules, in a stable order: by default, as torch registers
        them, the leaf Values and Modules among the attributes (`fc`, `blocks.0` in a list or
        tuple, `heads.a` in a dict), in the order they were set, its own Values first (torch lists a
        module's own parameters before its submodules', a ParameterList being one). The library's
        modules list theirs explicitly."""
        own = vars(self)
        if self.__plain:  # Values set while a module ran that require no grad: plain attributes
            own = {k: v for k, v in own.items() if k not in self.__plain}
        items = sorted(_items_in(own, type(self).__name__),
                       key=lambda item: item[0] not in own or isinstance(item[1], Module))
        if len({name for name, _ in items}) != len(items):  # a save and load would set both to one number
            names = [name for name, _ in items]
            twice = next(name for i, name in enumerate(names) if name in names[:i])
            raise ValueError(f"{type(self).__name__}: two parameters or submodules would both be named {twice!r} "
                             "(a dict's keys name its items as str(key)); give the dict distinct str keys "
                             "without dots, as torch's ModuleDict requires")
        return items

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> list[tuple[str, Value]]:
        """(dotted name, parameter) pairs, e.g. `layers.0.neurons.3.w.1`; a parameter used in
        several places (a shared layer) is listed once, under its first name, as in PyTorch. Torch's
        arguments: `prefix` goes before each name, `recurse=False` lists this module's own
        parameters only, `remove_duplicate=False` a shared one under each of its names."""
        if not isinstance(prefix, str):
            raise TypeError(f"named_parameters: prefix must be a str, got {type(prefix).__name__} {prefix!r:.60}")
        flag(recurse, "named_parameters", "recurse"), flag(remove_duplicate, "named_parameters", "remove_duplicate")
        every = self._every_parameter() if recurse else [(n, p) for n, p in self._named_items() if isinstance(p, Value)]
        seen, out = set(), []
        for name, p in every:
            if not remove_duplicate or p not in seen:
                seen.add(p)
                out.append((f"{prefix}.{name}" if prefix else name, p))
        return out

    def _every_parameter(self, _within: tuple = ()) -> list[tuple[str, Value]]:
        within = (*_within, self)  # the modules this one is inside: one of them again would be a cycle
        out = []
        for name, item in self._named_items():
            if isinstance(item, Value):
                out.append((name, item))
            elif any(item is m for m in within):
                raise ValueError(f"{type(self).__name__}.{name} is {type(item).__name__}, a module this one is "
                                 "part of: its parameters would be listed without end; keep such a reference "
                                 "where modules are not searched (a weakref.ref, say)")
            else:
                out.extend((f"{name}.{sub}", p) for sub, p in item._every_parameter(within))
        return out

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module and every submodule, with torch's arguments: a
        module used in several places (a shared layer) is listed once, under its first name, or
        at each place with `remove_duplicate=False`; modules in `memo` (a set) are left out."""
        flag(remove_duplicate, "named_modules", "remove_duplicate")
        if not isinstance(prefix, str):
            raise TypeError(f"named_modules: prefix must be a str, got {type(prefix).__name__} {prefix!r:.60}")
        if memo is not None and not isinstance(memo, set):
            raise TypeError(f"named_modules: memo must be a set of modules or None, got {type(memo).__name__} "
                            f"{memo!r:.60}")
        seen = {id(m) for m in memo} if memo else set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            if remove_duplicate:
                seen.add(id(module))
                if memo is not None:
                    memo.add(module)
            yield name, module
            subs = [(f"{name}.{sub}" if name else sub, item) for sub, item in module._named_items()
                    if isinstance(item, Module)]
            stack.extend(reversed(subs))

    def modules(self) -> Iterator["Module"]:
        """This module and every submodule, in `named_modules()` order, each once, as torch's."""
        return (module for _, module in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """(name, module) for the direct submodules, each once, as torch's; those in a list or dict
        are children themselves (`blocks.0`), there being no ModuleList between."""
        seen: set[int] = set()
        for name, item in self._named_items():
            if isinstance(item, Module) and id(item) not in seen:
                seen.add(id(item))
                yield name, item

    def children(self) -> Iterator["Module"]:
        """The direct submodules, in `named_children()` order, as torch's."""
        return (module for _, module in self.named_children())

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Set every parameter's `requires_grad` (False freezes the module: the optimizers skip its
        parameters) and return the module, as torch's."""
        flag(requires_grad, f"{type(self).__name__}.requires_grad_", "requires_grad")
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def parameters(self, recurse: bool = True) -> list[Value]:
        """Every trainable Value, in `named_parameters()` order (this module's own only with
        `recurse=False`, as torch's)."""
        return [p for _, p in self.named_parameters(recurse=flag(recurse, "parameters", "recurse"))]

    def num_parameters(self) -> int:
        """How many scalar parameters the module has."""
        return len(self.named_parameters())

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Set every parameter's `.grad` to 0, or to None with `set_to_none` (torch's default),
        from which backward adds as from 0 and which the optimizers skip."""
        reset_grads(self.parameters(), flag(set_to_none, f"{type(self).__name__}.zero_grad", "set_to_none"))

    def __call__(self, x: Sequence[Value | float] | np.ndarray) -> Any:
        """Run the module on one sample (a list of numbers or Values, or a 1-D array).

        The outermost call checks the sample; the calls it makes (a layer's neurons) only
        check that they got a list of the right length, as they pass checked Values on."""
        if _OUTERMOST.get() is not None:
            if type(x) is not list or len(x) != self.nin:
                x = as_inputs(x, self.nin, type(self).__name__)
            return self.forward(x)
        x = as_inputs(x, self.nin, type(self).__name__)
        token = _OUTERMOST.set(self)
        try:
            return self.forward(x)
        finally:
            _OUTERMOST.reset(token)

    def forward(self, x: list) -> Any:
        """The module's computation on one sample (subclasses define it)."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # ---- state and files -------------------------------------------------------------------

    def state_dict(self) -> dict[str, float]:
        """{parameter name: value} as plain floats; a parameter used in several places (a
        shared layer) is listed under each of its names, as in PyTorch."""
        return {name: p.data for name, p in self._every_parameter()}

    def load_state_dict(self, state: Mapping[str, float], strict: bool = True) -> IncompatibleKeys:
        """Set every parameter from `state`, which names each as `state_dict()` does (a shared
        parameter under each of its names, with one value); on any mismatch raise and change nothing.
        As torch's: `strict=False` sets the parameters `state` names, ignoring the names it lacks or
        does not know, and the result lists both (missing_keys, unexpected_keys)."""
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict: expected a dict, got {type(state).__name__}")
        flag(strict, "load_state_dict", "strict")
        params = self._every_parameter()
        names = [n for n, _ in params]
        known = set(names)
        missing = [n for n in names if n not in state]
        extra = [n for n in state if n not in known]
        if strict and (missing or extra):
            raise ValueError(f"load_state_dict: state does not match {self!r}: "
                             f"missing {missing[:3] or 'none'}, unexpected {extra[:3] or 'none'}")
        values: dict[Value, tuple[str, float]] = {}
        for n, p in params:
            if n not in state:
                continue
            v = state[n]
            if not is_finite(v):
                error = ValueError if _is_number(v) else TypeError
                raise error(f"load_state_dict: parameter {n!r} must be a finite number, got {shown(v)}")
            first = values.setdefault(p, (n, float(v)))
            if first[1] != float(v):
                raise ValueError(f"load_state_dict: {first[0]!r} and {n!r} are one parameter (a shared layer) "
                                 f"but the state gives them different values, {first[1]!r} and {float(v)!r}")
        for p, (_, v) in values.items():
            p.data = v
        return IncompatibleKeys(missing, extra)

    @classmethod
    def config_size(cls, config: dict) -> int:
        """How many entries the state of the module `config` describes has (a shared parameter
        once per name, as `state_dict()`), without building it. Every module type of the library
        counts from the config; this fallback, for a user's own type, builds one (so a tiny file
        can ask for a huge model: define config_size to count instead)."""
        return len(cls.from_config(config)._every_parameter())  # type: ignore[attr-defined]  # models define it

    def config(self) -> dict:
        """The architecture, enough to rebuild the module with `from_config`."""
        raise NotImplementedError(f"{type(self).__name__} does not define config()")

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write architecture and parameters as JSON, atomically (temp file, then rename).

        An existing file is only replaced with `overwrite=True`.
        """
        write_model(path, self.config(), self.state_dict(), overwrite, self.__dict__.get("_threshold"),
                    tied=tied_names(self))

    def load(self, path: str | os.PathLike) -> "Module":
        """Read parameters saved by `save` into this module, which must share every parameter
        the file's model shared (it keeps its own ties); on any error change nothing."""
        payload = read_model(path)
        if payload["config"] != self.config():
            config, own = payload["config"], self.config()
            theirs, ours = _describe(config), _describe(own)
            key = next((k for k in {**own, **config} if config.get(k, ...) != own.get(k, ...)), None) \
                if isinstance(config, dict) else None
            if theirs == ours and key is not None:  # they differ in what a description does not show: a "2" for a 2
                theirs += f" (its {key} is {config[key]!r:.60})" if key in config else f" (it has no {key})"
            raise ValueError(f"load: {os.fspath(path)} holds {theirs}, not this model's {ours}")
        apart = next(_held_apart(dict(self._every_parameter()), payload.get("tied", {})), None)
        if apart:
            raise ValueError(f"load: {os.fspath(path)}: {apart[1]!r} and {apart[0]!r} are one parameter in the "
                             "file's model but two in this one, which would train them apart; Module.from_file "
                             "builds the model with its shared parameters")
        _load_state(self, payload["state"], path)
        self.threshold = payload.get("threshold")
        return self

    @staticmethod
    def from_file(path: str | os.PathLike) -> "Module":
        """Build the module saved in `path` (any of Neuron, Layer, MLP). The sizes are checked
        against the parameters the file holds before anything is built."""
        return Module._from_payload(read_model(path), path)

    @staticmethod
    def _from_payload(payload: dict, path: str | os.PathLike) -> "Module":
        """from_file's module, from the file's payload (`read_model`'s) once it is read."""
        config, state = payload["config"], payload["state"]
        try:
            size = config_size(config)
        except ValueError as e:
            raise ValueError(f"load: {os.fspath(path)}: {e}") from None
        if size != len(state):
            raise ValueError(f"load: {os.fspath(path)} describes {_describe(config)} with {_size(size)} parameters "
                             f"but holds {len(state)}")
        model = from_config(config)
        if model.config() != config:  # a setting it does not read (a later version's, a typo) changes nothing here
            raise ValueError(f"load: {os.fspath(path)}: the description {json.dumps(config)[:200]} has settings "
                             f"this microgradnn does not read; it reads {json.dumps(model.config())[:200]}")
        try:
            tie(model, payload.get("tied", {}))
        except ValueError as e:
            raise ValueError(f"load: {os.fspath(path)}: {e}") from None
        model = _load_state(model, state, path)
        model.threshold = payload.get("threshold")
        return model

    # ---- batches -------------------------------------------------------------------------

    @no_grad()
    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Raw outputs for each row of X, shape (n,) for one output (a Layer's or Linear's list of
        one Value too) or (n, nout), without recording a graph."""
        X = as_matrix(X, self.nin, "decision_function")
        rows = [self(x) for x in X]
        if not rows:  # the shape of many rows, with none
            nout = getattr(self, "nout", 1)
            return np.zeros((0, nout) if nout > 1 else 0)
        scores = np.array([[v.data for v in r] if isinstance(r, list) else r.data for r in rows])
        return scores[:, 0] if scores.ndim == 2 and scores.shape[1] == 1 else scores

    @property
    def threshold(self) -> float:
        """The score above which a single output means class 1: as `fit` set it for its loss,
        else 0.5 after a sigmoid and 0 otherwise. Used by predict, accuracy and the plots."""
        chosen = self.__dict__.get("_threshold")
        if chosen is not None:
            return chosen
        return 0.5 if self.output_activation == "sigmoid" else 0.0

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        self._threshold = None if value is None else number(value, type(self).__name__, "threshold")

    def predict(self, X: ArrayLike, threshold: float | None = None) -> np.ndarray:
        """Class labels: argmax for several outputs; for one output, 1 where it exceeds
        `threshold` (default `self.threshold`)."""
        if threshold is not None:
            threshold = number(threshold, "predict", "threshold")  # before the forward passes
        X = as_matrix(X, self.nin, "predict")  # (so that its errors say predict)
        scores = self.decision_function(X)
        if threshold is not None and scores.ndim == 2:  # argmax decides: a threshold given would do nothing
            raise ValueError(f"predict: threshold applies to a model with one output; this one has "
                             f"{scores.shape[1]}, classified by their argmax")
        return classify(scores, self.threshold if threshold is None else threshold, "predict")


def classify(scores: np.ndarray, threshold: float, who: str = "classify") -> np.ndarray:
    """Class labels from raw outputs: the argmax of several outputs; 1 where one output exceeds
    `threshold` (a finite number), else 0. The one rule behind predict, accuracy and fit's accuracy."""
    threshold = number(threshold, who, "threshold")
    if scores.ndim == 2:
        return scores.argmax(axis=1)
    return (scores > threshold).astype(int)


def _kind(config) -> str:
    """The module type a config names, checked to be one of the library's (a file may hold any JSON there)."""
    kind = config.get("type") if isinstance(config, dict) else None
    if not isinstance(kind, str) or kind not in _TYPES:  # (a list or object there is no dict key: unhashable)
        got = f"a JSON {'array' if isinstance(kind, list) else 'object'}" if isinstance(kind, (list, dict)) \
            else f"{kind!r:.60}"
        raise ValueError(f"unknown module type {got}; expected one of {', '.join(_TYPES)}")
    return kind


def from_config(config: dict) -> Module:
    """A freshly initialised module with the architecture `config` describes."""
    kind = _kind(config)
    try:
        return _TYPES[kind].from_config(config)
    except (KeyError, TypeError) as e:
        raise ValueError(f"not a valid model description: {config!r:.200} ({e})") from None


def config_size(config) -> int:
    """How many parameters the module `config` describes, checked without building it."""
    kind = _kind(config)
    try:
        return _TYPES[kind].config_size(config)
    except (KeyError, TypeError, AttributeError) as e:
        # (cut: the error shows the value, which a file may make a megabyte long)
        raise ValueError(f"not a valid model description: {json.dumps(config)[:120]} "
                         f"({type(e).__name__}: {str(e)[:120]})") from None


def tied_names(module: Module) -> dict[str, str]:
    """{name: the first name of the same parameter} for each later name of a shared parameter, in
    `state_dict()` order: what a model file keeps of the ties."""
    return later_names(module._every_parameter())


def later_names(named: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """{name: the name it first came under} for each (name, object) pair whose object came before
    (a shared parameter, a tied torch tensor)."""
    first: dict[int, str] = {}
    return {name: first[id(x)] for name, x in named if first.setdefault(id(x), name) != name}


def tie(module: Module, tied: Mapping[str, str]) -> None:
    """Make each name of `tied` the same parameter as the name it maps to, where `module` has them
    apart: the Value at that place (an attribute, a list's item, a dict's value) is replaced."""
    params = dict(module._every_parameter())
    for name, first in list(_held_apart(params, tied)):
        _put(module, name, params[first])
    apart = next(_held_apart(dict(module._every_parameter()), tied), None)
    if apart is not None:
        raise ValueError(f"{apart[0]!r} must be the same parameter as {apart[1]!r}, but the {type(module).__name__} "
                         "its config builds has no place by that name to set (it names its parameters otherwise, "
                         "or holds them in a tuple)")


def _held_apart(params: Mapping[str, Value], tied: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """(name, first name) of each tie whose names are two parameters in `params`, not one; a name
    that is no parameter there is left to load_state_dict to name."""
    return ((n, f) for n, f in tied.items() if n in params and f in params and params[n] is not params[f])


def _put(obj: Any, name: str, value: Value) -> None:
    """Set the item a dotted parameter name leads to (`layers.0.neurons.1.w.2`), where one does."""
    *path, last = name.split(".")
    for part in path:
        obj = _place(obj, part)[0]
    holder, key = _place(obj, last)[1:]
    if holder is not None:
        if isinstance(holder, Module):
            setattr(holder, key, value)
        else:
            holder[key] = value


def _place(obj: Any, part: str) -> tuple[Any, Any, Any]:
    """(item, holder, key) of `part` in a module's attributes, a list or a dict; holder None where
    there is none (a tuple, a name of a module's own listing)."""
    if isinstance(obj, Module) and part in vars(obj):
        return vars(obj)[part], obj, part
    if isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
        return obj[int(part)], obj, int(part)
    if isinstance(obj, tuple) and part.isdigit() and int(part) < len(obj):
        return obj[int(part)], None, None
    if isinstance(obj, dict):
        key = next((k for k in obj if str(k) == part), None)
        if key is not None:
            return obj[key], obj, key
    return None, None, None


def _load_state(model: "Module", state: dict, path) -> "Module":
    try:
        model.load_state_dict(state)
    except (ValueError, TypeError) as e:  # a file's content is a bad value, whatever its JSON type
        raise ValueError(f"load: {os.fspath(path)}: {e}") from None
    return model


def _describe(config: dict) -> str:
    """A model description as repr shows it (`MLP(2 -> 16 relu -> 1 linear)`), read from
    the config alone: a file's model is never built just to name it."""
    try:
        if config["type"] == "MLP":
            parts = [_size(config["nin"])] + [f"{_size(layer['nout'])} {layer['activation']}"
                                              for layer in config["layers"]]
            return f"MLP({' -> '.join(parts)})"[:200]
        return f"{config['type']}({', '.join(f'{k}={_size(v)}' for k, v in config.items() if k != 'type')})"[:200]
    except (KeyError, TypeError):
        return json.dumps(config)[:200]


def _size(n: Any) -> str:
    """A size from a file as an error shows it: a huge int by its number of digits."""
    if isinstance(n, int) and n.bit_length() > 64:
        return f"(an int of about {digits(n)} digits)"
    return str(n)


def as_inputs(x, nin: int, who: str) -> list:
    """One sample as a list of `nin` Values: numbers become labelled input leaves x0, x1, ..."""
    if isinstance(x, np.ndarray):
        if x.ndim != 1:
            raise ValueError(f"{who}: expected one sample as a 1-D array of {nin} numbers, got shape {x.shape}")
        x = x.tolist()
    elif isinstance(x, (Value, int, float, np.integer, np.floating)):  # one number, for nin=1
        x = [x]
    elif not isinstance(x, (list, tuple)):
        raise TypeError(f"{who}: expected a list of numbers or Values, got {type(x).__name__}")
    if len(x) != nin:
        raise ValueError(f"{who}: expected {nin} inputs, got {len(x)}")
    for i, xi in enumerate(x):
        if type(xi) is Value or type(xi) is float and xi - xi == 0.0:  # (a finite float: checked no further)
            continue
        if isinstance(xi, (bool, np.bool_)) or not isinstance(xi, (int, float, np.integer, np.floating)):
            raise TypeError(f"{who}: inputs must be finite numbers or Values, got {type(xi).__name__} "
                            f"{xi!r:.60} at index {i}")
        if not is_finite(xi):
            raise ValueError(f"{who}: inputs must be finite numbers or Values, got {shown(xi)} at index {i}")
    # Numbers become one labelled input node each, shared by every neuron that reads them.
    return [xi if type(xi) is Value else Value(float(xi), f"x{i}", requires_grad=False) for i, xi in enumerate(x)]


def as_matrix(X, nin: int, who: str) -> np.ndarray:
    """A batch as a finite float array of shape (n, nin)."""
    try:
        array = np.asarray(X)
    except ValueError:  # numpy's "inhomogeneous shape"
        raise ValueError(f"{who}: expected an array of shape (n, {nin}), got rows of different lengths") from None
    if array.dtype.kind == "O" or not isinstance(X, np.ndarray):  # numpy would read True or "1" as 1.0
        for x in (array if array.dtype.kind == "O" else np.asarray(X, dtype=object)).flat:
            if type(x) is Value:
                continue
            if isinstance(x, (bool, np.bool_)) or not _is_number(x):
                raise TypeError(f"{who}: X must hold finite numbers, got {type(x).__name__} {x!r:.60}")
            if not is_finite(x):
                raise ValueError(f"{who}: X must hold finite numbers, got {shown(x)}")
    elif array.dtype.kind not in "iuf":  # bools, strings, complex numbers, dates
        raise TypeError(f"{who}: X must hold finite numbers, got an array of {array.dtype}")
    X = array.astype(float)
    if X.ndim != 2 or X.shape[1] != nin:
        one = " (one sample? pass [x])" if X.shape == (nin,) else ""
        raise ValueError(f"{who}: expected an array of shape (n, {nin}), got shape {X.shape}{one}")
    if not np.isfinite(X).all():
        raise ValueError(f"{who}: X contains NaN or infinity")
    return X
