"""pytest plugin (entry point `pytest11`): gradient-checking fixtures and a tolerance marker.

    def test_my_op(gradcheck):
        gradcheck(lambda x, y: (x * y).tanh(), {"x": 0.3, "y": -1.2})

    pytestmark = pytest.mark.gradcheck_tolerance(atol=1e-7, rtol=1e-5)   # a whole module
"""
from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Any, Iterator

import pytest

from microgradnn import engine, testing

MARKER = "gradcheck_tolerance"
ENTRY_POINT = "microgradnn"  # this module's name in the pytest11 entry points


def pytest_plugin_registered(plugin, manager) -> None:
    """Named by its module (`-p microgradnn.pytest_plugin`, `pytest_plugins = [...]`) where
    microgradnn is installed, this module is loaded by its entry point too, and pytest stopped
    with "Plugin already registered under a different name": the other name is not loaded."""
    if plugin is sys.modules[__name__]:
        manager.set_blocked(__name__ if manager.get_name(plugin) == ENTRY_POINT else ENTRY_POINT)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(atol=None, rtol=None, eps=None): tolerances for the "
                                       "gradcheck and compare_with_torch fixtures in this test, class or module "
                                       "(a closer marker overrides only the keywords it gives)")


def _tolerances(request) -> dict:
    """The markers' keywords merged, a closer marker (test over class over module) winning per keyword."""
    merged: dict = {}
    # iter_markers yields the closest node's first, but on the test its decorators' before its pytest.param's
    markers = list(request.node.iter_markers(MARKER))
    param = [m for m in getattr(getattr(request.node, "callspec", None), "marks", ()) if m.name == MARKER]
    markers = param + [m for m in markers if all(m is not p for p in param)]
    for marker in reversed(markers):
        unknown = set(marker.kwargs) - {"atol", "rtol", "eps"}
        if marker.args or unknown:
            raise pytest.UsageError(f"{MARKER} takes only atol=, rtol=, eps= keywords, "
                                    f"got {marker.args} {sorted(unknown)}")
        merged |= {k: v for k, v in marker.kwargs.items() if v is not None}  # None: not set here, as its help says
    return merged


@pytest.fixture
def gradcheck(request):
    """Check f's gradients at inputs by finite differences; fail with the table if any differs,
    ending with the path of an SVG of the graph with the first wrong node highlighted."""
    marked = _tolerances(request)
    drawn = []

    def check(f, inputs, **tolerances):
        __tracebackhide__ = True  # a failure points at the user's test line, not at this plugin
        report = testing.gradcheck(f, inputs, **(marked | tolerances))
        if not report:
            drawn.append(None)
            raise AssertionError(f"{report}\n{_diagram(report, request, len(drawn))}")
        _warn_if_partial(report)
        return report
    return check


class GradcheckWarning(UserWarning):
    """A gradcheck passed without checking every entry (not checkable here, or only by atol), or
    where every gradient is 0 (no rule's scale seen)."""


def _warn_if_partial(report) -> None:
    """A passing test shows no report: warn where it checked less than a pass suggests."""
    partial = [n for n in report.notes if "passed only by atol" in n or testing.checks.ALL_ZERO in n]
    if report.unchecked or partial:
        warnings.warn(GradcheckWarning("\n".join([report.summary(), *partial])), stacklevel=3)


def _diagram(report, request, n: int) -> str:
    """Write the report's drawing under the test's tmp_path; say where (or why not)."""
    from microgradnn import viz
    try:
        path = request.getfixturevalue("tmp_path") / f"gradcheck-{n}.svg"
    except pytest.FixtureLookupError:
        return "(no diagram: pytest's tmp_path fixture is turned off, as by -p no:tmpdir)"
    try:
        viz.save(report.draw(), path, overwrite=True)
    except (viz.GraphvizNotFound, viz.GraphTooLarge, ValueError, OSError) as e:
        return f"(no diagram: {e})"
    return f"diagram of the first wrong node: {path}"


@pytest.fixture
def compare_with_torch(request):
    """Check f's output and gradients against float64 PyTorch; skip the test if torch is missing."""
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        pytest.skip("compare_with_torch needs PyTorch: pip install torch")
    except ImportError as e:  # installed but broken: say why (pytest's importorskip warns here, and will fail)
        pytest.skip(f"compare_with_torch needs PyTorch, which failed to import: {e}")
    marked = {k: v for k, v in _tolerances(request).items() if k != "eps"}

    def check(f, inputs, **tolerances):
        __tracebackhide__ = True
        return testing.assert_report(testing.compare_with_torch(f, inputs, **(marked | tolerances)))
    return check


# ---- mutation testing of derivative rules (--mutate-ops) ---------------------------------

def pytest_addoption(parser) -> None:
    group = parser.getgroup("microgradnn")
    group.addoption("--mutate-ops", action="store_true",
                    help="after a normal run, run the tests again for each mutant derivative rule of each op "
                         "(sign flipped, scaled, shifted, another input's rule) and report the mutants no test catches")
    group.addoption("--mutate-only", metavar="OPS", default=None,
                    help="comma-separated op names to mutate (default: every op in the table)")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session) -> None:
    """Refuse --mutate-ops under pytest-xdist: its controller collects nothing (so had no tests
    to mutate) and the mutants, put in place in this process, would never reach its workers."""
    if session.config.getoption("mutate_ops") and session.config.pluginmanager.has_plugin("dsession"):
        raise pytest.UsageError("--mutate-ops runs the tests in this process, where each mutant is put in place: "
                                "it cannot run with pytest-xdist's workers (-n/--dist); leave them out or give -n 0")


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    config = session.config
    if not config.getoption("mutate_ops"):
        return None
    if session.testsfailed and not config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} error{'s' if session.testsfailed > 1 else ''} "
                                  "during collection")
    if config.option.collectonly:
        return True
    items = session.items
    found = _mutants(config)  # before the normal run: a wrong --mutate-only fails at once
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not items:
        _say(reporter, "mutation testing skipped: no tests were selected, so no mutant could be caught")
        return True
    for i, item in enumerate(items):  # the normal run, reported as usual
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=items[i + 1] if i + 1 < len(items) else None)
        if session.shouldfail or session.shouldstop:
            break
    if session.testsfailed:
        _say(reporter, "mutation testing skipped: the tests must pass before mutants are tried")
        return True
    config._mutation_survivors = _mutate(session, items, reporter, found)
    return True


def _mutants(config) -> list:
    """The mutants of the ops --mutate-only names, or of every op defined by now (ops a test
    defines while it runs are new each time, so not mutated)."""
    from microgradnn.testing import mutation

    only = config.getoption("mutate_only")
    ops = list(engine.ops())
    if only is not None:
        ops = [n.strip() for n in only.split(",") if n.strip()]
        if not ops:
            raise pytest.UsageError(f"--mutate-only: give one or more comma-separated op names, got {only!r}")
    try:
        return mutation.mutants(ops)
    except KeyError as e:
        raise pytest.UsageError(f"--mutate-only: {e.args[0]}") from None


def pytest_sessionfinish(session, exitstatus) -> None:
    if getattr(session.config, "_mutation_survivors", None):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _say(reporter, text: str, **markup) -> None:
    if reporter is not None:
        reporter.write_line(text, **markup)


def _mutate(session, items: list, reporter, found: list) -> list:
    """Run the tests once per mutant, each run stopping at its first failure; return survivors."""
    import time

    from _pytest.runner import runtestprotocol

    from microgradnn.testing import mutation

    if reporter is not None:
        reporter.write_sep("=", f"mutation testing: {len(found)} mutants of {len({m.op for m in found})} ops")
    killers: dict[str, list] = {}  # op -> tests that caught its earlier mutants, tried first
    survivors, runs, start = [], 0, time.perf_counter()
    with _quiet_hypothesis(items):
        for mutant in found:
            first = killers.get(mutant.op, []) + [t for ts in killers.values() for t in ts]
            order = list(dict.fromkeys(first + items))
            killer = None
            with mutation.applied(mutant):
                for item in order:
                    runs += 1
                    reports = runtestprotocol(item, log=False, nextitem=None)
                    if any(r.failed for r in reports):
                        killer = item
                        break
            if killer is None:
                survivors.append(mutant)
                _say(reporter, f"SURVIVED  {mutant}", red=True, bold=True)
            else:
                killers.setdefault(mutant.op, []).insert(0, killer)
                if session.config.option.verbose > 0:
                    _say(reporter, f"caught    {mutant}  by {killer.nodeid}")
    took = time.perf_counter() - start
    summary = (f"{len(found) - len(survivors)} of {len(found)} mutants caught, {len(survivors)} survived "
               f"({runs} test runs, {took:.1f} s)")
    if reporter is not None:
        reporter.write_sep("=", summary, red=bool(survivors), green=not survivors)
        if survivors:
            ops = sorted({m.op for m in survivors})
            _say(reporter, f"no test notices a wrong derivative of: {', '.join(ops)}", red=True)
    return survivors


@contextlib.contextmanager
def _quiet_hypothesis(items: list) -> Iterator[None]:
    """Mutants fail property tests: don't shrink (slow) or save those examples to the database.
    Each @given test holds the settings it was decorated with (the profile then, or its own
    @settings), so those are replaced for the mutants' runs, then put back."""
    try:
        from hypothesis import Phase, settings
    except ImportError:
        yield
        return
    held: dict[Any, Any] = {}  # the hypothesis attribute that holds a @given test's settings, read at each run
    for item in items:
        test: Any = getattr(getattr(item, "obj", None), "__func__", getattr(item, "obj", None))
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if isinstance(own, settings):
            held[test] = own
    for test, own in held.items():
        test._hypothesis_internal_use_settings = settings(own, database=None, print_blob=False,
                                                          phases=[Phase.explicit, Phase.reuse, Phase.generate])
    try:
        yield
    finally:
        for test, own in held.items():
            test._hypothesis_internal_use_settings = own
