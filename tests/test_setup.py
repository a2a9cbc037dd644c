"""The README's two commands from a fresh clone with the OS's own python3, and the wheel anywhere.

Both slow checks run in CI; the test run inside the fresh clone leaves them out (conftest.py).
"""
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import microgradnn as mg
from conftest import INNER_RUN

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
DEMO_FILES = ["backprop.html", "decision_boundary.png", "lesson_network.html", "lesson_network_quiz.html",
              "loss_curve.png", "network.svg", "neuron_backward.svg", "neuron_forward.svg"]
# what would point a run at another Python or package than the one under test
FOREIGN = ("VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYENV_VERSION", "PYTHONPATH", "PYTHONHOME",
           "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_CURRENT_TEST")


def readme_commands() -> list[str]:
    """The commands of the README's first code block, without their comments."""
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def clean_env(**changes: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    env.update(changes)
    return env


def sh(command, cwd, env, check=True) -> subprocess.CompletedProcess:
    """Run a command (a str goes through the shell, as typed); with `check`, fail showing its output."""
    done = subprocess.run(command, shell=isinstance(command, str), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        pytest.fail(f"{command!r} exited {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n"
                    f"--- stderr\n{done.stderr[-4000:]}")
    return done


def os_python() -> str:
    """The OS's own python3, first on the system PATH and externally managed (PEP 668), or skip."""
    exe = shutil.which("python3", path=SYSTEM_PATH)
    if exe is None:
        pytest.skip(f"no python3 on {SYSTEM_PATH}")
    managed = subprocess.run([exe, "-c", "import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join("
                              "sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"]).returncode == 0
    if not managed:  # the set-up would install into the system's Python itself: not here
        pytest.skip(f"{exe} is not externally managed (PEP 668)")
    return exe


def tree_state(folder: Path) -> dict:
    """Every file and folder under `folder` with its size, mode and modification time."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            state[os.path.relpath(path, folder)] = (st.st_size, st.st_mode, st.st_mtime_ns)
    return state


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_command_verbatim():
    assert README.split("```bash\n")[0].count("\n") <= 6  # the first thing a reader sees
    demo, test = readme_commands()
    assert demo == "scripts/run demo" and test == "scripts/run test"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert [line for line in ci if line.startswith(f"{test} ||")] == [f'{test} || failed+=("tests (exit $?)")']


@pytest.mark.slow
def test_readme_commands_work_from_a_fresh_clone_with_the_os_python(tmp_path):
    system_python = os_python()
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    env = clean_env(PATH=SYSTEM_PATH, **{INNER_RUN: "1"})
    demo, test = readme_commands()

    sh(demo, clone, env)
    assert sorted(p.name for p in (clone / "out").iterdir()) == DEMO_FILES
    assert all((clone / "out" / name).stat().st_size > 1000 for name in DEMO_FILES)
    venv = clone / ".venv"
    assert f"home = {os.path.dirname(system_python)}" in (venv / "pyvenv.cfg").read_text()
    # The main install is enough for the pytest plugin (torch comes with the test set-up only).
    done = sh("scripts/run python demos/07_gradcheck_in_a_test.py", clone, env)
    assert done.stdout.strip().splitlines()[-1].startswith("3 passed, 1 skipped")

    # The test command with the test set-up, on one file (CI, and a newcomer, run the whole suite
    # through this same command: running it all again in here would double CI's time).
    done = sh(f"{test} tests/test_engine.py", clone, env)
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed(, \d+ deselected)?(, \d+ xfailed)? in .*", summary), summary
    assert int(summary.split()[0]) > 300  # the engine's tests ran, under the .venv's Python, torch and all
    assert subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout == ""

    # Re-running the set-up installs nothing and changes nothing, with or without .venv active.
    before = tree_state(clone)
    for command in ["scripts/setup.sh", "scripts/setup.sh --test"]:
        done = sh(command, clone, env)
        assert (done.stdout, done.stderr) == (f"{venv}/bin/python\n", "")
    active = clean_env(PATH=f"{venv}/bin:{SYSTEM_PATH}", VIRTUAL_ENV=str(venv))
    done = sh("scripts/setup.sh --test", clone, active)
    assert (done.stdout, done.stderr) == (f"{venv}/bin/python3\n", "")
    assert tree_state(clone) == before

    # Another active environment (a venv of the OS's Python, as PEP 668 asks) is used as it is.
    other = tmp_path / "other-env"
    subprocess.run([system_python, "-m", "venv", str(other)], check=True, timeout=300)
    done = sh(["scripts/run", "python", "-I", "-c", "import sys, microgradnn; print(sys.prefix, microgradnn.__file__)"],
              clone, clean_env(PATH=f"{other}/bin:{SYSTEM_PATH}", VIRTUAL_ENV=str(other)))
    assert done.stdout.split() == [str(other), str(clone / "microgradnn" / "__init__.py")]


USER_TEST = '''
import microgradnn as mg

softsign = mg.define_op("softsign", lambda x: x / (1 + abs(x)), lambda x, out: 1 / (1 + abs(x)) ** 2)
wrong = mg.define_op("softsign_wrong", lambda x: x / (1 + abs(x)), lambda x, out: 1 / (1 + abs(x)))


def test_right_rule(gradcheck):
    gradcheck(lambda x, y: softsign(x * y), {"x": 0.5, "y": -2.0})


def test_wrong_rule(gradcheck):
    gradcheck(lambda x, y: wrong(x * y), {"x": 0.5, "y": -2.0})


def test_torch(compare_with_torch):
    compare_with_torch(lambda x: x.tanh(), [0.3])
'''

ROUND_TRIP = '''
import math
import microgradnn as mg

print(mg.__file__)
a, b = mg.Value(2.0, "a"), mg.Value(-3.0, "b")
c = (a * b + 1).tanh()
c.backward()
t = math.tanh(-5.0)
expected = [(c.data, t), (a.grad, (1 - t * t) * -3.0), (b.grad, (1 - t * t) * 2.0)]
assert all(math.isclose(got, want, rel_tol=1e-12) for got, want in expected), expected
X, y = mg.data.make_moons(20, seed=0)
model = mg.MLP(2, [4, 1], seed=0)
model.save("model.json")
again = mg.Module.from_file("model.json")
assert repr(again) == repr(model) and (again.decision_function(X) == model.decision_function(X)).all()
print("round trip ok")
'''


@pytest.mark.slow
def test_the_wheel_works_in_a_fresh_venv_outside_the_source_tree(tmp_path):
    pytest.importorskip("build", reason="python -m build needs the build package (scripts/setup.sh --test)")
    source, dist, venv, elsewhere = (tmp_path / name for name in ("source", "dist", "venv", "elsewhere"))
    # The working tree's files as git would commit them, so the build leaves the checkout untouched.
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    env = clean_env()
    sh([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], tmp_path, env)
    (wheel,) = dist.glob("microgradnn-*-py3-none-any.whl")
    assert len(list(dist.glob("microgradnn-*.tar.gz"))) == 1  # python -m build made the wheel from it
    names = zipfile.ZipFile(wheel).namelist()
    assert "microgradnn/py.typed" in names and any(n.endswith("licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith(("tests/", "demos/", "scripts/", "benchmarks/"))]

    sh([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python = str(venv / "bin" / "python")
    sh([python, "-m", "pip", "install", "-q", f"{wheel}[plot]"], tmp_path, env)
    elsewhere.mkdir()
    env = clean_env(PATH=f"{venv}/bin:{os.environ['PATH']}")

    done = sh([python, "-m", "microgradnn", "--help"], elsewhere, env)
    assert done.stdout.startswith("usage: microgradnn")
    version = sh([python, "-c", "from importlib.metadata import version; print(version('microgradnn'))"],
                 elsewhere, env).stdout.strip()
    assert version == mg.__version__ and wheel.name == f"microgradnn-{version}-py3-none-any.whl"
    for command in ([python, "-m", "microgradnn", "--version"], ["microgradnn", "--version"]):
        assert sh(command, elsewhere, env).stdout == f"microgradnn {version}\n"

    sh([python, "-m", "microgradnn", "demo", "--epochs", "5", "--quiet"], elsewhere, env)
    assert sorted(p.name for p in (elsewhere / "out").iterdir()) == DEMO_FILES

    (elsewhere / "round_trip.py").write_text(ROUND_TRIP)
    done = sh([python, "round_trip.py"], elsewhere, env)
    installed_at, ok = done.stdout.splitlines()
    assert installed_at.startswith(str(venv)) and ok == "round trip ok"

    (elsewhere / "test_user.py").write_text(USER_TEST)
    done = sh([python, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test_user.py"], elsewhere, env,
              check=False)
    assert done.returncode == 1, done.stdout
    assert "first wrong node: op 'softsign_wrong'" in done.stdout
    assert "compare_with_torch needs PyTorch: pip install torch" in done.stdout  # no torch in this venv
    assert done.stdout.strip().splitlines()[-1].startswith("1 failed, 1 passed, 1 skipped")
