"""Contact smoothing makes the impact differentiable; sharp contact does not.

A particle is dropped from heights ``h`` on a 1 mm grid onto a plane, and the loss is its
height after 0.2 s (after the first impact). With sharp contact (``smoothing = 0``) the
force switches on between two time steps, so the final height jumps as ``h`` moves the
first contact step, and the per-sample gradient dL/dh, while finite, is blind to those
jumps: it disagrees with the slope of the loss curve. With ``smoothing = 5 mm`` the loss
is smooth in ``h``: the gradient is finite, varies by small steps along the sweep, and
equals the slope of the loss curve (central differences between samples).
"""

import numpy as np

from diffsim.autodiff import Rollout

from ._zoo import DT


def test_drop_height_gradient_is_continuous_with_smoothing(plane_lab):
    model, solver = plane_lab
    B, T, n = model.num_envs, 200, 20
    heights = np.linspace(0.10, 0.12, n)
    eps = np.zeros(B)
    eps[n:2 * n] = 5e-3
    model.set("collider_smoothing", eps[:, None])
    x0 = np.zeros((B, 1, 2))
    x0[:, 0, 1] = 0.1
    x0[:2 * n, 0, 1] = np.r_[heights, heights]
    try:
        rollout = Rollout(solver, T, DT, record=("x",))
        out = rollout.forward({"x": x0})
        cot = np.zeros_like(out["x"])
        cot[-1, :, 0, 1] = 1.0  # L = final height, per environment
        grad = rollout.backward({"x": cot}).initial["x"][:, 0, 1]
    finally:
        model.set("collider_smoothing", 0.0)
    final = out["x"][-1, :, 0, 1]
    dh = heights[1] - heights[0]
    slopes = {}
    for name, sl in (("sharp", slice(0, n)), ("smooth", slice(n, 2 * n))):
        g, y = grad[sl], final[sl]
        assert np.all(np.isfinite(g))
        slopes[name] = (g, (y[2:] - y[:-2]) / (2 * dh))
    g, slope = slopes["smooth"]
    scale = np.abs(g).max()
    assert np.abs(np.diff(g)).max() < 0.05 * scale      # continuous: small steps along the sweep
    assert np.abs(slope - g[1:-1]).max() < 1e-3 * scale  # and the true derivative
    g, slope = slopes["sharp"]
    assert np.abs(slope - g[1:-1]).max() > 0.2 * np.abs(g).max()  # the documented limitation
