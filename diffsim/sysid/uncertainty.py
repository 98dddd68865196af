"""Uncertainty at the optimum: the Gauss-Newton covariance and identifiability checks.

Near a least-squares optimum with whitened residuals ``r(p)`` (unit-variance noise), the
log-likelihood is approximately quadratic with Hessian ``J^T J``, ``J = dr/dp``, so the
estimate's covariance is ``C = (J^T J)^-1`` (the Cramer-Rao bound of the linearised model;
Bard, *Nonlinear Parameter Estimation*, 1974, ch. 7; Seber and Wild, *Nonlinear
Regression*, 1989, 2.1). This module:

* builds ``J`` by central finite differences in the unit coordinates ``z`` (two residual
  evaluations per parameter: for a handful of parameters this is cheaper than one adjoint
  per residual, and every environment's group is perturbed at once);
* whitens each loss term by its *estimated* noise level,
  ``s_t^2 = sum r_t^2 / (n_t (1 - p / n))``, so that markers in metres and forces in
  newtons combine as a likelihood, whatever weights the loss used;
* for the Huber loss uses the IRLS weights ``W`` at the optimum, ``C = (J^T W J)^-1``;
* maps ``C`` to physical units with the scaling's Jacobian (delta method) and reports
  standard deviations, correlations and the singular values of ``J``.

A parameter is flagged *not identifiable* when ``J`` has a (relatively) tiny singular
value along it, *poorly identified* when its relative standard deviation exceeds 50 %,
*strongly correlated* when ``|corr| > 0.99``, and *at a bound* (where the linearisation
does not hold) when the optimum lies within 1e-6 of the box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Uncertainty:
    """Gauss-Newton uncertainty of each group's estimate.

    Attributes:
        labels: parameter labels ``[p]``. values, std, rel_std: ``[G, p]``.
        cov: ``[G, p, p]`` covariance in physical units; corr: ``[G, p, p]``.
        singular_values: ``[G, p]`` of the whitened Jacobian in unit coordinates.
        identifiable: ``[G, p]`` bool. noise: ``{term: [G] estimated noise level}`` in the
            term's units. residual_count: ``[G]``. warnings: human-readable findings.
        cluster_std / cluster_cov: the cluster-robust alternative (``cluster=`` given).
    """

    labels: list
    values: np.ndarray
    std: np.ndarray
    rel_std: np.ndarray
    cov: np.ndarray
    corr: np.ndarray
    singular_values: np.ndarray
    identifiable: np.ndarray
    noise: dict
    residual_count: np.ndarray
    warnings: list = field(default_factory=list)
    cluster_std: np.ndarray | None = None
    cluster_cov: np.ndarray | None = None

    def interval(self, level_sigma: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
        """Symmetric confidence bounds ``values -/+ level_sigma * std``."""
        return self.values - level_sigma * self.std, self.values + level_sigma * self.std


def residual_jacobian(problem, z: np.ndarray, step: float = 1e-4, scheme: str = "central",
                      experiments=None):
    """Whitened residuals and their Jacobian in unit coordinates, per group.

    Every group's parameter ``j`` is perturbed at once (groups are independent), so the
    cost is ``2 p`` (central) or ``p`` (forward) batched rollouts plus the base point.

    Returns:
        ``(r, w, J, loss)`` with ``r[g]`` ``[n_g]``, ``w[g]`` the IRLS weights, ``J[g]``
        ``[n_g, p]`` and the problem's loss at ``z``; ``problem.residual_vectors`` gives
        the term slices.
    """
    if scheme not in ("central", "forward"):
        raise ValueError(f"scheme must be central or forward, got {scheme!r}")
    z = np.asarray(z, float).reshape(problem.groups, len(problem.params))
    G, p = z.shape
    r0, w0, _, loss = problem.residual_vectors(z, experiments)
    J = [np.zeros((r0[g].size, p)) for g in range(G)]
    for j in range(p):
        if scheme == "central":
            up, dn = np.minimum(z[:, j] + step, 1.0), np.maximum(z[:, j] - step, 0.0)
        else:  # one-sided, backwards where a step forward would leave the box
            fwd = z[:, j] + step <= 1.0
            up, dn = np.where(fwd, z[:, j] + step, z[:, j]), np.where(fwd, z[:, j], z[:, j] - step)
        hi, lo = z.copy(), z.copy()
        hi[:, j], lo[:, j] = up, dn
        r_hi = problem.residual_vectors(hi, experiments)[0]
        if scheme == "central":
            r_lo = problem.residual_vectors(lo, experiments)[0]
        else:
            r_lo = [np.where(fwd[g], r0[g], 0.0) for g in range(G)]
            if not fwd.all():
                r_back = problem.residual_vectors(lo, experiments)[0]
                r_hi = [r_hi[g] if fwd[g] else r0[g] for g in range(G)]
                r_lo = [r0[g] if fwd[g] else r_back[g] for g in range(G)]
        for g in range(G):
            if r_hi[g].shape != r0[g].shape or r_lo[g].shape != r0[g].shape:
                raise RuntimeError(f"the number of residuals changed under a perturbation of "
                                   f"{problem.labels[j]} (a time offset moved a sample across the "
                                   "recorded span); shorten the simulated span")
            J[g][:, j] = (r_hi[g] - r_lo[g]) / (up[g] - dn[g])
    return r0, w0, J, loss


def gauss_newton(problem, z: np.ndarray, step: float = 1e-4, experiments=None,
                 sigma: dict | None = None, cluster=None) -> Uncertainty:
    """Gauss-Newton covariance of ``problem``'s estimate at unit coordinates ``z`` ``[G, p]``.

    Args:
        step: finite-difference step in unit coordinates (one-sided at a bound).
        experiments: the experiments the estimate was fitted to (default: all).
        sigma: known noise level per term name, in units of the term's own sigma (1.0: the
            term's sigma is the true noise); terms not listed get the estimate from their
            residuals.
        cluster: also compute the cluster-robust ("sandwich") covariance
            ``H^-1 (sum_c J_c^T r_c r_c^T J_c) H^-1`` (Liang and Zeger, Biometrika 1986),
            valid when residuals are correlated *within* clusters (model error along a
            trajectory) but independent between them: ``"experiment"``, or a function
            ``experiment -> key`` (e.g. the trial a window came from). Stored in
            ``cluster_std`` / ``cluster_cov``.
    """
    z = np.asarray(z, float).reshape(problem.groups, len(problem.params))
    G, p = z.shape
    r0, w0, J0, _ = residual_jacobian(problem, z, step, "central", experiments)
    _, _, slices, _, src = problem.residual_vectors(z, experiments, sources=True)
    exps = problem.experiments if experiments is None else list(experiments)
    values = problem.values(z)
    std = np.zeros((G, p))
    cov = np.zeros((G, p, p))
    ccov = np.zeros((G, p, p)) if cluster is not None else None
    svals = np.zeros((G, p))
    noise: dict = {}
    counts = np.zeros(G, int)
    warnings: list = []
    for g in range(G):
        n_total = r0[g].size
        counts[g] = n_total
        rows = []
        for t, sl in slices[g].items():
            r, w = r0[g][sl], w0[g][sl]
            if sigma and t in sigma:
                s = float(sigma[t])
            else:
                dof = max(r.size * (1.0 - p / max(n_total, p + 1)), 1.0)
                s = float(np.sqrt(np.sum(w * r * r) / dof)) or 1.0
            noise.setdefault(t, np.zeros(G))[g] = s * _term_sigma(problem, t)
            rows.append((J0[g][sl] / s * np.sqrt(w)[:, None], r / s * np.sqrt(w), src[g][sl]))
        J = np.concatenate([a for a, _, _ in rows]) if rows else np.zeros((0, p))
        svals[g] = np.linalg.svd(J, compute_uv=False) if J.size else np.zeros(p)
        cov_z = np.linalg.pinv(J.T @ J, rcond=1e-12, hermitian=True)
        D = np.array([s.dvalue_dunit(z[g, j]) for j, s in enumerate(problem.params)])
        cov[g] = D[:, None] * cov_z * D[None, :]
        std[g] = np.sqrt(np.maximum(np.diag(cov[g]), 0.0))
        if cluster is not None:
            rw = np.concatenate([b for _, b, _ in rows])
            keyf = (lambda e: e.name) if cluster == "experiment" else cluster
            keys = np.array([str(keyf(exps[k])) for k in np.concatenate([c for _, _, c in rows])])
            score = J * rw[:, None]                        # per-residual score contributions
            meat = np.zeros((p, p))
            n_clusters = len(np.unique(keys))
            if n_clusters < 10:
                warnings.append(f"{'' if G == 1 else f'group {g}: '}the cluster-robust std rests on "
                                f"only {n_clusters} clusters and is itself very uncertain")
            for key in np.unique(keys):
                sc = score[keys == key].sum(axis=0)
                meat += np.outer(sc, sc)
            ccov[g] = D[:, None] * (cov_z @ meat @ cov_z) * D[None, :]
    rel = std / np.maximum(np.abs(values), 1e-300)
    corr = cov / np.maximum(std[:, :, None] * std[:, None, :], 1e-300)
    ident = np.ones((G, p), bool)
    for g in range(G):
        who = "" if G == 1 else f"group {g}: "
        smax = svals[g].max() if svals[g].size else 0.0
        colnorm = np.linalg.norm(J0[g], axis=0) if J0[g].size else np.zeros(p)
        for j, lab in enumerate(problem.labels):
            zg = z[g, j]
            if colnorm[j] <= 1e-12 * max(colnorm.max(), 1e-300) or smax == 0:
                ident[g, j] = False
                warnings.append(f"{who}{lab} is not identifiable: the residuals do not depend on it")
            elif rel[g, j] > 0.5:
                ident[g, j] = False
                warnings.append(f"{who}{lab} is poorly identified: relative std "
                                f"{100 * rel[g, j]:.0f}% (the data barely constrain it)")
            if zg <= 1e-6 or zg >= 1 - 1e-6:
                warnings.append(f"{who}{lab} is at its bound ({values[g, j]:.6g}); the Gauss-Newton "
                                "covariance assumes an interior optimum: widen the bounds")
            for k in range(j + 1, p):
                if abs(corr[g, j, k]) > 0.99:
                    warnings.append(f"{who}{lab} and {problem.labels[k]} are strongly correlated "
                                    f"(corr {corr[g, j, k]:+.3f}): only a combination is identified")
        if smax > 0 and svals[g].min() < 1e-8 * smax:
            warnings.append(f"{who}the Jacobian is rank deficient (singular values "
                            f"{', '.join(f'{s:.2e}' for s in svals[g])})")
    unc = Uncertainty(problem.labels, values, std, rel, cov, corr, svals, ident, noise, counts,
                      warnings)
    if ccov is not None:
        unc.cluster_cov = ccov
        unc.cluster_std = np.sqrt(np.maximum(np.diagonal(ccov, axis1=1, axis2=2), 0.0))
        ratio = unc.cluster_std / np.maximum(std, 1e-300)
        for g in range(G):
            for j, lab in enumerate(problem.labels):
                if ratio[g, j] > 3:
                    unc.warnings.append(
                        f"{'' if G == 1 else f'group {g}: '}{lab}: the cluster-robust std is "
                        f"{ratio[g, j]:.0f}x the Gauss-Newton std: residuals are correlated "
                        "(model error); trust the cluster-robust value")
    return unc


def _term_sigma(problem, term_name: str) -> float:
    for e in problem.experiments:
        for t in e.terms:
            if getattr(t, "name", None) == term_name:
                return float(getattr(t, "sigma", 1.0))
    return 1.0
