"""The public API is fully annotated (mypy checks the annotations; this checks none is missing)."""
import importlib
import importlib.resources
import inspect

import pytest

MODULES = ["microgradnn", "microgradnn.engine", "microgradnn.nn", "microgradnn.losses", "microgradnn.optim",
           "microgradnn.data", "microgradnn.replay", "microgradnn.train", "microgradnn.viz", "microgradnn.plots",
           "microgradnn.testing", "microgradnn.testing.checks", "microgradnn.testing.mutation",
           "microgradnn.testing.strategies"]


def public_functions(module_name: str):
    """(qualified name, function) for each public function, and each public or dunder method of
    a public class, defined in the module (dataclass-made methods left out)."""
    module = importlib.import_module(module_name)
    for name in getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")]):
        obj = getattr(module, name)
        if inspect.isfunction(obj):
            yield f"{obj.__module__}.{name}", obj
        elif inspect.isclass(obj) and obj.__module__.startswith("microgradnn"):
            for attr, member in vars(obj).items():
                f = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                public = not attr.startswith("_") or (attr.startswith("__") and attr.endswith("__"))
                if inspect.isfunction(f) and public and f.__code__.co_filename == inspect.getfile(obj):
                    yield f"{obj.__module__}.{obj.__name__}.{attr}", f


def missing_annotations(f) -> list[str]:
    sig = inspect.signature(f)
    params = list(sig.parameters.values())
    missing = [p.name for i, p in enumerate(params)
               if p.annotation is inspect.Parameter.empty and not (i == 0 and p.name in ("self", "cls"))]
    if sig.return_annotation is inspect.Signature.empty and f.__name__ != "__init__":
        missing.append("return")
    return missing


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_function_is_annotated(module_name):
    functions = dict(public_functions(module_name))
    assert functions
    assert {name: missing for name, f in functions.items() if (missing := missing_annotations(f))} == {}


def test_the_package_says_it_is_typed():
    assert importlib.resources.files("microgradnn").joinpath("py.typed").is_file()
