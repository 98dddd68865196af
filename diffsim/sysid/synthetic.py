"""Synthetic recordings made by the engine itself, for validating identification.

The only way to know that an identification method recovers the truth, and that its
error bars mean what they say, is to run it on data whose truth is known: simulate with
known parameters, add measurement noise of a known level, fit, and compare (a *parameter
recovery* study), repeated over many noise draws for the *coverage* of the stated
standard deviations. These helpers produce such data in the same containers the loaders
return (:class:`~.data.Recording`), so the whole pipeline, file formats included, is
exercised.
"""

from __future__ import annotations

import numpy as np

from ..autodiff import Rollout
from .data import Recording


def simulate(solver, dt: float, steps: int, initial: dict, record=("x",), driver=None,
             kinematic: np.ndarray | None = None, controls: dict | None = None,
             actions: np.ndarray | None = None) -> dict:
    """Forward rollout ``{name: [T + 1, B, N, ...]}`` from ``initial`` ``{name: [B, N, ...]}``.

    Args:
        driver: a :class:`~.kinematic.KinematicDriver` with ``kinematic`` positions
            ``[T + 1, B, K, dim]`` (boundary conditions).
        controls / actions: solver controls ``{name: [T, B, ...]}`` and actuation ``[T, B, A]``.
    """
    r = Rollout(solver, steps, dt, record=record, controller=driver)
    if driver is not None:
        driver.set_targets(kinematic, dt, actions)
        return r.forward(initial, controls=controls)
    return r.forward(initial, actions=actions, controls=controls)


def noisy_recording(positions: np.ndarray, dt: float, names, sigma: float, rng,
                    trial: str = "0", t0: float = 0.0, every: int = 1, jitter: float = 0.0,
                    kind: str = "markers") -> Recording:
    """A recording of ``positions`` ``[T + 1, M, c]`` with Gaussian noise of std ``sigma``.

    Args:
        every: keep every n-th frame (a slower instrument).
        jitter: random timing irregularity, a fraction of the sampling interval (the
            trajectory is re-interpolated at the jittered times with a cubic spline, whose
            error is far below any realistic noise level).
    """
    pos = np.asarray(positions, float)[::every]
    t = t0 + dt * every * np.arange(len(pos))
    if jitter > 0:
        tj = t + jitter * dt * every * rng.uniform(-0.5, 0.5, len(t))
        tj[0], tj[-1] = t[0], t[-1]
        tj = np.sort(tj)
        from scipy.interpolate import CubicSpline

        pos = CubicSpline(t, pos, axis=0)(tj)
        t = tj
    vals = pos + rng.normal(0.0, sigma, pos.shape)
    return Recording(kind, t, vals, list(names), np.ones(vals.shape[:2], bool), "<synthetic>", trial,
                     np.arange(len(t)))
