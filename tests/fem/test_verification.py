"""Physics verification of the FEM solvers against closed-form solutions.

* Patch test: an affine displacement ``x = F0 X`` imposed on the boundary is reproduced
  exactly inside (every element's F equals F0), and exerts no force on interior vertices.
* Cantilever (Euler-Bernoulli): static tip deflection ``delta = F L^3 / (3 E I)`` and first
  natural frequency ``omega_1 = 1.875^2 sqrt(E I / (rho A L^4))`` within 5 %, with linear
  tetrahedra at 80 x 8 x 8 cells (30,720 tets; 8 cubic cells through the thickness: linear
  tets lock in bending, and elongated cells lock more); the explicit integrator oscillates
  at the FEM model's own first eigenfrequency.
* Uniaxial tension of a nearly incompressible neo-Hookean bar (``lam = 1000 mu``):
  nominal stress ``P = mu (lambda - lambda^-2)``.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from diffsim.autodiff import Rollout
from diffsim.solvers.fem import FEMBuilder, FEMConfig, SolverFEM, mesh

F0 = np.array([[1.10, 0.05, -0.02], [0.03, 0.95, 0.04], [-0.01, 0.02, 1.05]])


@pytest.mark.parametrize("material", ["linear", "stable_neo_hookean"])
def test_patch_test_quasi_static(material):
    m = mesh.box((2, 2, 2), (1.0, 1.0, 1.0))
    X = m.vertices
    boundary = m.surface_vertices()
    interior = np.setdiff1d(np.arange(len(X)), boundary)
    b = FEMBuilder(3, gravity=[0, 0, 0], material=material)
    b.add_mesh(m, youngs_modulus=1e5, poisson_ratio=0.3)
    b.add_kinematic(boundary)
    model = b.finalize(1)
    solver = SolverFEM(model, FEMConfig(integrator="quasi_static"), window=1)
    rollout = Rollout(solver, 1, 1.0)
    # the interior starts away from the affine solution; the solve must find it exactly
    x0 = X + 0.01 * np.sin(7 * X)
    out = rollout.forward({"x": x0[None]}, controls={"target": (X[boundary] @ F0.T)[None, None]})
    x = out["x"][1, 0]
    np.testing.assert_allclose(x[interior], X[interior] @ F0.T, atol=1e-12)
    Fs = solver.gradient_operator_np  # F_e = sum_a x_a (x) Bop_a
    F = np.einsum("eam,eaj->emj", x[m.elements], Fs)
    np.testing.assert_allclose(F, np.broadcast_to(F0, F.shape), atol=1e-12)


def test_patch_test_explicit_no_interior_force():
    """Under an affine deformation, interior vertices feel no force and do not move."""
    m = mesh.box((2, 2, 2), (1.0, 1.0, 1.0))
    X = m.vertices
    interior = np.setdiff1d(np.arange(len(X)), m.surface_vertices())
    b = FEMBuilder(3, gravity=[0, 0, 0], material="stable_neo_hookean")
    b.add_mesh(m, youngs_modulus=1e5, poisson_ratio=0.3)
    model = b.finalize(1)
    solver = SolverFEM(model, FEMConfig(integrator="explicit"), window=1)
    out = Rollout(solver, 1, 1e-3, record=("x", "v")).forward({"x": (X @ F0.T)[None]})
    assert np.abs(out["v"][1, 0, interior]).max() < 1e-10
    # boundary vertices do accelerate (the body is stressed and unsupported)
    assert np.abs(out["v"][1, 0]).max() > 1e-3


def test_uniform_traction_gives_uniform_strain():
    """A bar on rollers under end traction t: eps_xx = t / E, eps_yy = eps_zz = -nu t / E (exact)."""
    E, nu, t = 1e5, 0.3, 200.0
    m = mesh.box((3, 1, 1), (0.3, 0.1, 0.1))
    X = m.vertices
    b = FEMBuilder(3, gravity=[0, 0, 0], material="linear")
    b.add_mesh(m, youngs_modulus=E, poisson_ratio=nu)
    b.pin(m.select(lambda x: x[:, 0] < 1e-9), axes=[0])
    b.pin(m.select(lambda x: x[:, 1] < 1e-9), axes=[1])
    b.pin(m.select(lambda x: x[:, 2] < 1e-9), axes=[2])
    b.add_traction(m.select_facets(lambda x: x[:, 0] > 0.3 - 1e-9), [t, 0.0, 0.0])
    solver = SolverFEM(b.finalize(1), FEMConfig(integrator="quasi_static"), window=1)
    x = Rollout(solver, 1, 1.0).forward({"x": X[None]})["x"][1, 0]
    strain = (x - X) / np.where(X > 0, X, 1.0)
    np.testing.assert_allclose(strain[X[:, 0] > 0, 0], t / E, rtol=1e-9)
    np.testing.assert_allclose(strain[X[:, 1] > 0, 1], -nu * t / E, rtol=1e-9)


# -- cantilever -----------------------------------------------------------------------------------
L, A_SIDE, E_BEAM, RHO, F_TIP = 1.0, 0.1, 1e6, 1000.0, -1.0
I_BEAM = A_SIDE ** 4 / 12


def cantilever(resolution, material="linear"):
    """A clamped square beam along x (nu = 0: Euler-Bernoulli's uniaxial stress) with a tip load."""
    m = mesh.beam(L, A_SIDE, A_SIDE, resolution)
    b = FEMBuilder(3, gravity=[0, 0, 0], material=material)
    b.add_mesh(m, density=RHO, youngs_modulus=E_BEAM, poisson_ratio=0.0)
    b.pin(m.select(lambda x: x[:, 0] < 1e-9))
    tip = m.select(lambda x: x[:, 0] > L - 1e-9)
    b.add_load(tip, [0.0, 0.0, F_TIP / len(tip)])
    return b.finalize(1), tip


@pytest.fixture(scope="module")
def fine_cantilever():
    model, tip = cantilever((80, 8, 8))
    solver = SolverFEM(model, FEMConfig(integrator="quasi_static"), window=1)
    out = Rollout(solver, 1, 1.0).forward(model.initial_state())
    return model, solver, tip, out["x"][1, 0] - out["x"][0, 0]


def test_cantilever_static_deflection(fine_cantilever):
    model, solver, tip, u = fine_cantilever
    delta_eb = F_TIP * L ** 3 / (3 * E_BEAM * I_BEAM)  # Euler-Bernoulli: delta = F L^3 / (3 E I)
    delta = u[tip, 2].mean()
    print(f"\ntip deflection {delta:.5e} m, Euler-Bernoulli {delta_eb:.5e} m, ratio {delta / delta_eb:.4f}")
    assert abs(delta / delta_eb - 1) < 0.05


def first_mode(solver):
    """``(omega_1 [rad/s], mode [N, dim])`` of ``K phi = omega^2 M phi`` (lumped mass, free DOFs)."""
    K = solver.stiffness_matrix(0)
    M = sp.diags(np.repeat(solver.lumped_mass_np(), solver.model.dim)[solver.free])
    w2, phi = spla.eigsh(K, k=1, M=M, sigma=0.0, which="LM")
    mode = np.zeros(solver.free.shape)
    mode[solver.free] = phi[:, 0]
    return float(np.sqrt(w2[0])), mode.reshape(-1, solver.model.dim)


def test_cantilever_first_frequency(fine_cantilever):
    model, solver, _, _ = fine_cantilever
    # Euler-Bernoulli clamped-free: omega_1 = 1.875^2 sqrt(E I / (rho A L^4))
    omega_eb = 1.875104 ** 2 * np.sqrt(E_BEAM * I_BEAM / (RHO * A_SIDE ** 2 * L ** 4))
    omega = first_mode(solver)[0]
    print(f"\nomega_1 FEM {omega:.4f} rad/s, Euler-Bernoulli {omega_eb:.4f} rad/s, ratio {omega / omega_eb:.4f}")
    assert abs(omega / omega_eb - 1) < 0.05


def test_explicit_oscillates_at_the_model_frequency():
    """Started in its first mode shape, a coarse beam's tip swings at the FEM model's own
    omega_1 (symplectic Euler's frequency error is O((omega h)^2), here ~1e-6)."""
    model, tip = cantilever((20, 2, 2))
    modal = SolverFEM(model, FEMConfig(integrator="quasi_static"), window=1)
    modal.write_frame(0, model.initial_state())
    omega, mode = first_mode(modal)
    period = 2 * np.pi / omega
    steps, substeps = 45, 40
    dt = 0.9 * period / steps  # h = dt / 40 is below the element wave transit time
    solver = SolverFEM(model, FEMConfig(integrator="explicit", substeps=substeps), window=steps)
    x0 = model.meta["rest_positions"] + 0.01 * mode / np.abs(mode).max()
    out = Rollout(solver, steps, dt).forward({"x": x0[None]}, controls={"force": np.zeros((steps, 1, len(tip), 3))})
    z = out["x"][:, 0, tip, 2].mean(axis=1) - model.meta["rest_positions"][tip, 2].mean()
    # zero crossings by linear interpolation: z = A cos(omega t) crosses at T/4 and 3T/4
    k = np.flatnonzero(np.diff(np.sign(z)) != 0)[:2]
    t = dt * (k + z[k] / (z[k] - z[k + 1]))
    measured = 2 * (t[1] - t[0])
    print(f"\nperiod explicit {measured:.5f} s, modal {period:.5f} s")
    assert abs(measured / period - 1) < 0.01


def test_uniaxial_neo_hookean_matches_incompressible_formula():
    """Nearly incompressible neo-Hookean (lam = 1000 mu) under homogeneous uniaxial stretch:
    nominal stress P = mu (lambda - lambda^-2) (incompressible limit; the compressible
    correction is O(mu / lam))."""
    mu = 1.0e5
    m = mesh.box((1, 1, 1), (1.0, 1.0, 1.0))
    X = m.vertices
    b = FEMBuilder(3, gravity=[0, 0, 0], material="neo_hookean")
    b.add_mesh(m, youngs_modulus=2 * mu * (1 + 0.4995), poisson_ratio=0.4995)  # lam / mu = 999
    b.pin(m.select(lambda x: x[:, 0] < 1e-9), axes=[0])
    b.pin(m.select(lambda x: x[:, 1] < 1e-9), axes=[1])   # symmetry rollers: the lateral faces
    b.pin(m.select(lambda x: x[:, 2] < 1e-9), axes=[2])   # stay free to contract
    right = m.select(lambda x: x[:, 0] > 1 - 1e-9)
    b.add_kinematic(right, axes=[0])
    model = b.finalize(1)
    stretches = np.array([1.25, 1.5, 2.0, 2.5, 3.0])
    T = len(stretches)
    solver = SolverFEM(model, FEMConfig(integrator="quasi_static", substeps=4), window=T)
    target = np.repeat(X[right][None, None], T, axis=0)
    target[:, 0, :, 0] = stretches[:, None]
    Rollout(solver, T, 1.0).forward(model.initial_state(), controls={"target": target})
    # unit reference area: the nominal stress is the total axial reaction on the driven face
    P = np.array([solver.reaction_forces(f)[0, right, 0].sum() for f in range(1, T + 1)])
    expected = mu * (stretches - stretches ** -2)
    print("\nP / (mu (l - l^-2)):", np.round(P / expected, 5))
    np.testing.assert_allclose(P, expected, rtol=2e-3)
