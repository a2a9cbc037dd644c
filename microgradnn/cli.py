"""The `microgradnn` command: demo, train, render, gradcheck, mutate, playground and gpt."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import numpy as np

from microgradnn import data, losses, nn, optim, replay, viz
from microgradnn._files import check_writable, extension
from microgradnn._checks import integer, number, positive_int
from microgradnn._version import __version__
from microgradnn.engine import Value, topological_order
from microgradnn.expression import build_expression, evaluate, functions
from microgradnn.nn import MLP, Layer, Module
from microgradnn.nn.files import read_model, write_model
from microgradnn.nn.module import tied_names
from microgradnn.train import _short, accuracy, fit
from microgradnn.viz.files import DEMO_OUT, may_replace, refusal
from microgradnn.testing.checks import EPS


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


class Failure(Exception):
    """The command ran and failed (training diverged, ...): reported in one line, exit code 1."""



# ---- subcommands -------------------------------------------------------------------------

def cmd_render(args) -> int:
    try:
        extension(args.output, tuple(viz.files.FORMATS), "-o")
        check_writable(args.output, args.force, "-o")
    except FileExistsError:
        raise UsageError(f"-o {args.output} already exists; pass --force to replace it") from None
    except OSError as e:  # a folder, a name too long, no permission: one line
        raise UsageError(str(e)) from None
    tree, values = build_expression(args.expression, args.variables, args.imports)
    env = {n: Value(v, n) for n, v in values.items()}
    try:
        out = evaluate(tree, env)
    except (ArithmeticError, ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    if not isinstance(out, Value):
        out = Value(out, requires_grad=False)
    out.label = out.label or "out"
    if args.view != "forward" and out.requires_grad:
        out.backward()
    try:  # --force again: a file made since the check above is not replaced without it
        viz.save(viz.draw_graph(out, view=args.view, rankdir=args.rankdir), args.output, overwrite=args.force)
    except FileExistsError:
        raise UsageError(f"-o {args.output} already exists; pass --force to replace it") from None
    except viz.GraphTooLarge as e:
        if e.nodes is None:  # too tangled, not too big: its message asks for a smaller graph
            raise
        raise UsageError(f"the graph has {e.nodes} nodes to draw, more than the {viz.MAX_NODES} render draws (dot "
                         "may take minutes on graphs this big), and no option of render changes that; render a "
                         f"smaller expression (from Python, viz.draw_graph(v, max_nodes={e.nodes}) draws it)") from None
    print(f"{args.expression} = {out.data:.6g}")
    if args.view != "forward":
        for name, v in env.items():
            print(f"  d/d{name} = {v.grad:.6g}")
    print(f"wrote {args.output}")
    return 0


def cmd_gradcheck(args) -> int:
    from microgradnn.testing import gradcheck
    tree, values = build_expression(args.expression, args.variables, args.imports)

    def f(**vs):
        return evaluate(tree, vs)
    f.__name__ = args.expression
    try:
        report = gradcheck(f, values, eps=args.eps, atol=args.atol, rtol=args.rtol, sample=args.sample)
    except (ArithmeticError, ValueError, TypeError) as e:
        # (the check's way out said as the command line's: an option here, an argument in Python)
        raise UsageError(str(e).replace("pass sample=N", "pass --sample N")) from None
    print(report)
    return 0 if report else 1


def cmd_mutate(args) -> int:
    import pytest
    # this command is microgradnn, imported before pytest starts: pytest would warn that it cannot
    # rewrite the asserts of the installed plugin's package (it has none to rewrite)
    quiet = "ignore:Module already imported so cannot be rewritten; microgradnn:pytest.PytestAssertRewriteWarning"

    class Interrupted:  # pytest reports Ctrl-C as its exit code 2, which here means bad usage
        seen = False

        def pytest_keyboard_interrupt(self, excinfo) -> None:  # (also called for collection errors)
            Interrupted.seen = Interrupted.seen or excinfo.type is KeyboardInterrupt

    code = int(pytest.main(["--mutate-ops", "-W", quiet, *args.pytest_args], plugins=[Interrupted()]))
    return 130 if Interrupted.seen else code


# Options whose default is None so that a value typed on the command line can be told from
# the default, and refused where it would have no effect.
DEFAULT_NOISE, DEFAULT_MOMENTUM, DEFAULT_CLASSES = 0.1, 0.9, 3
NOISY = ("moons", "circles", "xor")
CLASSES_CHOSEN = ("spiral", "blobs")  # the others have 2 classes


def _check_effective(args) -> None:
    """Refuse a training option given where it has no effect: ignored, it would look as if it had one."""
    if args.momentum is not None and args.optimizer != "sgd":
        raise UsageError(f"--momentum has no effect with --optimizer {args.optimizer} (momentum is SGD's); "
                         "leave it out or pass --optimizer sgd")
    if args.noise is not None and args.dataset not in NOISY:
        raise UsageError(f"--noise has no effect with --dataset {args.dataset} (only {', '.join(NOISY[:-1])} "
                         f"and {NOISY[-1]} take it); leave it out")
    if args.classes is not None and args.dataset not in CLASSES_CHOSEN:
        raise UsageError(f"--classes has no effect with --dataset {args.dataset}, which has 2 classes; leave it out "
                         f"(only {' and '.join(CLASSES_CHOSEN)} take it)")


def _dataset(args) -> tuple[np.ndarray, np.ndarray, int]:
    make = data.DATASETS[args.dataset]
    if args.dataset in CLASSES_CHOSEN:
        if args.classes is None:
            classes, asked = DEFAULT_CLASSES, f"the {DEFAULT_CLASSES} classes of {args.dataset} (the default --classes)"
        elif args.classes < 2:
            raise UsageError(f"--classes must be at least 2 for a classifier, got {args.classes}")
        else:
            classes, asked = args.classes, f"--classes {args.classes}"
    else:
        classes, asked = 2, f"the 2 classes of {args.dataset}"
    if args.samples < classes:  # the datasets deal samples to classes in turn: fewer leaves classes out
        advice = (f"pass --samples {classes} or more" if classes <= MAX_SAMPLES else
                  f"--samples takes at most {MAX_SAMPLES}: pass --classes {MAX_SAMPLES} or fewer")
        raise UsageError(f"--samples {args.samples} cannot cover {asked} (at least one sample per class); {advice}")
    kwargs = {"seed": args.seed}
    if args.dataset == "spiral":
        kwargs["classes"] = classes
    if args.dataset == "blobs":
        kwargs["centers"] = classes
    if args.dataset in NOISY:
        kwargs["noise"] = DEFAULT_NOISE if args.noise is None else args.noise
    X, y = make(args.samples, **kwargs)
    return X, y, int(y.max()) + 1


def _default_loss(k: int) -> str:
    return "hinge" if k == 2 else "cross_entropy"


def _targets(loss: str, y: np.ndarray, k: int) -> np.ndarray:
    if loss != "cross_entropy" and k > 2:
        raise UsageError(f"--loss {loss} needs two classes but the data has {k}; use --loss cross_entropy")
    return y * 2 - 1 if loss == "hinge" else y


DEFAULT_HIDDEN, DEFAULT_ACTIVATION = [16, 16], "relu"


def _output_activation(loss: str) -> str:
    """The output layer's activation `train` uses with `loss`: probabilities for binary_cross_entropy,
    raw scores for the others."""
    return "sigmoid" if loss == "binary_cross_entropy" else "linear"


def _check_output(model: MLP, args, loss: str, output: str) -> None:
    """A loaded model's output activation must be the one `train` builds for the loss."""
    got = model.layers[-1].activation
    if got == output:
        return
    if got == "sigmoid":
        hint = "pass --loss binary_cross_entropy, the loss a sigmoid output is trained with"
    elif loss == "binary_cross_entropy":
        hint = f"for a {got} output use --loss binary_cross_entropy_with_logits or hinge"
    else:
        hint = f"train builds a {output} output for --loss {loss}"
    chosen = f"--loss {loss}" if args.loss else f"the default --loss {loss}"
    raise UsageError(f"--load {args.load} has a {got} output, but {chosen} needs a {output} output; {hint}")


def positive(text: str) -> int:
    """An argparse type: an integer >= 1 (the demos' step and epoch counts use it too)."""
    try:
        return positive_int(int(text), "microgradnn", "the value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None


def _seed(text: str) -> int:
    """An argparse type: a seed, an integer >= 0 (as numpy's generators take)."""
    try:
        return integer(int(text), "microgradnn", "the value", at_least=0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None


def _block_size(text: str) -> int:
    """An argparse type: gpt's block size, 2 or more (BOS and at least one letter)."""
    value = positive(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2 (BOS and at least one letter), got {text!r}")
    return value


# Bounds on what a few keystrokes can ask of the scalar engine (a few million multiply-adds a
# second): past them a run would exhaust memory or go on for days, so it is refused up front.
MAX_SAMPLES, MAX_STEPS, MAX_PARAMETERS, MAX_EPOCH_WORK = 100_000, 1_000_000, 1_000_000, 10**9
MAX_GPT_BATCH, MAX_GPT_WORDS = 1000, 10_000  # gpt's words per step (about 0.4 GB), and words sampled
MAX_GRAPH = 1_000_000  # samples in a step times neurons: the scalar graph of one step


def _at_most(limit: int):
    """An argparse type: a positive integer up to `limit`."""
    def parse(text: str) -> int:
        value = positive(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"expected a positive integer at most {limit}, got {text!r}")
        return value
    return parse


def _check_parameters(count: int, options: str, loaded: bool = False) -> None:
    """Refuse a model too large to build and train in reasonable memory and time (a loaded one too)."""
    if count > MAX_PARAMETERS:
        raise UsageError(f"{options} {'holds' if loaded else 'make'} a model of {count} parameters; at most "
                         f"{MAX_PARAMETERS} are accepted (the scalar engine keeps one object per parameter)")


def _tolerance(positive: bool):
    """An argparse type: a finite float > 0 (positive) or >= 0."""
    def parse(text: str) -> float:
        try:
            return number(float(text), "microgradnn", "the value", 0.0, lo_open=positive)
        except ValueError:  # not a number, or not in range
            raise argparse.ArgumentTypeError(f"expected a finite number {'> 0' if positive else '>= 0'}, "
                                             f"got {text!r}") from None
    return parse


def _momentum(text: str) -> float:
    """An argparse type: SGD's momentum, a finite float in [0, 1)."""
    try:
        return number(float(text), "microgradnn", "the value", 0.0, 1.0, hi_open=True)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number in [0, 1), got {text!r}") from None


def _port(text: str) -> int:
    try:  # (a digit int() does not read, such as ², failed inside: "invalid _port value")
        port = int(text) if text.isdigit() else -1
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}")
    return port


def _host(text: str) -> str:
    if not text.strip():  # an unset variable, --host "$HOST", would open the playground to the network
        raise argparse.ArgumentTypeError(f"expected a host name or address, got {text!r} (an empty host listens on "
                                         "every interface: pass 0.0.0.0 for that, on a trusted network only)")
    return text


def _hidden(text: str) -> list[int]:
    parts = text.split(",")
    if any(not s.strip() for s in parts) and any(s.strip() for s in parts):  # 16,,16: a size left out
        raise argparse.ArgumentTypeError(f"expected sizes like 16,16, got {text!r}, which has an empty size")
    try:
        sizes = [int(s) for s in parts if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 16,16, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 16,16, got {text!r}")
    return sizes


def _fixed_by_load(given: list[str], path: str, what: str) -> UsageError:
    """The error for size options given with --load, which takes the model as the file holds it."""
    return UsageError(f"{' and '.join(given)} cannot change the model --load {path} holds; leave "
                      f"{'it' if len(given) == 1 else 'them'} out (the {what} come from the file)")


def _save_exists(args) -> UsageError:
    return UsageError(f"--save {args.save} already exists; pass --overwrite to replace it")


def _check_overwrite(args) -> None:
    """--overwrite (of train and gpt) only says what --save may do."""
    if args.overwrite and args.save is None:
        raise UsageError("--overwrite has no effect without --save (it lets --save replace a file); leave it out "
                         "or pass --save PATH")


def _check_not_stdio(args) -> None:
    """'-' as a path, the usual name of stdin or stdout, would be a file named - in the current folder."""
    for option, what in (("--save", "writes the model to a file, not to stdout"),
                         ("--load", "reads the model from a file, not from stdin"),
                         ("--words", "reads the word list from a file, not from stdin")):
        if getattr(args, option[2:], None) == "-":
            raise UsageError(f"{option} -: {args.command} {what}; give a file name (./- for a file named -)")


def _check_save(args) -> None:
    """Before training: a --save destination that cannot be written must not cost the run."""
    if args.save is not None:  # '' too: it is refused, not taken as "no --save"
        try:
            check_writable(args.save, args.overwrite, "--save")
        except FileExistsError:
            raise _save_exists(args) from None
        except OSError as e:  # a folder, a name too long, no permission: one line
            raise UsageError(str(e)) from None


def _save(model: Module, args, out=sys.stdout, vocabulary: str | None = None) -> None:
    try:
        if vocabulary is None:
            model.save(args.save, overwrite=args.overwrite)
        else:  # a character-level model: the file keeps which character each token id stands for
            write_model(args.save, model.config(), model.state_dict(), args.overwrite, vocabulary=vocabulary,
                        tied=tied_names(model))
    except FileExistsError:  # made while training ran
        raise _save_exists(args) from None
    print(f"saved {args.save}", file=out)


def _check_work(args, samples: int, count: int, neurons: int, fewer: str) -> None:
    """Refuse an epoch of more multiply-adds, or a scalar step of a larger graph, than a run can finish."""
    if count * samples > MAX_EPOCH_WORK:
        raise UsageError(f"--samples {samples} with a model of {count} parameters is {count * samples} "
                         f"multiply-adds per epoch; at most {MAX_EPOCH_WORK} are accepted (minutes of the "
                         f"scalar engine); {fewer}")
    batch = min(args.batch_size or samples, samples)
    if not args.compiled and batch * neurons > MAX_GRAPH:  # about 1 kB per neuron and sample
        raise UsageError(f"a batch of {batch} samples through {neurons} neurons makes a graph of {batch * neurons} "
                         f"neuron outputs per step; at most {MAX_GRAPH} are accepted (about 1 GB); pass a "
                         "smaller --batch-size or --compiled")


def train_model(args, out=sys.stdout):
    """Build (or load) the model, train it as `args` say, and return (model, X, y, history)."""
    X, y, k = _dataset(args)
    loss = args.loss or _default_loss(k)
    targets = _targets(loss, y, k)
    nout = k if loss == "cross_entropy" else 1
    output = _output_activation(loss)
    if args.load is not None:  # '' too: it is refused, not taken as "no --load"
        given = [o for o, v in (("--hidden", args.hidden), ("--activation", args.activation)) if v is not None]
        if given:
            raise _fixed_by_load(given, args.load, "layers")
        try:
            model = Module.from_file(args.load)
        except (OSError, ValueError) as e:
            raise UsageError(str(e)) from None
        if not isinstance(model, MLP) or model.nin != 2 or model.nout != nout:
            raise UsageError(f"{args.load} holds {model!r}, which does not fit {args.dataset} "
                             f"with --loss {loss} (2 inputs, {nout} outputs)")
        _check_output(model, args, loss, output)
        # the bounds below hold for a loaded model too: without them, a large one ran for hours
        _check_parameters(len(model.parameters()), f"--load {args.load}", loaded=True)
        _check_work(args, len(X), len(model.parameters()), sum(len(layer.neurons) for layer in model.layers),
                    "pass fewer --samples")
    else:
        sizes = [2, *(args.hidden or DEFAULT_HIDDEN), nout]
        count = MLP.config_size({"nin": 2, "layers": [{"nout": n, "activation": "linear"} for n in sizes[1:]]})
        _check_parameters(count, "--hidden and the classes")
        _check_work(args, len(X), count, sum(sizes[1:]), "pass fewer --samples or smaller --hidden")
        model = MLP(2, sizes[1:], args.activation or DEFAULT_ACTIVATION, output,
                    seed=args.seed)
    _check_save(args)
    opt_kwargs = {"lr": args.lr}
    if args.optimizer == "sgd":
        opt_kwargs["momentum"] = DEFAULT_MOMENTUM if args.momentum is None else args.momentum
    optimizer = optim.OPTIMIZERS[args.optimizer](model.parameters(), **opt_kwargs)
    print(f"training {model!r} on {args.dataset} ({len(X)} samples), {loss} loss, "
          f"{args.optimizer} lr={args.lr}, {args.epochs} epochs", file=out)
    try:
        history = fit(model, X, targets, loss, optimizer, args.epochs, args.batch_size, seed=args.seed,
                      verbose=not args.quiet, compiled=args.compiled)
    except (ArithmeticError, ValueError) as e:
        raise Failure(str(e)) from None
    # the trained model's loss, as its accuracy: history's last is the mean over the last epoch's
    # forward passes, made before that epoch's steps (with mini-batches, before most of them)
    scores = model.decision_function(X).tolist()
    try:
        final = losses.LOSSES[loss](scores, targets.tolist())
    except (ArithmeticError, ValueError) as e:
        # (the last step sent it out of the loss's domain: as fit says of a step before the last)
        raise Failure(f"training diverged in the last step: the trained model's loss: {_short(e, 300)}; try a "
                      f"smaller --lr than {args.lr:g}") from None
    print(f"final loss {final.data:.4f}, accuracy {accuracy(model, X, targets):.1%}", file=out)
    if args.save is not None:
        _save(model, args, out)
    return model, X, y, history


def cmd_train(args) -> int:
    _check_not_stdio(args)
    _check_effective(args)
    _check_overwrite(args)
    train_model(args)
    return 0


def lesson_network() -> MLP:
    """The lesson's network: 2 inputs -> 3 ReLU neurons -> 1 sigmoid output, its weights as written there."""
    return MLP.from_layers([
        Layer.from_weights([([0.5, -0.4], 0.1), ([0.2, 0.8], -0.3), ([-0.6, 0.3], 0.5)], "relu"),
        Layer.from_weights([([0.7, 0.4, -0.5], 0.2)], "sigmoid")])


def _teaching_neuron(model: MLP, X: np.ndarray, targets: np.ndarray, loss_name: str):
    """(sample, neuron index, the neuron's output Value) for the first-layer neuron and sample with the
    largest |dL/d(its pre-activation)|, on an unfused copy of `model` after that sample's backward()."""
    loss_fn = losses.LOSSES[loss_name]
    copy = MLP.from_layers([Layer.from_weights([([w.data for w in n.w], n.b.data) for n in layer.neurons],
                                                     layer.activation, fused=False) for layer in model.layers])
    first = {id(n): j for j, n in enumerate(copy.layers[0].neurons)}

    def backward(i: int) -> dict[int, Value]:
        copy.zero_grad()  # leaves accumulate: each picture shows this sample's gradients only
        loss = loss_fn([copy(X[i])], [targets[i]])  # (the output is a list of Values for several classes)
        loss.backward()
        return dict(sorted((first[id(v.origin[1])], v) for v in topological_order(loss)
                           if v.origin is not None and id(v.origin[1]) in first))

    def strength(v: Value) -> float:  # the gradient reaching the neuron's weights
        return abs(v.inputs[0].grad) if v.inputs else abs(v.grad)

    best = max(((i, j, strength(v)) for i in range(len(X)) for j, v in backward(i).items()), key=lambda t: t[2])
    return best[0], best[1], backward(best[0])[best[1]]


DEMO_PLOTS = ["decision_boundary.png", "loss_curve.png"]
DEMO_PAGES = ["neuron_forward.svg", "neuron_backward.svg", "network.svg", "backprop.html", "lesson_network.html",
              "lesson_network_quiz.html"]


def _check_demo_destinations(args) -> bool:
    """The files the demo will write, checked first: in a folder named with --out, files there
    already are only replaced with --overwrite (out/, the default, is the demo's own: each run
    replaces its files there). Returns whether the demo may replace its files."""
    if args.out == "":  # an unset shell variable: not taken as "no --out", which writes into out/
        raise UsageError("--out: path must not be empty, got ''")
    out = DEMO_OUT if args.out is None else args.out
    try:
        import matplotlib  # noqa: F401
        names = DEMO_PLOTS + DEMO_PAGES
    except ImportError:
        names = DEMO_PAGES
    problem = refusal(out, names, args.overwrite)
    if problem:
        raise UsageError(f"--out {problem}")
    return may_replace(out, args.overwrite)


def _demo_files(args, model, X, y, history, path, overwrite: bool) -> None:
    """The demo's pictures and pages of the trained `model`; `path(name)` names each file."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        from microgradnn import plots
        plots.decision_boundary(model, X, y, path("decision_boundary.png"), overwrite=overwrite)
        plots.loss_curve(history, path("loss_curve.png"), overwrite=overwrite)
    except ImportError:
        print("matplotlib is not installed: skipping decision_boundary.png and loss_curve.png "
              "(pip install 'microgradnn[plot]')")

    # One neuron of the trained network, unfused so every * and + is its own node, on the sample
    # whose loss sends the largest gradient through it: the gradients drawn are those of the loss.
    k = int(y.max()) + 1
    loss_name = args.loss or _default_loss(k)
    sample, j, o = _teaching_neuron(model, X, _targets(loss_name, y, k), loss_name)
    where = (f"{model!r}, neuron layers.0.neurons.{j} on sample {sample} "
             f"(x = [{', '.join(viz.fmt(v) for v in X[sample])}], class {int(y[sample])})")
    viz.save(viz.draw_graph(o, view="forward", title=f"{where}\nforward pass"), path("neuron_forward.svg"),
             overwrite=overwrite)
    viz.save(viz.draw_graph(o, view="backward", title=f"{where}\nbackward pass: grad = d({loss_name} loss on this "
                                                      f"sample)/d(node); edges: × local derivative"),
             path("neuron_backward.svg"), overwrite=overwrite)
    shown = ", ".join(viz.fmt(v) for v in X[sample])
    viz.save(viz.draw_network(model, X[sample], title=f"{model!r} trained on {args.dataset}\n"
                                                      f"input: sample {sample}, x = [{shown}]"),
             path("network.svg"), overwrite=overwrite)
    viz.animate(o, path("backprop.html"), title=f"Backprop of the {loss_name} loss through one neuron: {where}",
                overwrite=overwrite)
    # The lesson's 2 -> 3 -> 1 network on [1.0, 0.5]: forward, backward, one step; and as a quiz.
    lesson = lesson_network()
    viz.animate_network(lesson, [1.0, 0.5], path("lesson_network.html"), target=1.0, overwrite=overwrite)
    viz.animate_network(lesson, [1.0, 0.5], path("lesson_network_quiz.html"), target=1.0, quiz=True,
                        overwrite=overwrite)


def cmd_demo(args) -> int:
    # before training: a refused destination must not cost the run; and again when writing: a
    # file made there during training is only replaced as the check allows
    _check_effective(args)
    overwrite = _check_demo_destinations(args)
    args.out = DEMO_OUT if args.out is None else args.out
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:  # a file on the way, a read-only or virtual file system
        raise UsageError(f"--out: cannot make the folder {args.out}: {e.strerror or e}") from None
    args.load = args.save = None
    model, X, y, history = train_model(args)
    written = []

    def path(name: str) -> str:
        written.append(os.path.join(args.out, name))
        return written[-1]

    try:
        _demo_files(args, model, X, y, history, path, overwrite)
    except FileExistsError:
        raise UsageError(f"--out {args.out}: {os.path.basename(written[-1])} appeared there during the run and is "
                         "kept; pass --overwrite to replace it") from None
    print("wrote:")
    for p in written:
        print(f"  {p}")
    return 0


GPT_SIZES = {"n_embd": 16, "n_head": 4, "n_layer": 1, "block_size": 16}  # the defaults of gpt's size options


def _load_gpt(path: str):
    """The GPT `gpt --save` wrote to `path` and the tokenizer of the vocabulary saved with it."""
    from microgradnn.models import GPT
    try:
        payload = read_model(path)  # read once: the model and its vocabulary come from the same file
        model = Module._from_payload(payload, path)
    except (OSError, ValueError) as e:
        raise UsageError(str(e)) from None
    if not isinstance(model, GPT):
        raise UsageError(f"--load {path} holds {model!r}, not a GPT; gpt --load continues what gpt --save wrote")
    vocabulary = payload.get("vocabulary")
    if vocabulary is None:
        raise UsageError(f"--load {path} has no vocabulary (the characters its token ids stand for), so words "
                         "cannot be given the ids it was trained with; train a new model (leave out --load)")
    if len(vocabulary) + 1 != model.vocab_size:
        raise UsageError(f"--load {path}: its vocabulary has {len(vocabulary)} characters, but the model has "
                         f"{model.vocab_size} tokens (BOS and one per character)")
    return model, data.CharTokenizer([vocabulary])


def cmd_gpt(args) -> int:
    import time
    from microgradnn.models import GPT
    _check_not_stdio(args)
    _check_overwrite(args)
    if args.load is not None:  # '' too: it is refused, not taken as "no --load"
        given = [f"--{k.replace('_', '-')}" for k in GPT_SIZES if getattr(args, k) is not None]
        if given:
            raise _fixed_by_load(given, args.load, "sizes")
        model, tok = _load_gpt(args.load)
        _check_parameters(len(model.parameters()), f"--load {args.load}", loaded=True)
        block_size = model.block_size
    else:
        sizes = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in GPT_SIZES.items()}
        if sizes["n_embd"] % sizes["n_head"]:
            embd, head = (f"--{k.replace('_', '-')} {sizes[k]}" + " (the default)" * (getattr(args, k) is None)
                          for k in ("n_embd", "n_head"))
            raise UsageError(f"{embd} must be a multiple of {head}: each head takes an equal share of the "
                             "embedding")
        block_size = sizes["block_size"]
    _check_save(args)
    words, source = data.words(max_len=block_size - 1, path=args.words, seed=args.seed)
    if args.load is not None:
        lacking = sorted(set("".join(words)) - set(tok.chars))
        if lacking:  # new characters have no id the model was trained with
            raise UsageError(f"the words of {source} have characters the vocabulary of --load {args.load} lacks: "
                             f"{''.join(lacking)!r}; train a new model on them (leave out --load)")
    else:
        tok = data.CharTokenizer(words)
        _check_parameters(GPT.config_size({"vocab_size": tok.vocab_size, **sizes}),
                          "--n-embd, --n-layer and --block-size")
        model = GPT(tok.vocab_size, **sizes, seed=args.seed)
    print(f"{len(words)} words from {source}; {model}")
    step = replay.compile(model.loss, max_tapes=block_size)
    opt = optim.Adam(model.parameters(), lr=args.lr, betas=(0.85, 0.99))
    schedule = optim.LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=args.steps)
    rng = np.random.default_rng(args.seed)
    start, updating = time.perf_counter(), False
    for i in range(1, args.steps + 1):
        try:
            result = step([tok.encode(words[j]) for j in rng.integers(len(words), size=args.batch_size)])
            opt.zero_grad()
            result.backward()
            updating = True
            opt.step()
        except (ArithmeticError, ValueError) as e:
            if i == 1 and not updating:  # nothing has changed the weights yet: not the learning rate
                raise
            raise Failure(f"training diverged at step {i}: {_short(e, 300)}; try a smaller --lr than "
                          f"{args.lr:g}") from None
        schedule.step()
        if not args.quiet and (i == 1 or i == args.steps or i % max(1, args.steps // 10) == 0):
            print(f"step {i:>{len(str(args.steps))}}/{args.steps}  loss {result.data:.3f}  "
                  f"{time.perf_counter() - start:5.1f}s")
    if args.save is not None:  # before sampling: the trained model is kept whatever sampling does
        _save(model, args, vocabulary="".join(tok.chars))
    samples = [tok.decode(model.generate([tok.BOS], temperature=args.temperature, stop=tok.BOS, seed=args.seed + k))
               for k in range(args.samples)]
    print(f"samples (temperature {args.temperature:g}): {', '.join(map(repr, samples))}")
    return 0


def cmd_playground(args) -> int:
    from microgradnn.viz.live import serve
    try:
        return serve(args.host, args.port, open_browser=not args.no_browser)
    except OSError as e:  # the port is taken, or the host is not this machine's
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None


# ---- argument parsing ------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    takes_expression = False  # the command reads an expression: "-x" is one there, not an option

    def error(self, message: str):
        unknown = message.split(": ", 1)[1].split() if message.startswith("unrecognized arguments: ") else []
        if any(a[:1] == "-" and a[1:2] != "-" and (self.takes_expression or not a[1:].isalnum())
               for a in unknown):  # "-x**2", no option
            message += ("; an expression that starts with - goes after -- (and the options before it), as in "
                        "microgradnn render -o g.svg -- \"-x**2\" x=3")
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_training_options(p: argparse.ArgumentParser, epochs: int) -> None:
    p.add_argument("--dataset", choices=list(data.DATASETS), default="moons", help="toy dataset (default moons)")
    p.add_argument("--samples", type=_at_most(MAX_SAMPLES), default=100,
                   help=f"number of samples (default 100, at most {MAX_SAMPLES})")
    p.add_argument("--noise", type=_tolerance(False), help=f"noise for {', '.join(NOISY)} (default {DEFAULT_NOISE})")
    p.add_argument("--classes", type=positive,
                   help=f"classes for {' and '.join(CLASSES_CHOSEN)} (default {DEFAULT_CLASSES})")
    p.add_argument("--hidden", type=_hidden, help="hidden layer sizes (default 16,16)")
    p.add_argument("--activation", choices=list(nn.ACTIVATIONS), help="hidden activation (default relu)")
    p.add_argument("--loss", choices=list(losses.LOSSES), help="default: hinge for 2 classes, else cross_entropy")
    p.add_argument("--optimizer", choices=list(optim.OPTIMIZERS), default="sgd", help="default sgd")
    p.add_argument("--lr", type=_tolerance(False), default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--momentum", type=_momentum, help=f"SGD momentum (default {DEFAULT_MOMENTUM})")
    p.add_argument("--epochs", type=_at_most(MAX_STEPS), default=epochs,
                   help=f"passes over the data (default {epochs}, at most {MAX_STEPS})")
    p.add_argument("--batch-size", type=positive, help="mini-batch size (default: the whole dataset)")
    p.add_argument("--seed", type=_seed, default=0, help="seed for data, weights and shuffling (default 0)")
    p.add_argument("--compiled", action="store_true", help="replay the recorded graph with numpy (faster)")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="microgradnn", description="A scalar autograd engine: train, render and check gradients.",
                     epilog="Exit codes: 0 done, 1 failed, 2 bad usage, 130 interrupted. Add --debug anywhere to "
                            "see the traceback of an error (before mutate: after it, --debug is pytest's, which "
                            "writes pytestdebug.log).")
    parser.add_argument("--version", action="version", version=f"microgradnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    parser.commands = sub.choices  # type: ignore[attr-defined]

    demo = sub.add_parser("demo", help="train on moons and write pictures of what it computed",
                          description="Train an MLP on moons, then write the decision boundary, loss curve, "
                                      "one neuron's forward and backward graphs (gradients of the loss on one "
                                      "sample), the network diagram, a backprop animation, and the lesson's "
                                      "2-3-1 network animated (and as a quiz) into --out. In out/, the default, each "
                                      "run replaces these files; in a folder you name, existing files are only "
                                      "replaced with --overwrite.")
    _add_training_options(demo, epochs=60)
    demo.add_argument("--out", help="output folder (default out/, whose files each run replaces)")
    demo.add_argument("--overwrite", action="store_true", help="replace files already in the --out folder")
    demo.set_defaults(run=cmd_demo)

    train = sub.add_parser("train", help="train an MLP on a toy dataset",
                           description="Train an MLP on a toy dataset and print progress and final accuracy.")
    _add_training_options(train, epochs=100)
    _add_save(train)
    train.add_argument("--load", metavar="PATH", help="continue training a saved model (its layers come from the "
                                                      "file; the optimizer and --lr from these options, as the "
                                                      "file holds none)")
    train.set_defaults(run=cmd_train)

    render = sub.add_parser("render", help="draw the graph of an expression",
                            description="Draw an expression's computation graph, e.g. "
                                        "microgradnn render \"tanh(x*w + b)\" x=2 w=-3 b=6.88 --view backward")
    render.add_argument("expression", help=EXPRESSION_HELP)
    render.add_argument("variables", nargs="*", metavar="NAME=VALUE", help="a value for every name")
    _add_import(render)
    render.add_argument("--view", choices=["forward", "backward", "both"], default="both",
                        help="forward: each node's number; backward: each grad and, on the edges, the local "
                             "derivatives; both (default)")
    render.add_argument("--rankdir", choices=["LR", "TB"], default="LR",
                        help="left to right (default) or top to bottom")
    render.add_argument("-o", "--output", default="graph.svg", help=".svg, .png, .pdf or .dot (default graph.svg)")
    render.add_argument("--force", action="store_true", help="replace an existing output file")
    render.set_defaults(run=cmd_render)

    gpt = sub.add_parser("gpt", help="train a character-level GPT on words and sample new ones",
                         description="Train microgradnn.models.GPT on a word list (/usr/share/dict/words when "
                                     "installed, else made-up words) with compile, then sample words.")
    gpt.add_argument("--steps", type=_at_most(MAX_STEPS), default=300,
                     help=f"training steps (default 300, at most {MAX_STEPS})")
    gpt.add_argument("--batch-size", type=_at_most(MAX_GPT_BATCH), default=32,
                     help=f"words per step (default 32, at most {MAX_GPT_BATCH})")
    gpt.add_argument("--lr", type=_tolerance(False), default=1e-2, help="Adam's learning rate (default 0.01)")
    gpt.add_argument("--n-embd", type=positive, help=f"embedding size (default {GPT_SIZES['n_embd']})")
    gpt.add_argument("--n-head", type=positive, help=f"attention heads (default {GPT_SIZES['n_head']})")
    gpt.add_argument("--n-layer", type=positive, help=f"transformer blocks (default {GPT_SIZES['n_layer']})")
    gpt.add_argument("--block-size", type=_block_size,
                     help=f"longest sequence, BOS included (default {GPT_SIZES['block_size']})")
    gpt.add_argument("--words", metavar="PATH", help="a word list, one word per line (default: the system's)")
    gpt.add_argument("--samples", type=_at_most(MAX_GPT_WORDS), default=10,
                     help=f"words to sample (default 10, at most {MAX_GPT_WORDS})")
    gpt.add_argument("--temperature", type=_tolerance(False), default=0.8, help="sampling temperature (default 0.8)")
    gpt.add_argument("--seed", type=_seed, default=0, help="seed for the words drawn, weights and samples (default 0)")
    _add_save(gpt)
    gpt.add_argument("--load", metavar="PATH", help="continue training a model gpt --save wrote (its sizes and "
                                                    "vocabulary come from the file)")
    gpt.add_argument("--quiet", action="store_true", help="no progress lines")
    gpt.set_defaults(run=cmd_gpt)

    play = sub.add_parser("playground", help="train networks live in the browser",
                          description="Serve the playground (live training, every graph one click away) on "
                                      "http://127.0.0.1:PORT/ and open it in the browser; Ctrl-C stops it.")
    play.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)")
    play.add_argument("--host", type=_host, default="127.0.0.1",
                      help="address to listen on (default 127.0.0.1, this machine only)")
    play.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")
    play.set_defaults(run=cmd_playground)

    check = sub.add_parser("gradcheck", help="compare analytic and numeric gradients of an expression",
                           description="Compare backward()'s gradients with extrapolated central finite "
                                       "differences, e.g. microgradnn gradcheck \"a = x*y; tanh(a) * a\" x=0.5 y=2. "
                                       "Exit code 1 if any gradient is wrong.")
    check.add_argument("expression", help=EXPRESSION_HELP)
    check.add_argument("variables", nargs="*", metavar="NAME=VALUE", help="a value for every name")
    above_0, at_least_0 = _tolerance(positive=True), _tolerance(positive=False)
    check.add_argument("--eps", type=above_0, default=EPS,
                       help=f"first step, relative to max(1, |x|), in [1e-12, 0.1] (default {EPS:g})")
    check.add_argument("--atol", type=at_least_0, default=1e-5, help="absolute tolerance (default 1e-5)")
    check.add_argument("--rtol", type=at_least_0, default=1e-3, help="relative tolerance (default 1e-3)")
    check.add_argument("--sample", type=positive, metavar="N",
                       help="check N of the inputs, picked at random with a fixed seed (default: all; each "
                            "input costs 7 or more evaluations of the expression)")
    _add_import(check)
    check.set_defaults(run=cmd_gradcheck)

    mutate = sub.add_parser("mutate", help="would your tests catch a wrong derivative? (mutation testing)",
                            description="Run pytest (with the given pytest arguments) once normally, then once per "
                                        "mutant derivative rule of every op (sign flipped, scaled by 1.05, shifted "
                                        "by 0.001, another input's rule), each run stopping at its first failing "
                                        "test; list the mutants no test catches. Exit code 1 if any survives. "
                                        "Example: microgradnn mutate tests/test_ops.py --mutate-only tanh,relu")
    mutate.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                        help="arguments for pytest (test paths, -k, -x, --mutate-only OPS, ...)")
    mutate.set_defaults(run=cmd_mutate)
    return parser


EXPRESSION_HELP = (f"numbers, names, + - * / **, calls of {' '.join(functions())} (and ops of your own, with "
                   "--import), and name = ... steps separated by ; for shared subexpressions")


def _add_save(p: argparse.ArgumentParser) -> None:
    p.add_argument("--save", metavar="PATH", help="save the trained model as JSON")
    p.add_argument("--overwrite", action="store_true", help="allow --save to replace an existing file")


def _add_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (from the current folder too), so the ops it defines can be called")


# Errors in what the user asked for (exit 2); anything else that goes wrong is exit 1.
_USAGE = (UsageError, ValueError, FileExistsError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
          viz.GraphTooLarge)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code: 0 done, 1 failed, 2 bad usage, 130 Ctrl-C.
    Every error is one line on stderr; `--debug` (anywhere) shows the traceback instead."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv and argv[:1] != ["mutate"]
    if debug:
        argv = [a for a in argv if a != "--debug"]
    command = "microgradnn"
    try:
        parser = build_parser()
        parser.takes_expression = argv[:1] in (["render"], ["gradcheck"])  # type: ignore[attr-defined]
        if argv[:1] == ["mutate"] and not set(argv[1:]) & {"-h", "--help"}:
            args = parser.parse_args(["mutate"])  # everything after `mutate` goes to pytest untouched
            args.pytest_args = argv[1:]
        else:
            args, unknown = parser.parse_known_args(argv)
            if unknown:  # said by the command's parser: "microgradnn train: ...", pointing at its --help
                own = parser.commands[args.command]  # type: ignore[attr-defined]
                own.takes_expression = parser.takes_expression  # type: ignore[attr-defined]
                own.error(f"unrecognized arguments: {' '.join(unknown)}")
        command = f"microgradnn {args.command}"
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
        return code
    except SystemExit:
        raise
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\n{command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, and keep Python's exit-time flush quiet too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:  # noqa: BLE001 - the command line's promise: one line, never a traceback
        if debug:
            raise
        usage = isinstance(e, _USAGE) and not isinstance(e, (OverflowError, RecursionError, MemoryError))
        text = str(e) if isinstance(e, (UsageError, Failure)) or usage and str(e) else f"{type(e).__name__}: {e}"
        if isinstance(e, MemoryError):  # its text is empty, or numpy's shape: "MemoryError: " named nothing
            smaller = {"microgradnn gpt": "--batch-size, --n-embd, --n-layer or --block-size",
                       "microgradnn train": "--samples, --batch-size or --hidden",
                       "microgradnn demo": "--samples, --batch-size or --hidden"}.get(command, "expression")
            text = (f"out of memory{f' ({e})' if str(e) else ''}: the run is too large for this machine; pass a "
                    f"smaller {smaller}")
        text = " ".join(text.split())
        if len(text) > 400:
            text = text[:397] + "..."
        hint = "" if usage or isinstance(e, (Failure, MemoryError)) else " (run with --debug for the traceback)"
        print(f"{command}: error: {text}{hint}", file=sys.stderr)
        return 2 if usage else 1
