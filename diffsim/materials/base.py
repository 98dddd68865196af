"""The material pattern shared by MPM and FEM.

A material is a small class with:

* ``stress(F, mu, lam)``: a Taichi function returning the first Piola-Kirchhoff stress
  ``P = dPsi/dF`` [Pa] for a ``dim x dim`` deformation gradient ``F``;
* ``stress_np`` / ``energy_np``: NumPy references (energy density ``Psi`` [J/m^3] per
  unit reference volume), used by the tests to check ``stress`` against the reference and
  against ``dPsi/dF`` by finite differences.

Solvers pick a material at compile time (``ti.static``) by its registered ``name``, so a
new material is one class and no solver edit (JAX MD writes physics as energies; Genesis
keeps one file per MPM material).

Parameters are Lame's ``mu`` (shear modulus) and ``lam``; :func:`lame` converts from
Young's modulus and Poisson's ratio.
"""

import numpy as np

REGISTRY: dict[str, type] = {}


def register(cls):
    """Class decorator: make a material available by ``cls.name``."""
    REGISTRY[cls.name] = cls
    return cls


def get(name: str):
    """The material class called ``name`` (clear error listing the known ones)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown material {name!r}; known: {sorted(REGISTRY)}") from None


def lame(youngs_modulus, poisson_ratio):
    """Lame parameters ``(mu, lam)`` [Pa] from Young's modulus [Pa] and Poisson's ratio [-].

    ``mu = E / (2 (1 + nu))``, ``lam = E nu / ((1 + nu)(1 - 2 nu))`` (3D; also used in 2D
    plane strain).
    """
    E = np.asarray(youngs_modulus, dtype=float)
    nu = np.asarray(poisson_ratio, dtype=float)
    if np.any(nu <= -1.0) or np.any(nu >= 0.5):
        raise ValueError(f"Poisson ratio must be in (-1, 0.5), got {nu}")
    return E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))


class Material:
    """Base class; subclasses set ``name`` and implement the three functions."""

    name = "material"

    @staticmethod
    def stress_np(F: np.ndarray, mu: float, lam: float) -> np.ndarray:
        raise NotImplementedError  # abstract

    @staticmethod
    def energy_np(F: np.ndarray, mu: float, lam: float) -> float:
        raise NotImplementedError  # abstract
