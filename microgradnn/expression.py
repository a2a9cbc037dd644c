"""A safe expression language for the command line: `tanh(x*w + b)` parsed with Python's
`ast` against a whitelist (numbers, names, + - * / **, unary minus and calls of the engine's
functions) and evaluated on Values; nothing is ever `eval`ed."""
from __future__ import annotations

import ast
import math
from typing import Callable, Sequence

from microgradnn import engine

__all__ = ["ExpressionError", "parse_expression", "variables_in", "evaluate", "parse_assignments",
           "build_expression", "FUNCTIONS"]


class ExpressionError(ValueError):
    """An expression or a variable assignment that the language does not accept."""


FUNCTIONS: dict[str, Callable] = {
    "exp": engine.exp, "log": engine.log, "sqrt": engine.sqrt, "tanh": engine.tanh,
    "sigmoid": engine.sigmoid, "relu": engine.relu, "leaky_relu": engine.leaky_relu,
    "sin": engine.sin, "cos": engine.cos, "softplus": engine.softplus, "abs": engine.abs_,
}
# The op table's infix ops (+ - * / **), keyed by the ast node Python parses each into.
BINARY = {type(ast.parse(f"a {op.symbol} b", mode="eval").body.op): op for op in engine.ops() if op.infix}


def parse_expression(text: str) -> ast.expr:
    """Parse `text` and accept only numbers, names, + - * / **, unary minus and calls of
    the engine's functions (never eval)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExpressionError(f"cannot parse {text!r}: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("the expression is nested too deeply for Python's parser") from None
    allowed = (ast.Expression, ast.Load, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call,
               *BINARY, ast.USub, ast.UAdd)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ExpressionError(f"not allowed in an expression: {ast.unparse(node)!r} ({type(node).__name__}); "
                             f"use numbers, names, + - * / ** and {', '.join(FUNCTIONS)}()")
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.Load, *BINARY, ast.USub, ast.UAdd)):
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            continue
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            continue
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            continue
        if isinstance(node, ast.Name):
            if node.id in FUNCTIONS and id(node) not in called:
                raise ExpressionError(f"{node.id} is a function: call it, as in {node.id}(x)")
            continue
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise ExpressionError(f"unknown function {name!r}; allowed: {', '.join(FUNCTIONS)}")
            low, high = (1, 2) if node.func.id == "leaky_relu" else (1, 1)
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args) \
                    or not low <= len(node.args) <= high:
                raise ExpressionError(f"{node.func.id}() takes {low if low == high else f'{low} or {high}'} "
                                 f"positional argument{'s' if high > 1 else ''}, got {ast.unparse(node)!r}")
            continue
        raise ExpressionError(f"not allowed in an expression: {ast.unparse(node)!r} "
                         f"({type(node).__name__}); use numbers, names, + - * / ** and {', '.join(FUNCTIONS)}()")
    return tree.body


def variables_in(tree: ast.expr) -> list[str]:
    """Names used as variables, in order of first use."""
    found = sorted((n.lineno, n.col_offset, n.id) for n in ast.walk(tree)
                   if isinstance(n, ast.Name) and n.id not in FUNCTIONS)
    return list(dict.fromkeys(name for _, _, name in found))


def evaluate(tree: ast.expr, env: dict):
    """Evaluate a checked expression with Values (or floats) for its variables."""
    stack: list = []
    todo: list = [(tree, False)]
    while todo:  # iterative post-order walk, so deep expressions cannot hit the recursion limit
        node, ready = todo.pop()
        if isinstance(node, ast.Constant):
            stack.append(float(node.value))
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
            stack.append(FUNCTIONS[node.func.id](*args))
    return stack[0]


def parse_assignments(items: Sequence[str], tree: ast.expr) -> dict[str, float]:
    """`x=2 w=-3` into {'x': 2.0, 'w': -3.0}, checking them against the expression's names."""
    values = {}
    for item in items:
        name, sep, number = item.partition("=")
        if not sep or not name.isidentifier():
            raise ExpressionError(f"expected name=value, got {item!r}")
        try:
            values[name] = float(number)
        except ValueError:
            raise ExpressionError(f"{name}: {number!r} is not a number") from None
        if not math.isfinite(values[name]):
            raise ExpressionError(f"{name}: value must be finite, got {number}")
    needed = variables_in(tree)
    missing = [n for n in needed if n not in values]
    if missing:
        raise ExpressionError(f"no value given for {', '.join(missing)} (add e.g. {missing[0]}=1.0)")
    unused = [n for n in values if n not in needed]
    if unused:
        raise ExpressionError(f"{', '.join(unused)} not used in the expression")
    return {n: values[n] for n in needed}


def build_expression(text: str, assignments: Sequence[str]) -> tuple[ast.expr, dict[str, float]]:
    """Parse `text` and the `name=value` assignments for its variables."""
    tree = parse_expression(text)
    values = parse_assignments(assignments, tree)
    return tree, values
