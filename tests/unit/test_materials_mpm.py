"""MPM materials: Kirchhoff stress and return mappings against NumPy references.

* every material's Taichi ``kirchhoff`` equals ``P F^T`` of its NumPy reference, and the
  reference ``P`` equals ``dPsi/dF`` by central differences (hyperelasticity);
* the return mappings match their NumPy references and land on or inside the yield surface;
* the differentiable helpers (Jacobi SVD, Newton polar) match NumPy, and the reverse-mode
  gradient of each material's update matches central differences of the Taichi function.
"""

import numpy as np
import pytest
import taichi as ti

from diffsim import materials
from diffsim.materials import plastic
from diffsim.solvers.mpm.constitutive import mpm_material
from tests.helpers import energy_gradient_fd

ELASTIC = ["linear", "corotated", "neo_hookean", "stable_neo_hookean"]
PLASTIC = ["von_mises", "snow", "drucker_prager"]
MU, LAM = materials.lame(1e5, 0.3)
EXTRA = {"von_mises": [2e3], "snow": [2.5e-2, 7.5e-3, 10.0], "drucker_prager": [np.deg2rad(30)],
         "fluid": [2e5]}


def random_F(dim, rng, scale=0.2):
    A = np.eye(dim) + scale * rng.normal(size=(dim, dim))
    if np.linalg.det(A) < 0:
        A[:, 0] *= -1
    return A


def q_vector(name):
    q = EXTRA.get(name, [])
    return np.asarray(q + [0.0] * (3 - len(q)), float)


_cache = {}


def _runner(name, dim):
    """Kernel evaluating the MPM update of material ``name`` (and its reverse mode)."""
    key = (name, dim)
    if key in _cache:
        return _cache[key]
    mat = mpm_material(name)
    Fin = ti.Matrix.field(dim, dim, float, shape=(), needs_grad=True)
    Jin = ti.field(float, shape=(), needs_grad=True)
    q = ti.Vector.field(3, float, shape=(), needs_grad=True)
    Fout = ti.Matrix.field(dim, dim, float, shape=(), needs_grad=True)
    Jout = ti.field(float, shape=(), needs_grad=True)
    tau = ti.Matrix.field(dim, dim, float, shape=(), needs_grad=True)
    loss = ti.field(float, shape=(), needs_grad=True)
    wF = ti.Matrix.field(dim, dim, float, shape=())
    wT = ti.Matrix.field(dim, dim, float, shape=())

    @ti.kernel
    def run(mu: float, lam: float):
        for _i in range(1):
            Fe, Jp, t = mat.update(Fin[None], Jin[None], mu, lam, q[None])
            Fout[None] = Fe
            Jout[None] = Jp
            tau[None] = t
            loss[None] = (wF[None] * Fe).sum() + (wT[None] * t).sum() * 1e-5 + Jp

    _cache[key] = (run, Fin, Jin, q, Fout, Jout, tau, loss, wF, wT)
    return _cache[key]


def evaluate(name, F, Jp=1.0, mu=MU, lam=LAM, q=None):
    run, Fin, Jin, qf, Fout, Jout, tau, loss, _, _ = _runner(name, F.shape[0])
    Fin[None] = F.tolist()
    Jin[None] = Jp
    qf[None] = (q_vector(name) if q is None else np.asarray(q, float)).tolist()
    run(mu, lam)
    return Fout[None].to_numpy(), Jout[None], tau[None].to_numpy(), loss[None]


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", ELASTIC)
def test_elastic_kirchhoff_is_P_F_transpose(name, dim):
    cls = materials.get(name)
    rng = np.random.default_rng(2)
    for _ in range(3):
        F = random_F(dim, rng)
        Fe, _, tau, _ = evaluate(name, F)
        np.testing.assert_allclose(Fe, F, rtol=0, atol=0)
        np.testing.assert_allclose(tau, cls.stress_np(F, MU, LAM) @ F.T, rtol=1e-8, atol=1e-8 * MU)


@pytest.mark.parametrize("dim", [2, pytest.param(3, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", PLASTIC + ["fluid"])
def test_stress_matches_reference_and_energy_derivative(name, dim):
    cls = materials.get(name)
    rng = np.random.default_rng(3)
    K = EXTRA["fluid"][0]
    for _ in range(3):
        F = random_F(dim, rng, 0.1)
        if name == "fluid":
            energy, P_ref = (lambda G: cls.energy_np(G, K)), cls.stress_np(F, K)
        else:
            energy, P_ref = (lambda G: cls.energy_np(G, MU, LAM)), cls.stress_np(F, MU, LAM)
        # P = dPsi/dF (hyperelastic part), by central differences
        P_fd = energy_gradient_fd(energy, F)
        np.testing.assert_allclose(P_ref, P_fd, rtol=1e-5, atol=1e-4)
        # Taichi Kirchhoff stress of the projected F equals the reference tau = P F^T
        Fe, Jp, tau, _ = evaluate(name, F)
        Fe_ref, Jp_ref = cls.project_np(F, 1.0, MU, LAM, q_vector(name))
        np.testing.assert_allclose(Fe, Fe_ref, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(Jp, Jp_ref, rtol=1e-9)
        tau_ref = cls.kirchhoff_np(Fe_ref, Jp_ref, MU, LAM, q_vector(name))
        np.testing.assert_allclose(tau, tau_ref, rtol=1e-6, atol=1e-6 * MU)


def test_von_mises_return_lands_on_yield_surface():
    rng = np.random.default_rng(4)
    tau_y = EXTRA["von_mises"][0]
    for dim in (2, 3):
        for _ in range(5):
            F = random_F(dim, rng, 0.3)
            Fe, _, _, _ = evaluate("von_mises", F)
            eps = np.log(np.linalg.svd(Fe, compute_uv=False))
            dev = np.linalg.norm(eps - eps.mean())
            assert dev <= tau_y / (2 * MU) * (1 + 1e-6)
            # volume is preserved by the deviatoric return: det Fe == det F
            np.testing.assert_allclose(np.linalg.det(Fe), np.linalg.det(F), rtol=1e-8)


def test_snow_clamps_stretches_and_moves_volume_to_Jp():
    rng = np.random.default_rng(5)
    tc, ts, _ = EXTRA["snow"]
    for dim in (2, 3):
        F = random_F(dim, rng, 0.2)
        Fe, Jp, _, _ = evaluate("snow", F, Jp=1.0)
        s = np.linalg.svd(Fe, compute_uv=False)
        assert np.all(s >= 1 - tc - 1e-9) and np.all(s <= 1 + ts + 1e-9)
        # J_E * J_P is the total volume ratio
        np.testing.assert_allclose(np.linalg.det(Fe) * Jp, np.linalg.det(F), rtol=1e-8)


def test_drucker_prager_tension_goes_to_the_tip_and_compression_into_the_cone():
    phi = EXTRA["drucker_prager"][0]
    for dim in (2, 3):
        stretch = np.diag([1.1] + [1.02] * (dim - 1))
        Fe, _, tau, _ = evaluate("drucker_prager", stretch)
        np.testing.assert_allclose(Fe, np.eye(dim), atol=1e-9)  # stress-free
        np.testing.assert_allclose(tau, 0, atol=1e-6)
        shear = np.eye(dim)
        shear[0, 1] = 0.3
        squeeze = np.diag([0.97] * dim) @ shear
        Fe, _, _, _ = evaluate("drucker_prager", squeeze)
        eps = np.log(np.linalg.svd(Fe, compute_uv=False))
        alpha = plastic._dp_alpha_np(phi, dim)
        # on or inside the cone |dev eps| <= -alpha (d lam + 2 mu)/(2 mu) tr eps
        lhs = np.linalg.norm(eps - eps.mean())
        rhs = -alpha * (dim * LAM + 2 * MU) / (2 * MU) * eps.sum()
        assert lhs <= rhs * (1 + 1e-6) + 1e-12


def test_drucker_prager_cohesion_moves_the_apex_into_tension():
    """Cohesion c: rest (F = I) is elastic, and tension past the apex ends at F_E = e^c R."""
    c = 1e-3
    for dim in (2, 3):
        q = np.array([np.deg2rad(30), c, 0.0])
        rest = np.eye(dim)
        Fe, _ = plastic.MaterialDruckerPrager.project_np(rest, 1.0, MU, LAM, q)
        np.testing.assert_allclose(Fe, rest, atol=1e-12)  # inside the cone: no projection
        stretch = np.diag([1.1] + [1.02] * (dim - 1))
        Fe, _ = plastic.MaterialDruckerPrager.project_np(stretch, 1.0, MU, LAM, q)
        np.testing.assert_allclose(Fe, np.exp(c) * np.eye(dim), atol=1e-12)
        if dim == 2:  # (the 3D kernel is the same code; its compile is slow)
            Fe_ti, _, _, _ = evaluate("drucker_prager", stretch, q=q)
            np.testing.assert_allclose(Fe_ti, Fe, atol=1e-9)


def test_fluid_forgets_shear():
    F = np.array([[1.0, 0.3], [0.0, 0.9]])
    Fe, _, tau, _ = evaluate("fluid", F)
    J = np.linalg.det(F)
    np.testing.assert_allclose(Fe, np.sqrt(J) * np.eye(2), rtol=1e-12)
    np.testing.assert_allclose(tau, EXTRA["fluid"][0] * (J - 1) * J * np.eye(2), rtol=1e-10)


@pytest.mark.parametrize("dim", [2, 3])
def test_jacobi_svd_and_newton_polar_match_numpy(dim):
    out_s = ti.Vector.field(dim, float, shape=())
    out_R = ti.Matrix.field(dim, dim, float, shape=())
    Fin = ti.Matrix.field(dim, dim, float, shape=())

    @ti.kernel
    def run():
        sig, _ = plastic.svd_stretches(Fin[None])
        out_s[None] = sig
        out_R[None] = plastic.polar_rotation(Fin[None])

    rng = np.random.default_rng(6)
    for scale in (0.0, 0.05, 0.5):
        F = random_F(dim, rng, scale)
        Fin[None] = F.tolist()
        run()
        U, s, Vt = np.linalg.svd(F)
        np.testing.assert_allclose(np.sort(out_s[None].to_numpy()), np.sort(s), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out_R[None].to_numpy(), U @ Vt, atol=1e-10)


# 3D plastic models share the Jacobi SVD and Newton polar decomposition, whose reverse mode
# takes tens of seconds to compile: von Mises stands for the three in 3D.
REVERSE_CASES = [(n, 2) for n in ["corotated", "neo_hookean"] + PLASTIC + ["fluid"]] + \
    [("neo_hookean", 3), ("fluid", 3)] + \
    [pytest.param(n, 3, marks=pytest.mark.slow) for n in ("corotated", "von_mises")]


@pytest.mark.parametrize("name,dim", REVERSE_CASES)
def test_reverse_mode_matches_central_differences(name, dim):
    """d(loss)/dF of the material update (return mapping, then Kirchhoff stress)."""
    run, Fin, Jin, q, _, _, _, loss, wF, wT = _runner(name, dim)
    rng = np.random.default_rng(7)
    wF[None] = rng.normal(size=(dim, dim)).tolist()
    wT[None] = rng.normal(size=(dim, dim)).tolist()
    # a generic point (distinct stretches), yielding for the plastic models
    F = random_F(dim, rng, 0.15)
    Fin[None] = F.tolist()
    Jin[None] = 1.0
    q[None] = q_vector(name).tolist()
    for f in (Fin, Jin, q, loss):
        f.grad.fill(0)
    run(MU, LAM)
    loss.grad[None] = 1.0
    run.grad(MU, LAM)
    g = Fin.grad[None].to_numpy()
    h = 1e-6
    fd = np.zeros((dim, dim))
    for i in range(dim):
        for j in range(dim):
            E = np.zeros((dim, dim))
            E[i, j] = h
            fd[i, j] = (evaluate(name, F + E)[3] - evaluate(name, F - E)[3]) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())
