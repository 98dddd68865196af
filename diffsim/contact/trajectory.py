"""Kinematic collider trajectories as pose controls, and colliders as drawable dicts.

A solver takes, per step ``t``, each collider's pose at the start of the step and its
velocity over the step (see :mod:`diffsim.contact.colliders`). Users usually think in poses
at frames ``0..T``; :func:`trajectory_controls` turns such a trajectory into controls with
velocities from consecutive poses, ``v_t = (p_{t+1} - p_t) / dt`` (2D angles likewise; 3D
quaternions ``omega_t = 2 vec(q_{t+1} q_t^*) / dt``, first order), so that within a step
the collider moves along the straight segment between the two poses and friction sees that
velocity. :func:`trajectory_controls_grad` is its adjoint: it maps control gradients
(``RolloutGrads.controls``) back to gradients with respect to the poses.

:func:`render_colliders` turns a model's colliders at one frame into the dicts of
:mod:`diffsim.io.render`.
"""

import numpy as np

from .colliders import CONTROL_NAMES, default_controls
from .spec import rotation_matrix


def static_trajectory(model, steps: int) -> dict:
    """Builder poses held for frames ``0..steps``: ``{"position": [T+1, B, K, dim],
    "rotation": [T+1, B, K] (2D) or [T+1, B, K, 4] (3D)}``, to edit for kinematic colliders."""
    return {"position": np.repeat(default_controls(model, "collider_position")[None], steps + 1, 0),
            "rotation": np.repeat(default_controls(model, "collider_rotation")[None], steps + 1, 0)}


def _quat_mul(a, b):
    aw, av = a[..., :1], a[..., 1:]
    bw, bv = b[..., :1], b[..., 1:]
    return np.concatenate([aw * bw - np.sum(av * bv, -1, keepdims=True),
                           aw * bv + bw * av + np.cross(av, bv)], axis=-1)


def _conj(q):
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def trajectory_controls(position, rotation, dt: float) -> dict:
    """Pose controls for ``T`` steps from poses at frames ``0..T``.

    Args:
        position: ``[T + 1, B, K, dim]`` [m]. rotation: ``[T + 1, B, K]`` angles [rad] (2D)
            or ``[T + 1, B, K, 4]`` quaternions (3D; keep consecutive ones in the same
            hemisphere, ``q_t . q_{t+1} > 0``). dt: step length [s].
    Returns:
        ``{name: [T, B, K, ...]}`` for the four collider controls.
    """
    p, r = np.asarray(position, float), np.asarray(rotation, float)
    if r.ndim == p.ndim:  # 3D quaternions
        omega = 2.0 * _quat_mul(r[1:], _conj(r[:-1]))[..., 1:] / dt
    else:
        omega = (r[1:] - r[:-1]) / dt
    return {"collider_position": p[:-1], "collider_velocity": (p[1:] - p[:-1]) / dt,
            "collider_rotation": r[:-1], "collider_angular_velocity": omega}


def trajectory_controls_grad(control_grads: dict, position, rotation, dt: float) -> dict:
    """Adjoint of :func:`trajectory_controls`.

    Args:
        control_grads: ``{name: [T, B, K, ...]}`` (e.g. ``RolloutGrads.controls``); missing
            collider controls count as zero.
        position, rotation, dt: the trajectory the controls were built from.
    Returns:
        ``{"position": [T + 1, B, K, dim], "rotation": like rotation}``.
    """
    p, r = np.asarray(position, float), np.asarray(rotation, float)
    g = {n: np.asarray(control_grads[n], float) if n in control_grads else None for n in CONTROL_NAMES}
    gp, gr = np.zeros_like(p), np.zeros_like(r)
    if g["collider_position"] is not None:
        gp[:-1] += g["collider_position"]
    if g["collider_velocity"] is not None:
        gp[1:] += g["collider_velocity"] / dt
        gp[:-1] -= g["collider_velocity"] / dt
    if g["collider_rotation"] is not None:
        gr[:-1] += g["collider_rotation"]
    gw = g["collider_angular_velocity"]
    if gw is not None:
        if r.ndim == p.ndim:
            # omega = (2/dt) vec(q1 conj(q0)) = (2/dt) (w0 v1 - w1 v0 + v0 x v1): bilinear
            gw = 2.0 * gw / dt
            q0, q1 = r[:-1], r[1:]
            w0, v0, w1, v1 = q0[..., :1], q0[..., 1:], q1[..., :1], q1[..., 1:]
            gr[1:, ..., :1] += np.sum(-gw * v0, -1, keepdims=True)
            gr[1:, ..., 1:] += w0 * gw + np.cross(gw, v0)
            gr[:-1, ..., :1] += np.sum(gw * v1, -1, keepdims=True)
            gr[:-1, ..., 1:] += -w1 * gw + np.cross(v1, gw)
        else:
            gr[1:] += gw / dt
            gr[:-1] -= gw / dt
    return {"position": gp, "rotation": gr}


def _segments(points: np.ndarray, loops) -> list:
    """Zero-radius capsules along polylines: the renderer has no mesh type, and a capsule
    of radius 0 draws as its segment (an outline, exactly where the surface is)."""
    out = []
    for loop in loops:
        for a, b in zip(loop, loop[1:]):
            if np.linalg.norm(points[b] - points[a]) > 0:
                out.append({"type": "capsule", "p0": points[a], "p1": points[b], "radius": 0.0})
    return out


def _mesh_edges(vertices, triangles, dim: int) -> list:
    tri = np.asarray(triangles)
    e = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(e, axis=0, return_counts=True)
    return uniq[counts == 1] if dim == 2 else uniq  # 2D: the outline; 3D: the wireframe


def render_colliders(model, position=None, rotation=None, env: int = 0) -> list:
    """The model's colliders as :mod:`diffsim.io.render` dicts, at one frame.

    Args:
        model: a Model with colliders.
        position: ``[K, dim]`` (or ``[B, K, dim]``) poses of this frame [m]; default: the
            builder's. rotation: ``[K]`` / ``[K, 4]`` (or with the B axis) likewise.
        env: environment whose shape parameters are drawn.
    Returns:
        A list of dicts. Planes, boxes, spheres, capsules and heightfields map to the
        renderer's types (a 2D cylinder is its rectangle, a box); a 3D cylinder and a mesh
        are drawn as outlines made of zero-radius capsules.
    """
    D, descs = model.dim, model.meta["colliders"]
    pos = default_controls(model, "collider_position")[env] if position is None else np.asarray(position, float)
    rot = default_controls(model, "collider_rotation")[env] if rotation is None else np.asarray(rotation, float)
    if pos.ndim == 3:
        pos, rot = pos[env], rot[env]
    get = {n: model.get(n)[env] for n in ("collider_radius", "collider_half_length", "collider_half_extents")}
    out = []
    for k, d in enumerate(descs):
        p, R = pos[k], rotation_matrix(rot[k], D)
        r, L = float(get["collider_radius"][k]), float(get["collider_half_length"][k])
        angle = {"angle": float(rot[k])} if D == 2 else {"rotation": R}
        if d["type"] == "plane":
            out.append({"type": "plane", "point": p, "normal": R[:, -1]})
        elif d["type"] == "box":
            out.append({"type": "box", "center": p, "half_extents": get["collider_half_extents"][k], **angle})
        elif d["type"] == "sphere":
            out.append({"type": "sphere", "center": p, "radius": r})
        elif d["type"] == "capsule":
            out.append({"type": "capsule", "p0": p - L * R[:, 0], "p1": p + L * R[:, 0], "radius": r})
        elif d["type"] == "cylinder" and D == 2:
            out.append({"type": "box", "center": p, "half_extents": np.array([L, r]), **angle})
        elif d["type"] == "cylinder":
            ang = np.linspace(0.0, 2 * np.pi, 17)
            ring = r * (np.outer(np.cos(ang), R[:, 1]) + np.outer(np.sin(ang), R[:, 2]))
            pts = np.concatenate([p - L * R[:, 0] + ring, p + L * R[:, 0] + ring])
            n = len(ang)
            loops = [list(range(n)), list(range(n, 2 * n))] + [[i, n + i] for i in range(0, n - 1, 4)]
            out += _segments(pts, loops)
        elif d["type"] == "heightfield":
            out.append(_heightfield_dict(model, d, p, R, env))
        else:
            verts = np.asarray(d["vertices"]) @ R.T + p
            out += _segments(verts, [list(e) for e in _mesh_edges(verts, d["triangles"], D)])
    return out


def _heightfield_dict(model, d, p, R, env):
    shape, sp, org, off = d["shape"], d["spacing"], d["origin"], d["offset"]
    h = model.get("heightfield_height")[env, off:off + int(np.prod(shape))].reshape(shape)
    axes = [org[i] + sp[i] * np.arange(shape[i]) for i in range(len(shape))]
    if model.dim == 2:
        world = np.stack([axes[0], h], axis=1) @ R.T + p  # tilted terrains stay a polyline
        return {"type": "heightfield", "x": world[:, 0], "height": world[:, 1]}
    # the renderer's 3D heightfield is axis-aligned: draw the pose's translation only
    return {"type": "heightfield", "x": axes[0] + p[0], "y": axes[1] + p[1], "height": h + p[2]}
