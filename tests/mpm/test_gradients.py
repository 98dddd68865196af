"""Finite-difference checks (float64) of every MPM gradient path.

Loss: ``L = sum W * x_T`` (a fixed random weighting of the final positions), through a
checkpointed :class:`~diffsim.autodiff.Rollout`. Every input group is perturbed in turn
and compared with central differences (:func:`diffsim.autodiff.gradcheck.gradcheck`):
the initial state (x, v, C, F, Jp), actuation, every per-particle material parameter, the
muscle strength, the ground, wall and collider friction, and gravity.
"""

import numpy as np
import pytest

from diffsim.autodiff import Rollout
from diffsim.autodiff.gradcheck import format_table, gradcheck

from ._scenes import DT, STEPS, mixed_initial_state

PARAMS = ("youngs_modulus", "poisson_ratio", "particle_mass", "particle_volume", "yield_stress",
          "friction_angle", "cohesion", "hardening", "critical_compression", "critical_stretch", "bulk_modulus",
          "actuator_strength", "actuator_direction", "ground_friction", "wall_friction",
          "collider_friction", "gravity")
STATE = ("x", "v", "C", "F", "Jp")


def make_loss(model, solver, segment=None, params=PARAMS):
    rollout = Rollout(solver, STEPS, DT, record=("x",), segment=segment)
    init = mixed_initial_state(model)
    W = np.random.default_rng(0).normal(size=init["x"].shape)

    def loss_and_grad(inp):
        state = dict(init, **{k: inp[k] for k in STATE})
        for name in params:
            model.set(name, inp[name])
        out = rollout.forward(state, actions=inp["act"])
        cot = np.zeros_like(out["x"])
        cot[-1] = W
        g = rollout.backward({"x": cot})
        grads = {k: g.initial[k] for k in STATE}
        grads["act"] = g.actions
        grads.update({n: g.params[n] for n in params})
        return float((W * out["x"][-1]).sum()), grads

    acts = 0.5 * np.random.default_rng(1).normal(size=(STEPS, model.num_envs, model.counts["actuator"]))
    inputs = {k: init[k] for k in STATE}
    inputs["act"] = acts
    inputs.update({n: model.get(n) for n in params})
    return loss_and_grad, inputs


def test_every_parameter_group_matches_central_differences(mixed_scene):
    model, solver = mixed_scene
    f, inputs = make_loss(model, solver)
    try:
        rows = gradcheck(f, inputs, steps=(1e-5, 1e-6), max_coords=2, rtol=1e-4)
    finally:
        for name in PARAMS:
            model.set(name, inputs[name])
    print(format_table(rows))
    for r in rows:
        assert r.passed, format_table(rows)
        # every group must actually be exercised by the scene (a zero gradient proves nothing)
        assert r.analytic_norm > 0, f"{r.name}: zero gradient, the scene does not exercise it"


def test_checkpointed_gradients_equal_the_full_tape(mixed_scene):
    model, solver = mixed_scene
    full, inputs = make_loss(model, solver, segment=STEPS)
    ckpt, _ = make_loss(model, solver, segment=5)
    l_full, g_full = full(inputs)
    l_ckpt, g_ckpt = ckpt(inputs)
    assert l_full == pytest.approx(l_ckpt, rel=1e-12)
    for name in g_full:
        np.testing.assert_allclose(g_ckpt[name], g_full[name], rtol=1e-9, atol=1e-12 * np.abs(g_full[name]).max(),
                                   err_msg=name)


def test_repeated_backward_gives_the_same_gradients(mixed_scene):
    # Grid adjoints are scratch: a second backward must not see leftovers of the first.
    model, solver = mixed_scene
    f, inputs = make_loss(model, solver)
    _, g1 = f(inputs)
    _, g2 = f(inputs)
    for name in g1:
        np.testing.assert_array_equal(g1[name], g2[name], err_msg=name)


def test_environments_are_independent(mixed_scene):
    model, solver = mixed_scene
    rollout = Rollout(solver, 4, DT, record=("x",))
    init = model.initial_state()
    base = rollout.forward(init)["x"]
    E = model.get("youngs_modulus")
    try:
        model.set("youngs_modulus", E * np.array([[2.0], [1.0]]))
        changed = rollout.forward(init)["x"]
    finally:
        model.set("youngs_modulus", E)
    np.testing.assert_array_equal(changed[:, 1], base[:, 1])
    assert np.abs(changed[:, 0] - base[:, 0]).max() > 0
