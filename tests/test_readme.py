"""The README's REPL tour runs as written (its two commands: test_setup.py)."""
import doctest
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_repl_tour_runs_as_written():
    tour = next(block for block in re.findall(r"```python\n(.*?)```", README, re.S) if block.startswith(">>>"))
    test = doctest.DocTestParser().get_doctest(tour, {}, "README tour", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 10


def test_gpt_tour_runs_as_written():
    tour = next(block for block in re.findall(r"```python\n(.*?)```", README, re.S) if "GPT(" in block)
    test = doctest.DocTestParser().get_doctest(tour, {}, "README GPT tour", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 10


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
