"""Solvers: one class per physics family, all behind :class:`SolverBase`'s step contract."""

from .base import SolverBase
from .mass_spring import SolverMassSpring

__all__ = ["SolverBase", "SolverMassSpring"]
