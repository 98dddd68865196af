"""Finite-difference checks of every FEM gradient path, for each integrator (float64).

Each parameter group (material, density, damping, active stress and fibres, gravity,
ground, initial state, muscle activation, kinematic targets, nodal loads, tractions) is
checked along one random direction with :func:`diffsim.autodiff.gradcheck.gradcheck` on
tiny meshes (6 tetrahedra; 4 triangles) with every input switched on at once, through a
multi-step :class:`~diffsim.autodiff.Rollout` with substeps. The explicit path is
differentiated by Taichi's autodiff, the implicit and quasi-static paths by their adjoints.
"""

import numpy as np
import pytest

from diffsim.autodiff.gradcheck import format_table, gradcheck
from diffsim.solvers.fem import FEMConfig, SolverFEM

from .fem_testlib import directional, make_inputs, rollout_loss, tiny_scene

GROUND_EXPLICIT = ("ground_height", "ground_stiffness", "ground_damping", "ground_friction")
GROUND_IMPLICIT = ("ground_height", "ground_stiffness")  # frictionless, undamped penalty

CASES = [
    # integrator, dim, material, steps, substeps, dt
    ("explicit", 3, "stable_neo_hookean", 4, 2, 2e-3),
    ("explicit", 2, "corotated", 4, 2, 2e-3),
    ("implicit", 3, "stable_neo_hookean", 2, 2, 1e-2),
    ("quasi_static", 2, "neo_hookean", 2, 1, 1.0),
]
# The host tangents and parameter derivatives of every material are checked against finite
# differences in test_constitutive.py; the cases above cover each integrator and dimension.


@pytest.mark.parametrize("integrator,dim,material,steps,substeps,dt", CASES,
                         ids=[f"{c[0]}-{c[1]}d-{c[2]}" for c in CASES])
def test_gradients_match_finite_differences(integrator, dim, material, steps, substeps, dt):
    model = tiny_scene(dim, material)
    solver = SolverFEM(model, FEMConfig(integrator=integrator, substeps=substeps), window=steps)
    rng = np.random.default_rng(7)
    ground = GROUND_EXPLICIT if integrator == "explicit" else GROUND_IMPLICIT
    inputs = make_inputs(model, solver, steps, rng, ground=ground)
    weights = {"x": rng.normal(size=(steps + 1,) + inputs["x0"].shape), "v": rng.normal(size=inputs["v0"].shape)}
    f, t0 = directional(rollout_loss(solver, steps, dt, weights), inputs, rng)
    rows = gradcheck(f, t0, steps=(3e-5,), rtol=1e-5, cos_tol=1e-8)
    print("\n" + format_table(rows))
    assert all(r.passed for r in rows), format_table(rows)
    # every group has a gradient path: none is identically zero (the quasi-static step
    # has no inertia, so density acts through gravity only and v0 not at all)
    dead = {r.name for r in rows if r.analytic_norm == 0.0}
    expected_dead = {"v0", "damping_mass", "damping_stiffness"} if integrator == "quasi_static" else set()
    assert dead == expected_dead, dead


def test_implicit_stiffness_damping_gradient_at_zero():
    """d/d(damping_stiffness) at beta = 0 (no Rayleigh stiffness damping in the scene) is
    not zero: a fit may switch it on. Once it was skipped with the term itself."""
    steps, dt = 2, 1e-2
    model = tiny_scene(3, "stable_neo_hookean", ground=False)
    model.set("damping_stiffness", 0.0)
    solver = SolverFEM(model, FEMConfig(integrator="implicit", substeps=1), window=steps)
    rng = np.random.default_rng(3)
    inputs = make_inputs(model, solver, steps, rng, params=("damping_stiffness",))
    inputs["damping_stiffness"] = np.zeros_like(inputs["damping_stiffness"])
    weights = {"x": rng.normal(size=(steps + 1,) + inputs["x0"].shape), "v": rng.normal(size=inputs["v0"].shape)}
    full = rollout_loss(solver, steps, dt, weights)

    def f(sub):
        loss, grads = full({**inputs, **sub})
        return loss, {"damping_stiffness": grads["damping_stiffness"]}
    rows = gradcheck(f, {"damping_stiffness": inputs["damping_stiffness"]}, steps=(1e-4, 1e-5), rtol=1e-5)
    print("\n" + format_table(rows))
    assert rows[0].passed and rows[0].analytic_norm > 0, format_table(rows)
