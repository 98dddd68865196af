"""Differentiable MLS-MPM (Hu, Fang, Ge, Qu, Zhu, Pradhana and Jiang, SIGGRAPH 2018).

Particles carry position ``x``, velocity ``v``, the APIC affine velocity ``C`` (Jiang et
al. 2015), the elastic deformation gradient ``F`` and, for snow, the plastic volume ``Jp``.
One substep of length ``h`` on a grid of spacing ``dx`` with quadratic B-spline weights
``w_ip``:

1. **p2g** (particle to grid): ``F_trial = (I + h C) F``; the material's ``update`` gives
   the return mapping ``(F, Jp) <- project(F_trial, Jp)`` and the Kirchhoff stress
   ``tau = P F^T``, plus the muscle stress ``a s (F d)(F d)^T``; scatter mass ``m_i = sum_p w_ip m_p`` and momentum
   ``p_i = sum_p w_ip (m_p v_p + (m_p C_p - 4 h V_p tau_p / dx^2) (x_i - x_p))``;
2. **grid update**: ``v_i = p_i / m_i + h g``, then the boundary conditions (domain walls,
   the ground, colliders);
3. **g2p** (grid to particle): ``v_p = sum_i w_ip v_i``,
   ``C_p = 4 / dx^2 sum_i w_ip v_i (x_i - x_p)^T``, ``x_p += h v_p``.

The forward substep is two launches: stages 1-2 (four loops: stress, zero the grid,
scatter, grid update) and stage 3. The grid is scratch, not kept per step: a substep's
adjoint recomputes it (the first launch again, DiffTaichi's ``diffmpm_checkpointing.py``)
and then runs, in reverse, the adjoint of g2p, of the grid update, of the scatter and of the
stress, so the window stores particle state only. The transfers' adjoints are written by
hand (:mod:`.transfer`); the stress and grid update are differentiated by Taichi from
kernels that hold just their loop.

Materials are dispatched at compile time over the set present in the model (one kernel per
set, see :mod:`.constitutive`).
"""

from dataclasses import dataclass

import numpy as np
import taichi as ti

from ...autodiff.diagnostics import SimulationError
from ...contact import colliders as contact_colliders
from ...materials.plastic import matmul, matvec
from ..base import SolverBase
from . import boundary
from .constitutive import mpm_material
from .transfer import TransferMixin


@ti.data_oriented
class SolverMPM(contact_colliders.ColliderControlsMixin, TransferMixin, SolverBase):
    """MLS-MPM with APIC transfer in 2D and 3D, batched over B environments.

    State (each ``[B, N, ...]``): ``x`` [m], ``v`` [m/s], ``C`` [1/s] (``dim x dim``),
    ``F`` [-] (``dim x dim``) and ``Jp`` [-] when a material has plastic state (snow).
    Controls: ``act`` ``[A]`` per actuator group (muscle activation, usually in [-1, 1]) and
    the collider poses of :mod:`diffsim.contact.colliders` when the model has colliders.
    """

    @dataclass(frozen=True)
    class Config:
        """Solver options.

        Attributes:
            grid_res: nodes per axis (an int for a cube, or one per axis).
            domain_origin: world position of grid node 0 [m] (default: the origin).
            domain_size: length of the grid along axis 0 [m]; ``dx = domain_size /
                grid_res[0]`` and the other axes span ``grid_res[k] * dx``.
            substeps: substeps per step.
            boundary: domain walls: ``sticky``, ``slip`` or ``separate`` (see
                :mod:`.boundary`), with friction ``model.wall_friction``.
            boundary_width: wall thickness in cells (DiffTaichi's ``bound = 3``).
            ground_boundary: condition of the ground plane (``model.ground_*``).
        """

        grid_res: int | tuple = 64
        domain_origin: tuple | None = None
        domain_size: float = 1.0
        substeps: int = 1
        boundary: str = "separate"
        boundary_width: int = 3
        ground_boundary: str = "separate"

    def __init__(self, model, config=None, window: int | None = None,
                 memory_budget: int | None = None):
        if model.kind != "mpm":
            raise ValueError(f"SolverMPM needs a model built by MPMBuilder, got kind {model.kind!r}")
        cfg = config if config is not None else self.Config()
        D = model.dim
        res = (cfg.grid_res,) * D if np.isscalar(cfg.grid_res) else tuple(cfg.grid_res)
        if len(res) != D or min(res) < 4:
            raise ValueError(f"grid_res must be one int or {D} ints >= 4, got {cfg.grid_res}")
        for kind in (cfg.boundary, cfg.ground_boundary):
            if kind not in boundary.KINDS:
                raise ValueError(f"boundary must be one of {boundary.KINDS}, got {kind!r}")
        if not 1 <= cfg.boundary_width <= min(res) // 2 - 1:
            raise ValueError(f"boundary_width must be in 1..{min(res) // 2 - 1}, got {cfg.boundary_width}")
        self.grid_res = tuple(int(r) for r in res)
        # Compile-time copies of the boundary options (kernels cannot read a dataclass).
        self.wall_kind, self.ground_kind = cfg.boundary, cfg.ground_boundary
        self.wall_width = int(cfg.boundary_width)
        self.dx = float(cfg.domain_size) / self.grid_res[0]
        if not self.dx > 0:
            raise ValueError(f"domain_size must be positive, got {cfg.domain_size}")
        self.inv_dx = 1.0 / self.dx
        self.origin = tuple(float(o) for o in (cfg.domain_origin or (0.0,) * D))
        if len(self.origin) != D:
            raise ValueError(f"domain_origin must have {D} components, got {cfg.domain_origin}")
        self.materials = tuple(mpm_material(name) for name in model.meta["materials"])
        self.has_Jp = any(m.plastic_state for m in self.materials)
        # Extra parameters of each material, read into a fixed-size vector q per particle.
        self.extra_names = tuple(tuple(m.extra_params) for m in self.materials)
        self.q_size = max([1] + [len(n) for n in self.extra_names])
        # Grid nodes lighter than this carry no velocity: keeps 1/m and its adjoint finite.
        masses = model.get("particle_mass")
        self.mass_eps = 1e-10 * float(np.mean(masses)) if masses.size else 1e-30
        super().__init__(model, cfg, window, memory_budget)
        shape = (model.num_envs,) + self.grid_res
        self.grid_p = ti.Vector.field(D, self.real, shape=shape, needs_grad=True)
        self.grid_m = ti.field(self.real, shape=shape, needs_grad=True)
        self.grid_v = ti.Vector.field(D, self.real, shape=shape, needs_grad=True)
        # Per-particle affine matrix m C - 4 dt V tau / dx^2 of the current substep (scratch).
        self.affine = ti.Matrix.field(D, D, self.real, shape=(model.num_envs, max(model.counts["particle"], 1)),
                                      needs_grad=True)
        self.has_colliders = model.counts.get("collider", 0) > 0
        self.colliders = contact_colliders.ColliderSet(model, self.control_fields) if self.has_colliders else None

    # -- layout ------------------------------------------------------------------------------
    def state_layout(self):
        n, d = self.model.counts["particle"], self.model.dim
        out = {"x": (n, (d,)), "v": (n, (d,)), "C": (n, (d, d)), "F": (n, (d, d))}
        if self.has_Jp:
            out["Jp"] = (n, ())
        return out

    # -- the step ------------------------------------------------------------------------------
    def _substep(self, slot_in, slot_out, act_step, dt):
        t = (slot_in % self.substeps) * dt
        self._p2g_grid(slot_in, slot_out, act_step, dt, t)
        self._g2p(slot_in, slot_out, dt)

    def _substep_grad(self, slot_in, slot_out, act_step, dt):
        t = (slot_in % self.substeps) * dt
        self._p2g_grid(slot_in, slot_out, act_step, dt, t)  # recompute the grid (scratch)
        self._g2p_adjoint(slot_in, slot_out, dt)
        self._grid_update.grad(act_step, dt, t)
        self._p2g_adjoint(slot_in)
        self._stress.grad(slot_in, slot_out, act_step, dt)

    def zero_window_grads(self) -> None:
        super().zero_window_grads()
        for f in (self.grid_p, self.grid_m, self.grid_v, self.affine):
            f.grad.fill(0)

    # Forward: one launch for stress, scatter and grid update, one for the gather. The
    # backward differentiates `_stress` and `_grid_update` (the same loop bodies as kernels
    # of their own) with Taichi's autodiff and the transfers by hand (see .transfer).
    @ti.kernel
    def _p2g_grid(self, si: ti.i32, so: ti.i32, a: ti.i32, h: ti.f64, t: ti.f64):
        m = self.model
        for b, p in ti.ndrange(m.num_envs, m.counts["particle"]):
            self._stress_body(si, so, a, ti.cast(h, self.real), b, p)
        for I in ti.grouped(self.grid_m):
            self.grid_p[I] = ti.Vector.zero(self.real, m.dim)
            self.grid_m[I] = 0.0
        for b, p in ti.ndrange(m.num_envs, m.counts["particle"]):
            self._scatter(si, b, p, m.particle_mass[b, p])
        for I in ti.grouped(self.grid_m):
            self._update_body(I, a, ti.cast(h, self.real), ti.cast(t, self.real))

    @ti.kernel
    def _stress(self, si: ti.i32, so: ti.i32, a: ti.i32, h: ti.f64):
        m = self.model
        for b, p in ti.ndrange(m.num_envs, m.counts["particle"]):
            self._stress_body(si, so, a, ti.cast(h, self.real), b, p)

    @ti.kernel
    def _grid_update(self, a: ti.i32, h: ti.f64, t: ti.f64):
        for I in ti.grouped(self.grid_m):
            self._update_body(I, a, ti.cast(h, self.real), ti.cast(t, self.real))

    @ti.kernel
    def _g2p(self, si: ti.i32, so: ti.i32, h: ti.f64):
        m = self.model
        for b, p in ti.ndrange(m.num_envs, m.counts["particle"]):
            self._gather(si, so, b, p, ti.cast(h, self.real))

    @ti.kernel
    def _g2p_adjoint(self, si: ti.i32, so: ti.i32, h: ti.f64):
        m = self.model
        for I in ti.grouped(self.grid_m):
            self.grid_v.grad[I] = ti.Vector.zero(self.real, m.dim)
            self.grid_p.grad[I] = ti.Vector.zero(self.real, m.dim)
            self.grid_m.grad[I] = 0.0
        for b, p in ti.ndrange(m.num_envs, m.counts["particle"]):
            self._gather_adjoint(si, so, b, p, ti.cast(h, self.real))

    @ti.kernel
    def _p2g_adjoint(self, si: ti.i32):
        m = self.model
        for b, p in ti.ndrange(m.num_envs, m.counts["particle"]):
            m.particle_mass.grad[b, p] += self._scatter_adjoint(si, b, p, m.particle_mass[b, p])

    @ti.func
    def _stress_body(self, si, so, a, dt, b, p):
        """Return mapping, Kirchhoff stress and muscle of particle ``p``; stores ``F``, ``Jp``
        of slot ``so`` and the particle's affine matrix ``m C - 4 dt V tau / dx^2``."""
        m = self.model
        D = ti.static(m.dim)
        F_trial = matmul(ti.Matrix.identity(self.real, D) + dt * self.C[si, b, p], self.F[si, b, p])
        E, nu = m.youngs_modulus[b, p], m.poisson_ratio[b, p]
        mu = E / (2.0 * (1.0 + nu))
        lam = E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))
        Jp = ti.cast(1.0, self.real)
        if ti.static(self.has_Jp):
            Jp = self.Jp[si, b, p]
        # Each material's branch ends in stores: a local reassigned in a runtime branch and
        # read afterwards would cost the adjoint a stack per scalar.
        if ti.static(len(self.materials) == 1):
            self._material_update(0, si, so, a, dt, b, p, F_trial, Jp, mu, lam)
        else:
            mid = m.particle_material[p]
            for k in ti.static(range(len(self.materials))):
                if mid == k:
                    self._material_update(k, si, so, a, dt, b, p, F_trial, Jp, mu, lam)

    @ti.func
    def _material_update(self, k: ti.template(), si, so, a, dt, b, p, F_trial, Jp, mu, lam):
        m = self.model
        D = ti.static(m.dim)
        q = ti.Vector.zero(self.real, self.q_size)
        for j in ti.static(range(len(self.extra_names[k]))):
            q[j] = ti.static(getattr(m, self.extra_names[k][j]))[b, p]
        Fe, Jp_new, tau = self.materials[k].update(F_trial, Jp, mu, lam, q)
        self.F[so, b, p] = Fe
        if ti.static(self.has_Jp):
            self.Jp[so, b, p] = Jp_new
        scale = -dt * m.particle_volume[b, p] * 4.0 * self.inv_dx * self.inv_dx
        momentum = m.particle_mass[b, p] * self.C[si, b, p]
        if ti.static(m.counts.get("actuator", 0) > 0):
            g = m.particle_actuator[p]
            if g >= 0:
                d = ti.Vector([m.actuator_direction[b, g, j] for j in ti.static(range(D))])
                Fd = matvec(Fe, d)
                tau_act = (self.act[a, b, g] * m.actuator_strength[b, g]) * Fd.outer_product(Fd)
                self.affine[b, p] = scale * (tau + tau_act) + momentum
            else:
                self.affine[b, p] = scale * tau + momentum
        else:
            self.affine[b, p] = scale * tau + momentum

    @ti.func
    def _update_body(self, I, a, dt, t):
        """Grid node ``I = (b, i, j[, k])``: velocity from momentum, gravity, boundaries."""
        m = self.model
        D = ti.static(m.dim)
        b = I[0]
        mass = self.grid_m[I]
        # Empty nodes skip everything (also in the adjoint: no atomic adds into the gravity
        # and friction gradients); both branches end in a store (no adjoint stack).
        if mass > self.mass_eps:
            g = ti.Vector([m.gravity[b, k] for k in ti.static(range(D))])
            self.grid_v[I] = self._boundaries(self.grid_p[I] / mass + dt * g, I, a, t)
        else:
            self.grid_v[I] = ti.Vector.zero(self.real, D)

    @ti.func
    def _boundaries(self, v, I, a, t):
        m = self.model
        D = ti.static(m.dim)
        b = I[0]
        out = v
        for k in ti.static(range(D)):
            n = ti.Vector.unit(D, k, dt=self.real)
            out = boundary.collide(out, n, m.wall_friction[b], I[k + 1] < self.wall_width, self.wall_kind)
            out = boundary.collide(out, -n, m.wall_friction[b],
                                   I[k + 1] >= self.grid_res[k] - self.wall_width, self.wall_kind)
        xn = ti.Vector(self.origin) + self.dx * ti.cast(
            ti.Vector([I[k + 1] for k in ti.static(range(D))]), self.real)
        if ti.static(m.meta["has_ground"]):
            out = boundary.collide(out, ti.Vector.unit(D, D - 1, dt=self.real), m.ground_friction[b],
                                   xn[D - 1] < m.ground_height[b], self.ground_kind)
        if ti.static(self.has_colliders):
            out = self.colliders.grid_collide(out, xn, b, a, t)
        return out

    # -- host helpers ------------------------------------------------------------------------------
    def write_frame(self, frame: int, arrays: dict) -> None:
        bad = self._unphysical(arrays)
        if "F" in bad:
            raise ValueError("state 'F' must be a deformation gradient with det > 0 "
                             "(identity at rest); start from model.initial_state()")
        if "Jp" in bad:
            raise ValueError("state 'Jp' must be positive (1 at rest); start from model.initial_state()")
        if "x" in bad:
            lo, hi = self._interior()
            raise ValueError(f"particles must lie inside the grid interior [{lo}, {hi}] "
                             f"(domain_origin, domain_size and grid_res of SolverMPM.Config)")
        super().write_frame(frame, arrays)

    def check_frame(self, arrays: dict, step: int) -> None:
        """Particles that left the grid interior or inverted (``det F <= 0``): the step was
        unstable (too large for the speeds reached), not a state to restart from."""
        bad = self._unphysical(arrays)
        for name, problem in (("x", "left the grid"), ("F", "is inverted (det F <= 0)"),
                              ("Jp", "is not positive")):
            if name in bad:
                raise SimulationError(step, name, f"{bad[name]} particle(s)", problem=problem)

    def _unphysical(self, arrays: dict) -> dict[str, int]:
        """``{quantity: particle count}`` of the given state arrays that no stable step
        reaches: ``x`` outside the grid interior (the particle's stencil would leave the
        grid), ``F`` with ``det F <= 0``, ``Jp <= 0``."""
        bad = {}
        if "x" in arrays:
            lo, hi = self._interior()
            x = np.asarray(arrays["x"], dtype=float)
            bad["x"] = int(np.any((x < lo) | (x > hi), axis=-1).sum())
        if "F" in arrays:
            bad["F"] = int((np.linalg.det(np.asarray(arrays["F"], dtype=float)) <= 0).sum())
        if "Jp" in arrays:
            bad["Jp"] = int((np.asarray(arrays["Jp"]) <= 0).sum())
        return {k: n for k, n in bad.items() if n}

    def _interior(self) -> tuple[np.ndarray, np.ndarray]:
        """Corners [m] of the region particles must stay in (their stencil inside the grid)."""
        return (np.asarray(self.origin) + self.dx,
                np.asarray(self.origin) + self.dx * (np.asarray(self.grid_res) - 2))

    def max_stable_dt(self, cfl: float = 0.5) -> float:
        """Largest substep [s] that keeps the elastic (or acoustic) wave within ``cfl`` cells.

        Uses the P-wave speed ``sqrt((lam + 2 mu) / rho)`` (fluids: ``sqrt(K / rho)``) of the
        stiffest particle, ``rho = particle_mass / particle_volume``.
        """
        m = self.model
        E, nu = m.get("youngs_modulus"), m.get("poisson_ratio")
        modulus = E * (1 - nu) / ((1 + nu) * (1 - 2 * nu))
        if "bulk_modulus" in m.params:
            modulus = np.maximum(modulus, m.get("bulk_modulus"))
        rho = m.get("particle_mass") / m.get("particle_volume")
        c = float(np.sqrt(np.max(modulus / rho)))
        return cfl * self.dx / max(c, 1e-12)

    def node_positions(self) -> np.ndarray:
        """World positions of the grid nodes, ``[*grid_res, dim]`` [m]."""
        axes = [self.origin[k] + self.dx * np.arange(r) for k, r in enumerate(self.grid_res)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
