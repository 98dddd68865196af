"""Locomotion losses on recorded rollouts, with their gradients (host side, NumPy).

A training iteration records every frame of positions ``x`` and velocities ``v``
(``[T + 1, B, N, dim]``); these functions turn them into the task losses of "Complex
Locomotion Skill Learning via Differentiable Physics" (Fang et al. 2022) and into the
cotangents ``dL/dx``, ``dL/dv`` that :meth:`diffsim.autodiff.Rollout.backward` pulls back
through the simulation to the controller. All use the mass-weighted centre of mass (COM).

* **velocity**: the late part of every command phase is cut into ``windows`` windows; in
  each, the COM velocity averaged over the window is compared with the commanded velocity
  (2D: the forward ``x`` component; 3D: the ground-plane vector ``speed * (cos h, sin h)``
  for heading ``h``), squared and divided by ``velocity_scale^2``. Several windows ask for
  a steady gait rather than one lucky burst.
* **height**: mean over the late frames of ``(h_com - h_target)^2 / height_scale^2``.
* **heading** (3D): mean over the late frames of ``1 - cos(psi - h)``, ``psi`` the yaw of
  the body axis from the rear sensors' centre to the front sensors' centre.

Effort (``mean(act^2)``) is folded into the controller's adjoint
(:meth:`ControllerSineMLP.set_effort`); :func:`effort` gives its value.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LossSpec:
    """Weights and shapes of the locomotion loss.

    Attributes:
        velocity, height, heading, effort: weights of the four terms [-].
        start: fraction of each command phase after which tracking is scored [-].
        windows: velocity windows per phase.
        velocity_scale: [m/s]; height_scale: [m] (normalise the squared errors).
        front, back: particle indices whose centres define the body axis (heading loss).
    """

    velocity: float = 1.0
    height: float = 0.0
    heading: float = 0.0
    effort: float = 0.0
    start: float = 0.5
    windows: int = 4
    velocity_scale: float = 1.0
    height_scale: float = 0.1
    front: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    back: np.ndarray = field(default_factory=lambda: np.zeros(0, int))


def com_weights(masses: np.ndarray) -> np.ndarray:
    """Mass fractions ``[B, N]`` from particle masses ``[B, N]`` [kg]."""
    m = np.asarray(masses, np.float64)
    return m / m.sum(axis=1, keepdims=True)


def phases(schedule: np.ndarray) -> list[tuple[int, int]]:
    """Step ranges ``[(t0, t1), ...]`` over which the command schedule ``[T, B, C]`` is
    constant for every environment (a phase ends where any command changes)."""
    T = len(schedule)
    change = np.any(schedule[1:] != schedule[:-1], axis=tuple(range(1, schedule.ndim)))
    cuts = [0] + [int(t) + 1 for t in np.nonzero(change)[0]] + [T]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def scored_windows(t0: int, t1: int, start: float, windows: int) -> list[tuple[int, int]]:
    """``windows`` consecutive frame ranges ``[f0, f1)`` covering the late part of steps
    ``t0..t1`` (frames ``f = t + 1`` are the states after step ``t``)."""
    first = t0 + int(round(start * (t1 - t0)))
    edges = np.linspace(first, t1, max(1, windows) + 1).round().astype(int)
    return [(int(a) + 1, int(b) + 1) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def target_velocity(cmd: np.ndarray, names: list[str], dim: int) -> np.ndarray:
    """Commanded COM velocity ``[B, dim]`` from commands ``[B, C]`` (ground plane only)."""
    B = len(cmd)
    out = np.zeros((B, dim))
    speed = cmd[:, names.index("velocity")] if "velocity" in names else np.zeros(B)
    if dim == 2:
        out[:, 0] = speed
    else:
        h = cmd[:, names.index("heading")] if "heading" in names else np.zeros(B)
        out[:, 0], out[:, 1] = speed * np.cos(h), speed * np.sin(h)
    return out


def locomotion_loss(x: np.ndarray, v: np.ndarray, weights: np.ndarray, schedule: np.ndarray,
                    names: list[str], spec: LossSpec) -> tuple[dict, np.ndarray, np.ndarray, dict]:
    """Loss terms and their cotangents.

    Args:
        x, v: recorded positions [m] and velocities [m/s], ``[T + 1, B, N, dim]``.
        weights: COM mass fractions ``[B, N]``.
        schedule: commands per step ``[T, B, C]`` (raw units: m/s, m, rad).
        names: the command names, e.g. ``["velocity", "height"]``.
        spec: weights and windows.
    Returns:
        ``(terms, dL/dx, dL/dv, metrics)``: ``terms`` the weighted terms by name (without
        effort), the cotangents ``[T + 1, B, N, dim]``, and ``metrics`` with the achieved
        and commanded late-phase velocities and heights per environment.
    """
    T1, B, N, D = x.shape
    gx, gv = np.zeros_like(x, dtype=np.float64), np.zeros_like(v, dtype=np.float64)
    com_v = np.einsum("fbnd,bn->fbd", v, weights)
    com_x = np.einsum("fbnd,bn->fbd", x, weights)
    plane = 1 if D == 2 else 2
    terms = {"velocity": 0.0, "height": 0.0, "heading": 0.0}
    per_phase = phases(schedule)
    achieved_v, commanded_v, achieved_h = [], [], []
    n_v = sum(len(scored_windows(a, b, spec.start, spec.windows)) for a, b in per_phase)
    for t0, t1 in per_phase:
        cmd = schedule[t0]
        tv = target_velocity(cmd, names, D)
        for f0, f1 in scored_windows(t0, t1, spec.start, spec.windows):
            mean_v = com_v[f0:f1].mean(axis=0)                              # [B, D]
            err = (mean_v - tv)[:, :plane]
            if spec.velocity:
                c = spec.velocity / (B * n_v * spec.velocity_scale ** 2)
                terms["velocity"] += c * float(np.sum(err ** 2))
                g = 2 * c * err / (f1 - f0)                                  # [B, plane]
                gv[f0:f1, :, :, :plane] += g[None, :, None, :] * weights[None, :, :, None]
        late = scored_windows(t0, t1, spec.start, 1)[0]
        f0, f1 = late
        achieved_v.append(com_v[f0:f1].mean(axis=0))
        commanded_v.append(tv)
        achieved_h.append(com_x[f0:f1, :, D - 1].mean(axis=0))
        n_frames = (f1 - f0) * len(per_phase) * B
        if spec.height and "height" in names:
            err = com_x[f0:f1, :, D - 1] - cmd[None, :, names.index("height")]    # [F, B]
            c = spec.height / (n_frames * spec.height_scale ** 2)
            terms["height"] += c * float(np.sum(err ** 2))
            gx[f0:f1, :, :, D - 1] += (2 * c * err)[:, :, None] * weights[None]
        if spec.heading and D == 3 and len(spec.front) and len(spec.back):
            h = cmd[:, names.index("heading")] if "heading" in names else np.zeros(B)
            axis = x[f0:f1][:, :, spec.front].mean(2) - x[f0:f1][:, :, spec.back].mean(2)
            px, py = axis[..., 0], axis[..., 1]
            psi = np.arctan2(py, px)
            c = spec.heading / n_frames
            terms["heading"] += c * float(np.sum(1 - np.cos(psi - h[None])))
            dpsi = c * np.sin(psi - h[None])
            r2 = px ** 2 + py ** 2 + 1e-20
            g_axis = np.stack([-py / r2, px / r2], axis=-1) * dpsi[..., None]       # [F, B, 2]
            gx[f0:f1][:, :, spec.front, :2] += g_axis[:, :, None] / len(spec.front)
            gx[f0:f1][:, :, spec.back, :2] -= g_axis[:, :, None] / len(spec.back)
    metrics = {"achieved_velocity": np.stack(achieved_v), "commanded_velocity": np.stack(commanded_v),
               "achieved_height": np.stack(achieved_h)}
    return terms, gx, gv, metrics


def effort(actions: np.ndarray, weight: float) -> float:
    """``weight * mean(act^2)`` over actions ``[T, B, A]``."""
    return float(weight * np.mean(np.square(actions))) if weight else 0.0


def relative_speed_error(metrics: dict, dim: int) -> np.ndarray:
    """``|v_achieved - v_cmd| / |v_cmd|`` per phase and environment ``[P, B]`` (ground plane;
    NaN where the command is zero)."""
    plane = 1 if dim == 2 else 2
    a = metrics["achieved_velocity"][..., :plane]
    c = metrics["commanded_velocity"][..., :plane]
    num, den = np.linalg.norm(a - c, axis=-1), np.linalg.norm(c, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def aggregate_speed_error(metrics: dict, dim: int) -> float:
    """``sum |v_achieved - v_cmd| / sum |v_cmd|`` over phases and environments: the batch's
    relative tracking error, robust to commands near zero."""
    plane = 1 if dim == 2 else 2
    a = metrics["achieved_velocity"][..., :plane]
    c = metrics["commanded_velocity"][..., :plane]
    den = float(np.linalg.norm(c, axis=-1).sum())
    return float(np.linalg.norm(a - c, axis=-1).sum()) / den if den > 0 else float("nan")
