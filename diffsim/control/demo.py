"""``make demo``: teach the default 2D mass-spring walker to walk right.

The walker (DiffTaichi's mass-spring robot, ``scenes/mass_spring_walker.toml``) is driven
by a :class:`~diffsim.control.ControllerSineMLP` running inside the simulation loop. Each
iteration rolls the robot out, takes the loss ``L = -mean_i x_i(T)`` (move the centre of
mass right), back-propagates it through every step (contact included) to the controller
weights, and takes an Adam step. The demo writes into ``out_dir``:

* ``before.gif`` and ``after.gif``: the gait before and after training;
* ``loss.png``: the loss curve;
* ``metrics.json``: loss history, distance walked, timings.
"""

import time
from pathlib import Path

import numpy as np

from ..autodiff import Rollout
from ..io import plot_curves, render_frame_2d, save_json_atomic, write_gif
from .controller import ControllerSineMLP
from .optim import Adam, clip_by_global_norm

DEFAULT_SCENE = Path(__file__).resolve().parents[2] / "scenes" / "mass_spring_walker.toml"


def render_walker(model, xs, acts=None, every: int = 8, size=(400, 300)) -> list[np.ndarray]:
    """Frames of a 2D mass-spring rollout: ``xs`` [T+1, N, 2], ``acts`` [T, A] (colours)."""
    springs = model.topology["spring_indices"]
    actuator = model.topology["spring_actuator"]
    ground = float(model.get("ground_height")[0]) if model.meta.get("has_ground") else None
    colliders = [{"type": "plane", "point": [0.0, ground], "normal": [0.0, 1.0]}] if ground is not None else []
    lo, hi = xs[..., 0].min() - 0.1, xs[..., 0].max() + 0.1
    top = xs[..., 1].max() + 0.1
    bottom = (ground if ground is not None else xs[..., 1].min()) - 0.05
    frames = []
    for t in range(0, len(xs), every):
        colors = None
        if acts is not None:
            a = acts[min(t, len(acts) - 1)]
            colors = np.where(actuator >= 0, a[np.maximum(actuator, 0)], 0.0)
        frames.append(render_frame_2d(xs[t], springs=springs, spring_colors=colors,
                                      colliders=colliders, bounds=(lo, hi, bottom, top), size=size))
    return frames


def run_demo(out_dir="out/demo", iters: int = 80, scene=DEFAULT_SCENE, lr: float = 0.05,
             clip: float = 1.0, seed: int = 0, progress: bool = True) -> dict:
    """Train the walker and write the GIFs, the loss curve and ``metrics.json``.

    Returns the metrics dict (also written to ``out_dir/metrics.json``).
    """
    from tqdm import tqdm

    from ..scene import load_scene

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    sc = load_scene(scene, num_envs=1)
    model, solver, dt, steps = sc.model, sc.solver, sc.dt, sc.steps
    ctrl = ControllerSineMLP(solver, dt=dt, seed=seed)
    rollout = Rollout(solver, steps, dt, controller=ctrl)
    init = sc.initial_state
    n = model.counts["particle"]

    def evaluate():
        rec = rollout.forward(init)
        return rec, -float(rec["x"][-1, :, :, 0].mean())

    rec, loss0 = evaluate()
    t_first = time.perf_counter() - t_start
    write_gif(out / "before.gif", render_walker(model, rec["x"][:, 0], rec["actions"][:, 0]), fps=25)
    opt = Adam(lr=lr)
    losses = []
    bar = tqdm(range(iters), desc="training walker", disable=not progress, unit="it")
    t_train = time.perf_counter()
    for _ in bar:
        rec = rollout.forward(init)
        loss = -float(rec["x"][-1, :, :, 0].mean())
        gx = np.zeros_like(rec["x"])
        gx[-1, :, :, 0] = -1.0 / n
        grads = rollout.backward({"x": gx}).controller
        grads, norm = clip_by_global_norm(grads, clip)
        ctrl.set_params(opt.step(ctrl.get_params(), grads))
        losses.append(loss)
        bar.set_postfix(loss=f"{loss:.4f}", grad=f"{norm:.2e}")
    train_seconds = time.perf_counter() - t_train
    rec, loss_final = evaluate()
    losses.append(loss_final)
    write_gif(out / "after.gif", render_walker(model, rec["x"][:, 0], rec["actions"][:, 0]), fps=25)
    plot_curves(out / "loss.png", {"loss = -mean x(T) [m]": losses}, title="walker training")
    start_x = float(init["x"][0, :, 0].mean())
    metrics = {
        "scene": str(scene), "iterations": iters, "steps": steps, "dt": dt,
        "loss_history": losses, "initial_loss": loss0, "final_loss": loss_final,
        "distance_walked_m": -loss_final - start_x,
        "seconds_to_first_rollout": t_first, "seconds_per_iteration": train_seconds / max(iters, 1),
    }
    save_json_atomic(out / "metrics.json", metrics)
    if progress:
        print(f"loss {loss0:.4f} -> {loss_final:.4f}; walked {metrics['distance_walked_m']:.3f} m; "
              f"wrote {out}/before.gif, after.gif, loss.png, metrics.json")
    return metrics
