"""The gradient checker itself: it passes right gradients and fails wrong ones."""

import numpy as np

from diffsim.autodiff.gradcheck import gradcheck


def _stiff(scale_grad=1.0):
    # L = sum exp(k x): curvature k^2 L makes plain central differences at a coarse step
    # inaccurate (error ~ k^2 h^2 / 6), which Richardson extrapolation removes.
    k = 40.0

    def f(inp):
        x = inp["x"]
        return float(np.sum(np.exp(k * x))), {"x": scale_grad * k * np.exp(k * x)}
    return f


def test_right_gradient_passes_with_coarse_steps():
    x = {"x": np.linspace(-0.05, 0.05, 5)}
    # relative steps 1e-1 and 1e-2 of |x| ~ 0.035: central differences alone are off by
    # 3.3e-3 and 3.3e-5 relative; the extrapolated pair by 3.3e-8.
    rows = gradcheck(_stiff(), x, steps=(1e-1, 1e-2), rtol=1e-6)
    assert rows[0].passed, rows


def test_wrong_gradient_fails():
    x = {"x": np.linspace(-0.05, 0.05, 5)}
    rows = gradcheck(_stiff(1.002), x)
    assert not rows[0].passed and rows[0].rel_error > 1e-3
