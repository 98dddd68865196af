"""Neural controllers evaluated inside the simulation loop, in Taichi kernels.

:class:`ControllerSineMLP` is the open-loop-plus-feedback policy of DiffTaichi's mass-spring
robots (Hu et al., ICLR 2020) and of "Complex Locomotion Skill Learning via Differentiable
Physics" (Fang et al. 2022): a one-hidden-layer network whose input vector is, in order,

1. ``n_sin`` sine waves of a clock, ``sin(omega t + 2 pi k / n_sin)`` (a central pattern
   generator the network learns to mix);
2. ``2 * harmonics`` phase inputs ``sin(k omega t), cos(k omega t)``, ``k = 1..harmonics``;
3. proprioception, per observed (sensor) particle: its position relative to the sensors'
   centre, then its velocity (absolute, or relative to the centre's velocity with
   ``relative_velocity``), all times ``obs_scale``;
4. with ``center_inputs``: the centre's velocity (``dim`` values) and height above
   ``height_ref`` (1 value), times ``center_scale`` (what velocity and height tracking
   need to see);
5. goal commands per environment (target velocity, height, heading ...), ``C`` values,
   constant ``[B, C]`` or a per-step schedule ``[T, B, C]`` read by global step.

The hidden activation is ``tanh`` or ``sin`` (periodic activations, Sitzmann et al. 2020;
Fang et al. use them for gaits); the outputs ``tanh(...)`` in [-1, 1] are the actuation
``act[step, b, a]``. The layout is mirrored exactly by
:class:`diffsim.control.torch_policy.TorchSineMLP` (weights convert both ways).

Running it in Taichi (one launch per step, all B environments) rather than in torch keeps
a training iteration launch-bound at two launches per step; the torch bridge offers the
same loop with any ``nn.Module`` when flexibility matters more than speed.

An actuation-effort regulariser ``effort_weight * mean(act^2)`` is folded into the
adjoint: :meth:`compute_grad` adds its cotangent to ``act.grad`` before the network's
adjoint consumes it, so the rollout needs no extra loss input for it.
"""

import math

import numpy as np
import taichi as ti

from ..core import backend

ACTIVATIONS = ("tanh", "sin")


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
        activation: hidden activation, ``"tanh"`` or ``"sin"``.
        harmonics: number of sin/cos phase pairs of the clock.
        relative_velocity: observe sensor velocities relative to the centre's velocity.
        center_inputs: also observe the centre's velocity and height.
        center_scale: factor on the centre inputs.
        height_ref: height [m] subtracted from the centre's up coordinate.
        command_steps: longest per-step command schedule :meth:`set_commands` accepts
            (1: constant commands only).
        command_scale: factors on the C commands before they enter the network (keeps a
            velocity in m/s or a height in m O(1)); default ones.
        command_offset: subtracted from the commands before the scale (centres them);
            default zeros. The network sees ``(command - offset) * scale``.
    """

    def __init__(self, solver, hidden: int = 32, n_sin: int = 10, omega: float = 10.0,
                 obs_scale: float = 0.05, sensors=None, commands: int = 0, dt: float = 0.004,
                 seed: int = 0, init_scale=(2.0, 3.0), serial: bool | None = None,
                 serial_below: int = 1 << 14, activation: str = "tanh", harmonics: int = 0,
                 relative_velocity: bool = False, center_inputs: bool = False,
                 center_scale: float = 1.0, height_ref: float = 0.0, command_steps: int = 1,
                 command_scale=None, command_offset=None):
        m = solver.model
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if command_steps < 1:
            raise ValueError("command_steps must be >= 1")
        self.solver = solver
        self.B, self.D = m.num_envs, m.dim
        self.A = solver.action_count
        if self.A == 0:
            raise ValueError("the model has no actuators for a controller to drive")
        self.sensors_np = np.arange(m.counts["particle"]) if sensors is None else np.asarray(sensors)
        self.S = len(self.sensors_np)
        self.H, self.n_sin, self.C = hidden, n_sin, commands
        self.omega, self.obs_scale, self.dt = float(omega), float(obs_scale), float(dt)
        self.activation, self.harmonics = activation, int(harmonics)
        self.relative_velocity, self.center_inputs = bool(relative_velocity), bool(center_inputs)
        self.center_scale, self.height_ref = float(center_scale), float(height_ref)
        self.command_steps = int(command_steps)
        self.command_scale = np.ones(commands) if command_scale is None else \
            np.asarray(command_scale, dtype=np.float64).reshape(-1)
        self.command_offset = np.zeros(commands) if command_offset is None else \
            np.asarray(command_offset, dtype=np.float64).reshape(-1)
        if len(self.command_scale) != commands or len(self.command_offset) != commands:
            raise ValueError(f"command_scale and command_offset need {commands} entries each")
        # Offsets of the input groups (read at compile time).
        self.i_phase = n_sin
        self.i_prop = n_sin + 2 * self.harmonics
        self.i_center = self.i_prop + 2 * self.D * self.S
        self.i_cmd = self.i_center + (self.D + 1 if self.center_inputs else 0)
        self.n_inputs = self.i_cmd + commands
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
        self.command = ti.field(real, shape=(self.command_steps, self.B, max(commands, 1)),
                                needs_grad=True)
        self.cmd_scale = ti.field(real, shape=max(commands, 1))
        self.cmd_scale.from_numpy(np.concatenate([self.command_scale, np.ones(1)])[:max(commands, 1)]
                                  .astype(backend.np_real()))
        self.cmd_offset = ti.field(real, shape=max(commands, 1))
        self.cmd_offset.from_numpy(np.concatenate([self.command_offset, np.zeros(1)])[:max(commands, 1)]
                                   .astype(backend.np_real()))
        # per-step activations kept over the window for the adjoint
        self.center = ti.Vector.field(self.D, real, shape=(W, self.B))
        self.center_v = ti.Vector.field(self.D, real, shape=(W, self.B))
        self.inputs = ti.field(real, shape=(W, self.B, self.n_inputs))
        self.pre1 = ti.field(real, shape=(W, self.B, self.H))
        self.hidden = ti.field(real, shape=(W, self.B, self.H))
        # per-step adjoint scratch (the backward of one step runs in one launch)
        self.g_pre2 = ti.field(real, shape=(self.B, self.A))
        self.g_pre1 = ti.field(real, shape=(self.B, self.H))
        self.g_inputs = ti.field(real, shape=(self.B, self.n_inputs))
        self.params = {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}
        self._schedule_len = 1
        self.effort_weight = 0.0
        self._effort_scale = 0.0
        rng = np.random.default_rng(seed)
        n_in = self.n_inputs
        self.set_params({
            "W1": rng.normal(size=(self.H, n_in)) * math.sqrt(2 / (self.H + n_in)) * init_scale[0],
            "b1": np.zeros(self.H),
            "W2": rng.normal(size=(self.A, self.H)) * math.sqrt(2 / (self.H + self.A)) * init_scale[1],
            "b2": np.zeros(self.A)})

    # -- description ----------------------------------------------------------------------
    def config(self) -> dict:
        """The architecture as plain data (what :meth:`from_config` and the torch mirror need)."""
        return {"hidden": self.H, "n_sin": self.n_sin, "omega": self.omega,
                "obs_scale": self.obs_scale, "sensors": self.sensors_np.tolist(),
                "commands": self.C, "dt": self.dt, "activation": self.activation,
                "harmonics": self.harmonics, "relative_velocity": self.relative_velocity,
                "center_inputs": self.center_inputs, "center_scale": self.center_scale,
                "height_ref": self.height_ref, "command_scale": self.command_scale.tolist(),
                "command_offset": self.command_offset.tolist(),
                "dim": self.D, "actuators": self.A}

    @classmethod
    def from_config(cls, solver, config: dict, **overrides) -> "ControllerSineMLP":
        """A controller of the architecture ``config`` (from :meth:`config`) on ``solver``."""
        cfg = {k: v for k, v in config.items()
               if k not in ("dim", "actuators") and not k.startswith("_")}
        if config.get("actuators", solver.action_count) != solver.action_count:
            raise ValueError(f"the controller drives {config['actuators']} actuators, the model "
                             f"has {solver.action_count}")
        cfg.update(overrides)
        return cls(solver, **cfg)

    # -- parameters -----------------------------------------------------------------------
    def get_params(self) -> dict[str, np.ndarray]:
        return {k: f.to_numpy() for k, f in self.params.items()}

    def set_params(self, values: dict) -> None:
        for k, v in values.items():
            v = np.asarray(v, dtype=backend.np_real())
            if v.shape != tuple(self.params[k].shape):
                raise ValueError(f"parameter {k!r} must have shape {tuple(self.params[k].shape)}, "
                                 f"got {v.shape}")
            self.params[k].from_numpy(v)

    def set_commands(self, commands) -> None:
        """Goal commands: ``[B, C]`` constant, or a schedule ``[T, B, C]`` by global step.

        With a schedule, step ``t`` reads row ``min(t, T - 1)``; ``T`` may not exceed
        ``command_steps``.
        """
        c = np.asarray(commands, dtype=backend.np_real())
        if c.ndim <= 2:
            c = c.reshape(1, self.B, -1)
        if c.ndim != 3 or c.shape[1] != self.B:
            raise ValueError(f"commands must be [B, C] or [T, B, C] with B={self.B}, got {c.shape}")
        if c.shape[2] != self.C:
            raise ValueError(f"expected {self.C} commands per environment, got {c.shape[2]}")
        if len(c) > self.command_steps:
            raise ValueError(f"a schedule of {len(c)} steps exceeds command_steps="
                             f"{self.command_steps} given at construction")
        if not np.all(np.isfinite(c)):
            raise ValueError("commands contain NaN or Inf")
        full = np.zeros(self.command.shape, dtype=backend.np_real())
        if self.C:
            full[:len(c)] = c
        self.command.from_numpy(full)
        self._schedule_len = len(c)

    def set_effort(self, weight: float, steps: int) -> None:
        """Regulariser ``weight * mean(act^2)`` over ``steps`` steps, folded into the adjoint."""
        self.effort_weight = float(weight)
        self._effort_scale = 2.0 * self.effort_weight / max(1, steps * self.B * self.A)

    def grads(self) -> dict[str, np.ndarray]:
        return {k: f.grad.to_numpy() for k, f in self.params.items()}

    def command_grads(self) -> np.ndarray:
        """Gradient of the commands, ``[T, B, C]`` over the current schedule."""
        return self.command.grad.to_numpy()[:self._schedule_len, :, :self.C]

    def zero_grads(self) -> None:
        for f in self.params.values():
            f.grad.fill(0)
        self.command.grad.fill(0)

    def zero_window_grads(self) -> None:
        """Nothing to clear: the adjoint keeps no per-step gradient fields."""

    # -- the in-loop contract used by diffsim.autodiff.Rollout ------------------------------
    def _command_row(self, t: int) -> int:
        return min(t, self._schedule_len - 1)

    def compute(self, solver, frame: int, step: int, t: int) -> None:
        """Write ``act[step]`` from the state at ``frame``; ``t`` is the global step (clock)."""
        self._forward(frame * solver.substeps, step, t * self.dt, self._command_row(t))

    def compute_grad(self, solver, frame: int, step: int, t: int) -> None:
        """Adjoint of :meth:`compute`: ``act.grad[step]`` (plus the effort term) to the
        weights, the commands and ``x.grad``/``v.grad`` at ``frame``."""
        self._backward(frame * solver.substeps, step, self._command_row(t), self._effort_scale)

    @ti.func
    def _input(self, slot, a, b, j, time, row):
        s = self.solver
        value = ti.cast(0.0, s.real)
        if j < self.i_phase:
            value = ti.sin(ti.cast(self.omega * time, s.real) + 2 * math.pi / max(self.n_sin, 1) * j)
        elif j < self.i_prop:
            q = j - self.i_phase
            arg = ti.cast(self.omega * time, s.real) * ti.cast(q // 2 + 1, s.real)
            value = ti.select(q % 2 == 0, ti.sin(arg), ti.cos(arg))
        elif j < self.i_center:
            q = j - self.i_prop
            p = self.sensors[q // (2 * self.D)]
            c = q % (2 * self.D)
            for k in ti.static(range(self.D)):
                if c == k:
                    value = (s.x[slot, b, p][k] - self.center[a, b][k]) * self.obs_scale
                elif c == k + self.D:
                    vk = s.v[slot, b, p][k]
                    if ti.static(self.relative_velocity):
                        vk -= self.center_v[a, b][k]
                    value = vk * self.obs_scale
        elif j < self.i_cmd:
            c = j - self.i_center
            for k in ti.static(range(self.D)):
                if c == k:
                    value = self.center_v[a, b][k] * self.center_scale
            if c == self.D:
                value = (self.center[a, b][self.D - 1] - self.height_ref) * self.center_scale
        else:
            c = j - self.i_cmd
            value = (self.command[row, b, c] - self.cmd_offset[c]) * self.cmd_scale[c]
        return value

    @ti.func
    def _act(self, z):
        out = z
        if ti.static(self.activation == "sin"):
            out = ti.sin(z)
        else:
            out = ti.tanh(z)
        return out

    @ti.func
    def _act_slope(self, z, y):
        # derivative of the activation at pre-activation z with output y
        out = z
        if ti.static(self.activation == "sin"):
            out = ti.cos(z)
        else:
            out = 1.0 - y * y
        return out

    # The matrix products accumulate in registers, one output per thread: Taichi's
    # atomic float adds (a `+=` into a field per multiply-add) made the network ~15x slower
    # than the physics. Taichi cannot differentiate such loop-carried sums without its slow
    # AD stack, so the adjoint is written out in _backward (and checked against central
    # differences in tests/grad and tests/control).
    @ti.kernel
    def _forward(self, slot: ti.i32, a: ti.i32, time: ti.f64, row: ti.i32):
        s = self.solver
        ti.loop_config(serialize=self.serial)
        for b in range(self.B):
            c = ti.Vector.zero(s.real, self.D)
            cv = ti.Vector.zero(s.real, self.D)
            for i in range(self.S):
                c += s.x[slot, b, self.sensors[i]]
                cv += s.v[slot, b, self.sensors[i]]
            self.center[a, b] = c / self.S
            self.center_v[a, b] = cv / self.S
        ti.loop_config(serialize=self.serial)
        for b, j in ti.ndrange(self.B, self.n_inputs):
            self.inputs[a, b, j] = self._input(slot, a, b, j, time, row)
        ti.loop_config(serialize=self.serial)
        for b, h in ti.ndrange(self.B, self.H):
            acc = self.b1[h]
            for j in range(self.n_inputs):
                acc += self.W1[h, j] * self.inputs[a, b, j]
            self.pre1[a, b, h] = acc
            self.hidden[a, b, h] = self._act(acc)
        ti.loop_config(serialize=self.serial)
        for b, k in ti.ndrange(self.B, self.A):
            acc = self.b2[k]
            for h in range(self.H):
                acc += self.W2[k, h] * self.hidden[a, b, h]
            s.act[a, b, k] = ti.tanh(acc)

    @ti.kernel
    def _backward(self, slot: ti.i32, a: ti.i32, row: ti.i32, effort: ti.f64):
        s = self.solver
        # dL/d(pre2) = (dL/d act + effort cotangent) * tanh'
        ti.loop_config(serialize=self.serial)
        for b, k in ti.ndrange(self.B, self.A):
            y = s.act[a, b, k]
            self.g_pre2[b, k] = (s.act.grad[a, b, k] + ti.cast(effort, s.real) * y) * (1.0 - y * y)
        ti.loop_config(serialize=self.serial)
        for k, h in ti.ndrange(self.A, self.H + 1):
            acc = ti.cast(0.0, s.real)
            if h < self.H:
                for b in range(self.B):
                    acc += self.g_pre2[b, k] * self.hidden[a, b, h]
                self.W2.grad[k, h] += acc
            else:
                for b in range(self.B):
                    acc += self.g_pre2[b, k]
                self.b2.grad[k] += acc
        ti.loop_config(serialize=self.serial)
        for b, h in ti.ndrange(self.B, self.H):
            acc = ti.cast(0.0, s.real)
            for k in range(self.A):
                acc += self.W2[k, h] * self.g_pre2[b, k]
            self.g_pre1[b, h] = acc * self._act_slope(self.pre1[a, b, h], self.hidden[a, b, h])
        ti.loop_config(serialize=self.serial)
        for h, j in ti.ndrange(self.H, self.n_inputs + 1):
            acc = ti.cast(0.0, s.real)
            if j < self.n_inputs:
                for b in range(self.B):
                    acc += self.g_pre1[b, h] * self.inputs[a, b, j]
                self.W1.grad[h, j] += acc
            else:
                for b in range(self.B):
                    acc += self.g_pre1[b, h]
                self.b1.grad[h] += acc
        ti.loop_config(serialize=self.serial)
        for b, j in ti.ndrange(self.B, self.n_inputs):
            acc = ti.cast(0.0, s.real)
            for h in range(self.H):
                acc += self.W1[h, j] * self.g_pre1[b, h]
            self.g_inputs[b, j] = acc
        # inputs -> state and commands, one environment per thread
        ti.loop_config(serialize=self.serial)
        for b in range(self.B):
            gc = ti.Vector.zero(s.real, self.D)
            gcv = ti.Vector.zero(s.real, self.D)
            for q in range(2 * self.D * self.S):
                g = self.g_inputs[b, self.i_prop + q] * self.obs_scale
                p = self.sensors[q // (2 * self.D)]
                c = q % (2 * self.D)
                for k in ti.static(range(self.D)):
                    if c == k:
                        s.x.grad[slot, b, p][k] += g
                        gc[k] -= g
                    elif c == k + self.D:
                        s.v.grad[slot, b, p][k] += g
                        if ti.static(self.relative_velocity):
                            gcv[k] -= g
            if ti.static(self.center_inputs):
                for k in ti.static(range(self.D)):
                    gcv[k] += self.g_inputs[b, self.i_center + k] * self.center_scale
                gc[self.D - 1] += self.g_inputs[b, self.i_center + self.D] * self.center_scale
            for i in range(self.S):
                s.x.grad[slot, b, self.sensors[i]] += gc / self.S
                s.v.grad[slot, b, self.sensors[i]] += gcv / self.S
            for c in range(self.C):
                self.command.grad[row, b, c] += self.g_inputs[b, self.i_cmd + c] * self.cmd_scale[c]

    # -- host-side evaluation (tests, the torch mirror) -------------------------------------
    def input_vector(self, x: np.ndarray, v: np.ndarray, t: int, commands=None) -> np.ndarray:
        """The input vector the kernel builds, on the host: ``x``, ``v`` ``[B, N, dim]`` at
        global step ``t``; ``commands`` ``[B, C]`` (default: this step's row). Returns ``[B, I]``."""
        if commands is None:
            commands = self.command.to_numpy()[self._command_row(t), :, :self.C]
        return observation(self.config(), x, v, t * self.dt, commands)


def observation(cfg: dict, x: np.ndarray, v: np.ndarray, time: float, commands) -> np.ndarray:
    """The controller's input vector ``[B, I]`` (NumPy), for the architecture ``cfg``.

    ``x``, ``v``: ``[B, N, dim]`` [m], [m/s]; ``time`` [s]; ``commands`` ``[B, C]``.
    """
    x, v = np.asarray(x, np.float64), np.asarray(v, np.float64)
    sensors = np.asarray(cfg["sensors"], int)
    xs, vs = x[:, sensors], v[:, sensors]
    center, center_v = xs.mean(1), vs.mean(1)
    w = cfg["omega"] * time
    parts = [np.broadcast_to(np.sin(w + 2 * np.pi / max(cfg["n_sin"], 1) * np.arange(cfg["n_sin"])),
                             (len(x), cfg["n_sin"]))]
    k = np.arange(1, cfg["harmonics"] + 1)
    phase = np.stack([np.sin(k * w), np.cos(k * w)], axis=1).reshape(-1)
    parts.append(np.broadcast_to(phase, (len(x), len(phase))))
    rel_v = vs - center_v[:, None] if cfg["relative_velocity"] else vs
    prop = np.concatenate([xs - center[:, None], rel_v], axis=2) * cfg["obs_scale"]
    parts.append(prop.reshape(len(x), -1))
    if cfg["center_inputs"]:
        h = center[:, -1:] - cfg["height_ref"]
        parts.append(np.concatenate([center_v, h], axis=1) * cfg["center_scale"])
    scale = np.asarray(cfg.get("command_scale", np.ones(cfg["commands"])), np.float64)
    offset = np.asarray(cfg.get("command_offset", np.zeros(cfg["commands"])), np.float64)
    parts.append((np.asarray(commands, np.float64).reshape(len(x), cfg["commands"]) - offset) * scale)
    return np.concatenate(parts, axis=1)
