import json
import math
import os
import re
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import metadata

import pytest

from conftest import needs_dot



def run(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "microgradnn", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_console_script_is_registered():
    (ep,) = [e for e in metadata.entry_points(group="console_scripts") if e.name == "microgradnn"]
    assert ep.value == "microgradnn.cli:main"


@pytest.mark.parametrize("command", [[], ["demo"], ["train"], ["render"], ["gradcheck"], ["mutate"], ["gpt"],
                                     ["playground"]])
def test_help_on_every_subcommand(command):
    done = run(*command, "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: microgradnn")


def test_every_option_of_every_subcommand_says_what_it_does():
    from microgradnn.cli import build_parser
    commands = next(a for a in build_parser()._actions if a.choices and "render" in a.choices).choices
    silent = [f"{name} {action.option_strings[0]}" for name, parser in commands.items() for action in parser._actions
              if action.option_strings and not action.help]
    assert silent == []
    shown = " ".join(run("render", "--help").stdout.split())
    assert "both (default)" in shown and "left to right (default)" in shown
    from microgradnn.expression import functions
    for command in ("render", "gradcheck"):  # every function an expression can call is named
        listed = " ".join(run(command, "--help").stdout.split()).split("calls of ")[1].split(" (and ops")[0].split()
        built_in = [n for n, f in functions().items() if getattr(f, "builtin", True)]  # (other tests define ops)
        assert sorted(listed) == sorted(built_in), command


@pytest.mark.parametrize("args, message", [
    (["fly"], "argument COMMAND: invalid choice: 'fly'"),
    (["train", "--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
    (["train", "--hidden", "16,x"], "expected sizes like 16,16"),
    # said by the top parser, "microgradnn: error: ... (see microgradnn --help)", whose help lists no option of train
    (["train", "--bogus"], "microgradnn train: error: unrecognized arguments: --bogus (see microgradnn train --help)"),
    (["playground", "--port", "²"], "argument --port: expected a port number 0..65535, got '²'"),  # "invalid _port value"
    # a size left out (16,,16 was taken as 16,16)
    (["train", "--hidden", "16,,16"], "expected sizes like 16,16, got '16,,16', which has an empty size"),
    (["train", "--hidden", "16,"], "expected sizes like 16,16, got '16,', which has an empty size"),
    (["train", "--epochs", "-3"], "expected a positive integer, got '-3'"),
    (["train", "--dataset", "spiral", "--classes", "5", "--samples", "2"],
     "--samples 2 cannot cover --classes 5 (at least one sample per class); pass --samples 5 or more"),
    (["train", "--dataset", "blobs", "--classes", "5", "--samples", "3"], "--samples 3 cannot cover --classes 5"),
    # the advice was "pass --samples 100001 or more", which --samples refuses
    (["train", "--dataset", "blobs", "--classes", "100001", "--samples", "3"], "--samples 3 cannot cover --classes "
     "100001 (at least one sample per class); --samples takes at most 100000: pass --classes 100000 or fewer\n"),
    (["train", "--samples", "1"], "--samples 1 cannot cover the 2 classes of moons"),
    (["train", "--noise", "1e308"], "make_moons: noise 1e+308 is too large: some points are not finite numbers"),
    (["demo", "--dataset", "blobs", "--classes", "1"], "--classes must be at least 2 for a classifier, got 1"),
    (["render"], "the following arguments are required: expression"),
    (["playground", "--port", "70000"], "expected a port number 0..65535, got '70000'"),
    # an unset variable (--host "$HOST") listened on every interface, the line printed saying 127.0.0.1
    (["playground", "--host", ""], "argument --host: expected a host name or address, got '' (an empty host "
                                   "listens on every interface: pass 0.0.0.0 for that, on a trusted network only)"),
    (["gradcheck", "x**3", "x=1", "--eps", "0"], "argument --eps: expected a finite number > 0, got '0'"),
    (["gradcheck", "x**3", "x=1", "--eps", "1e-14"], "gradcheck: eps must be a finite number in [1e-12, 0.1], got 1e-14"),
    (["gradcheck", "x**3", "x=1", "--atol", "nan"], "argument --atol: expected a finite number >= 0, got 'nan'"),
    (["gradcheck", "x**3", "x=1", "--atol", "-1"], "argument --atol: expected a finite number >= 0, got '-1'"),
    (["gradcheck", "x**3", "x=1", "--rtol", "inf"], "argument --rtol: expected a finite number >= 0, got 'inf'"),
    # an import_module error, as exit 1 and "TypeError: the 'package' argument is required ..." or "Empty module name"
    (["render", "x", "x=1", "--import", "..ops"], "--import '..ops': not a module name (like my_ops or package.ops)"),
    (["gradcheck", "x", "x=1", "--import", ""], "--import '': not a module name"),
    # the option typed, not the Python API ("SGD: momentum must be ...", "GPT: n_embd (16) must be ...")
    (["train", "--momentum", "1"], "argument --momentum: expected a finite number in [0, 1), got '1'"),
    (["demo", "--momentum", "nan"], "argument --momentum: expected a finite number in [0, 1), got 'nan'"),
    (["gpt", "--n-head", "3"], "--n-embd 16 (the default) must be a multiple of --n-head 3"),
    (["gpt", "--n-embd", "6"], "--n-embd 6 must be a multiple of --n-head 4 (the default)"),
    # "leave them out" for one option
    (["train", "--load", "m.json", "--hidden", "4"], "--hidden cannot change the model --load m.json holds; leave it out"),
    (["train", "--load", "m.json", "--hidden", "4", "--activation", "tanh"],
     "--hidden and --activation cannot change the model --load m.json holds; leave them out (the layers"),
    (["gpt", "--load", "m.json", "--n-layer", "2"], "--n-layer cannot change the model --load m.json holds; leave it out"),
])
def test_bad_usage_exits_2_with_one_line(args, message):
    done = run(*args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr and done.stdout == ""


@needs_dot
def test_demo_trains_and_writes_every_picture(tmp_path):
    done = run("demo", "--out", str(tmp_path / "out"), "--epochs", "60")
    assert done.returncode == 0, done.stderr
    assert "final loss" in done.stdout and "accuracy 100.0%" in done.stdout
    assert "epoch 60/60" in done.stderr  # the progress line
    names = ["decision_boundary.png", "loss_curve.png", "neuron_forward.svg", "neuron_backward.svg",
             "network.svg", "backprop.html", "lesson_network.html", "lesson_network_quiz.html"]
    for name in names:
        path = tmp_path / "out" / name
        assert f"  {path}" in done.stdout.splitlines()
        assert path.stat().st_size > 1000
        if name.endswith(".svg"):
            ET.parse(path)
        if name.endswith(".png"):
            assert path.read_bytes()[:4] == b"\x89PNG"
    backward = ET.parse(tmp_path / "out" / "neuron_backward.svg").getroot()
    texts = [t.text for t in backward.iter("{http://www.w3.org/2000/svg}text")]
    grads = [t for t in texts if t.startswith("grad ")]
    assert "×" in "".join(texts) and len(grads) >= 8 and texts.count("no grad") == 2  # the sample's x0, x1
    assert len(set(grads)) >= 3 and grads.count("grad 1") < len(grads) / 2  # gradients of the loss, not all 1
    title = " ".join(texts[:2])
    assert "neuron layers.0.neurons." in title and "on sample " in title and "d(hinge loss on this sample)" in title
    lesson = (tmp_path / "out" / "lesson_network.html").read_text()
    assert "Yes (64.0% confidence)" in lesson and "const QUIZ = false" in lesson


@needs_dot
@pytest.mark.parametrize("dataset", ["spiral", "blobs"])
def test_demo_on_a_dataset_of_several_classes_draws_a_neuron_of_the_cross_entropy_loss(tmp_path, dataset):
    # the network's output is then a list of Values: the demo failed after training (TypeError: unhashable list)
    done = run("demo", "--dataset", dataset, "--samples", "12", "--epochs", "2", "--quiet", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    backward = ET.parse(tmp_path / "neuron_backward.svg").getroot()
    title = " ".join(t.text for t in list(backward.iter("{http://www.w3.org/2000/svg}text"))[:2])
    assert "neuron layers.0.neurons." in title and "d(cross_entropy loss on this sample)" in title


@needs_dot
def test_demo_without_matplotlib_says_so_and_writes_the_rest(tmp_path):
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    env = dict(__import__("os").environ, PYTHONPATH=str(fake))
    done = run("demo", "--out", str(tmp_path / "out"), "--epochs", "5", "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    assert "matplotlib is not installed: skipping decision_boundary.png and loss_curve.png" in done.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        ["backprop.html", "lesson_network.html", "lesson_network_quiz.html", "network.svg", "neuron_backward.svg",
         "neuron_forward.svg"]



@needs_dot
def test_demo_refuses_to_replace_files_in_a_named_folder_but_replaces_its_own_in_out(tmp_path):
    import os
    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "network.svg").write_text("my drawing")
    (mine / "backprop.html").write_text("my page")
    done = run("demo", "--out", str(mine), "--epochs", "2", "--quiet")
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1
    assert "network.svg, backprop.html already exist there; pass --overwrite" in done.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["backprop.html", "network.svg"]  # checked before any work
    assert (mine / "network.svg").read_text() == "my drawing" and (mine / "backprop.html").read_text() == "my page"
    done = run("demo", "--out", str(mine), "--epochs", "2", "--quiet", "--overwrite")
    assert done.returncode == 0, done.stderr
    assert (mine / "network.svg").read_text() != "my drawing"
    env = {**os.environ, "PYTHONPATH": str(root)}
    for _ in range(2):  # out/, the default: the README's `scripts/run demo` replaces its files on each run
        done = run("demo", "--epochs", "2", "--quiet", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "lesson_network_quiz.html").exists()

def test_train_save_load_and_refuse_overwrite(tmp_path):
    model = tmp_path / "xor.json"
    args = ["train", "--dataset", "xor", "--samples", "4", "--noise", "0", "--hidden", "4", "--activation", "tanh",
            "--loss", "binary_cross_entropy", "--optimizer", "adam", "--lr", "0.1", "--epochs", "150"]
    done = run(*args, "--save", str(model))
    assert done.returncode == 0, done.stderr
    assert "training MLP(2 -> 4 tanh -> 1 sigmoid, 17 parameters) on xor (4 samples)" in done.stdout
    assert "accuracy 100.0%" in done.stdout and f"saved {model}" in done.stdout
    saved = json.loads(model.read_text())
    again = run(*args, "--save", str(model))
    assert again.returncode == 2 and "already exists; pass --overwrite" in again.stderr
    assert json.loads(model.read_text()) == saved
    layers = args.index("--hidden")
    kept = args[:layers] + args[layers + 4:-2]  # without --hidden 4 --activation tanh: the file says these
    more = run(*kept, "--epochs", "2", "--load", str(model), "--save", str(model), "--overwrite", "--quiet")
    assert more.returncode == 0 and "accuracy 100.0%" in more.stdout
    assert json.loads(model.read_text())["state"] != saved["state"]
    wrong = run("train", "--dataset", "spiral", "--load", str(model), "--quiet")
    assert wrong.returncode == 2 and "does not fit spiral" in wrong.stderr
    missing = run("train", "--load", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_train_load_refuses_a_loss_its_output_does_not_fit_and_layer_options(tmp_path):
    probs, scores = tmp_path / "probs.json", tmp_path / "scores.json"
    small = ["--hidden", "4", "--epochs", "2", "--quiet"]
    assert run("train", *small, "--loss", "binary_cross_entropy", "--save", str(probs)).returncode == 0
    assert run("train", *small, "--save", str(scores)).returncode == 0
    saved = probs.read_bytes()
    hinge = run("train", "--epochs", "2", "--load", str(probs), "--save", str(probs), "--overwrite")
    assert hinge.returncode == 2 and hinge.stdout == "" and hinge.stderr.count("\n") == 1
    assert (f"--load {probs} has a sigmoid output, but the default --loss hinge needs a linear output; "
            "pass --loss binary_cross_entropy") in hinge.stderr
    assert probs.read_bytes() == saved
    bce = run("train", "--epochs", "2", "--load", str(scores), "--loss", "binary_cross_entropy")
    assert bce.returncode == 2 and "has a linear output, but --loss binary_cross_entropy needs a sigmoid" in bce.stderr
    assert "learning rate" not in bce.stderr
    layers = run("train", "--epochs", "2", "--load", str(scores), "--hidden", "8", "--activation", "tanh")
    assert layers.returncode == 2 and f"--hidden and --activation cannot change the model --load {scores}" \
        in layers.stderr and layers.stdout == ""
    fits = run("train", "--epochs", "2", "--load", str(probs), "--loss", "binary_cross_entropy", "--quiet")
    assert fits.returncode == 0 and "-> 4 relu -> 1 sigmoid" in fits.stdout


@pytest.mark.parametrize("command", ["train", "demo"])
@pytest.mark.parametrize("args, message", [
    (["--optimizer", "adam", "--momentum", "0.9"],
     "--momentum has no effect with --optimizer adam (momentum is SGD's); leave it out or pass --optimizer sgd"),
    (["--dataset", "spiral", "--noise", "0.1"],
     "--noise has no effect with --dataset spiral (only moons, circles and xor take it); leave it out"),
    (["--dataset", "blobs", "--noise", "0.3"], "--noise has no effect with --dataset blobs"),
    (["--classes", "3"], "--classes has no effect with --dataset moons, which has 2 classes; leave it out"),
    (["--dataset", "xor", "--classes", "2"], "--classes has no effect with --dataset xor, which has 2 classes"),
    (["--dataset", "circles", "--classes", "4"], "--classes has no effect with --dataset circles"),
])
def test_an_option_that_would_have_no_effect_is_refused(tmp_path, command, args, message):
    out = ["--out", str(tmp_path / "out")] if command == "demo" else []
    done = run(command, *args, *out, "--epochs", "1")
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1
    assert message in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "gpt"])
def test_overwrite_without_save_is_refused(command):
    done = run(command, "--overwrite", "--quiet")
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1
    assert "--overwrite has no effect without --save (it lets --save replace a file); leave it out" in done.stderr


def test_the_options_that_have_an_effect_are_taken():
    sgd = run("train", "--momentum", "0", "--noise", "0", "--epochs", "1", "--quiet")
    assert sgd.returncode == 0 and "sgd lr=0.1" in sgd.stdout
    assert run("train", "--optimizer", "adam", "--dataset", "spiral", "--epochs", "1", "--quiet").returncode == 0
    shown = run("train", "--help").stdout
    assert "(default 0.9)" in shown and "(default 0.1)" in shown and "spiral and blobs (default 3)" in shown
    few = run("train", "--dataset", "spiral", "--samples", "2")
    assert few.returncode == 2 and "--samples 2 cannot cover the 3 classes of spiral (the default --classes)" \
        in few.stderr


def test_train_spiral_with_cross_entropy_and_adam():
    done = run("train", "--dataset", "spiral", "--samples", "60", "--optimizer", "adam", "--lr", "0.05",
               "--epochs", "60", "--quiet", "--seed", "1")
    assert done.returncode == 0, done.stderr
    acc = float(done.stdout.split("accuracy ")[1].rstrip("%\n"))
    assert acc >= 95.0 and "cross_entropy loss" in done.stdout and done.stderr == ""


@needs_dot
def test_render_writes_the_graph_and_prints_gradients(tmp_path):
    out = tmp_path / "g.svg"
    done = run("render", "tanh(x*w + b)", "x=2", "w=-3", "b=6.88", "--view", "backward", "-o", str(out))
    assert done.returncode == 0, done.stderr
    o = math.tanh(2 * -3 + 6.88)
    assert done.stdout.splitlines() == [f"tanh(x*w + b) = {o:.6g}", f"  d/dx = {(1 - o * o) * -3:.6g}",
                                        f"  d/dw = {(1 - o * o) * 2:.6g}", f"  d/db = {1 - o * o:.6g}",
                                        f"wrote {out}"]
    texts = [t.text for t in ET.parse(out).iter("{http://www.w3.org/2000/svg}text")]
    assert "tanh" in texts and "grad 1" in texts and "x" in texts
    again = run("render", "x*2", "x=1", "-o", str(out))
    assert again.returncode == 2 and "pass --force" in again.stderr


@pytest.mark.parametrize("expression, message", [
    ("__import__('os')", "unknown function '__import__'"),
    ("x.real", "not allowed in an expression: 'x.real' (Attribute)"),
    ("(lambda: 1)()", "not allowed in an expression: 'lambda: 1' (Lambda)"),
    ("x + y", "no value given for y"),
    ("foo(x)", "unknown function 'foo'"),
    ("x[0]", "(Subscript)"),
    ("x if x else 1", "(IfExp)"),
    ("exp(x, 2)", "exp() takes 1 positional argument"),
    ("x +", "cannot parse"),
    ("log(x)", "log(x=-1.0): input must be > 0"),
])
def test_render_rejects_what_it_does_not_allow(tmp_path, expression, message):
    done = run("render", expression, "x=-1", "-o", str(tmp_path / "g.svg"))
    assert done.returncode == 2
    assert done.stderr.startswith("microgradnn render: error: ") and message in done.stderr
    assert done.stderr.count("\n") == 1 and not (tmp_path / "g.svg").exists()


def test_render_rejects_unused_and_malformed_variables(tmp_path):
    assert "z not used" in run("render", "x*2", "x=1", "z=3", "-o", str(tmp_path / "g.dot")).stderr
    # a step's name is used, not as a variable: it said "a not used in the expression"
    assert "a is computed by the expression (a = ...), so it takes no value; leave a=5 out" in \
        run("gradcheck", "a = 2*y; a", "y=2", "a=5").stderr
    assert "expected name=value" in run("render", "x*2", "x", "-o", str(tmp_path / "g.dot")).stderr
    assert "is not a number" in run("render", "x*2", "x=abc", "-o", str(tmp_path / "g.dot")).stderr


@pytest.mark.parametrize("command", ["render", "gradcheck"])
def test_a_variable_given_twice_is_refused(tmp_path, command):
    output = ["-o", str(tmp_path / "g.dot")] if command == "render" else []
    done = run(command, "x*x", "x=1", "x=2", *output)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "x is given twice" in done.stderr
    assert not (tmp_path / "g.dot").exists()


def test_gradcheck_prints_analytic_and_numeric():
    done = run("gradcheck", "x**3 * sin(x)", "x=1.3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("gradcheck of x**3 * sin(x)") and "all 1 of 1 entries agree" in lines[0]
    row = lines[2].split()
    exact = 3 * 1.3 ** 2 * math.sin(1.3) + 1.3 ** 3 * math.cos(1.3)
    assert row[0] == "x" and float(row[1]) == pytest.approx(exact, rel=1e-9) and row[-1] == "ok"
    kink = run("gradcheck", "relu(x) + abs(y)", "x=0", "y=0.5")
    assert kink.returncode == 0 and "non-differentiable" in kink.stdout


def test_gradcheck_checks_a_sample_and_names_its_own_way_out_of_a_long_check(tmp_path):
    done = run("gradcheck", "x*y + tanh(z)", "x=1", "y=2", "z=0.3", "--sample", "2")
    assert done.returncode == 0 and "all 2 of 2 entries agree" in done.stdout, done.stderr
    assert "checked a sample of 2 of the 3 inputs" in done.stdout
    # a check past testing.checks.MAX_WORK (lowered here by a module --import runs first) is refused,
    # naming the command line's way out, not the Python argument sample=N
    (tmp_path / "lowwork.py").write_text("import microgradnn.testing.checks as c\nc.MAX_WORK = 10\n")
    done = run("gradcheck", "x*y + tanh(z)", "x=1", "y=2", "z=0.3", "--import", "lowwork", cwd=tmp_path)
    _one_line_error(done, 2, "more than MAX_WORK=10")
    assert "pass --sample N to check N inputs picked at random" in done.stderr and "sample=N" not in done.stderr


# ---- issue 15: every error one line, with the right exit code ---------------------------------

def _one_line_error(done, code, text):
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0 and text in done.stderr, done.stderr


def test_a_diverging_train_fails_in_one_line_with_a_learning_rate_hint():
    done = run("train", "--lr", "1e300", "--epochs", "3", "--quiet")
    _one_line_error(done, 1, "training diverged in epoch")
    assert "learning rate (lr=1e+300)" in done.stderr and len(done.stderr) < 600


def test_a_diverging_gpt_fails_as_train_does_with_an_lr_hint(tmp_path):
    # was: "OverflowError: Adam.step ... would become inf" with a --debug hint, as if a bug
    words = tmp_path / "words.txt"
    words.write_text("cat\ncar\nbat\n")
    for lr, step in (("1e308", 1), ("1e300", 2)):  # inf in Adam's update; inf in the next forward pass
        done = run("gpt", "--words", str(words), "--steps", "3", "--batch-size", "2", "--lr", lr, "--quiet")
        _one_line_error(done, 1, f"microgradnn gpt: error: training diverged at step {step}: ")
        assert done.stderr.rstrip().endswith(f"; try a smaller --lr than {float(lr):g}")
        assert "OverflowError" not in done.stderr and "--debug" not in done.stderr


def test_render_of_too_many_nodes_says_what_the_command_line_can_do(tmp_path):
    # was: "pass collapse=True ... or a larger max_nodes, as in viz.draw_graph(v, max_nodes=4201)": no option does
    done = run("render", "x" + "+1" * 2100, "x=1", "-o", str(tmp_path / "g.svg"))
    _one_line_error(done, 2, "the graph has 4201 nodes to draw, more than the 2000 render draws")
    assert "no option of render changes that; render a smaller expression" in done.stderr
    assert "collapse" not in done.stderr and not (tmp_path / "g.svg").exists()


def test_train_save_checks_the_destination_before_training(tmp_path):
    done = run("train", "--epochs", "500", "--save", str(tmp_path / "missing" / "m.json"))
    _one_line_error(done, 2, f"cannot write {tmp_path / 'missing' / 'm.json'}: folder")
    assert "training" not in done.stdout and "epoch" not in done.stderr.split("error")[0]
    done = run("train", "--epochs", "500", "--save", str(tmp_path), "--overwrite")
    _one_line_error(done, 2, "is a folder")
    assert done.stdout == ""


def test_train_save_refuses_a_pipe_or_device_before_training_and_leaves_it(tmp_path):
    # --save PIPE --overwrite trained, then replaced the pipe with a file (as root, /dev/null with one)
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    done = run("train", "--epochs", "2", "--quiet", "--save", str(pipe), "--overwrite")
    _one_line_error(done, 2, "pipe.json is not a regular file (a device, pipe or socket)")
    assert done.stdout == "" and stat.S_ISFIFO(os.stat(pipe).st_mode)


def test_train_load_of_a_device_or_a_large_binary_file_is_refused_without_reading_it(tmp_path):
    # /dev/zero was read until memory ran out (the process was killed), a pipe waited forever
    _one_line_error(run("train", "--load", os.devnull, "--quiet"), 2, "is not a regular file")
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01" * 100_000)
    _one_line_error(run("train", "--load", str(tmp_path / "weights.bin"), "--quiet"), 2,
                    "weights.bin is not a microgradnn model file (invalid JSON: it starts with b'\\x00\\x01")


def test_train_refuses_an_empty_save_or_load_path_before_training(tmp_path):
    # '' (an unset shell variable) was taken as no --save: the trained model was not saved; and as no
    # --load: a fresh model was trained, and with --save --overwrite replaced the file meant to be loaded
    model = tmp_path / "m.json"
    assert run("train", "--epochs", "2", "--quiet", "--save", str(model)).returncode == 0
    saved = model.read_bytes()
    for args in (["--save", ""], ["--load", "", "--save", str(model), "--overwrite"]):
        done = _in_folder(tmp_path, "train", "--epochs", "2", "--quiet", *args)
        _one_line_error(done, 2, "path must not be empty, got ''")
        assert done.stdout == ""
    assert model.read_bytes() == saved and sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_demo_out_that_cannot_be_made_is_one_line_naming_the_option(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    done = run("demo", "--out", str(tmp_path / "notes.txt" / "pictures"), "--epochs", "2", "--quiet")
    _one_line_error(done, 2, f"--out {tmp_path / 'notes.txt' / 'pictures'} cannot be made: {tmp_path / 'notes.txt'} "
                             "is not a folder")
    assert done.stdout == "" and (tmp_path / "notes.txt").read_text() == "mine"
    if os.path.isdir("/proc"):  # a folder no file can be made in (as root too)
        done = run("demo", "--out", "/proc/microgradnn-pictures", "--epochs", "2", "--quiet")
        _one_line_error(done, 2, "--out: cannot make the folder /proc/microgradnn-pictures: No such file or directory")


def test_demo_refuses_an_empty_out_before_training(tmp_path):
    # '' (an unset shell variable) was taken as no --out: the demo trained and replaced the files in out/
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "network.svg").write_text("kept")
    done = _in_folder(tmp_path, "demo", "--epochs", "2", "--quiet", "--out", "")
    _one_line_error(done, 2, "--out: path must not be empty, got ''")
    assert done.stdout == "" and (tmp_path / "out" / "network.svg").read_text() == "kept"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["network.svg"]


@pytest.mark.parametrize("args, message", [
    (["train", "--hidden", "3000,3000"], "--hidden and the classes make a model of 9015001 parameters; at most 1000000"),
    (["demo", "--hidden", "2000,2000"], "make a model of 4010001 parameters; at most 1000000"),
    (["train", "--samples", "100001"], "argument --samples: expected a positive integer at most 100000, got '100001'"),
    (["train", "--samples", "100000"], "a batch of 100000 samples through 33 neurons makes a graph of 3300000"),
    (["train", "--samples", "50000", "--hidden", "200,200", "--batch-size", "1"],
     "--samples 50000 with a model of 41001 parameters is 2050050000 multiply-adds per epoch; at most 1000000000"),
    (["train", "--epochs", "1000001"], "argument --epochs: expected a positive integer at most 1000000"),
    (["gpt", "--steps", "1000001"], "argument --steps: expected a positive integer at most 1000000"),
    (["gpt", "--batch-size", "1001"], "argument --batch-size: expected a positive integer at most 1000"),
    (["gpt", "--samples", "10001"], "argument --samples: expected a positive integer at most 10000"),
    (["gpt", "--n-embd", "100000"], "--n-embd, --n-layer and --block-size make a model of 120007200000 parameters"),
    (["gpt", "--block-size", "100000"], "make a model of 1603968 parameters; at most 1000000"),
    (["gpt", "--block-size", "10000000000"], "make a model of 160000003968 parameters; at most 1000000"),
    # refused by the function they reached ("SGD: lr must be ...", "words: max_len must be a
    # positive int, got 0"), gpt's after loading the words and printing the model
    (["train", "--lr", "nan"], "argument --lr: expected a finite number >= 0, got 'nan'"),
    (["train", "--lr", "-1"], "argument --lr: expected a finite number >= 0, got '-1'"),
    (["train", "--noise", "-0.5"], "argument --noise: expected a finite number >= 0, got '-0.5'"),
    (["train", "--seed", "-3"], "argument --seed: expected an integer >= 0, got '-3'"),
    (["gpt", "--lr", "inf"], "argument --lr: expected a finite number >= 0, got 'inf'"),
    (["gpt", "--seed", "x"], "argument --seed: expected an integer >= 0, got 'x'"),
    (["gpt", "--block-size", "1"], "argument --block-size: expected an integer >= 2 (BOS and at least one letter)"),
])
def test_a_run_too_large_to_finish_or_a_bad_number_is_refused_up_front_naming_the_option(args, message):
    # these hung building the model, exhausted memory, or ran for days before any output
    done = run(*args)
    _one_line_error(done, 2, message)
    assert done.stdout == ""


def test_render_to_a_folder_and_a_constant_expression(tmp_path):
    _one_line_error(run("render", "x*2", "x=1", "-o", str(tmp_path)), 2, "is a folder")
    deep = "(" * 300 + "x" + ")" * 300
    _one_line_error(run("render", deep, "x=1", "-o", str(tmp_path / "g.dot")), 2, "error:")


def test_model_files_nested_deeply_or_with_huge_integers_are_one_line_errors(tmp_path):
    for name, text in (("deep.json", "[" * 100_000 + "]" * 100_000), ("big.json", '{"a": ' + "9" * 5000 + "}")):
        (tmp_path / name).write_text(text)
        _one_line_error(run("train", "--load", str(tmp_path / name), "--quiet"), 2, name)


def test_debug_shows_the_traceback():
    done = run("--debug", "train", "--lr", "1e300", "--epochs", "3", "--quiet")
    assert done.returncode == 1 and "Traceback" in done.stderr


def test_ctrl_c_during_training_exits_130_with_one_line():
    import signal
    import time
    proc = subprocess.Popen([sys.executable, "-m", "microgradnn", "train", "--epochs", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("training")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err and err.rstrip().endswith("microgradnn train: interrupted")


def test_a_closed_stdout_pipe_is_not_an_error_message():
    proc = subprocess.Popen([sys.executable, "-m", "microgradnn", "gradcheck", "tanh(x)*y", "x=1", "y=2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written (as `| head -0`)
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode == 1 and err == ""


def _in_folder(tmp_path, *args):
    """The command run in a user's own folder, with this checkout's microgradnn."""
    env = dict(__import__("os").environ, PYTHONPATH=str(ROOT))
    return run(*args, cwd=tmp_path, env=env)


ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent

USER_PROJECT = '''
import microgradnn as mg
from microgradnn.testing import gradcheck

swish = mg.define_op("swish", lambda x: x * mg.sigmoid(x),
                     lambda x, out: mg.sigmoid(x) * (1 + x * (1 - mg.sigmoid(x))))


def test_tanh():
    assert gradcheck(lambda x: x.tanh(), [0.7], atol=1e-8, rtol=1e-6)
'''


def test_mutate_on_a_user_project_lists_the_ops_its_tests_miss(tmp_path):
    (tmp_path / "test_mine.py").write_text(USER_PROJECT)
    done = _in_folder(tmp_path, "mutate", "-q", "-p", "no:cacheprovider", "test_mine.py")
    assert done.returncode == 1, done.stdout + done.stderr
    survived = {line.split()[1].rstrip(":") for line in done.stdout.splitlines() if line.startswith("SURVIVED")}
    assert "tanh" not in survived and {"sigmoid", "exp", "*", "dot", "logsumexp", "swish"} <= survived
    assert "no test notices a wrong derivative of: " in done.stdout and " survived (" in done.stdout
    only = _in_folder(tmp_path, "mutate", "-q", "-p", "no:cacheprovider", "test_mine.py", "--mutate-only", "tanh")
    assert only.returncode == 0, only.stdout + only.stderr
    assert "mutation testing: 3 mutants of 1 ops" in only.stdout and "3 of 3 mutants caught, 0 survived" in only.stdout
    bad = _in_folder(tmp_path, "mutate", "-q", "-p", "no:cacheprovider", "test_mine.py", "--mutate-only", "tanhh")
    assert bad.returncode == 4 and "no op named 'tanhh'" in bad.stderr


def test_mutate_refuses_to_pass_a_run_that_tried_no_mutant_or_no_test(tmp_path):
    # `--mutate-only ,` passed with "0 of 0 mutants caught" (exit 0); `-k nothing` reported every
    # mutant of every op as surviving, from 0 test runs
    (tmp_path / "test_mine.py").write_text(USER_PROJECT)
    empty = _in_folder(tmp_path, "mutate", "-q", "-p", "no:cacheprovider", "test_mine.py", "--mutate-only", ",")
    assert empty.returncode == 4 and "--mutate-only: give one or more comma-separated op names, got ','" in empty.stderr
    assert "passed" not in empty.stdout  # refused before the normal run
    none = _in_folder(tmp_path, "mutate", "-q", "-p", "no:cacheprovider", "test_mine.py", "-k", "nothing")
    assert none.returncode == 5, none.stdout + none.stderr
    assert "mutation testing skipped: no tests were selected" in none.stdout and "SURVIVED" not in none.stdout


def test_mutate_of_an_installed_microgradnn_gives_no_warning_of_its_own(tmp_path):
    # installed, microgradnn is pytest's plugin by its entry point; the mutate command imported it
    # before pytest started, and pytest warned it could not rewrite its asserts
    info = tmp_path / "microgradnn-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: microgradnn\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\nmicrogradnn = microgradnn.pytest_plugin\n")
    (info / "RECORD").write_text("microgradnn/__init__.py,,\nmicrogradnn/pytest_plugin.py,,\n")
    (tmp_path / "test_mine.py").write_text(USER_PROJECT)
    done = _in_folder(tmp_path, "mutate", "-q", "-p", "no:cacheprovider", "test_mine.py", "--mutate-only", "tanh")
    assert done.returncode == 0 and "3 of 3 mutants caught" in done.stdout, done.stdout + done.stderr
    assert "warning" not in done.stdout.lower(), done.stdout


PROPERTY_TEST = '''
from hypothesis import given, settings
import microgradnn as mg
from microgradnn.testing import gradcheck
from microgradnn.testing.strategies import expressions

cube = mg.define_op("cube", lambda x: x ** 3, lambda x, out: 3 * x ** 2 + 0.5)  # off by 0.5


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(expressions(ops=["cube", "tanh", "*", "+"]))
def test_gradients(expr):
    assert gradcheck(expr, expr.values)
'''


def test_a_failing_random_expression_shrinks_to_a_runnable_command(tmp_path):
    (tmp_path / "test_props.py").write_text(PROPERTY_TEST)
    env = dict(__import__("os").environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_props.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    # one example; hypothesis's CI profile (CI set) prints it a second time
    (found,) = {ln.split("expr=", 1)[1].rstrip(",") for ln in done.stdout.splitlines() if "expr=microgradnn gradcheck" in ln}
    command = __import__("shlex").split(found)
    assert command[:3] == ["microgradnn", "gradcheck", "cube(x)"] and command[-2:] == ["--import", "test_props"]
    again = _in_folder(tmp_path, *command[1:])
    assert again.returncode == 1, again.stdout + again.stderr
    assert "first wrong node: op 'cube'" in again.stdout and "1 of 1 entries FAILED" in again.stdout


def test_gradcheck_at_a_smooth_maximum_is_checked_not_skipped():
    done = run("gradcheck", "100*cos(x)", "x=0", "--atol", "1e-9", "--rtol", "1e-7")
    assert done.returncode == 0 and "all 1 of 1 entries agree" in done.stdout and "non-differentiable" not in done.stdout


def test_render_names_its_output_option(tmp_path):
    # "g.svg already exists; pass --force" and "save: unknown extension" named no option
    taken = tmp_path / "g.svg"
    taken.write_text("mine")
    done = run("render", "x*2", "x=1", "-o", str(taken))
    assert done.returncode == 2 and f"-o {taken} already exists; pass --force" in done.stderr
    done = run("render", "x*2", "x=1", "-o", str(tmp_path / "g.txt"))
    assert done.returncode == 2 and f"-o: unknown extension '.txt' in {tmp_path / 'g.txt'}; use one of .svg" in done.stderr
    assert taken.read_text() == "mine" and not (tmp_path / "g.txt").exists()


def test_gpt_trains_on_a_word_list_and_samples(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("\n".join(["cat", "car", "cart", "bat", "bar", "Bad", "it's", "tab"]) + "\n")
    saved = tmp_path / "gpt.json"
    done = run("gpt", "--words", str(words), "--steps", "3", "--batch-size", "4", "--samples", "2", "--save", str(saved))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"6 words from {words}; GPT(vocab 6,")  # BOS + abcrt; Bad and it's are left out
    assert lines[-1].startswith("samples (temperature 0.8): '") and saved.exists()
    assert lines[-2].startswith("saved")  # before sampling: what sampling does cannot lose the model
    import microgradnn as mg
    assert isinstance(mg.Module.from_file(saved), mg.models.GPT)
    done = run("gpt", "--words", str(tmp_path / "missing.txt"))
    assert done.returncode == 2 and "no such file" in done.stderr
    before = saved.read_bytes()
    done = run("gpt", "--words", str(words), "--steps", "30", "--save", str(saved))  # refused before training
    assert done.returncode == 2 and done.stdout == "" and saved.read_bytes() == before
    assert f"--save {saved} already exists; pass --overwrite to replace it" in done.stderr
    fresh = tmp_path / "fresh.json"
    for bad in ("-1", "nan", "inf"):  # sampling's option, refused before training, not after it
        done = run("gpt", "--words", str(words), "--steps", "30", "--temperature", bad, "--save", str(fresh))
        assert done.returncode == 2 and done.stdout == "" and not fresh.exists(), done.stdout
        assert done.stderr.splitlines()[-1] == (f"microgradnn gpt: error: argument --temperature: expected a finite "
                                                f"number >= 0, got '{bad}' (see microgradnn gpt --help)")


def test_gpt_load_and_save_keep_a_head_tied_to_the_embedding(tmp_path):
    import microgradnn as mg
    words, tied, again = tmp_path / "words.txt", tmp_path / "tied.json", tmp_path / "again.json"
    words.write_text("cat\ncar\ncart\nbat\n")
    model = mg.models.GPT(6, n_embd=4, n_head=2, block_size=8, seed=0)
    model.head.weight = model.token_embedding.weight  # GPT-2's tie: one table for both
    model.save(tied)
    payload = json.loads(tied.read_text())
    tied.write_text(json.dumps(dict(payload, vocabulary="abcrt")))
    done = run("gpt", "--load", str(tied), "--words", str(words), "--steps", "2", "--batch-size", "2", "--samples",
               "1", "--quiet", "--save", str(again))
    assert done.returncode == 0, done.stderr
    assert json.loads(again.read_text())["tied"] == payload["tied"] and len(payload["tied"]) == 6 * 4
    back = mg.Module.from_file(again)
    assert back.head.weight[5][3] is back.token_embedding.weight[5][3]


def test_gpt_shows_an_empty_sample(tmp_path):
    # was: the words joined by spaces, so an empty sample was a double space ("aad  dbd")
    words = tmp_path / "words.txt"
    words.write_text("cat\ncar\ncart\nbat\nbar\ntab\n")
    done = run("gpt", "--words", str(words), "--steps", "1", "--batch-size", "2", "--samples", "12", "--quiet")
    assert done.returncode == 0, done.stderr
    line = done.stdout.splitlines()[-1]
    assert re.fullmatch(r"samples \(temperature 0\.8\): '[a-z]*'(, '[a-z]*')*", line), line
    assert ", ''," in line  # these seeds sample an empty word (BOS first) among the 12


def test_gpt_saves_its_vocabulary_and_load_uses_it(tmp_path):
    words, fewer, other = tmp_path / "words.txt", tmp_path / "fewer.txt", tmp_path / "other.txt"
    words.write_text("cat\ncar\ncart\nbat\n")
    fewer.write_text("tab\nbat\n")  # abt: a part of the saved vocabulary, so other ids if made afresh
    other.write_text("dog\ncat\n")
    saved = tmp_path / "gpt.json"
    small = ["--steps", "2", "--batch-size", "2", "--samples", "2", "--quiet"]
    assert run("gpt", "--words", str(words), *small, "--save", str(saved)).returncode == 0
    assert json.loads(saved.read_text())["vocabulary"] == "abcrt"
    more = run("gpt", "--load", str(saved), "--words", str(fewer), *small, "--save", str(saved), "--overwrite")
    assert more.returncode == 0, more.stderr
    assert "2 words from" in more.stdout and "GPT(vocab 6," in more.stdout
    assert json.loads(saved.read_text())["vocabulary"] == "abcrt"
    before = saved.read_bytes()
    wrong = run("gpt", "--load", str(saved), "--words", str(other), *small, "--save", str(saved), "--overwrite")
    assert wrong.returncode == 2 and wrong.stdout == "" and wrong.stderr.count("\n") == 1
    assert f"the words of {other} have characters the vocabulary of --load {saved} lacks: 'dgo'" in wrong.stderr
    assert saved.read_bytes() == before
    sizes = run("gpt", "--load", str(saved), "--words", str(words), "--n-embd", "8", *small)
    assert sizes.returncode == 2 and f"--n-embd cannot change the model --load {saved} holds" in sizes.stderr
    import microgradnn as mg
    old = tmp_path / "old.json"  # a model file without a vocabulary: which character had which id is lost
    mg.models.GPT(6, n_embd=4, n_head=2, block_size=8).save(old)
    refused = run("gpt", "--load", str(old), "--words", str(words), *small)
    assert refused.returncode == 2 and f"--load {old} has no vocabulary" in refused.stderr
    mlp = tmp_path / "mlp.json"
    mg.MLP(2, [1]).save(mlp)
    refused = run("gpt", "--load", str(mlp), "--words", str(words), *small)
    assert refused.returncode == 2 and f"--load {mlp} holds MLP(" in refused.stderr and "not a GPT" in refused.stderr
    payload = json.loads(saved.read_text())
    payload["vocabulary"] = "tcrba"  # hand-edited: the ids are the sorted characters' places
    saved.write_text(json.dumps(payload))
    bad = run("gpt", "--load", str(saved), "--words", str(words), *small)
    assert bad.returncode == 2 and "vocabulary must be a str of distinct characters in sorted order" in bad.stderr


@needs_dot
def test_a_file_made_after_the_check_is_not_replaced_without_force_or_overwrite(tmp_path, monkeypatch, capsys):
    from microgradnn import cli
    out = tmp_path / "g.svg"
    out.write_text("made after render checked -o")
    monkeypatch.setattr(cli, "check_writable", lambda *args: None)  # as if the file came after the check
    assert cli.main(["render", "x*2", "x=1", "-o", str(out)]) == 2
    assert "-o " + str(out) + " already exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "made after render checked -o"
    folder = tmp_path / "mine"
    folder.mkdir()
    # the check passed (no --overwrite, may not replace); then a file is made there during training
    monkeypatch.setattr(cli, "_check_demo_destinations", lambda args: False)
    (folder / "network.svg").write_text("mine")
    assert cli.main(["demo", "--out", str(folder), "--epochs", "1", "--quiet"]) == 2
    assert "network.svg appeared there during the run and is kept; pass --overwrite" in capsys.readouterr().err
    assert (folder / "network.svg").read_text() == "mine"


@pytest.mark.parametrize("command, options", [(["gradcheck"], []), (["render"], ["-o", "g.dot"])])
def test_an_expression_starting_with_minus_is_told_to_come_after_double_dash(command, options, tmp_path):
    # argparse took it for an option: "unrecognized arguments: -x**2", with no word of the way out
    done = run(*command, "-log(x)", "x=3", *options, cwd=tmp_path)
    assert done.returncode == 2 and "an expression that starts with - goes after -- (and the options" in done.stderr
    assert run(*command, *options, "--", "-log(x)", "x=3", cwd=tmp_path).returncode == 0
    assert "goes after --" not in run("train", "--bogus=3", "-q").stderr  # options keep argparse's words


@pytest.mark.parametrize("command, options", [(["gradcheck"], []), (["render"], ["-o", "g.dot"])])
def test_an_expression_that_is_minus_a_name_is_told_to_come_after_double_dash(command, options, tmp_path):
    # "-x" (or "-w1") looks like a short option: it got "unrecognized arguments: -x" and no word of the way out
    done = run(*command, "-x", "x=3", *options, cwd=tmp_path)
    assert done.returncode == 2 and "an expression that starts with - goes after --" in done.stderr, done.stderr
    assert run(*command, *options, "--", "-x", "x=3", cwd=tmp_path).returncode == 0


SLOW_TEST = '''
import time
import microgradnn as mg


def test_slow():
    x = mg.Value(0.5)
    x.tanh().backward()
    time.sleep(0.2)
'''


def test_ctrl_c_during_mutate_exits_130_and_a_broken_test_file_still_2(tmp_path):
    # pytest reports Ctrl-C as its exit code 2, which the command passed on: "bad usage"
    import signal
    import time
    (tmp_path / "test_slow.py").write_text(SLOW_TEST)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "microgradnn", "mutate", "-q", "-p", "no:cacheprovider",
                             "test_slow.py"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=env)
    try:
        for line in proc.stdout:  # the mutants' runs have begun
            if "mutation testing:" in line:
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    (tmp_path / "test_slow.py").write_text("def (\n")  # pytest's "interrupted: 1 error during collection"
    assert _in_folder(tmp_path, "mutate", "-q", "-p", "no:cacheprovider", "test_slow.py").returncode == 2


@pytest.mark.parametrize("args", [["--batch-size", "10", "--lr", "0.5"], ["--dataset", "spiral", "--optimizer", "adam"]])
def test_train_prints_the_final_loss_of_the_model_it_saves(tmp_path, args):
    # it printed the last epoch's mean loss, from forward passes made before that epoch's steps,
    # next to the accuracy of the trained model
    import numpy as np

    import microgradnn as mg
    from microgradnn.nn import Module
    path = tmp_path / "m.json"
    done = run("train", "--epochs", "3", "--quiet", "--save", str(path), *args)
    assert done.returncode == 0, done.stderr
    printed = re.search(r"final loss (\S+), accuracy (\S+)%", done.stdout)
    model = Module.from_file(path)
    if "spiral" in args:
        X, y = mg.data.make_spiral(100, classes=3, seed=0)
        loss, targets = mg.losses.cross_entropy, y
    else:
        X, y = mg.data.make_moons(100, noise=0.1, seed=0)
        loss, targets = mg.losses.hinge, y * 2 - 1
    assert printed.group(1) == f"{loss([model(x) for x in X], list(targets)).data:.4f}"
    assert float(printed.group(2)) == pytest.approx(100 * np.mean(model.predict(X) == y))


@pytest.mark.parametrize("args", [["train", "--save", "-"], ["train", "--load", "-"], ["gpt", "--save", "-"],
                                  ["gpt", "--load", "-"], ["gpt", "--words", "-"]])
def test_a_dash_path_is_not_taken_as_a_file_named_dash(tmp_path, args):
    # `train --save -` trained, then wrote a file named - in the current folder ("saved -"); --load -
    # and --words - read one, where - usually means stdin
    done = _in_folder(tmp_path, *args, "--epochs" if args[0] == "train" else "--steps", "1", "--quiet")
    _one_line_error(done, 2, f"{args[1]} -: {args[0]} ")
    assert "give a file name (./- for a file named -)" in done.stderr and not (tmp_path / "-").exists()


def test_demo_refuses_a_folder_in_place_of_one_of_its_files_before_training(tmp_path):
    # with --overwrite it trained, wrote some of its files, then failed: "save: .../network.svg is a folder"
    (tmp_path / "d" / "network.svg").mkdir(parents=True)
    done = run("demo", "--epochs", "1", "--quiet", "--out", str(tmp_path / "d"), "--overwrite")
    _one_line_error(done, 2, "network.svg there is a folder, not a file the run can replace")
    assert done.stdout == "" and os.listdir(tmp_path / "d") == ["network.svg"]


def test_help_says_where_debug_goes_for_mutate():
    # "Add --debug anywhere" was not so for mutate: after it, --debug is pytest's option, which writes
    # (or truncates) pytestdebug.log in the current folder and shows no traceback
    shown = " ".join(run("--help").stdout.split())
    assert "Add --debug anywhere to see the traceback of an error (before mutate: after it, --debug is pytest's, " \
           "which writes pytestdebug.log)." in shown


def test_a_last_step_that_makes_the_loss_infinite_fails_as_a_divergence(tmp_path):
    # one epoch at lr 100 leaves sigmoid outputs of exactly 0 for class 1: the trained model's loss is
    # infinite, as a second epoch says ("training diverged in epoch 2"); nothing is saved
    done = run("train", "--loss", "binary_cross_entropy", "--lr", "100", "--epochs", "1", "--quiet", "--save",
               str(tmp_path / "m.json"))
    _one_line_error(done, 1, "training diverged in the last step: the trained model's loss: binary_cross_entropy: "
                             "prediction 0.0 for target 1.0 gives an infinite loss")
    assert "try a smaller --lr than 100" in done.stderr and not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("args", [["train", "--epochs", "1", "--quiet", "--save"], ["render", "x", "x=1", "-o"]])
def test_a_file_name_too_long_for_the_file_system_is_refused_before_the_work(tmp_path, args):
    # the check's probe file has a short name of its own: train trained, then failed to save
    # ("OSError: save: cannot write ...: File name too long", exit 1)
    name = "a" * 300 + (".json" if args[0] == "train" else ".svg")
    done = _in_folder(tmp_path, *args, name)
    _one_line_error(done, 2, f"{args[-1]}: the file name is {len(name)} bytes long, more than the 255 its folder's file "
                             "system takes; give a shorter name, got aaaa")
    assert done.stdout == "" and os.listdir(tmp_path) == []


def test_train_load_of_a_large_model_is_held_to_the_bounds_of_a_new_one(tmp_path):
    # the bounds on work per epoch and graph per step were checked for --hidden only: --load of a
    # large model ran for hours (or failed in fit, naming its Python arguments, exit 1)
    from microgradnn import MLP
    path = str(tmp_path / "big.json")
    MLP(2, [300, 300, 1], seed=0).save(path)  # 91501 parameters, 601 neurons
    graph = run("train", "--load", path, "--samples", "2000", "--epochs", "1", "--quiet")
    _one_line_error(graph, 2, "a batch of 2000 samples through 601 neurons makes a graph of 1202000 neuron outputs "
                              "per step; at most 1000000 are accepted")
    try:
        work = subprocess.run([sys.executable, "-m", "microgradnn", "train", "--load", path, "--samples", "20000",
                               "--batch-size", "1", "--epochs", "1", "--quiet"], capture_output=True, text=True,
                              timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("train --load of a large model on 20000 samples was not refused")
    _one_line_error(work, 2, "--samples 20000 with a model of 91501 parameters is 1830020000 multiply-adds per epoch; "
                             "at most 1000000000 are accepted (minutes of the scalar engine); pass fewer --samples\n")


def test_a_loaded_model_is_held_to_the_parameter_bound_of_a_new_one(tmp_path, monkeypatch, capsys):
    # train --load and gpt --load took a model of any size (a new one is refused above 1000000 parameters)
    from microgradnn import MLP, cli
    from microgradnn.models import GPT
    from microgradnn.nn.files import write_model
    mlp, gpt = str(tmp_path / "mlp.json"), str(tmp_path / "gpt.json")
    MLP(2, [16, 16, 1], seed=0).save(mlp)  # 337 parameters
    model = GPT(3, n_embd=8, n_head=2, n_layer=1, block_size=4, seed=0)  # more than 300 parameters
    write_model(gpt, model.config(), model.state_dict(), False, vocabulary="ab")
    monkeypatch.setattr(cli, "MAX_PARAMETERS", 300)  # (a file of a million parameters is 50 MB)
    assert cli.main(["train", "--load", mlp, "--epochs", "1", "--quiet"]) == 2
    assert f"--load {mlp} holds a model of 337 parameters; at most 300 are accepted" in capsys.readouterr().err
    (tmp_path / "words.txt").write_text("ab\nba\n")
    assert cli.main(["gpt", "--load", gpt, "--steps", "1", "--quiet", "--words", str(tmp_path / "words.txt")]) == 2
    assert f"--load {gpt} holds a model of {len(model.parameters())} parameters; at most 300" in capsys.readouterr().err


def test_running_out_of_memory_is_one_line_naming_the_options_that_size_the_run(monkeypatch, capsys):
    # it said "MemoryError:  (run with --debug for the traceback)", naming nothing (gpt --batch-size 1000
    # --n-embd 64 --n-layer 2 --block-size 32 under a 3 GB limit)
    from microgradnn import cli

    def no_memory(*args, **kwargs):
        raise MemoryError()
    monkeypatch.setattr(cli, "fit", no_memory)
    assert cli.main(["train", "--epochs", "1", "--quiet"]) == 1
    assert capsys.readouterr().err.endswith("microgradnn train: error: out of memory: the run is too large for this "
                                            "machine; pass a smaller --samples, --batch-size or --hidden\n")
