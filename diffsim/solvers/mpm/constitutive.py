"""One MPM interface over every registered material.

MLS-MPM (Hu et al. 2018) needs, per particle and substep, a return mapping of the elastic
predictor ``F_trial = (I + dt C) F`` and the **Kirchhoff** stress ``tau = P F^T`` of the
result: ``update(F, Jp, mu, lam, q) -> (F_E, Jp', tau)``. Elastoplastic models
(:mod:`diffsim.materials.plastic`) and the fluid (:mod:`diffsim.materials.fluid`) provide
it; hyperelastic models (:mod:`diffsim.materials.elastic`) only give
``P = stress(F, mu, lam)``, so :func:`mpm_material` wraps them with an identity return
mapping and ``tau = P F^T``.

Two closed forms replace ``stress(F) @ F^T`` where the generic product is slower or not
differentiable (tests check both equal the elastic reference):

* neo-Hookean: ``tau = mu (F F^T - I) + lam log(J) I`` (no inverse);
* fixed corotated: ``tau = 2 mu (F - R) F^T + lam (J - 1) J I`` with ``R`` from
  :func:`~diffsim.materials.plastic.polar_rotation`, because Taichi's 3D
  ``ti.polar_decompose`` (an SVD) cannot be reverse-differentiated.
"""

import taichi as ti

from ... import materials
from ...materials import fluid as _fluid  # noqa: F401  (registers "fluid")
from ...materials import plastic as _plastic
from ...materials.base import Material


@ti.func
def _neo_hookean_kirchhoff(F, mu, lam):
    J = F.determinant()
    I = ti.Matrix.identity(float, F.n)
    return mu * (_plastic.matmul_t(F, F) - I) + lam * ti.log(J) * I


_KIRCHHOFF_FAST = {
    "neo_hookean": _neo_hookean_kirchhoff,
    "corotated": _plastic.corotated_kirchhoff,
}


def mpm_material(name: str):
    """The MPM view of material ``name``: an object with ``name``, ``extra_params``,
    ``plastic_state`` and the Taichi function ``update(F, Jp, mu, lam, q)``."""
    cls = materials.get(name)
    if hasattr(cls, "update"):
        return cls
    if not issubclass(cls, Material) or not hasattr(cls, "stress"):
        raise TypeError(f"material {name!r} has neither an MPM update nor a stress(F)")
    fast = _KIRCHHOFF_FAST.get(name)

    if fast is not None:
        @ti.func
        def update(F, Jp, mu, lam, q):
            return F, Jp, fast(F, mu, lam)
    else:
        @ti.func
        def update(F, Jp, mu, lam, q):
            return F, Jp, _plastic.matmul_t(cls.stress(F, mu, lam), F)

    return type(f"MPM{cls.__name__}", (), {
        "name": name, "extra_params": {}, "plastic_state": False, "elastic": cls,
        "update": staticmethod(update)})


def mpm_material_names() -> list[str]:
    """Names of every registered material usable by the MPM solver."""
    out = []
    for name, cls in sorted(materials.REGISTRY.items()):
        if hasattr(cls, "update") or hasattr(cls, "stress"):
            out.append(name)
    return out
