"""Loss terms of one experiment: what is compared, at which frames, with which misfit.

A term turns one experiment's simulated trajectory ``{name: [T + 1, N, ...]}`` into a loss
(normalised by its number of residual scalars and multiplied by its weight, so terms of
different sizes and units combine sensibly), the whitened residual vector for the
Gauss-Newton covariance, the cotangent of the trajectory for the adjoint, and a per-frame
error in physical units for the report:

* :class:`MarkerTerm`: marker positions through a :class:`~.align.MarkerMap`, data
  resampled at the simulation's frames (with an optional fitted time offset);
* :class:`PointCloudTerm`: a set of surface particles against a measured point cloud per
  frame (:func:`~.losses.chamfer`), the simulation interpolated linearly at the cloud times;
* :class:`ForceTerm`: a force observable (e.g. :class:`SpringReactionForce`, the load a
  gripper measures) against measured forces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .align import MarkerMap, resample
from .data import PointCloudRecording, Recording
from .losses import Penalty, chamfer


@dataclass
class TermEval:
    """A term evaluated on one experiment.

    Attributes:
        loss: ``weight * sum(rho(r)) / count``.
        count: number of residual scalars.
        residuals: whitened residuals ``[count]``; irls: their IRLS weights.
        traj_grads: ``{name: [T + 1, N, ...]}`` d loss / d trajectory.
        param_grads: ``{model parameter: per-environment array}`` d loss / d parameter (terms
            whose prediction reads parameters directly, e.g. spring forces).
        offset_grad: d loss / d time offset [1/s].
        frame_times: ``[F]`` simulation times [s] of the compared frames.
        frame_error: ``[F]`` RMS error per frame in physical units (m or N).
        rmse: RMS error over every residual in physical units.
        predicted / measured: ``[F, M, c]`` for plots (markers and forces).
    """

    loss: float
    count: int
    residuals: np.ndarray
    irls: np.ndarray
    traj_grads: dict
    param_grads: dict
    offset_grad: float
    frame_times: np.ndarray
    frame_error: np.ndarray
    rmse: float
    predicted: np.ndarray | None = None
    measured: np.ndarray | None = None
    mask: np.ndarray | None = None


class _ChannelTerm:
    """Shared logic of marker and force terms: resampled channels vs a prediction."""

    kind = "channels"
    needs_params = False

    def __init__(self, recording: Recording, dt: float, steps: int, t0: float | None = None,
                 sigma: float = 1.0, penalty: Penalty | None = None, weight: float = 1.0,
                 name: str | None = None, first_frame: int = 0, interpolation: str = "linear"):
        self.first_frame, self.interpolation = int(first_frame), interpolation
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.recording, self.dt, self.steps = recording, float(dt), int(steps)
        self.t0 = float(recording.time[0]) if t0 is None else float(t0)
        self.sigma, self.penalty, self.weight = float(sigma), penalty or Penalty(), float(weight)
        self.name = name or self.kind
        self._cache = (None, None)
        self.measured_frames(0.0)  # fail early if nothing overlaps

    def measured_frames(self, offset: float):
        if self._cache[0] != offset:
            r = resample(self.recording, self.dt, self.steps, self.t0, offset, self.interpolation)
            if self.first_frame > 0:  # a held-out tail: compare only from this frame on
                keep = r.frames >= self.first_frame
                r = type(r)(r.frames[keep], r.values[keep], r.mask[keep], r.slope[keep])
            if len(r.frames) == 0:
                raise ValueError(f"{self.name}: no sample of trial {self.recording.trial!r} "
                                 f"({self.recording.source}) falls within the simulated span")
            self._cache = (offset, r)
        return self._cache[1]

    def _predict(self, traj, params, frames):
        raise NotImplementedError  # abstract

    def _pullback(self, traj, params, frames, g):
        raise NotImplementedError  # abstract

    def evaluate(self, traj: dict, params: dict | None = None, offset: float = 0.0,
                 grad: bool = True) -> TermEval:
        r = self.measured_frames(offset)
        pred = self._predict(traj, params, r.frames)            # [F, M, c]
        mask = r.mask[..., None] & np.ones(pred.shape[-1], bool)
        err = np.where(mask, pred - r.values, 0.0)
        res = err / self.sigma
        count = int(mask.sum())
        scale = self.weight / max(count, 1)
        loss = scale * float(np.sum(self.penalty.value(res)[mask]))
        per_frame = np.sqrt(np.sum(err ** 2, axis=(1, 2)) / np.maximum(r.mask.sum(axis=1), 1))
        out = TermEval(loss, count, res[mask], self.penalty.weight(res[mask]), {}, {}, 0.0,
                       r.frames * self.dt, per_frame, float(np.sqrt(np.sum(err ** 2) / max(count, 1))),
                       pred, r.values, r.mask)
        if grad:
            g = np.where(mask, scale * self.penalty.derivative(res) / self.sigma, 0.0)
            out.traj_grads, out.param_grads = self._pullback(traj, params, r.frames, g)
            # measured(t + offset): d residual / d offset = -slope / sigma
            out.offset_grad = -float(np.sum(g * np.where(mask, r.slope, 0.0)))
        return out


class MarkerTerm(_ChannelTerm):
    """Marker positions: ``W x[k]`` against the recording resampled at frames ``k``.

    Args:
        recording: marker recording (channels = markers, c = dim), in metres.
        marker_map: :class:`~.align.MarkerMap` for the recording's channels, in order.
        dt, steps: the simulation's step [s] and length; t0: data time of frame 0.
        sigma: noise scale [m] that whitens residuals; penalty: l2 or huber; weight: factor.
    """

    kind = "markers"

    def __init__(self, recording: Recording, marker_map: MarkerMap, dt: float, steps: int,
                 t0: float | None = None, sigma: float = 1.0, penalty: Penalty | None = None,
                 weight: float = 1.0, name: str | None = None, first_frame: int = 0,
                 interpolation: str = "linear", state: str = "x"):
        if list(marker_map.names) != list(recording.names):
            marker_map = marker_map.subset(recording.names)
        self.map, self.state = marker_map, state
        super().__init__(recording, dt, steps, t0, sigma, penalty, weight, name, first_frame,
                         interpolation)

    def _predict(self, traj, params, frames):
        return self.map.apply(traj[self.state][frames])

    def _pullback(self, traj, params, frames, g):
        x = traj[self.state]
        gx = np.zeros_like(x)
        gx[frames] = self.map.adjoint(g, x.shape[1])
        return {self.state: gx}, {}


class SpringReactionForce:
    """Force [N] that a mass-spring body exerts on a set of held particles (what a load cell
    in the gripper reads): ``sum`` over springs from a held particle ``h`` to a free one
    ``o`` of ``(k (l - L) + c (v_o - v_h) . d) d``, ``d = (x_o - x_h) / l`` (the solver's
    spring law; unactuated springs). Output ``[F, 1, dim]``; springs between two held
    particles cancel and are left out.
    """

    needs_params = True

    def __init__(self, model, held):
        held = set(int(i) for i in np.atleast_1d(held))
        springs = np.asarray(model.topology["spring_indices"])[: model.counts["spring"]]
        rows, h, o = [], [], []
        for s, (a, b) in enumerate(springs):
            if (a in held) != (b in held):
                rows.append(s)
                h.append(a if a in held else b)
                o.append(b if a in held else a)
        if not rows:
            raise ValueError("no spring connects the held particles to the rest of the body")
        self.springs, self.held, self.other = np.array(rows), np.array(h), np.array(o)

    def _geometry(self, traj, params, frames):
        x, v = traj["x"][frames], traj["v"][frames]
        u = x[:, self.other] - x[:, self.held]                    # [F, S, d]
        length = np.sqrt(np.sum(u * u, axis=-1) + 1e-20)
        d = u / length[..., None]
        vr = v[:, self.other] - v[:, self.held]
        k = params["spring_stiffness"][self.springs]
        c = params["spring_damping"][self.springs]
        rest = params["spring_rest_length"][self.springs]
        vd = np.sum(vr * d, axis=-1)
        fs = k * (length - rest) + c * vd
        return u, length, d, vr, vd, k, c, rest, fs

    def predict(self, traj, params, frames):
        _, _, d, _, _, _, _, _, fs = self._geometry(traj, params, frames)
        return np.sum(fs[..., None] * d, axis=1, keepdims=True)

    def vjp(self, traj, params, frames, g):
        u, length, d, vr, vd, k, c, rest, fs = self._geometry(traj, params, frames)
        gf = np.broadcast_to(g, d.shape)                        # same g for every spring
        gd_ = np.sum(gf * d, axis=-1)                           # g . d
        def proj(w):  # (I - d d^T) w: the derivative of the unit direction
            return w - np.sum(w * d, axis=-1, keepdims=True) * d

        gu = gd_[..., None] * (k[..., None] * d + c[..., None] * proj(vr) / length[..., None]) \
            + fs[..., None] * proj(gf) / length[..., None]
        gvr = (gd_ * c)[..., None] * d
        gx, gv = np.zeros_like(traj["x"]), np.zeros_like(traj["v"])
        for s in range(len(self.springs)):
            gx[frames, self.other[s]] += gu[:, s]
            gx[frames, self.held[s]] -= gu[:, s]
            gv[frames, self.other[s]] += gvr[:, s]
            gv[frames, self.held[s]] -= gvr[:, s]
        pg = {}
        for name, val in (("spring_stiffness", gd_ * (length - rest)), ("spring_damping", gd_ * vd),
                          ("spring_rest_length", -gd_ * k)):
            arr = np.zeros_like(params[name])
            np.add.at(arr, self.springs, val.sum(axis=0))
            pg[name] = arr
        return {"x": gx, "v": gv}, pg


class ForceTerm(_ChannelTerm):
    """Measured forces against an observable (``predict(traj, params, frames) -> [F, K, c]``
    and ``vjp(traj, params, frames, g) -> (traj grads, param grads)``)."""

    kind = "forces"

    def __init__(self, recording: Recording, observable, dt: float, steps: int,
                 t0: float | None = None, sigma: float = 1.0, penalty: Penalty | None = None,
                 weight: float = 1.0, name: str | None = None, first_frame: int = 0,
                 interpolation: str = "linear"):
        self.observable = observable
        self.needs_params = getattr(observable, "needs_params", True)
        super().__init__(recording, dt, steps, t0, sigma, penalty, weight, name, first_frame,
                         interpolation)

    def _predict(self, traj, params, frames):
        pred = self.observable.predict(traj, params, frames)
        if pred.shape[1:] != self.recording.values.shape[1:]:
            raise ValueError(f"{self.name}: the observable gives {pred.shape[1:]} per frame, the "
                             f"recording has {self.recording.values.shape[1:]}")
        return pred

    def _pullback(self, traj, params, frames, g):
        return self.observable.vjp(traj, params, frames, g)


@dataclass
class PointCloudTerm:
    """Chamfer misfit of ``particles`` (e.g. the surface) against a measured point cloud.

    The simulated points at a cloud's time ``tau = time - t0 - offset`` are interpolated
    linearly between frames ``floor(tau / dt)`` and the next.
    """

    recording: PointCloudRecording
    particles: np.ndarray
    dt: float
    steps: int
    t0: float | None = None
    sigma: float = 1.0
    penalty: Penalty = field(default_factory=Penalty)
    weight: float = 1.0
    name: str = "point_cloud"
    kind = "point_cloud"
    needs_params = False

    def __post_init__(self):
        self.particles = np.asarray(self.particles, np.int64)
        if self.t0 is None:
            self.t0 = float(self.recording.time[0])

    def evaluate(self, traj: dict, params: dict | None = None, offset: float = 0.0,
                 grad: bool = True) -> TermEval:
        x = traj["x"]
        tau = (self.recording.time - self.t0 - offset) / self.dt
        use = np.nonzero((tau >= -1e-9) & (tau <= self.steps + 1e-9))[0]
        if len(use) == 0:
            raise ValueError(f"{self.name}: no cloud of trial {self.recording.trial!r} falls "
                             "within the simulated span")
        gx = np.zeros_like(x) if grad else None
        total, count, res, irls, errs, goff = 0.0, 0, [], [], [], 0.0
        evals = []
        for f in use:
            k = int(min(np.floor(tau[f] + 1e-9), self.steps - 1))
            a = float(np.clip(tau[f] - k, 0.0, 1.0))
            pts = (1 - a) * x[k, self.particles] + a * x[k + 1, self.particles]
            c = chamfer(pts, self.recording.frame(f), self.sigma, self.penalty)
            evals.append((k, a, c))
            count += c.residuals.size
        scale = self.weight / max(len(use), 1)
        for k, a, c in evals:
            total += scale * c.value
            res.append(c.residuals.ravel())
            irls.append(np.repeat(c.weights, c.residuals.shape[1]))
            errs.append(c.distance)
            if grad:
                g = scale * c.grad
                np.add.at(gx[k], self.particles, (1 - a) * g)
                np.add.at(gx[k + 1], self.particles, a * g)
                # d pts / d offset = -(x[k+1] - x[k]) / dt
                vel = (x[k + 1, self.particles] - x[k, self.particles]) / self.dt
                goff -= float(np.sum(g * vel))
        res = np.concatenate(res)
        errs = np.asarray(errs)
        return TermEval(total, count, res, np.concatenate(irls),
                        {"x": gx} if grad else {}, {}, goff, tau[use] * self.dt, errs,
                        float(np.sqrt(np.mean(errs ** 2))))
