"""Hyperelastic materials: linear, fixed corotated, neo-Hookean, stable neo-Hookean.

Each gives the first Piola-Kirchhoff stress ``P(F)`` [Pa] as a Taichi function and NumPy
references of ``P`` and of the energy density ``Psi(F)`` [J/m^3]. ``d`` is the dimension,
``J = det F``, ``I_C = tr(F^T F)``.
"""

import numpy as np
import taichi as ti

from .base import Material, register


@register
class MaterialLinear(Material):
    """Small-strain linear elasticity: ``Psi = mu eps:eps + lam/2 tr(eps)^2`` with
    ``eps = (F + F^T)/2 - I``, so ``P = 2 mu eps + lam tr(eps) I``. Not rotation invariant:
    for small rotations only (beam and patch tests)."""

    name = "linear"

    @staticmethod
    @ti.func
    def stress(F, mu, lam):
        I = ti.Matrix.identity(float, F.n)
        eps = 0.5 * (F + F.transpose()) - I
        return 2.0 * mu * eps + lam * eps.trace() * I

    @staticmethod
    def stress_np(F, mu, lam):
        I = np.eye(F.shape[0])
        eps = 0.5 * (F + F.T) - I
        return 2 * mu * eps + lam * np.trace(eps) * I

    @staticmethod
    def energy_np(F, mu, lam):
        eps = 0.5 * (F + F.T) - np.eye(F.shape[0])
        return float(mu * np.sum(eps * eps) + 0.5 * lam * np.trace(eps) ** 2)


@register
class MaterialCorotated(Material):
    """Fixed corotated elasticity (Stomakhin et al. 2012):
    ``Psi = mu |F - R|^2 + lam/2 (J - 1)^2`` with ``R`` the rotation of ``F = R S``, so
    ``P = 2 mu (F - R) + lam (J - 1) J F^-T``. The MLS-MPM default (Hu et al. 2018)."""

    name = "corotated"

    @staticmethod
    @ti.func
    def stress(F, mu, lam):
        R, _ = ti.polar_decompose(F)
        J = F.determinant()
        return 2.0 * mu * (F - R) + lam * (J - 1.0) * J * F.inverse().transpose()

    @staticmethod
    def _rotation(F):
        U, _, Vt = np.linalg.svd(F)
        R = U @ Vt
        if np.linalg.det(R) < 0:  # keep a proper rotation for inverted F
            U[:, -1] *= -1
            R = U @ Vt
        return R

    @classmethod
    def stress_np(cls, F, mu, lam):
        J = np.linalg.det(F)
        return 2 * mu * (F - cls._rotation(F)) + lam * (J - 1) * J * np.linalg.inv(F).T

    @classmethod
    def energy_np(cls, F, mu, lam):
        J = np.linalg.det(F)
        return float(mu * np.sum((F - cls._rotation(F)) ** 2) + 0.5 * lam * (J - 1) ** 2)


@register
class MaterialNeoHookean(Material):
    """Compressible neo-Hookean:
    ``Psi = mu/2 (I_C - d) - mu log J + lam/2 (log J)^2``, so
    ``P = mu (F - F^-T) + lam log(J) F^-T``. Undefined for ``J <= 0`` (inverted elements)."""

    name = "neo_hookean"

    @staticmethod
    @ti.func
    def stress(F, mu, lam):
        J = F.determinant()
        F_inv_T = F.inverse().transpose()
        return mu * (F - F_inv_T) + lam * ti.log(J) * F_inv_T

    @staticmethod
    def stress_np(F, mu, lam):
        J = np.linalg.det(F)
        FiT = np.linalg.inv(F).T
        return mu * (F - FiT) + lam * np.log(J) * FiT

    @staticmethod
    def energy_np(F, mu, lam):
        J = np.linalg.det(F)
        return float(0.5 * mu * (np.sum(F * F) - F.shape[0]) - mu * np.log(J) + 0.5 * lam * np.log(J) ** 2)


@register
class MaterialStableNeoHookean(Material):
    """Stable neo-Hookean (Smith, de Goes and Kim 2018):
    ``Psi = mu/2 (I_C - d) + lam/2 (J - alpha)^2 - mu/2 log(I_C + 1)`` with
    ``alpha = 1 + mu d / ((d + 1) lam)`` so that the rest shape is stress free. Defined and
    smooth for inverted elements (``J <= 0``), which is why FEM uses it by default.
    ``P = mu (1 - 1/(I_C + 1)) F + lam (J - alpha) dJ/dF``, ``dJ/dF = cof(F)``."""

    name = "stable_neo_hookean"

    @staticmethod
    @ti.func
    def stress(F, mu, lam):
        d = ti.static(F.n)
        alpha = 1.0 + mu * d / ((d + 1.0) * lam)
        Ic = (F.transpose() @ F).trace()
        return mu * (1.0 - 1.0 / (Ic + 1.0)) * F + lam * (F.determinant() - alpha) * _cofactor(F)

    @staticmethod
    def stress_np(F, mu, lam):
        d = F.shape[0]
        alpha = 1 + mu * d / ((d + 1) * lam)
        Ic = np.sum(F * F)
        cof = np.linalg.det(F) * np.linalg.inv(F).T
        return mu * (1 - 1 / (Ic + 1)) * F + lam * (np.linalg.det(F) - alpha) * cof

    @staticmethod
    def energy_np(F, mu, lam):
        d = F.shape[0]
        alpha = 1 + mu * d / ((d + 1) * lam)
        Ic = np.sum(F * F)
        return float(0.5 * mu * (Ic - d) + 0.5 * lam * (np.linalg.det(F) - alpha) ** 2
                     - 0.5 * mu * np.log(Ic + 1))


@ti.func
def _cofactor(F):
    """``dJ/dF = det(F) F^-T``, written without the inverse so it stays finite at J = 0."""
    C = ti.Matrix.zero(float, F.n, F.n)
    if ti.static(F.n == 2):
        C = ti.Matrix([[F[1, 1], -F[1, 0]], [-F[0, 1], F[0, 0]]])
    else:
        for i, j in ti.static(ti.ndrange(3, 3)):
            i1, i2 = (i + 1) % 3, (i + 2) % 3
            j1, j2 = (j + 1) % 3, (j + 2) % 3
            C[i, j] = F[i1, j1] * F[i2, j2] - F[i1, j2] * F[i2, j1]
    return C
