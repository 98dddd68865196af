"""Neural controllers evaluated inside the simulation loop, in Taichi kernels.

:class:`ControllerSineMLP` is the open-loop-plus-feedback policy of DiffTaichi's mass-spring
robots (Hu et al., ICLR 2020) and of "Complex Locomotion Skill Learning via Differentiable
Physics" (Fang et al. 2022): a one-hidden-layer tanh network whose inputs are

* ``n_sin`` sine waves of a clock, ``sin(omega t + 2 pi k / n_sin)`` (a central pattern
  generator the network learns to mix),
* proprioception: each observed particle's position relative to the centre of mass and its
  velocity, times ``obs_scale``,
* goal commands per environment (e.g. target velocity), ``[B, C]``,

and whose outputs ``tanh(...)`` in [-1, 1] are the actuation ``act[step, b, a]``.

Running it in Taichi (one launch per step, eight parallel loops) rather than in torch
keeps a training iteration launch-bound at two launches per step; the torch bridge offers
the same loop with any ``nn.Module`` when flexibility matters more than speed.
"""

import math

import numpy as np
import taichi as ti

from ..core import backend


@ti.data_oriented
class ControllerSineMLP:
    """Sine-clock MLP controller for a solver with particle state ``x``, ``v``.

    Args:
        solver: the solver it drives (reads ``solver.x``/``solver.v``, writes ``solver.act``).
        hidden: hidden units H.
        n_sin: clock sine inputs.
        omega: clock angular frequency [rad/s].
        obs_scale: factor on the proprioceptive inputs (keeps them O(1) against the clock).
        sensors: particle indices observed (default: all).
        commands: number C of goal-command inputs per environment.
        dt: step length [s] (the clock advances ``dt`` per step).
        seed: initialisation seed (Xavier-like normal weights, as DiffTaichi).
        init_scale: gains on the two layers' initial weights.
        serial: run the kernel's loops on the launching thread (``None``: when the network
            is smaller than ``serial_below`` multiply-adds per step).
    """

    def __init__(self, solver, hidden: int = 32, n_sin: int = 10, omega: float = 10.0,
                 obs_scale: float = 0.05, sensors=None, commands: int = 0, dt: float = 0.004,
                 seed: int = 0, init_scale=(2.0, 3.0), serial: bool | None = None,
                 serial_below: int = 1 << 14):
        m = solver.model
        self.solver = solver
        self.B, self.D = m.num_envs, m.dim
        self.A = solver.action_count
        if self.A == 0:
            raise ValueError("the model has no actuators for a controller to drive")
        self.sensors_np = np.arange(m.counts["particle"]) if sensors is None else np.asarray(sensors)
        self.S = len(self.sensors_np)
        self.H, self.n_sin, self.C = hidden, n_sin, commands
        self.omega, self.obs_scale, self.dt = float(omega), float(obs_scale), float(dt)
        self.n_inputs = n_sin + 2 * self.D * self.S + commands
        # Small networks run faster on the launching thread than spread over a thread pool
        # (waking a worker costs more than the work); read at compile time.
        self.serial = (self.B * self.H * self.n_inputs <= serial_below) if serial is None else serial
        real, W = backend.real(), solver.window
        self.sensors = ti.field(ti.i32, shape=self.S)
        self.sensors.from_numpy(self.sensors_np.astype(np.int32))
        self.W1 = ti.field(real, shape=(self.H, self.n_inputs), needs_grad=True)
        self.b1 = ti.field(real, shape=self.H, needs_grad=True)
        self.W2 = ti.field(real, shape=(self.A, self.H), needs_grad=True)
        self.b2 = ti.field(real, shape=self.A, needs_grad=True)
        self.command = ti.field(real, shape=(self.B, max(commands, 1)), needs_grad=True)
        self.center = ti.Vector.field(self.D, real, shape=(W, self.B), needs_grad=True)
        self.pre1 = ti.field(real, shape=(W, self.B, self.H), needs_grad=True)
        self.hidden = ti.field(real, shape=(W, self.B, self.H), needs_grad=True)
        self.pre2 = ti.field(real, shape=(W, self.B, self.A), needs_grad=True)
        self.params = {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}
        self._window = (self.center, self.pre1, self.hidden, self.pre2)
        rng = np.random.default_rng(seed)
        n_in = self.n_inputs
        self.set_params({
            "W1": rng.normal(size=(self.H, n_in)) * math.sqrt(2 / (self.H + n_in)) * init_scale[0],
            "b1": np.zeros(self.H),
            "W2": rng.normal(size=(self.A, self.H)) * math.sqrt(2 / (self.H + self.A)) * init_scale[1],
            "b2": np.zeros(self.A)})

    # -- parameters -----------------------------------------------------------------------
    def get_params(self) -> dict[str, np.ndarray]:
        return {k: f.to_numpy() for k, f in self.params.items()}

    def set_params(self, values: dict) -> None:
        for k, v in values.items():
            self.params[k].from_numpy(np.asarray(v, dtype=backend.np_real()))

    def set_commands(self, commands) -> None:
        """Goal commands ``[B, C]`` (e.g. target forward velocity per environment)."""
        c = np.asarray(commands, dtype=backend.np_real()).reshape(self.B, -1)
        if c.shape[1] != self.C:
            raise ValueError(f"expected {self.C} commands per environment, got {c.shape[1]}")
        self.command.from_numpy(c if self.C else np.zeros((self.B, 1), backend.np_real()))

    def grads(self) -> dict[str, np.ndarray]:
        return {k: f.grad.to_numpy() for k, f in self.params.items()}

    def zero_grads(self) -> None:
        for f in self.params.values():
            f.grad.fill(0)
        self.command.grad.fill(0)

    def zero_window_grads(self) -> None:
        for f in self._window:
            f.grad.fill(0)

    # -- the in-loop contract used by diffsim.autodiff.Rollout ------------------------------
    def compute(self, solver, frame: int, step: int, t: int) -> None:
        """Write ``act[step]`` from the state at ``frame``; ``t`` is the global step (clock)."""
        self._kernel(frame * solver.substeps, step, t * self.dt)

    def compute_grad(self, solver, frame: int, step: int, t: int) -> None:
        self._kernel.grad(frame * solver.substeps, step, t * self.dt)

    @ti.func
    def _input(self, slot, a, b, j, time):
        s = self.solver
        value = 0.0
        if j < self.n_sin:
            value = ti.sin(ti.cast(self.omega * time, self.solver.real) + 2 * math.pi / self.n_sin * j)
        elif j < self.n_sin + 2 * self.D * self.S:
            q = j - self.n_sin
            p = self.sensors[q // (2 * self.D)]
            c = q % (2 * self.D)
            for k in ti.static(range(self.D)):
                if c == k:
                    value = (s.x[slot, b, p][k] - self.center[a, b][k]) * self.obs_scale
                elif c == k + self.D:
                    value = s.v[slot, b, p][k] * self.obs_scale
        else:
            value = self.command[b, j - self.n_sin - 2 * self.D * self.S]
        return value

    @ti.kernel
    def _kernel(self, slot: ti.i32, a: ti.i32, time: ti.f64):
        s = self.solver
        ti.loop_config(serialize=self.serial)
        for b in range(self.B):
            self.center[a, b] = ti.Vector.zero(self.solver.real, self.D)
        ti.loop_config(serialize=self.serial)
        for b, i in ti.ndrange(self.B, self.S):
            self.center[a, b] += s.x[slot, b, self.sensors[i]] / self.S
        ti.loop_config(serialize=self.serial)
        for b, h in ti.ndrange(self.B, self.H):
            self.pre1[a, b, h] = self.b1[h]
        ti.loop_config(serialize=self.serial)
        for b, h, j in ti.ndrange(self.B, self.H, self.n_inputs):
            self.pre1[a, b, h] += self.W1[h, j] * self._input(slot, a, b, j, time)
        ti.loop_config(serialize=self.serial)
        for b, h in ti.ndrange(self.B, self.H):
            self.hidden[a, b, h] = ti.tanh(self.pre1[a, b, h])
        ti.loop_config(serialize=self.serial)
        for b, k in ti.ndrange(self.B, self.A):
            self.pre2[a, b, k] = self.b2[k]
        ti.loop_config(serialize=self.serial)
        for b, k, h in ti.ndrange(self.B, self.A, self.H):
            self.pre2[a, b, k] += self.W2[k, h] * self.hidden[a, b, h]
        ti.loop_config(serialize=self.serial)
        for b, k in ti.ndrange(self.B, self.A):
            s.act[a, b, k] = ti.tanh(self.pre2[a, b, k])
