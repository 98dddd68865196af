"""Boundary conditions from data: particles that follow measured trajectories.

A specimen held by a gripper, a cloth pinned to a moving fixture: the markers on the held
part are not predictions but *inputs*. They drive kinematic particles while the free
markers are compared with the simulation.

The mass-spring solver has no kinematic particles, so :class:`KinematicDriver` builds them
from two ingredients without touching the solver:

* the held particles get a very large mass (``heavy_mass``), so that within a step the
  springs (forces of order ``k L``) cannot deflect them (their acceleration is
  ``f / M``, about ``1e-9`` of gravity's);
* before every step the driver, plugged into :class:`~diffsim.autodiff.Rollout` as an
  in-loop controller, *writes* their position and velocity into the step's input frame:
  the measured position at that frame, and the velocity that carries a heavy particle
  under gravity and drag exactly onto the next measured position at the end of the step
  (symplectic Euler with ``n`` substeps of ``h``, drag factor ``c = exp(-drag h)``:
  ``x_n = x_0 + h (v_0 S1 + h g S2)``, ``S1 = sum_{k=1..n} c^k``,
  ``S2 = sum_{k=1..n} sum_{i<k} c^i``).

The adjoint of an overwrite is a zero: the overwritten values influence nothing, so
:meth:`compute_grad` clears the gradient of those particles' state at that frame (it runs
after the step's adjoint has accumulated into it). Gradients with respect to the model
parameters and the free particles are exact; the held particles' own simulated positions
agree with the data to ``O(k L / M)``.

FEM models have kinematic vertices natively (control ``target``); use
:func:`fem_targets` to turn measured positions into that control instead.
"""

import numpy as np
import taichi as ti


@ti.data_oriented
class KinematicDriver:
    """Drive ``particles`` of a mass-spring solver along prescribed positions.

    Args:
        solver: a :class:`~diffsim.solvers.SolverMassSpring` (any solver with windowed
            ``x``/``v`` of shape ``[slot, B, N]`` and a ``particle_mass`` parameter).
        particles: ``[K]`` indices of the held particles.
        heavy_mass: mass [kg] given to the held particles (the model is modified).

    Call :meth:`set_targets` before each :meth:`~diffsim.autodiff.Rollout.forward`, then pass the
    driver as the rollout's ``controller``.
    """

    def __init__(self, solver, particles, heavy_mass: float = 1e9):
        self.solver = solver
        self.model = solver.model
        self.particles = np.asarray(particles, dtype=np.int32).ravel()
        n = self.model.counts["particle"]
        if len(self.particles) == 0 or self.particles.min() < 0 or self.particles.max() >= n:
            raise ValueError(f"kinematic particles must be indices in 0..{n - 1}, got {self.particles}")
        self.heavy_mass = float(heavy_mass)
        mass = self.model.get("particle_mass")
        mass[:, self.particles] = self.heavy_mass
        self.model.set("particle_mass", mass)
        self._pos = self._vel = self._act = None
        self.params = {}

    # -- data ------------------------------------------------------------------------------
    def set_targets(self, positions: np.ndarray, dt: float, actions: np.ndarray | None = None) -> None:
        """Prescribed positions ``[T + 1, B, K, dim]`` [m] for steps of ``dt`` [s], and
        optional actuation ``[T, B, A]`` (the rollout's controller writes it)."""
        m, s = self.model, self.solver
        pos = np.asarray(positions, dtype=s.dtype)
        B, K, D = m.num_envs, len(self.particles), m.dim
        if pos.ndim != 4 or pos.shape[1:] != (B, K, D):
            raise ValueError(f"kinematic positions must be [T + 1, B, K, dim] = [*, {B}, {K}, {D}], "
                             f"got {pos.shape}")
        n = s.substeps
        drag, g = m.get("drag"), m.get("gravity")          # [B], [B, dim]
        h = float(dt) / n
        c = np.exp(-drag * h)                                 # [B]
        k = np.arange(1, n + 1)
        S1 = np.sum(c[:, None] ** k, axis=1)
        S2 = np.array([np.sum([np.sum(cb ** np.arange(kk)) for kk in k]) for cb in c])
        delta = pos[1:] - pos[:-1]                            # [T, B, K, D]
        vel = (delta / h - (h * S2)[None, :, None, None] * g[None, :, None, :]) / S1[None, :, None, None]
        self._pos = np.ascontiguousarray(pos)
        self._vel = np.ascontiguousarray(vel.astype(s.dtype))
        if actions is not None:
            self._act = np.ascontiguousarray(np.asarray(actions, dtype=s.dtype))
        elif s.action_count:
            self._act = np.zeros((len(vel), B, s.action_count), dtype=s.dtype)
        else:
            self._act = None

    # -- controller interface of Rollout ------------------------------------------------------
    def compute(self, solver, frame: int, step: int, t: int) -> None:
        if self._pos is None:
            raise RuntimeError("KinematicDriver.set_targets() must be called before the rollout")
        if t >= len(self._vel):
            raise ValueError(f"the rollout is longer than the prescribed motion ({len(self._vel)} steps)")
        slot = frame * solver.substeps
        self._write(solver.x, solver.v, slot, self._idx(), self._pos[t], self._vel[t])
        if self._act is not None:
            self._write_act(solver.act, step, self._act[t])

    def compute_grad(self, solver, frame: int, step: int, t: int) -> None:
        self._zero(solver.x.grad, solver.v.grad, frame * solver.substeps, self._idx())

    def zero_window_grads(self) -> None:
        pass  # the driver has no fields of its own

    def zero_grads(self) -> None:
        pass

    def grads(self) -> dict:
        return {}

    def _idx(self) -> np.ndarray:
        return self.particles

    # -- kernels --------------------------------------------------------------------------------
    @ti.kernel
    def _write(self, x: ti.template(), v: ti.template(), slot: ti.i32, idx: ti.types.ndarray(),
               pos: ti.types.ndarray(), vel: ti.types.ndarray()):
        for b, k in ti.ndrange(x.shape[1], idx.shape[0]):
            i = idx[k]
            for d in ti.static(range(x.n)):
                x[slot, b, i][d] = pos[b, k, d]
                v[slot, b, i][d] = vel[b, k, d]

    @ti.kernel
    def _zero(self, gx: ti.template(), gv: ti.template(), slot: ti.i32, idx: ti.types.ndarray()):
        for b, k in ti.ndrange(gx.shape[1], idx.shape[0]):
            i = idx[k]
            gx[slot, b, i] = ti.zero(gx[slot, b, i])
            gv[slot, b, i] = ti.zero(gv[slot, b, i])

    @ti.kernel
    def _write_act(self, act: ti.template(), step: ti.i32, values: ti.types.ndarray()):
        for b, a in ti.ndrange(act.shape[1], values.shape[1]):
            act[step, b, a] = values[b, a]


def fem_targets(positions: np.ndarray) -> np.ndarray:
    """FEM ``target`` control from measured positions of the kinematic vertices.

    ``positions`` ``[T + 1, B, K, dim]`` (frame 0 included) -> ``[T, B, K, dim]``: the
    FEM solver's ``target`` of step t is the position at the *end* of the step.
    """
    positions = np.asarray(positions)
    return positions[1:]
