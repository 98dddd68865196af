"""Aligning measurements with the simulation: time resampling and marker-to-body maps.

**Time.** A simulation produces frames at ``t_k = k dt``; instruments sample at their own,
possibly irregular, times. Data are brought to the simulation's frames by linear
interpolation, ``y(t_k) = interp(t_data, y_data, t0 + t_k + offset)``, where ``t0`` is the
data time of simulation frame 0 and ``offset`` an optional small correction (a trigger
delay) that system identification may fit. Interpolating the *data* rather than the
simulation keeps the simulated trajectory untouched and makes the residual's derivative
with respect to the offset the data's slope, ``-dy/dt``, available in closed form.
A frame outside the recorded span, or next to a missing sample, is masked, never
extrapolated.

**Space.** Each marker is a fixed material point of the body, so its simulated position
is a fixed linear combination of particle (or vertex) positions, ``m_j = sum_i W_ji x_i``:
one-hot for the nearest particle, barycentric weights for the nearest point on a simplicial
rest shape (Ericson, *Real-Time Collision Detection*, 2005, 5.1.5, closest point on a
triangle). :class:`MarkerMap` stores ``W`` sparsely as ``indices``/``weights`` ``[M, k]``,
so the adjoint ``W^T`` is one scatter-add.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import DataError, Recording

# ----------------------------------------------------------------------------- time


@dataclass
class Resampled:
    """Data at simulation frames.

    Attributes:
        frames: simulation frame indices k, ``[F]`` (only frames with any valid sample).
        values: ``[F, M, c]`` interpolated data.
        mask: ``[F, M]`` bool: valid (inside the span, both neighbouring samples valid).
        slope: ``[F, M, c]`` d values / d (data time) [units/s] (for the time offset).
    """

    frames: np.ndarray
    values: np.ndarray
    mask: np.ndarray
    slope: np.ndarray


def resample(rec: Recording, dt: float, steps: int, t0: float | None = None,
             offset: float = 0.0, method: str = "linear") -> Resampled:
    """Interpolate a recording at simulation frames ``k = 0..steps`` (time ``t0 + k dt + offset``).

    Args:
        rec: the recording (time [s], values ``[T, M, c]``, mask ``[T, M]``).
        dt: simulation step [s]; steps: number of steps.
        t0: data time of frame 0 (default: the first sample's time).
        offset: extra time shift [s] (fitted as a trigger delay).
        method: ``linear`` or ``cubic`` (a cubic spline through the samples of each channel
            without missing samples: its error is ``O(h^4)`` in the sample spacing ``h``
            instead of ``O(h^2 a)``, which matters when the motion's acceleration ``a`` is
            large; channels with missing samples stay linear).
    """
    if method not in ("linear", "cubic"):
        raise ValueError(f"interpolation method must be linear or cubic, got {method!r}")
    t0 = float(rec.time[0]) if t0 is None else float(t0)
    tq = t0 + offset + dt * np.arange(steps + 1)
    time = rec.time
    inside = (tq >= time[0] - 1e-12 * max(1.0, abs(time[0]))) & (tq <= time[-1] + 1e-12 * max(1.0, abs(time[-1])))
    j = np.clip(np.searchsorted(time, tq, side="right") - 1, 0, len(time) - 2) if len(time) > 1 \
        else np.zeros(len(tq), int)
    if len(time) == 1:
        w = np.zeros(len(tq))
        vals = np.repeat(rec.values[:1], len(tq), 0)
        slope = np.zeros_like(vals)
        mask = np.repeat(rec.mask[:1], len(tq), 0) & (np.abs(tq - time[0]) < 1e-12)[:, None]
    else:
        span = time[j + 1] - time[j]
        w = np.clip((tq - time[j]) / span, 0.0, 1.0)
        lo, hi = rec.values[j], rec.values[j + 1]
        lo = np.where(np.isfinite(lo), lo, 0.0)
        hi = np.where(np.isfinite(hi), hi, 0.0)
        vals = lo + w[:, None, None] * (hi - lo)
        slope = (hi - lo) / span[:, None, None]
        # a query exactly on a sample only needs that sample
        need_lo = w < 1.0 - 1e-12
        need_hi = w > 1e-12
        mask = ((rec.mask[j] | ~need_lo[:, None]) & (rec.mask[j + 1] | ~need_hi[:, None])
                & inside[:, None])
    if method == "cubic" and len(time) >= 4:
        from scipy.interpolate import CubicSpline

        tc = np.clip(tq, time[0], time[-1])
        for m in np.nonzero(rec.mask.all(axis=0))[0]:
            spline = CubicSpline(time, rec.values[:, m, :], axis=0)
            vals[:, m] = spline(tc)
            slope[:, m] = spline(tc, 1)
    keep = mask.any(axis=1)
    vals = np.where(mask[..., None], vals, 0.0)
    return Resampled(np.nonzero(keep)[0], vals[keep], mask[keep], slope[keep])


def smooth(rec: Recording, sigma: float | None = None, lam: float | None = None) -> Recording:
    """The recording smoothed by a cubic smoothing spline per channel component.

    Noisy *inputs* bias an identification (errors in variables): 1 mm of marker noise on a
    gripper sampled at 100 Hz is a 0.14 m/s velocity noise that shakes the driven body.
    Driving inputs are therefore smoothed first. The spline's roughness penalty is ``lam``
    if given; else, with a known noise level ``sigma``, the largest penalty whose residual
    RMS stays at ``sigma`` (Morozov's discrepancy principle); else generalised
    cross-validation (Craven and Wahba, 1979), which needs no noise level but can
    over-smooth a short record. Channels with missing samples are left unchanged.
    """
    from scipy.interpolate import make_smoothing_spline

    t = rec.time
    vals = rec.values.copy()

    def fitted(y, penalty):
        return make_smoothing_spline(t, y, lam=penalty)(t)

    if len(t) >= 5:
        for m in np.nonzero(rec.mask.all(axis=0))[0]:
            for c in range(vals.shape[2]):
                y = rec.values[:, m, c]
                if lam is not None or sigma is None:
                    vals[:, m, c] = fitted(y, lam)
                    continue
                # residual RMS grows with lam: bisect log(lam) for RMS = sigma
                span = float(t[-1] - t[0])
                lo, hi = np.log(1e-16 * span ** 3), np.log(1e4 * span ** 3)
                for _ in range(40):
                    mid = 0.5 * (lo + hi)
                    if np.sqrt(np.mean((fitted(y, np.exp(mid)) - y) ** 2)) > sigma:
                        hi = mid
                    else:
                        lo = mid
                vals[:, m, c] = fitted(y, np.exp(lo))
    return Recording(rec.kind, rec.time, vals, list(rec.names), rec.mask.copy(), rec.source,
                     rec.trial, rec.rows)


def frames_in(rec: Recording, dt: float, t0: float | None = None) -> int:
    """Number of simulation steps the recording spans from ``t0`` (default its start)."""
    t0 = float(rec.time[0]) if t0 is None else float(t0)
    return int(np.floor((float(rec.time[-1]) - t0) / dt + 1e-9))


def finite_difference_velocity(positions: np.ndarray, dt: float) -> np.ndarray:
    """Velocities [m/s] of frames ``[F, ...]`` by central differences (one-sided at the ends)."""
    return np.gradient(positions, dt, axis=0)


# ----------------------------------------------------------------------------- space


@dataclass
class MarkerMap:
    """Markers as fixed combinations of particles: ``marker_j = sum_k weights[j, k] x[indices[j, k]]``.

    Attributes:
        names: the M marker names.
        indices: ``[M, k]`` particle/vertex indices; weights: ``[M, k]`` (rows sum to 1).
        distance: ``[M]`` distance [m] from the measured marker to the point it maps to.
    """

    names: list[str]
    indices: np.ndarray
    weights: np.ndarray
    distance: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Marker positions from particle positions ``[..., N, dim]`` -> ``[..., M, dim]``."""
        return np.einsum("mk,...mkd->...md", self.weights, x[..., self.indices, :])

    def dense(self, n: int) -> np.ndarray:
        """``W`` as a dense ``[M, n]`` matrix (marker maps are small: M markers, n particles)."""
        W = np.zeros((len(self.names), n))
        np.add.at(W, (np.repeat(np.arange(len(self.names)), self.indices.shape[1]),
                      self.indices.ravel()), self.weights.ravel())
        return W

    def adjoint(self, g: np.ndarray, n: int) -> np.ndarray:
        """``W^T g``: gradients ``[..., M, dim]`` -> ``[..., n, dim]``."""
        return np.einsum("mn,...md->...nd", self.dense(n), g)

    def subset(self, names) -> "MarkerMap":
        idx = [self.names.index(n) for n in names]
        return MarkerMap(list(names), self.indices[idx], self.weights[idx], self.distance[idx])


def _check_mapped(names, dist, max_distance, source, what):
    far = np.nonzero(dist > max_distance)[0]
    if len(far):
        j = int(far[0])
        raise DataError(source, f"marker {names[j]!r} maps to nothing: the nearest {what} is "
                        f"{dist[j]:.4g} m away (max_distance = {max_distance:g} m); check the "
                        "units, the marker's frame, or give an explicit map",
                        column=names[j])


def map_nearest_particle(reference: np.ndarray, markers: np.ndarray, names, max_distance: float,
                         source: str = "", exclusive: bool = False) -> MarkerMap:
    """Map each marker to the nearest particle of ``reference`` ``[N, dim]``.

    Args:
        markers: ``[M, dim]`` marker positions at the reference time [m].
        max_distance: a marker further than this from every particle is an error [m].
        exclusive: two markers mapping to one particle is an error (a likely mix-up).
    """
    from scipy.spatial import cKDTree

    reference = np.asarray(reference, float)
    markers = np.asarray(markers, float)
    if markers.shape[1] != reference.shape[1]:
        raise DataError(source, f"markers are {markers.shape[1]}-D but the body is {reference.shape[1]}-D")
    dist, idx = cKDTree(reference).query(markers)
    _check_mapped(list(names), dist, max_distance, source, "particle")
    if exclusive and len(set(idx.tolist())) < len(idx):
        seen = {}
        for j, i in enumerate(idx):
            if i in seen:
                raise DataError(source, f"markers {names[seen[i]]!r} and {names[j]!r} both map to "
                                f"particle {int(i)}", column=names[j])
            seen[i] = j
    return MarkerMap(list(names), idx[:, None].astype(np.int64), np.ones((len(idx), 1)), dist)


def map_explicit(indices, names, num_particles: int, source: str = "") -> MarkerMap:
    """Markers given as particle indices (``[M]``) or ``[M, k]`` with equal weights."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.ndim == 1:
        idx = idx[:, None]
    if len(idx) != len(names):
        raise DataError(source, f"the explicit map has {len(idx)} entries for {len(names)} markers")
    bad = np.nonzero((idx < 0) | (idx >= num_particles))
    if len(bad[0]):
        j = int(bad[0][0])
        raise DataError(source, f"marker {names[j]!r} maps to particle {int(idx[bad][0])}, outside "
                        f"0..{num_particles - 1}", column=names[j])
    w = np.full(idx.shape, 1.0 / idx.shape[1])
    return MarkerMap(list(names), idx, w, np.zeros(len(idx)))


def _closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Closest points of ``p`` [dim] on triangles ``a, b, c`` [F, dim]: barycentrics [F, 3]
    (Ericson 2005, 5.1.5, vectorised; the region tests pick a vertex, edge or face)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.einsum("fd,fd->f", ab, ap), np.einsum("fd,fd->f", ac, ap)
    bp = p - b
    d3, d4 = np.einsum("fd,fd->f", ab, bp), np.einsum("fd,fd->f", ac, bp)
    cp = p - c
    d5, d6 = np.einsum("fd,fd->f", ab, cp), np.einsum("fd,fd->f", ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    tiny = 1e-300
    bary = np.empty((len(a), 3))
    denom = va + vb + vc
    v_face, w_face = vb / np.where(np.abs(denom) > tiny, denom, tiny), vc / np.where(np.abs(denom) > tiny, denom, tiny)
    bary[:] = np.stack([1 - v_face - w_face, v_face, w_face], 1)
    # edges (checked in reverse priority so the vertex regions win)
    t_bc = (d4 - d3) / np.where(np.abs((d4 - d3) + (d5 - d6)) > tiny, (d4 - d3) + (d5 - d6), tiny)
    m = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
    bary[m] = np.stack([np.zeros(m.sum()), 1 - t_bc[m], t_bc[m]], 1)
    t_ac = d2 / np.where(np.abs(d2 - d6) > tiny, d2 - d6, tiny)
    m = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    bary[m] = np.stack([1 - t_ac[m], np.zeros(m.sum()), t_ac[m]], 1)
    t_ab = d1 / np.where(np.abs(d1 - d3) > tiny, d1 - d3, tiny)
    m = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    bary[m] = np.stack([1 - t_ab[m], t_ab[m], np.zeros(m.sum())], 1)
    for k, m in enumerate(((d1 <= 0) & (d2 <= 0), (d3 >= 0) & (d4 <= d3), (d6 >= 0) & (d5 <= d6))):
        e = np.zeros(3)
        e[k] = 1.0
        bary[m] = e
    q = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
    return bary, np.linalg.norm(q - p, axis=1)


def map_nearest_surface(vertices: np.ndarray, facets: np.ndarray, markers: np.ndarray, names,
                        max_distance: float, source: str = "") -> MarkerMap:
    """Map each marker to the nearest point of a surface, with barycentric weights.

    Args:
        vertices: ``[N, dim]`` rest positions [m].
        facets: ``[F, dim]`` boundary simplices (triangles in 3D, segments in 2D).
        markers: ``[M, dim]`` marker positions at the rest time [m].
    """
    X = np.asarray(vertices, float)
    facets = np.asarray(facets, np.int64)
    markers = np.asarray(markers, float)
    M, dim = markers.shape
    if facets.shape[1] == 2:  # segments: a degenerate triangle (c = b) gives the same answer
        facets = np.concatenate([facets, facets[:, 1:]], axis=1)
    idx = np.empty((M, 3), np.int64)
    w = np.empty((M, 3))
    dist = np.empty(M)
    a, b, c = X[facets[:, 0]], X[facets[:, 1]], X[facets[:, 2]]
    for j in range(M):
        bary, d = _closest_on_triangles(markers[j], a, b, c)
        f = int(np.argmin(d))
        idx[j], w[j], dist[j] = facets[f], bary[f], d[f]
    _check_mapped(list(names), dist, max_distance, source, "point of the surface")
    return MarkerMap(list(names), idx, w, dist)
