"""``[solver] kind = "mass_spring"``: particles joined by damped, optionally actuated springs.

Bodies:

* ``particles``: explicit point masses (inline ``positions`` or a ``positions_file``) and a
  list of ``springs`` between them (indices local to the body);
* ``grid_robot``: DiffTaichi's robots, unit cells of a grid, every cell fully braced, the
  vertical edges of actuated cells actuated (:meth:`MassSpringBuilder.add_grid_robot`);
* ``lattice``: a rectangular block of ``counts`` cells at a ``spacing``, fully braced.

A ``[materials.NAME]`` table gives spring ``stiffness``/``damping`` and particle ``mass``;
a body's own keys override its material's, and a body without a material uses the
material defaults.
"""

from __future__ import annotations

import numpy as np

from ...core.builder import MassSpringBuilder
from ..assets import ARRAY_SUFFIXES, check_shape
from ..errors import Issue, SceneError, key_path
from ..schema import MAX_LENGTH, MAX_MODULUS, OPTIONAL, REQUIRED, Computed, Context, Key, variant_table
from ..solvers import SolverKind, collider_types, register_solver

MAX_CELLS = 50_000  # grid-robot and lattice cells in one scene (the builder is pure Python)

MATERIAL = {
    "stiffness": Key("float", "spring stiffness", 3e4, "N/m", lo=0.0, hi=MAX_MODULUS),
    "damping": Key("float", "spring damping along the spring", 0.0, "N s/m", lo=0.0,
                   hi=MAX_MODULUS),
    "mass": Key("float", "mass of each particle", 1.0, "kg", positive=True, hi=MAX_MODULUS),
}


def _zeros(ctx: Context) -> list[float]:
    return [0.0] * ctx.dim


def _common() -> dict[str, Key]:
    return {
        "name": Key("str", "body name (for messages and outputs)", OPTIONAL),
        "material": Key("str", "name of a [materials.NAME] table", OPTIONAL),
        "stiffness": Key("float", "spring stiffness (overrides the material)", OPTIONAL, "N/m",
                         lo=0.0, hi=MAX_MODULUS),
        "damping": Key("float", "spring damping (overrides the material)", OPTIONAL, "N s/m",
                       lo=0.0, hi=MAX_MODULUS),
        "mass": Key("float", "mass of each particle (overrides the material)", OPTIONAL, "kg",
                    positive=True, hi=MAX_MODULUS),
        "velocity": Key("array", "initial velocity of every particle of the body",
                        Computed(_zeros, "zeros"), "m/s", lo=-1e6, hi=1e6, shape=("dim",)),
    }


def _check_particles(v: dict, path, ctx: Context) -> None:
    if ("positions" in v) == ("positions_file" in v):
        ctx.add(path + ["positions"], "expected exactly one of positions and positions_file")
        return
    n = len(v["positions"]) if "positions" in v else None
    if n is not None:
        for key in ("velocities", "masses"):
            if key in v and len(v[key]) != n:
                ctx.add(path + [key], f"expected {n} entries (one per particle), found {len(v[key])}")
    _check_springs(v, n, path, ctx)


def _check_springs(v: dict, n: int | None, path, ctx: Context) -> None:
    for s, (a, b) in enumerate(v["springs"]):
        if a == b or (n is not None and max(a, b) >= n):
            ctx.add(path + ["springs", s], f"expected two distinct particle indices in "
                    f"0..{'N-1' if n is None else n - 1}, found [{a}, {b}]")
            return
    if "actuated" in v:
        for k, s in enumerate(v["actuated"]):
            if s >= len(v["springs"]):
                ctx.add(path + ["actuated", k], f"expected a spring index < {len(v['springs'])}, "
                        f"found {s}")
                return
        if v["actuation"] == 0.0:
            ctx.add(path + ["actuation"], "expected a non-zero amplitude when 'actuated' is given")


PARTICLES = variant_table("particles", {
    "positions": Key("array", "particle positions", OPTIONAL, "m", lo=-MAX_LENGTH, hi=MAX_LENGTH,
                     shape=("*", "dim"), min_items=1),
    "positions_file": Key("path", "positions from a file ([N, dim]; npz array 'positions' or 'x')",
                          OPTIONAL, suffixes=ARRAY_SUFFIXES),
    "velocities": Key("array", "per-particle initial velocities (added to velocity)", OPTIONAL,
                      "m/s", lo=-1e6, hi=1e6, shape=("*", "dim")),
    "masses": Key("array", "per-particle masses (override mass)", OPTIONAL, "kg",
                  lo=1e-300, hi=MAX_MODULUS, shape=("*",)),
    "springs": Key("array", "springs as pairs of particle indices of this body", [], "-",
                   lo=0, hi=10**7, shape=("*", 2), dtype="int"),
    "actuation": Key("float", "rest-length modulation amplitude a of actuated springs: "
                     "L = L0 (1 + a u)", 0.0, "-", lo=-1.0, hi=1.0),
    "actuated": Key("array", "indices into springs of the actuated ones, one channel each "
                    "(default: all springs when actuation != 0)", OPTIONAL, "-", lo=0, hi=10**7,
                    shape=("*",), dtype="int"),
    **_common(),
}, "Explicit particles and springs.", _check_particles)


def _check_cells(v: dict, path, ctx: Context) -> None:
    seen = set()
    for c, cell in enumerate(v["cells"]):
        if cell[-1] not in (0, 1):
            ctx.add(path + ["cells", c], f"expected the last entry (actuated flag) to be 0 or 1, "
                    f"found {cell[-1]}")
            return
        if tuple(cell[:-1]) in seen:
            ctx.add(path + ["cells", c], f"cell {cell[:-1]} is listed twice")
            return
        seen.add(tuple(cell[:-1]))


GRID_ROBOT = variant_table("grid_robot", {
    "cells": Key("array", "cells as [i, j, (k,) actuated]: grid indices and 0/1 flag; an "
                 "actuated cell's vertical edges get one actuator each", REQUIRED, "-",
                 lo=-10_000, hi=10_000, shape=("*", "dim+1"), dtype="int", min_items=1),
    "cell_size": Key("float", "cell edge length", 0.05, "m", positive=True, hi=MAX_LENGTH),
    "origin": Key("array", "position of grid node (0, 0(, 0))", Computed(_zeros, "zeros"), "m",
                  lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
    "actuation": Key("float", "rest-length modulation amplitude of actuated springs", 0.15, "-",
                     lo=-1.0, hi=1.0),
    **_common(),
}, "A robot of fully braced grid cells (DiffTaichi mass_spring robots).", _check_cells)


def _check_lattice(v: dict, path, ctx: Context) -> None:
    if int(np.prod(v["counts"], dtype=np.int64)) > MAX_CELLS:
        ctx.add(path + ["counts"], f"expected at most {MAX_CELLS} cells, found "
                f"{' x '.join(map(str, v['counts']))}")


LATTICE = variant_table("lattice", {
    "counts": Key("array", "cells along each axis ((n+1)^dim particles)", REQUIRED, "-",
                  lo=1, hi=10_000, shape=("dim",), dtype="int"),
    "spacing": Key("float", "particle spacing", 0.05, "m", positive=True, hi=MAX_LENGTH),
    "origin": Key("array", "position of the corner particle", Computed(_zeros, "zeros"), "m",
                  lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
    **_common(),
}, "A rectangular block of particles, every cell fully braced.", _check_lattice)


def _check(spec: dict, ctx: Context) -> None:
    cells = 0
    for body in spec["bodies"]:
        if body["type"] == "grid_robot":
            cells += len(body["cells"])
        elif body["type"] == "lattice":
            cells += int(np.prod(body["counts"], dtype=np.int64))
    if cells > MAX_CELLS:
        ctx.add(["bodies"], f"expected at most {MAX_CELLS} grid and lattice cells in all, found {cells}")


# ----------------------------------------------------------------------------- building


def _assemble(spec: dict, loader) -> MassSpringBuilder:
    sol = spec["solver"]
    b = MassSpringBuilder(dim=sol["dim"], gravity=sol["gravity"], drag=sol["drag"])
    defaults = {k: key.default for k, key in MATERIAL.items()}
    for i, body in enumerate(spec["bodies"]):
        mat = {**defaults, **spec["materials"].get(body.get("material"), {})}
        mat.update({k: body[k] for k in MATERIAL if k in body})
        start = b.particle_count
        try:
            _add_body(b, body, mat, ["bodies", i], loader)
        except ValueError as exc:  # the builder's own checks (SceneError is a ValueError too)
            if isinstance(exc, SceneError):
                raise
            raise SceneError([Issue(key_path(["bodies", i]), str(exc))], loader.file) from None
        v = np.asarray(body["velocity"], float)
        for p in range(start, b.particle_count):
            b.velocities[p] = b.velocities[p] + v
    for c in spec["colliders"]:
        collider_types()[c["type"]].apply(b, c)
    return b


def _add_body(b: MassSpringBuilder, body: dict, mat: dict, path, loader) -> None:
    kind, dim = body["type"], b.dim
    if kind == "particles":
        if "positions" in body:
            pos = np.asarray(body["positions"], float)
        else:
            key = key_path(path + ["positions_file"])
            arrays = loader.arrays(body["positions_file"], key, ("positions", "x"))
            pos = next(iter(arrays.values()))
            check_shape(pos, ((None, dim),), key,
                        f"positions in {loader.resolve(body['positions_file'])}", loader.file)
            if len(pos) == 0 or len(pos) > 1_000_000 or np.abs(pos).max() > MAX_LENGTH:
                raise SceneError([Issue(key, f"expected 1..1000000 positions with |x| <= "
                                        f"{MAX_LENGTH:g}, found {len(pos)}")], loader.file)
            ctx = Context(file=loader.file)
            inline = {k: v for k, v in body.items() if k != "positions_file"}
            _check_particles({**inline, "positions": pos.tolist()}, list(path), ctx)
            ctx.raise_if_any()
        n = len(pos)
        vel = np.asarray(body.get("velocities", np.zeros((n, dim))), float)
        masses = np.asarray(body.get("masses", np.full(n, mat["mass"])), float)
        first = b.particle_count
        for p in range(n):
            b.add_particle(pos[p], vel[p], float(masses[p]))
        actuated = set(body.get("actuated", range(len(body["springs"]))
                            if body["actuation"] != 0.0 else ()))
        for s, (a, c) in enumerate(body["springs"]):
            amp = body["actuation"] if s in actuated else 0.0
            b.add_spring(first + a, first + c, mat["stiffness"], mat["damping"], actuation=amp)
    elif kind == "grid_robot":
        b.add_grid_robot([tuple(c) for c in body["cells"]], body["cell_size"], body["origin"],
                         mat["stiffness"], mat["damping"], body["actuation"], mat["mass"])
    elif kind == "lattice":
        cells = [idx + (0,) for idx in np.ndindex(*body["counts"])]
        b.add_grid_robot(cells, body["spacing"], body["origin"], mat["stiffness"],
                         mat["damping"], 0.0, mat["mass"])
    else:  # the schema admits only the types above
        raise AssertionError(kind)


def _counts(b: MassSpringBuilder) -> dict:
    return {"particle": b.particle_count, "spring": len(b.springs), "actuator": b.actuator_count}


def _param_names(b: MassSpringBuilder) -> tuple:
    ground = tuple(f"ground_{n}" for n in ("height", "stiffness", "damping", "friction",
                                           "smoothing", "friction_smoothing"))
    return ("gravity",) + ground + ("particle_mass", "drag", "spring_stiffness", "spring_damping",
                                    "spring_rest_length", "spring_actuation")


def _initial_state(b: MassSpringBuilder, num_envs: int) -> dict:
    x, v = np.asarray(b.positions, float), np.asarray(b.velocities, float)
    return {"x": np.repeat(x[None], num_envs, 0), "v": np.repeat(v[None], num_envs, 0)}


def _make_solver(model, spec: dict, window: int):
    from ...solvers import SolverMassSpring

    cfg = SolverMassSpring.Config(substeps=spec["solver"]["substeps"])
    return SolverMassSpring(model, cfg, window=window)


def _bytes_per_slot(counts: dict, dim: int, num_envs: int, itemsize: int) -> int:
    # x, v and the force scratch, each with its gradient
    return 3 * 2 * counts["particle"] * dim * num_envs * itemsize


def _drawing(model) -> dict:
    return {"lines": model.topology["spring_indices"],
            "line_actuator": model.topology["spring_actuator"]}


register_solver(SolverKind(
    name="mass_spring",
    doc="Particles joined by damped springs whose rest length actuators modulate "
        "(diffsim.solvers.SolverMassSpring, symplectic Euler, penalty or sticky ground contact).",
    solver_keys={"drag": Key("float", "velocity damping rate: v <- exp(-drag h) v each substep",
                             0.0, "1/s", lo=0.0, hi=1e6)},
    material_keys=MATERIAL,
    body_types={"particles": PARTICLES, "grid_robot": GRID_ROBOT, "lattice": LATTICE},
    assemble=_assemble,
    counts=_counts,
    param_names=_param_names,
    initial_state=_initial_state,
    make_solver=_make_solver,
    ground_models=("penalty", "sticky"),
    bytes_per_slot=_bytes_per_slot,
    drawing=_drawing,
    check=_check,
))
