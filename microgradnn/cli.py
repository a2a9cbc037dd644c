"""The `microgradnn` command: demo, train, render and gradcheck."""
from __future__ import annotations

import argparse
import ast
import importlib
import math
import os
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

import microgradnn as mg
from microgradnn import engine, viz
from microgradnn.testing.checks import EPS

# Functions an expression may call: these module functions (leaky_relu's slope is optional),
# and every op of the op table whose name is a word (dot, logsumexp, your define_op ops).
FUNCTIONS: dict[str, Callable] = {
    "exp": engine.exp, "log": engine.log, "sqrt": engine.sqrt, "tanh": engine.tanh,
    "sigmoid": engine.sigmoid, "relu": engine.relu, "leaky_relu": engine.leaky_relu,
    "sin": engine.sin, "cos": engine.cos, "softplus": engine.softplus, "abs": engine.abs_,
}
BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
          ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b}


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


# ---- expressions -------------------------------------------------------------------------

def functions() -> dict[str, Callable]:
    """Every function an expression can call, by name."""
    table = {name: op for name, op in engine.ops().items() if name.isidentifier()}
    return table | FUNCTIONS


def _arity(name: str, fn) -> tuple[int, float]:
    """(fewest, most) positional arguments of a function an expression calls."""
    if name == "leaky_relu":
        return 1, 2
    if name == "dot":
        return 3, math.inf  # dot(w1, ..., wn, x1, ..., xn, b)
    if getattr(fn, "variadic", False):
        return 1, math.inf
    n = len(getattr(fn, "derivatives", (None,)))
    return n, n


@dataclass
class Program:
    """A parsed expression: optional `name = expr` steps (shared subexpressions), then the result."""
    steps: list[tuple[str, ast.expr]]
    result: ast.expr

    def __str__(self) -> str:
        return "; ".join([*(f"{n} = {ast.unparse(e)}" for n, e in self.steps), ast.unparse(self.result)])


def parse_expression(text: str) -> Program:
    """Parse `text`, e.g. "a = x*y; tanh(a) + a", accepting only numbers, names, + - * / **,
    unary minus, calls of the known functions and `name = expression` steps (never eval)."""
    try:
        module = ast.parse(text.strip(), mode="exec")
    except SyntaxError as e:
        raise UsageError(f"cannot parse {text!r}: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise UsageError("the expression is nested too deeply for Python's parser") from None
    known = functions()
    allowed = f"use numbers, names, + - * / **, name = ... steps and {', '.join(known)}()"
    if not module.body or not isinstance(module.body[-1], ast.Expr):
        raise UsageError(f"the expression must end with the value to compute, got {text!r}")
    steps, assigned = [], set()
    for stmt in module.body[:-1]:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            raise UsageError(f"not allowed in an expression: {ast.unparse(stmt)!r} ({type(stmt).__name__}); {allowed}")
        name = stmt.targets[0].id
        if name in known or name in assigned:
            raise UsageError(f"{name} = ...: {'a function' if name in known else 'assigned twice'}; pick another name")
        _check(stmt.value, known, allowed)
        steps.append((name, stmt.value))
        assigned.add(name)
    _check(module.body[-1].value, known, allowed)
    program = Program(steps, module.body[-1].value)
    for i, (name, _) in enumerate(steps):  # a step's name is not a variable: no use before it is set
        for expr in [e for _, e in steps[:i + 1]]:
            if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(expr)):
                raise UsageError(f"{name} is used before it is assigned")
    return program


def _check(tree: ast.expr, known: dict, allowed: str) -> None:
    kinds = (ast.Load, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call, *BINARY, ast.USub, ast.UAdd)
    for node in ast.walk(tree):
        if not isinstance(node, kinds):
            raise UsageError(f"not allowed in an expression: {ast.unparse(node)!r} ({type(node).__name__}); {allowed}")
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Load, *BINARY, ast.USub, ast.UAdd)):
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            continue
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            continue
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            continue
        if isinstance(node, ast.Name):
            if node.id in known and id(node) not in called:
                raise UsageError(f"{node.id} is a function: call it, as in {node.id}(x)")
            continue
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in known:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise UsageError(f"unknown function {name!r}; allowed: {', '.join(known)} "
                                 f"(ops of your own: --import the module that defines them)")
            low, high = _arity(node.func.id, known[node.func.id])
            n = len(node.args)
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args) or not low <= n <= high \
                    or (node.func.id == "dot" and n % 2 == 0):
                wanted = (f"{low}" if low == high else "an odd number (w's, x's, b) of" if node.func.id == "dot"
                          else f"{low} or more" if high == math.inf else f"{low} or {high}")
                raise UsageError(f"{node.func.id}() takes {wanted} positional argument{'s' if high > 1 else ''}, "
                                 f"got {ast.unparse(node)!r}")
            continue
        raise UsageError(f"not allowed in an expression: {ast.unparse(node)!r} ({type(node).__name__}); {allowed}")


def variables_in(program: Program) -> list[str]:
    """Names used as variables (not functions, not steps), in order of first use."""
    known, assigned = functions(), {n for n, _ in program.steps}
    found = sorted((n.lineno, n.col_offset, n.id) for _, e in [*program.steps, (None, program.result)]
                   for n in ast.walk(e) if isinstance(n, ast.Name) and n.id not in known and n.id not in assigned)
    return list(dict.fromkeys(name for _, _, name in found))


def evaluate(program: Program, env: dict):
    """Evaluate a checked program with Values (or floats) for its variables; each step is
    computed once, so a step used twice is one shared node of the graph."""
    env = dict(env)
    for name, expr in program.steps:
        env[name] = _evaluate(expr, env)
    return _evaluate(program.result, env)


def _evaluate(tree: ast.expr, env: dict):
    known = functions()
    stack: list = []
    todo: list = [(tree, False)]
    while todo:  # iterative post-order walk, so deep expressions cannot hit the recursion limit
        node, ready = todo.pop()
        if isinstance(node, ast.Constant):
            stack.append(float(node.value))  # type: ignore[arg-type]  # int or float: parse_expression checked
        elif isinstance(node, ast.Name):
            stack.append(env[node.id])
        elif not ready:
            todo.append((node, True))
            children = [node.left, node.right] if isinstance(node, ast.BinOp) else \
                [node.operand] if isinstance(node, ast.UnaryOp) else node.args
            todo.extend((c, False) for c in reversed(children))
        elif isinstance(node, ast.BinOp):
            b, a = stack.pop(), stack.pop()
            stack.append(BINARY[type(node.op)](a, b))
        elif isinstance(node, ast.UnaryOp):
            a = stack.pop()
            stack.append(-a if isinstance(node.op, ast.USub) else a)
        else:
            args = [stack.pop() for _ in node.args][::-1]
            stack.append(known[node.func.id](*args))
    return stack[0]


def parse_assignments(items: Sequence[str], program: Program) -> dict[str, float]:
    """`x=2 w=-3` into {'x': 2.0, 'w': -3.0}, checking them against the expression's names."""
    values = {}
    for item in items:
        name, sep, number = item.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(f"expected name=value, got {item!r}")
        try:
            values[name] = float(number)
        except ValueError:
            raise UsageError(f"{name}: {number!r} is not a number") from None
        if not math.isfinite(values[name]):
            raise UsageError(f"{name}: value must be finite, got {number}")
    needed = variables_in(program)
    missing = [n for n in needed if n not in values]
    if missing:
        raise UsageError(f"no value given for {', '.join(missing)} (add e.g. {missing[0]}=1.0)")
    unused = [n for n in values if n not in needed]
    if unused:
        raise UsageError(f"{', '.join(unused)} not used in the expression")
    return {n: values[n] for n in needed}


def import_modules(names: Sequence[str]) -> None:
    """Import the modules that define the user's own ops (from the current folder too)."""
    if names and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise UsageError(f"--import {name}: {e}") from None


def build_expression(text: str, assignments: Sequence[str], imports: Sequence[str] = ()):
    import_modules(imports)
    program = parse_expression(text)
    values = parse_assignments(assignments, program)
    return program, values


# ---- subcommands -------------------------------------------------------------------------

def cmd_render(args) -> int:
    tree, values = build_expression(args.expression, args.variables, args.imports)
    env = {n: mg.Value(v, n) for n, v in values.items()}
    try:
        out = evaluate(tree, env)
    except (ArithmeticError, ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    if not isinstance(out, mg.Value):
        out = mg.Value(out, requires_grad=False)
    out.label = out.label or "out"
    if args.view != "forward":
        out.backward()
    if os.path.exists(args.output) and not args.force:
        raise UsageError(f"{args.output} already exists; pass --force to replace it")
    viz.save(viz.draw_graph(out, view=args.view, rankdir=args.rankdir), args.output, overwrite=True)
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
        report = gradcheck(f, values, eps=args.eps, atol=args.atol, rtol=args.rtol)
    except (ArithmeticError, ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    print(report)
    return 0 if report else 1


def cmd_mutate(args) -> int:
    import pytest
    return int(pytest.main(["--mutate-ops", *args.pytest_args]))


def _dataset(args) -> tuple[np.ndarray, np.ndarray, int]:
    make = mg.data.DATASETS[args.dataset]
    kwargs = {"seed": args.seed}
    if args.dataset == "spiral":
        kwargs["classes"] = args.classes
    if args.dataset == "blobs":
        kwargs["centers"] = args.classes
    if args.dataset in ("moons", "circles", "xor"):
        kwargs["noise"] = args.noise
    X, y = make(args.samples, **kwargs)
    return X, y, int(y.max()) + 1


def _default_loss(k: int) -> str:
    return "hinge" if k == 2 else "cross_entropy"


def _targets(loss: str, y: np.ndarray, k: int) -> np.ndarray:
    if loss != "cross_entropy" and k > 2:
        raise UsageError(f"--loss {loss} needs two classes but the data has {k}; use --loss cross_entropy")
    return y * 2 - 1 if loss == "hinge" else y


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def _hidden(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 16,16, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 16,16, got {text!r}")
    return sizes


def train_model(args, out=sys.stdout):
    """Build (or load) the model, train it as `args` say, and return (model, X, y, history)."""
    X, y, k = _dataset(args)
    loss = args.loss or _default_loss(k)
    targets = _targets(loss, y, k)
    nout = k if loss == "cross_entropy" else 1
    if args.load:
        try:
            model = mg.Module.from_file(args.load)
        except (OSError, ValueError) as e:
            raise UsageError(str(e)) from None
        if not isinstance(model, mg.MLP) or model.nin != 2 or model.nout != nout:
            raise UsageError(f"{args.load} holds {model!r}, which does not fit {args.dataset} "
                             f"with --loss {loss} (2 inputs, {nout} outputs)")
    else:
        model = mg.MLP(2, [*args.hidden, nout], args.activation,
                       "sigmoid" if loss == "binary_cross_entropy" else "linear", seed=args.seed)
    if args.save and os.path.exists(args.save) and not args.overwrite:
        raise UsageError(f"{args.save} already exists; pass --overwrite to replace it")
    opt_kwargs = {"lr": args.lr}
    if args.optimizer == "sgd":
        opt_kwargs["momentum"] = args.momentum
    optimizer = mg.optim.OPTIMIZERS[args.optimizer](model.parameters(), **opt_kwargs)
    print(f"training {model!r} on {args.dataset} ({len(X)} samples), {loss} loss, "
          f"{args.optimizer} lr={args.lr}, {args.epochs} epochs", file=out)
    history = mg.fit(model, X, targets, loss, optimizer, args.epochs, args.batch_size, seed=args.seed,
                     verbose=not args.quiet, compiled=args.compiled)
    print(f"final loss {history.loss[-1]:.4f}, accuracy {mg.accuracy(model, X, targets):.1%}", file=out)
    if args.save:
        model.save(args.save, overwrite=True)
        print(f"saved {args.save}", file=out)
    return model, X, y, history


def cmd_train(args) -> int:
    train_model(args)
    return 0


def cmd_demo(args) -> int:
    os.makedirs(args.out, exist_ok=True)
    args.load = args.save = None
    model, X, y, history = train_model(args)
    written = []

    def path(name: str) -> str:
        written.append(os.path.join(args.out, name))
        return written[-1]

    try:
        import matplotlib
        matplotlib.use("Agg")
        from microgradnn import plots
        plots.decision_boundary(model, X, y, path("decision_boundary.png"))
        plots.loss_curve(history, path("loss_curve.png"))
    except ImportError:
        print("matplotlib is not installed: skipping decision_boundary.png and loss_curve.png "
              "(pip install 'microgradnn[plot]')")

    # One neuron of the trained network, unfused so every * and + is its own node.
    first = model.layers[0].neurons[0]
    neuron = mg.Neuron.from_weights([w.data for w in first.w], first.b.data, first.activation, fused=False)
    inputs = [mg.Value(float(v), f"x{i}") for i, v in enumerate(X[0])]
    o = neuron(inputs)
    o.label = "out"
    viz.save(viz.draw_graph(o, view="forward", title="one neuron: forward pass"), path("neuron_forward.svg"),
             overwrite=True)
    o.backward()
    viz.save(viz.draw_graph(o, view="backward", title="one neuron: backward pass (× local derivative)"),
             path("neuron_backward.svg"), overwrite=True)
    viz.save(viz.draw_network(model, X[0]), path("network.svg"), overwrite=True)
    viz.animate(o, path("backprop.html"), title="Backprop through one neuron", overwrite=True)
    print("wrote:")
    for p in written:
        print(f"  {p}")
    return 0


# ---- argument parsing ------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_training_options(p: argparse.ArgumentParser, epochs: int) -> None:
    p.add_argument("--dataset", choices=list(mg.data.DATASETS), default="moons", help="toy dataset (default moons)")
    p.add_argument("--samples", type=_positive, default=100, help="number of samples (default 100)")
    p.add_argument("--noise", type=float, default=0.1, help="noise for moons, circles, xor (default 0.1)")
    p.add_argument("--classes", type=_positive, default=3, help="classes for spiral and blobs (default 3)")
    p.add_argument("--hidden", type=_hidden, default=[16, 16], help="hidden layer sizes (default 16,16)")
    p.add_argument("--activation", choices=list(mg.nn.ACTIVATIONS), default="relu", help="hidden activation")
    p.add_argument("--loss", choices=list(mg.losses.LOSSES), help="default: hinge for 2 classes, else cross_entropy")
    p.add_argument("--optimizer", choices=list(mg.optim.OPTIMIZERS), default="sgd", help="default sgd")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--epochs", type=_positive, default=epochs, help=f"passes over the data (default {epochs})")
    p.add_argument("--batch-size", type=_positive, help="mini-batch size (default: the whole dataset)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, weights and shuffling (default 0)")
    p.add_argument("--compiled", action="store_true", help="replay the recorded graph with numpy (faster)")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="microgradnn", description="A scalar autograd engine: train, render and check gradients.")
    parser.add_argument("--version", action="version", version=f"microgradnn {mg.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    demo = sub.add_parser("demo", help="train on moons and write pictures of what it computed",
                          description="Train an MLP on moons, then write the decision boundary, loss curve, "
                                      "one neuron's forward and backward graphs, the network diagram and a "
                                      "backprop animation into --out (its files are replaced on each run).")
    _add_training_options(demo, epochs=60)
    demo.add_argument("--out", default="out", help="output folder (default out/)")
    demo.set_defaults(run=cmd_demo)

    train = sub.add_parser("train", help="train an MLP on a toy dataset",
                           description="Train an MLP on a toy dataset and print progress and final accuracy.")
    _add_training_options(train, epochs=100)
    train.add_argument("--save", metavar="PATH", help="save the trained model as JSON")
    train.add_argument("--overwrite", action="store_true", help="allow --save to replace an existing file")
    train.add_argument("--load", metavar="PATH", help="continue training a saved model")
    train.set_defaults(run=cmd_train)

    render = sub.add_parser("render", help="draw the graph of an expression",
                            description="Draw an expression's computation graph, e.g. "
                                        "microgradnn render \"tanh(x*w + b)\" x=2 w=-3 b=6.88 --view backward")
    render.add_argument("expression", help=EXPRESSION_HELP)
    render.add_argument("variables", nargs="*", metavar="NAME=VALUE", help="a value for every name")
    _add_import(render)
    render.add_argument("--view", choices=["forward", "backward", "both"], default="both")
    render.add_argument("--rankdir", choices=["LR", "TB"], default="LR")
    render.add_argument("-o", "--output", default="graph.svg", help=".svg, .png, .pdf or .dot (default graph.svg)")
    render.add_argument("--force", action="store_true", help="replace an existing output file")
    render.set_defaults(run=cmd_render)

    check = sub.add_parser("gradcheck", help="compare analytic and numeric gradients of an expression",
                           description="Compare backward()'s gradients with extrapolated central finite "
                                       "differences, e.g. microgradnn gradcheck \"a = x*y; tanh(a) * a\" x=0.5 y=2. "
                                       "Exit code 1 if any gradient is wrong.")
    check.add_argument("expression", help=EXPRESSION_HELP)
    check.add_argument("variables", nargs="*", metavar="NAME=VALUE", help="a value for every name")
    check.add_argument("--eps", type=float, default=EPS, help=f"first step, relative to max(1, |x|) (default {EPS:g})")
    check.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    check.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance (default 1e-3)")
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


EXPRESSION_HELP = ("numbers, names, + - * / **, calls of exp log sqrt tanh sigmoid relu leaky_relu sin cos softplus "
                   "abs dot logsumexp (and ops of your own, with --import), and name = ... steps separated by ; "
                   "for shared subexpressions")


def _add_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (from the current folder too), so the ops it defines can be called")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["mutate"] and not set(argv[1:]) & {"-h", "--help"}:
        args = parser.parse_args(["mutate"])  # everything after `mutate` goes to pytest untouched
        args.pytest_args = argv[1:]
    else:
        args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, FileExistsError, FileNotFoundError, viz.GraphTooLarge,
            viz.GraphvizNotFound) as e:
        print(f"microgradnn {args.command}: error: {e}", file=sys.stderr)
        return 2
