"""Differentiable MLS-MPM: solver, builder, material adapter, grid boundaries.

See :mod:`.solver` for the scheme and docs/solvers_mpm.md for what it is differentiable
with respect to.
"""

from .builder import MPMBuilder
from .constitutive import mpm_material, mpm_material_names
from .solver import SolverMPM

__all__ = ["MPMBuilder", "SolverMPM", "mpm_material", "mpm_material_names"]
