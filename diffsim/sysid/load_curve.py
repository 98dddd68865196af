"""Quasi-static load curves (nominal stress against stretch) as identification experiments.

A uniaxial material test has no time axis: each row of the data (a stretch ``lambda`` and
the nominal stress ``P`` measured there) becomes one load step of a quasi-static FEM
rollout. The scene's specimen sits on rollers (``roller_regions``) and has one face driven
along one axis (``driven_regions`` / ``driven_axes``); step k moves that face to stretch
``lambda_k`` (control ``target``: every driven vertex's coordinate scaled by ``lambda_k``
about the specimen's lower end along the axis), and the predicted stress is the support
reaction on the face over its rest area (:class:`FEMReactionForce`). The loss compares it
with the measured stress through a :class:`~.terms.ForceTerm`; its gradient is exact
(the observable's vector-Jacobian product plus the rollout's adjoint through the Newton
solves).

Rows are applied in increasing stretch, so each Newton solve starts from the previous
equilibrium. Held out (``[sysid] split = "stretch"``): the rows above ``heldout_above``,
simulated after the training rows in one rollout of the whole curve and compared on the
held-out rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..solvers.fem import constitutive as cm
from ..solvers.fem.assembly import element_gradients, gradient_matrix, scatter_forces
from .data import DataError, LoadCurve
from .problem import Experiment
from .terms import ForceTerm


class FEMReactionForce:
    """Nominal stress [Pa] on a driven face of a quasi-static FEM body.

    ``P = sum_{v in face} f_v[axis] / area`` with ``f = grad_x sum_e V_e Psi(F_e)``, the
    elastic force that the supports balance in equilibrium (body forces on the face and
    active muscle stress are not included: a load test has neither). Output ``[F, 1, 1]``.

    Args:
        solver: an FEM solver (its rest geometry and material).
        vertices: ``[K]`` the face's vertices; axis: the loaded axis; area: the face's rest
            area [m^2] (1: the force [N]).
    """

    needs_params = True

    def __init__(self, solver, vertices, axis: int, area: float = 1.0):
        model = solver.model
        if model.counts.get("actuator", 0):
            raise ValueError("FEMReactionForce covers passive bodies only (the model has muscles)")
        self.elements = model.topology["elements"]
        self.G = gradient_matrix(solver.gradient_operator_np)
        self.volume = solver.rest_volume_np
        self.material = model.meta["material"]
        self.vertices, self.axis, self.area = np.asarray(vertices, np.int64), int(axis), float(area)

    def _F(self, x: np.ndarray) -> np.ndarray:
        return element_gradients(x, self.elements, self.G)

    def predict(self, traj, params, frames):
        x = traj["x"]
        out = np.empty((len(frames), 1, 1))
        for i, f in enumerate(frames):
            P = cm.evaluate(self.material, self._F(x[f]), params["element_mu"], params["element_lam"])[1]
            force = scatter_forces(P, self.volume, self.elements, self.G, len(x[f]))
            out[i, 0, 0] = force[self.vertices, self.axis].sum() / self.area
        return out

    def vjp(self, traj, params, frames, g):
        """``g`` ``[F, 1, 1]`` -> (``{"x": [T + 1, N, d]}``, ``{element_mu, element_lam: [E]}``).

        With ``e`` the unit load on the face (``g / area`` on each face vertex's axis),
        ``dP/dx^T g = K(x) e`` (the tangent stiffness is symmetric) and
        ``dP/dmu_e = V_e dP_e/dmu : grad(e)_e`` (likewise lam).
        """
        x = traj["x"]
        mu, lam = params["element_mu"], params["element_lam"]
        gx = np.zeros_like(x)
        gmu, glam = np.zeros_like(mu), np.zeros_like(lam)
        for i, f in enumerate(frames):
            e = np.zeros_like(x[f])
            e[self.vertices, self.axis] = float(np.sum(g[i])) / self.area
            F, dF = self._F(x[f]), self._F(e)
            C = cm.evaluate(self.material, F, mu, lam, tangent=True)[2]
            dP = np.einsum("eijkl,ekl->eij", C, dF)
            gx[f] += scatter_forces(dP, self.volume, self.elements, self.G, len(e))
            dmu, dlam = cm.param_derivatives(self.material, F, mu, lam)
            gmu += self.volume * np.sum(dmu * dF, axis=(1, 2))
            glam += self.volume * np.sum(dlam * dF, axis=(1, 2))
        return {"x": gx}, {"element_mu": gmu, "element_lam": glam}


@dataclass
class UniaxialGrip:
    """The driven face of a uniaxial specimen and the ``target`` control of a stretch.

    Attributes:
        axis: the loaded axis; face: ``[K]`` vertices driven along it; area: the face's rest
            area [m^2]; origin: the specimen's lower end along the axis [m] (the rollers);
            rest_target: ``[K_all, dim]`` rest positions of every kinematic vertex;
            scaled: ``[K_all]`` bool, the kinematic vertices driven along ``axis``.
    """

    axis: int
    face: np.ndarray
    area: float
    origin: float
    rest_target: np.ndarray
    scaled: np.ndarray

    @classmethod
    def from_model(cls, model, source=None) -> "UniaxialGrip":
        """From an FEM model with one driven axis (``DataError`` naming ``source`` if not)."""
        if model.kind != "fem":
            raise DataError(source, f"load_curve data need an FEM scene, found kind {model.kind!r}")
        d, N = model.dim, model.counts["vertex"]
        bits = model.topology["vertex_driven"][:N]
        driven = (bits[:, None] >> np.arange(d)) & 1 == 1
        axes = np.flatnonzero(driven.any(axis=0))
        if len(axes) != 1:
            raise DataError(source, "load_curve data drive one face along one axis: set "
                            f"driven_regions and driven_axes on the body (driven axes: {axes.tolist()})")
        axis = int(axes[0])
        X = model.meta["rest_positions"]
        face = np.flatnonzero(driven[:, axis])
        kin = model.meta["kinematic_vertices"]
        return cls(axis, face, _face_area(X, model.meta["surface"], face, source),
                   float(X[:, axis].min()), X[kin].copy(), driven[kin, axis])

    def targets(self, stretch) -> np.ndarray:
        """``[n, K_all, dim]`` kinematic targets: the driven coordinates scaled by each stretch
        about ``origin`` (other kinematic components stay at rest)."""
        lam = np.asarray(stretch, float)
        out = np.repeat(self.rest_target[None], len(lam), axis=0)
        rest = self.rest_target[self.scaled, self.axis]
        out[:, self.scaled, self.axis] = self.origin + lam[:, None] * (rest - self.origin)
        return out


def _face_area(X: np.ndarray, surface: np.ndarray, face: np.ndarray, source=None) -> float:
    """Rest area [m^2] (2D: length [m]) of the surface facets whose vertices are all on ``face``."""
    on = np.isin(surface, face).all(axis=1)
    p = X[surface[on]]
    if X.shape[1] == 3:
        area = 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1).sum()
    else:
        area = np.linalg.norm(p[:, 1] - p[:, 0], axis=1).sum()
    if not area > 0:
        raise DataError(source, "the driven vertices span no boundary face: drive a whole face "
                        "of the specimen (its rest area is the nominal stress's reference)")
    return float(area)


def check_specimen(scene, source) -> None:
    """A load test runs quasi-static without body forces (else the reaction is not the load)."""
    if not getattr(scene.solver, "quasi_static", False):
        raise DataError(source, "load_curve data need [solver] integrator = 'quasi_static' "
                        "(each row is one equilibrium)")
    if np.any(scene.model.get("gravity") != 0):
        raise DataError(source, "load_curve data need gravity = [0, 0(, 0)] (the reaction on the "
                        "driven face is read as the applied load)")


def load_curve_experiments(scene, cfg: dict, curve: LoadCurve, penalty, source) -> tuple[list, list]:
    """(training, held-out) experiments of a load curve.

    Training: the rows with stretch <= ``cfg["heldout_above"]`` (``split = "stretch"``; all
    rows with ``split = "none"``), one load step each, from the rest state. Held out: the
    whole curve in one rollout, compared on the rows above the threshold only.
    """
    check_specimen(scene, source)
    grip = UniaxialGrip.from_model(scene.model, source)
    obs = FEMReactionForce(scene.solver, grip.face, grip.axis, grip.area)
    n = len(curve.stretch)
    n_train = int(np.sum(curve.stretch <= cfg["heldout_above"])) if cfg["split"] == "stretch" else n
    if n_train == 0:
        raise DataError(curve.source, f"no row has a stretch <= heldout_above = {cfg['heldout_above']:g} "
                        f"(the smallest is {curve.stretch[0]:g}): nothing to fit")
    init = {k: scene.initial_state[k][0] for k in ("x", "v")}
    dt = scene.dt

    def experiment(name: str, rows: int, first_frame: int = 0) -> Experiment:
        term = ForceTerm(curve.as_recording(dt, np.arange(rows)), obs, dt, rows, 0.0,
                         cfg["stress_sigma"], penalty, name="stress", first_frame=first_frame,
                         interpolation="linear")
        return Experiment(name, init, rows, [term], controls={"target": grip.targets(curve.stretch[:rows])},
                          meta={"stretch": curve.stretch[:rows]})

    train = [experiment("curve", n_train)]
    held = [experiment("curve/heldout", n, first_frame=n_train + 1)] if n_train < n else []
    return train, held


def _points(evaluation, exp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stretch, measured, predicted stress [Pa]) at the rows an experiment compares."""
    t = evaluation.terms[exp.name][0]
    rows = np.rint(t.frame_times / exp.terms[0].dt).astype(int) - 1  # frame k applies row k - 1
    return exp.meta["stretch"][rows], t.measured[:, 0, 0], t.predicted[:, 0, 0]


def curve_report(parts: dict) -> dict:
    """Per-point stresses and relative errors of a load-curve fit, for ``report.json``.

    Args:
        parts: ``{"train" | "heldout": (experiments, fitted evaluation, initial evaluation)}``.
    Returns:
        ``{part: {stretch, stress, stress_fitted, stress_initial [Pa], relative_error,
        max_abs_relative_error, relative_error_at_max_stretch}}``.
    """
    out = {}
    for part, (exps, ev, ev0) in parts.items():
        lam, meas, pred = (np.concatenate(a) for a in zip(*(_points(ev, e) for e in exps)))
        pred0 = np.concatenate([_points(ev0, e)[2] for e in exps])
        rel = (pred - meas) / np.where(meas != 0, np.abs(meas), np.inf)
        out[part] = {"stretch": lam.tolist(), "stress": meas.tolist(), "stress_fitted": pred.tolist(),
                     "stress_initial": pred0.tolist(), "relative_error": rel.tolist(),
                     "max_abs_relative_error": float(np.max(np.abs(rel))),
                     "relative_error_at_max_stretch": float(rel[np.argmax(lam)])}
    return out


def plot_load_curve(path, summary: dict, title: str = ""):
    """Measured (dots: filled fitted, open held out) and simulated stress against stretch,
    and the relative error per point below."""
    from .report import _figure, _save

    fig, ax = _figure(2, 1, size=(7.0, 6.4))
    for part, row in summary.items():
        lam = np.asarray(row["stretch"])
        face = "k" if part == "train" else "none"
        ax[0, 0].plot(lam, np.asarray(row["stress"]) / 1e6, "o", color="k", mfc=face,
                      label=f"measured ({'fit' if part == 'train' else 'held out'})")
        ax[0, 0].plot(lam, np.asarray(row["stress_fitted"]) / 1e6, "-", color="tab:blue",
                      label="simulated, fitted" if part == "train" else None)
        ax[0, 0].plot(lam, np.asarray(row["stress_initial"]) / 1e6, ":", color="tab:gray",
                      label="simulated, initial" if part == "train" else None)
        ax[1, 0].plot(lam, 100 * np.asarray(row["relative_error"]), "o-", mfc=face, color="tab:red")
    ax[0, 0].set_ylabel("nominal stress [MPa]")
    ax[0, 0].legend(fontsize=8)
    ax[1, 0].axhline(0.0, color="gray", lw=0.8)
    ax[1, 0].set_ylabel("error (fitted) [%]")
    ax[1, 0].set_xlabel("stretch [-]")
    for a in ax[:, 0]:
        a.grid(True, alpha=0.3)
    if title:
        ax[0, 0].set_title(title)
    return _save(fig, path)
