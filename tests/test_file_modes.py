"""Files the library writes get the mode the user's umask gives, like any other program's."""
import os
import shutil
import stat
import subprocess
import sys

import pytest

from microgradnn import MLP, Value, viz

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (scripts/setup.sh)")
UMASKS = [pytest.param(mask, expected, id=f"umask {mask:03o}")
          for mask, expected in [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664), (0o077, 0o600)]]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def graph() -> Value:
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    out = (a * b + 1).tanh()
    out.backward()
    return out


WRITERS = {
    "Module.save": lambda path, **kw: MLP(2, [3, 1], seed=0).save(path, **kw),
    "viz.save .dot": lambda path, **kw: viz.save(graph(), path.with_suffix(".dot"), **kw),
    "viz.save .svg": lambda path, **kw: viz.save(graph(), path.with_suffix(".svg"), **kw),
    "viz.animate": lambda path, **kw: viz.animate(graph(), path.with_suffix(".html"), **kw),
    "viz.animate_network": lambda path, **kw: viz.animate_network(MLP(2, [3, 1], seed=0), [1.0, 0.5],
                                                                  path.with_suffix(".html"), **kw),
}


def written(tmp_path, name):
    (path,) = [p for p in tmp_path.iterdir() if p.stem == name]
    return path


@needs_dot
@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("mask, expected", UMASKS)
def test_new_files_get_the_mode_the_umask_gives(tmp_path, umask, writer, mask, expected):
    umask(mask)
    WRITERS[writer](tmp_path / "file")
    path = written(tmp_path, "file")
    assert oct(mode(path)) == oct(expected)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # still no temporary file left behind


@needs_dot
@pytest.mark.parametrize("writer", WRITERS)
def test_replacing_a_file_keeps_its_mode_and_refusing_leaves_it_alone(tmp_path, umask, writer):
    umask(0o022)
    WRITERS[writer](tmp_path / "file")
    path = written(tmp_path, "file")
    before = path.read_bytes()
    os.chmod(path, 0o640)  # the user hid it from others: replacing it must not show it to them again
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        WRITERS[writer](tmp_path / "file")
    assert path.read_bytes() == before and mode(path) == 0o640
    WRITERS[writer](tmp_path / "file", overwrite=True)
    assert mode(path) == 0o640 and len(list(tmp_path.iterdir())) == 1


@needs_dot
@pytest.mark.parametrize("mask, expected", UMASKS[:2])
def test_the_demo_writes_files_with_the_mode_the_umask_gives(tmp_path, mask, expected):
    done = subprocess.run([sys.executable, "-m", "microgradnn", "demo", "--out", str(tmp_path / "out"),
                           "--epochs", "3", "--quiet"], capture_output=True, text=True, timeout=300, umask=mask)
    assert done.returncode == 0, done.stderr
    modes = {p.name: oct(mode(p)) for p in (tmp_path / "out").iterdir()}
    assert modes == dict.fromkeys(["decision_boundary.png", "loss_curve.png", "neuron_forward.svg",
                                   "neuron_backward.svg", "network.svg", "backprop.html",
                                   "lesson_network.html", "lesson_network_quiz.html"], oct(expected))
    assert oct(mode(tmp_path / "out")) == oct(0o777 & ~mask)


@needs_dot
@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("overwrite", ["no", [False], 0, None])
def test_overwrite_that_is_not_a_bool_is_refused_and_the_file_kept(tmp_path, writer, overwrite):
    (tmp_path / "file.json").write_text("my notes\n")  # the user's file, whatever name the writer picks
    for suffix in (".dot", ".svg", ".html"):
        (tmp_path / "file.json").with_suffix(suffix).write_text("my notes\n")
    with pytest.raises(TypeError, match="overwrite must be True or False, got"):
        WRITERS[writer](tmp_path / "file.json", overwrite=overwrite)
    assert all(p.read_text() == "my notes\n" for p in tmp_path.iterdir()) and len(list(tmp_path.iterdir())) == 4
