"""A safe expression language for the command line: `a = x*y; tanh(a) + a` parsed with
Python's `ast` against a whitelist (numbers, names, + - * / **, unary minus, `name = ...`
steps and calls of the op table's functions) and evaluated on Values; nothing is `eval`ed."""
from __future__ import annotations

import ast
import importlib
import math
import os
import sys
import unicodedata
from dataclasses import dataclass
from typing import Callable, Sequence

from microgradnn import engine
from microgradnn._checks import is_finite

__all__ = ["ExpressionError", "Program", "functions", "parse_expression", "variables_in", "evaluate",
           "parse_assignments", "import_modules", "build_expression", "FUNCTIONS", "BINARY"]


class ExpressionError(ValueError):
    """An expression or a variable assignment that the language does not accept."""


MAX_LENGTH = 100_000  # characters: a command line's expression, with room to spare


# Functions an expression may call: these module functions (leaky_relu's slope is optional),
# and every op of the op table whose name is a word (dot, logsumexp, your define_op ops).
FUNCTIONS: dict[str, Callable] = {
    "exp": engine.exp, "log": engine.log, "log1p": engine.log1p, "sqrt": engine.sqrt, "tanh": engine.tanh,
    "sigmoid": engine.sigmoid, "relu": engine.relu, "leaky_relu": engine.leaky_relu,
    "sin": engine.sin, "cos": engine.cos, "softplus": engine.softplus, "abs": engine.abs_,
}
# The op table's infix rows (+ - * / **), keyed by the ast node Python parses each into.
BINARY = {type(ast.parse(f"a {op.symbol} b", mode="eval").body.op): op  # type: ignore[attr-defined]
          for op in engine.ops().values() if op.infix}


def functions() -> dict[str, Callable]:
    """Every function an expression can call, by name."""
    table = {name: op for name, op in engine.ops().items() if name.isidentifier()}
    return table | FUNCTIONS


def _arity(name: str, fn) -> tuple[int, float]:
    """(fewest, most) positional arguments of a function an expression calls."""
    if fn is engine.leaky_relu:
        return 1, 2
    if getattr(fn, "variadic", False):
        return next(n for n in range(1, 64) if fn.groups(n) is not None), math.inf
    n = len(getattr(fn, "derivatives", (None,)))
    return n, n


def _variadic_rule(fn) -> str:
    """How many arguments a variadic op takes, in words, read from its groups."""
    if fn.groups(3) and not fn.groups(4):  # groups of equal size plus single inputs (dot: w's, x's, b)
        return "an odd number (w's, x's, b) of"
    return "at least one"


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
    if not isinstance(text, str):
        raise TypeError(f"parse_expression: the expression must be a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression has {len(text)} characters; at most {MAX_LENGTH} are accepted")
    try:
        module = ast.parse(source := text.strip(), mode="exec")
    except SyntaxError as e:
        reason = e.msg
        if "integer string conversion" in reason:  # Python's advice (set_int_max_str_digits) is no help here
            reason = "a number has more than 4300 digits (and a float holds at most about 1.8e308)"
        raise ExpressionError(f"cannot parse {_shown(text)}: {reason}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("the expression is nested too deeply for Python's parser") from None
    known = functions()
    allowed = f"use numbers, names, + - * / **, name = ... steps and {', '.join(known)}()"
    if not module.body or not isinstance(module.body[-1], ast.Expr):
        raise ExpressionError(f"the expression must end with the value to compute, got {_shown(text)}")
    steps, assigned = [], set()
    names = {s.targets[0].id for s in module.body[:-1]
             if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)}
    for stmt in module.body[:-1]:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            raise ExpressionError(f"not allowed in an expression: {_shown(_text(stmt, source))} "
                                  f"({type(stmt).__name__}); {allowed}")
        name = stmt.targets[0].id
        if name in known or name in assigned:
            raise ExpressionError(f"{name} = ...: {'a function' if name in known else 'assigned twice'}; "
                                  "pick another name")
        _check(stmt.value, known, allowed, source)
        for node in ast.walk(stmt.value):  # a step's name is not a variable: no use before it is set
            if isinstance(node, ast.Name) and node.id in names and node.id not in assigned:
                raise ExpressionError(f"{node.id} is used before it is assigned")
        steps.append((name, stmt.value))
        assigned.add(name)
    _check(module.body[-1].value, known, allowed, source)
    return Program(steps, module.body[-1].value)


def _text(node: ast.AST, source: str) -> str:
    """What the expression wrote for `node` (ast.unparse would recurse as deep as the node is nested)."""
    return ast.get_source_segment(source, node) or type(node).__name__


def _shown(text: str) -> str:
    """`text` quoted for a message: its start only when long, so the reason after it stays readable."""
    return repr(text) if len(text) <= 80 else f"{text[:60]!r}... ({len(text):,} characters)"


def _number_text(node: ast.Constant, source: str) -> str:
    """A number as the expression writes it (a huge int by its size)."""
    text = ast.get_source_segment(source, node) or ""
    return f"{text[:20]}... ({len(text)} digits)" if len(text) > 40 else text


def _check(tree: ast.expr, known: dict, allowed: str, source: str) -> None:
    kinds = (ast.Load, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call, *BINARY, ast.USub, ast.UAdd)
    for node in ast.walk(tree):
        if not isinstance(node, kinds):
            raise ExpressionError(f"not allowed in an expression: {_shown(_text(node, source))} "
                                  f"({type(node).__name__}); {allowed}")
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Load, *BINARY, ast.USub, ast.UAdd)):
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            continue
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            continue
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            if not is_finite(node.value):  # 1e999 reads as inf; a 400-digit int has no float
                raise ExpressionError(f"the number {_number_text(node, source)} is too large for a float "
                                      "(at most about 1.8e308)")
            continue
        if isinstance(node, ast.Name):
            if node.id in known and id(node) not in called:
                raise ExpressionError(f"{node.id} is a function: call it, as in {node.id}(x)")
            continue
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in known:
                name = node.func.id if isinstance(node.func, ast.Name) else _text(node.func, source)
                raise ExpressionError(f"unknown function {_shown(name)}; allowed: {', '.join(known)} "
                                 f"(ops of your own: --import the module that defines them)")
            low, high = _arity(node.func.id, known[node.func.id])
            n = len(node.args)
            fn = known[node.func.id]
            groups_fit = not getattr(fn, "variadic", False) or fn.groups(n) is not None
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args) or not low <= n <= high \
                    or not groups_fit:
                wanted = (f"{low}" if low == high else _variadic_rule(fn) if high == math.inf and low > 1
                          else f"{low} or more" if high == math.inf else f"{low} or {high}")
                raise ExpressionError(f"{node.func.id}() takes {wanted} positional argument{'s' if high > 1 else ''}, "
                                 f"got {_shown(_text(node, source))}")
            continue
        raise ExpressionError(f"not allowed in an expression: {_shown(_text(node, source))} ({type(node).__name__}); "
                              f"{allowed}")


def variables_in(program: Program) -> list[str]:
    """Names used as variables (not functions, not steps), in order of first use."""
    known, assigned = functions(), {n for n, _ in program.steps}
    found = sorted((n.lineno, n.col_offset, n.id) for _, e in [*program.steps, (None, program.result)]
                   for n in ast.walk(e) if isinstance(n, ast.Name) and n.id not in known and n.id not in assigned)
    return list(dict.fromkeys(name for _, _, name in found))


def evaluate(program: Program, env: dict):
    """Evaluate a checked program with Values (or floats) for its variables; each step is
    computed once, so a step used twice is one shared node of the graph."""
    env, known = dict(env), functions()
    for name, expr in program.steps:
        env[name] = _evaluate(expr, env, known)
    return _evaluate(program.result, env, known)


def _evaluate(tree: ast.expr, env: dict, known: dict):
    stack: list = []
    todo: list = [(tree, False)]
    while todo:  # iterative post-order walk, so deep expressions cannot hit the recursion limit
        node, ready = todo.pop()
        if isinstance(node, ast.Constant):
            stack.append(float(node.value))  # type: ignore[arg-type]  # int or float: parse checked
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
    values: dict[str, float] = {}
    for item in items:
        name, sep, number = item.partition("=")
        if not sep or not name.isidentifier():
            raise ExpressionError(f"expected name=value, got {item!r}")
        name = unicodedata.normalize("NFKC", name)  # as Python reads the expression's names: ℌ is H
        if name in values:
            raise ExpressionError(f"{name} is given twice ({name}={values[name]:g} and {item}); give each name once")
        try:
            values[name] = float(number)
        except ValueError:
            raise ExpressionError(f"{name}: {number!r} is not a number") from None
        if not math.isfinite(values[name]):
            raise ExpressionError(f"{name}: value must be finite, got {number}")
    needed = variables_in(program)
    missing = [n for n in needed if n not in values]
    if missing:
        raise ExpressionError(f"no value given for {', '.join(missing)} (add e.g. {missing[0]}=1.0)")
    unused = [n for n in values if n not in needed]
    steps = [n for n in unused if n in {name for name, _ in program.steps}]
    if steps:  # used, but as a step's name: it said "x not used in the expression"
        raise ExpressionError(f"{steps[0]} is computed by the expression ({steps[0]} = ...), so it takes no value; "
                              f"leave {steps[0]}={values[steps[0]]:g} out")
    if unused:
        raise ExpressionError(f"{', '.join(unused)} not used in the expression")
    return {n: values[n] for n in needed}


def import_modules(names: Sequence[str]) -> None:
    """Import the modules that define the user's own ops (from the current folder too)."""
    if names and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        if not all(part.isidentifier() for part in name.split(".")):  # '' or '..ops': import_module's own errors
            raise ExpressionError(f"--import {name!r}: not a module name (like my_ops or package.ops)")
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ExpressionError(f"--import {name}: {e}") from None


def build_expression(text: str, assignments: Sequence[str], imports: Sequence[str] = ()):
    import_modules(imports)
    program = parse_expression(text)
    values = parse_assignments(assignments, program)
    return program, values
