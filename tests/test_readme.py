"""The README's REPL tours run as written, its failing gradcheck prints what it shows (its two commands:
test_setup.py)."""
import code
import doctest
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_dot

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _run_tour(mark, name: str) -> None:
    """Run the README's first python block that `mark` picks as a doctest: every output as written."""
    tour = next(block for block in re.findall(r"```python\n(.*?)```", README, re.S) if mark(block))
    test = doctest.DocTestParser().get_doctest(tour, {}, name, "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 10


def test_repl_tour_runs_as_written():
    _run_tour(lambda block: block.startswith(">>>"), "README tour")


def test_gpt_tour_runs_as_written():
    _run_tour(lambda block: "GPT(" in block, "README GPT tour")


def test_compile_baked_number_example_runs_as_written():
    _run_tour(lambda block: "was baked in" in block, "README baked number")


class _Paste(code.InteractiveConsole):
    """A REPL that compiles what is pasted into it, line by line, and runs none of it."""
    def runcode(self, code_object) -> None:
        pass

    def showsyntaxerror(self, filename=None, **kwargs) -> None:
        raise AssertionError(f"a SyntaxError pasting the README's {self.source!r}")

    def push(self, line: str, *args) -> bool:
        self.source = line
        return super().push(line, *args)


def test_repl_examples_paste_into_a_real_repl():
    """A compound statement ends with an empty `...` line, as the REPL needs (doctest does not)."""
    blocks = [block for block in re.findall(r"```python\n(.*?)```", README, re.S) if block.startswith(">>>")]
    assert len(blocks) >= 3
    for block in blocks:
        console = _Paste()
        for line in block.splitlines():
            if line.startswith((">>>", "...")):
                console.push(line[4:])
        assert not console.push(""), block


@needs_dot
def test_pictures_tour_runs_as_written(tmp_path, monkeypatch):
    tour = README.split("## Pictures")[1].split("```python\n")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)
    test = doctest.DocTestParser().get_doctest(tour, {}, "README pictures", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 10
    pages = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert sorted(pages) == ["backprop.html", "backward.svg", "forward.svg", "network.html", "network.svg"]
    assert all("Yes (64.0% confidence)" in pages[name] for name in ("network.svg", "network.html"))  # as worded


def test_engine_api_is_re_exported_at_the_top_level():
    import microgradnn as mg
    bullet = README.split("- `microgradnn.engine` (all re-exported at the top level):")[1].split("\n- ")[0]
    methods, functions = bullet.split("module functions of the same names")
    names = set(re.findall(r"`(\w+)\(", functions)) | set(re.findall(r"`(abs exp [\w ]+)`", methods)[0].split())
    assert {"tree", "ops", "register_backward_hook", "define_op", "exp"} <= names
    assert [n for n in sorted(names - {"abs", "remove"}) if not hasattr(mg, n)] == []  # abs: Python's own; remove: the handle's


def test_fits_compiled_speed_up_is_the_performance_tables():
    said = int(re.search(r"`fit\(\.\.\., compiled=True\)` runs it about (\d+) times", README).group(1))
    ms = {name: float(t) for name, t in re.findall(r"\| microgradnn (fused scalar|compiled replay) step, gc on \| "
                                                    r"([\d.]+) ms", README)}
    assert 0.75 < said / (ms["fused scalar"] / ms["compiled replay"]) < 1.25


def test_models_line_count_is_the_files():
    said = int(re.search(r"`microgradnn/models.py` reads top to bottom\s+in about (\d+) lines", README).group(1))
    lines = len((ROOT / "microgradnn" / "models.py").read_text().splitlines())
    assert abs(said - lines) <= 0.1 * lines, f"README says about {said} lines, models.py has {lines}"


def test_make_circles_factor_default_is_the_readmes():
    import inspect

    import microgradnn as mg
    said = float(re.search(r"`make_circles`' `factor` defaults to\s+([\d.]+)", README).group(1))
    assert said == inspect.signature(mg.data.make_circles).parameters["factor"].default


def test_expression_whitelist_is_the_readmes():
    from microgradnn import expression
    said = README.split("never `eval`ed:")[1].split("and steps")[0]
    names = set(re.findall(r"[a-z_][a-z_0-9]*", " ".join(re.findall(r"`([^`]*)`", said))))
    built_in = {n for n, f in expression.functions().items() if getattr(f, "builtin", True)}  # (not tests' ops)
    assert sorted(built_in - names) == []


def test_mutant_count_is_the_readmes():
    said = re.search(r"catches all (\d+) mutants of the (\d+) built-in ops", README).groups()
    count = ("from microgradnn.testing import mutation; found = mutation.mutants(); "
             "print(len(found), len({m.op for m in found}))")
    out = subprocess.run([sys.executable, "-c", count], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    assert out == list(said)


def test_limits_speed_ranges_hold_the_performance_tables():
    bullets = README.split("- Speed, against micrograd")[1].split("  - `compile` replays")[0]
    ranges = [tuple(map(float, r)) for r in re.findall(r"([\d.]+)x?(?:\s+to\s+|-)([\d.]+)x", bullets)]
    said = dict(zip(["unfused off", "unfused on", "whole idea", "fused off", "fused on", "step off", "step on"],
                    [ranges[0], ranges[1], ranges[2], ranges[4], ranges[5], ranges[6], ranges[7]]))
    row = r"\| MLP 2-16-16-1 {}, gc {}: forward \+ backward \|[^|]*\|[^|]*\| ([\d.]+)x \|"
    shown = {"unfused off": row.format("unfused", "off"), "unfused on": row.format("unfused", "on"),
             "fused off": row.format("fused dot", "off"), "fused on": row.format("fused dot", "on"),
             "whole idea": r"\| MLP 2-16-16-1 unfused on demos/09[^|]*\|[^|]*\|[^|]*\| ([\d.]+)x \|",
             "step off": r"\| microgradnn fused scalar step, gc off \|[^|]*\| ([\d.]+)x \|",
             "step on": r"\| microgradnn fused scalar step, gc on \|[^|]*\| ([\d.]+)x \|"}
    outside = {k: (float(re.search(pattern, README).group(1)), said[k]) for k, pattern in shown.items()
               if not said[k][0] <= float(re.search(pattern, README).group(1)) <= said[k][1]}
    assert outside == {}, "the Limits' speed ranges miss the Performance tables' (shown, said)"


def test_layout_tree_is_the_package():
    """Every listed file exists, and every module is listed (or inside a folder listed as one line)."""
    block = README.split("## Package layout")[1].split("```")[1]
    listed, stack = set(), []
    for line in block.strip("\n").splitlines():
        name = line.split()[0] if line.strip() and not line.startswith(" " * 18) else None
        if name is None:
            continue  # a description's second line
        depth = (len(line) - len(line.lstrip())) // 2
        stack[depth:] = [name]
        listed.add("".join(stack))
    assert [p for p in sorted(listed) if not (ROOT / p).exists()] == []
    folders = {p for p in listed if p.endswith("/")}
    leaves = {f for f in folders if not any(q != f and q.startswith(f) for q in listed)}
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "microgradnn").rglob("*.py") if p.name != "__init__.py"}
    assert sorted(m for m in modules if m not in listed and not any(m.startswith(f) for f in leaves)) == []


def test_gradcheck_failure_example_prints_what_the_readme_shows(tmp_path):
    code = next(block for block in re.findall(r"```python\n(.*?)```", README, re.S) if "softsign" in block)
    shown = re.search(r"```\n(AssertionError: gradcheck of .*?)```", README, re.S).group(1).splitlines()
    (tmp_path / "test_softsign.py").write_text(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_softsign.py"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stdout
    printed = [line[1:].strip() for line in done.stdout.splitlines() if line.startswith("E ")]
    start = printed.index(shown[0])
    assert [" ".join(s.split()) for s in printed[start:start + len(shown) - 1]] == [" ".join(s.split()) for s in shown[:-1]]
    assert re.fullmatch(r"diagram of the first wrong node: \S+/gradcheck-1\.svg", printed[start + len(shown) - 1])


def test_hypothesis_example_fails_with_the_command_the_readme_shows(tmp_path):
    pytest.importorskip("hypothesis", reason="pip install hypothesis (the test extra)")
    code = next(block for block in re.findall(r"```python\n(.*?)```", README, re.S) if "@given" in block)
    shown = re.search(r"```\nFalsifying example: .*?\n +expr=(microgradnn gradcheck .*?),\n\)\n```", README).group(1)
    (tmp_path / "test_props.py").write_text(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_props.py",
                           "--hypothesis-seed=0"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1 and f"expr={shown}," in done.stdout, done.stdout
    # the failing row in full: a bare `assert gradcheck(...)` showed it cut ("± est ...00e-04 1.00e+00 3.33e-01 FAIL")
    assert re.search(r"^E +> x +2 +3 .* FAIL$", done.stdout, re.M), done.stdout
    command = shlex.split(shown.replace("microgradnn", f"{shlex.quote(sys.executable)} -m microgradnn", 1))
    check = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert check.returncode == 1 and "FAIL" in check.stdout, check.stdout + check.stderr
