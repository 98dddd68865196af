"""``[[colliders]]`` types for scene files: plane, box, sphere, capsule, cylinder, heightfield, mesh.

Importing this module registers the seven types with :mod:`diffsim.scene.solvers`
(``register_collider``); the scene registry imports it on discovery. Each entry becomes one
``builder.add_collider_<type>(...)`` call (see :mod:`diffsim.contact.builder`), with the
shared contact keys (``stiffness``, ``damping``, ``friction``, ``smoothing``,
``friction_smoothing``, ``boundary``, ``kinematic``, ``name``) and a pose:
``position`` plus, in 2D, ``angle`` [rad] or, in 3D, ``angle`` about ``axis`` (capsules
and cylinders may give their ``direction`` instead). Scene colliders are static; a
kinematic collider's motion is given as controls through the API
(:mod:`diffsim.contact.trajectory`).

Drawing (``diffsim run`` pictures) uses the renderer's types; a 3D cylinder is drawn as a
capsule and a mesh as its bounding box, the closest single shapes the renderer knows
(:func:`diffsim.contact.render_colliders` draws exact outlines from a model).
"""

from __future__ import annotations

import math

import numpy as np

from ..scene.schema import MAX_LENGTH, MAX_MODULUS, OPTIONAL, REQUIRED, Computed, Context, Key, variant_table
from ..scene.solvers import ColliderType, register_collider
from .spec import BOUNDARIES, ColliderSpec, rotation_between, rotation_matrix

_D = {f: ColliderSpec.__dataclass_fields__[f].default
      for f in ("stiffness", "damping", "friction", "smoothing", "friction_smoothing")}

CONTACT = {
    "name": Key("str", "label (plots, free parameters by index)", ""),
    "stiffness": Key("float", "penalty normal stiffness per particle", _D["stiffness"], "N/m",
                     lo=0.0, hi=MAX_MODULUS),
    "damping": Key("float", "penalty normal damping", _D["damping"], "N s/m", lo=0.0, hi=MAX_MODULUS),
    "friction": Key("float", "Coulomb friction coefficient (also MPM grid friction)",
                    _D["friction"], "-", lo=0.0, hi=100.0),
    "smoothing": Key("float", "depth smoothing length: softplus width (0: sharp contact)",
                     _D["smoothing"], "m", lo=0.0, hi=MAX_LENGTH),
    "friction_smoothing": Key("float", "slip speed below which friction is viscous",
                              _D["friction_smoothing"], "m/s", lo=0.0, hi=1e6),
    "boundary": Key("str", "MPM grid condition", "separate", choices=BOUNDARIES),
    "kinematic": Key("bool", "the pose follows controls given through the API", False),
}


def _zeros(ctx: Context) -> list[float]:
    return [0.0] * ctx.dim


def _up(ctx: Context) -> list[float]:
    return [0.0] * (ctx.dim - 1) + [1.0]


POSE = {
    "position": Key("array", "origin of the collider's frame", Computed(_zeros, "zeros"), "m",
                    lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
    "angle": Key("float", "rotation: counter-clockwise in 2D, about axis in 3D", 0.0, "rad",
                 lo=-1e3, hi=1e3),
    "axis": Key("array", "3D rotation axis (ignored in 2D)", [0.0, 0.0, 1.0], "-", lo=-1e6, hi=1e6,
                shape=(3,)),
}
DIRECTION = {
    "direction": Key("array", "axis direction (instead of angle/axis): the local x axis",
                     OPTIONAL, "-", lo=-1e6, hi=1e6, shape=("dim",)),
}
LENGTH = dict(lo=0.0, hi=MAX_LENGTH)


def _nonzero(values: dict, key: str, path, ctx: Context) -> None:
    if key in values and not np.linalg.norm(values[key]) > 0:
        ctx.add(path + [key], f"expected a non-zero vector, found {values[key]}")


def _check_pose(values: dict, path, ctx: Context) -> None:
    if ctx.dim == 3:
        _nonzero(values, "axis", path, ctx)
    _nonzero(values, "direction", path, ctx)


def _check_heightfield(values: dict, path, ctx: Context) -> None:
    _check_pose(values, path, ctx)
    n, ny = len(values["heights"]), values["ny"]
    if ctx.dim == 2 and ny != 1:
        ctx.add(path + ["ny"], f"a 2D heightfield is one profile: expected ny = 1, found {ny}")
    elif ctx.dim == 3 and (ny < 2 or n % ny or n // ny < 2):
        ctx.add(path + ["heights"], f"expected nx * ny samples with nx, ny >= 2 (ny = {ny}), found {n}")
    elif n < 2:
        ctx.add(path + ["heights"], f"expected at least 2 samples, found {n}")


def _check_mesh(values: dict, path, ctx: Context) -> None:
    _check_pose(values, path, ctx)
    nv = len(values["vertices"])
    tri = np.asarray(values["triangles"], int)
    if tri.size and (tri.min() < 0 or tri.max() >= nv):
        ctx.add(path + ["triangles"], f"expected vertex indices in 0..{nv - 1}")


def _rotation(values: dict, dim: int):
    if "direction" in values:
        return rotation_between(np.eye(dim)[0], values["direction"], dim)
    a = values.get("angle", 0.0)
    if dim == 2:
        return a
    axis = np.asarray(values["axis"], float) / np.linalg.norm(values["axis"])
    return np.concatenate([[math.cos(a / 2)], math.sin(a / 2) * axis])


def _contact(values: dict) -> dict:
    return {k: values[k] for k in CONTACT}


def _pose(values: dict, dim: int) -> dict:
    return {"position": values["position"], "rotation": _rotation(values, dim)}


TABLES = {
    "plane": variant_table("plane", {
        "normal": Key("array", "outward normal; the solid is the other side", Computed(_up, "up"),
                      "-", lo=-1e6, hi=1e6, shape=("dim",)),
        "point": Key("array", "a point on the plane", Computed(_zeros, "origin"), "m",
                     lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("dim",)),
        **CONTACT}, "Half-space behind a plane.",
        lambda v, p, c: _nonzero(v, "normal", p, c)),
    "box": variant_table("box", {
        "half_extents": Key("array", "half size along the local axes", REQUIRED, "m",
                            positive=True, hi=MAX_LENGTH, shape=("dim",)),
        **POSE, **CONTACT}, "Box (rectangle in 2D).", _check_pose),
    "sphere": variant_table("sphere", {
        "radius": Key("float", "radius", REQUIRED, "m", positive=True, hi=MAX_LENGTH),
        "position": POSE["position"], **CONTACT}, "Sphere (disc in 2D)."),
    "capsule": variant_table("capsule", {
        "radius": Key("float", "radius", REQUIRED, "m", positive=True, hi=MAX_LENGTH),
        "half_length": Key("float", "half length of the axis segment", REQUIRED, "m", **LENGTH),
        **POSE, **DIRECTION, **CONTACT}, "Segment along local x swept by a radius.", _check_pose),
    "cylinder": variant_table("cylinder", {
        "radius": Key("float", "radius", REQUIRED, "m", positive=True, hi=MAX_LENGTH),
        "half_length": Key("float", "half length along the axis", REQUIRED, "m", positive=True,
                           hi=MAX_LENGTH),
        **POSE, **DIRECTION, **CONTACT}, "Flat-capped cylinder along local x (a rectangle in 2D).",
        _check_pose),
    "heightfield": variant_table("heightfield", {
        "heights": Key("array", "samples along the up axis, row-major [nx, ny] in 3D", REQUIRED, "m",
                       lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("*",), min_items=2),
        "ny": Key("int", "samples along local y (3D); 1 in 2D", 1, "-", lo=1, hi=1_000_000),
        "spacing": Key("float", "distance between samples", REQUIRED, "m", positive=True, hi=MAX_LENGTH),
        **POSE, **CONTACT}, "Terrain below a sampled height profile, centred on its position.",
        _check_heightfield),
    "mesh": variant_table("mesh", {
        "vertices": Key("array", "vertices in the collider's frame", REQUIRED, "m",
                        lo=-MAX_LENGTH, hi=MAX_LENGTH, shape=("*", "dim"), min_items=3),
        "triangles": Key("array", "vertex indices of triangles (2D: covering the area)", REQUIRED,
                         "-", lo=0, hi=1e9, shape=("*", 3), dtype="int", min_items=1),
        "scale": Key("float", "factor applied to the vertices", 1.0, "-", positive=True, hi=1e6),
        "resolution": Key("int", "signed distance grid nodes along the longest side", 32, "-",
                          lo=4, hi=256),
        **POSE, **CONTACT}, "Closed triangle mesh, as a signed distance grid.", _check_mesh),
}


def _apply(type_: str):
    def apply(builder, values: dict) -> None:
        dim, c = builder.dim, _contact(values)
        if type_ == "plane":
            builder.add_collider_plane(values["normal"], values["point"], **c)
        elif type_ == "box":
            builder.add_collider_box(values["half_extents"], **_pose(values, dim), **c)
        elif type_ == "sphere":
            builder.add_collider_sphere(values["radius"], position=values["position"], **c)
        elif type_ in ("capsule", "cylinder"):
            add = builder.add_collider_capsule if type_ == "capsule" else builder.add_collider_cylinder
            add(values["radius"], values["half_length"], **_pose(values, dim), **c)
        elif type_ == "heightfield":
            h = np.asarray(values["heights"], float)
            builder.add_collider_heightfield(h if dim == 2 else h.reshape(-1, values["ny"]),
                                             values["spacing"], **_pose(values, dim), **c)
        else:
            mesh = (np.asarray(values["vertices"], float), np.asarray(values["triangles"], int))
            builder.add_collider_mesh(mesh, scale=values["scale"], resolution=values["resolution"],
                                      **_pose(values, dim), **c)
    return apply


def _draw(type_: str):
    def drawing(values: dict, dim: int) -> dict:
        if type_ == "plane":
            n = np.asarray(values["normal"], float)
            return {"type": "plane", "point": values["point"], "normal": n / np.linalg.norm(n)}
        if type_ == "sphere":
            return {"type": "sphere", "center": values["position"], "radius": values["radius"]}
        p = np.asarray(values["position"], float)
        R = rotation_matrix(_rotation(values, dim), dim)
        orient = {"angle": float(_rotation(values, dim))} if dim == 2 else {"rotation": R}
        if type_ == "box":
            return {"type": "box", "center": p, "half_extents": values["half_extents"], **orient}
        if type_ == "cylinder" and dim == 2:
            return {"type": "box", "center": p, "half_extents": [values["half_length"], values["radius"]],
                    **orient}
        if type_ in ("capsule", "cylinder"):
            L = values["half_length"]
            return {"type": "capsule", "p0": p - L * R[:, 0], "p1": p + L * R[:, 0],
                    "radius": values["radius"]}
        if type_ == "heightfield":
            h = np.asarray(values["heights"], float)
            sp = values["spacing"]
            if dim == 2:
                xs = (np.arange(len(h)) - (len(h) - 1) / 2) * sp
                world = np.stack([xs, h], 1) @ R.T + p
                return {"type": "heightfield", "x": world[:, 0], "height": world[:, 1]}
            h = h.reshape(-1, values["ny"])
            axes = [(np.arange(n) - (n - 1) / 2) * sp for n in h.shape]
            return {"type": "heightfield", "x": axes[0] + p[0], "y": axes[1] + p[1], "height": h + p[2]}
        v = np.asarray(values["vertices"], float) * values["scale"]
        lo, hi = v.min(0), v.max(0)
        return {"type": "box", "center": p + R @ ((lo + hi) / 2), "half_extents": (hi - lo) / 2, **orient}
    return drawing


_PREFIX = {"heightfield": "heightfield_", "mesh": "mesh_"}
for _name, _table in TABLES.items():
    register_collider(ColliderType(_name, _table, _apply(_name), _draw(_name),
                                   param_prefix=_PREFIX.get(_name, "")))
