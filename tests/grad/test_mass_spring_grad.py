"""Finite-difference checks (float64) of every mass-spring gradient path, through contact.

Each check compares the rollout's adjoint with central differences of the loss
L = sum(w * x_T) for random weights w (relative error and cosine, several step sizes).
"""

import numpy as np
import pytest

from diffsim.autodiff import Rollout
from diffsim.autodiff.gradcheck import format_table, gradcheck
from diffsim.control import ControllerSineMLP
from diffsim.solvers import SolverMassSpring
from tests.helpers import rollout_loss_fn, tiny_walker

STEPS, DT = 40, 0.005
CHECK = dict(steps=(1e-4, 1e-5, 1e-6), max_coords=8)  # float64: one of these is always clean
GROUPS = [
    ["x0", "v0"],
    ["actions"],
    ["particle_mass", "drag", "gravity"],
    ["spring_stiffness", "spring_damping", "spring_rest_length", "spring_actuation"],
    ["ground_height", "ground_stiffness", "ground_damping", "ground_friction"],
    ["ground_smoothing", "ground_friction_smoothing"],
]


_built: dict = {}


def _shared():
    """The default set-up, built once: a solver compiles its kernels per instance, and
    compiling dominates these checks. Parameters are reset to their built values."""
    if "default" not in _built:
        model, rollout, actions, weights = _setup()
        _built["default"] = (model, rollout, actions, weights,
                             {n: model.get(n) for n in model.params})
    model, rollout, actions, weights, values = _built["default"]
    for n, v in values.items():
        model.set(n, v)
    return model, rollout, actions, weights


def _setup(num_envs=2, segment=None, dim=2):
    model = tiny_walker(num_envs, dim=dim)
    # Different parameters per environment, so batching is exercised too.
    k = model.get("spring_stiffness")
    k[-1] *= 1.3
    model.set("spring_stiffness", k)
    solver = SolverMassSpring(model, window=segment or STEPS)
    rollout = Rollout(solver, STEPS, DT, record=("x", "v"))
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (STEPS, num_envs, model.counts["actuator"]))
    weights = rng.normal(size=(num_envs, model.counts["particle"], dim))
    return model, rollout, actions, weights


@pytest.mark.parametrize("names", GROUPS, ids=["+".join(g) for g in GROUPS])
def test_rollout_gradients_match_central_differences(names):
    model, rollout, actions, weights = _shared()
    f = rollout_loss_fn(model, rollout, weights, names, actions=actions)
    init = model.initial_state()
    inputs = {"x0": init["x"], "v0": init["v"] + 0.1, "actions": actions}
    inputs.update({n: model.get(n) for n in names if n in model.params})
    inputs = {n: inputs[n] for n in names}
    rows = gradcheck(f, inputs, **CHECK)
    print(format_table(rows))
    assert all(r.passed for r in rows), format_table(rows)
    # The contact actually happens in this scene (otherwise the ground checks prove nothing).
    out = rollout.forward(init, actions)
    assert out["x"][:, :, :, 1].min() < 0.0


STICKY_GROUPS = [["x0", "v0"], ["actions"], ["spring_stiffness", "spring_actuation", "drag"],
                 ["ground_height", "gravity"]]


@pytest.mark.parametrize("names", STICKY_GROUPS, ids=["+".join(g) for g in STICKY_GROUPS])
def test_sticky_ground_gradients_match_central_differences(names):
    """Sticky (time-of-impact) ground: the adjoint is exact within each contact state, and
    the step sizes here do not change any particle's state."""
    if "sticky" not in _built:
        model = tiny_walker(2, ground_model="sticky")
        rollout = Rollout(SolverMassSpring(model, window=STEPS), STEPS, DT, record=("x", "v"))
        _built["sticky"] = (model, rollout, {n: model.get(n) for n in model.params})
    model, rollout, values = _built["sticky"]
    for n, v in values.items():
        model.set(n, v)
    _, _, actions, weights = _shared()
    f = rollout_loss_fn(model, rollout, weights, names, actions=actions)
    init = model.initial_state()
    inputs = {"x0": init["x"], "v0": init["v"] + 0.1, "actions": actions}
    inputs.update({n: model.get(n) for n in names if n in model.params})
    rows = gradcheck(f, {n: inputs[n] for n in names}, **CHECK)
    print(format_table(rows))
    assert all(r.passed for r in rows), format_table(rows)
    out = rollout.forward(init, actions)
    on_ground = np.abs(out["x"][1:, :, :, 1]) < 1e-12
    assert on_ground.any() and out["x"][:, :, :, 1].min() > -1e-12  # contact, no penetration


def test_checkpointed_equals_full_tape():
    model, full, actions, weights = _shared()
    _, ckpt, _, _ = _setup(segment=7)
    ckpt.solver.model.set("spring_stiffness", model.get("spring_stiffness"))
    init = model.initial_state()
    grads = []
    for r in (full, ckpt):
        out = r.forward(init, actions)
        gx = np.zeros_like(out["x"])
        gx[-1] = weights
        gx[STEPS // 3] = -weights  # a cotangent inside a segment, too
        grads.append(r.backward({"x": gx}))
    a, b = grads
    for name in ("x", "v"):
        np.testing.assert_allclose(a.initial[name], b.initial[name], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.actions, b.actions, rtol=1e-12, atol=1e-12)
    for name in a.params:
        np.testing.assert_allclose(a.params[name], b.params[name], rtol=1e-12, atol=1e-12)


def test_memory_budget_sets_the_window():
    model = tiny_walker(1)
    per_slot = SolverMassSpring(model, window=1).window_bytes / 2
    solver = SolverMassSpring(model, memory_budget=int(per_slot * 11.5))
    assert solver.window == 10
    assert solver.window_bytes <= per_slot * 11.5


def test_controller_gradients_match_central_differences():
    model, _, _, weights = _setup(num_envs=2)
    solver = SolverMassSpring(model, window=30)
    ctrl = ControllerSineMLP(solver, hidden=8, n_sin=4, dt=DT, commands=1, seed=1)
    ctrl.set_commands([[0.5], [-0.5]])
    rollout = Rollout(solver, 30, DT, controller=ctrl)
    init = model.initial_state()

    def f(params):
        ctrl.set_params(params)
        out = rollout.forward(init)
        gx = np.zeros_like(out["x"])
        gx[-1] = weights
        return float(np.sum(out["x"][-1] * weights)), rollout.backward({"x": gx}).controller

    rows = gradcheck(f, ctrl.get_params(), steps=(1e-3, 1e-4, 1e-5))
    assert all(r.passed for r in rows), format_table(rows)


def test_3d_gradients():
    model, rollout, actions, weights = _setup(num_envs=1, dim=3)
    f = rollout_loss_fn(model, rollout, weights, ["x0", "actions", "spring_stiffness"], actions=actions)
    init = model.initial_state()
    rows = gradcheck(f, {"x0": init["x"], "actions": actions, "spring_stiffness": model.get("spring_stiffness")},
                     **CHECK)
    assert all(r.passed for r in rows), format_table(rows)


def test_backward_after_another_rollout_on_the_same_solver():
    """A rollout's backward must not reuse frames that another rollout has since written
    into the shared window (solver.window_version); its gradients equal a clean run's."""
    model, rollout, actions, weights = _shared()
    init = model.initial_state()
    other = Rollout(rollout.solver, STEPS, DT, record=("x", "v"))
    gx = None
    grads = []
    for interleave in (False, True):
        out = rollout.forward(init, actions)
        if interleave:  # overwrites the window with a different trajectory
            other.forward({**init, "v": init["v"] + 0.5}, -actions)
        gx = np.zeros_like(out["x"])
        gx[-1] = weights
        grads.append(rollout.backward({"x": gx}))
    clean, interleaved = grads
    np.testing.assert_allclose(interleaved.initial["x"], clean.initial["x"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(interleaved.actions, clean.actions, rtol=1e-10, atol=1e-12)
