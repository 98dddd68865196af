"""Parameter recovery through the FEM and MPM solvers (engine-made recordings, 1 % noise).

* FEM (explicit, plane strain, 2D): a 0.1 m square of 18 neo-Hookean triangles whose bottom
  edge is driven (kinematic vertices, control ``target``) along a recorded path; markers on
  the 12 free vertices. Young's modulus and Poisson's ratio, fitted as E / nu and mapped
  to the model's Lame parameters.
* MPM (MLS-MPM, 2D): a 0.16 m neo-Hookean block thrown at the floor; markers on 12 of its
  100 particles. Young's modulus (a per-particle model parameter).

Noise: 1 mm, 1 % of the 0.1 m body size. Both fit with Levenberg-Marquardt on
forward-difference Jacobians: forward rollouts only, so the test compiles no adjoint
kernels (the FEM and MPM adjoints have their own finite-difference tests; the sysid loss's
adjoint path is checked in test_recovery_mass_spring.py).
"""

import numpy as np
import pytest

from diffsim.sysid import Experiment, MarkerTerm, ParamSpec, SysIDProblem, fit, gauss_newton, map_explicit
from diffsim.sysid.synthetic import noisy_recording

SIGMA = 1e-3


def _recover(solver, dt, steps, initial, specs, truth, start, observed, controls=None, seed=0):
    n = len(initial["x"])
    mmap = map_explicit(observed, [f"p{i}" for i in observed], n)
    exp = Experiment("e", initial, steps, [], controls=controls)
    prob = SysIDProblem(solver, dt, specs, [exp])
    z_true = np.array([[s.to_unit(v) for s, v in zip(specs, truth)]])
    clean = prob.evaluate(z_true, grad=False, keep_trajectories=True).trajectories["e"]["x"]
    rec = noisy_recording(clean[:, observed], dt, mmap.names, SIGMA, np.random.default_rng(seed))
    exp.terms = [MarkerTerm(rec, mmap, dt, steps, sigma=SIGMA)]
    z0 = np.array([[s.to_unit(v) for s, v in zip(specs, start)]])
    res = fit(prob, "lm", z0=z0, max_iter=15, tol=1e-10, progress=False)
    unc = gauss_newton(prob, res.z)
    return res.values[0], unc


@pytest.mark.slow
def test_fem_youngs_modulus_and_poisson_ratio():
    from diffsim.solvers.fem import mesh as fem_mesh
    from diffsim.solvers.fem.builder import FEMBuilder
    from diffsim.solvers.fem.explicit import SolverFEMExplicit
    from diffsim.solvers.fem.solver import FEMConfig

    T, dt = 50, 0.01
    mesh = fem_mesh.rectangle((3, 3), (0.1, 0.1))
    b = FEMBuilder(dim=2, gravity=[0.0, -9.81], material="neo_hookean")
    b.add_mesh(mesh, density=1000.0, youngs_modulus=5e3, poisson_ratio=0.3)
    X = mesh.vertices
    bottom = np.nonzero(np.isclose(X[:, 1], 0.0))[0]
    b.add_kinematic(bottom)
    b.set_damping(mass=1.0, stiffness=0.0)
    solver = SolverFEMExplicit(b.finalize(1), FEMConfig(integrator="explicit", substeps=4), window=T)
    t = dt * np.arange(1, T + 1)
    path = np.stack([0.02 * np.sin(2 * np.pi * 2.0 * t), 0.01 * np.sin(2 * np.pi * 3.1 * t)], 1)
    target = X[bottom][None] + path[:, None]
    specs = [ParamSpec("youngs_modulus", 1e3, 3e4, "log"), ParamSpec("poisson_ratio", 0.05, 0.45)]
    truth = np.array([5e3, 0.3])
    free = np.setdiff1d(np.arange(len(X)), bottom)
    values, unc = _recover(solver, dt, T, {"x": X, "v": np.zeros_like(X)}, specs, truth,
                           [3e3, 0.2], free, controls={"target": target})
    rel = np.abs(values / truth - 1)
    print(f"\nFEM: E = {values[0]:.1f} +- {unc.std[0, 0]:.1f} Pa, nu = {values[1]:.4f} +- "
          f"{unc.std[0, 1]:.4f} (truth 5000, 0.3)")
    assert rel.max() < 0.02, rel
    assert np.all(np.abs(values - truth) < 4 * unc.std[0]), (values, unc.std)


@pytest.mark.slow
def test_mpm_youngs_modulus():
    from diffsim.solvers.mpm.builder import MPMBuilder
    from diffsim.solvers.mpm.solver import SolverMPM

    T, dt = 35, 0.01
    b = MPMBuilder(dim=2, gravity=[0.0, -9.81], particle_spacing=1 / 64)
    b.add_box([0.4, 0.12], [0.16, 0.16], material="neo_hookean", density=1000.0,
              youngs_modulus=2e3, poisson_ratio=0.3, velocity=[0.0, -1.0])
    model = b.finalize(1)
    solver = SolverMPM(model, SolverMPM.Config(grid_res=32, domain_size=1.0, substeps=5), window=T)
    init = {k: v[0] for k, v in model.initial_state().items()}
    n = model.counts["particle"]
    observed = np.linspace(0, n - 1, 12).astype(int)
    specs = [ParamSpec("youngs_modulus", 500.0, 2e4, "log")]
    values, unc = _recover(solver, dt, T, init, specs, np.array([2e3]), [1e3], observed)
    print(f"\nMPM: E = {values[0]:.1f} +- {unc.std[0, 0]:.1f} Pa (truth 2000)")
    assert abs(values[0] / 2e3 - 1) < 0.02
    assert abs(values[0] - 2e3) < 4 * unc.std[0, 0]
