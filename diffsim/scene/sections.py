"""The sections every scene shares, and validation of a whole scene document.

A scene file has these top-level sections (the solver family adds keys to ``[solver]``
and defines ``[materials.NAME]`` and the ``[[bodies]]`` types, see
:mod:`diffsim.scene.solvers`):

``[scene]`` name and description; ``[solver]`` kind, dimension, time step, steps,
substeps, environments, gravity, window; ``[materials.NAME]``; ``[[bodies]]``;
``[[colliders]]``; ``[initial]`` initial-condition changes; ``[actuators]`` the open-loop
drive used by ``diffsim run``; ``[output]`` what ``diffsim run`` writes; ``[[free]]``
parameters free for optimisation, with bounds and scaling.
"""

from __future__ import annotations

import dataclasses
import math

from ..core.builder import GROUND_MODELS, GroundContact
from .assets import ARRAY_SUFFIXES
from .errors import describe, did_you_mean
from .schema import (
    MAX_LENGTH,
    MAX_MODULUS,
    OPTIONAL,
    REQUIRED,
    Computed,
    Context,
    Key,
    Table,
    check_value,
    validate_array,
    validate_named,
    validate_table,
    validate_variants,
    variant_table,
)
from .solvers import (
    EXTENSION_SECTIONS,
    ColliderType,
    collider_types,
    extension_section,
    register_collider,
    solver_kinds,
)

OUTPUT_FORMATS = ("gif", "mp4", "png", "vtu", "ply", "npz")
DRIVES = ("none", "constant", "sine", "file")


def _zeros(ctx: Context) -> list[float]:
    return [0.0] * ctx.dim


def _gravity(ctx: Context) -> list[float]:
    return [0.0] * (ctx.dim - 1) + [-9.81]


SCENE = Table({
    "name": Key("str", "scene name (output file names, titles)",
                Computed(lambda ctx: ctx.stem or "scene",
                         "the scene file's name without .toml")),
    "description": Key("str", "free text", ""),
}, "Name and description.")

SOLVER_COMMON = {
    "kind": Key("str", "solver family (see the kinds below)", REQUIRED),
    "dim": Key("int", "spatial dimension; the last axis points up", 2, "-", lo=2, hi=3),
    "dt": Key("float", "time step of one control step", REQUIRED, "s", positive=True, hi=10.0),
    "steps": Key("int", "number of steps of a run", REQUIRED, "-", lo=1, hi=100_000_000),
    "substeps": Key("int", "solver substeps per step (each of length dt / substeps)", 1, "-",
                    lo=1, hi=10_000),
    "num_envs": Key("int", "environments simulated together (batch size B)", 1, "-",
                    lo=1, hi=100_000),
    "gravity": Key("array", "gravitational acceleration", Computed(_gravity, "-9.81 on the last axis"),
                   "m/s^2", lo=-1e6, hi=1e6, shape=("dim",)),
    "window": Key("int", "steps held on the device for gradients (0: as many as fit "
                  "memory_mb, at most steps)", 0, "-", lo=0, hi=100_000_000),
    "memory_mb": Key("float", "device memory the step window may use", 256.0, "MiB",
                     positive=True, hi=1e7),
    "seed": Key("int", "seed of every random choice in the scene (initial noise)", 0, "-",
                lo=0, hi=2**32 - 1),
}
SOLVER_DOC = "Solver family and time stepping; the family adds its own keys."

_G = {f.name: f.default for f in dataclasses.fields(GroundContact)}
GROUND = variant_table("ground", {
    "height": Key("float", "ground level along the up (last) axis", _G["height"], "m",
                  lo=-MAX_LENGTH, hi=MAX_LENGTH),
    "stiffness": Key("float", "penalty normal stiffness", _G["stiffness"], "N/m", lo=0.0,
                     hi=MAX_MODULUS),
    "damping": Key("float", "normal damping", _G["damping"], "N s/m", lo=0.0, hi=MAX_MODULUS),
    "friction": Key("float", "Coulomb friction coefficient", _G["friction"], "-", lo=0.0, hi=100.0),
    "smoothing": Key("float", "contact depth smoothing length (0: sharp contact)",
                     _G["smoothing"], "m", lo=0.0, hi=MAX_LENGTH),
    "friction_smoothing": Key("float", "slip speed below which friction is viscous",
                              _G["friction_smoothing"], "m/s", lo=0.0, hi=1e6),
    "model": Key("str", "contact model: 'penalty' (spring-damper, smoothed Coulomb friction) or "
                 "'sticky' (inelastic no-slip impact at the time of impact, as DiffTaichi's "
                 "robots; uses height only; mass_spring solver only)", _G["model"],
                 choices=GROUND_MODELS),
}, "Half-space below ``height`` with penalty contact and smoothed Coulomb friction, or sticky "
   "time-of-impact contact.")


def _apply_ground(builder, values: dict) -> None:
    builder.add_ground(**{k: v for k, v in values.items() if k != "type"})


def _draw_ground(values: dict, dim: int) -> dict:
    up = [0.0] * dim
    up[-1] = 1.0
    return {"type": "plane", "point": [0.0] * (dim - 1) + [values["height"]], "normal": up}


# the ground_* parameters exist in every model (ModelBuilder), so they add no names here
register_collider(ColliderType("ground", GROUND, _apply_ground, _draw_ground,
                               param_prefix="ground_", max_count=1, params=()))


INITIAL = Table({
    "file": Key("path", "npz with arrays x and/or v, [N, dim] or [B, N, dim], replacing "
                "the bodies' positions/velocities", OPTIONAL, suffixes=(".npz",)),
    "offset": Key("array", "translation added to every position", Computed(_zeros, "zeros"),
                  "m", lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
    "velocity": Key("array", "velocity added to every particle", Computed(_zeros, "zeros"),
                    "m/s", lo=-1e6, hi=1e6, shape=("dim",)),
    "noise": Key("float", "standard deviation of Gaussian noise added to positions, "
                 "independently per environment (seeded by solver.seed)", 0.0, "m",
                 lo=0.0, hi=MAX_LENGTH),
}, "Changes to the initial state the bodies define (applied in the order file, offset, "
   "velocity, noise).")


def _check_actuators(values: dict, path, ctx: Context) -> None:
    drive = values["drive"]
    if drive == "file" and "file" not in values:
        ctx.add(path + ["file"], "missing required key: drive = 'file' needs a file")
    if drive != "file" and "file" in values:
        ctx.add(path + ["file"], f"only used with drive = 'file' (drive is {drive!r})")


ACTUATORS = Table({
    "drive": Key("str", "open-loop actuation of every channel u_k(t) in [-1, 1] used by "
                 "`diffsim run`", "none", choices=DRIVES),
    "value": Key("float", "constant drive: u_k = value", 0.0, "-", lo=-1.0, hi=1.0),
    "amplitude": Key("float", "sine drive amplitude A", 1.0, "-", lo=0.0, hi=1.0),
    "frequency": Key("float", "sine drive frequency f", 2.0, "Hz", lo=0.0, hi=1e4),
    "phase": Key("float", "sine drive phase of channel 0", 0.0, "rad", lo=-1e3, hi=1e3),
    "phase_step": Key("float", "sine drive phase added per channel: "
                      "u_k(t) = A sin(2 pi f t + phase + k phase_step)", 0.0, "rad",
                      lo=-1e3, hi=1e3),
    "file": Key("path", "file drive: array 'actions' [T, A] or [T, B, A] (T >= steps)",
                OPTIONAL, suffixes=ARRAY_SUFFIXES),
}, "How actuators are driven when no controller is attached.", _check_actuators)


def _check_output(values: dict, path, ctx: Context) -> None:
    b = values.get("bounds")
    if b is not None and any(not b[2 * i] < b[2 * i + 1] for i in range(ctx.dim)):
        ctx.add(path + ["bounds"], f"expected [min, max] pairs with min < max, found {b}")


OUTPUT = Table({
    "dir": Key("path", "output directory (default: out/<scene name> in the working directory)",
               OPTIONAL),
    "formats": Key("strings", "files `diffsim run` writes", ["gif", "npz"], choices=OUTPUT_FORMATS),
    "every": Key("int", "write every n-th frame to images and meshes (0: one frame per "
                 "1/fps of simulated time)", 0, "-", lo=0, hi=100_000_000),
    "fps": Key("float", "frame rate of GIF and MP4", 30.0, "1/s", positive=True, hi=1000.0),
    "size": Key("array", "image width and height", [480, 480], "px", lo=16, hi=4096,
                shape=(2,), dtype="int"),
    "bounds": Key("array", "view window [xmin, xmax, ymin, ymax(, zmin, zmax)] (default: the "
                  "whole trajectory)", OPTIONAL, "m", lo=-MAX_LENGTH, hi=MAX_LENGTH,
                  shape=("2*dim",)),
    "env": Key("int", "environment drawn in pictures and meshes", 0, "-", lo=0, hi=100_000),
}, "What `diffsim run` writes.", _check_output)


def _check_free(values: dict, path, ctx: Context) -> None:
    lo, hi = values["lower"], values["upper"]
    if not lo < hi:
        ctx.add(path + ["upper"], f"expected a number > lower ({lo:g}), found {hi:g}")
    elif values["scale"] == "log" and not lo > 0:
        ctx.add(path + ["lower"], f"expected a number > 0 with scale = 'log', found {lo:g}")
    init = values.get("init")
    if init is not None and lo < hi and not lo <= init <= hi:
        ctx.add(path + ["init"], f"expected a number in [{lo:g}, {hi:g}], found {init:g}")


FREE = Table({
    "name": Key("str", "model parameter (e.g. spring_stiffness, ground_friction)", REQUIRED),
    "lower": Key("float", "lower bound", REQUIRED, "as the parameter", lo=-1e300, hi=1e300),
    "upper": Key("float", "upper bound", REQUIRED, "as the parameter", lo=-1e300, hi=1e300),
    "scale": Key("str", "optimisation coordinate: linear, or log (lower > 0)", "linear",
                 choices=("linear", "log")),
    "init": Key("float", "starting value, set on every entry (default: the scene's value)",
                OPTIONAL, "as the parameter", lo=-1e300, hi=1e300),
    "index": Key("int", "free only this component of a vector parameter (e.g. 2: gravity's z); "
                 "default: one value shared by every entry", OPTIONAL, "-", lo=0, hi=10**9),
}, "A model parameter free for training or system identification.", _check_free)

SECTIONS = ("scene", "solver", "materials", "bodies", "colliders", "initial", "actuators",
            "output", "free")


def _check_free_overlap(free: list, ctx: Context) -> None:
    """A parameter is free once: whole, or each of its components (``index``) at most once."""
    seen: dict = {}
    for i, f in enumerate(free):
        name = f.get("name")  # absent when the table had problems (already reported)
        if name is None:
            continue
        idx = f.get("index")
        clash = [j for j, other in seen.get(name, []) if idx is None or other is None or other == idx]
        if clash:
            what = f"parameter {name!r}" + (f" component {idx}" if idx is not None else "")
            ctx.add(["free", i, "name"], f"{what} is already free in free[{clash[0]}]")
        seen.setdefault(name, []).append((i, idx))


def validate_document(raw, ctx: Context) -> dict:
    """Validate a parsed scene document; returns the normalised spec (issues in ``ctx``)."""
    if not isinstance(raw, dict):
        ctx.expected([], "a TOML document", raw)
        return {}
    extensions = {}
    for name in raw:
        if name in SECTIONS:
            continue
        try:
            ext = extension_section(name)
        except ImportError as exc:
            ctx.add([name], f"the module providing this section failed to import: {exc}")
            continue
        if ext is None:
            known = SECTIONS + tuple(EXTENSION_SECTIONS)
            ctx.add([name], f"unknown section (valid: {', '.join(known)})", did_you_mean(name, known))
        else:
            extensions[name] = ext
    spec: dict = {"scene": validate_table(raw.get("scene", {}), SCENE, ["scene"], ctx) or {}}

    solver_raw = raw.get("solver")
    kind = None
    if solver_raw is None:
        ctx.add(["solver"], "missing required section [solver]")
    elif not isinstance(solver_raw, dict):
        ctx.expected(["solver"], "a table [solver]", solver_raw)
    else:
        kinds = solver_kinds()
        name = solver_raw.get("kind")
        if name is None:
            ctx.add(["solver", "kind"], "missing required key: one of " + ", ".join(map(repr, kinds)))
        elif not isinstance(name, str) or name not in kinds:
            ctx.add(["solver", "kind"], "expected one of " + ", ".join(map(repr, kinds))
                    + f", found {describe(name)}",
                    did_you_mean(name, kinds) if isinstance(name, str) else None)
        else:
            kind = kinds[name]
        # dim first: array shapes and computed defaults below depend on it
        dim = check_value(solver_raw.get("dim", 2), SOLVER_COMMON["dim"], ["solver", "dim"],
                          Context(dim=2))
        ctx.dim = dim if isinstance(dim, int) and dim in (2, 3) else 2
        keys = dict(SOLVER_COMMON)
        if kind is not None:
            keys.update(kind.solver_keys)
        else:  # unknown kind: check the common keys only, its own keys are unknowable
            solver_raw = {k: v for k, v in solver_raw.items() if k in keys and k != "kind"}
            keys["kind"] = Key("str", "", OPTIONAL)
        spec["solver"] = validate_table(solver_raw, Table(keys), ["solver"], ctx) or {}
    if kind is None:
        return spec

    spec["materials"] = validate_named(raw.get("materials", {}), Table(kind.material_keys),
                                       ["materials"], ctx)
    if "bodies" not in raw:
        ctx.add(["bodies"], "missing required section: at least one [[bodies]] table")
    spec["bodies"] = validate_variants(raw.get("bodies", []), kind.body_types, ["bodies"], ctx,
                                       min_items=1 if "bodies" in raw else 0)
    colliders = collider_types()
    spec["colliders"] = validate_variants(raw.get("colliders", []),
                                          {n: c.table for n, c in colliders.items()},
                                          ["colliders"], ctx)
    for name, c in colliders.items():
        n = sum(1 for v in spec["colliders"] if v["type"] == name)
        if n > c.max_count:
            ctx.add(["colliders"], f"at most {c.max_count} collider(s) of type {name!r}, found {n}")
    for i, c in enumerate(spec["colliders"]):
        if c["type"] == "ground" and c.get("model", "penalty") not in kind.ground_models:
            ctx.add(["colliders", i, "model"], f"the {kind.name} solver supports ground model(s) "
                    f"{', '.join(map(repr, kind.ground_models))}, found {c['model']!r}")
    spec["initial"] = validate_table(raw.get("initial", {}), INITIAL, ["initial"], ctx) or {}
    spec["actuators"] = validate_table(raw.get("actuators", {}), ACTUATORS, ["actuators"], ctx) or {}
    spec["output"] = validate_table(raw.get("output", {}), OUTPUT, ["output"], ctx) or {}
    spec["free"] = validate_array(raw.get("free", []), FREE, ["free"], ctx)
    for name, ext in extensions.items():  # optional, kept only when given
        spec[name] = validate_table(raw[name], ext.table, [name], ctx) or {}
    _cross_checks(spec, ctx)
    if kind.check is not None and not ctx.issues:
        kind.check(spec, ctx)
    return spec


def _cross_checks(spec: dict, ctx: Context) -> None:
    materials = spec.get("materials", {})
    for i, body in enumerate(spec.get("bodies", [])):
        mat = body.get("material")
        if mat is not None and mat not in materials:
            ctx.add(["bodies", i, "material"], f"no material {mat!r} in [materials]"
                    + (f" (defined: {', '.join(materials)})" if materials else " (none defined)"),
                    did_you_mean(mat, materials))
    solver, output = spec.get("solver", {}), spec.get("output", {})
    if "env" in output and "num_envs" in solver and output["env"] >= solver["num_envs"]:
        ctx.add(["output", "env"], f"expected an environment index < num_envs "
                f"({solver['num_envs']}), found {output['env']}")
    _check_free_overlap(spec.get("free", []), ctx)
    window, steps = solver.get("window"), solver.get("steps")
    if window and steps and window > steps:
        ctx.add(["solver", "window"], f"expected at most steps ({steps}), found {window}")
    if "dt" in solver and "substeps" in solver and not math.isfinite(solver["dt"] / solver["substeps"]):
        ctx.add(["solver", "dt"], "dt / substeps is not a finite number")
