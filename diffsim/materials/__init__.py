"""Constitutive models shared by the MPM and FEM solvers (see :mod:`.base`)."""

from .base import REGISTRY, Material, get, lame, register
from .elastic import MaterialCorotated, MaterialLinear, MaterialNeoHookean, MaterialStableNeoHookean
from .fluid import MaterialFluid
from .plastic import MaterialDruckerPrager, MaterialSnow, MaterialVonMises, PlasticMaterial

__all__ = ["REGISTRY", "Material", "get", "lame", "register", "MaterialLinear", "MaterialCorotated",
           "MaterialNeoHookean", "MaterialStableNeoHookean", "MaterialFluid", "PlasticMaterial",
           "MaterialVonMises", "MaterialSnow", "MaterialDruckerPrager"]
