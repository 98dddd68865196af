"""Misfit functions between simulated and measured data, with their derivatives.

Every misfit is a sum of a penalty ``rho`` over *whitened residuals* ``r = (sim - data) /
sigma``, with ``sigma`` the measurement's noise scale:

* ``l2``: ``rho(r) = r^2 / 2``, the Gaussian negative log-likelihood: its minimiser is the
  maximum-likelihood estimate and its Gauss-Newton Hessian ``J^T J`` the inverse covariance
  (:mod:`.uncertainty`);
* ``huber``: quadratic for ``|r| <= delta``, linear beyond (Huber, *Ann. Math. Statist.*
  1964), so an outlier (a marker swap, a glitch of the tracker) pulls with a bounded force.
  Its iteratively-reweighted-least-squares weight ``w = min(1, delta / |r|)`` gives the
  robust Gauss-Newton covariance.

:func:`chamfer` compares a simulated point set with an unordered measured point cloud
(Fan, Su and Guibas, CVPR 2017): the mean penalty of each simulated point's distance to its
nearest measured point plus the mean of each measured point's distance to its nearest
simulated point. Nearest neighbours are held fixed when differentiating, which gives the
exact gradient almost everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOSSES = ("l2", "huber")


@dataclass(frozen=True)
class Penalty:
    """A penalty ``rho`` on whitened residuals.

    Attributes:
        kind: ``"l2"`` or ``"huber"``; delta: Huber's threshold (in units of sigma).
    """

    kind: str = "l2"
    delta: float = 1.0

    def __post_init__(self):
        if self.kind not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.kind!r}")
        if not self.delta > 0:
            raise ValueError(f"huber delta must be > 0, got {self.delta}")

    def value(self, r: np.ndarray) -> np.ndarray:
        """``rho(r)`` elementwise."""
        if self.kind == "l2":
            return 0.5 * r * r
        a = np.abs(r)
        return np.where(a <= self.delta, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))

    def derivative(self, r: np.ndarray) -> np.ndarray:
        """``rho'(r)`` elementwise."""
        if self.kind == "l2":
            return r
        return np.clip(r, -self.delta, self.delta)

    def weight(self, r: np.ndarray) -> np.ndarray:
        """IRLS weight ``rho'(r) / r`` (1 for l2): the Gauss-Newton Hessian is ``J^T diag(w) J``."""
        if self.kind == "l2":
            return np.ones_like(r)
        a = np.abs(r)
        return np.where(a <= self.delta, 1.0, self.delta / np.maximum(a, 1e-300))


def huber(r, delta: float = 1.0) -> np.ndarray:
    """Huber penalty of ``r`` (convenience for :class:`Penalty`)."""
    return Penalty("huber", delta).value(np.asarray(r, float))


@dataclass
class ChamferResult:
    """Chamfer misfit of one frame.

    Attributes:
        value: ``mean_i rho(|p_i - q_nn(i)| / s) + mean_j rho(|q_j - p_nn(j)| / s)``.
        grad: ``[P, dim]`` d value / d simulated points.
        residuals: ``[P + Q, dim]`` whitened difference vectors (simulated minus measured),
            each row scaled by ``sqrt(1 / P)`` or ``sqrt(1 / Q)`` so that ``0.5 |residuals|^2``
            equals ``value`` for l2.
        weights: ``[P + Q]`` IRLS weights of the rows (1 for l2).
        distance: mean Euclidean distance of both directions [m] (an error measure).
    """

    value: float
    grad: np.ndarray
    residuals: np.ndarray
    weights: np.ndarray
    distance: float


def chamfer(pred: np.ndarray, cloud: np.ndarray, sigma: float = 1.0,
            penalty: Penalty = Penalty()) -> ChamferResult:
    """Symmetric Chamfer misfit between simulated points ``pred`` ``[P, dim]`` and a measured
    cloud ``[Q, dim]`` (both [m]); ``sigma`` whitens distances.
    """
    from scipy.spatial import cKDTree

    pred, cloud = np.asarray(pred, float), np.asarray(cloud, float)
    P, Q = len(pred), len(cloud)
    _, nn_q = cKDTree(cloud).query(pred)   # nearest measured point of each simulated point
    _, nn_p = cKDTree(pred).query(cloud)   # nearest simulated point of each measured point
    e1 = (pred - cloud[nn_q]) / sigma      # [P, dim]
    e2 = (pred[nn_p] - cloud) / sigma      # [Q, dim]
    d1, d2 = np.linalg.norm(e1, axis=1), np.linalg.norm(e2, axis=1)
    value = float(np.mean(penalty.value(d1)) + np.mean(penalty.value(d2)))
    # d rho(|e|) / d e = rho'(|e|) e / |e|  (= e for l2, also at e = 0)
    s1 = penalty.weight(d1)[:, None] * e1 / P
    s2 = penalty.weight(d2)[:, None] * e2 / Q
    grad = s1 / sigma
    np.add.at(grad, nn_p, s2 / sigma)
    res = np.concatenate([e1 / np.sqrt(P), e2 / np.sqrt(Q)])
    dist = float(np.mean(d1) + np.mean(d2)) * sigma / 2.0
    weights = np.concatenate([penalty.weight(d1), penalty.weight(d2)])
    return ChamferResult(value, grad, res, weights, dist)
