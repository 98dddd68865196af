"""Builder, model layout, input validation and mesh sampling of the MPM solver."""

from pathlib import Path

import numpy as np
import pytest

from diffsim.autodiff import Rollout, SimulationError
from diffsim.solvers.mpm import MPMBuilder, SolverMPM

ROOT = Path(__file__).resolve().parents[2]


def test_model_layout_and_parameters():
    b = MPMBuilder(dim=2, particle_spacing=0.02)
    act = b.add_actuator_group(direction=[1.0, 1.0], strength=500.0)
    b.add_box([0.3, 0.3], [0.1, 0.06], material="snow", density=400, hardening=7.0, actuator=act)
    b.add_ball([0.6, 0.5], 0.05, material="fluid", bulk_modulus=3e4, velocity=[1.0, 0.0])
    model = b.finalize(num_envs=3)
    N = model.counts["particle"]
    assert model.kind == "mpm" and model.counts["actuator"] == 1 and model.counts["body"] == 2
    assert model.meta["materials"] == ("fluid", "snow")
    for name in ("particle_mass", "particle_volume", "youngs_modulus", "poisson_ratio", "hardening",
                 "critical_compression", "critical_stretch", "bulk_modulus"):
        assert model.param(name).shape == (3, N), name
    assert "yield_stress" not in model.params  # only the materials present
    np.testing.assert_allclose(model.get("actuator_direction")[0, 0], [2 ** -0.5, 2 ** -0.5])
    box = model.meta["bodies"][0]
    sl = slice(box["start"], box["start"] + box["count"])
    # 5 x 3 cells of 0.02 x 0.02 m, 400 kg/m^3 (per metre of thickness)
    assert box["count"] == 15
    np.testing.assert_allclose(model.get("particle_mass")[:, sl], 400 * 0.02 * 0.02)
    np.testing.assert_allclose(model.get("hardening")[:, sl], 7.0)
    assert set(model.topology["particle_actuator"][sl]) == {act}
    state = model.initial_state()
    assert set(state) == {"x", "v", "C", "F", "Jp"}
    np.testing.assert_allclose(state["F"], np.broadcast_to(np.eye(2), state["F"].shape))
    assert sorted(b.param_names()) == sorted(n for n in model.params if not n.startswith("collider"))


def test_builder_rejects_bad_input():
    b = MPMBuilder(dim=2)
    with pytest.raises(ValueError, match="yield_stress"):
        b.add_box([0.3, 0.3], [0.1, 0.1], material="corotated", yield_stress=1.0)
    with pytest.raises(KeyError, match="unknown material"):
        b.add_box([0.3, 0.3], [0.1, 0.1], material="jelly")
    with pytest.raises(ValueError, match="actuator"):
        b.add_box([0.3, 0.3], [0.1, 0.1], actuator=0)
    with pytest.raises(ValueError, match="poisson"):
        b.add_box([0.3, 0.3], [0.1, 0.1], poisson_ratio=0.5)
    with pytest.raises(ValueError, match="at least one body"):
        b.finalize()


def test_solver_rejects_invalid_states():
    b = MPMBuilder(dim=2, particle_spacing=0.05)
    b.add_box([0.4, 0.4], [0.1, 0.1])
    model = b.finalize()
    solver = SolverMPM(model, SolverMPM.Config(grid_res=16), window=2)
    state = model.initial_state()
    with pytest.raises(ValueError, match="det > 0"):
        solver.write_frame(0, {**state, "F": np.zeros_like(state["F"])})
    with pytest.raises(ValueError, match="inside the grid"):
        solver.write_frame(0, {**state, "x": state["x"] + 0.6})
    with pytest.raises(ValueError, match="boundary"):
        SolverMPM(model, SolverMPM.Config(grid_res=16, boundary="bouncy"))
    assert solver.max_stable_dt() == pytest.approx(0.5 * (1 / 16) / np.sqrt(1e5 * 0.7 / (1.3 * 0.4) / 1000))


def test_unstable_rollout_names_the_step_and_quantity():
    """A step 200x past the CFL limit: the forward pass stops at the first checkpoint after
    the blow-up with the step and the quantity (an inverted F or a particle off the grid),
    instead of handing an unphysical state to the backward pass."""
    b = MPMBuilder(dim=2, particle_spacing=0.05)
    b.add_box([0.4, 0.4], [0.1, 0.1], velocity=[0.0, -3.0])
    model = b.finalize()
    solver = SolverMPM(model, SolverMPM.Config(grid_res=16), window=2)
    rollout = Rollout(solver, 8, 200 * solver.max_stable_dt(), segment=2)
    with pytest.raises(SimulationError, match="blew up at step [2468]: '(F|x)'") as err:
        rollout.forward(model.initial_state())
    assert err.value.quantity in ("F", "x")


def test_mesh_body_fills_the_mesh():
    b = MPMBuilder(dim=3, particle_spacing=0.02)
    b.add_mesh(ROOT / "assets" / "mpm" / "blob.obj", position=[0.5, 0.5, 0.5], scale=0.3, density=500)
    model = b.finalize()
    # sum of particle volumes ~ mesh volume (0.28498 m^3 at scale 1, scaled by 0.3^3)
    V = model.get("particle_volume").sum()
    assert V == pytest.approx(0.28499 * 0.3 ** 3, rel=0.08)
    x = model.initial_state()["x"][0]
    assert np.all(np.abs(x - 0.5) < 0.15 + 1e-9)
