"""``diffsim eval``: roll a trained controller out under commands that change mid-rollout.

Two evaluations of a controller exported by ``diffsim train`` (``controller.npz``):

* :func:`tracking_table`: one environment per commanded velocity in ``[training]
  eval_velocities``, constant over the rollout; the achieved velocity is the COM velocity
  averaged over the late part (the same window as training's loss), and the table reports
  the relative error ``|v - v_cmd| / |v_cmd|`` per command and its mean;
* :func:`schedule_outputs`: one more environment follows a schedule that speeds up, stops
  and (3D) turns; writes ``eval.gif`` (the robot, springs coloured by actuation) and
  ``eval_tracking.png`` (commanded vs achieved velocity and height over time, achieved
  values smoothed over a moving window of ``smooth`` seconds).

All environments run in one batched rollout (:func:`rollout_eval`).

The command schedule is a ``[T, B, C]`` array the controller reads by global step
(:meth:`ControllerSineMLP.set_commands`).
"""

from pathlib import Path

import numpy as np

from ..autodiff import Rollout
from ..io import plot_curves, render_frame_2d, render_frame_3d, save_json_atomic, write_gif
from .checkpoint import load_controller_file
from .controller import ControllerSineMLP
from .losses import LossSpec, com_weights, locomotion_loss, relative_speed_error
from .scene import RobotScene, read_robot_scene


def default_schedule(names: list[str], steps: int, training: dict) -> np.ndarray:
    """Commands per step ``[T, C]``: speed up, stop, and (with heading) turn, in equal parts.

    Velocity: 40% then 100% of the top of ``velocity_range``, then 0 (stop), then 70%;
    height: mid-range; heading: 0, then +0.5 of the range's top in the last part.
    """
    vmax = float(training["velocity_range"][1])
    parts = [0.4 * vmax, vmax, 0.0, 0.7 * vmax]
    cuts = np.linspace(0, steps, len(parts) + 1).astype(int)
    out = np.zeros((steps, len(names)))
    for p, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
        for c, n in enumerate(names):
            if n == "velocity":
                out[a:b, c] = parts[p]
            elif n == "height":
                out[a:b, c] = float(np.mean(training["height_range"]))
            elif n == "heading":
                out[a:b, c] = 0.5 * float(training["heading_range"][1]) if p == len(parts) - 1 else 0.0
    return out


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    """Trailing moving average over ``n`` samples (the first samples average what exists)."""
    c = np.cumsum(np.concatenate([[0.0], y]))
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(0, idx - n)
    return (c[idx] - c[lo]) / (idx - lo)


def constant_commands(names: list[str], velocities, training: dict) -> np.ndarray:
    """Commands ``[n, C]``: the given velocities, mid-range heights, zero headings."""
    cmd = np.zeros((len(velocities), len(names)))
    for c, n in enumerate(names):
        if n == "velocity":
            cmd[:, c] = velocities
        elif n == "height":
            cmd[:, c] = float(np.mean(training["height_range"]))
    return cmd


def rollout_eval(robot: RobotScene, controller_path, steps: int | None = None,
                 schedule: np.ndarray | None = None) -> dict:
    """One batched rollout: environments ``0..n-1`` hold the constant ``eval_velocities``,
    the last one follows ``schedule`` ``[T, C]`` (default :func:`default_schedule`).

    Returns ``{"scene", "names", "velocities", "schedule" [T, B, C], "record"}``.
    """
    config, params = load_controller_file(controller_path)
    names = config["_meta"].get("commands", robot.command_names)
    T = int(steps or robot.training.get("eval_steps") or 3 * robot.steps())
    velocities = robot.eval_velocities()
    if schedule is None:
        schedule = default_schedule(names, T, robot.training)
    schedule = np.asarray(schedule, np.float64).reshape(T, len(names))
    B = len(velocities) + 1
    scene = robot.load(B, steps=T)  # forward only: any window will do
    ctrl = ControllerSineMLP.from_config(scene.solver, config, command_steps=T)
    ctrl.set_params(params)
    full = np.empty((T, B, len(names)))
    full[:, :-1] = constant_commands(names, velocities, robot.training)[None]
    full[:, -1] = schedule
    ctrl.set_commands(full)
    rec = Rollout(scene.solver, T, scene.dt, record=("x", "v"), controller=ctrl).forward(
        scene.initial_state)
    return {"scene": scene, "names": names, "velocities": velocities, "schedule": full,
            "record": rec}


def tracking_table(robot: RobotScene, ev: dict) -> dict:
    """Relative velocity error of the constant-command environments of :func:`rollout_eval`."""
    scene, rec, n = ev["scene"], ev["record"], len(ev["velocities"])
    spec = LossSpec(start=robot.training["loss_start"], windows=1)
    weights = com_weights(scene.model.get("particle_mass"))[:n]
    _, _, _, m = locomotion_loss(rec["x"][:, :n], rec["v"][:, :n], weights,
                                 ev["schedule"][:, :n], ev["names"], spec)
    err = relative_speed_error(m, scene.dim)[0]
    av = m["achieved_velocity"][0]
    achieved = av[:, 0] if scene.dim == 2 else np.linalg.norm(av[:, :2], axis=1)
    return {"commanded": list(ev["velocities"]), "achieved": achieved.tolist(),
            "rel_error": err.tolist(), "mean_rel_error": float(np.nanmean(err)),
            "steps": len(ev["schedule"]), "dt": scene.dt}


def schedule_outputs(robot: RobotScene, ev: dict, out_dir, smooth: float = 0.5,
                     gif_every: int = 0) -> dict:
    """``eval.gif`` and ``eval_tracking.png`` of the scheduled (last) environment."""
    out_dir = Path(out_dir)
    scene, rec, names = ev["scene"], ev["record"], ev["names"]
    schedule = ev["schedule"][:, -1]
    T = len(schedule)
    w = com_weights(scene.model.get("particle_mass"))[-1]
    com_v = np.einsum("fnd,n->fd", rec["v"][1:, -1], w)
    com_h = np.einsum("fn,n->f", rec["x"][1:, -1, :, -1], w)
    n = max(1, int(round(smooth / scene.dt)))
    t = np.arange(1, T + 1) * scene.dt
    curves = {}
    if "velocity" in names:
        speed = com_v[:, 0] if scene.dim == 2 else np.linalg.norm(com_v[:, :2], axis=1)
        curves["commanded velocity [m/s]"] = schedule[:, names.index("velocity")]
        curves[f"achieved velocity [m/s] ({smooth:g} s mean)"] = _smooth(speed, n)
    if "height" in names:
        curves["commanded height [m]"] = schedule[:, names.index("height")]
    curves[f"achieved height [m] ({smooth:g} s mean)"] = _smooth(com_h, n)
    if "heading" in names:
        curves["commanded heading [rad]"] = schedule[:, names.index("heading")]
        curves["velocity direction [rad]"] = _smooth(np.arctan2(com_v[:, 1], com_v[:, 0]), n)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_curves(out_dir / "eval_tracking.png", curves, x=t, xlabel="time [s]", ylabel="",
                title=f"{robot.name}: commanded vs achieved")
    _write_gif(scene, {"x": rec["x"][:, -1], "actions": rec["actions"][:, -1]},
               out_dir / "eval.gif", gif_every)
    return {"steps": T, "dt": scene.dt, "commands": names,
            "curves": {k: np.asarray(v)[::max(1, n // 4)].tolist() for k, v in curves.items()}}


def _write_gif(scene, rec: dict, path: Path, every: int) -> None:
    x, act = rec["x"], rec["actions"]
    every = every or max(1, int(round(1 / (25 * scene.dt))))
    drawing = scene.drawing()
    lines = drawing.get("lines")
    colliders = scene.colliders()
    frames = []
    if scene.dim == 2:
        lo, hi = x[..., 0].min() - 0.1, x[..., 0].max() + 0.1
        bottom = min(x[..., 1].min(), *(c["point"][1] for c in colliders if c["type"] == "plane")) - 0.05
        top = x[..., 1].max() + 0.1
        for f in range(0, len(x), every):
            colors = None
            if lines is not None and "line_actuator" in drawing:
                la = drawing["line_actuator"]
                a = act[min(f, len(act) - 1)]
                colors = np.where(la >= 0, a[np.maximum(la, 0)], 0.0)
            frames.append(render_frame_2d(x[f], springs=lines, spring_colors=colors,
                                          colliders=colliders, bounds=(lo, hi, bottom, top),
                                          size=(640, 240), point_radius=2.0,
                                          title=f"t = {f * scene.dt:.2f} s"))
    else:
        for f in range(0, len(x), every):
            frames.append(render_frame_3d(x[f], springs=lines, colliders=colliders, size=(480, 360), up="z",
                                          title=f"t = {f * scene.dt:.2f} s"))
    write_gif(path, frames, fps=25)


def evaluate(scene_path, controller_path, out_dir=None, steps: int | None = None) -> dict:
    """The tracking table and the schedule outputs; writes ``eval.json``, ``eval.gif`` and
    ``eval_tracking.png`` into ``out_dir`` (default: the controller file's directory).
    Returns the ``eval.json`` dict."""
    robot = read_robot_scene(scene_path)
    out_dir = Path(out_dir) if out_dir is not None else Path(controller_path).parent
    ev = rollout_eval(robot, controller_path, steps)
    result = {"scene": str(scene_path), "controller": str(controller_path),
              "tracking": tracking_table(robot, ev), "schedule": schedule_outputs(robot, ev, out_dir)}
    save_json_atomic(out_dir / "eval.json", result)
    return result
