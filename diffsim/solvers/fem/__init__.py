"""Finite elements: linear tetrahedra (3D) and triangles (2D), explicit and implicit.

* :mod:`.mesh`: generators (box, beam, rectangle), meshio loading, surfaces;
* :mod:`.builder`: :class:`FEMBuilder` (materials, boundary conditions, loads, muscles);
* :mod:`.explicit`: symplectic Euler in Taichi kernels (Taichi autodiff), with ground and
  SDF collider contact (:mod:`diffsim.contact`, pose controls included);
* :mod:`.implicit`: backward Euler and quasi-static Newton solves (adjoint gradients);
* :class:`SolverFEM` picks the integrator named by :class:`FEMConfig`.

See docs/solvers_fem.md.
"""

from . import mesh
from .builder import FEMBuilder, elasticity_grads, set_elasticity
from .explicit import SolverFEMExplicit
from .implicit import FEMConvergenceError, SolverFEMImplicit, SolverFEMQuasiStatic
from .mesh import Mesh, load_mesh
from .solver import FEMConfig, SolverFEM

__all__ = ["mesh", "Mesh", "load_mesh", "FEMBuilder", "FEMConfig", "SolverFEM", "SolverFEMExplicit",
           "SolverFEMImplicit", "SolverFEMQuasiStatic", "FEMConvergenceError", "set_elasticity",
           "elasticity_grads"]
