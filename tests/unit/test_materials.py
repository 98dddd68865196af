"""Each material's Taichi stress equals its NumPy reference and dPsi/dF (central differences)."""

import numpy as np
import pytest
import taichi as ti

from diffsim import materials
from diffsim.materials import elastic  # noqa: F401  (registers the elastic models)
from tests.helpers import energy_gradient_fd

ELASTIC = ["linear", "corotated", "neo_hookean", "stable_neo_hookean"]


def random_F(dim, rng, scale=0.2):
    # Near identity with a rotation, positive determinant.
    A = np.eye(dim) + scale * rng.normal(size=(dim, dim))
    if np.linalg.det(A) < 0:
        A[:, 0] *= -1
    return A


def taichi_stress(cls, F, mu, lam):
    dim = F.shape[0]
    out = ti.Matrix.field(dim, dim, float, shape=())
    Fin = ti.Matrix.field(dim, dim, float, shape=())
    Fin[None] = F.tolist()

    @ti.kernel
    def run(mu: float, lam: float):
        out[None] = cls.stress(Fin[None], mu, lam)

    run(mu, lam)
    return out[None].to_numpy()


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", ELASTIC)
def test_stress_matches_reference_and_energy_derivative(name, dim):
    cls = materials.get(name)
    rng = np.random.default_rng(1)
    mu, lam = materials.lame(1e5, 0.3)
    for _ in range(3):
        F = random_F(dim, rng)
        P_ref = cls.stress_np(F, mu, lam)
        # P = dPsi/dF by central differences (the reference equation of hyperelasticity)
        P_fd = energy_gradient_fd(lambda G: cls.energy_np(G, mu, lam), F)
        np.testing.assert_allclose(P_ref, P_fd, rtol=1e-5, atol=1e-3 * mu * 1e-3)
        # Taichi's 3D polar decomposition is an iterative SVD tuned for float32 (Sifakis'
        # algorithm), so the corotated stress agrees to ~1e-7 rather than to round-off.
        rtol = 1e-6 if (name == "corotated" and dim == 3) else 1e-9
        np.testing.assert_allclose(taichi_stress(cls, F, mu, lam), P_ref, rtol=rtol, atol=rtol * mu * 1e-2)


@pytest.mark.parametrize("name", ELASTIC)
def test_rest_state_is_stress_free(name):
    cls = materials.get(name)
    for dim in (2, 3):
        np.testing.assert_allclose(cls.stress_np(np.eye(dim), 3.0, 5.0), 0, atol=1e-12)


def test_lame_rejects_bad_poisson_ratio():
    with pytest.raises(ValueError, match="Poisson"):
        materials.lame(1e5, 0.5)
