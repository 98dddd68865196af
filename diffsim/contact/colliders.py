"""Colliders inside the kernels: poses, signed distances, particle forces, grid conditions.

A :class:`ColliderSet` binds a Model's colliders (parameters and descriptors, see
:mod:`diffsim.contact.spec`) to the pose controls of the solver that owns it, and gives the
solver's kernels three Taichi functions:

* ``sdf(k, b, x, a, t) -> (distance, normal, velocity)``: signed distance [m] of world
  point ``x`` to collider ``k`` in environment ``b`` (negative inside), the outward unit
  normal, and the collider's velocity at ``x`` [m/s] (for friction and damping);
* ``particle_force(b, x, v, a, t) -> f``: penalty contact force [N] summed over colliders
  (:func:`~diffsim.contact.penalty.penalty_force`), for particles and mesh vertices;
* ``grid_collide(v, x, b, a, t) -> v'``: MPM grid boundary condition per collider
  (``sticky``, ``slip`` or ``separate`` with Coulomb friction), blended by a smoothed
  inside indicator;

and their ``*_slot`` variants, which read poses cached once per substep (see
:class:`ColliderSet`).

``a`` is the window step (the control index) and ``t`` [s] the time since the start of that
step. Pose controls, one entry per collider, all with gradient (:func:`control_layout`):
``collider_position`` [K, dim] [m] and ``collider_velocity`` [K, dim] [m/s]; in 2D
``collider_rotation`` [K] (angle [rad]) and ``collider_angular_velocity`` [K] [rad/s]; in 3D
``collider_rotation`` [K, 4] (quaternion w, x, y, z) and ``collider_angular_velocity``
[K, 3] [rad/s, world frame]. Within step ``a`` the collider moves as
``p(t) = position + t velocity`` and ``angle(t) = rotation + t angular_velocity`` (3D:
first-order quaternion update), so the velocity used by friction is the velocity of the
motion; :mod:`diffsim.contact.trajectory` builds these controls from a trajectory of poses.

The loop over colliders is unrolled at compile time (``ti.static``) and each collider's
shape is dispatched statically, so a kernel compiles once per collider set and contains no
runtime loop that reverse-mode autodiff would need a stack for. Compile time grows with
the number of colliders (about a second each in reverse mode, measured here with cached
poses): the design is for a handful of colliders; many obstacles belong in one mesh or
heightfield.
"""

import numpy as np
import taichi as ti

from ..core import backend
from .penalty import penalty_force, sigmoid
from .sdf import (
    TINY,
    cross3,
    mat_t_vec,
    mat_vec,
    quat_advance,
    quat_normalize,
    rotate,
    rotate_inverse,
    rotation_matrix,
    safe_norm,
    sdf_box,
    sdf_capsule,
    sdf_cylinder,
    sdf_plane,
    sdf_sphere,
    select_vec,
)

CONTROL_NAMES = ("collider_position", "collider_velocity", "collider_rotation",
                 "collider_angular_velocity")


def control_layout(model) -> dict:
    """Pose controls of the model's colliders, ``{name: (K, element shape)}`` (empty if none)."""
    K, D = model.counts.get("collider", 0), model.dim
    if K == 0:
        return {}
    rot, ang = ((), ()) if D == 2 else ((4,), (3,))
    return {"collider_position": (K, (D,)), "collider_velocity": (K, (D,)),
            "collider_rotation": (K, rot), "collider_angular_velocity": (K, ang)}


def default_controls(model, name: str) -> np.ndarray:
    """One step of control ``name`` for static colliders at their builder pose, ``[B, K, ...]``."""
    descs, B = model.meta["colliders"], model.num_envs
    if name == "collider_position":
        value = np.stack([d["position"] for d in descs])
    elif name == "collider_rotation":
        value = np.stack([np.asarray(d["rotation"], float) for d in descs])
    elif name in ("collider_velocity", "collider_angular_velocity"):
        value = np.zeros((len(descs),) + control_layout(model)[name][1])
    else:
        raise KeyError(f"{name!r} is not a collider control; they are {CONTROL_NAMES}")
    return np.broadcast_to(value, (B,) + value.shape).astype(backend.np_real())


class ColliderControlsMixin:
    """Solver mixin: the colliders' pose controls join the solver's per-step controls.

    Put it before :class:`~diffsim.solvers.base.SolverBase` in the bases; static colliders
    stay at their builder pose unless the user writes the controls.
    """

    def control_layout(self):
        return {**super().control_layout(), **control_layout(self.model)}

    def default_controls(self, name):
        if name in CONTROL_NAMES:
            return default_controls(self.model, name)
        return super().default_controls(name)

    def bind_colliders(self) -> None:
        """Set ``self.has_colliders`` (read at compile time) and ``self.colliders``: a
        :class:`ColliderSet` on this solver's pose controls that caches frames per window
        slot (for :meth:`ColliderSet.particle_force_k`), or ``None`` without colliders.

        Call it once the control fields exist (after ``SolverBase.__init__``); until the
        solver writes its controls (``write_controls({}, 0, window)``) the poses are zero.
        """
        self.has_colliders = self.model.counts.get("collider", 0) > 0
        self.colliders = None
        if self.has_colliders:
            self.colliders = ColliderSet(self.model, self.control_fields, self.slots)

    def zero_window_grads(self):
        super().zero_window_grads()
        if getattr(self, "colliders", None) is not None:
            self.colliders.zero_grads()


@ti.data_oriented
class ColliderSet:
    """The colliders of ``model`` with the pose controls of the solver that owns them.

    Args:
        model: a Model with ``counts["collider"] > 0``.
        controls: the solver's control fields by name (``solver.control_fields``), holding
            at least :data:`CONTROL_NAMES`, each ``[W, B, K, ...]``.
        slots: the solver's window slots, to cache each slot's collider frames (origin and
            rotation matrix, with gradient) for the ``*_slot`` functions; 0 (default) keeps
            only the slot that :meth:`query` uses.

    Two ways to evaluate a collider, with the same results:

    * by time, ``sdf(k, b, x, a, t)``, ``particle_force(b, x, v, a, t)``,
      ``grid_collide(v, x, b, a, t)``: self-contained, the pose is computed where it is
      used;
    * by slot, ``sdf_slot``, ``particle_force_k``, ``grid_collide_slot``: the pose comes
      from ``update_frame`` run once per collider in an earlier loop of the same kernel.
      Per-point code is then much smaller, which compiles several times faster in reverse
      mode (the mass-spring and explicit FEM solvers use this, through
      :meth:`ColliderControlsMixin.bind_colliders`).
    """

    def __init__(self, model, controls: dict, slots: int = 0):
        self.model = model
        self.dim = model.dim
        self.real = backend.real()
        self.descs = tuple(model.meta["colliders"])
        self.count = len(self.descs)
        self.types = tuple(d["type"] for d in self.descs)
        self.boundaries = tuple(d["boundary"] for d in self.descs)
        self.position = controls["collider_position"]
        self.velocity = controls["collider_velocity"]
        self.rotation = controls["collider_rotation"]
        self.angular_velocity = controls["collider_angular_velocity"]
        # (shape, spacing, origin, offset) of heightfield and mesh grids, compile-time constants
        self.grids = tuple((d["shape"], d["spacing"], d["origin"], d["offset"]) if "shape" in d else None
                           for d in self.descs)
        shape = (slots + 1, model.num_envs, self.count)
        self.query_slot = slots
        self.origin = ti.Vector.field(self.dim, self.real, shape=shape, needs_grad=True)
        self.basis = ti.Matrix.field(self.dim, self.dim, self.real, shape=shape, needs_grad=True)

    def zero_grads(self) -> None:
        """Clear the frame gradients (solvers call it from ``zero_window_grads``)."""
        self.origin.grad.fill(0)
        self.basis.grad.fill(0)

    # -- poses ---------------------------------------------------------------------------
    @ti.func
    def pose(self, k, b, a, t):
        """Origin [m] and rotation (2D angle, 3D unit quaternion) of collider ``k`` at time
        ``t`` [s] into window step ``a``."""
        p = self.position[a, b, k] + t * self.velocity[a, b, k]
        if ti.static(self.dim == 2):
            return p, self.rotation[a, b, k] + t * self.angular_velocity[a, b, k]
        else:
            return p, quat_advance(quat_normalize(self.rotation[a, b, k]),
                                   self.angular_velocity[a, b, k], t)

    @ti.func
    def update_frame(self, slot, b, k, a, t):
        """Store collider ``k``'s frame at time ``t`` [s] into window step ``a`` in ``slot``.

        A solver calls it from its own top-level loop over ``(b, k)`` (reverse mode allows
        no statement outside loops, so this cannot be a loop itself), before the loops that
        evaluate colliders with the same ``slot``::

            for b, k in ti.ndrange(B, K):
                t = ti.cast(si % substeps, real) * ti.cast(h, real)  # time into the step
                self.colliders.update_frame(so, b, k, a, t)
        """
        p, rot = self.pose(k, b, a, t)
        self.origin[slot, b, k] = p
        self.basis[slot, b, k] = rotation_matrix(rot, self.dim)

    @ti.func
    def point_velocity(self, k, b, a, x, p):
        """Velocity [m/s] of the collider's material point at ``x`` (origin at ``p``)."""
        r = x - p
        if ti.static(self.dim == 2):
            return self.velocity[a, b, k] + self.angular_velocity[a, b, k] * ti.Vector([-r[1], r[0]])
        else:
            return self.velocity[a, b, k] + cross3(self.angular_velocity[a, b, k], r)

    # -- signed distance -------------------------------------------------------------------
    @ti.func
    def sdf(self, k: ti.template(), b, x, a, t):
        """``(distance [m], unit outward normal, collider velocity at x [m/s])``, world frame,
        of collider ``k`` at time ``t`` [s] into window step ``a``."""
        p, rot = self.pose(k, b, a, t)
        d, nl = self.local_sdf(k, b, rotate_inverse(rot, x - p))
        return d, rotate(rot, nl), self.point_velocity(k, b, a, x, p)

    @ti.func
    def sdf_slot(self, k: ti.template(), b, x, a, slot):
        """:meth:`sdf` with the frame stored in ``slot`` by :meth:`update_frame`; ``a`` is the
        window step whose velocity controls apply."""
        p, R = self.origin[slot, b, k], self.basis[slot, b, k]
        d, nl = self.local_sdf(k, b, mat_t_vec(R, x - p))
        return d, mat_vec(R, nl), self.point_velocity(k, b, a, x, p)

    @ti.func
    def _sdf(self, k: ti.template(), b, x, a, when, cached: ti.template()):
        if ti.static(cached):
            return self.sdf_slot(k, b, x, a, when)
        else:
            return self.sdf(k, b, x, a, when)

    @ti.func
    def local_sdf(self, k: ti.template(), b, xl):
        m = self.model
        if ti.static(self.types[k] == "plane"):
            return sdf_plane(xl)
        elif ti.static(self.types[k] == "sphere"):
            return sdf_sphere(xl, m.collider_radius[b, k])
        elif ti.static(self.types[k] == "box"):
            return sdf_box(xl, ti.Vector([m.collider_half_extents[b, k, j] for j in ti.static(range(self.dim))]))
        elif ti.static(self.types[k] == "capsule"):
            return sdf_capsule(xl, m.collider_radius[b, k], m.collider_half_length[b, k])
        elif ti.static(self.types[k] == "cylinder"):
            return sdf_cylinder(xl, m.collider_radius[b, k], m.collider_half_length[b, k])
        elif ti.static(self.types[k] == "heightfield"):
            return self.heightfield_sdf(k, b, xl)
        else:
            return self.mesh_sdf(k, b, xl)

    @ti.func
    def heightfield_sdf(self, k: ti.template(), b, xl):
        """Distance to the tangent plane of the interpolated terrain, ``(z - h) / |(-grad h, 1)|``.

        Exact on flat parts, first order where the slope changes; beyond the edges the
        terrain continues flat at the edge height.
        """
        shape, sp, org, off = ti.static(*self.grids[k])
        H = ti.static(self.model.heightfield_height)
        if ti.static(self.dim == 2):
            u = (xl[0] - org[0]) / sp[0]
            uc = ti.min(ti.max(u, 0.0), shape[0] - 1.0)
            i = ti.min(ti.cast(ti.floor(uc), ti.i32), shape[0] - 2)
            f = uc - i
            h0, h1 = H[b, off + i], H[b, off + i + 1]
            g = ti.select(u == uc, (h1 - h0) / sp[0], 0.0)
            s = ti.sqrt(1.0 + g * g)
            return (xl[1] - (h0 + f * (h1 - h0))) / s, ti.Vector([-g / s, 1.0 / s])
        else:
            u, v = (xl[0] - org[0]) / sp[0], (xl[1] - org[1]) / sp[1]
            uc = ti.min(ti.max(u, 0.0), shape[0] - 1.0)
            vc = ti.min(ti.max(v, 0.0), shape[1] - 1.0)
            i = ti.min(ti.cast(ti.floor(uc), ti.i32), shape[0] - 2)
            j = ti.min(ti.cast(ti.floor(vc), ti.i32), shape[1] - 2)
            fx, fy = uc - i, vc - j
            base = off + i * shape[1] + j
            h00, h01 = H[b, base], H[b, base + 1]
            h10, h11 = H[b, base + shape[1]], H[b, base + shape[1] + 1]
            h = (1 - fx) * (1 - fy) * h00 + fx * (1 - fy) * h10 + (1 - fx) * fy * h01 + fx * fy * h11
            gx = ti.select(u == uc, ((1 - fy) * (h10 - h00) + fy * (h11 - h01)) / sp[0], 0.0)
            gy = ti.select(v == vc, ((1 - fx) * (h01 - h00) + fx * (h11 - h10)) / sp[1], 0.0)
            s = ti.sqrt(1.0 + gx * gx + gy * gy)
            return (xl[2] - h) / s, ti.Vector([-gx / s, -gy / s, 1.0 / s])

    @ti.func
    def mesh_sdf(self, k: ti.template(), b, xl):
        """(Bi/tri)linear interpolation of the sampled signed distance and of its gradient.

        Outside the sampled box the distance continues as ``phi(nearest box point) + |gap|``.
        """
        D = ti.static(self.dim)
        shape, sp, org, off = ti.static(*self.grids[k])
        cell = ti.static(sp[0])
        u = ti.Vector([(xl[j] - org[j]) / cell for j in ti.static(range(D))])
        uc = ti.Vector([ti.min(ti.max(u[j], 0.0), shape[j] - 1.0) for j in ti.static(range(D))])
        i = ti.Vector([ti.min(ti.cast(ti.floor(uc[j]), ti.i32), shape[j] - 2) for j in ti.static(range(D))])
        phi, grad = self._mesh_interpolate(k, b, i, uc - ti.cast(i, self.real))
        gap = (u - uc) * cell
        gap_len = ti.sqrt(gap.dot(gap) + TINY)
        # gradient of phi(clamp(x)) + |gap|: phi's along the axes where x is inside the box
        n = ti.Vector([ti.select(u[j] == uc[j], grad[j], 0.0) for j in ti.static(range(D))]) + gap / gap_len
        return phi + gap_len - ti.sqrt(TINY), n / safe_norm(n)

    @ti.func
    def _mesh_interpolate(self, k: ti.template(), b, i, f):
        """Interpolated distance and its gradient [m, -] in cell ``i`` at fractions ``f``."""
        shape, sp, org, off = ti.static(*self.grids[k])
        S = ti.static(self.model.mesh_sdf)
        if ti.static(self.dim == 2):
            base = off + i[0] * shape[1] + i[1]
            v00, v01 = S[b, base], S[b, base + 1]
            v10, v11 = S[b, base + shape[1]], S[b, base + shape[1] + 1]
            c0, c1 = v00 + f[0] * (v10 - v00), v01 + f[0] * (v11 - v01)
            return c0 + f[1] * (c1 - c0), ti.Vector([(v10 - v00) + f[1] * (v11 - v01 - v10 + v00),
                                                     c1 - c0]) / sp[0]
        else:
            sy, sx = ti.static(shape[2], shape[1] * shape[2])
            base = off + i[0] * sx + i[1] * sy + i[2]
            v000, v001, v010, v011 = S[b, base], S[b, base + 1], S[b, base + sy], S[b, base + sy + 1]
            v100, v101 = S[b, base + sx], S[b, base + sx + 1]
            v110, v111 = S[b, base + sx + sy], S[b, base + sx + sy + 1]
            # lerp along x, then y, then z; the gradient is the derivative of the same lerps
            a00, a01 = v000 + f[0] * (v100 - v000), v001 + f[0] * (v101 - v001)
            a10, a11 = v010 + f[0] * (v110 - v010), v011 + f[0] * (v111 - v011)
            b0, b1 = a00 + f[1] * (a10 - a00), a01 + f[1] * (a11 - a01)
            dx0 = (v100 - v000) + f[1] * (v110 - v010 - v100 + v000)
            dx1 = (v101 - v001) + f[1] * (v111 - v011 - v101 + v001)
            dy0, dy1 = a10 - a00, a11 - a01
            return b0 + f[2] * (b1 - b0), ti.Vector([dx0 + f[2] * (dx1 - dx0), dy0 + f[2] * (dy1 - dy0),
                                                     b1 - b0]) / sp[0]

    # -- responses --------------------------------------------------------------------------
    @ti.func
    def _force(self, k: ti.template(), b, x, v, a, when, cached: ti.template()):
        m = self.model
        d, n, vc = self._sdf(k, b, x, a, when, cached)
        return penalty_force(-d, n, v - vc, m.collider_stiffness[b, k], m.collider_damping[b, k],
                             m.collider_friction[b, k], m.collider_smoothing[b, k],
                             m.collider_friction_smoothing[b, k])

    @ti.func
    def particle_force_k(self, k: ti.template(), b, x, v, a, slot):
        """Penalty force [N] of collider ``k`` on a point at ``x`` [m] moving at ``v`` [m/s],
        with the frame cached in ``slot``."""
        return self._force(k, b, x, v, a, slot, True)

    @ti.func
    def particle_force(self, b, x, v, a, t):
        """Penalty force [N] of every collider on a point at ``x`` [m] moving at ``v`` [m/s],
        at time ``t`` [s] into window step ``a`` (:func:`~diffsim.contact.penalty.penalty_force`)."""
        return self._force_from(0, b, x, v, a, t)

    @ti.func
    def _force_from(self, k: ti.template(), b, x, v, a, t):
        # compile-time recursion instead of a mutated accumulator (see sdf.py on why)
        if ti.static(k == self.count - 1):
            return self._force(k, b, x, v, a, t, False)
        else:
            return self._force(k, b, x, v, a, t, False) + self._force_from(k + 1, b, x, v, a, t)

    @ti.func
    def _grid(self, k: ti.template(), v, x, b, a, when, cached: ti.template()):
        m = self.model
        d, n, vc = self._sdf(k, b, x, a, when, cached)
        w = sigmoid(-d, m.collider_smoothing[b, k])
        vr = v - vc
        vn = vr.dot(n)
        vt = vr - vn * n
        scale = ti.max(1.0 - m.collider_friction[b, k] * ti.max(-vn, 0.0) / safe_norm(vt), 0.0)
        if ti.static(self.boundaries[k] == "sticky"):
            return v + w * (vc - v)
        elif ti.static(self.boundaries[k] == "slip"):
            return v + w * (scale * vt + vc - v)
        else:
            return v + w * (select_vec(vn > 0, vr, scale * vt) + vc - v)

    @ti.func
    def grid_collide(self, v, x, b, a, t):
        """MPM grid velocity [m/s] at node ``x`` [m] after every collider's condition, at time
        ``t`` [s] into window step ``a``.

        Relative to the collider's velocity ``vc`` at the node, with ``v_n`` the normal part:
        ``sticky`` sets it to zero; ``slip`` removes ``v_n``; ``separate`` removes ``v_n``
        only when approaching (``v_n < 0``). Both apply Coulomb friction to the tangential
        part, shortened by ``mu * max(-v_n, 0)`` (Stomakhin et al. 2013; taichi_elements).
        The result is blended in with ``w = sigmoid(-d / smoothing)``: a hard switch at the
        surface when ``smoothing == 0``, a band of that width otherwise. Colliders apply in
        index order.
        """
        return self._grid_from(0, v, x, b, a, t, False)

    @ti.func
    def grid_collide_slot(self, v, x, b, a, slot):
        """:meth:`grid_collide` with the frames cached in ``slot`` (see :meth:`update_frame`)."""
        return self._grid_from(0, v, x, b, a, slot, True)

    @ti.func
    def _grid_from(self, k: ti.template(), v, x, b, a, when, cached: ti.template()):
        if ti.static(k == self.count - 1):
            return self._grid(k, v, x, b, a, when, cached)
        else:
            return self._grid_from(k + 1, self._grid(k, v, x, b, a, when, cached), x, b, a, when, cached)

    # -- host queries ----------------------------------------------------------------------------
    @ti.kernel
    def _query(self, pts: ti.types.ndarray(), a: ti.i32, t: ti.f64, dist: ti.types.ndarray(),
               normal: ti.types.ndarray(), vel: ti.types.ndarray()):
        for b, k in ti.ndrange(pts.shape[0], self.count):
            self.update_frame(self.query_slot, b, k, a, ti.cast(t, self.real))
        for b, i in ti.ndrange(pts.shape[0], pts.shape[1]):
            x = ti.Vector([pts[b, i, j] for j in ti.static(range(self.dim))], dt=self.real)
            for k in ti.static(range(self.count)):
                d, n, vc = self.sdf_slot(k, b, x, a, self.query_slot)
                dist[b, i, k] = d
                for j in ti.static(range(self.dim)):
                    normal[b, i, k, j] = n[j]
                    vel[b, i, k, j] = vc[j]

    def query(self, points, step: int = 0, t: float = 0.0):
        """Evaluate every collider at host points (tests, losses, plots).

        Args:
            points: ``[B, P, dim]`` [m]; step: window step whose pose controls are used;
                t: time into that step [s].
        Returns:
            ``(distance [B, P, K], normal [B, P, K, dim], velocity [B, P, K, dim])``.
        """
        dtype = backend.np_real()
        pts = np.ascontiguousarray(points, dtype=dtype)
        B, P = pts.shape[:2]
        dist = np.zeros((B, P, self.count), dtype)
        normal = np.zeros((B, P, self.count, self.dim), dtype)
        vel = np.zeros_like(normal)
        self._query(pts, step, t, dist, normal, vel)
        return dist, normal, vel
