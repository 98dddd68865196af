"""Finding where a rollout or its gradient goes wrong.

* :func:`check_finite` raises :class:`SimulationError` naming the first step and state
  quantity that became NaN or Inf in the forward pass (instead of a NaN loss at the end).
* :class:`GradientMonitor` replays a segment's adjoints one step at a time, records the
  gradient norm of every state quantity per step, raises :class:`GradientError` at the first
  step where a gradient stops being finite, and optionally clips per-step state gradients
  (a knob for long or chaotic rollouts, where gradients grow geometrically).
"""

import numpy as np


class SimulationError(RuntimeError):
    """A forward rollout produced NaN or Inf. Attributes: ``step``, ``quantity``."""

    def __init__(self, step: int, quantity: str, detail: str = ""):
        self.step, self.quantity = step, quantity
        super().__init__(f"simulation blew up at step {step}: {quantity!r} is not finite"
                         + (f" ({detail})" if detail else "")
                         + "; try a smaller dt, more substeps, or softer contact")


class GradientError(RuntimeError):
    """A backward pass produced NaN or Inf. Attributes: ``step``, ``quantity``."""

    def __init__(self, step: int, quantity: str):
        self.step, self.quantity = step, quantity
        super().__init__(f"gradient became non-finite at step {step} in {quantity!r} "
                         "(first step found walking backwards)")


def check_finite(arrays: dict, first_frame: int) -> None:
    """Raise :class:`SimulationError` at the first non-finite frame of ``{name: [F, ...]}``.

    A dict of single frames (``[B, N, ...]``, from a checkpoint) is checked as one frame.
    """
    for name, a in arrays.items():
        if np.all(np.isfinite(a)):
            continue
        bad = ~np.isfinite(a)
        frame = int(np.argmax(bad.reshape(len(a), -1).any(axis=1))) if a.ndim >= 4 else 0
        raise SimulationError(first_frame + frame, name,
                              f"{int(bad.sum())} non-finite entries")


class GradientMonitor:
    """Per-step gradient norms, NaN origin, and clipping during backward.

    Args:
        clip: if set, the state gradient of every frame is rescaled to at most this norm
            (per quantity) before it flows further back.
        raise_on_nonfinite: raise :class:`GradientError` at the first non-finite step.

    After a backward, ``norms[name]`` maps global frame index to the gradient norm of
    that state quantity at that frame.
    """

    def __init__(self, clip: float | None = None, raise_on_nonfinite: bool = True):
        self.clip = clip
        self.raise_on_nonfinite = raise_on_nonfinite
        self.norms: dict[str, dict[int, float]] = {}
        self.clipped_steps = 0

    def check_forward(self, solver, frame: int, global_frame: int) -> None:
        check_finite({k: v[None] for k, v in solver.read_frame(frame).items()}, global_frame)

    def backward(self, tape, solver, t0: int, n: int) -> None:
        """Replay ``tape`` (one segment of ``n`` steps from global step ``t0``) step by step."""
        entries = list(tape._entries)
        tape.reset()
        frame = n
        for backward, args in reversed(entries):
            if backward.__name__ == "step_grad" and frame < n:
                # Everything that reads frame `frame` (the step and the controller) is done.
                self._inspect(solver, frame, t0)
            backward(*args)
            if backward.__name__ == "step_grad":
                frame -= 1
        self._inspect(solver, frame, t0)

    def _inspect(self, solver, frame: int, t0: int) -> None:
        grads = solver.read_frame_grad(frame)
        changed = False
        for name, g in grads.items():
            norm = float(np.linalg.norm(g))
            self.norms.setdefault(name, {})[t0 + frame] = norm
            if not np.isfinite(norm) and self.raise_on_nonfinite:
                raise GradientError(t0 + frame, name)
            if self.clip is not None and norm > self.clip:
                grads[name] = g * (self.clip / norm)
                changed = True
        if changed:
            self.clipped_steps += 1
            solver.write_frame_grad(frame, grads)

    def summary(self) -> dict:
        """Largest and last-step gradient norm per quantity."""
        out = {}
        for name, per in self.norms.items():
            frames = sorted(per)
            out[name] = {"max": max(per.values()), "at_initial": per[frames[0]]}
        return out
