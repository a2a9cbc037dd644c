import os
import subprocess
import sys
from pathlib import Path

import pytest

import microgradnn as mg
from conftest import needs_dot

DEMOS = Path(__file__).resolve().parent.parent / "demos"


def run_demo(name, *args, cwd=None):
    # The demos import this checkout's microgradnn, not whichever copy is installed.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(DEMOS.parent), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, str(DEMOS / name), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_demo_is_tested():
    tested = {"00_engine_tour.py", "01_restaurant_neuron.py", "02_forward_pass.py", "03_single_neuron_classifier.py",
              "04_backprop_by_hand.py", "05_moons_svm.py", "06_spiral_adam.py", "07_gradcheck_in_a_test.py",
              "08_gpt.py", "09_the_whole_idea.py"}
    assert {p.name for p in DEMOS.glob("*.py")} == tested


def test_engine_tour():
    assert run_demo("00_engine_tour.py").splitlines() == [
        "Value(data=0.7071, grad=1, label='o')", "d o / d x1 = -1.5000", "d o / d w1 = +1.0000",
        "d o / d x2 = +0.5000", "d o / d w2 = +0.0000", "d o / d b  = +0.5000"]


def test_restaurant_neuron_prints_the_lessons_numbers():
    assert run_demo("01_restaurant_neuron.py").splitlines() == [
        "Weighted sum + bias : 0.840", "After ReLU          : 0.840", "After Sigmoid       : 0.698",
        "Scores out of 10    : 7.400 + bias 0.1 -> sigmoid 0.999"]  # the lesson's 0.6*9 + 0.3*6 + 0.1*2 = 7.4


def test_forward_pass_prints_the_lessons_prediction():
    out = run_demo("02_forward_pass.py").splitlines()
    assert out[-1] == "Prediction: 0.6399  ->  Yes (64.0% confidence)"
    assert out[1] == "hidden activations: [0.4, 0.3, 0.05]"


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs Graphviz's dot")
@pytest.mark.parametrize("name, made", [("02_forward_pass.py", "forward_pass.html"),
                                        ("04_backprop_by_hand.py", "neuron_backward_by_hand.svg"),
                                        ("08_gpt.py", "gpt_position.svg")])
def test_a_demo_keeps_a_file_already_in_out_dir_unless_overwrite(tmp_path, name, made):
    # they replaced it: only out/, the demos' own folder, is theirs to replace
    (tmp_path / made).write_text("the user's")
    env = dict(os.environ, PYTHONPATH=str(DEMOS.parent))
    done = subprocess.run([sys.executable, str(DEMOS / name), "--out", str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 2 and (tmp_path / made).read_text() == "the user's"
    assert "wrote" not in done.stdout and "step" not in done.stdout  # refused before any training
    assert f"{tmp_path}: {made} already exists there; pass --overwrite to replace it" in done.stderr
    if name != "08_gpt.py":  # (a whole training run)
        assert run_demo(name, "--out", str(tmp_path), "--overwrite") and (tmp_path / made).read_text() != "the user's"


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs Graphviz's dot")
def test_demos_replace_files_in_out_however_it_is_written_and_keep_a_dangling_link_elsewhere(tmp_path):
    # was: demo 02 refused out/ written as its absolute path, and demo 04 wrote through a dangling
    # symlink in a named folder (os.path.exists said nothing was there)
    (tmp_path / "out").mkdir()
    for spelling in (str(tmp_path / "out"), "./out/"):
        (tmp_path / "out" / "forward_pass.html").write_text("the demo's own")
        run_demo("02_forward_pass.py", "--out", spelling, cwd=tmp_path)
        assert (tmp_path / "out" / "forward_pass.html").read_text().startswith("<!DOCTYPE html>")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "neuron_forward_by_hand.svg").symlink_to(tmp_path / "mine" / "nowhere")
    env = dict(os.environ, PYTHONPATH=str(DEMOS.parent))
    done = subprocess.run([sys.executable, str(DEMOS / "04_backprop_by_hand.py"), "--out", "mine"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and done.stdout == ""  # refused before any work
    assert "mine: neuron_forward_by_hand.svg already exists there; pass --overwrite to replace it" in done.stderr
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["neuron_forward_by_hand.svg"]
    (tmp_path / "notes.txt").write_text("mine")  # --out naming a file: refused before any work (was: a traceback
    for name in ("04_backprop_by_hand.py", "08_gpt.py"):  # from os.makedirs, in demo 08 after the whole training)
        done = subprocess.run([sys.executable, str(DEMOS / name), "--out", "notes.txt", "--overwrite"], cwd=tmp_path,
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 2 and done.stdout == "" and done.stderr.endswith("error: notes.txt is not a folder\n")
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("name", ["02_forward_pass.py", "04_backprop_by_hand.py", "08_gpt.py"])
def test_demos_refuse_an_empty_out_or_one_under_a_file_before_any_work(tmp_path, name):
    # was: a traceback from os.makedirs (demo 08's after the whole training), and for --out '' (an unset
    # shell variable) demo 02 wrote nothing and said nothing, 04 and 08 showed a traceback
    (tmp_path / "notes.txt").write_text("mine")
    env = dict(os.environ, PYTHONPATH=str(DEMOS.parent))
    for out, message in (("", "error: the folder must not be empty, got ''"),
                         ("notes.txt/pictures", f"error: notes.txt/pictures cannot be made: {tmp_path / 'notes.txt'} "
                                                "is not a folder")):
        done = subprocess.run([sys.executable, str(DEMOS / name), "--out", out], cwd=tmp_path,
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 2 and done.stderr.endswith(message + "\n"), done.stderr
        assert "wrote" not in done.stdout and "step" not in done.stdout  # (02 prints its lesson first)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine"


def test_forward_pass_writes_its_animation(tmp_path):
    out = run_demo("02_forward_pass.py", "--out", str(tmp_path)).splitlines()
    assert out[-1] == f"wrote {tmp_path / 'forward_pass.html'}"
    assert "0.6399" in (tmp_path / "forward_pass.html").read_text()


def test_single_neuron_classifier():
    assert run_demo("03_single_neuron_classifier.py").splitlines() == [
        "inputs=[1.0, 0.5]  prediction=0.6570  label=1  correct=True",
        "inputs=[0.2, 0.9]  prediction=0.4526  label=0  correct=True",
        "inputs=[0.6, 0.1]  prediction=0.6295  label=1  correct=True",
        "challenge #1: relu(2*0.5 + 3*(-1.0) + 1.0) = relu(-1.0) = 0.0",  # a bare 0.0 said nothing
        "challenge #2: without the bias sigmoid(0.55) = 0.6341, with it sigmoid(0.65) = 0.6570",
        "challenge #4: hidden [0.4, 0.3], sigmoid(0.7*0.4 + 0.4*0.3 + 0.2) = sigmoid(0.6) = 0.6457"]


@needs_dot
def test_backprop_by_hand_matches_backward(tmp_path):
    out = run_demo("04_backprop_by_hand.py", "--out", str(tmp_path)).splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in out[2:7]}
    assert rows == {"x1": ["-1.5000", "-1.5000"], "w1": ["1.0000", "1.0000"], "x2": ["0.5000", "0.5000"],
                    "w2": ["0.0000", "0.0000"], "b": ["0.5000", "0.5000"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neuron_backward_by_hand.svg", "neuron_forward_by_hand.svg"]


def test_moons_svm_reaches_full_accuracy():
    out = run_demo("05_moons_svm.py", "--epochs", "80").splitlines()
    assert out[-1] == "final training accuracy: 100.0%"


def test_spiral_with_adam():
    out = run_demo("06_spiral_adam.py", "--epochs", "50").splitlines()
    assert float(out[-1].split(": ")[1].rstrip("%")) >= 95.0


def test_gradcheck_demo_passes_its_tests():
    pytest.importorskip("torch")
    assert "4 passed" in run_demo("07_gradcheck_in_a_test.py")


def test_the_whole_idea_gives_the_engines_numbers():
    x, w, b = mg.Value(2.0), mg.Value(-3.0), mg.Value(6.8813735870195432)
    o = (x * w + b).tanh()
    o.backward()
    expected = f"o = {o.data:.4f}; do/dx = {x.grad:.4f}, do/dw = {w.grad:.4f}, do/db = {b.grad:.4f}"
    assert run_demo("09_the_whole_idea.py").strip() == expected


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs Graphviz's dot")
def test_gpt_demo_trains_samples_draws_and_checks(tmp_path):
    out = run_demo("08_gpt.py", "--steps", "20", "--out", str(tmp_path)).splitlines()
    losses = [float(line.split()[3]) for line in out if line.startswith("step")]
    assert len(losses) == 11 and losses[-1] < losses[0] - 0.3  # from log(27) = 3.3 down
    assert any(line.startswith("Compiled(GPT.loss:") for line in out)
    sampled = [line for line in out if line.startswith("temperature")]
    assert len(sampled) == 2 and all(line.split(": ", 1)[1].startswith("'") for line in sampled)  # quoted: '' shows
    assert out[-1] == "gradient check: passed"
    verdict = next(line for line in out if line.startswith("directional_check of GPT("))
    assert verdict.endswith("all 1 of 1 entries agree") and "(4224 parameters)" in out[out.index(verdict) + 2]
    svg = (tmp_path / "gpt_position.svg").read_text()
    assert "blocks.0.attn" in svg and "blocks.0.mlp" in svg and "head" in svg


@pytest.mark.parametrize("demo, option", [("05_moons_svm.py", "--epochs"), ("06_spiral_adam.py", "--epochs"),
                                          ("08_gpt.py", "--steps")])
@pytest.mark.parametrize("count", ["0", "-3", "x"])
def test_demos_refuse_a_count_below_one_before_any_work(tmp_path, demo, option, count):
    # was: gpt, a traceback from LinearLR ("total_iters must be a positive int, got 0") after loading the
    # words; 05 trained for 0 epochs and reported the untrained accuracy; 06, a traceback from fit
    env = dict(os.environ, PYTHONPATH=str(DEMOS.parent))
    done = subprocess.run([sys.executable, str(DEMOS / demo), option, count], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert f"argument {option}: expected a positive integer, got '{count}'" in done.stderr
