"""``[solver] kind = "mpm"``: MLS-MPM bodies of elastic, plastic, granular and fluid material.

Importing this module registers the kind with :mod:`diffsim.scene.solvers`.

``[solver]`` adds the grid (``grid_res`` nodes per axis over ``domain_size`` metres from
``domain_origin``), the wall condition and friction, and the default particle spacing.
A ``[materials.NAME]`` table names a constitutive ``model`` and its parameters in SI
units; keys a model does not use are refused. Bodies:

* ``box``: ``lower`` corner and ``size``; ``ball``: ``center`` and ``radius`` (a disc in
  2D); ``mesh``: a closed triangle mesh file read with meshio, scaled and placed;
  ``particles``: explicit ``positions``.

Every body may be a muscle (``actuated = true``): it gets its own actuation channel, a
fibre direction ``fiber`` and a stress per unit activation ``actuation_strength`` [Pa].
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
from . import boundary
from .builder import MPMBuilder

MAX_PARTICLES = 2_000_000
_MODELS = ("corotated", "neo_hookean", "linear", "stable_neo_hookean", "von_mises", "snow",
           "drucker_prager", "fluid")
# extra parameter -> models that take it (the others refuse it)
_EXTRAS = {"yield_stress": ("von_mises",), "friction_angle": ("drucker_prager",),
           "cohesion": ("drucker_prager",),
           "critical_compression": ("snow",), "critical_stretch": ("snow",), "hardening": ("snow",),
           "bulk_modulus": ("fluid",)}


def _zeros(ctx: Context) -> list[float]:
    return [0.0] * ctx.dim


def _up(ctx: Context) -> list[float]:
    return [0.0] * (ctx.dim - 1) + [1.0]


SOLVER_KEYS = {
    "grid_res": Key("int", "grid nodes per axis", 64, "-", lo=8, hi=1024),
    "domain_origin": Key("array", "world position of grid node 0", Computed(_zeros, "zeros"), "m",
                         lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
    "domain_size": Key("float", "grid extent per axis (dx = domain_size / grid_res)", 1.0, "m",
                       positive=True, hi=MAX_LENGTH),
    "boundary": Key("str", "domain walls: sticky (v = 0), slip (no normal velocity) or separate "
                    "(no inflow)", "separate", choices=boundary.KINDS),
    "boundary_width": Key("int", "wall thickness in grid cells", 3, "-", lo=1, hi=64),
    "ground_boundary": Key("str", "condition of the ground collider", "separate", choices=boundary.KINDS),
    "wall_friction": Key("float", "Coulomb friction of the domain walls", 0.0, "-", lo=0.0, hi=100.0),
    "particle_spacing": Key("float", "default particle lattice spacing (0: dx / 2)", 0.0, "m",
                            lo=0.0, hi=MAX_LENGTH),
}

MATERIAL = {
    **solid_material_keys(Key("str", "constitutive model", "corotated", choices=_MODELS),
                          max_poisson=0.499),
    "yield_stress": Key("float", "von_mises: yield stress", OPTIONAL, "Pa", positive=True, hi=MAX_MODULUS),
    "friction_angle": Key("float", "drucker_prager: friction angle (30 deg = 0.5236)", OPTIONAL, "rad",
                          lo=0.0, hi=1.5),
    "cohesion": Key("float", "drucker_prager: cohesion, the tensile log strain of the cone's apex "
                    "(0: dry sand; 1e-3 keeps sand at rest off the apex kink)", OPTIONAL, "-",
                    lo=0.0, hi=1.0),
    "critical_compression": Key("float", "snow: critical compression theta_c", OPTIONAL, "-", lo=0.0, hi=0.99),
    "critical_stretch": Key("float", "snow: critical stretch theta_s", OPTIONAL, "-", lo=0.0, hi=10.0),
    "hardening": Key("float", "snow: hardening coefficient xi", OPTIONAL, "-", lo=0.0, hi=100.0),
    "bulk_modulus": Key("float", "fluid: bulk modulus", OPTIONAL, "Pa", positive=True, hi=MAX_MODULUS),
}


def _common() -> dict[str, Key]:
    return {
        "name": Key("str", "body name", OPTIONAL),
        "material": Key("str", "name of a [materials.NAME] table (default: corotated defaults)", OPTIONAL),
        "velocity": Key("array", "initial velocity of every particle", Computed(_zeros, "zeros"), "m/s",
                        lo=-1e6, hi=1e6, shape=("dim",)),
        "spacing": Key("float", "particle lattice spacing (default: [solver] particle_spacing)",
                       OPTIONAL, "m", positive=True, hi=MAX_LENGTH),
        "jitter": Key("float", "random offset of each particle, as a fraction of the spacing",
                      0.0, "-", lo=0.0, hi=1.0),
        "particle_volume": Key("float", "override the volume each particle represents", OPTIONAL,
                               "m^dim", positive=True, hi=MAX_MODULUS),
        "actuated": Key("bool", "a muscle: the body gets its own actuation channel", False),
        "fiber": Key("array", "muscle fibre direction (rest frame)", Computed(_up, "up"), "-",
                     lo=-1e6, hi=1e6, shape=("dim",)),
        "actuation_strength": Key("float", "muscle stress per unit activation", 1e4, "Pa",
                                  lo=-MAX_MODULUS, hi=MAX_MODULUS),
    }


def _check_positive_size(v, path, ctx):
    if "size" in v and min(v["size"]) <= 0:
        ctx.add(path + ["size"], "expected positive sizes")


BOX = variant_table("box", {
    "lower": Key("array", "lower corner", REQUIRED, "m", lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
    "size": Key("array", "extent along each axis", REQUIRED, "m", lo=0.0, hi=MAX_LENGTH, shape=("dim",)),
    **_common()}, "Particles filling an axis-aligned box.", _check_positive_size)
BALL = variant_table("ball", {
    "center": Key("array", "centre", REQUIRED, "m", lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
    "radius": Key("float", "radius", REQUIRED, "m", positive=True, hi=MAX_LENGTH),
    **_common()}, "Particles filling a disc (2D) or sphere (3D).")
MESH = variant_table("mesh", {
    "file": Key("path", "closed triangle mesh (any format meshio reads)", REQUIRED,
                suffixes=(".obj", ".ply", ".stl", ".off", ".vtk", ".vtu", ".msh")),
    "scale": Key("float", "scale applied to the vertices", 1.0, "-", positive=True, hi=MAX_LENGTH),
    "position": Key("array", "translation applied after scaling", Computed(_zeros, "zeros"), "m",
                    lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
    **_common()}, "Particles filling a closed triangle mesh (inside test by winding number).")
PARTICLES = variant_table("particles", {
    "positions": Key("array", "particle positions", REQUIRED, "m", lo=-MAX_LENGTH, hi=MAX_LENGTH,
                     shape=("*", "dim"), min_items=1),
    **_common()}, "Explicit particles.")


def _check(spec: dict, ctx: Context) -> None:
    for name, mat in spec["materials"].items():
        for key, models in _EXTRAS.items():
            if key in mat and mat["model"] not in models:
                ctx.add(["materials", name, key], f"not a parameter of model {mat['model']!r} "
                        f"(used by {', '.join(models)})")
    sol = spec["solver"]
    n = 0
    for i, body in enumerate(spec["bodies"]):
        s = body.get("spacing") or sol["particle_spacing"] or sol["domain_size"] / sol["grid_res"] / 2
        if body["type"] == "box":
            n += int(np.prod(np.maximum(1, np.round(np.asarray(body["size"]) / s))))
        elif body["type"] == "ball":
            n += int((2 * body["radius"] / s + 1) ** sol["dim"])
        elif body["type"] == "particles":
            n += len(body["positions"])
        if n > MAX_PARTICLES:
            ctx.add(["bodies", i], f"expected at most {MAX_PARTICLES} particles in all; "
                    "use a larger spacing")
            return


def _material_args(spec: dict, body: dict) -> dict:
    mat = dict(spec["materials"].get(body.get("material"), {}))
    model = mat.pop("model", "corotated")
    args = {"material": model, "density": mat.pop("density", MATERIAL["density"].default),
            "youngs_modulus": mat.pop("youngs_modulus", MATERIAL["youngs_modulus"].default),
            "poisson_ratio": mat.pop("poisson_ratio", MATERIAL["poisson_ratio"].default)}
    args.update(mat)  # the model's extra parameters (checked against the model in _check)
    return args


def _assemble(spec: dict, loader) -> MPMBuilder:
    sol = spec["solver"]
    dx = sol["domain_size"] / sol["grid_res"]
    b = MPMBuilder(dim=sol["dim"], gravity=sol["gravity"],
                   particle_spacing=sol["particle_spacing"] or dx / 2, seed=sol["seed"])
    b.set_walls(sol["wall_friction"])
    for i, body in enumerate(spec["bodies"]):
        args = _material_args(spec, body)
        args.update(velocity=body["velocity"], name=body.get("name"))
        if "particle_volume" in body:
            args["volume"] = body["particle_volume"]
        if body["actuated"]:
            args["actuator"] = b.add_actuator_group(body["fiber"], body["actuation_strength"])
        sampling = {"spacing": body.get("spacing"), "jitter": body["jitter"]}
        try:
            if body["type"] == "box":
                b.add_box(body["lower"], body["size"], **sampling, **args)
            elif body["type"] == "ball":
                b.add_ball(body["center"], body["radius"], **sampling, **args)
            elif body["type"] == "mesh":
                b.add_mesh(str(loader.resolve(body["file"])), position=body["position"],
                           scale=body["scale"], **sampling, **args)
            else:
                b.add_particles(body["positions"], **args)
        except (ValueError, OSError) as exc:
            if isinstance(exc, SceneError):
                raise
            raise SceneError([Issue(key_path(["bodies", i]), str(exc))], loader.file) from None
        _check_inside(b, spec, i, loader)
    for c in spec["colliders"]:
        collider_types()[c["type"]].apply(b, c)
    return b


def _check_inside(b: MPMBuilder, spec: dict, i: int, loader) -> None:
    sol = spec["solver"]
    dx = sol["domain_size"] / sol["grid_res"]
    lo = np.asarray(sol["domain_origin"]) + dx * sol["boundary_width"]
    hi = np.asarray(sol["domain_origin"]) + dx * (sol["grid_res"] - sol["boundary_width"])
    x = b.bodies[-1]["x"]
    if np.any(x < lo) or np.any(x > hi):
        raise SceneError([Issue(key_path(["bodies", i]), f"particles outside the grid between its "
                                f"walls, [{lo.tolist()}, {hi.tolist()}] (found "
                                f"[{x.min(0).tolist()}, {x.max(0).tolist()}])")], loader.file)


def _initial_state(b: MPMBuilder, num_envs: int) -> dict:
    return b.initial_state(num_envs)


def _make_solver(model, spec: dict, window: int):
    from .solver import SolverMPM

    sol = spec["solver"]
    cfg = SolverMPM.Config(grid_res=sol["grid_res"], domain_origin=tuple(sol["domain_origin"]),
                           domain_size=sol["domain_size"], substeps=sol["substeps"],
                           boundary=sol["boundary"], boundary_width=sol["boundary_width"],
                           ground_boundary=sol["ground_boundary"])
    solver = SolverMPM(model, cfg, window=window)
    require_stable_substep(sol, solver.max_stable_dt(cfl=1.0),
                           "the CFL limit dx / c of the stiffest material")
    return solver


def _bytes_per_slot(counts: dict, dim: int, num_envs: int, itemsize: int) -> int:
    # x, v, C, F and Jp, each with its gradient
    return 2 * counts["particle"] * (2 * dim + 2 * dim * dim + 1) * num_envs * itemsize


register_solver(SolverKind(
    name="mpm",
    doc="MLS-MPM particles of elastic, plastic, granular and fluid material with muscles "
        "(diffsim.solvers.mpm.SolverMPM, quadratic B-splines, APIC, grid boundaries).",
    solver_keys=SOLVER_KEYS,
    material_keys=MATERIAL,
    body_types={"box": BOX, "ball": BALL, "mesh": MESH, "particles": PARTICLES},
    assemble=_assemble,
    counts=lambda b: {"particle": b.particle_count, "actuator": b.actuator_count},
    param_names=lambda b: b.param_names(),
    initial_state=_initial_state,
    make_solver=_make_solver,
    bytes_per_slot=_bytes_per_slot,
    drawing=lambda model: {},
    check=_check,
))
