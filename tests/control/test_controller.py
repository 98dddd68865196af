"""The controller's hand-written adjoint against central differences, and its torch mirror.

Float64 (tests/conftest.py). Every input group is on: clock sines and phase pairs,
proprioception of a subset of sensors with relative velocities, centre velocity and height,
a per-step command schedule, sine activations, and the effort regulariser.
"""

import numpy as np
import pytest

from diffsim.autodiff import Rollout
from diffsim.autodiff.gradcheck import format_table, gradcheck
from diffsim.control import ControllerSineMLP
from diffsim.solvers import SolverMassSpring
from tests.helpers import tiny_walker

STEPS, DT = 24, 0.005


def _controller(solver, **kw):
    args = dict(hidden=6, n_sin=3, dt=DT, commands=2, seed=3, activation="sin", harmonics=2,
                relative_velocity=True, center_inputs=True, center_scale=2.0, height_ref=0.05,
                sensors=[0, 2, 3, 5], command_steps=STEPS, command_scale=[4.0, 0.5])
    args.update(kw)
    return ControllerSineMLP(solver, **args)


@pytest.fixture(scope="module")
def setup():
    model = tiny_walker(2)
    solver = SolverMassSpring(model, window=STEPS)
    ctrl = _controller(solver)
    rng = np.random.default_rng(0)
    schedule = rng.uniform(-1, 1, (STEPS, 2, 2))
    schedule[STEPS // 2:] = schedule[STEPS // 2]  # a switch mid-rollout
    ctrl.set_commands(schedule)
    weights = rng.normal(size=(2, model.counts["particle"], 2))
    return model, solver, ctrl, schedule, weights


def test_controller_adjoint_matches_central_differences(setup):
    model, solver, ctrl, schedule, weights = setup
    rollout = Rollout(solver, STEPS, DT, record=("x", "v"), controller=ctrl)
    ctrl.set_effort(0.3, STEPS)
    init = model.initial_state()
    init["v"] = init["v"] + 0.2

    def loss_and_grad(inp):
        ctrl.set_params({k: inp[k] for k in ("W1", "b1", "W2", "b2")})
        ctrl.set_commands(inp["commands"])
        out = rollout.forward({"x": inp["x0"], "v": init["v"]})
        loss = float(np.sum(out["x"][-1] * weights) + np.sum(out["v"][STEPS // 2] * weights)
                     + 0.3 * np.mean(out["actions"] ** 2))
        gx, gv = np.zeros_like(out["x"]), np.zeros_like(out["v"])
        gx[-1], gv[STEPS // 2] = weights, weights
        g = rollout.backward({"x": gx, "v": gv})
        return loss, {**g.controller, "commands": ctrl.command_grads(), "x0": g.initial["x"]}

    inputs = {**ctrl.get_params(), "commands": schedule, "x0": init["x"]}
    rows = gradcheck(loss_and_grad, inputs, steps=(1e-5, 1e-6), max_coords=8)
    print(format_table(rows))
    assert all(r.passed for r in rows), format_table(rows)
    ctrl.set_effort(0.0, STEPS)


def test_host_observation_matches_kernel_inputs(setup):
    model, solver, ctrl, schedule, _ = setup
    rollout = Rollout(solver, 5, DT, record=("x", "v"), controller=ctrl)
    out = rollout.forward(model.initial_state())
    for t in range(5):
        host = ctrl.input_vector(out["x"][t], out["v"][t], t)
        np.testing.assert_allclose(ctrl.inputs.to_numpy()[t], host, rtol=1e-12, atol=1e-12)


def test_torch_mirror_gives_the_same_actions(setup):
    torch = pytest.importorskip("torch")
    from diffsim.control.torch_policy import TorchSineMLP, from_controller, to_controller

    model, solver, ctrl, schedule, _ = setup
    rollout = Rollout(solver, 8, DT, record=("x", "v"), controller=ctrl)
    out = rollout.forward(model.initial_state())
    policy = from_controller(ctrl)
    for t in range(8):
        a = policy.act(torch.tensor(out["x"][t]), torch.tensor(out["v"][t]), t,
                       torch.tensor(schedule[t])).detach().numpy()
        np.testing.assert_allclose(a, out["actions"][t], rtol=1e-12, atol=1e-12)
    # weights round-trip exactly through a state_dict
    copy = TorchSineMLP(ctrl.config())
    copy.load_state_dict(policy.state_dict())
    for k, v in copy.numpy_params().items():
        np.testing.assert_array_equal(v, ctrl.get_params()[k])
    other = _controller(solver, seed=9)
    to_controller(copy, other)
    for k, v in other.get_params().items():
        np.testing.assert_array_equal(v, ctrl.get_params()[k])
