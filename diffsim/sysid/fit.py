"""Fitting: minimise a :class:`~.problem.SysIDProblem`'s loss over its free parameters.

Two optimisers, both on the unit coordinates ``z`` in [0, 1]:

* ``lbfgsb``: SciPy's L-BFGS-B (Byrd, Lu, Nocedal and Zhu, SIAM J. Sci. Comput. 1995) with
  the box [0, 1] as bounds: a quasi-Newton method that needs no step size and converges
  in tens of iterations on the smooth, low-dimensional losses of system identification;
* ``adam``: Adam (Kingma and Ba, ICLR 2015) with projection onto the box: robust to noisy
  gradients (contact, long rollouts), needs a step size ``lr`` (in unit coordinates);
* ``lm``: Levenberg-Marquardt (Marquardt, J. SIAM 1963) on the whitened residuals, with a
  forward-difference Jacobian (``p + 1`` forward rollouts, no adjoint) and steps clipped
  to the box. For a handful of parameters it converges in a few iterations, and with
  ``shared=False`` every environment's fit takes its own damping and acceptance, so B
  independent fits progress together (population studies, coverage checks).

The loss is divided by its value at the start point, so that the optimisers' tolerances
mean the same thing whatever the data's units (a marker loss in m^2 is ~1e-6).

Long fits write an atomic checkpoint (``checkpoint=path``, JSON: ``z``, the loss history,
Adam's moments) after every iteration; ``resume=True`` continues from it. Adam resumes
exactly; L-BFGS-B restarts from the saved point with an empty curvature memory (SciPy does
not expose it), which costs a few iterations, not the fit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.atomic import save_json_atomic

METHODS = ("lbfgsb", "adam", "lm")


@dataclass
class FitResult:
    """Outcome of :func:`fit`.

    Attributes:
        z: ``[G, p]`` unit coordinates at the optimum; values: ``[G, p]`` physical values.
        labels: parameter labels; loss: final loss (not normalised).
        history: loss after each iteration (not normalised); evaluations: loss evaluations.
        iterations, seconds, converged, message: as the names say.
        z_history: ``[iterations + 1, G, p]`` the path (for plots).
    """

    z: np.ndarray
    values: np.ndarray
    labels: list
    loss: float
    history: list = field(default_factory=list)
    z_history: list = field(default_factory=list)
    evaluations: int = 0
    iterations: int = 0
    seconds: float = 0.0
    converged: bool = False
    message: str = ""


class _Objective:
    """Normalised loss with evaluation counting and a cache of the last point."""

    def __init__(self, problem, scale: float | None):
        self.problem, self.scale, self.evals = problem, scale, 0
        self._last = (None, None, None)

    def __call__(self, zflat: np.ndarray):
        if self._last[0] is not None and np.array_equal(zflat, self._last[0]):
            return self._last[1], self._last[2]
        z = zflat.reshape(self.problem.groups, len(self.problem.params))
        loss, grad = self.problem.loss_and_grad(z)
        self.evals += 1
        if self.scale is None:
            self.scale = loss if loss > 0 and np.isfinite(loss) else 1.0
        if not np.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss} at {self.problem.value_dict(z)}")
        out = (loss / self.scale, grad.ravel() / self.scale)
        self._last = (zflat.copy(), *out)
        return out


def _load_checkpoint(path: Path, shape) -> dict | None:
    if path is None or not path.exists():
        return None
    state = json.loads(path.read_text(encoding="utf-8"))
    z = np.asarray(state["z"], float)
    if z.shape != tuple(shape):
        raise ValueError(f"checkpoint {path} holds parameters of shape {z.shape}, the problem "
                         f"has {tuple(shape)}; delete it or use another --out")
    return state


def fit(problem, method: str = "lbfgsb", z0: np.ndarray | None = None, max_iter: int = 50,
        lr: float = 0.05, tol: float = 1e-9, checkpoint=None, resume: bool = False,
        progress: bool = True, callback=None) -> FitResult:
    """Minimise ``problem``'s loss.

    Args:
        problem: a :class:`~.problem.SysIDProblem`.
        method: ``lbfgsb`` or ``adam``.
        z0: start ``[G, p]`` in unit coordinates (default: :meth:`initial_unit`).
        max_iter: iterations (L-BFGS-B: outer iterations; Adam: steps).
        lr: Adam's step in unit coordinates.
        tol: L-BFGS-B's relative loss tolerance (``ftol``); Adam stops when the loss has
            not improved by ``tol`` (relative) for 20 steps.
        checkpoint: JSON file written atomically after every iteration.
        resume: start from ``checkpoint`` if it exists.
        progress: tqdm bar (loss and parameter values in the postfix).
        callback: ``f(iteration, z, loss)`` after every iteration.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    shape = (problem.groups, len(problem.params))
    z = np.clip(np.asarray(problem.initial_unit() if z0 is None else z0, float).reshape(shape), 0, 1)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    state = _load_checkpoint(ckpt, shape) if resume else None
    history, z_hist, it0, adam = [], [], 0, None
    scale = None
    if state is not None:
        z = np.asarray(state["z"], float)
        history, z_hist = list(state["history"]), [np.asarray(v) for v in state["z_history"]]
        it0, adam, scale = int(state["iteration"]), state.get("adam"), state.get("scale")
    obj = _Objective(problem, scale)
    t_start = time.time()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, initial=min(it0, max_iter), desc=f"sysid {method}", unit="it",
                   leave=False)
    it = [it0]

    def record(zflat, loss_norm, extra=None):
        it[0] += 1
        zz = zflat.reshape(shape)
        history.append(float(loss_norm * obj.scale))
        z_hist.append(zz.copy())
        if bar is not None:
            vals = problem.values(zz)
            post = {"loss": f"{history[-1]:.4g}"}
            if problem.shared:
                post.update({lab[:14]: f"{vals[0, j]:.4g}" for j, lab in enumerate(problem.labels)})
            bar.set_postfix(post, refresh=False)
            bar.update(1)
        if ckpt is not None:
            save_json_atomic(ckpt, {"method": method, "iteration": it[0], "z": zz, "scale": obj.scale,
                                    "history": history, "z_history": [np.asarray(v) for v in z_hist],
                                    "adam": extra, "labels": problem.labels})
        if callback is not None:
            callback(it[0], zz, history[-1])

    try:
        if not z_hist:
            loss0, _ = obj(z.ravel())
            z_hist.append(z.copy())
            history.append(float(loss0 * obj.scale))
        remaining = max(0, max_iter - (it[0]))
        converged, message = False, "iteration limit"
        if method == "lbfgsb" and remaining > 0:
            from scipy.optimize import minimize

            res = minimize(obj, z.ravel(), jac=True, method="L-BFGS-B",
                           bounds=[(0.0, 1.0)] * z.size,
                           options={"maxiter": remaining, "ftol": tol, "gtol": 1e-12, "maxls": 30},
                           callback=lambda zk: record(zk, obj(zk)[0]))
            z = np.clip(res.x.reshape(shape), 0, 1)
            converged, message = bool(res.success), str(res.message)
        elif method == "adam" and remaining > 0:
            z, converged, message = _adam(obj, z, remaining, lr, tol, adam, record)
        elif method == "lm" and remaining > 0:
            z, converged, message = _levenberg_marquardt(problem, obj, z, remaining, tol, record)
    finally:
        if bar is not None:
            bar.close()
    if method == "lm" and len(history) > 1:
        loss = history[-1] / obj.scale   # recorded at the final point, no extra rollout
    else:
        loss, _ = obj(z.ravel())
    return FitResult(z, problem.values(z), problem.labels, float(loss * obj.scale), history, z_hist,
                     obj.evals, it[0], time.time() - t_start, converged, message)


def _adam(obj, z, steps, lr, tol, state, record):
    b1, b2, eps = 0.9, 0.999, 1e-8
    shape = z.shape
    m = np.asarray(state["m"], float).reshape(-1) if state else np.zeros(z.size)
    v = np.asarray(state["v"], float).reshape(-1) if state else np.zeros(z.size)
    t = int(state["t"]) if state else 0
    best, since = np.inf, 0
    x = z.ravel().copy()
    for _ in range(steps):
        loss, g = obj(x)
        t += 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = np.clip(x - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps), 0.0, 1.0)
        new_loss, _ = obj(x)
        record(x, new_loss, {"t": t, "m": m, "v": v})
        if new_loss < best * (1 - tol):
            best, since = new_loss, 0
        else:
            since += 1
            if since >= 20:
                return x.reshape(shape), True, "no improvement for 20 steps"
    return x.reshape(shape), False, "iteration limit"


def _levenberg_marquardt(problem, obj, z, steps, tol, record, h: float = 1e-5):
    from .uncertainty import residual_jacobian

    G, p = z.shape
    damping = np.full(G, 1e-3)
    r, w, J, loss = residual_jacobian(problem, z, h, "forward")
    cost = np.array([0.5 * np.sum(w[g] * r[g] ** 2) for g in range(G)])
    done = np.zeros(G, bool)
    for _ in range(steps):
        cand = z.copy()
        for g in np.nonzero(~done)[0]:
            Jw = J[g] * np.sqrt(w[g])[:, None]
            A = Jw.T @ Jw
            grad = Jw.T @ (np.sqrt(w[g]) * r[g])
            diag = np.maximum(np.diag(A), 1e-12 * max(np.trace(A), 1e-300))
            cand[g] = np.clip(z[g] - np.linalg.solve(A + damping[g] * np.diag(diag), grad), 0.0, 1.0)
        r_c, w_c, _, _ = problem.residual_vectors(cand)
        new_cost = np.array([0.5 * np.sum(w_c[g] * r_c[g] ** 2) for g in range(G)])
        better = (new_cost < cost) & ~done
        small = np.abs(cost - new_cost) <= tol * np.maximum(cost, 1e-300)
        done |= better & small
        z = np.where(better[:, None], cand, z)
        cost = np.where(better, new_cost, cost)
        damping = np.where(better, damping / 3.0, damping * 4.0)
        done |= damping > 1e10   # no descent left in any direction: a (box) minimum
        if better.any():  # a rejected step leaves z, and so the Jacobian, unchanged
            r, w, J, loss = residual_jacobian(problem, z, h, "forward")
        record(z.ravel(), loss / obj.scale)
        if done.all():
            return z, True, "relative reduction of the cost below tol in every group"
    return z, False, "iteration limit"
