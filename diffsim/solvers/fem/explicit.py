"""Explicit FEM: symplectic Euler on linear simplices, one Taichi launch per substep.

Per substep of length ``h`` (Sifakis and Barbic 2012 for the element forces)::

    F_e   = Ds(x) Dm^-1,   Fdot_e = Ds(v) Dm^-1
    P_e   = P_material(F_e; mu_e, lam_e)                              (diffsim.materials)
          + sigma_e u_k (F_e a_e) a_e^T / |F_e a_e|                    (active fibre, muscle k)
          + beta (mu_e (Fdot_e + Fdot_e^T) + lam_e tr(Fdot_e) I)       (Rayleigh stiffness damping)
    f_a   = -V_e P_e Bop_a  on each vertex a of e,  m_i = sum_e rho_e V_e / (d + 1)
    f_i  += f_ground(x_i, v_i) + sum_colliders f_contact(x_i, v_i) + nodal loads
            + traction * area / d
    v_i'  = exp(-alpha h) v_i + h (f_i / m_i + g)
    x_i'  = x_i + h v_i'

Pinned components keep their value with zero velocity; driven (kinematic) components move
linearly to ``target`` over the step's substeps (``x' = x + (target - x) / remaining``,
``v' = (x' - x) / h``). The substep kernel has top-level loops only (collider frames,
ground contact, one per collider, nodal loads, tractions, elements, integration): forces
and lumped masses are accumulated into per-slot scratch fields whose first loop *stores*,
so Taichi's autodiff differentiates the whole substep (with respect to the state, every
control and every parameter, densities included) and a recomputed segment overwrites
rather than adds.

Contact: the ground of :meth:`~diffsim.core.builder.ModelBuilder.add_ground` and every
collider of :mod:`diffsim.contact` (plane, box, sphere, capsule, cylinder, heightfield,
mesh) push the vertices with the penalty law of
:func:`~diffsim.contact.penalty.penalty_force`, evaluated at the substep's start time
within the step (as in the mass-spring solver). The colliders' pose controls
(``collider_position``, ``collider_velocity``, ``collider_rotation``,
``collider_angular_velocity``, ``[B, K, ...]`` per step; default: the builder's static
poses) join the FEM controls, so gradients reach pose trajectories, shape and contact
parameters as well as everything upstream.
"""

from dataclasses import dataclass

import numpy as np
import taichi as ti

from ...contact import colliders as contact_colliders
from ...contact.penalty import penalty_force
from ...materials import get as get_material
from .kernels import (
    column,
    column_sum,
    identity_like,
    matmul,
    matmul_t,
    matvec,
    stress_function,
    trace,
    vec_dot,
)
from .solver import FEMConfig, SolverFEM


@ti.data_oriented
class SolverFEMExplicit(contact_colliders.ColliderControlsMixin, SolverFEM):
    """Explicit (symplectic Euler) FEM. State ``x`` [m], ``v`` [m/s], ``[B, N, dim]``.

    The stable step is bounded by the element wave transit time, roughly
    ``h < 0.5 l_min / sqrt((lam + 2 mu) / rho)`` for the shortest element edge ``l_min``,
    and by contact: ``h < 2 sqrt(m_i / k)`` for a vertex of lumped mass ``m_i`` against a
    penalty stiffness ``k`` (docs/contact.md).
    """

    @dataclass(frozen=True)
    class Config(FEMConfig):
        integrator: str = "explicit"

    def __init__(self, model, config=None, window=None, memory_budget=None):
        if config is not None and config.integrator != "explicit":
            raise ValueError(f"SolverFEMExplicit needs integrator='explicit', got {config.integrator!r}")
        super().__init__(model, config, window, memory_budget)  # writes every default control
        self.bind_colliders()
        self.material = get_material(model.meta["material"])
        self.stress = stress_function(self.material)
        E, d = model.counts["element"], model.dim
        T = max(model.counts["traction"], 1)
        self.rest_inverse = ti.Matrix.field(d, d, self.real, shape=E)
        self.rest_volume = ti.field(self.real, shape=E)
        self.facet_area = ti.field(self.real, shape=T)
        self.rest_inverse.from_numpy(self.rest_inverse_np.astype(self.dtype))
        self.rest_volume.from_numpy(self.rest_volume_np.astype(self.dtype))
        self.facet_area.from_numpy(np.resize(self.facet_area_np, T).astype(self.dtype))

    def max_stable_dt(self, cfl: float = 0.5) -> float:
        """Largest stable substep [s] estimate: ``cfl * min_e l_e / c_e`` over environments and
        elements, with ``l_e`` the shortest edge and ``c_e = sqrt((lam + 2 mu) / rho)`` the
        dilatational wave speed (damping and muscles tighten it somewhat)."""
        X = self.model.meta["rest_positions"]
        el = self.model.topology["elements"]
        d = self.model.dim
        pairs = [(i, j) for i in range(d + 1) for j in range(i + 1, d + 1)]
        edge = np.min([np.linalg.norm(X[el[:, i]] - X[el[:, j]], axis=1) for i, j in pairs], axis=0)
        mu, lam = self.model.get("element_mu"), self.model.get("element_lam")
        c = np.sqrt((lam + 2 * mu) / self.model.get("element_density"))
        return float(cfl * np.min(edge[None] / c))

    def scratch_layout(self):
        n, d = self.model.counts["vertex"], self.model.dim
        return {"net_force": (n, (d,)), "lumped_mass": (n, ())}

    def _substep(self, slot_in, slot_out, act_step, dt):
        self._advance(slot_in, slot_out, act_step, dt, self.substeps - slot_in % self.substeps)

    def _substep_grad(self, slot_in, slot_out, act_step, dt):
        self._advance.grad(slot_in, slot_out, act_step, dt, self.substeps - slot_in % self.substeps)

    @ti.kernel
    def _advance(self, si: ti.i32, so: ti.i32, a: ti.i32, h: ti.f64, remaining: ti.i32):
        m = self.model
        D = ti.static(m.dim)
        NB = ti.static(m.num_envs)
        # 0. collider frames of this substep (its start time within the step), stored in slot so
        if ti.static(self.has_colliders):
            for b, k in ti.ndrange(NB, m.counts["collider"]):
                t = ti.cast(si % self.substeps, self.real) * ti.cast(h, self.real)  # time into the step
                self.colliders.update_frame(so, b, k, a, t)
        # 1. ground contact, stored (this also clears the slot's force and mass)
        for b, i in ti.ndrange(NB, m.counts["vertex"]):
            f = ti.Vector.zero(self.real, D)
            if ti.static(m.meta["has_ground"]):
                up = ti.Vector.unit(D, D - 1, dt=self.real)
                f = penalty_force(m.ground_height[b] - self.x[si, b, i][D - 1], up, self.v[si, b, i],
                                  m.ground_stiffness[b], m.ground_damping[b], m.ground_friction[b],
                                  m.ground_smoothing[b], m.ground_friction_smoothing[b])
            self.net_force[so, b, i] = f
            self.lumped_mass[so, b, i] = 0.0
        # 1b. colliders, accumulated: one loop each, so that each compiles on its own
        for k in ti.static(range(m.counts.get("collider", 0))):
            for b, i in ti.ndrange(NB, m.counts["vertex"]):
                self.net_force[so, b, i] += self.colliders.particle_force_k(k, b, self.x[si, b, i],
                                                                            self.v[si, b, i], a, so)
        # 2. nodal loads
        for b, k in ti.ndrange(NB, m.counts["load"]):
            self.net_force[so, b, m.load_vertices[k]] += self.force[a, b, k]
        # 3. surface tractions (dead loads on the rest area)
        for b, k in ti.ndrange(NB, m.counts["traction"]):
            share = self.traction[a, b, k] * (self.facet_area[k] / D)
            for c in ti.static(range(D)):
                self.net_force[so, b, m.traction_facets[k, c]] += share
        # 4. element forces and lumped masses
        for b, e in ti.ndrange(NB, m.counts["element"]):
            i0 = m.elements[e, 0]
            x0, v0 = self.x[si, b, i0], self.v[si, b, i0]
            # Matrices are built whole, never element by element, and the kernel has no
            # data-dependent branches: both keep the adjoint kernel small to compile.
            Ds = ti.Matrix.cols([self.x[si, b, m.elements[e, c + 1]] - x0 for c in ti.static(range(D))])
            Dv = ti.Matrix.cols([self.v[si, b, m.elements[e, c + 1]] - v0 for c in ti.static(range(D))])
            Dinv = self.rest_inverse[e]
            F = matmul(Ds, Dinv)
            mu, lam = m.element_mu[b, e], m.element_lam[b, e]
            k = m.element_actuator[e]
            fib = ti.Vector([m.element_fiber[b, e, c] for c in ti.static(range(D))])
            Fa = matvec(F, fib)
            tension = m.element_active_stress[b, e] * self.act[a, b, ti.max(k, 0)] * ti.cast(k >= 0, self.real)
            Fd = matmul(Dv, Dinv)
            P = (self.stress(F, mu, lam)
                 + (tension / ti.sqrt(vec_dot(Fa, Fa) + 1e-20)) * Fa.outer_product(fib)
                 + m.damping_stiffness[b] * (mu * (Fd + Fd.transpose()) + lam * trace(Fd) * identity_like(Fd)))
            H = -self.rest_volume[e] * matmul_t(P, Dinv)  # column c: force on vertex c + 1
            share = m.element_density[b, e] * self.rest_volume[e] / (D + 1)
            for c in ti.static(range(D)):
                self.net_force[so, b, m.elements[e, c + 1]] += column(H, c)
                self.lumped_mass[so, b, m.elements[e, c + 1]] += share
            self.net_force[so, b, i0] += -column_sum(H)
            self.lumped_mass[so, b, i0] += share
        # 5. symplectic Euler, then boundary conditions per component (as 0/1 blends)
        for b, i in ti.ndrange(NB, m.counts["vertex"]):
            dt = ti.cast(h, self.real)
            g = ti.Vector([m.gravity[b, c] for c in ti.static(range(D))])
            x, v = self.x[si, b, i], self.v[si, b, i]
            v_free = ti.exp(-dt * m.damping_mass[b]) * v + dt * (
                self.net_force[so, b, i] / self.lumped_mass[so, b, i] + g)
            fixed, drive, kin = m.vertex_fixed[i], m.vertex_driven[i], m.vertex_kinematic[i]
            held = ti.Vector([ti.cast((fixed >> c) & 1, self.real) for c in ti.static(range(D))])
            driven = ti.Vector([ti.cast((drive >> c) & 1, self.real) for c in ti.static(range(D))])
            x_fixed = x + driven * (self.target[a, b, ti.max(kin, 0)] - x) / remaining
            x_new = held * x_fixed + (1.0 - held) * (x + dt * v_free)
            v_new = held * (x_fixed - x) / dt + (1.0 - held) * v_free
            self.v[so, b, i] = v_new
            self.x[so, b, i] = x_new
