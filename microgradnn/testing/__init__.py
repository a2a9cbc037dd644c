"""Testing gradients: finite-difference and PyTorch checks, property-based strategies
(`microgradnn.testing.strategies`, needs hypothesis) and mutation testing of derivative rules."""
from microgradnn.testing.checks import (
    Culprit, Derivative, GradReport, GradRow, assert_gradients_close, assert_report, blame, check_module_gradients,
    compare_with_torch, derivative, directional_check, gradcheck, gradgradcheck,
)

__all__ = ["gradcheck", "assert_gradients_close", "assert_report", "gradgradcheck", "compare_with_torch",
           "check_module_gradients", "directional_check", "derivative", "blame", "GradReport", "GradRow",
           "Derivative", "Culprit"]
