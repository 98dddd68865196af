"""From a scene with ``[sysid]`` and a data file to a fitted, reported identification.

:func:`run_sysid` is what ``diffsim sysid SCENE --data FILE --out DIR`` runs:

1. read the scene and its ``[sysid]`` table (:mod:`.config`), build the model and solver;
2. load the data (:mod:`.data`), map markers to particles on the rest shape
   (:mod:`.align`), split trials (or trial tails) into training and held-out experiments,
   and turn gripper markers into kinematic particles (:mod:`.kinematic`); tracked
   rigid-body states (``data_kind = "rigid_poses"``) become virtual markers at the scene's
   particles moved with the measured pose, and every rollout starts from the measured
   state (:mod:`.rigid`); a load curve (``data_kind = "load_curve"``) becomes quasi-static
   load steps of the FEM scene's driven face (:mod:`.load_curve`);
3. fit the scene's ``[[free]]`` parameters (:mod:`.fit`, with an atomic checkpoint in
   ``DIR/checkpoint.json`` and ``resume``), then the Gauss-Newton uncertainty
   (:mod:`.uncertainty`) on the training experiments;
4. evaluate training and held-out errors with the initial and the fitted parameters and
   write ``DIR/report.json`` and the plots (:mod:`.report`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import data as D
from .align import finite_difference_velocity, frames_in, map_explicit, map_nearest_particle, resample, smooth
from .config import sysid_config
from .fit import fit
from .losses import Penalty
from .params import TIME_OFFSET, ParamSpec
from .problem import Experiment, SysIDProblem
from .report import (
    build_report,
    heldout_curves,
    plot_error_over_time,
    plot_loss,
    plot_markers,
    summarise,
    write_report,
)
from .terms import ForceTerm, MarkerTerm, PointCloudTerm, SpringReactionForce
from .uncertainty import gauss_newton


def _resolve(base: Path, p) -> Path:
    p = Path(p).expanduser()
    return p if p.is_absolute() else base / p


def _split(names: list[str], cfg: dict) -> tuple[list[str], list[str]]:
    if cfg["split"] != "trials" or len(names) == 1:
        return names, []
    if "heldout" in cfg:
        unknown = [n for n in cfg["heldout"] if n not in names]
        if unknown:
            raise D.DataError(None, f"[sysid] heldout names trials {unknown} that the data do not "
                              f"have (trials: {', '.join(names[:10])}{'...' if len(names) > 10 else ''})")
        held = [n for n in names if n in cfg["heldout"]]
    else:
        # at least one trial on each side
        n_train = min(max(1, int(round(cfg["train_fraction"] * len(names)))), len(names) - 1)
        held = names[n_train:]
    return [n for n in names if n not in held], held


def _marker_maps(rec: D.Recording, x0: np.ndarray, cfg: dict):
    first = int(np.argmax(rec.mask.all(axis=1))) if rec.mask.all(axis=1).any() else 0
    if cfg["marker_map"] == "explicit":
        if len(cfg["marker_particles"]) != len(rec.names):
            raise D.DataError(rec.source, f"[sysid] marker_particles has {len(cfg['marker_particles'])} "
                              f"entries for {len(rec.names)} markers ({', '.join(rec.names)})")
        return map_explicit(cfg["marker_particles"], rec.names, len(x0), rec.source)
    return map_nearest_particle(x0, rec.values[first], rec.names, cfg["max_distance"], rec.source,
                                exclusive=True)


class _Builder:
    """Builds experiments of one scene from marker or point-cloud trials."""

    def __init__(self, scene, cfg: dict, base: Path):
        self.scene, self.cfg, self.base = scene, cfg, base
        self.dt = scene.dt
        self.x0 = np.asarray(scene.initial_state["x"][0], float)
        self.v0 = np.asarray(scene.initial_state["v"][0], float)
        self.penalty = Penalty(cfg["loss"], cfg["huber_delta"])
        self.kinematic = None
        self.kin_names = []
        self.poses = {}
        self.forces = {}
        if "force_data" in cfg:
            recs = D.load_forces(_resolve(base, cfg["force_data"]), "default:" + cfg["force_unit"],
                                 "default:" + cfg["time_unit"], cfg["missing"])
            self.forces = {r.trial: r for r in recs}

    def marker_setup(self, rec: D.Recording):
        mmap = _marker_maps(rec, self.x0, self.cfg)
        kin_names = list(self.cfg["kinematic_markers"])
        for n in kin_names:
            rec.channel(n)
        if kin_names:
            kin_map = mmap.subset(kin_names)
            if kin_map.indices.shape[1] != 1:
                raise D.DataError(rec.source, "kinematic markers must map to single particles")
            self.kinematic = kin_map.indices[:, 0]
        self.kin_names = kin_names
        self.pred_names = [n for n in rec.names if n not in kin_names]
        if not self.pred_names:
            raise D.DataError(rec.source, "every marker is kinematic: nothing is left to predict")
        self.map = mmap

    def rigid_setup(self, poses: list) -> list:
        """Virtual-marker recordings of rigid-pose trials (``data_kind = "rigid_poses"``).

        The body frame is the scene's rest shape about its centre of mass (particle masses;
        uniform when the model has none): particle i sits at ``r_i = x0_i - c``, and a
        measured pose (q, p) puts it at ``p + R(q) r_i``. The compared particles are
        ``marker_particles`` (default: all), named ``p<index>``.
        """
        from .rigid import rigid_particles

        if self.x0.shape[1] != 3:
            raise D.DataError(poses[0].source, "rigid_poses data need a 3D scene")
        model = self.scene.model
        m = (np.asarray(model.get("particle_mass")[0], float) if "particle_mass" in model.params
             else np.ones(len(self.x0)))  # a model without particle masses: the centroid
        self.body = self.x0 - (m @ self.x0) / m.sum()
        parts = np.asarray(self.cfg.get("marker_particles", np.arange(len(self.x0))), np.int64)
        names = [f"p{int(i)}" for i in parts]
        self.map = map_explicit(parts, names, len(self.x0), poses[0].source)
        self.pred_names = names
        recs = []
        for pr in poses:
            x, _ = rigid_particles(pr.quat, pr.position, pr.omega_body, pr.velocity, self.body[parts])
            recs.append(D.Recording("markers", pr.time, x, names, np.ones(x.shape[:2], bool),
                                    pr.source, pr.trial, pr.rows))
            self.poses[pr.trial] = pr
        return recs

    def _state_from_pose(self, rec, start: int):
        """Particle states of the measured rigid state at frame ``start`` (a sample)."""
        from .rigid import rigid_particles

        pr = self.poses[rec.trial]
        t = float(pr.time[0]) + start * self.dt
        j = int(np.argmin(np.abs(pr.time - t)))
        if abs(float(pr.time[j]) - t) > 1e-3 * self.dt:
            raise D.DataError(pr.source, f"trial {pr.trial!r}: no measured state at t = {t:.6g} s "
                              f"(nearest {float(pr.time[j]):.6g} s); rigid_poses rollouts start "
                              "from measured states, so the scene's dt must be a multiple of the "
                              "data's sample interval")
        x, v = rigid_particles(pr.quat[j], pr.position[j], pr.omega_body[j], pr.velocity[j], self.body)
        return {"x": x, "v": v}

    def steps_of(self, rec) -> int:
        return max(1, min(frames_in(rec, self.dt), self.scene.steps))

    def _kin_positions(self, rec: D.Recording, start: int, steps: int) -> np.ndarray:
        sub = rec.select(self.kin_names)
        if self.cfg["kinematic_smoothing"] == "spline":
            sub = smooth(sub, sigma=self.cfg.get("kinematic_sigma", self.cfg["sigma"]))
        r = resample(sub, self.dt, start + steps, float(rec.time[0]), method=self.cfg["interpolation"])
        if len(r.frames) != start + steps + 1 or not r.mask.all():
            bad = sorted(set(range(start + steps + 1)) - set(r.frames[r.mask.all(axis=1)].tolist()))
            raise D.DataError(rec.source, f"trial {rec.trial!r}: kinematic markers have no valid "
                              f"sample at t = {rec.time[0] + bad[0] * self.dt:.6g} s; a driven "
                              "particle needs data at every frame")
        return r.values[start:]

    def _state_from_data(self, rec: D.Recording, start: int):
        mapped = self.map.indices[:, 0]
        if self.map.indices.shape[1] != 1:
            raise D.DataError(rec.source, "initial_state = 'data' needs one-particle marker maps")
        r = resample(rec, self.dt, start + 2, float(rec.time[0]), method=self.cfg["interpolation"])
        if len(r.frames) < start + 3 or not r.mask[start:start + 3].all():
            raise D.DataError(rec.source, f"trial {rec.trial!r}: markers are missing near frame "
                              f"{start}; cannot start a window there")
        x, v = self.x0.copy(), self.v0.copy()
        pos = r.values[start:start + 3]
        x[mapped] = pos[0]
        v[mapped] = finite_difference_velocity(pos, self.dt)[0]
        if self.cfg["window"] and len(set(mapped.tolist())) < len(self.x0):
            raise D.DataError(rec.source, "window > 0 restarts every window from the data, so every "
                              f"particle needs a marker ({len(set(mapped.tolist()))} of {len(self.x0)} "
                              "are observed)")
        return {"x": x, "v": v}

    def experiment(self, rec, name: str, start: int, steps: int, first_frame: int = 0):
        cfg = self.cfg
        t0 = float(rec.time[0]) + start * self.dt
        if cfg["data_kind"] == "point_cloud":
            parts = np.asarray(cfg.get("cloud_particles", np.arange(len(self.x0))))
            terms = [PointCloudTerm(rec, parts, self.dt, steps, t0, cfg["sigma"], self.penalty,
                                    name="point_cloud")]
            init = {"x": self.x0, "v": self.v0}
            return Experiment(name, init, steps, terms, t0=t0)
        pred = rec.select(self.pred_names)
        terms = [MarkerTerm(pred, self.map, self.dt, steps, t0, cfg["sigma"], self.penalty,
                            name="markers", first_frame=first_frame,
                            interpolation=cfg["interpolation"])]
        if rec.trial in self.forces:
            held = cfg.get("force_particles", self.kinematic)
            if held is None:
                raise D.DataError(cfg.get("force_data"), "force data need force_particles or "
                                  "kinematic_markers (whose reaction is measured)")
            obs = SpringReactionForce(self.scene.model, held)
            terms.append(ForceTerm(self.forces[rec.trial], obs, self.dt, steps, t0, cfg["force_sigma"],
                                   self.penalty, name="forces", first_frame=first_frame,
                                   interpolation=cfg["interpolation"]))
        use_data = cfg["initial_state"] == "data" or start > 0
        if cfg["data_kind"] == "rigid_poses":
            init = self._state_from_pose(rec, start)
        elif use_data:
            init = self._state_from_data(rec, start)
        else:
            init = {"x": self.x0, "v": self.v0}
        kin = self._kin_positions(rec, start, steps) if self.kin_names else None
        return Experiment(name, init, steps, terms, kinematic=kin, t0=t0)


def _chosen(recs: list, cfg: dict, path) -> list:
    """The trials ``[sysid] trials`` names (all when absent), in the data's order."""
    if "trials" not in cfg:
        return recs
    have = {r.trial for r in recs}
    unknown = [n for n in cfg["trials"] if n not in have]
    if unknown:
        raise D.DataError(path, f"[sysid] trials names trials {unknown[:5]} that the data do not "
                          f"have ({len(have)} trials: {', '.join([r.trial for r in recs][:10])}...)")
    keep = set(cfg["trials"])
    return [r for r in recs if r.trial in keep]


def build_experiments(scene, cfg: dict, base: Path, data_path) -> tuple[list, list, "_Builder"]:
    """(training experiments, held-out experiments, builder) from a data file."""
    b = _Builder(scene, cfg, base)
    if cfg["data_kind"] == "load_curve":
        from .load_curve import load_curve_experiments

        curve = D.load_load_curve(data_path, cfg["stretch_column"], cfg["stress_column"],
                                  "default:" + cfg["stress_unit"])
        train, held = load_curve_experiments(scene, cfg, curve, b.penalty, scene.path)
        return train, held, b
    if cfg["data_kind"] == "point_cloud":
        recs = D.load_point_clouds(data_path, "default:" + cfg["length_unit"],
                                   "default:" + cfg["time_unit"])
    elif cfg["data_kind"] == "rigid_poses":
        poses = D.load_rigid_poses(data_path, "default:" + cfg["length_unit"],
                                   "default:" + cfg["time_unit"])
        recs = b.rigid_setup(_chosen(poses, cfg, data_path))
    else:
        recs = D.load_markers(data_path, "default:" + cfg["length_unit"],
                              "default:" + cfg["time_unit"], cfg["missing"])
        b.marker_setup(recs[0])
    recs = _chosen(recs, cfg, data_path)
    by_name = {r.trial: r for r in recs}
    train_names, held_names = _split([r.trial for r in recs], cfg)
    train, held = [], []
    for name in train_names:
        rec = by_name[name]
        steps = b.steps_of(rec)
        if cfg["split"] == "time":
            steps = max(1, int(cfg["train_fraction"] * steps))
        w = cfg["window"]
        if w and cfg["data_kind"] in ("markers", "rigid_poses"):
            for k, start in enumerate(range(0, steps, w)):
                n = min(w, steps - start)
                train.append(b.experiment(rec, f"{name}/w{k}", start, n))
        else:
            train.append(b.experiment(rec, name, 0, steps))
    for name in held_names:
        rec = by_name[name]
        held.append(b.experiment(rec, name, 0, b.steps_of(rec)))
    if cfg["split"] == "time" and cfg["data_kind"] in ("markers", "rigid_poses"):
        for name in train_names:
            rec = by_name[name]
            steps = b.steps_of(rec)
            cut = max(1, int(cfg["train_fraction"] * steps))
            if cut < steps:
                held.append(b.experiment(rec, f"{name}/tail", 0, steps, first_frame=cut + 1))
    return train, held, b


def run_sysid(scene_path, data=None, out="out/sysid", resume: bool = False, progress: bool = True,
              max_iter: int | None = None, optimizer: str | None = None, log=print) -> dict:
    """Identify a scene's free parameters from data; writes ``out/report.json`` and plots.

    Args:
        scene_path: scene file with ``[[free]]`` tables and a ``[sysid]`` table.
        data: data file (overrides ``[sysid] data``; a relative path is relative to the
            working directory, whereas ``[sysid] data`` is relative to the scene file).
        out: output directory. resume: continue from ``out/checkpoint.json``.
        max_iter / optimizer: override ``[sysid]``.
    Returns:
        The report dict.
    """
    from ..scene import load_scene

    scene = load_scene(scene_path)
    cfg, base = sysid_config(scene), Path(scene.base_dir)
    if max_iter is not None:
        cfg["max_iter"] = int(max_iter)
    if optimizer is not None:
        cfg["optimizer"] = optimizer
    if data is not None:
        data_path = Path(data)
    elif "data" in cfg:
        data_path = _resolve(base, cfg["data"])
    else:
        raise D.DataError(scene_path, "no data file: pass --data or set [sysid] data")
    if not scene.free_params and not cfg["time_offset"]:
        raise D.DataError(scene_path, "the scene has no [[free]] parameters to fit")
    train, held, b = build_experiments(scene, cfg, base, data_path)
    specs = [ParamSpec.from_free(f) for f in scene.free_params]
    if cfg["time_offset"]:
        specs.append(ParamSpec(TIME_OFFSET, -cfg["offset_bound"], cfg["offset_bound"], init=0.0))
    record = ("x", "v") if b.forces else ("x",)
    problem = SysIDProblem(scene.solver, scene.dt, specs, train + held, record=record,
                           kinematic_particles=b.kinematic)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log(f"{scene.name}: {len(train)} training and {len(held)} held-out experiments from "
        f"{data_path}; fitting {', '.join(problem.labels)} with {cfg['optimizer']}")
    z0 = problem.initial_unit()
    # fit on the training experiments only (the held-out ones ride along in the problem
    # for evaluation, so the same solver and driver serve both)
    train_problem = _Subset(problem, train)
    result = fit(train_problem, cfg["optimizer"], z0=z0, max_iter=cfg["max_iter"], lr=cfg["lr"],
                 checkpoint=out / "checkpoint.json", resume=resume, progress=progress)
    # residuals along one trial are correlated by any model error: cluster by trial (a load
    # curve is one specimen, no independent trials: plain Gauss-Newton)
    cluster = None if cfg["data_kind"] == "load_curve" else (lambda e: e.name.split("/")[0])
    unc = gauss_newton(problem, result.z, experiments=train, cluster=cluster)
    ev_train = problem.evaluate(result.z, train, grad=False)
    ev_train0 = problem.evaluate(z0, train, grad=False)
    extra = {"scene": str(scene_path), "data": str(data_path), "optimizer": cfg["optimizer"],
             "split": cfg["split"], "loss": cfg["loss"], "dt": scene.dt,
             "train_initial": summarise(ev_train0, train),
             "trials": {"train": [e.name for e in train], "heldout": [e.name for e in held]}}
    heldout = None
    plot_exp, plot_ev = train[0], ev_train
    if held:
        ev_held = problem.evaluate(result.z, held, grad=False)
        ev_held0 = problem.evaluate(z0, held, grad=False)
        heldout = summarise(ev_held, held)
        extra["heldout_initial"] = summarise(ev_held0, held)
        term = held[0].terms[0].name
        if cfg["data_kind"] != "load_curve":  # a load curve has no time axis: see below
            curves = heldout_curves(ev_held, held, term)
            plot_error_over_time(out / "heldout_error.png", curves,
                                 "error [m]" if term != "forces" else "error [N]",
                                 f"{scene.name}: held-out {term} error (fitted)")
        plot_exp, plot_ev = held[0], ev_held
    if cfg["data_kind"] == "load_curve":
        from .load_curve import curve_report, plot_load_curve

        parts = {"train": (train, ev_train, ev_train0)}
        if held:
            parts["heldout"] = (held, ev_held, ev_held0)
        extra["load_curve"] = curve_report(parts)
        plot_load_curve(out / "stress_stretch.png", extra["load_curve"], f"{scene.name}: load curve")
    rep = build_report(problem, result, unc, summarise(ev_train, train), heldout, extra)
    plot_loss(out / "loss.png", result.history, f"{scene.name}: loss")
    first = plot_ev.terms[plot_exp.name][0]
    if first.predicted is not None and cfg["data_kind"] != "load_curve":
        names = plot_exp.terms[0].recording.names
        which = [n for n in cfg.get("plot_markers", names[:3]) if n in names]
        plot_markers(out / "markers.png", first, names, which, plot_exp.t0,
                     f"{scene.name}: {plot_exp.name}")
    write_report(out, rep)
    for w in unc.warnings:
        log(f"warning: {w}")
    return rep


class _Subset:
    """A view of a problem restricted to some experiments (what :func:`fit` optimises)."""

    def __init__(self, problem, experiments):
        self.problem, self.experiments = problem, experiments
        self.params, self.groups, self.shared = problem.params, problem.groups, problem.shared
        self.labels = problem.labels

    def initial_unit(self):
        return self.problem.initial_unit()

    def values(self, z):
        return self.problem.values(z)

    def value_dict(self, z):
        return self.problem.value_dict(z)

    def loss_and_grad(self, z):
        ev = self.problem.evaluate(z, self.experiments)
        return ev.loss, ev.grad

    def residual_vectors(self, z, experiments=None, sources=False):
        return self.problem.residual_vectors(z, self.experiments if experiments is None else experiments,
                                             sources)
