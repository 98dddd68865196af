"""Signed distance functions of the analytic collider shapes, in the collider's local frame.

Each function takes a point ``xl`` in the collider's local frame and returns
``(distance, normal)``: the signed distance [m] (negative inside the solid) and the unit
outward normal (the gradient of the distance), both in local coordinates. The distances
are the exact Euclidean ones (Quilez, "distance functions"; Ericson, *Real-Time Collision
Detection*, ch. 5), so a penalty force built on them is continuous across shape features.

They are Taichi functions written for reverse-mode autodiff:

* every norm has a tiny floor (``sqrt(r^2 + 1e-20)``): the adjoint of ``|r|`` at ``r = 0``
  is 0/0;
* single assignment: branches are ``ti.select`` and vectors are built whole, never
  mutated element by element, and matrix products are written out. Taichi's reverse-mode
  pass turns local mutation (and its own ``@`` helper) into allocas whose optimisation
  grew superlinearly: a 3D mass-spring kernel with seven colliders took over ten minutes
  (wall, loaded machine) to compile its adjoint. Written this way, with one loop per
  collider and poses cached per substep (:mod:`diffsim.contact.colliders`), it takes
  about 15 s of CPU time.

Local frames, shared with :mod:`diffsim.contact.colliders` and the builder:

* plane: the solid is ``xl[up] <= 0``, with ``up`` the last axis (y in 2D, z in 3D);
* box: centred, half extents ``h`` along the local axes;
* sphere: centred, radius ``r``;
* capsule: the segment ``[-L, L]`` on the local x axis swept by radius ``r``;
* cylinder: axis on the local x axis, half length ``L``, radius ``r`` (flat caps). In 2D its
  cross-section through the axis is the rectangle of half extents ``(L, r)``.

Vectors use ``float``, which Taichi maps to the precision chosen in
:func:`diffsim.core.backend.init` (``default_fp``).

Rotations: a 2D pose has an angle [rad] (counter-clockwise), a 3D pose a quaternion
``(w, x, y, z)``, normalised here so that any non-zero quaternion is a valid control (the
gradient of a normalised quaternion is tangent to the unit sphere).
"""

import taichi as ti

TINY = 1e-20  # floor under squared norms: finite adjoints at zero length


@ti.func
def safe_norm(v):
    """``|v|`` with a finite derivative at ``v = 0``."""
    return ti.sqrt(v.dot(v) + TINY)


@ti.func
def sign_nonzero(x):
    """+1 for ``x >= 0``, -1 otherwise (``sign(0) = 0`` would zero a normal)."""
    return ti.select(x >= 0, 1.0, -1.0)


@ti.func
def select_vec(cond, a, b):
    """Componentwise ``cond ? a : b`` for vectors of the same length."""
    return ti.Vector([ti.select(cond, a[j], b[j]) for j in ti.static(range(a.n))])


@ti.func
def cross3(u, v):
    return ti.Vector([u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2],
                      u[0] * v[1] - u[1] * v[0]])


@ti.func
def mat_vec(R, v):
    """``R @ v`` written out (2x2 or 3x3)."""
    if ti.static(v.n == 2):
        return ti.Vector([R[0, 0] * v[0] + R[0, 1] * v[1], R[1, 0] * v[0] + R[1, 1] * v[1]])
    else:
        return ti.Vector([R[0, 0] * v[0] + R[0, 1] * v[1] + R[0, 2] * v[2],
                          R[1, 0] * v[0] + R[1, 1] * v[1] + R[1, 2] * v[2],
                          R[2, 0] * v[0] + R[2, 1] * v[1] + R[2, 2] * v[2]])


@ti.func
def mat_t_vec(R, v):
    """``R^T @ v`` written out (2x2 or 3x3)."""
    if ti.static(v.n == 2):
        return ti.Vector([R[0, 0] * v[0] + R[1, 0] * v[1], R[0, 1] * v[0] + R[1, 1] * v[1]])
    else:
        return ti.Vector([R[0, 0] * v[0] + R[1, 0] * v[1] + R[2, 0] * v[2],
                          R[0, 1] * v[0] + R[1, 1] * v[1] + R[2, 1] * v[2],
                          R[0, 2] * v[0] + R[1, 2] * v[1] + R[2, 2] * v[2]])


@ti.func
def rotation_matrix(rot, dim: ti.template()):
    """Matrix of a 2D angle [rad] (a scalar) or of a 3D unit quaternion ``(w, x, y, z)``."""
    if ti.static(dim == 3):
        w, x, y, z = rot[0], rot[1], rot[2], rot[3]
        return ti.Matrix([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                          [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                          [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    else:
        c, s = ti.cos(rot), ti.sin(rot)
        return ti.Matrix([[c, -s], [s, c]])


@ti.func
def quat_normalize(q):
    return q / safe_norm(q)


@ti.func
def rotate(rot, v):
    """Rotate ``v`` by a 2D angle [rad] or a unit quaternion ``(w, x, y, z)``."""
    if ti.static(v.n == 2):
        c, s = ti.cos(rot), ti.sin(rot)
        return ti.Vector([c * v[0] - s * v[1], s * v[0] + c * v[1]])
    else:
        # v' = v + w t + u x t with t = 2 u x v (the quaternion sandwich q v q*)
        u = ti.Vector([rot[1], rot[2], rot[3]])
        t = 2.0 * cross3(u, v)
        return v + rot[0] * t + cross3(u, t)


@ti.func
def rotate_inverse(rot, v):
    """Apply the inverse rotation of :func:`rotate`."""
    if ti.static(v.n == 2):
        return rotate(-rot, v)
    else:
        return rotate(ti.Vector([rot[0], -rot[1], -rot[2], -rot[3]]), v)


@ti.func
def quat_advance(q, omega, t):
    """Unit quaternion ``q`` rotated by the world angular velocity ``omega`` [rad/s] for ``t`` [s].

    First order, ``normalize(q + t/2 (0, omega) q)``: exact at ``t = 0``, where the controls
    set the pose, and accurate to ``O((|omega| t)^2)`` within a step.
    """
    v = ti.Vector([q[1], q[2], q[3]])
    dv = 0.5 * t * (q[0] * omega + cross3(omega, v))
    return quat_normalize(ti.Vector([q[0] - 0.5 * t * omega.dot(v), v[0] + dv[0], v[1] + dv[1],
                                     v[2] + dv[2]]))


@ti.func
def sdf_plane(xl):
    """Half-space ``xl[up] <= 0``."""
    D = ti.static(xl.n)
    return xl[D - 1], ti.Vector.unit(D, D - 1, dt=float)


@ti.func
def sdf_sphere(xl, r):
    length = safe_norm(xl)
    return length - r, xl / length


@ti.func
def _box_2d_normal(q0, q1, s0, s1, e0, e1):
    """Distance and normal of a 2D "box" given its per-axis excesses ``q`` (2D box, cylinder)."""
    o0, o1 = ti.max(q0, 0.0), ti.max(q1, 0.0)
    o_len = ti.sqrt(o0 * o0 + o1 * o1 + TINY)
    qmax = ti.max(q0, q1)
    outside = (s0 * o0 * e0 + s1 * o1 * e1) / o_len
    inside = select_vec(q0 >= q1, s0 * e0, s1 * e1)
    return o_len + ti.min(qmax, 0.0), select_vec(qmax > 0, outside, inside)


@ti.func
def sdf_box(xl, h):
    """Box of half extents ``h`` (a vector of the same length as ``xl``)."""
    D = ti.static(xl.n)
    q = ti.abs(xl) - h
    sgn = ti.Vector([sign_nonzero(xl[j]) for j in ti.static(range(D))])
    if ti.static(D == 2):
        return _box_2d_normal(q[0], q[1], sgn[0], sgn[1], ti.Vector([1.0, 0.0]), ti.Vector([0.0, 1.0]))
    else:
        o = ti.max(q, 0.0)
        o_len = safe_norm(o)
        qmax = ti.max(q[0], q[1], q[2])
        outside = sgn * o / o_len
        # inside: the face nearest to the point (first axis on ties)
        inside = ti.Vector([ti.select(q[0] >= qmax, sgn[0], 0.0),
                            ti.select((q[1] >= qmax) & (q[0] < qmax), sgn[1], 0.0),
                            ti.select((q[2] >= qmax) & (q[0] < qmax) & (q[1] < qmax), sgn[2], 0.0)])
        return o_len + ti.min(qmax, 0.0), select_vec(qmax > 0, outside, inside)


@ti.func
def sdf_capsule(xl, r, half_length):
    D = ti.static(xl.n)
    t = ti.min(ti.max(xl[0], -half_length), half_length)
    e = xl - t * ti.Vector.unit(D, 0, dt=float)
    length = safe_norm(e)
    return length - r, e / length


@ti.func
def sdf_cylinder(xl, r, half_length):
    """Cylinder along local x; in 2D the rectangle of half extents ``(half_length, r)``."""
    if ti.static(xl.n == 2):
        return sdf_box(xl, ti.Vector([half_length, r]))
    else:
        radial = ti.Vector([0.0, xl[1], xl[2]])
        rl = safe_norm(radial)
        return _box_2d_normal(ti.abs(xl[0]) - half_length, rl - r, sign_nonzero(xl[0]), 1.0,
                              ti.Vector([1.0, 0.0, 0.0]), radial / rl)
