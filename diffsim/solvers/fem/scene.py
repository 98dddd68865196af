"""``[solver] kind = "fem"``: tetrahedral (3D) or triangular (2D) soft bodies.

Importing this module registers the kind with :mod:`diffsim.scene.solvers`.

``[solver]`` adds the ``integrator`` (``explicit``, ``implicit``, ``quasi_static``), Rayleigh
damping (``damping_mass`` alpha, ``damping_stiffness`` beta) and the Newton options of the
implicit paths. A ``[materials.NAME]`` table names a hyperelastic ``model`` with its
``density``, ``youngs_modulus`` and ``poisson_ratio``; one scene uses one model (per-body
moduli and densities may differ). Bodies:

* ``box``: ``lower`` corner, ``size`` and ``resolution`` (cells per axis; 6 tets per cell,
  2 triangles per square in 2D);
* ``voxels``: occupied ``cells`` of a grid of ``cell_size`` (a robot of cells);
* ``mesh``: a tetrahedral mesh file (.msh, .vtk, .vtu, .mesh) read with meshio, scaled
  and placed.

Boundary conditions and loads select vertices (or, for muscles, elements by centroid)
inside axis-aligned boxes ``[lo..., hi...]`` of world coordinates: ``pin_regions``
(held vertices), ``load_regions`` with ``load_forces`` (a total force per region, shared
equally by its vertices) and ``muscle_regions`` with ``muscle_fibers`` and
``muscle_stresses`` (one actuation channel per region, driven by ``[actuators]``).
Per-axis conditions for material tests: ``roller_regions`` with ``roller_axes`` hold one
displacement component of the vertices inside (a roller, or a symmetry plane), and
``driven_regions`` with ``driven_axes`` make one component follow the per-step control
``target`` (a grip moved by displacement; ``diffsim sysid`` drives it with a measured load
curve, see :mod:`diffsim.sysid.load_curve`).
Contact: with the ``explicit`` integrator, the ``ground`` and every collider type of
:mod:`diffsim.contact.scene` (plane, box, sphere, capsule, cylinder, heightfield, mesh),
static at their scene pose (their motion is given as pose controls through the API, as
for every solver kind); the ``implicit`` and ``quasi_static`` integrators take the
``ground`` only.
"""

from __future__ import annotations

import numpy as np

from ...scene.errors import Issue, SceneError, key_path
from ...scene.schema import MAX_LENGTH, MAX_MODULUS, OPTIONAL, REQUIRED, Computed, Context, Key, variant_table
from ...scene.solvers import (
    SolverKind,
    collider_types,
    register_solver,
    require_stable_substep,
    solid_material_keys,
)
from .builder import MATERIALS, FEMBuilder
from .solver import INTEGRATORS, LINEAR_SOLVERS

MAX_ELEMENTS = 2_000_000


def _zeros(ctx: Context) -> list[float]:
    return [0.0] * ctx.dim


SOLVER_KEYS = {
    "integrator": Key("str", "explicit (symplectic Euler), implicit (backward Euler) or quasi_static",
                      "explicit", choices=INTEGRATORS),
    "damping_mass": Key("float", "Rayleigh mass damping alpha", 0.0, "1/s", lo=0.0, hi=1e6),
    "damping_stiffness": Key("float", "Rayleigh stiffness damping beta", 0.0, "s", lo=0.0, hi=1e3),
    "newton_tol": Key("float", "implicit: Newton tolerance on the update, relative to the mesh size",
                      1e-10, "-", positive=True, hi=1.0),
    "linear_solver": Key("str", "implicit: linear solver", "auto", choices=LINEAR_SOLVERS),
}

MATERIAL = solid_material_keys(Key("str", "hyperelastic model", "stable_neo_hookean",
                                    choices=MATERIALS), max_poisson=0.4999)


_AXIS_KEYS = {
    "roller_regions": Key("array", "boxes [lo..., hi...]: vertices inside are held along "
                          "roller_axes only (rollers, symmetry planes)", [], "m",
                          lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("*", "2*dim")),
    "roller_axes": Key("array", "the held axis (0: x, 1: y, 2: z) per roller region", [], "-",
                       lo=0, hi=2, shape=("*",), dtype="int"),
    "driven_regions": Key("array", "boxes [lo..., hi...]: vertices inside follow the control "
                          "`target` along driven_axes (a grip moved by displacement)", [], "m",
                          lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("*", "2*dim")),
    "driven_axes": Key("array", "the driven axis per driven region", [], "-", lo=0, hi=2,
                       shape=("*",), dtype="int"),
}


def _common() -> dict[str, Key]:
    region = dict(lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("*", "2*dim"))
    return {
        "name": Key("str", "body name", OPTIONAL),
        "material": Key("str", "name of a [materials.NAME] table (default: the material defaults)", OPTIONAL),
        "velocity": Key("array", "initial velocity of every vertex", Computed(_zeros, "zeros"), "m/s",
                        lo=-1e6, hi=1e6, shape=("dim",)),
        "pin_regions": Key("array", "boxes [lo..., hi...]: vertices inside are held fixed", [], "m", **region),
        "load_regions": Key("array", "boxes [lo..., hi...] of loaded vertices", [], "m", **region),
        "load_forces": Key("array", "total nodal force per load region, shared equally", [], "N",
                           lo=-MAX_MODULUS, hi=MAX_MODULUS, shape=("*", "dim")),
        "muscle_regions": Key("array", "boxes [lo..., hi...]: elements whose centroid is inside "
                              "form one muscle (one actuation channel) each", [], "m", **region),
        "muscle_fibers": Key("array", "fibre direction per muscle (rest frame)", [], "-", lo=-1e6, hi=1e6,
                             shape=("*", "dim")),
        "muscle_stresses": Key("array", "peak active stress per muscle: tension sigma u along the fibre",
                               [], "Pa", lo=-MAX_MODULUS, hi=MAX_MODULUS, shape=("*",)),
        **_AXIS_KEYS,
    }


def _check_body(v: dict, path, ctx: Context) -> None:
    if len(v["load_regions"]) != len(v["load_forces"]):
        ctx.add(path + ["load_forces"], f"expected one force per load region ({len(v['load_regions'])}), "
                f"found {len(v['load_forces'])}")
    n = len(v["muscle_regions"])
    for key in ("muscle_fibers", "muscle_stresses"):
        if len(v[key]) != n:
            ctx.add(path + [key], f"expected one entry per muscle region ({n}), found {len(v[key])}")
    _check_axis_regions(v, path, ctx)
    if "size" in v and min(v["size"]) <= 0:
        ctx.add(path + ["size"], "expected positive sizes")


def _check_axis_regions(v: dict, path, ctx: Context) -> None:
    """One axis per roller / driven region, each below the scene's dimension."""
    for kind in ("roller", "driven"):
        regions, axes = v[f"{kind}_regions"], v[f"{kind}_axes"]
        if len(axes) != len(regions):
            ctx.add(path + [f"{kind}_axes"], f"expected one axis per {kind} region "
                    f"({len(regions)}), found {len(axes)}")
        for k, a in enumerate(axes):
            if ctx.dim is not None and a >= ctx.dim:
                ctx.add(path + [f"{kind}_axes", k], f"expected an axis < dim ({ctx.dim}), found {a}")


BOX = variant_table("box", {
    "lower": Key("array", "lower corner", REQUIRED, "m", lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
    "size": Key("array", "extent along each axis", REQUIRED, "m", lo=0.0, hi=MAX_LENGTH, shape=("dim",)),
    "resolution": Key("array", "cells along each axis", REQUIRED, "-", lo=1, hi=1000, shape=("dim",),
                      dtype="int"),
    **_common()}, "A box of cells, 6 tetrahedra per cell (2 triangles per square in 2D).", _check_body)
VOXELS = variant_table("voxels", {
    "cells": Key("array", "occupied grid cells [i, j(, k)]", REQUIRED, "-", lo=-10_000, hi=10_000,
                 shape=("*", "dim"), dtype="int", min_items=1),
    "cell_size": Key("float", "cell edge length", 0.05, "m", positive=True, hi=MAX_LENGTH),
    "origin": Key("array", "position of grid node (0, 0(, 0))", Computed(_zeros, "zeros"), "m",
                  lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
    **_common()}, "Chosen cells of a grid, meshed as one connected body.", _check_body)
MESH = variant_table("mesh", {
    "file": Key("path", "tetrahedral (3D) or triangular (2D) mesh read with meshio", REQUIRED,
                suffixes=(".msh", ".vtk", ".vtu", ".mesh")),
    "scale": Key("float", "scale applied to the vertices", 1.0, "-", positive=True, hi=MAX_LENGTH),
    "position": Key("array", "translation applied after scaling", Computed(_zeros, "zeros"), "m",
                    lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
    **_common()}, "A mesh file.", _check_body)


def _material(spec: dict, body: dict) -> dict:
    return {**{k: key.default for k, key in MATERIAL.items()},
            **spec["materials"].get(body.get("material"), {})}


def _check(spec: dict, ctx: Context) -> None:
    models = {_material(spec, body)["model"] for body in spec["bodies"]}
    if len(models) > 1:
        ctx.add(["bodies"], f"expected one material model per FEM scene, found {sorted(models)}")
    integrator = spec["solver"]["integrator"]
    for i, c in enumerate(spec["colliders"]):
        if c["type"] != "ground" and integrator != "explicit":
            ctx.add(["colliders", i, "type"], f"the {integrator} FEM integrator supports the ground "
                    f"collider only, found {c['type']!r}; integrator = 'explicit' supports every "
                    "collider type")
    cells = 0
    for body in spec["bodies"]:
        if body["type"] == "box":
            cells += int(np.prod(body["resolution"]))
        elif body["type"] == "voxels":
            cells += len(body["cells"])
    if cells * 6 > MAX_ELEMENTS:
        ctx.add(["bodies"], f"expected at most {MAX_ELEMENTS} elements in all")


def _mesh(body: dict, dim: int, loader):
    from . import mesh

    if body["type"] == "box":
        gen = mesh.box if dim == 3 else mesh.rectangle
        return gen(tuple(body["resolution"]), tuple(body["size"]), tuple(body["lower"]))
    if body["type"] == "voxels":
        return mesh.voxels(body["cells"], body["cell_size"], body["origin"])
    m = mesh.load_mesh(loader.resolve(body["file"]), dim=dim)
    return mesh.Mesh(m.vertices * body["scale"] + np.asarray(body["position"], float), m.elements, m.name)


def _inside(points: np.ndarray, region, dim: int) -> np.ndarray:
    lo, hi = np.asarray(region[:dim]), np.asarray(region[dim:])
    return np.all((points >= lo) & (points <= hi), axis=1)


def _assemble(spec: dict, loader) -> FEMBuilder:
    sol = spec["solver"]
    dim = sol["dim"]
    models = {_material(spec, body)["model"] for body in spec["bodies"]}
    b = FEMBuilder(dim, gravity=sol["gravity"], material=models.pop())
    for i, body in enumerate(spec["bodies"]):
        path = ["bodies", i]
        mat = _material(spec, body)
        try:
            m = _mesh(body, dim, loader)
            vids, eids = b.add_mesh(m, density=mat["density"], youngs_modulus=mat["youngs_modulus"],
                                    poisson_ratio=mat["poisson_ratio"], velocity=body["velocity"])
        except (ValueError, OSError) as exc:
            if isinstance(exc, SceneError):
                raise
            raise SceneError([Issue(key_path(path), str(exc))], loader.file) from None
        centroids = m.vertices[m.elements].mean(axis=1)
        for key, regions in (("pin_regions", body["pin_regions"]), ("load_regions", body["load_regions"]),
                             ("muscle_regions", body["muscle_regions"])):
            for r, region in enumerate(regions):
                pts = centroids if key == "muscle_regions" else m.vertices
                sel = np.flatnonzero(_inside(pts, region, dim))
                if len(sel) == 0:
                    raise SceneError([Issue(key_path(path + [key, r]), "the region contains no "
                                            f"{'element centroid' if key == 'muscle_regions' else 'vertex'} "
                                            "of this body")], loader.file)
                if key == "pin_regions":
                    b.pin(vids[sel])
                elif key == "load_regions":
                    b.add_load(vids[sel], np.asarray(body["load_forces"][r], float) / len(sel))
                else:
                    b.add_muscle(eids[sel], body["muscle_fibers"][r], body["muscle_stresses"][r])
        _apply_axis_regions(b, body, m.vertices, vids, path, dim, loader.file)
    for c in spec["colliders"]:
        collider_types()[c["type"]].apply(b, c)
    b.set_damping(sol["damping_mass"], sol["damping_stiffness"])
    return b


def _apply_axis_regions(b: FEMBuilder, body: dict, vertices: np.ndarray, vids: np.ndarray, path,
                        dim: int, file) -> None:
    """Rollers (``b.pin(axes=[a])``) and driven components (``b.add_kinematic(axes=[a])``)."""
    for kind in ("roller", "driven"):
        for r, (region, axis) in enumerate(zip(body[f"{kind}_regions"], body[f"{kind}_axes"])):
            where = key_path(path + [f"{kind}_regions", r])
            sel = np.flatnonzero(_inside(vertices, region, dim))
            if len(sel) == 0:
                raise SceneError([Issue(where, "the region contains no vertex of this body")], file)
            try:
                if kind == "roller":
                    b.pin(vids[sel], axes=[int(axis)])
                else:
                    b.add_kinematic(vids[sel], axes=[int(axis)])
            except ValueError as exc:  # an axis both held and driven
                raise SceneError([Issue(where, str(exc))], file) from None


def _param_names(b: FEMBuilder) -> tuple:
    ground = tuple(f"ground_{n}" for n in ("height", "stiffness", "damping", "friction",
                                           "smoothing", "friction_smoothing"))
    return ("gravity",) + ground + ("element_mu", "element_lam", "element_density", "element_active_stress",
                                    "element_fiber", "damping_mass", "damping_stiffness")


def _initial_state(b: FEMBuilder, num_envs: int) -> dict:
    x, v = np.concatenate(b.vertices), np.concatenate(b.velocities)
    return {"x": np.repeat(x[None], num_envs, 0), "v": np.repeat(v[None], num_envs, 0)}


def _make_solver(model, spec: dict, window: int):
    from .solver import FEMConfig, SolverFEM

    sol = spec["solver"]
    cfg = FEMConfig(integrator=sol["integrator"], substeps=sol["substeps"], newton_tol=sol["newton_tol"],
                    linear_solver=sol["linear_solver"])
    solver = SolverFEM(model, cfg, window=window)
    if cfg.integrator == "explicit":
        require_stable_substep(sol, solver.max_stable_dt(),
                               "the explicit stability limit (shortest edge / wave speed)",
                               " or integrator = 'implicit'")
    return solver


def _bytes_per_slot(counts: dict, dim: int, num_envs: int, itemsize: int) -> int:
    # explicit (the larger): x, v, net force and lumped mass, each with its gradient
    return 2 * counts["vertex"] * (3 * dim + 1) * num_envs * itemsize


def _drawing(model) -> dict:
    facets = model.meta["surface"]
    if model.dim == 2:  # every triangle edge: the plate reads as a mesh
        tri = model.topology["elements"]
        edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    else:  # the surface triangles' edges
        edges = np.concatenate([facets[:, [0, 1]], facets[:, [1, 2]], facets[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    return {"lines": edges, "line_actuator": np.full(len(edges), -1), "triangles": facets}


register_solver(SolverKind(
    name="fem",
    doc="Linear tetrahedra (3D) / triangles (2D) of hyperelastic material with muscles "
        "(diffsim.solvers.fem.SolverFEM: explicit symplectic Euler, implicit backward Euler or "
        "quasi-static Newton; adjoint gradients on the implicit paths).",
    solver_keys=SOLVER_KEYS,
    material_keys=MATERIAL,
    body_types={"box": BOX, "voxels": VOXELS, "mesh": MESH},
    assemble=_assemble,
    counts=lambda b: {"particle": b.vertex_count, "vertex": b.vertex_count,
                      "element": b.element_count, "actuator": b.actuator_count},
    param_names=_param_names,
    initial_state=_initial_state,
    make_solver=_make_solver,
    bytes_per_slot=_bytes_per_slot,
    drawing=_drawing,
    check=_check,
))
