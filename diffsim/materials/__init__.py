"""Constitutive models shared by the MPM and FEM solvers (see :mod:`.base`)."""

from .base import REGISTRY, Material, get, lame, register
from .elastic import MaterialCorotated, MaterialLinear, MaterialNeoHookean, MaterialStableNeoHookean

__all__ = ["REGISTRY", "Material", "get", "lame", "register", "MaterialLinear", "MaterialCorotated",
           "MaterialNeoHookean", "MaterialStableNeoHookean"]
