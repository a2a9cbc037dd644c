"""Checking gradients in your own tests, with the pytest fixtures microgradnn installs.

Run: python demos/07_gradcheck_in_a_test.py   (runs pytest on this file)
"""
import pytest

import microgradnn as mg

# A new op, defined once: forward on floats, derivative written with engine functions.
swish = mg.define_op("swish", lambda x: x * mg.sigmoid(x),
                     lambda x, out: mg.sigmoid(x) * (1 + x * (1 - mg.sigmoid(x))))


def test_swish_gradient(gradcheck):
    gradcheck(swish, [0.7])
    gradcheck(lambda x, y: swish(x * y).tanh(), {"x": -0.4, "y": 1.5})


def test_swish_second_derivative():
    assert mg.testing.gradgradcheck(swish, [0.7])


def test_neuron_against_torch(compare_with_torch):
    compare_with_torch(lambda w, x, b: (w * x + b).tanh() * (w - x).sigmoid(), [0.3, -1.2, 0.5])


def test_model_gradients():
    model = mg.MLP(2, [4, 1], "tanh", seed=0)
    X, y = mg.data.make_moons(8, seed=0)
    assert mg.testing.check_module_gradients(model, mg.losses.hinge, X, y * 2 - 1)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
