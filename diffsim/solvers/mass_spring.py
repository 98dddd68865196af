"""Mass-spring solver: damped, actuated springs, gravity, penalty ground and collider contact.

Symplectic Euler per substep of length ``h``::

    f_i   = m_i g + f_ground(x_i, v_i) + sum_colliders f_contact(x_i, v_i)
            + sum_springs k (l - L(t)) d + c (v_rel . d) d
    v_i' = exp(-drag h) v_i + h f_i / m_i
    x_i' = x_i + h v_i'

with ``l`` the spring length, ``d`` its unit direction and ``L(t) = L0 (1 + a u(t))`` the
actuated rest length (DiffTaichi ``mass_spring.py``; Hu et al., ICLR 2020). A substep is one
kernel launch with three parallel loops (contact + gravity, springs, integration); the
spring forces are accumulated into a per-slot ``force`` field so that the adjoint needs no
scratch reset and a recomputed segment overwrites rather than adds.

With ``[[colliders]] type = "ground", model = "sticky"`` the ground exerts no force: a
particle whose step would end below it while moving down stops at the time of impact
``toi = (x_up - height) / -v_up`` (``x' = x + toi v``, ``v' = 0``), a perfectly inelastic,
no-slip impact (DiffTaichi's ``advance_toi``; Hu et al. 2020 show the time of impact makes
its gradients useful). Grounded particles then stick until their forces lift them, which
is what lets DiffTaichi's and Complex Locomotion's robots walk; its gradients are exact
inside each contact state but jump where a particle's contact state changes.

Colliders (:mod:`diffsim.contact`) add their pose controls to the control layout
(``collider_position``, ``collider_velocity``, ``collider_rotation``,
``collider_angular_velocity``; defaults: the builder's static poses) and their penalty
force to the first loop, evaluated at the substep's time within the step.
"""

from dataclasses import dataclass

import taichi as ti

from ..contact import colliders as contact_colliders
from ..contact.penalty import penalty_force
from .base import SolverBase


@ti.data_oriented
class SolverMassSpring(contact_colliders.ColliderControlsMixin, SolverBase):
    """Explicit mass-spring solver. State: ``x`` [m] and ``v`` [m/s], ``[B, N, dim]``."""

    ground_models = ("penalty", "sticky")

    @dataclass(frozen=True)
    class Config:
        substeps: int = 1

    def __init__(self, model, config=None, window=None, memory_budget=None):
        super().__init__(model, config, window, memory_budget)
        self.sticky_ground = model.meta["has_ground"] and model.meta.get("ground_model") == "sticky"
        self.bind_colliders()
        if self.has_colliders:
            self.write_controls({}, 0, self.window)  # static poses until the user says otherwise

    def state_layout(self):
        n, d = self.model.counts["particle"], self.model.dim
        return {"x": (n, (d,)), "v": (n, (d,))}

    def scratch_layout(self):
        return {"force": (self.model.counts["particle"], (self.model.dim,))}

    def _substep(self, slot_in, slot_out, act_step, dt):
        self._advance(slot_in, slot_out, act_step, dt)

    def _substep_grad(self, slot_in, slot_out, act_step, dt):
        self._advance.grad(slot_in, slot_out, act_step, dt)

    @ti.kernel
    def _advance(self, si: ti.i32, so: ti.i32, a: ti.i32, h: ti.f64):
        m = self.model
        D = ti.static(m.dim)
        # (no top-level statements besides the loops: Taichi cannot differentiate them)
        # 0. collider frames of this substep (its start time within the step), stored in slot so
        if ti.static(self.has_colliders):
            for b, k in ti.ndrange(m.num_envs, m.counts["collider"]):
                t = ti.cast(si % self.substeps, self.real) * ti.cast(h, self.real)  # time into the step
                self.colliders.update_frame(so, b, k, a, t)
        # 1. gravity, ground and collider contact, stored (this also clears the slot's force)
        for b, i in ti.ndrange(m.num_envs, m.counts["particle"]):
            xi = self.x[si, b, i]
            g = ti.Vector([m.gravity[b, k] for k in ti.static(range(D))])
            f = m.particle_mass[b, i] * g
            if ti.static(m.meta["has_ground"] and not self.sticky_ground):
                up = ti.Vector.unit(D, D - 1, dt=self.real)
                f += penalty_force(m.ground_height[b] - xi[D - 1], up, self.v[si, b, i],
                                   m.ground_stiffness[b], m.ground_damping[b], m.ground_friction[b],
                                   m.ground_smoothing[b], m.ground_friction_smoothing[b])
            self.force[so, b, i] = f
        # 1b. colliders, accumulated: one loop each, so that each compiles on its own
        for k in ti.static(range(m.counts.get("collider", 0))):
            for b, i in ti.ndrange(m.num_envs, m.counts["particle"]):
                self.force[so, b, i] += self.colliders.particle_force_k(k, b, self.x[si, b, i],
                                                                        self.v[si, b, i], a, so)
        # 2. springs, accumulated
        for b, s in ti.ndrange(m.num_envs, m.counts["spring"]):
            ia, ib = m.spring_indices[s, 0], m.spring_indices[s, 1]
            d = self.x[si, b, ib] - self.x[si, b, ia]
            length = ti.sqrt(d.dot(d) + 1e-20)
            direction = d / length
            rest = m.spring_rest_length[b, s]
            k = m.spring_actuator[s]
            if k >= 0:
                rest *= 1.0 + m.spring_actuation[b, s] * self.act[a, b, k]
            v_rel = self.v[si, b, ib] - self.v[si, b, ia]
            fs = m.spring_stiffness[b, s] * (length - rest) + m.spring_damping[b, s] * v_rel.dot(direction)
            self.force[so, b, ia] += fs * direction
            self.force[so, b, ib] -= fs * direction
        # 3. symplectic Euler (sticky ground: stop at the time of impact)
        for b, i in ti.ndrange(m.num_envs, m.counts["particle"]):
            dt = ti.cast(h, self.real)
            v_new = ti.exp(-dt * m.drag[b]) * self.v[si, b, i] + dt * self.force[so, b, i] / m.particle_mass[b, i]
            x_old = self.x[si, b, i]
            x_new = x_old + dt * v_new
            if ti.static(self.sticky_ground):
                vy = v_new[D - 1]
                if x_new[D - 1] < m.ground_height[b] and vy < 0:
                    # time of impact within the substep [s]; a point that starts below the
                    # ground stops where it is (toi = 0) rather than sinking further
                    toi = ti.min(ti.max((x_old[D - 1] - m.ground_height[b]) / -vy, 0.0), dt)
                    x_new = x_old + toi * v_new
                    v_new = ti.Vector.zero(self.real, D)
            self.v[so, b, i] = v_new
            self.x[so, b, i] = x_new
