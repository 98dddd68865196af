"""The identification report: ``report.json`` and its plots.

A fit is only as good as its held-out error, so the report puts side by side: the fitted
values with their Gauss-Newton standard deviations, 95 % intervals and correlations
(:mod:`.uncertainty`), the training error, and the error on data the fit never saw
(held-out trials, or the tail of each trial), each as an RMS in physical units and per
frame over time. Plots (PNG, written atomically, matplotlib imported lazily):

* ``loss.png``: the loss per iteration;
* ``markers.png``: measured vs simulated coordinates of chosen markers of one experiment;
* ``heldout_error.png``: the held-out error over time, one curve per experiment (or per
  parameter set, e.g. prior vs fitted).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path, save_json_atomic


def summarise(evaluation, experiments) -> dict:
    """Errors of an :class:`~.problem.Evaluation`: loss, RMS per term kind, per experiment."""
    per_exp, sq, n = {}, {}, {}
    for e in experiments:
        rows = {}
        for term, ev in zip(e.terms, evaluation.terms[e.name]):
            rows[term.name] = {"rmse": ev.rmse, "final_error": float(ev.frame_error[-1]),
                               "frames": int(len(ev.frame_times))}
            sq[term.name] = sq.get(term.name, 0.0) + ev.rmse ** 2 * max(ev.count, 1)
            n[term.name] = n.get(term.name, 0) + max(ev.count, 1)
        per_exp[e.name] = rows
    return {"loss": evaluation.loss, "experiments": len(experiments),
            "rmse": {k: float(np.sqrt(sq[k] / n[k])) for k in sq}, "per_experiment": per_exp}


def parameter_table(problem, result, unc=None, group: int = 0) -> dict:
    """``{label: {value, std, rel_std, ci95, units, bounds, scale, init}}`` of one group."""
    z0 = result.z_history[0] if result.z_history else result.z
    init = problem.values(np.asarray(z0))[group]
    out = {}
    for j, s in enumerate(problem.params):
        row = {"value": float(result.values[group, j]), "units": s.units, "lower": s.lower,
               "upper": s.upper, "scale": s.scale, "initial": float(init[j])}
        if unc is not None:
            sd = float(unc.std[group, j])
            row.update(std=sd, rel_std=float(unc.rel_std[group, j]),
                       ci95=[row["value"] - 1.96 * sd, row["value"] + 1.96 * sd],
                       identifiable=bool(unc.identifiable[group, j]))
            if unc.cluster_std is not None:
                cs = float(unc.cluster_std[group, j])
                row.update(std_cluster_robust=cs,
                           ci95_cluster_robust=[row["value"] - 1.96 * cs, row["value"] + 1.96 * cs])
        out[s.label] = row
    return out


def build_report(problem, result, unc=None, train=None, heldout=None, extra: dict | None = None,
                 group: int = 0) -> dict:
    """The report dict (JSON-ready) of a fit."""
    rep = {"parameters": parameter_table(problem, result, unc, group),
           "fit": {"iterations": result.iterations, "evaluations": result.evaluations,
                   "seconds": round(result.seconds, 3), "converged": result.converged,
                   "message": result.message,
                   "loss_initial": result.history[0] if result.history else None,
                   "loss_final": result.loss}}
    if unc is not None:
        rep["correlation"] = {"labels": unc.labels, "matrix": unc.corr[group]}
        rep["noise_estimate"] = {k: float(v[group]) for k, v in unc.noise.items()}
        rep["singular_values"] = unc.singular_values[group]
        rep["warnings"] = list(unc.warnings)
    if train is not None:
        rep["train"] = train
    if heldout is not None:
        rep["heldout"] = heldout
    rep.update(extra or {})
    return rep


def write_report(out_dir, report: dict) -> Path:
    """Write ``report.json`` into ``out_dir`` atomically; returns its path."""
    return save_json_atomic(Path(out_dir) / "report.json", report)


# ----------------------------------------------------------------------------- plots


def _figure(rows: int = 1, cols: int = 1, size=(8.0, 5.0)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _save(fig, path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.canvas.print_png(os.fspath(tmp))
    return Path(path)


def plot_loss(path, history, title: str = "loss") -> Path:
    """Loss per iteration (log scale)."""
    fig, ax = _figure(size=(6.4, 4.0))
    ax = ax[0, 0]
    h = np.asarray(history, float)
    ax.semilogy(np.arange(len(h)), np.where(h > 0, h, np.nan), marker="o", ms=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_markers(path, term_eval, names, which=None, t0: float = 0.0, title: str = "") -> Path:
    """Measured (dots) vs simulated (lines) coordinates of markers ``which`` over time.

    Args:
        term_eval: a marker :class:`~.terms.TermEval` (``predicted``/``measured`` ``[F, M, c]``).
        names: the term's marker names; which: names to draw (default: the first three).
    """
    which = list(which or names[:3])
    idx = [list(names).index(n) for n in which]
    pred, meas, mask = term_eval.predicted, term_eval.measured, term_eval.mask
    c = pred.shape[2]
    fig, axes = _figure(len(idx), 1, size=(8.0, 2.4 * len(idx) + 0.6))
    t = term_eval.frame_times + t0
    colors = ["tab:blue", "tab:orange", "tab:green"]
    for row, (j, name) in enumerate(zip(idx, which)):
        ax = axes[row, 0]
        for k in range(c):
            lab = "xyz"[k] if c <= 3 else str(k)
            ok = mask[:, j]
            ax.plot(t[ok], meas[ok, j, k], ".", ms=3, color=colors[k % 3], alpha=0.6,
                    label=f"{lab} measured")
            ax.plot(t, pred[:, j, k], "-", lw=1.4, color=colors[k % 3], label=f"{lab} simulated")
        ax.set_ylabel(f"{name} [m]")
        ax.grid(True, alpha=0.3)
        if row == 0:
            ax.legend(fontsize=7, ncol=2 * c)
            if title:
                ax.set_title(title)
    axes[-1, 0].set_xlabel("time [s]")
    return _save(fig, path)


def plot_error_over_time(path, curves: dict, ylabel: str = "error [m]", title: str = "",
                         band: dict | None = None) -> Path:
    """Curves of different lengths ``{label: (times [F], errors [F])}``; optional shaded
    ``band`` ``{label: (times, low, high)}`` (e.g. the inter-quartile range over trials)."""
    fig, ax = _figure(size=(7.0, 4.2))
    ax = ax[0, 0]
    for label, (t, e) in curves.items():
        ax.plot(np.asarray(t), np.asarray(e), lw=1.3, label=str(label))
    for label, (t, lo, hi) in (band or {}).items():
        ax.fill_between(np.asarray(t), np.asarray(lo), np.asarray(hi), alpha=0.2, label=str(label))
    ax.set_xlabel("time [s]")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(curves) + len(band or {}) <= 12:
        ax.legend(fontsize=8)
    return _save(fig, path)


def heldout_curves(evaluation, experiments, term_name: str) -> dict:
    """``{experiment: (data times, per-frame error)}`` of one term, for the error plot."""
    out = {}
    for e in experiments:
        for term, ev in zip(e.terms, evaluation.terms[e.name]):
            if term.name == term_name:
                out[e.name] = (ev.frame_times + e.t0, ev.frame_error)
    return out
