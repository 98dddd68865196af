"""Trajectory optimisation of a kinematic pusher: slide a soft block to a target.

A soft block (a braced mass-spring lattice, 5 x 4 particles, 0.4 kg) rests on a frictional
ground plane (mu = 0.5). A kinematic box collider to its left moves with a piecewise-
constant velocity (``KNOTS`` pieces over the horizon), and we optimise those velocities so
that the block's centre ends ``TARGET`` metres to the right, with a small penalty on the
pusher's speed. The loss gradient flows through the contact (penalty force with smoothed
friction) into the pusher's pose controls, then through the trajectory helpers of
:mod:`diffsim.contact.trajectory` into the velocity knots; the optimiser is Adam.

The block is a mass-spring lattice rather than an FEM body: the FEM solver does not take
collider controls yet (docs/contact.md says how it will).

    python examples/contact/push_block.py               # 40 iterations, out/push_block/
    python examples/contact/push_block.py --quick       # a few iterations (the test)

Writes ``push_block.gif`` (the optimised push) and ``loss.json``; prints ``RESULT {json}``.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from diffsim.autodiff import Rollout
from diffsim.contact import render_colliders, static_trajectory, trajectory_controls, trajectory_controls_grad
from diffsim.core import backend
from diffsim.core.builder import MassSpringBuilder
from diffsim.io import render_frame_2d, save_json_atomic, write_gif
from diffsim.solvers import SolverMassSpring

DT, SUBSTEPS = 2e-3, 2
TARGET = 0.15      # m the block's centre should travel
KNOTS = 6          # pieces of constant pusher velocity
PUSHER = 1         # collider index of the pusher (0 is the ground)


def build(steps: int):
    """The block, the ground and the pusher; returns ``(model, solver, block particle ids)``."""
    b = MassSpringBuilder(dim=2)
    contact = dict(stiffness=4e3, damping=8.0, friction=0.5, smoothing=1e-3, friction_smoothing=0.02)
    b.add_collider_plane(normal=[0.0, 1.0], point=[0.0, 0.0], name="ground", **contact)
    b.add_collider_box([0.04, 0.06], position=[-0.08, 0.065], kinematic=True, name="pusher", **contact)
    # 4 x 3 braced cells of 5 cm, resting on the ground at its contact equilibrium
    ids = b.add_grid_robot([(i, j, False) for i in range(4) for j in range(3)], cell_size=0.05,
                           origin=[0.0, 0.0], stiffness=3e3, damping=1.0, actuation=0.0, mass=0.02)
    for i in ids:
        b.positions[i][1] += 0.002
    model = b.finalize()
    solver = SolverMassSpring(model, SolverMassSpring.Config(substeps=SUBSTEPS), window=steps)
    return model, solver, np.asarray(ids)


def pusher_path(model, knots: np.ndarray, steps: int):
    """Pose trajectory (frames 0..T) of every collider, the pusher moving with ``knots``
    ``[KNOTS, 2]`` [m/s]; also the map from knots to per-step velocities."""
    per_step = np.repeat(np.arange(len(knots)), -(-steps // len(knots)))[:steps]
    traj = static_trajectory(model, steps)
    vel = knots[per_step]                                    # [T, 2]
    traj["position"][1:, 0, PUSHER] += DT * np.cumsum(vel, axis=0)
    return traj, per_step


def loss_and_grad(model, rollout, ids, knots, steps, weight=1e-4):
    """Loss = (block centre travel - TARGET)^2 + weight * mean pusher speed^2, and d/dknots."""
    traj, per_step = pusher_path(model, knots, steps)
    x0 = model.initial_state()
    out = rollout.forward(x0, controls=trajectory_controls(traj["position"], traj["rotation"], DT))
    x = out["x"]
    centre0 = x[0, 0, ids, 0].mean()
    travel = x[-1, 0, ids, 0].mean() - centre0
    loss = (travel - TARGET) ** 2 + weight * np.mean(knots ** 2)
    cot = np.zeros_like(x)
    cot[-1, 0, ids, 0] = 2 * (travel - TARGET) / len(ids)
    grads = rollout.backward({"x": cot})
    g_traj = trajectory_controls_grad(grads.controls, traj["position"], traj["rotation"], DT)
    g_pos = g_traj["position"][1:, 0, PUSHER]                # d/d(position at frames 1..T)
    g_vel = DT * np.cumsum(g_pos[::-1], axis=0)[::-1]        # position_t = p0 + dt sum_{s<t} v_s
    g_knots = np.zeros_like(knots)
    np.add.at(g_knots, per_step, g_vel)
    g_knots += 2 * weight * knots / knots.size
    return loss, g_knots, travel, out


def render_gif(path, model, ids, springs, traj, x, every: int = 5):
    frames = []
    bounds = (-0.2, 0.5, -0.05, 0.3)
    for f in range(0, len(x), every):
        dicts = render_colliders(model, traj["position"][f], traj["rotation"][f])
        frames.append(render_frame_2d(x[f, 0], springs=springs, colliders=dicts, bounds=bounds,
                                      size=(360, 180)))
    return write_gif(path, frames, fps=25)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few iterations (tests)")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--out", default="out/push_block")
    args = parser.parse_args(argv)
    if backend.info() is None:
        backend.init(arch="cpu", precision="float64")
    steps = 80 if args.quick else 150
    iterations = args.iterations or (3 if args.quick else 40)
    model, solver, ids = build(steps)
    rollout = Rollout(solver, steps, DT, record=("x",))
    knots = np.tile([0.6, 0.0], (KNOTS, 1))                 # start: a gentle push right
    m, v, lr = np.zeros_like(knots), np.zeros_like(knots), 0.05
    history = []
    for it in range(iterations):
        loss, g, travel, _ = loss_and_grad(model, rollout, ids, knots, steps)
        history.append(float(loss))
        print(f"iter {it:3d}  loss {loss:.3e}  block travel {travel * 100:6.2f} cm")
        m = 0.9 * m + 0.1 * g                                # Adam (Kingma and Ba 2015)
        v = 0.999 * v + 0.001 * g * g
        step = lr / (1.0 + 0.1 * it)                         # decay: settle instead of orbit
        knots = knots - step * (m / (1 - 0.9 ** (it + 1))) / (np.sqrt(v / (1 - 0.999 ** (it + 1))) + 1e-12)
    loss, _, travel, out = loss_and_grad(model, rollout, ids, knots, steps)
    history.append(float(loss))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    traj, _ = pusher_path(model, knots, steps)
    gif = render_gif(out_dir / "push_block.gif", model, ids, model.topology["spring_indices"], traj, out["x"])
    result = {"loss": history, "travel": float(travel), "target": TARGET, "knots": knots.tolist(),
              "gif": str(gif)}
    save_json_atomic(out_dir / "loss.json", result)
    print("RESULT " + json.dumps({k: result[k] for k in ("loss", "travel", "target")}))
    return result


if __name__ == "__main__":
    main()
