"""The step contract every solver implements.

A solver owns the hot per-step data of one :class:`~diffsim.core.model.Model` in Taichi
fields with a frame axis: a **window** of ``W`` steps holds ``W * substeps + 1`` slots,
``x[slot, b, i]``. A :class:`~diffsim.core.state.State` names frame ``f`` of the window
(slot ``f * substeps``); the slots between two frames keep the substeps, so the adjoint of
a step can run without recomputing them.

Contract (Newton's ``SolverBase``, Brax's pipelines):

* ``step(state_in, state_out, control, dt)`` advances frame ``f`` to ``f + 1`` and never
  writes ``state_in``;
* ``step_grad(state_in, state_out, control, dt)`` is its adjoint: it reads the gradient
  stored on ``state_out``'s fields and accumulates into ``state_in``'s, the control's and the
  model parameters' gradients. It must be called after the matching ``step`` (or after a
  recomputation of it), in reverse order.

Options go into a frozen ``Config`` at construction, never into ``step``.
"""

import math
from dataclasses import dataclass

import numpy as np
import taichi as ti

from ..core import backend, frames
from ..core.state import Control, State


class SolverBase:
    """Window storage and the step contract; subclasses define the physics.

    Subclasses implement :meth:`state_layout` (which windowed fields a frame holds),
    optionally :meth:`scratch_layout` (per-slot intermediates with gradient), and
    :meth:`_substep` / :meth:`_substep_grad`.

    Args:
        model: the static scene description.
        config: the solver's ``Config`` (``None``: defaults).
        window: number of steps the window holds (the checkpoint segment length).
        memory_budget: alternatively, bytes the window may use; the window is the largest
            that fits (at least 1).
    """

    ground_models = ("penalty",)  # GroundContact.model values the subclass implements

    @dataclass(frozen=True)
    class Config:
        substeps: int = 1

    def __init__(self, model, config=None, window: int | None = None,
                 memory_budget: int | None = None):
        backend.ensure_init()
        ground = model.meta.get("ground_model", "penalty")
        if model.meta.get("has_ground") and ground not in self.ground_models:
            raise ValueError(f"{type(self).__name__} supports the ground contact model(s) "
                             f"{self.ground_models}, not {ground!r}")
        self.model = model
        self.config = config if config is not None else self.Config()
        self.substeps = int(self.config.substeps)
        if self.substeps < 1:
            raise ValueError(f"{type(self).__name__}: substeps must be >= 1")
        self.dtype = backend.np_real()
        self.real = backend.real()  # Taichi dtype, read by kernels at compile time
        layout = {**self.state_layout(), **self.scratch_layout()}
        slot_bytes = sum(self._field_bytes(shape) for shape in layout.values())
        if window is None:
            if memory_budget is None:
                window = 1
            else:
                window = max(1, int((memory_budget / slot_bytes - 1) // self.substeps))
        self.window = int(window)
        if self.window < 1:
            raise ValueError(f"{type(self).__name__}: window must be >= 1")
        self.slots = self.window * self.substeps + 1
        self.window_bytes = slot_bytes * self.slots
        B = model.num_envs
        self.state_names = tuple(self.state_layout())
        self.scratch_names = tuple(self.scratch_layout())
        self.fields = {}
        for name, (count, elem) in layout.items():
            self.fields[name] = self._make_field((self.slots, B, max(count, 1)), elem)
            setattr(self, name, self.fields[name])
        self.control_names = tuple(self.control_layout())
        self.control_fields = {}
        for name, (count, elem) in self.control_layout().items():
            self.control_fields[name] = self._make_field((self.window, B, max(count, 1)), elem)
            setattr(self, name, self.control_fields[name])
        # Bumped by every write to the window (frames, controls, steps): a rollout reuses the
        # frames its forward left in the window only if nothing has touched them since.
        self.window_version = 0
        model.flush()  # builders flush on finalize; a hand-made model may not have

    # -- layout ------------------------------------------------------------------------
    def state_layout(self) -> dict[str, tuple[int, tuple[int, ...]]]:
        """Windowed state fields: ``name -> (count per env, element shape)``."""
        raise NotImplementedError  # abstract

    def scratch_layout(self) -> dict[str, tuple[int, tuple[int, ...]]]:
        """Per-slot intermediates that need gradients (e.g. accumulated forces)."""
        return {}

    def control_layout(self) -> dict[str, tuple[int, tuple[int, ...]]]:
        """Per-step inputs written by a controller or the user: ``name -> (count, element)``.

        Each becomes a field ``self.<name>[step, b, i]`` over the window's steps. The base
        layout is the actuation ``act`` (one scalar per actuator, usually in [-1, 1]);
        solvers add e.g. kinematic collider poses or prescribed vertex positions.
        """
        return {"act": (self.model.counts.get("actuator", 0), ())}

    def default_controls(self, name: str) -> np.ndarray:
        """Value of control ``name`` for one step when the user gives none, ``[B, count, ...]``."""
        return np.zeros(self.control_shape(name), dtype=self.dtype)

    def control_shape(self, name: str) -> tuple[int, ...]:
        f = self.control_fields[name]
        return tuple(f.shape[1:3]) + frames.element_shape(f)

    def _field_bytes(self, shape) -> int:
        count, elem = shape
        item = np.dtype(self.dtype).itemsize
        return 2 * self.model.num_envs * max(count, 1) * int(np.prod(elem or (1,))) * item

    @staticmethod
    def _make_field(shape, elem):
        real = backend.real()
        if len(elem) == 0:
            return ti.field(real, shape=shape, needs_grad=True)
        if len(elem) == 1:
            return ti.Vector.field(elem[0], real, shape=shape, needs_grad=True)
        return ti.Matrix.field(elem[0], elem[1], real, shape=shape, needs_grad=True)

    # -- views ---------------------------------------------------------------------------
    def state(self, frame: int) -> State:
        if not 0 <= frame <= self.window:
            raise IndexError(f"frame {frame} outside the window 0..{self.window}")
        return State(self, frame)

    def control(self, step: int) -> Control:
        if not 0 <= step < self.window:
            raise IndexError(f"control step {step} outside the window 0..{self.window - 1}")
        return Control(self, step)

    # -- the contract ----------------------------------------------------------------------
    def _check_step(self, state_in: State, state_out: State, control: Control):
        self.window_version += 1
        if state_in.solver is not self or state_out.solver is not self:
            raise ValueError("states belong to another solver")
        if state_out.frame != state_in.frame + 1:
            raise ValueError(f"state_out must be the frame after state_in "
                             f"({state_in.frame} -> {state_out.frame})")

    def step(self, state_in: State, state_out: State, control: Control, dt: float) -> None:
        """Advance ``state_in`` by ``dt`` seconds into ``state_out`` (never writes the input)."""
        self._check_step(state_in, state_out, control)
        h = dt / self.substeps
        s0 = state_in.frame * self.substeps
        for k in range(self.substeps):
            self._substep(s0 + k, s0 + k + 1, control.step, h)

    def step_grad(self, state_in: State, state_out: State, control: Control, dt: float) -> None:
        """Adjoint of :meth:`step`: pull ``state_out``'s gradients back to its inputs."""
        self._check_step(state_in, state_out, control)
        h = dt / self.substeps
        s0 = state_in.frame * self.substeps
        for k in reversed(range(self.substeps)):
            self._substep_grad(s0 + k, s0 + k + 1, control.step, h)

    def _substep(self, slot_in: int, slot_out: int, act_step: int, dt: float) -> None:
        raise NotImplementedError  # abstract

    def _substep_grad(self, slot_in: int, slot_out: int, act_step: int, dt: float) -> None:
        raise NotImplementedError  # abstract

    # -- host boundary ---------------------------------------------------------------------
    def read_frame(self, frame: int, names=None) -> dict[str, np.ndarray]:
        slot = frame * self.substeps
        return {n: frames.read_slot(self.fields[n], slot, self.dtype)
                for n in (names or self.state_names)}

    def write_frame(self, frame: int, arrays: dict[str, np.ndarray]) -> None:
        self.window_version += 1
        slot = frame * self.substeps
        for name, value in arrays.items():
            if name not in self.state_names:
                raise KeyError(f"{type(self).__name__} has no state array {name!r}; "
                               f"it has {self.state_names}")
            value = np.asarray(value, dtype=self.dtype)
            if not np.all(np.isfinite(value)):
                raise ValueError(f"state array {name!r} contains NaN or Inf")
            frames.write_slot(self.fields[name], slot, value, self.dtype)

    def check_frame(self, arrays: dict[str, np.ndarray], step: int) -> None:
        """Raise :class:`~diffsim.autodiff.SimulationError` if the finite state ``arrays``
        (one frame, as :meth:`read_frame` gives it) of global ``step`` is unphysical; the
        rollout calls it at every checkpoint. The base class accepts every finite state."""

    def frame_shape(self, name: str) -> tuple[int, ...]:
        """Host shape of one frame of a state array, ``(B, N, *element)``."""
        f = self.fields[name]
        return tuple(f.shape[1:3]) + frames.element_shape(f)

    def read_frame_grad(self, frame: int) -> dict[str, np.ndarray]:
        slot = frame * self.substeps
        return {n: frames.read_slot(self.fields[n].grad, slot, self.dtype)
                for n in self.state_names}

    def write_frame_grad(self, frame: int, arrays: dict[str, np.ndarray]) -> None:
        slot = frame * self.substeps
        for name, value in arrays.items():
            frames.write_slot(self.fields[name].grad, slot, value, self.dtype)

    def copy_frame(self, src: int, dst: int) -> None:
        self.window_version += 1
        for name in self.state_names:
            frames.copy_slot(self.fields[name], src * self.substeps, dst * self.substeps)

    def read_window(self, name: str, frames_count: int) -> np.ndarray:
        """Frames ``0..frames_count`` of a state array, ``[frames_count + 1, B, N, ...]``."""
        whole = self.fields[name].to_numpy()
        return whole[: frames_count * self.substeps + 1: self.substeps]

    def write_window_grad(self, name: str, grad: np.ndarray) -> None:
        """Set the gradient of frames ``0..len(grad)-1`` of ``name`` (other slots zero)."""
        f = self.fields[name].grad
        full = np.zeros(f.shape + frames.element_shape(f), dtype=self.dtype)
        full[: (len(grad) - 1) * self.substeps + 1: self.substeps] = grad
        f.from_numpy(full)

    def write_controls(self, controls: dict, start: int, n: int) -> None:
        """Controls for window steps ``start..start+n-1``: ``{name: [n, B, count, ...]}``.

        Controls missing from the dict get :meth:`default_controls`.
        """
        if start + n > self.window:
            raise ValueError(f"{n} control steps do not fit the window of {self.window}")
        self.window_version += 1
        for name in controls:
            if name not in self.control_fields:
                raise KeyError(f"{type(self).__name__} has no control {name!r}; "
                               f"it has {self.control_names}")
        for name, f in self.control_fields.items():
            shape = self.control_shape(name)
            if name in controls:
                value = np.asarray(controls[name], dtype=self.dtype)
                if shape[1] == 1 and value.shape[2:3] == (0,):  # no actuators: nothing to write
                    continue
                if value.shape != (n,) + shape:
                    raise ValueError(f"control {name!r} must have shape [steps, B, ...] = "
                                     f"{(n,) + shape}, got {value.shape}")
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"control {name!r} contains NaN or Inf")
            else:
                value = np.broadcast_to(self.default_controls(name), (n,) + shape)
            whole = f.to_numpy()
            whole[start:start + n] = value
            f.from_numpy(whole)

    def write_actions(self, actions: np.ndarray, start: int = 0) -> None:
        """Actuation only, host ``[n, B, A]`` (other controls keep their values)."""
        if self.action_count == 0:
            return
        actions = np.asarray(actions, dtype=self.dtype)
        shape = self.control_shape("act")
        if actions.shape[1:] != shape:
            raise ValueError(f"actions must have shape [steps, B, A] = [*, {shape[0]}, "
                             f"{shape[1]}], got {actions.shape}")
        if start + len(actions) > self.window:
            raise ValueError(f"{len(actions)} action steps do not fit the window of {self.window}")
        self.window_version += 1
        whole = self.act.to_numpy()
        whole[start:start + len(actions)] = actions
        self.act.from_numpy(whole)

    def read_control_grads(self, n: int) -> dict[str, np.ndarray]:
        """Gradients of the first ``n`` window steps of every control, ``[n, B, count, ...]``."""
        return {name: f.grad.to_numpy()[:n] for name, f in self.control_fields.items()}

    def zero_window_grads(self) -> None:
        for f in self.fields.values():
            f.grad.fill(0)
        for f in self.control_fields.values():
            f.grad.fill(0)

    @property
    def action_count(self) -> int:
        return self.model.counts.get("actuator", 0)

    def bytes_per_step(self) -> int:
        return math.ceil(self.window_bytes / self.slots) * self.substeps
