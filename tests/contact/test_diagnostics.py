"""GradientMonitor and SimulationError on contact rollouts.

* per-step norms: every frame 0..T gets dLoss/d(state) norms that equal those of a fresh
  rollout restarted from that frame (the definition), across checkpoint segments, with
  loss terms on segment boundaries;
* NaN origin: a blow-up in the forward pass (a huge contact stiffness) is reported at the
  first non-finite step with the quantity's name, and a NaN entering the backward pass (a
  loss ``sqrt(y_t - c)`` with ``y_t < c`` on some frames) at the last such frame;
* clipping: per-step state gradients never exceed the clip norm, where without clipping
  they grow geometrically.
"""

import numpy as np
import pytest

from diffsim.autodiff import GradientMonitor, Rollout, SimulationError
from diffsim.autodiff.diagnostics import GradientError, check_finite

from ._zoo import DT


@pytest.fixture
def lab(plane_lab):
    model, solver = plane_lab
    params = {n: model.get(n) for n in model.params}
    yield model, solver
    for n, v in params.items():
        model.set(n, v)


def _drop_state(B, rng):
    x = np.zeros((B, 1, 2))
    x[:, 0, 0] = rng.uniform(-1, 1, B)
    x[:, 0, 1] = rng.uniform(0.002, 0.02, B)
    v = np.zeros((B, 1, 2))
    v[:, 0, 0] = rng.uniform(-0.5, 0.5, B)
    return {"x": x, "v": v}


def test_monitor_norms_match_restarted_rollouts(lab):
    model, solver = lab
    rng = np.random.default_rng(0)
    B, T = model.num_envs, 30
    model.set("collider_smoothing", 1e-3)
    initial = _drop_state(B, rng)
    cot = {n: np.zeros((T + 1, B, 1, 2)) for n in ("x", "v")}
    for f in (13, 14, T):  # 14 is a segment boundary: its direct term must be counted once
        cot["x"][f] = rng.normal(size=(B, 1, 2))
        cot["v"][f] = rng.normal(size=(B, 1, 2))
    monitor = GradientMonitor()
    rollout = Rollout(solver, T, DT, record=("x", "v"), segment=7, diagnostics=monitor)
    out = rollout.forward(initial)
    grads = rollout.backward(cot)
    assert sorted(monitor.norms["x"]) == list(range(T + 1))
    assert monitor.clipped_steps == 0 and monitor.clipped_norms == monitor.norms
    for n in ("x", "v"):
        assert monitor.norms[n][T] == pytest.approx(np.linalg.norm(cot[n][T]))
        assert monitor.norms[n][0] == pytest.approx(np.linalg.norm(grads.initial[n]), rel=1e-12)
    for f in (7, 13, 14, 20):  # the definition: restart from frame f, same loss terms
        restart = Rollout(solver, T - f, DT, record=("x", "v"))
        restart.forward({n: out[n][f] for n in ("x", "v")})
        g = restart.backward({n: c[f:] for n, c in cot.items()})
        for n in ("x", "v"):
            assert monitor.norms[n][f] == pytest.approx(np.linalg.norm(g.initial[n]), rel=1e-10)
    assert monitor.summary()["x"]["at_initial"] == monitor.norms["x"][0]


def test_forward_blowup_reports_first_step_and_quantity(lab):
    # A particle trapped between two planes 5 cm apart with a huge stiffness: each bounce
    # returns it faster, by ~(omega dt)^2 = 2e4 (explicit penalty contact needs omega dt < 2),
    # until the state overflows.
    model, solver = lab
    B, T = model.num_envs, 300
    model.set("collider_stiffness", 1e9)
    initial = _drop_state(B, np.random.default_rng(1))
    pos = np.repeat(solver.default_controls("collider_position")[None], T, 0)
    pos[:, :, 1, 1] = 0.05  # lower the ceiling
    controls = {"collider_position": pos}
    with pytest.raises(SimulationError) as plain:
        Rollout(solver, T, DT).forward(initial, controls=controls)
    with pytest.raises(SimulationError) as monitored:
        Rollout(solver, T, DT, segment=16, diagnostics=GradientMonitor()).forward(initial, controls=controls)
    step = monitored.value.step
    assert plain.value.step == step and 0 < step < T
    assert monitored.value.quantity in ("x", "v") and "softer contact" in str(monitored.value)
    # one step earlier everything is finite
    Rollout(solver, step - 1, DT).forward(initial, controls={"collider_position": pos[:step - 1]})


def test_nan_gradient_origin_is_found(lab):
    model, solver = lab
    B, T = model.num_envs, 120
    initial = {"x": np.tile([0.0, 0.01], (B, 1, 1)), "v": np.zeros((B, 1, 2))}
    rollout = Rollout(solver, T, DT, record=("x",), diagnostics=GradientMonitor())
    y = rollout.forward(initial)["x"][:, 0, 0, 1]
    c = 0.5 * y.min()  # L = sum_t sqrt(y_t - c): NaN while deeper than half the impact
    assert c < 0
    cot = np.zeros((T + 1, B, 1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        cot[:, 0, 0, 1] = 0.5 / np.sqrt(y - c)
    below = np.flatnonzero(y < c)
    assert 0 < below.max() < T  # it bounced back: the NaN frames end before T
    with pytest.raises(GradientError) as err:
        rollout.backward({"x": cot})
    assert err.value.step == below.max() and err.value.quantity == "x"
    quiet = GradientMonitor(raise_on_nonfinite=False)
    rollout.diagnostics = quiet
    rollout.backward({"x": cot})
    assert not np.isfinite(quiet.norms["x"][below.max()])
    assert all(np.isfinite(quiet.norms["x"][f]) for f in range(below.max() + 1, T + 1))


def test_clipping_bounds_every_step(lab):
    model, solver = lab
    B, T, dt = model.num_envs, 100, 1e-2
    model.set("drag", -4.0)  # anti-damping: dx_T/dv_t grows like exp(4 (T - t) dt)
    initial = {"x": np.tile([0.0, 100.0], (B, 1, 1)), "v": np.zeros((B, 1, 2))}
    w = np.random.default_rng(2).normal(size=(B, 1, 2))
    cot = np.zeros((T + 1, B, 1, 2))
    cot[T] = w

    def run(monitor):
        r = Rollout(solver, T, dt, record=("x",), segment=40, diagnostics=monitor)
        r.forward(initial)
        return r.backward({"x": cot})

    free = GradientMonitor()
    run(free)
    clip = 0.02 * np.linalg.norm(w)
    assert max(free.norms["v"].values()) > 100 * clip
    clipped = GradientMonitor(clip=clip)
    grads = run(clipped)
    assert clipped.clipped_steps > 0
    for n in ("x", "v"):
        assert max(clipped.clipped_norms[n].values()) <= clip * (1 + 1e-12)
        # what one step makes of a clipped gradient: at most ~exp(4 dt) more (frame T holds
        # the loss's own cotangent, which is clipped before it flows back)
        assert max(v for f, v in clipped.norms[n].items() if f < T) <= 1.1 * clip
        assert np.linalg.norm(grads.initial[n]) <= clip * (1 + 1e-12)


def test_check_finite_frame_axis():
    a = np.zeros((5, 2, 3))  # a scalar state over 5 frames
    a[3, 1, 2] = np.nan
    with pytest.raises(SimulationError) as err:
        check_finite({"J": a}, 10, stacked=True)
    assert err.value.step == 13 and err.value.quantity == "J"
    with pytest.raises(SimulationError) as err:
        check_finite({"x": a[3]}, 10, stacked=False)
    assert err.value.step == 10
