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
    """A forward rollout produced NaN or Inf, or a state no physical motion reaches (an
    inverted deformation gradient, a particle outside the grid). Attributes: ``step``,
    ``quantity``."""

    def __init__(self, step: int, quantity: str, detail: str = "", problem: str = "is not finite"):
        self.step, self.quantity = step, quantity
        super().__init__(f"simulation blew up at step {step}: {quantity!r} {problem}"
                         + (f" ({detail})" if detail else "")
                         + "; try a smaller dt, more substeps, or softer contact")


class GradientError(RuntimeError):
    """A backward pass produced NaN or Inf. Attributes: ``step``, ``quantity``."""

    def __init__(self, step: int, quantity: str):
        self.step, self.quantity = step, quantity
        super().__init__(f"gradient became non-finite at step {step} in {quantity!r} "
                         "(first step found walking backwards)")


def check_finite(arrays: dict, first_frame: int, stacked: bool | None = None) -> None:
    """Raise :class:`SimulationError` at the first non-finite frame of ``{name: array}``.

    Args:
        arrays: ``{name: [F, B, N, ...]}`` (stacked frames) or ``{name: [B, N, ...]}`` (one
            frame, e.g. a checkpoint).
        first_frame: global index of the first frame.
        stacked: whether the arrays have a leading frame axis. ``None`` guesses from the
            rank (4 or more: stacked), which is right for vector states but takes a stacked
            scalar state ``[F, B, N]`` for a single frame; pass it explicitly when known.
    """
    for name, a in arrays.items():
        if np.all(np.isfinite(a)):
            continue
        bad = ~np.isfinite(a)
        is_stacked = a.ndim >= 4 if stacked is None else stacked
        frame = int(np.argmax(bad.reshape(len(a), -1).any(axis=1))) if is_stacked else 0
        raise SimulationError(first_frame + frame, name,
                              f"{int(bad.sum())} non-finite entries")


class GradientMonitor:
    """Per-step gradient norms, NaN origin, and clipping during backward.

    Args:
        clip: if set, the state gradient of every frame is rescaled to at most this norm
            (per quantity, over all environments) before it flows further back.
        raise_on_nonfinite: raise :class:`GradientError` at the first non-finite step.

    After a backward, ``norms[name]`` maps every global frame ``0..T`` to the norm of
    dLoss/d(state quantity at that frame), as computed (before clipping), and
    ``clipped_norms[name]`` to the norm that flowed on (after clipping; equal when not
    clipped). ``clipped_steps`` counts the frames where clipping acted.

    Clipping changes the gradient: it is a bias traded for bounded magnitudes (Pascanu et
    al., ICML 2013), useful on long or contact-rich rollouts whose gradients grow
    geometrically with the horizon; the returned gradients are no longer exact.
    """

    def __init__(self, clip: float | None = None, raise_on_nonfinite: bool = True):
        if clip is not None and not clip > 0:
            raise ValueError(f"clip must be positive, got {clip}")
        self.clip = clip
        self.raise_on_nonfinite = raise_on_nonfinite
        self.norms: dict[str, dict[int, float]] = {}
        self.clipped_norms: dict[str, dict[int, float]] = {}
        self.clipped_steps = 0

    def reset(self) -> None:
        """Forget the recorded norms (a backward overwrites the frames it visits)."""
        self.norms, self.clipped_norms, self.clipped_steps = {}, {}, 0

    def check_forward(self, solver, frame: int, global_frame: int) -> None:
        check_finite({k: v[None] for k, v in solver.read_frame(frame).items()}, global_frame,
                     stacked=True)

    def backward(self, tape, solver, t0: int, n: int) -> None:
        """Replay ``tape`` (one segment of ``n`` steps from global step ``t0``) step by step.

        Frame ``j + 1``'s gradient is complete just before the adjoint of step ``j`` runs
        (everything that reads it, the step and any controller, is done), so it is
        inspected, and possibly clipped, there. The segment's last frame holds the loss's
        direct gradient plus what the later segment carried back, so it is inspected
        whole here; its first frame is inspected here only for the rollout's first
        segment, and otherwise as the last frame of the previous segment.
        """
        entries = list(tape._entries)
        tape.reset()
        frame = n
        for backward, args in reversed(entries):
            if backward.__name__ == "step_grad":
                self._inspect(solver, frame, t0)
            backward(*args)
            if backward.__name__ == "step_grad":
                frame -= 1
        if t0 == 0:
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
                norm = self.clip
                changed = True
            self.clipped_norms.setdefault(name, {})[t0 + frame] = norm
        if changed:
            self.clipped_steps += 1
            solver.write_frame_grad(frame, grads)

    def summary(self) -> dict:
        """Per quantity: the largest norm and the norm at the earliest frame recorded."""
        out = {}
        for name, per in self.norms.items():
            frames = sorted(per)
            out[name] = {"max": max(per.values()), "at_initial": per[frames[0]]}
        return out
