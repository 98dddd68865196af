"""Real data: hyperelastic fits to Treloar's (1944) uniaxial tension test of rubber.

Treloar, "Stress-strain data for vulcanised rubber under various types of deformation",
Trans. Faraday Soc. 40 (1944) 59-70; 21 points of nominal (first Piola-Kirchhoff) stress
vs stretch up to lambda = 7.5 (see the data's README.txt). Fitted on lambda <= 3, held out
above, as the data's README suggests: rubber stiffens at large stretch as its chains
approach full extension, which neither model below contains, so the held-out error is
expected to be large and is reported as it is.

Models (incompressible uniaxial tension, closed form):

* neo-Hookean: ``P = mu (lambda - lambda^-2)``;
* Mooney-Rivlin: ``P = 2 (lambda - lambda^-2) (C10 + C01 / lambda)``;
* ``--fem``: neo-Hookean through the engine's quasi-static FEM, i.e. ``diffsim sysid
  scenes/sysid_treloar.toml`` (a cube of 6 tetrahedra with lambda = 500 MPa on symmetry
  rollers, one face driven to each measured stretch, nominal stress from its reaction;
  L-BFGS-B with the adjoint gradient; its own report in ``OUT/fem``).

The closed-form fits: Levenberg-Marquardt on the stress residuals, Gauss-Newton standard
deviations with the noise level estimated from the residuals.

    python examples/sysid/treloar_rubber.py --out out/sysid_treloar [--fem]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = (ROOT / "assets" / "treloar_rubber" / "treloar1944_uniaxial.csv",
              Path("/work/shared/data/treloar_rubber/treloar1944_uniaxial.csv"))
SCENE = ROOT / "scenes" / "sysid_treloar.toml"
SPLIT = 3.0  # fit on stretch <= SPLIT, hold out above (as the scene's heldout_above)


def load(path=None):
    """(stretch [-], nominal stress [Pa]) from the CSV (stress column in MPa)."""
    from diffsim.sysid.data import DataError, load_load_curve

    if path is None:
        path = next((p for p in CANDIDATES if p.exists()), None)
        if path is None:
            raise DataError(CANDIDATES[0], "Treloar data not found; pass --data")
    curve = load_load_curve(path, "stretch", "nominal_stress_MPa", "MPa")  # DataError on bad rows
    return curve.stretch, curve.stress, Path(path)


def neo_hookean(lam, mu):
    return mu * (lam - lam ** -2)


def mooney_rivlin(lam, c10, c01):
    return 2.0 * (lam - lam ** -2) * (c10 + c01 / lam)


def fem_fit(data: Path, out: Path):
    """The FEM route: ``diffsim sysid scenes/sysid_treloar.toml`` (a quasi-static cube, one
    load step per row, stress from the driven face's reaction); a report row and the
    predicted stress [Pa] at every stretch."""
    from diffsim.sysid.pipeline import run_sysid

    rep = run_sysid(SCENE, data, out, progress=False, log=lambda *_: None)
    mu, curve = rep["parameters"]["element_mu"], rep["load_curve"]
    held = curve["heldout"]
    row = {"parameters": {"mu": {k: mu[k] for k in ("value", "std", "units")}},
           "warnings": rep["warnings"], "iterations": rep["fit"]["iterations"],
           "train_rmse_MPa": rep["train"]["rmse"]["stress"] / 1e6,
           "noise_estimate_MPa": rep["noise_estimate"]["stress"] / 1e6,
           "heldout_rmse_MPa": rep["heldout"]["rmse"]["stress"] / 1e6,
           "heldout_max_relative_error": held["max_abs_relative_error"],
           "heldout_relative_error_at_max_stretch": abs(held["relative_error_at_max_stretch"]),
           "scene": str(SCENE)}
    return row, np.array(curve["train"]["stress_fitted"] + held["stress_fitted"])


def fit_model(name, specs, predict, lam, P, train):
    """LM fit of ``predict(lam, *values)`` on ``train``; returns a report row and the values."""
    from diffsim.sysid import fit, gauss_newton
    from diffsim.sysid.problem import FunctionProblem

    def residuals(values):
        return {"stress": (predict(lam[train], *values) - P[train]) / 1e6}   # in MPa

    prob = FunctionProblem(specs, residuals)
    res = fit(prob, "lm", max_iter=100, tol=1e-14, progress=False)
    unc = gauss_newton(prob, res.z, step=1e-6)
    vals = res.values[0]
    pred = predict(lam, *vals)
    held = ~train
    rel = np.abs(pred - P) / np.maximum(P, 1e-12)
    row = {"parameters": {s.label: {"value": float(v), "std": float(sd), "units": s.units}
                          for s, v, sd in zip(specs, vals, unc.std[0])},
           "correlation": unc.corr[0].tolist(), "warnings": unc.warnings,
           "train_rmse_MPa": float(np.sqrt(np.mean((pred[train] - P[train]) ** 2)) / 1e6),
           "noise_estimate_MPa": float(unc.noise["stress"][0]),
           "iterations": res.iterations}
    if held.any():
        row.update(heldout_rmse_MPa=float(np.sqrt(np.mean((pred[held] - P[held]) ** 2)) / 1e6),
                   heldout_max_relative_error=float(rel[held].max()),
                   heldout_relative_error_at_max_stretch=float(rel[-1]))
    return row, vals, pred


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="out/sysid_treloar")
    ap.add_argument("--data", help="CSV (default: assets/treloar_rubber/, else the shared data)")
    ap.add_argument("--fem", action="store_true", help="also fit through the quasi-static FEM")
    args = ap.parse_args(argv)
    from diffsim.core import backend

    if backend.info() is None:
        backend.init(arch="cpu", precision="float64")
    from diffsim.io import save_json_atomic
    from diffsim.sysid import ParamSpec
    from diffsim.sysid.report import _figure, _save

    lam, P, path = load(args.data)
    train = lam <= SPLIT
    out = Path(args.out)
    report = {"data": str(path), "split_stretch": SPLIT, "train_points": int(train.sum()),
              "heldout_points": int((~train).sum()), "models": {}}
    curves = {}
    row, vals, pred = fit_model("neo_hookean", [ParamSpec("mu", 1e4, 1e7, "log", units="Pa")],
                                neo_hookean, lam, P, train)
    report["models"]["neo_hookean"], curves["neo-Hookean"] = row, pred
    row, vals, pred = fit_model("mooney_rivlin", [ParamSpec("C10", -1e6, 1e6, units="Pa"),
                                                  ParamSpec("C01", -1e6, 1e6, units="Pa")],
                                mooney_rivlin, lam, P, train)
    report["models"]["mooney_rivlin"], curves["Mooney-Rivlin"] = row, pred
    if args.fem:
        row, pred = fem_fit(path, out / "fem")
        report["models"]["neo_hookean_fem"], curves["neo-Hookean (quasi-static FEM)"] = row, pred
    fig, ax = _figure(size=(7.0, 4.6))
    ax = ax[0, 0]
    ax.plot(lam[train], P[train] / 1e6, "o", color="k", label="Treloar 1944 (fit)")
    ax.plot(lam[~train], P[~train] / 1e6, "o", mfc="none", color="k", label="Treloar 1944 (held out)")
    for label, pred in curves.items():
        ax.plot(lam, pred / 1e6, "-" if "FEM" not in label else "--", label=label)
    ax.axvline(SPLIT, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("stretch [-]")
    ax.set_ylabel("nominal stress [MPa]")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out / "stress_stretch.png")
    save_json_atomic(out / "report.json", report)
    for name, row in report["models"].items():
        vals = ", ".join(f"{k} = {v['value'] / 1e6:.4f} +- {v['std'] / 1e6:.4f} MPa"
                         for k, v in row["parameters"].items())
        print(f"{name:<16} {vals}; train RMSE {row['train_rmse_MPa']:.4f} MPa, held-out RMSE "
              f"{row['heldout_rmse_MPa']:.3f} MPa (max rel. error {100 * row['heldout_max_relative_error']:.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
