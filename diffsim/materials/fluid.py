"""Weakly compressible fluid for MPM.

A barotropic fluid resists only volume change: with ``J = det F`` and bulk modulus ``K``
[Pa], the energy density ``Psi(J) = K/2 (J - 1)^2`` gives the pressure
``p = -dPsi/dJ = K (1 - J)``, the first Piola-Kirchhoff stress ``P = K (J - 1) J F^-T`` and
the Kirchhoff stress ``tau = P F^T = K (J - 1) J I`` (the stiffened-gas "weakly
compressible" model of MPM water, e.g. DiffTaichi's diffmpm liquid and Tampubolon et al.
2017 with ``gamma = 1``). A fluid forgets shear: its return mapping replaces ``F`` by the
isotropic ``J^(1/d) I`` each step, so only the volume ratio is carried and shear
deformation never builds up. The sound speed is ``c = sqrt(K / rho)``: keep
``dt < dx / c``.
"""

import numpy as np
import taichi as ti

from .base import Material, register


@register
class MaterialFluid(Material):
    """Weakly compressible fluid with bulk modulus ``bulk_modulus`` ``K`` [Pa].

    ``update`` follows the MPM material signature of
    :class:`~diffsim.materials.plastic.PlasticMaterial` (``mu`` and ``lam`` are unused;
    ``q[0] = K``); the NumPy references take ``K`` directly.
    """

    name = "fluid"
    extra_params = {"bulk_modulus": ("Pa", 1e5, "fluid bulk modulus")}
    plastic_state = False

    @staticmethod
    @ti.func
    def update(F, Jp, mu, lam, q):
        """``(J^(1/d) I, Jp, K (J - 1) J I)``: shear is forgotten, the volume ratio kept."""
        J = F.determinant()
        s = ti.cast(0.0, float)
        if ti.static(F.n == 2):
            s = ti.sqrt(J)
        else:
            s = ti.exp(ti.log(J) / 3.0)
        I = ti.Matrix.identity(float, F.n)
        return s * I, Jp, q[0] * (J - 1.0) * J * I

    @staticmethod
    def energy_np(F, K):
        """Energy density ``K/2 (J - 1)^2`` [J/m^3]."""
        return float(0.5 * K * (np.linalg.det(F) - 1.0) ** 2)

    @staticmethod
    def stress_np(F, K):
        """First Piola-Kirchhoff stress ``K (J - 1) J F^-T`` [Pa]."""
        J = np.linalg.det(F)
        return K * (J - 1.0) * J * np.linalg.inv(F).T

    @classmethod
    def kirchhoff_np(cls, F, Jp, mu, lam, q):
        return cls.stress_np(F, q[0]) @ F.T

    @staticmethod
    def project_np(F, Jp, mu, lam, q):
        d = F.shape[0]
        return np.linalg.det(F) ** (1.0 / d) * np.eye(d), Jp
