"""Train a 2D MPM soft walker to move right, through the differentiable simulator.

The robot is DiffTaichi's diffmpm walker (Hu et al., ICLR 2020) in SI units: a 0.3 x 0.1 m
body on four 0.05 x 0.1 m legs, each leg a muscle along the vertical with its own
actuation channel, on a frictional ground. The policy is open loop, a sum of sines per
actuator (DiffTaichi's controller):

    u_a(t) = tanh( sum_j w[a, j] sin(omega t + 2 pi j / J) + b[a] )

The loss is minus the mean x position of the robot's particles at the last frame.
``Rollout.backward`` gives dL/du for every step; the chain rule through ``tanh`` and the
sines gives dL/dw and dL/db, and Adam updates them. The final gait is written as a GIF.

    python examples/mpm/train_walker.py                # ~40 iterations
    python examples/mpm/train_walker.py --quick        # a few short iterations (tests)
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from diffsim.autodiff import Rollout
from diffsim.core import backend
from diffsim.io import plot_curves, render_frame_2d, write_gif
from diffsim.solvers.mpm import MPMBuilder, SolverMPM

N_SINES = 4


def build_walker(grid_res: int = 64, num_envs: int = 1):
    """The walker on a ``grid_res``^2 grid over [0, 1] m^2; returns (model, config)."""
    dx = 1.0 / grid_res
    b = MPMBuilder(dim=2, particle_spacing=dx / 2)
    ground = 3 * dx + 1e-3  # just above the bottom wall
    b.add_ground(height=ground, friction=0.5)
    material = dict(material="corotated", youngs_modulus=3e4, poisson_ratio=0.25, density=1000.0)
    x0, y0 = 0.1, ground + 0.005
    b.add_box([x0, y0 + 0.1], [0.3, 0.1], name="body", **material)
    for i, lx in enumerate((0.0, 0.05, 0.2, 0.25)):
        act = b.add_actuator_group(direction=[0.0, 1.0], strength=1.2e4)
        b.add_box([x0 + lx, y0], [0.05, 0.1], actuator=act, name=f"leg{i}", **material)
    cfg = SolverMPM.Config(grid_res=grid_res, substeps=8, boundary="separate")
    return b.finalize(num_envs), cfg


class SinePolicy:
    """``u[t, a] = tanh(sum_j w[a, j] sin(omega t dt + 2 pi j / J) + b[a])`` (numpy)."""

    def __init__(self, actuators: int, omega: float, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.w = 0.01 * rng.normal(size=(actuators, N_SINES))
        self.b = np.zeros(actuators)
        self.omega = omega

    def basis(self, steps: int, dt: float) -> np.ndarray:
        t = np.arange(steps)[:, None] * dt
        return np.sin(self.omega * t + 2 * np.pi * np.arange(N_SINES)[None] / N_SINES)  # [T, J]

    def actions(self, steps: int, dt: float) -> np.ndarray:
        """``[T, A]`` actuation in [-1, 1]."""
        return np.tanh(self.basis(steps, dt) @ self.w.T + self.b)

    def grads(self, dL_du: np.ndarray, steps: int, dt: float):
        """``(dL/dw, dL/db)`` from ``dL/du`` of shape ``[T, A]``."""
        u = self.actions(steps, dt)
        dz = dL_du * (1 - u * u)
        return dz.T @ self.basis(steps, dt), dz.sum(axis=0)


class Adam:
    def __init__(self, lr: float, shapes):
        self.lr, self.t = lr, 0
        self.m = [np.zeros(s) for s in shapes]
        self.v = [np.zeros(s) for s in shapes]

    def step(self, params, grads):
        self.t += 1
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m[:] = 0.9 * m + 0.1 * g
            v[:] = 0.999 * v + 0.001 * g * g
            p -= self.lr * (m / (1 - 0.9 ** self.t)) / (np.sqrt(v / (1 - 0.999 ** self.t)) + 1e-8)


def train(iters: int, steps: int, dt: float, grid_res: int, window: int, out: Path, lr: float = 0.1,
          gif_every: int = 4, verbose: bool = True) -> dict:
    model, cfg = build_walker(grid_res)
    solver = SolverMPM(model, cfg, window=min(window, steps))
    if dt / cfg.substeps > solver.max_stable_dt(cfl=0.6):
        raise ValueError(f"dt / substeps = {dt / cfg.substeps:g} s exceeds the stable substep "
                         f"{solver.max_stable_dt(cfl=0.6):g} s")
    rollout = Rollout(solver, steps, dt, record=("x",))
    policy = SinePolicy(model.counts["actuator"], omega=30.0)
    opt = Adam(lr, [policy.w.shape, policy.b.shape])
    init = model.initial_state()
    N = model.counts["particle"]
    losses = []
    for it in range(iters):
        t0 = time.perf_counter()
        acts = policy.actions(steps, dt)[:, None, :]
        traj = rollout.forward(init, actions=acts)
        loss = -float(traj["x"][-1, 0, :, 0].mean())
        cot = np.zeros_like(traj["x"])
        cot[-1, 0, :, 0] = -1.0 / N
        grads = rollout.backward({"x": cot})
        gw, gb = policy.grads(grads.actions[:, 0], steps, dt)
        opt.step([policy.w, policy.b], [gw, gb])
        losses.append(loss)
        if verbose:
            print(f"iter {it:3d}  loss {loss:+.5f} m  |dL/dw| {np.linalg.norm(gw):.2e}  "
                  f"{time.perf_counter() - t0:.2f} s", flush=True)
    # the final gait, drawn every few steps
    acts = policy.actions(steps, dt)[:, None, :]
    traj = rollout.forward(init, actions=acts)
    actuator = model.topology["particle_actuator"]
    frames = []
    for f in range(0, steps + 1, gif_every):
        u = acts[min(f, steps - 1), 0]
        level = np.where(actuator >= 0, u[np.maximum(actuator, 0)], 0.0)
        colors = np.stack([0.5 + 0.5 * level, 0.4 - 0.3 * np.abs(level), 0.5 - 0.5 * level], axis=1)
        frames.append(render_frame_2d(traj["x"][f, 0], colors=np.clip(colors, 0, 1), point_radius=1.5,
                                      bounds=(0.0, 1.0, 0.0, 0.5), size=(480, 240),
                                      colliders=[{"type": "plane", "point": [0.0, model.get("ground_height")[0]],
                                                  "normal": [0.0, 1.0]}],
                                      title=f"t = {f * dt:.2f} s"))
    out.mkdir(parents=True, exist_ok=True)
    write_gif(out / "walker.gif", frames, fps=20)
    plot_curves(out / "loss.png", {"loss [m]": losses}, xlabel="iteration", ylabel="-mean x")
    result = {"losses": losses, "w": policy.w.tolist(), "b": policy.b.tolist(),
              "steps": steps, "dt": dt, "grid_res": grid_res}
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--steps", type=int, default=200, help="control steps of a rollout")
    p.add_argument("--dt", type=float, default=4e-3, help="control step [s] (8 substeps)")
    p.add_argument("--grid", type=int, default=64, help="grid nodes per axis")
    p.add_argument("--window", type=int, default=50, help="checkpoint segment [steps]")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--out", type=Path, default=Path("out/mpm_walker"))
    p.add_argument("--quick", action="store_true", help="3 short iterations on a coarse grid")
    args = p.parse_args(argv)
    if backend.info() is None:
        backend.init(arch="cpu", precision="float32")
    if args.quick:
        args.iters, args.steps, args.grid, args.window = 3, 40, 32, 20
    result = train(args.iters, args.steps, args.dt, args.grid, args.window, args.out, args.lr)
    print(f"loss {result['losses'][0]:+.4f} -> {result['losses'][-1]:+.4f} m; wrote {args.out}/walker.gif")
    return result


if __name__ == "__main__":
    main()
