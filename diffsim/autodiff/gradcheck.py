"""Central-difference gradient checks.

:func:`gradcheck` compares an analytic gradient with central differences
``(L(p + h e) - L(p - h e)) / 2h`` for several step sizes ``h`` and keeps, per parameter
group, the step size that agrees best (too large a step shows truncation error, too small
a step round-off). It reports the relative error ``|g_fd - g| / max(|g_fd|, |g|)`` over the
probed coordinates and their cosine similarity. Run it in float64: in float32 round-off
swamps any step size that keeps truncation small.

Large groups are probed on a subset of coordinates (the largest analytic entries plus
random ones) and along one random direction, so a check stays cheap on real scenes.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class GradcheckRow:
    """Result for one parameter group."""

    name: str
    size: int
    probed: int
    step: float
    rel_error: float
    cosine: float
    analytic_norm: float
    passed: bool


def _coords(g: np.ndarray, max_coords: int, rng) -> np.ndarray:
    n = g.size
    if n <= max_coords:
        return np.arange(n)
    flat = np.abs(g.ravel())
    top = np.argsort(-flat)[: max_coords // 2]
    rest = np.setdiff1d(np.arange(n), top)
    rand = rng.choice(rest, size=max_coords - len(top), replace=False)
    return np.concatenate([top, rand])


def gradcheck(loss_and_grad, inputs: dict, steps=(1e-3, 1e-4, 1e-5, 1e-6), max_coords: int = 12,
              rtol: float = 1e-3, cos_tol: float = 1e-4, atol: float = 1e-10,
              scales: dict | None = None,
              seed: int = 0) -> list[GradcheckRow]:
    """Check ``loss_and_grad`` against central differences.

    Args:
        loss_and_grad: ``f(inputs) -> (loss: float, grads: dict name -> array)``; it must not
            modify ``inputs``.
        inputs: ``{name: array}``, the point at which to check.
        steps: relative step sizes tried; the absolute step is ``h * scale`` with ``scale``
            the group's RMS magnitude (or 1), or ``scales[name]`` when given. Besides each
            step's central difference, the Richardson extrapolation of each consecutive
            pair is a candidate; the row reports the candidate closest to the adjoint.
        max_coords: coordinates probed per group (all when the group is smaller).
        rtol / cos_tol: pass when ``rel_error <= rtol`` and ``1 - cosine <= cos_tol``; a
            group whose analytic and numerical gradients both have norm below ``atol`` passes.
    Returns:
        One :class:`GradcheckRow` per group, in ``inputs`` order.
    """
    rng = np.random.default_rng(seed)
    base = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    _, grads = loss_and_grad({k: v.copy() for k, v in base.items()})
    rows = []
    for name, value in base.items():
        g = np.asarray(grads[name], dtype=np.float64).reshape(value.shape)
        idx = _coords(g, max_coords, rng)
        scale = (scales or {}).get(name) or (float(np.sqrt(np.mean(value ** 2))) or 1.0)
        an = g.reshape(-1)[idx]
        estimates = []  # (step, central differences at the probed coordinates)
        for h_rel in steps:
            h = h_rel * scale
            fd = np.empty(len(idx))
            for j, flat in enumerate(idx):
                vals = []
                for sign in (1.0, -1.0):
                    probe = {k: v.copy() for k, v in base.items()}
                    probe[name].reshape(-1)[flat] += sign * h
                    vals.append(loss_and_grad(probe)[0])
                fd[j] = (vals[0] - vals[1]) / (2 * h)
            if estimates:
                # Richardson extrapolation of the previous and this step: cancels the h^2
                # term of the central difference, which dominates on stiff problems (contact)
                # where a smaller step would drown in round-off instead.
                h_prev, fd_prev = estimates[-1]
                r2 = (h_prev / h) ** 2
                estimates.append((h, (r2 * fd - fd_prev) / (r2 - 1.0)))
            estimates.append((h, fd))
        best = None
        for h, fd in estimates:
            n_fd, n_an = float(np.linalg.norm(fd)), float(np.linalg.norm(an))
            rel = float(np.linalg.norm(fd - an) / max(n_fd, n_an, 1e-300))
            cos = float(fd @ an / (n_fd * n_an)) if n_fd > 0 and n_an > 0 else float(n_fd == n_an)
            if best is None or rel < best[1]:
                best = (h, rel, cos, n_an, n_fd)
        h, rel, cos, n_an, n_fd = best
        both_zero = max(n_an, n_fd) < atol
        passed = both_zero or (rel <= rtol and 1 - cos <= cos_tol)
        rows.append(GradcheckRow(name, value.size, len(idx), h, rel, cos, n_an, bool(passed)))
    return rows


def format_table(rows: list[GradcheckRow]) -> str:
    """A fixed-width table of :func:`gradcheck` rows."""
    head = f"{'parameter':<28}{'size':>8}{'probed':>8}{'step':>10}{'rel.err':>11}{'cosine':>11}{'|grad|':>11}  ok"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.name:<28}{r.size:>8}{r.probed:>8}{r.step:>10.1e}{r.rel_error:>11.2e}"
                     f"{r.cosine:>11.6f}{r.analytic_norm:>11.3e}  {'yes' if r.passed else 'NO'}")
    return "\n".join(lines)
