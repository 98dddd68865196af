"""Rollouts of many steps with gradients in bounded memory.

A :class:`Rollout` runs ``steps`` steps of a solver in **segments** of at most the solver's
window ``W``. Forward keeps only each segment's first frame (on the host) and the recorded
outputs; backward walks the segments last-first, restores the segment's first frame,
recomputes the segment forward, and runs its adjoint (Griewank's checkpointing; Genesis'
``save_ckpt``/``load_ckpt``; DiffTaichi's ``diffmpm_checkpointing.py``). Device memory is
one window whatever the length; host memory is one frame per segment plus the recordings.
With ``W >= steps`` it is a plain full tape, and both give the same gradients (the
recomputation is deterministic).

With ``truncate=True`` the segments double as windows of truncated backpropagation
through time: no gradient is carried across a segment boundary, so a loss at frame ``f``
reaches only the steps of the segment that ends at or after ``f`` (Williams and Peng 1990).
Long or contact-rich rollouts, whose gradients grow geometrically with the horizon, then
give biased but bounded gradients.

Gradients flow in as cotangents of the recorded frames (``record`` names, e.g. ``x``) and
out to the initial state, the actuation sequence, the model parameters and, with an
in-loop controller, the controller's parameters.
"""

from dataclasses import dataclass, field

import numpy as np

from .diagnostics import check_finite
from .tape import Tape


@dataclass
class RolloutGrads:
    """Gradients of a scalar loss from :meth:`Rollout.backward`.

    Attributes:
        initial: ``{name: [B, N, ...]}`` for the initial state arrays.
        controls: ``{name: [T, B, count, ...]}`` for every control (``act`` included).
        params: ``{name: [B, ...]}`` for every model parameter.
        controller: ``{name: array}`` for the controller's parameters (if any).
    """

    initial: dict
    controls: dict
    params: dict
    controller: dict = field(default_factory=dict)

    @property
    def actions(self) -> np.ndarray | None:
        """Gradient of the actuation ``[T, B, A]`` (``None`` with no actuators)."""
        return self.controls.get("act")


class Rollout:
    """Checkpointed rollout of ``solver`` for ``steps`` steps of ``dt`` seconds.

    Args:
        solver: a solver; its window is the longest segment.
        steps: number of steps T.
        dt: step length [s].
        record: state arrays to keep for every frame 0..T (returned by :meth:`forward`).
        segment: checkpoint segment length (default: the solver's window).
        controller: optional in-loop controller with ``compute(solver, frame, step, t)``,
            ``compute_grad(...)``, ``zero_window_grads()``, ``params`` (see
            :class:`diffsim.control.ControllerSineMLP`).
        diagnostics: optional :class:`~diffsim.autodiff.diagnostics.GradientMonitor` fed
            with per-step gradients during backward.
        truncate: carry a zero gradient across segment boundaries (truncated
            backpropagation in windows of ``segment`` steps); the initial-state gradient
            then covers the first segment only.
    """

    def __init__(self, solver, steps: int, dt: float, record=("x",), segment: int | None = None,
                 controller=None, diagnostics=None, truncate: bool = False):
        self.solver = solver
        self.steps = int(steps)
        self.dt = float(dt)
        self.record = tuple(record)
        for name in self.record:
            if name not in solver.state_names:
                raise KeyError(f"cannot record {name!r}: state arrays are {solver.state_names}")
        self.segment = int(segment or solver.window)
        if not 1 <= self.segment <= solver.window:
            raise ValueError(f"segment must be in 1..{solver.window} (the solver's window)")
        self.controller = controller
        self.diagnostics = diagnostics
        self.truncate = bool(truncate)
        self._checkpoints: list[dict] = []
        self._controls = {}
        # (segment index, solver.window_version) of the frames the forward left in the window
        self._window_valid_for = None
        self._commands = None

    # -- segments ---------------------------------------------------------------------------
    def _segments(self):
        return [(t0, min(self.segment, self.steps - t0)) for t0 in range(0, self.steps, self.segment)]

    def _run_segment(self, k: int, t0: int, n: int, tape: Tape | None = None):
        s = self.solver
        s.write_controls({k: v[t0:t0 + n] for k, v in self._controls.items()}, 0, n)
        for j in range(n):
            if self.controller is not None:
                args = (s, j, j, t0 + j)
                if tape is None:
                    self.controller.compute(*args)
                else:
                    tape.call(self.controller.compute, self.controller.compute_grad, *args)
            if tape is None:
                s.step(s.state(j), s.state(j + 1), s.control(j), self.dt)
            else:
                tape.step(s, s.state(j), s.state(j + 1), s.control(j), self.dt)
            if self.diagnostics is not None and tape is None:
                self.diagnostics.check_forward(s, j + 1, t0 + j + 1)
        self._window_valid_for = (k, s.window_version)

    # -- forward ------------------------------------------------------------------------------
    def forward(self, initial: dict, actions=None, controls: dict | None = None) -> dict:
        """Run the rollout.

        Args:
            initial: ``{name: [B, N, ...]}`` initial state (missing arrays are zero).
            actions: ``[T, B, A]`` actuation; ``None`` when a controller computes it or the
                model has no actuators (shorthand for ``controls={"act": actions}``).
            controls: ``{name: [T, B, count, ...]}`` per-step controls (missing ones get
                the solver's defaults, e.g. static collider poses).
        Returns:
            ``{name: [T + 1, B, N, ...]}`` for each recorded array, and ``"actions"``
            ``[T, B, A]`` when a controller produced them.
        """
        s = self.solver
        controls = dict(controls or {})
        if actions is not None:
            controls["act"] = actions
        for name, value in controls.items():
            controls[name] = np.asarray(value, dtype=s.dtype)
            if controls[name].shape[0] != self.steps:
                raise ValueError(f"control {name!r} must have {self.steps} steps, "
                                 f"got {controls[name].shape[0]}")
        if self.controller is not None:
            controls.pop("act", None)  # the controller writes the actuation
        self._controls = controls
        zero = {n: np.zeros_like(v) for n, v in s.read_frame(0).items()}
        s.write_frame(0, {**zero, **initial})
        out = {n: None for n in self.record}
        acts = [] if self.controller is not None else None
        self._checkpoints = []
        for k, (t0, n) in enumerate(self._segments()):
            if k > 0:
                s.copy_frame(self.segment, 0)
            self._checkpoints.append(s.read_frame(0))
            check_finite(self._checkpoints[-1], t0)
            s.check_frame(self._checkpoints[-1], t0)
            self._run_segment(k, t0, n)
            for name in self.record:
                win = s.read_window(name, n)
                check_finite({name: win}, t0)
                if out[name] is None:
                    out[name] = np.empty((self.steps + 1,) + win.shape[1:], dtype=s.dtype)
                out[name][t0:t0 + n + 1] = win
            if acts is not None:
                acts.append(s.act.to_numpy()[:n])
        if acts is not None:
            out["actions"] = np.concatenate(acts)
        return out

    # -- backward -----------------------------------------------------------------------------
    def backward(self, record_grads: dict, zero_param_grads: bool = True) -> RolloutGrads:
        """Pull the cotangents of the recorded frames back through the rollout.

        Args:
            record_grads: ``{name: [T + 1, B, N, ...]}`` dLoss/d(recorded frame) (missing
                names are zero).
            zero_param_grads: clear model (and controller) parameter gradients first; pass
                False to accumulate over several rollouts.
        """
        s = self.solver
        if not self._checkpoints:
            raise RuntimeError("backward() needs a forward() first")
        if zero_param_grads:
            s.model.zero_grads()
            if self.controller is not None:
                self.controller.zero_grads()
        carry = None
        control_grads = {n: np.zeros((self.steps,) + s.control_shape(n), dtype=s.dtype)
                         for n in s.control_names}
        segments = self._segments()
        for k in reversed(range(len(segments))):
            t0, n = segments[k]
            tape = Tape()
            if self._window_valid_for == (k, s.window_version):
                # The forward left this segment's frames in the window and nothing has
                # written to it since: record without recomputing (the full-tape case).
                self._record_segment(tape, t0, n)
            else:
                s.write_frame(0, self._checkpoints[k])
                self._run_segment(k, t0, n, tape)
            s.zero_window_grads()
            if self.controller is not None:
                self.controller.zero_window_grads()
            for name in s.state_names:
                g = record_grads.get(name)
                win = np.zeros((n + 1,) + s.frame_shape(name), dtype=s.dtype)
                if g is not None:
                    win[1:] = g[t0 + 1:t0 + n + 1]
                    if k == 0:
                        win[0] = g[0]
                if carry is not None:
                    win[n] += carry[name]
                if g is not None or carry is not None:
                    s.write_window_grad(name, win)
            if self.diagnostics is None:
                tape.backward()
            else:
                self.diagnostics.backward(tape, s, t0, n)
            # Truncation cuts here: the previous segment's last frame gets no gradient from
            # this one (segment 0's carry is the initial-state gradient and is kept).
            carry = s.read_frame_grad(0) if (k == 0 or not self.truncate) else None
            for name, g in s.read_control_grads(n).items():
                control_grads[name][t0:t0 + n] = g
        self._window_valid_for = None
        return RolloutGrads(
            initial=carry,
            controls={n: g for n, g in control_grads.items()
                      if not (n == "act" and (self.controller is not None or not s.action_count))},
            params=s.model.grads(),
            controller=self.controller.grads() if self.controller is not None else {})

    def _record_segment(self, tape: Tape, t0: int, n: int) -> None:
        s = self.solver
        for j in range(n):
            if self.controller is not None:
                tape.record(self.controller.compute_grad, s, j, j, t0 + j)
            tape.record(s.step_grad, s.state(j), s.state(j + 1), s.control(j), self.dt)
