"""Shared test helpers and hooks: skip markers for optional programs, the lesson's examples, and an
independent central-difference reference."""
from __future__ import annotations

import os
import shutil

import pytest

import microgradnn as mg

pytest_plugins = ["pytester"]  # the pytest plugin's tests run pytest on a user's own test files
INNER_RUN = "MICROGRADNN_INNER_RUN"  # set by test_setup.py for the test run inside its fresh clone
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (scripts/setup.sh installs it)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh --test)")


@pytest.fixture
def lesson_neuron() -> mg.Neuron:
    """The lesson's restaurant neuron: weights 0.6, 0.3, 0.1, bias 0.1, sigmoid."""
    return mg.Neuron.from_weights([0.6, 0.3, 0.1], 0.1, activation="sigmoid")


def neuron_graph() -> mg.Value:
    """micrograd's neuron written out (demo 00's): o = tanh(x1*w1 + x2*w2 + b), after backward()."""
    x1, x2 = mg.Value(2.0, label="x1"), mg.Value(0.0, label="x2")
    w1, w2 = mg.Value(-3.0, label="w1"), mg.Value(1.0, label="w2")
    b = mg.Value(6.8813735870195432, label="b")
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.label = "o"
    o.backward()
    return o


@pytest.fixture(autouse=True)
def _own_op_table():
    """Each test gets the op table as it found it: ops a test defines (or redefines) are taken
    out after it, so no test depends on which tests ran before it."""
    before = mg.engine.ops()
    yield
    table = mg.engine._OPS  # the table itself: there is no public way to remove an op
    table.clear()
    table.update(before)


@pytest.fixture(name="neuron_graph")
def neuron_graph_fixture() -> mg.Value:
    return neuron_graph()


def numeric_grads(f, xs: list[float], h: float = 1e-6) -> list[float]:
    """Central differences of f (Values in, Value out) using only forward `.data`."""
    def at(values):
        return f(*[mg.Value(v) for v in values]).data
    out = []
    for i, x in enumerate(xs):
        step = h * max(1.0, abs(x))
        up, down = list(xs), list(xs)
        up[i], down[i] = x + step, x - step
        out.append((at(up) - at(down)) / (2 * step))
    return out


def analytic_grads(f, xs: list[float]) -> tuple[float, list[float]]:
    """Output data and `.grad` of each input after one backward()."""
    vs = [mg.Value(x) for x in xs]
    y = f(*vs)
    y.backward()
    return y.data, [v.grad for v in vs]


def numeric_param_grads(loss, params: list, h: float = 1e-6) -> list[float]:
    """Central differences of `loss()` (a Value) in each parameter's `.data`, which is put back."""
    out = []
    for p in params:
        x = p.data
        step = h * max(1.0, abs(x))
        p.data = x + step
        up = loss().data
        p.data = x - step
        down = loss().data
        p.data = x
        out.append((up - down) / (2 * step))
    return out


def names_huge_ints_by_size(call, message: str) -> None:
    """`call(n)` refuses a huge n naming it by its size, after `message`: past 4300 digits str()
    of it raises, and from 60 digits its first 60 read as another number."""
    with pytest.raises(ValueError, match=f"^{message}an int of about 5001 digits \\(too large for a float\\)"):
        call(10 ** 5000)
    with pytest.raises(ValueError, match=f"^{message}an int of about 100 digits"):
        call(10 ** 99)


def pytest_collection_modifyitems(config, items):
    """Inside the fresh-clone run of test_setup.py, leave out the slow set-up checks: they
    would start that run again."""
    if os.environ.get(INNER_RUN):
        slow = [item for item in items if item.get_closest_marker("slow")]
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (`CI` set, as CI services do) a skipped test fails: a tool the set-up failed to
    install must not pass for a green run."""
    report = (yield).get_result()
    if report.skipped and not hasattr(report, "wasxfail") and os.environ.get("CI", "") not in ("", "0", "false"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but in CI every test must run: {reason}"


# ---- a real browser: headless system Chromium driven by Playwright --------------------------

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-extensions"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (the system's /usr/bin/chromium) under Playwright; Playwright gives it
    a new temporary profile. Skips when either is missing. One per test module: Playwright's
    event loop counts as running while it is open, which would break `asyncio.run` in any
    test that runs after it."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (scripts/setup.sh --test installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def new_page(browser, width: int, height: int, **options):
    """A page in a new browser context that records console errors and uncaught exceptions in
    `page.errors`; close it with `page.context.close()`."""
    pg = browser.new_context(viewport={"width": width, "height": height}, **options).new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    return pg


@pytest.fixture
def page(browser):
    """A fresh page at 1000 x 800 px (see `new_page`)."""
    pg = new_page(browser, 1000, 800)
    yield pg
    pg.context.close()
