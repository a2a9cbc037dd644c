"""pytest plugin (entry point `pytest11`): gradient-checking fixtures and a tolerance marker.

    def test_my_op(gradcheck):
        gradcheck(lambda x, y: (x * y).tanh(), {"x": 0.3, "y": -1.2})

    pytestmark = pytest.mark.gradcheck_tolerance(atol=1e-7, rtol=1e-5)   # a whole module
"""
from __future__ import annotations

import pytest

from microgradnn import testing

MARKER = "gradcheck_tolerance"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(atol=None, rtol=None, eps=None): tolerances for the "
                                       "gradcheck and compare_with_torch fixtures in this test or module")


def _tolerances(request) -> dict:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return {}
    unknown = set(marker.kwargs) - {"atol", "rtol", "eps"}
    if marker.args or unknown:
        raise pytest.UsageError(f"{MARKER} takes only atol=, rtol=, eps= keywords, got {marker.args} {sorted(unknown)}")
    return dict(marker.kwargs)


@pytest.fixture
def gradcheck(request):
    """Check f's gradients at inputs by finite differences; fail with the table if any differs."""
    marked = _tolerances(request)

    def check(f, inputs, **tolerances):
        return testing.assert_gradients_close(f, inputs, **(marked | tolerances))
    return check


@pytest.fixture
def compare_with_torch(request):
    """Check f's output and gradients against float64 PyTorch; skip the test if torch is missing."""
    pytest.importorskip("torch", reason="compare_with_torch needs PyTorch: pip install torch")
    marked = {k: v for k, v in _tolerances(request).items() if k != "eps"}

    def check(f, inputs, **tolerances):
        return testing.assert_report(testing.compare_with_torch(f, inputs, **(marked | tolerances)))
    return check
