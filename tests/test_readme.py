"""The README's REPL tour runs as written, and CI runs the README's test command."""
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


def test_ci_runs_the_readme_test_command():
    commands = re.search(r"```bash\n(.*?)```", README, re.S).group(1).splitlines()
    test_command = commands[1].split("#")[0].strip()
    assert test_command == "scripts/setup.sh --test && python3 -m pytest -q"
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_gpt_tour_runs_as_written():
    tour = next(block for block in re.findall(r"```python\n(.*?)```", README, re.S) if "GPT(" in block)
    test = doctest.DocTestParser().get_doctest(tour, {}, "README GPT tour", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 10
