import pytest

import microgradnn as mg
from microgradnn import expression


def test_long_expressions_evaluate_or_fail_cleanly():
    tree = expression.parse_expression(" + ".join(["x"] * 500))
    assert expression.evaluate(tree, {"x": 1.0}) == 500.0
    with pytest.raises(expression.ExpressionError, match="nested too deeply"):
        expression.parse_expression(" + ".join(["x"] * 100_000))


def test_the_infix_operators_are_the_op_tables_infix_rows():
    assert {op.name for op in expression.BINARY.values()} == {op.name for op in mg.engine.ops() if op.infix} \
        == {"+", "-", "*", "/", "**"}
    tree = expression.parse_expression("x * w + b ** 2 - 1 / x")
    assert expression.evaluate(tree, {"x": 2.0, "w": -3.0, "b": 0.5}) == 2.0 * -3.0 + 0.5 ** 2 - 1 / 2.0


@pytest.mark.parametrize("text, message", [("x @ w", "not allowed"), ("x // 2", "not allowed"),
                                           ("exp", "exp is a function"), ("tanh(x, 2)", "takes 1 positional")])
def test_what_the_language_refuses(text, message):
    with pytest.raises(expression.ExpressionError, match=message):
        expression.parse_expression(text)
