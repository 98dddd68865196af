"""Rollout(truncate=True): no gradient crosses a segment boundary; within the last segment
the gradient equals the untruncated one (float64)."""

import numpy as np

from diffsim.autodiff import Rollout
from diffsim.solvers import SolverMassSpring
from tests.helpers import tiny_walker


def test_truncated_backward_cuts_at_segment_boundaries():
    model = tiny_walker(1)
    solver = SolverMassSpring(model, window=10)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (30, 1, model.counts["actuator"]))
    init = model.initial_state()
    full = Rollout(solver, 30, 0.005, segment=10)
    cut = Rollout(solver, 30, 0.005, segment=10, truncate=True)
    grads = []
    for r in (full, cut):
        out = r.forward(init, actions)
        gx = np.zeros_like(out["x"])
        gx[-1] = rng.normal(size=gx[-1].shape) if not grads else grads[0][1]
        grads.append((r.backward({"x": gx}), gx[-1]))
    g_full, g_cut = grads[0][0], grads[1][0]
    # the loss sits in the last segment (steps 20..29): identical there, zero before
    np.testing.assert_allclose(g_cut.actions[20:], g_full.actions[20:], rtol=1e-12, atol=1e-14)
    assert np.abs(g_full.actions[:20]).max() > 0
    assert np.all(g_cut.actions[:20] == 0)
    assert np.all(g_cut.initial["x"] == 0) and np.abs(g_full.initial["x"]).max() > 0
