"""Each collider's signed distance, normal and velocity against NumPy references.

Distances are exact for the analytic shapes (plane, box, sphere, capsule, cylinder); the
heightfield's is its tangent-plane estimate ``(z - h) / |(-grad h, 1)|`` (exact on flat
parts); the mesh's is interpolated from a grid and must match the exact mesh distance to
within a fraction of a cell. Normals equal the gradient of the distance wherever it is
smooth (central differences). A moving collider's distance at time ``t`` into a step is
that of its pose advanced by the velocity controls (3D rotation: the first-order
quaternion update), and its velocity at a point is ``v + omega x r``.
"""

import numpy as np
import pytest

from diffsim.contact.mesh_sdf import signed_distance
from diffsim.contact.spec import rotation_matrix

from ._zoo import TYPES


def _local(zoo, k, pts):
    d = zoo.model.meta["colliders"][k]
    R = rotation_matrix(d["rotation"], zoo.dim)
    return (pts - d["position"]) @ R, R


def _box(q_abs_minus_h):
    q = q_abs_minus_h
    return np.linalg.norm(np.maximum(q, 0), axis=-1) + np.minimum(q.max(-1), 0)


def reference(zoo, k, pts):
    """Reference signed distance of world points ``[P, dim]`` to collider ``k``."""
    m, dim, typ = zoo.model, zoo.dim, TYPES[k]
    xl, R = _local(zoo, k, pts)
    r, L = m.get("collider_radius")[0, k], m.get("collider_half_length")[0, k]
    if typ == "plane":
        return xl[:, -1]
    if typ == "sphere":
        return np.linalg.norm(xl, axis=1) - r
    if typ == "box":
        return _box(np.abs(xl) - m.get("collider_half_extents")[0, k])
    if typ == "capsule":
        e = xl.copy()
        e[:, 0] -= np.clip(xl[:, 0], -L, L)
        return np.linalg.norm(e, axis=1) - r
    if typ == "cylinder":
        if dim == 2:
            return _box(np.abs(xl) - [L, r])
        return _box(np.stack([np.abs(xl[:, 0]) - L, np.linalg.norm(xl[:, 1:], axis=1) - r], 1))
    d = m.meta["colliders"][k]
    if typ == "mesh":
        return signed_distance(xl, d["vertices"], d["triangles"])
    # heightfield: the same interpolation, written with NumPy
    shape, sp, org, off = d["shape"], d["spacing"], d["origin"], d["offset"]
    H = m.get("heightfield_height")[0, off:off + int(np.prod(shape))].reshape(shape)
    u = [(xl[:, j] - org[j]) / sp[j] for j in range(dim - 1)]
    uc = [np.clip(u[j], 0, shape[j] - 1) for j in range(dim - 1)]
    i = [np.minimum(np.floor(uc[j]).astype(int), shape[j] - 2) for j in range(dim - 1)]
    f = [uc[j] - i[j] for j in range(dim - 1)]
    if dim == 2:
        h0, h1 = H[i[0]], H[i[0] + 1]
        h, g = h0 + f[0] * (h1 - h0), np.where(u[0] == uc[0], (h1 - h0) / sp[0], 0.0)
        return (xl[:, 1] - h) / np.sqrt(1 + g ** 2)
    a, b = i
    h00, h01, h10, h11 = H[a, b], H[a, b + 1], H[a + 1, b], H[a + 1, b + 1]
    fx, fy = f
    h = (1 - fx) * (1 - fy) * h00 + fx * (1 - fy) * h10 + (1 - fx) * fy * h01 + fx * fy * h11
    gx = np.where(u[0] == uc[0], ((1 - fy) * (h10 - h00) + fy * (h11 - h01)) / sp[0], 0.0)
    gy = np.where(u[1] == uc[1], ((1 - fx) * (h01 - h00) + fx * (h11 - h10)) / sp[1], 0.0)
    return (xl[:, 2] - h) / np.sqrt(1 + gx ** 2 + gy ** 2)


def _points(zoo, k, n, rng):
    d = zoo.model.meta["colliders"][k]
    center = d["position"].copy()
    if TYPES[k] == "heightfield":
        center[0] = 10.3  # a stretch of the floor away from the other colliders
        center[-1] = -0.4
    return center + rng.uniform(-0.45, 0.45, (n, zoo.dim))


@pytest.mark.parametrize("dim", [2, 3])
def test_distances_and_normals(dim, zoo2, zoo3):
    zoo = zoo2 if dim == 2 else zoo3
    s = zoo.solver
    s.write_controls({}, 0, s.window)
    rng = np.random.default_rng(dim)
    for k, typ in enumerate(TYPES):
        pts = _points(zoo, k, 400, rng)
        dist, normal, vel = (a[0, :, k] for a in s.colliders.query(pts[None]))
        ref = reference(zoo, k, pts)
        if typ == "mesh":
            # inside the sampled box: interpolation error, a fraction of a cell; outside it
            # the continuation phi(box point) + gap never underestimates (1-Lipschitz)
            desc = zoo.model.meta["colliders"][k]
            cell = desc["spacing"][0]
            xl = _local(zoo, k, pts)[0]
            lo = np.asarray(desc["origin"])
            inside = np.all((xl >= lo) & (xl <= lo + cell * (np.asarray(desc["shape"]) - 1)), axis=1)
            err = np.abs(dist - ref)[inside]
            assert inside.sum() > 100 and err.max() < 0.5 * cell and err.mean() < 0.1 * cell, \
                (typ, err.max(), err.mean(), cell)
            assert np.all(dist[~inside] > ref[~inside] - 0.5 * cell)
        else:
            np.testing.assert_allclose(dist, ref, atol=1e-9, err_msg=typ)
        np.testing.assert_allclose(np.linalg.norm(normal, axis=1), 1.0, atol=1e-9, err_msg=typ)
        assert np.all(vel == 0), typ
        # normal = grad distance where the distance is smooth (away from medial axes, edges)
        h = 1e-6
        grad = np.stack([(s.colliders.query((pts + h * e)[None])[0][0, :, k]
                          - s.colliders.query((pts - h * e)[None])[0][0, :, k]) / (2 * h)
                         for e in np.eye(dim)], axis=1)
        if typ == "heightfield" and dim == 3:
            continue  # the tangent-plane estimate's gradient is not exactly the plane normal
        if typ == "mesh":
            # an interpolated distance's gradient is not unit: compare directions, except
            # where the difference straddles a cell boundary (the gradient jumps there)
            unit = grad / np.linalg.norm(grad, axis=1, keepdims=True)
            assert np.mean(np.linalg.norm(normal - unit, axis=1) < 1e-5) > 0.95, typ
            continue
        smooth = np.abs(np.linalg.norm(grad, axis=1) - 1) < 1e-6
        assert smooth.mean() > 0.5, typ
        np.testing.assert_allclose(normal[smooth], grad[smooth], atol=1e-5, err_msg=typ)


@pytest.mark.parametrize("dim", [2, 3])
def test_moving_collider_pose_and_velocity(dim, zoo2, zoo3):
    zoo = zoo2 if dim == 2 else zoo3
    s, k = zoo.solver, zoo.k("box")
    rng = np.random.default_rng(5)
    v = rng.normal(size=dim)
    w = 1.3 if dim == 2 else rng.normal(size=3)
    ctrl = {n: s.default_controls(n)[None].repeat(s.window, 0) for n in s.control_names if n != "act"}
    ctrl["collider_velocity"][:, 0, k] = v
    ctrl["collider_angular_velocity"][:, 0, k] = w
    s.write_controls(ctrl, 0, s.window)
    try:
        pts = _points(zoo, k, 200, rng)
        t = 0.01
        dist, _, vel = (a[0, :, k] for a in s.colliders.query(pts[None], step=3, t=t))
        p0 = zoo.model.meta["colliders"][k]["position"]
        p = p0 + t * v
        desc = zoo.model.meta["colliders"][k]
        if dim == 2:
            R0, Rt = rotation_matrix(desc["rotation"], 2), rotation_matrix(desc["rotation"] + t * w, 2)
            w_cross = np.stack([-w * (pts - p)[:, 1], w * (pts - p)[:, 0]], 1)
        else:
            q = np.asarray(desc["rotation"], float)  # first-order update, as in the kernel
            wq = np.concatenate([[-w @ q[1:]], q[0] * w + np.cross(w, q[1:])])
            qt = q + 0.5 * t * wq
            R0, Rt = rotation_matrix(q, 3), rotation_matrix(qt / np.linalg.norm(qt), 3)
            w_cross = np.cross(w, pts - p)
        np.testing.assert_allclose(vel, v + w_cross, atol=1e-12)
        # the pose at time t: the static collider evaluated at the pulled-back points
        back = (pts - p) @ Rt @ R0.T + p0
        np.testing.assert_allclose(dist, reference(zoo, k, back), atol=1e-9)
    finally:
        s.write_controls({}, 0, s.window)
