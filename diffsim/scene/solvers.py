"""Registry of solver kinds and collider types a scene file can name.

A scene's ``[solver] kind`` selects a :class:`SolverKind`: the extra ``[solver]`` keys,
the ``[materials.NAME]`` keys and the ``[[bodies]]`` variants of that family, plus the
functions that turn a validated spec into a builder (host only, no Taichi), a
:class:`~diffsim.core.model.Model` and a solver. Each family lives in its own module
under :mod:`diffsim.scene.kinds` that calls :func:`register_solver` at import; the
registry imports every module of that package on first use, so adding ``mpm`` or ``fem``
is one new file and no edit here; so is a ``scene.py`` module in a solver package
(``diffsim/solvers/mpm/scene.py``). Other modules that register on import are listed in
:data:`PLUGIN_MODULES`.

Collider types (``[[colliders]] type = "ground"``) are registered the same way with
:func:`register_collider`, and optional top-level tables owned by other packages
(``[controller]``, ``[training]``, ``[sysid]``) with :func:`register_section` or through
:data:`EXTENSION_SECTIONS`.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from .schema import MAX_MODULUS, Key, Table


@dataclass
class SolverKind:
    """Everything the scene loader needs to know about one solver family.

    Attributes:
        name: the ``[solver] kind`` value, e.g. ``"mass_spring"``.
        doc: one paragraph for the reference documentation.
        solver_keys: keys added to ``[solver]`` (family options, e.g. ``drag``).
        material_keys: keys of a ``[materials.NAME]`` table.
        body_types: ``[[bodies]] type`` -> :class:`~diffsim.scene.schema.Table`.
        assemble: ``(spec, loader) -> builder``: create the family's builder (its
            ``finalize(num_envs=B)`` makes the Model and allocates Taichi fields) from the
            validated spec without touching Taichi (``loader`` reads asset files, see
            :class:`diffsim.scene.assets.AssetLoader`); raise ``SceneError`` on problems.
        counts: ``builder -> {"particle": N, "actuator": A, ...}``.
        param_names: ``builder -> names`` of the model parameters ``finalize`` creates
            (free parameters are checked against them before any Taichi allocation).
        initial_state: ``(builder, num_envs) -> {name: [B, N, ...]}`` host arrays.
        make_solver: ``(model, spec, window) -> solver``.
        bytes_per_slot: ``(counts, dim, num_envs, itemsize) -> bytes`` one window slot
            needs (state, scratch and their gradients), for the automatic window.
        drawing: ``model -> dict`` of topology for pictures and meshes, e.g.
            ``{"lines": [S, 2] int, "line_actuator": [S] int}``.
        check: optional ``(spec, ctx)`` cross-section check after schema validation.
        ground_models: the ``[[colliders]] type = "ground"`` ``model`` values it supports.
    """

    name: str
    doc: str
    solver_keys: dict[str, Key]
    material_keys: dict[str, Key]
    body_types: dict[str, Table]
    assemble: Callable[[dict, Any], Any]
    counts: Callable[[Any], dict]
    param_names: Callable[[Any], tuple]
    initial_state: Callable[[Any, int], dict]
    make_solver: Callable[[Any, dict, int], Any]
    bytes_per_slot: Callable[[dict, int, int, int], int]
    drawing: Callable[[Any], dict]
    check: Callable[[dict, Any], None] | None = None
    ground_models: tuple = ("penalty",)


@dataclass
class ColliderType:
    """A ``[[colliders]] type``.

    Attributes:
        name: the ``type`` value. table: its keys (``type`` included).
        apply: ``(builder, values)``: add the collider to a builder.
        drawing: ``(values, dim) -> dict``: the collider as a :mod:`diffsim.io.render`
            collider dict.
        param_prefix: prefix of the model parameters it creates (``"ground_"``), so a free
            parameter on it is refused when the scene has no such collider.
        max_count: how many a scene may have (``ground``: one).
        params: names of the model parameters a scene with this collider has in addition
            to the solver kind's (``None``: unknown, so free parameters of such scenes are
            checked only once the model is built).
    """

    name: str
    table: Table
    apply: Callable[[Any, dict], None]
    drawing: Callable[[dict, int], dict]
    param_prefix: str = ""
    max_count: int = 1000
    params: tuple | None = None


@dataclass
class SectionType:
    """An optional top-level table owned by another part of the engine (``[controller]``).

    Attributes:
        name: the table name. table: its keys (validated like every scene table).
    """

    name: str
    table: Table


# Sections whose schema lives next to the code that reads them: ``name -> (module,
# attribute holding the Table)``. The module is imported the first time a scene uses the
# section, so a plain scene never pays for importing the training or sysid code.
EXTENSION_SECTIONS = {
    "controller": ("diffsim.control.scene", "CONTROLLER"),
    "training": ("diffsim.control.scene", "TRAINING"),
    "sysid": ("diffsim.sysid.config", "SYSID"),
}

def solid_material_keys(model: Key, max_poisson: float) -> dict[str, Key]:
    """``[materials.NAME]`` keys every solid has: the constitutive ``model`` key given, mass
    density, Young's modulus and Poisson's ratio (below ``max_poisson``: the family's
    incompressibility limit)."""
    return {
        "model": model,
        "density": Key("float", "mass density (2D: per metre of thickness)", 1000.0, "kg/m^3",
                       positive=True, hi=MAX_MODULUS),
        "youngs_modulus": Key("float", "Young's modulus", 1e5, "Pa", positive=True, hi=MAX_MODULUS),
        "poisson_ratio": Key("float", "Poisson's ratio", 0.3, "-", lo=-0.999, hi=max_poisson),
    }


def require_stable_substep(solver_spec: dict, limit: float, what: str, remedy: str = "") -> None:
    """Raise ``ValueError`` when ``dt / substeps`` of ``[solver]`` exceeds ``limit`` [s].

    ``what`` names the limit (e.g. ``"the CFL limit dx / c"``); ``remedy`` is appended to
    the suggested substep count (e.g. ``" or integrator = 'implicit'"``).
    """
    dt, substeps = solver_spec["dt"], solver_spec["substeps"]
    h = dt / substeps
    if h > limit:
        raise ValueError(f"the substep dt / substeps = {h:.3g} s exceeds {what} {limit:.3g} s; "
                         f"use substeps >= {int(math.ceil(dt / limit))}{remedy}")


# Modules outside this package that register solver kinds, collider types or sections
# when imported (e.g. the contact package's collider types). A module that does not exist
# is skipped; one that fails to import raises. Besides these, every solver package's
# ``scene`` module (``diffsim/solvers/<family>/scene.py``) is imported.
PLUGIN_MODULES = ("diffsim.contact.scene",)

_KINDS: dict[str, SolverKind] = {}
_SECTIONS: dict[str, SectionType] = {}
_COLLIDERS: dict[str, ColliderType] = {}
_discovered = False


def register_solver(kind: SolverKind) -> SolverKind:
    """Make ``kind`` available as ``[solver] kind = "<name>"`` (re-registering replaces)."""
    _KINDS[kind.name] = kind
    return kind


def register_collider(collider: ColliderType) -> ColliderType:
    """Make ``collider`` available as ``[[colliders]] type = "<name>"``."""
    _COLLIDERS[collider.name] = collider
    return collider


def register_section(name: str, table: Table) -> SectionType:
    """Make ``[name]`` a valid optional top-level table with keys ``table``."""
    _SECTIONS[name] = SectionType(name, table)
    return _SECTIONS[name]


def extension_section(name: str) -> SectionType | None:
    """The registered (or importable, see :data:`EXTENSION_SECTIONS`) section ``name``.

    Returns ``None`` for a name nobody provides. Raises ``ImportError`` when the module
    that provides it fails to import (a bug there, not an unknown section).
    """
    if name not in _SECTIONS and name in EXTENSION_SECTIONS:
        module, attr = EXTENSION_SECTIONS[name]
        table = getattr(importlib.import_module(module), attr, None)
        if isinstance(table, Table):
            register_section(name, table)
    return _SECTIONS.get(name)


def extension_sections() -> dict[str, SectionType]:
    """Every extension section that can be loaded (for the reference documentation)."""
    for name in EXTENSION_SECTIONS:
        try:
            extension_section(name)
        except ImportError:
            continue
    return dict(_SECTIONS)


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    from . import kinds, sections  # noqa: F401  (sections registers the built-in colliders)

    for info in sorted(pkgutil.iter_modules(kinds.__path__), key=lambda m: m.name):
        importlib.import_module(f"{kinds.__name__}.{info.name}")
    from .. import solvers as solver_pkg

    family_modules = tuple(f"{solver_pkg.__name__}.{m.name}.scene"
                           for m in sorted(pkgutil.iter_modules(solver_pkg.__path__), key=lambda m: m.name)
                           if m.ispkg)
    for module in PLUGIN_MODULES + family_modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def solver_kinds() -> dict[str, SolverKind]:
    """All registered solver kinds, by name."""
    _discover()
    return dict(sorted(_KINDS.items()))


def collider_types() -> dict[str, ColliderType]:
    """All registered collider types, by name."""
    _discover()
    return dict(_COLLIDERS)
