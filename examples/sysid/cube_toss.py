"""Real data: contact parameters of a tossed cube (ContactNets, Pfrommer et al. CoRL 2020).

550 real tosses of a 10.48 cm, 0.37 kg cube onto a table, tracked at 148 Hz
(assets/contactnets_cube_toss/, BSD-3-Clause, see its README.txt and LICENSE). The cube is
simulated as a near-rigid mass-spring body: 8 corner particles and a centre particle whose
masses reproduce the cube's mass and rotational inertia (corners 4 m_c a^2 = I), joined by
all 36 pair springs (k = 5 kN/m: at most ~0.5 mm of deformation at impact), with the
engine's penalty ground contact and smoothed Coulomb friction at the corners.

Fitted (on tosses 0-399, or the subset ``--train``): the friction coefficient, the
contact's normal stiffness and damping, and the vertical gravity ``g``, which absorbs the
data set's time-scale error (the README measures g = 9.62 m/s^2 from free flight at the
nominal 148 Hz: a 1 % error of the clock; simulating in the data's clock with ``g`` free
is exactly equivalent to fitting the time scale). The loss compares the 8 simulated
corners with the corners of the measured pose (virtual markers) on short windows (``--window``
steps, each restarted from the measured state), because a toss is chaotic: after an edge
impact two nearby states land on different faces, and a whole-toss loss would be
dominated by that bifurcation rather than by the contact parameters.

Held out: tosses 400-549, each simulated whole from its first measured state (pose, linear
and body-frame angular velocity -> particle states), reporting position and orientation
error over time and at rest, for the prior (mu = 0.15, k = 1 kN/m, d = 20 N s/m,
g = 9.81 m/s^2) and the fitted parameters.

    python examples/sysid/cube_toss.py --out out/sysid_cube      # ~40 min on a busy 2-core machine
    python examples/sysid/cube_toss.py --short --out /tmp/cube              # the test's quick run
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "assets" / "contactnets_cube_toss" / "cube_tosses.npz"
PRIOR = {"ground_friction": 0.15, "ground_stiffness": 1000.0, "ground_damping": 20.0,
         "gravity": -9.81}
SPRING_K, SPRING_C, SUBSTEPS = 5e3, 1.0, 10


def load_tosses(path=DATA):
    """(list of ``[T_i, 13]`` states, dt [s], side [m], mass [kg], inertia [kg m^2])."""
    from diffsim.sysid import DataError

    with np.load(path, allow_pickle=False) as z:
        states, off = z["states"].astype(np.float64), z["offsets"]
        meta = float(z["dt"]), float(z["cube_side_m"]), float(z["cube_mass_kg"]), float(z["cube_inertia_kgm2"])
    if not np.all(np.isfinite(states)):
        row = int(np.argmax(~np.isfinite(states).all(axis=1)))
        raise DataError(path, "non-finite state", row, "states")
    return [states[off[i]:off[i + 1]] for i in range(len(off) - 1)], *meta


def cube_body(side: float, mass: float, inertia: float):
    """Body-frame particle positions ``[9, 3]`` (8 corners, centre) and masses ``[9]``.

    Corner masses m_k give I = 4 m_k a^2 about every face axis; the centre takes the rest.
    """
    h = side / 2
    corners = np.array([[i, j, k] for i in (-h, h) for j in (-h, h) for k in (-h, h)])
    m_k = inertia / (4 * side * side)
    return np.vstack([corners, np.zeros((1, 3))]), np.r_[np.full(8, m_k), mass - 8 * m_k]


def build_solver(num_envs: int, window: int, body, masses):
    from diffsim.core.builder import MassSpringBuilder
    from diffsim.solvers.mass_spring import SolverMassSpring

    b = MassSpringBuilder(dim=3, gravity=[0.0, 0.0, PRIOR["gravity"]])
    for p, m in zip(body, masses):
        b.add_particle(p, mass=m)
    for i in range(len(body)):
        for j in range(i + 1, len(body)):
            b.add_spring(i, j, SPRING_K, SPRING_C)
    b.add_ground(height=0.0, stiffness=PRIOR["ground_stiffness"], damping=PRIOR["ground_damping"],
                 friction=PRIOR["ground_friction"], smoothing=1e-4, friction_smoothing=0.02)
    model = b.finalize(num_envs=num_envs)
    return SolverMassSpring(model, SolverMassSpring.Config(substeps=SUBSTEPS), window=window)


def corner_recording(states, dt, body, trial: str):
    from diffsim.sysid import Recording
    from diffsim.sysid.rigid import rigid_particles

    x, _ = rigid_particles(states[:, 0:4], states[:, 4:7], states[:, 7:10], states[:, 10:13], body[:8])
    t = dt * np.arange(len(states))
    return Recording("markers", t, x, [f"c{i}" for i in range(8)], np.ones(x.shape[:2], bool),
                     str(DATA), trial)


def experiments(tosses, ids, dt, body, window: int, sigma: float = 2e-3):
    """Windows of ``window`` steps (``0``: whole tosses), each starting from the measured state."""
    from diffsim.sysid import Experiment, MarkerTerm, map_explicit
    from diffsim.sysid.rigid import rigid_particles

    mmap = map_explicit(np.arange(8), [f"c{i}" for i in range(8)], len(body))
    out = []
    for i in ids:
        st = tosses[i]
        rec = corner_recording(st, dt, body, str(i))
        n = len(st) - 1
        starts = range(0, n, window) if window else [0]
        for s in starts:
            steps = min(window, n - s) if window else n
            if steps < 4:
                continue
            x0, v0 = rigid_particles(st[s, 0:4], st[s, 4:7], st[s, 7:10], st[s, 10:13], body)
            term = MarkerTerm(rec, mmap, dt, steps, t0=s * dt, sigma=sigma, name="corners")
            out.append(Experiment(f"{i}/{s}", {"x": x0, "v": v0}, steps, [term], t0=s * dt))
    return out


def params():
    from diffsim.sysid import ParamSpec

    return [ParamSpec("ground_friction", 0.01, 1.5, init=PRIOR["ground_friction"]),
            ParamSpec("ground_stiffness", 100.0, 1e5, "log", init=PRIOR["ground_stiffness"]),
            ParamSpec("ground_damping", 0.5, 500.0, "log", init=PRIOR["ground_damping"]),
            ParamSpec("gravity", -10.5, -9.0, index=2, init=PRIOR["gravity"])]


def heldout_errors(problem, z, tosses, ids, dt, body, masses):
    """Position [m] and orientation [rad] error per toss and frame, whole-toss rollouts."""
    from diffsim.sysid.rigid import kabsch, quat_to_matrix, rotation_angle

    exps = experiments(tosses, ids, dt, body, window=0)
    ev = problem.evaluate(z, exps, grad=False, keep_trajectories=True)
    pos, ang = [], []
    for e, i in zip(exps, ids):
        st = tosses[i]
        x = ev.trajectories[e.name]["x"]
        R, t = kabsch(body, x, masses)
        pos.append(np.linalg.norm(t - st[:, 4:7], axis=1))
        ang.append(rotation_angle(R, quat_to_matrix(st[:, 0:4])))
    return pos, ang


def _stats(curves, min_count: int = 20):
    """Median and quartiles over tosses per frame, up to the last frame that at least
    ``min_count`` tosses reach (tosses have different lengths)."""
    n = max(len(c) for c in curves)
    pad = np.full((len(curves), n), np.nan)
    for k, c in enumerate(curves):
        pad[k, :len(c)] = c
    n = max(1, int(np.sum(np.sum(np.isfinite(pad), 0) >= min(min_count, len(curves)))))
    pad = pad[:, :n]
    return np.nanmedian(pad, 0), np.nanpercentile(pad, 25, 0), np.nanpercentile(pad, 75, 0)


def summary(pos, ang) -> dict:
    final_p = np.array([p[-1] for p in pos])
    final_a = np.degrees([a[-1] for a in ang])
    allp = np.concatenate(pos)
    alla = np.degrees(np.concatenate(ang))
    return {"tosses": len(pos),
            "position_rmse_m": float(np.sqrt(np.mean(allp ** 2))),
            "position_median_m": float(np.median(allp)),
            "orientation_median_deg": float(np.median(alla)),
            "rest_position_median_m": float(np.median(final_p)),
            "rest_position_iqr_m": [float(np.percentile(final_p, 25)), float(np.percentile(final_p, 75))],
            "rest_orientation_median_deg": float(np.median(final_a)),
            "rest_same_face_fraction": float(np.mean(final_a < 45.0))}


def parse_ids(text: str) -> list[int]:
    """``"0:400:2"`` (a range) or ``"3,5,8"``."""
    if ":" in text:
        return list(range(*[int(v) for v in text.split(":")]))
    return [int(v) for v in text.split(",") if v]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="out/sysid_cube")
    ap.add_argument("--train", default="0:400", help="training tosses, 'a:b[:step]' or a list")
    ap.add_argument("--heldout", default="400:550", help="held-out tosses")
    ap.add_argument("--window", type=int, default=20, help="steps per fitting window")
    ap.add_argument("--batch", type=int, default=400, help="environments simulated together")
    ap.add_argument("--max-iter", type=int, default=15)
    # LM: the loss is very flat along g and L-BFGS-B stops early there (docs/sysid_results.md)
    ap.add_argument("--optimizer", default="lm", choices=("lbfgsb", "adam", "lm"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--short", action="store_true", help="a few tosses and iterations (tests)")
    args = ap.parse_args(argv)
    if args.short:
        args.train, args.heldout, args.window, args.batch, args.max_iter = "0:20:10", "400:402", 20, 12, 1
    from diffsim.core import backend

    if backend.info() is None:
        backend.init(arch="cpu", precision="float64")
    from diffsim.sysid import SysIDProblem, fit, gauss_newton
    from diffsim.sysid.report import (
        build_report,
        plot_error_over_time,
        plot_loss,
        plot_markers,
        summarise,
        write_report,
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tosses, dt, side, mass, inertia = load_tosses()
    body, masses = cube_body(side, mass, inertia)
    train_ids, held_ids = parse_ids(args.train), parse_ids(args.heldout)
    if max(train_ids + held_ids) >= len(tosses):
        raise SystemExit(f"toss ids must be < {len(tosses)}")
    longest = max(len(tosses[i]) for i in held_ids) - 1
    solver = build_solver(max(args.batch, len(held_ids)), min(40, longest), body, masses)
    train = experiments(tosses, train_ids, dt, body, args.window)
    specs = params()
    problem = SysIDProblem(solver, dt, specs, train)
    print(f"{len(train)} windows of <= {args.window} steps from {len(train_ids)} training tosses; "
          f"{len(held_ids)} held-out tosses; batch {solver.model.num_envs}")
    t0 = time.time()
    z0 = problem.initial_unit()
    result = fit(problem, args.optimizer, z0=z0, max_iter=args.max_iter,
                 checkpoint=out / "checkpoint.json", resume=args.resume, progress=not args.short)
    # windows of one toss share its model error: the cluster-robust std treats each toss,
    # not each sample, as an independent observation
    unc = gauss_newton(problem, result.z, cluster=lambda e: e.name.split("/")[0])
    fit_seconds = time.time() - t0
    ev_train = problem.evaluate(result.z, train, grad=False)
    ev_train0 = problem.evaluate(z0, train, grad=False)
    held = {}
    curves, band, acurves = {}, {}, {}
    for label, z in (("prior", z0), ("fitted", result.z)):
        pos, ang = heldout_errors(problem, z, tosses, held_ids, dt, body, masses)
        held[label] = summary(pos, ang)
        med, lo, hi = _stats(pos)
        t = dt * np.arange(len(med))
        curves[f"{label}: median position error"] = (t, med)
        band[f"{label}: inter-quartile range"] = (t, lo, hi)
        amed = _stats([np.degrees(a) for a in ang])
        acurves[f"{label}: median orientation error"] = (dt * np.arange(len(amed[0])), amed[0])
        held[label]["orientation_median_curve_deg"] = amed[0][:: max(1, len(t) // 40)].tolist()
        held[label]["position_median_curve_m"] = med[:: max(1, len(t) // 40)].tolist()
    plot_error_over_time(out / "heldout_error.png", curves, "position error [m]",
                         f"held-out tosses {args.heldout}: whole-toss rollouts", band)
    plot_error_over_time(out / "heldout_orientation.png", acurves, "orientation error [deg]",
                         f"held-out tosses {args.heldout}: whole-toss rollouts")
    plot_loss(out / "loss.png", result.history, "cube toss: window loss")
    first = train[0]
    plot_markers(out / "markers.png", ev_train.terms[first.name][0], first.terms[0].recording.names,
                 ["c0", "c7"], first.t0, f"training window {first.name}")
    extra = {"data": str(DATA.relative_to(ROOT)), "train_tosses": args.train,
             "heldout_tosses": args.heldout, "window_steps": args.window, "dt": dt,
             "model": {"particles": "8 corners + centre", "corner_mass_kg": float(masses[0]),
                       "centre_mass_kg": float(masses[-1]), "spring_stiffness": SPRING_K,
                       "spring_damping": SPRING_C, "substeps": SUBSTEPS},
             "prior": PRIOR, "train_initial": summarise(ev_train0, train),
             "heldout_whole_toss": held, "seconds": round(fit_seconds, 1)}
    rep = build_report(problem, result, unc, summarise(ev_train, train), None, extra)
    for lab in ("train", "train_initial"):
        rep[lab].pop("per_experiment", None)  # thousands of windows: keep the report readable
    write_report(out, rep)
    print(json.dumps({k: rep["parameters"][k]["value"] for k in rep["parameters"]}, indent=1))
    for label in ("prior", "fitted"):
        h = held[label]
        print(f"held-out {label}: position RMSE {h['position_rmse_m']:.4f} m, at rest median "
              f"{h['rest_position_median_m']:.4f} m, orientation at rest median "
              f"{h['rest_orientation_median_deg']:.1f} deg, same face {h['rest_same_face_fraction']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
