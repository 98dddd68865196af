"""FEM constitutive code against the material registry's NumPy references.

* host (implicit paths): energy and stress equal each material's ``energy_np`` /
  ``stress_np``; the tangent dP/dF and dP/dmu, dP/dlam equal central differences of P;
  the fibre term's stress, tangent and parameter derivatives likewise;
* Taichi (explicit path): the unrolled stresses of ``kernels.py`` equal ``stress_np``
  (3D corotated: scaled Newton polar iterations against the SVD rotation).
"""

import numpy as np
import pytest
import taichi as ti

from diffsim import materials
from diffsim.solvers.fem import constitutive as cm
from diffsim.solvers.fem.kernels import FAST_STRESS

NAMES = ["linear", "corotated", "neo_hookean", "stable_neo_hookean"]


def random_F(dim, n, rng, scale=0.3):
    F = np.eye(dim) + scale * rng.normal(size=(n, dim, dim))
    F[np.linalg.det(F) < 0, :, 0] *= -1
    return F


def fd_tensor(fun, F, h=1e-6):
    """Central differences of ``fun(F) -> [E, d, d]`` with respect to F: ``[E, d, d, d, d]``."""
    d = F.shape[1]
    out = np.zeros(F.shape + (d, d))
    for k in range(d):
        for m in range(d):
            dF = np.zeros((d, d))
            dF[k, m] = h
            out[..., k, m] = (fun(F + dF) - fun(F - dF)) / (2 * h)
    return out


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", NAMES)
def test_host_model_matches_reference_and_derivatives(name, dim):
    rng = np.random.default_rng(3)
    F = random_F(dim, 6, rng)
    mu, lam = rng.uniform(1.0, 2.0, 6), rng.uniform(1.0, 3.0, 6)
    psi, P, C = cm.evaluate(name, F, mu, lam, tangent=True)
    cls = materials.get(name)
    np.testing.assert_allclose(P, [cls.stress_np(f, a, b) for f, a, b in zip(F, mu, lam)], atol=1e-12)
    np.testing.assert_allclose(psi, [cls.energy_np(f, a, b) for f, a, b in zip(F, mu, lam)], atol=1e-12)
    np.testing.assert_allclose(C, fd_tensor(lambda G: cm.evaluate(name, G, mu, lam)[1], F), atol=2e-7)
    dmu, dlam = cm.param_derivatives(name, F, mu, lam)
    h = 1e-6
    np.testing.assert_allclose(dmu, (cm.evaluate(name, F, mu + h, lam)[1] - cm.evaluate(name, F, mu - h, lam)[1]) / (2 * h), atol=1e-7)
    np.testing.assert_allclose(dlam, (cm.evaluate(name, F, mu, lam + h)[1] - cm.evaluate(name, F, mu, lam - h)[1]) / (2 * h), atol=1e-7)


@pytest.mark.parametrize("dim", [2, 3])
def test_fiber_term(dim):
    rng = np.random.default_rng(4)
    F, a, s = random_F(dim, 5, rng), rng.normal(size=(5, dim)), rng.uniform(1, 2, 5)
    psi, P, C = cm.fiber(F, a, s, tangent=True)
    h = 1e-6
    fd_P = np.zeros_like(P)
    for k in range(dim):
        for m in range(dim):
            dF = np.zeros((dim, dim))
            dF[k, m] = h
            fd_P[:, k, m] = (cm.fiber(F + dF, a, s)[0] - cm.fiber(F - dF, a, s)[0]) / (2 * h)
    np.testing.assert_allclose(P, fd_P, atol=1e-7)
    np.testing.assert_allclose(C, fd_tensor(lambda G: cm.fiber(G, a, s)[1], F), atol=1e-7)
    Lam = rng.normal(size=F.shape)
    d_s, d_a = cm.fiber_derivatives(F, a, s, Lam)
    fd_s = np.sum((cm.fiber(F, a, s + h)[1] - cm.fiber(F, a, s - h)[1]) / (2 * h) * Lam, axis=(1, 2))
    np.testing.assert_allclose(d_s, fd_s, atol=1e-7)
    fd_a = np.stack([np.sum((cm.fiber(F, a + h * e, s)[1] - cm.fiber(F, a - h * e, s)[1]) / (2 * h) * Lam, axis=(1, 2))
                     for e in np.eye(dim)], axis=1)
    np.testing.assert_allclose(d_a, fd_a, atol=1e-7)


@pytest.mark.parametrize("dim", [2, 3])
def test_taichi_unrolled_stresses_match_reference(dim):
    rng = np.random.default_rng(5)
    n = 8
    F = random_F(dim, n, rng, scale=0.4)
    mu, lam = 1.3, 2.1
    Fin = ti.Matrix.field(dim, dim, ti.f64, shape=n)
    out = ti.Matrix.field(dim, dim, ti.f64, shape=(len(NAMES), n))
    Fin.from_numpy(F)

    @ti.kernel
    def run():
        for e in range(n):
            for k in ti.static(range(len(NAMES))):
                out[k, e] = FAST_STRESS[NAMES[k]](Fin[e], mu, lam)

    run()
    got = out.to_numpy()
    for k, name in enumerate(NAMES):
        ref = np.array([materials.get(name).stress_np(f, mu, lam) for f in F])
        np.testing.assert_allclose(got[k], ref, atol=1e-11, err_msg=name)
