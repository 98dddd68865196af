"""The Python side of a scene: load_scene, Scene attributes, rollouts, free parameters."""

import numpy as np
import pytest

from diffsim.core import backend
from diffsim.scene import FreeParam, Scene, load_scene, plan_scene

from ._helpers import WALKER

backend.init(arch="cpu", precision="float64")


@pytest.fixture(scope="module")
def walker() -> Scene:
    return load_scene(WALKER, num_envs=2, window=8)


def test_scene_attributes(walker):
    assert walker.name == "mass_spring_walker" and walker.dim == 2
    assert walker.num_envs == 2 and walker.spec["solver"]["num_envs"] == 2
    assert walker.dt == 0.004 and walker.steps == 682
    assert walker.counts == {"particle": 20, "spring": 46, "actuator": 8}
    assert walker.solver.window == 8
    x, v = walker.initial_state["x"], walker.initial_state["v"]
    assert x.shape == v.shape == (2, 20, 2)
    assert np.isclose(x[..., 1].min(), 0.1)  # the robot stands on the ground
    assert walker.model.get("spring_stiffness").shape == (2, 46)
    assert np.allclose(walker.model.get("ground_friction"), 1.0)
    assert walker.colliders() == [{"type": "plane", "point": [0.0, 0.1], "normal": [0.0, 1.0]}]
    assert walker.drawing()["lines"].shape == (46, 2)


def test_static_parameter_names_match_the_model(walker):
    plan = plan_scene(WALKER)
    assert set(plan.kind.param_names(plan.builder)) == set(walker.model.params)


def test_drive(walker):
    u = walker.actions(50)
    assert u.shape == (50, 2, 8) and np.abs(u).max() <= 1.0
    assert np.allclose(u[:, 0], u[:, 1])
    t = 10 * walker.dt
    assert np.isclose(u[10, 0, 3], np.sin(2 * np.pi * 2.0 * t + 3 * 0.785398))


def test_rollout_forward(walker):
    out = walker.rollout(12)  # longer than the window: checkpointed segments
    assert out["x"].shape == (13, 2, 20, 2) and out["v"].shape == (13, 2, 20, 2)
    assert np.allclose(out["x"][0], walker.initial_state["x"])
    assert np.all(np.isfinite(out["x"]))
    assert np.allclose(out["x"][:, 0], out["x"][:, 1])  # identical environments


def test_make_rollout_gradients(walker):
    r = walker.make_rollout(6, record=("x",))
    out = r.forward(walker.initial_state, walker.actions(6))
    cot = np.zeros_like(out["x"])
    cot[-1, :, :, 0] = 1.0
    g = r.backward({"x": cot})
    assert g.initial["x"].shape == (2, 20, 2) and g.actions.shape == (6, 2, 8)
    assert g.params["spring_stiffness"].shape == (2, 46)


def test_free_params(walker):
    stiff, friction = walker.free_params
    assert isinstance(stiff, FreeParam)
    assert (stiff.name, stiff.scale, stiff.units, stiff.shape) == ("spring_stiffness", "log", "N/m", (2, 46))
    assert friction.scale == "linear" and friction.shape == (2,)
    assert np.isclose(stiff.to_unit(1e4), 0.5) and np.isclose(stiff.from_unit(0.5), 1e4)
    assert np.isclose(friction.from_unit(friction.to_unit(0.7)), 0.7)
    assert stiff.clip(1e9) == 1e5
    values = walker.free_values()
    assert set(values) == {"spring_stiffness", "ground_friction"}
    walker.set_free({"ground_friction": [0.5, 1.5]})
    assert np.allclose(walker.model.get("ground_friction"), [0.5, 1.5])
    with pytest.raises(ValueError, match="outside"):
        walker.set_free({"ground_friction": 5.0})
    with pytest.raises(KeyError, match="not a free parameter"):
        walker.set_free({"drag": 1.0})
    walker.set_free({"ground_friction": 1.0})
