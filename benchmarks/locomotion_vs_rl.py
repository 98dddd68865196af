"""Gradient training through the simulator vs PPO on the same robot and task.

Task: a 2D mass-spring robot (default ``scenes/mass_spring_robot_c.toml``) must move at a
commanded forward velocity. Both learners see the same observation (the controller's
input vector: clock, proprioception relative to the centre, centre velocity and height,
command; :func:`diffsim.control.controller.observation`) and produce the same actuation.

* **ours**: :class:`diffsim.control.train.Trainer`, Adam on the analytic gradient of the
  velocity-tracking loss through every simulation step, B environments per iteration.
* **PPO** (stable-baselines3): the simulator forward only, wrapped as a vectorised gym
  environment (the solver's B environments step in one kernel launch), dense reward
  ``-(v_com - v_cmd)^2 / v_scale^2`` per step, action repeat ``--repeat``.

Both are scored by the same evaluation: the mean relative error ``|v - v_cmd| / v_cmd`` of
the late-window COM velocity over the scene's ``eval_velocities`` (the task reward is
``1 - error``). The script records wall time (training only; evaluations are excluded) and
simulated forward steps until each learner first reaches ``--target`` error, writes a JSON
and one plot with both curves.

Needs stable-baselines3 and gymnasium, which are not diffsim dependencies: run it with a
separate virtual environment (see docs/benchmarks_training.md).

Usage:
    /tmp/rl-venv/bin/python benchmarks/locomotion_vs_rl.py [--scene S] [--target 0.3]
        [--grad-iters 150] [--ppo-seconds 1800] [--out docs/locomotion_vs_rl.png]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def evaluate_params(robot, evaluator, config, params) -> float:
    """Mean relative velocity error of weights ``params`` (constant eval commands)."""
    evaluator.ctrl.set_params(params)
    out = evaluator.rollout.forward(evaluator.scene.initial_state)
    from diffsim.control.losses import LossSpec, com_weights, locomotion_loss, relative_speed_error

    sched = np.repeat(evaluator.cmd[None], evaluator.T, 0)
    _, _, _, m = locomotion_loss(out["x"], out["v"], com_weights(evaluator.scene.model.get("particle_mass")),
                                 sched, robot.command_names, LossSpec(start=robot.training["loss_start"], windows=1))
    return float(np.nanmean(relative_speed_error(m, 2)))


class Evaluator:
    """A rollout of one environment per evaluation command (forward only)."""

    def __init__(self, robot, T):
        from diffsim.autodiff import Rollout
        from diffsim.control.train import build_controller

        self.T = T
        vs = robot.eval_velocities()
        self.scene = robot.load(len(vs), window=T, steps=T)
        self.ctrl = build_controller(robot, self.scene)
        self.cmd = np.asarray(vs, float)[:, None]
        self.ctrl.set_commands(self.cmd)
        self.rollout = Rollout(self.scene.solver, T, self.scene.dt, record=("x", "v"), controller=self.ctrl)


# ----------------------------------------------------------------------------- ours
def run_gradient(robot, args, evaluator) -> list:
    from diffsim.control.train import Trainer

    trainer = Trainer(robot, Path(args.work) / "grad", batch=args.batch, progress=False)
    curve, train_seconds, sim_steps = [], 0.0, 0
    curve.append((0.0, 0, evaluate_params(robot, evaluator, None, trainer.ctrl.get_params())))
    for it in range(args.grad_iters):
        t = time.perf_counter()
        trainer.history.append(trainer.step())
        trainer.iteration += 1
        train_seconds += time.perf_counter() - t
        sim_steps += trainer.B * trainer.T
        if (it + 1) % args.grad_eval_every == 0:
            err = evaluate_params(robot, evaluator, None, trainer.ctrl.get_params())
            curve.append((train_seconds, sim_steps, err))
            print(f"[ours] it {it + 1}: {train_seconds:.1f} s, {sim_steps} steps, error {err:.3f}", flush=True)
            if err <= args.target and args.stop_at_target:
                break
    return curve


# ----------------------------------------------------------------------------- PPO
def make_vec_env(robot, B, T, repeat, seed):
    from gymnasium import spaces
    from stable_baselines3.common.vec_env import VecEnv

    from diffsim.control.controller import observation
    from diffsim.control.losses import com_weights
    from diffsim.control.train import build_controller

    class LocomotionVecEnv(VecEnv):
        """B robots stepping in one launch; episodes of T simulation steps."""

        def __init__(self):
            self.scene = robot.load(B, window=1, steps=T)
            s = self.scene.solver
            ctrl = build_controller(robot, self.scene)  # only its config (the observation layout)
            self.cfg = ctrl.config()
            self.A = s.action_count
            obs_dim = ctrl.n_inputs
            super().__init__(B, spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
                             spaces.Box(-1.0, 1.0, (self.A,), np.float32))
            self.w = com_weights(self.scene.model.get("particle_mass"))
            self.rng = np.random.default_rng(seed)
            self.vscale = robot.velocity_scale()
            self.t = np.zeros(B, int)
            self.cmd = np.zeros((B, 1))
            self.actions = None
            self.sim_steps = 0

        def _obs(self, st):
            return np.stack([observation(self.cfg, st["x"][b:b + 1], st["v"][b:b + 1],
                                         self.t[b] * self.scene.dt, self.cmd[b:b + 1])[0]
                             for b in range(self.num_envs)]).astype(np.float32)

        def _reset_envs(self, idx, st):
            init = self.scene.initial_state
            for name in st:
                st[name][idx] = init[name][idx]
            self.t[idx] = 0
            self.cmd[idx, 0] = self.rng.uniform(*robot.training["velocity_range"], size=len(idx))

        def reset(self):
            st = self.scene.solver.read_frame(0)
            self._reset_envs(np.arange(self.num_envs), st)
            self.scene.solver.write_frame(0, st)
            return self._obs(st)

        def step_async(self, actions):
            self.actions = np.clip(actions, -1, 1)

        def step_wait(self):
            s = self.scene.solver
            reward = np.zeros(self.num_envs)
            for _ in range(repeat):
                s.write_actions(self.actions[None].astype(s.dtype))
                s.step(s.state(0), s.state(1), s.control(0), self.scene.dt)
                s.copy_frame(1, 0)
                self.t += 1
                self.sim_steps += self.num_envs
                st = s.read_frame(0)
                vx = np.einsum("bn,bn->b", st["v"][..., 0], self.w)
                reward -= (vx - self.cmd[:, 0]) ** 2 / self.vscale ** 2 / repeat
            done = self.t >= T
            bad = ~np.all(np.isfinite(st["x"].reshape(self.num_envs, -1)), axis=1)
            reward[bad] = -10.0
            done |= bad
            infos = [{} for _ in range(self.num_envs)]
            if done.any():
                obs_end = self._obs({k: np.nan_to_num(v) for k, v in st.items()})
                for b in np.nonzero(done)[0]:
                    infos[b]["terminal_observation"] = obs_end[b]
                    infos[b]["TimeLimit.truncated"] = not bad[b]
                self._reset_envs(np.nonzero(done)[0], st)
                s.write_frame(0, st)
            return self._obs(st), reward.astype(np.float32), done, infos

        def close(self):
            pass

        def get_attr(self, name, indices=None):
            return [getattr(self, name)] * self.num_envs

        def set_attr(self, name, value, indices=None):
            setattr(self, name, value)

        def env_method(self, name, *a, indices=None, **kw):
            return [getattr(self, name)(*a, **kw)]

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * self.num_envs

        def seed(self, seed=None):
            return [seed] * self.num_envs

    return LocomotionVecEnv()


def run_ppo(robot, args, evaluator) -> list:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    T = robot.steps()
    env = make_vec_env(robot, args.ppo_envs, T, args.repeat, args.seed)
    model = PPO("MlpPolicy", env, n_steps=args.ppo_n_steps, batch_size=256, learning_rate=3e-4,
                gamma=0.98, gae_lambda=0.95, ent_coef=0.0, seed=args.seed, verbose=0,
                policy_kwargs={"net_arch": [64, 64], "log_std_init": -1.0}, device="cpu")
    curve = []
    clock = {"train": 0.0, "last": time.perf_counter()}

    def policy_error():
        # the deterministic PPO policy, driven in the evaluator's solver step by step
        from diffsim.control.controller import observation

        s = evaluator.scene.solver
        cfg = evaluator.ctrl.config()
        st = {k: v.copy() for k, v in evaluator.scene.initial_state.items()}
        xs, vs = [st["x"]], [st["v"]]
        s.write_frame(0, st)
        t = 0
        act = None
        for k in range(evaluator.T):
            if k % args.repeat == 0:
                obs = observation(cfg, st["x"], st["v"], t * evaluator.scene.dt, evaluator.cmd)
                with torch.no_grad():
                    act, _ = model.predict(obs.astype(np.float32), deterministic=True)
            s.write_actions(np.clip(act, -1, 1)[None].astype(s.dtype))
            s.step(s.state(0), s.state(1), s.control(0), evaluator.scene.dt)
            s.copy_frame(1, 0)
            t += 1
            st = s.read_frame(0)
            xs.append(st["x"])
            vs.append(st["v"])
        from diffsim.control.losses import LossSpec, com_weights, locomotion_loss, relative_speed_error

        sched = np.repeat(evaluator.cmd[None], evaluator.T, 0)
        _, _, _, m = locomotion_loss(np.stack(xs), np.stack(vs),
                                     com_weights(evaluator.scene.model.get("particle_mass")), sched,
                                     robot.command_names, LossSpec(start=robot.training["loss_start"], windows=1))
        return float(np.nanmean(relative_speed_error(m, 2)))

    class Tracker(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_eval = 0

        def _on_rollout_end(self):
            now = time.perf_counter()
            clock["train"] += now - clock["last"]
            if env.sim_steps >= self.next_eval:
                err = policy_error()
                curve.append((clock["train"], env.sim_steps, err))
                print(f"[ppo] {clock['train']:.0f} s, {env.sim_steps} steps, error {err:.3f}", flush=True)
                self.next_eval = env.sim_steps + args.ppo_eval_every
                if args.stop_at_target and err <= args.target:
                    self.model._stop = True
            clock["last"] = time.perf_counter()

        def _on_step(self):
            return not getattr(self.model, "_stop", False) and clock["train"] < args.ppo_seconds

    torch.set_num_threads(1)
    curve.append((0.0, 0, policy_error()))
    clock["last"] = time.perf_counter()
    model.learn(total_timesteps=10**9, callback=Tracker())
    return curve


def first_reach(curve, target):
    for seconds, steps, err in curve:
        if err <= target:
            return seconds, steps
    return None, None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scene", default=str(ROOT / "scenes" / "mass_spring_robot_c.toml"))
    p.add_argument("--target", type=float, default=0.3, help="mean relative error to reach")
    p.add_argument("--batch", type=int, default=None, help="our batch (default: the scene's)")
    p.add_argument("--grad-iters", type=int, default=150)
    p.add_argument("--grad-eval-every", type=int, default=5)
    p.add_argument("--ppo-envs", type=int, default=16)
    p.add_argument("--ppo-n-steps", type=int, default=128)
    p.add_argument("--ppo-seconds", type=float, default=1800.0, help="PPO wall-time budget")
    p.add_argument("--ppo-eval-every", type=int, default=100_000, help="simulated steps")
    p.add_argument("--repeat", type=int, default=4, help="PPO action repeat")
    p.add_argument("--stop-at-target", action="store_true")
    p.add_argument("--only", choices=("ours", "ppo"), help="run one side (the other is kept from --json)")
    p.add_argument("--plot-only", action="store_true", help="redraw the plot from --json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="/tmp/locomotion_vs_rl")
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "locomotion_vs_rl.json"))
    p.add_argument("--out", default=str(ROOT / "docs" / "locomotion_vs_rl.png"))
    args = p.parse_args()
    if args.plot_only:
        _plot(json.loads(Path(args.json).read_text()), args)
        return

    from diffsim.core import backend

    backend.init(arch="cpu", precision="float32")
    from diffsim.control.scene import read_robot_scene

    robot = read_robot_scene(args.scene)
    evaluator = Evaluator(robot, robot.steps())
    path = Path(args.json)
    results = json.loads(path.read_text()) if path.is_file() else {}
    if args.only in (None, "ours"):
        results["ours"] = run_gradient(robot, args, evaluator)
    if args.only in (None, "ppo"):
        results["ppo"] = run_ppo(robot, args, evaluator)
    results["target"] = args.target
    results["scene"] = args.scene
    summary = {}
    for name in ("ours", "ppo"):
        if name in results:
            s, n = first_reach(results[name], args.target)
            summary[name] = {"seconds_to_target": s, "steps_to_target": n,
                             "best_error": min(e for _, _, e in results[name]),
                             "seconds_run": results[name][-1][0], "steps_run": results[name][-1][1]}
    results["summary"] = summary
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    for name, s in summary.items():
        print(f"{name}: target error {args.target:.0%} reached after "
              + (f"{s['seconds_to_target']:.1f} s, {s['steps_to_target']} simulated steps"
                 if s["seconds_to_target"] is not None else
                 f"- (not within {s['seconds_run']:.0f} s, {s['steps_run']} steps; best {s['best_error']:.1%})"))

    if "ours" in results and "ppo" in results:
        _plot(results, args)


def _plot(results, args):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, label in (("ours", "gradients through the simulator (ours)"), ("ppo", "PPO (stable-baselines3)")):
        c = np.asarray(results[name], float)
        ax.plot(np.maximum(c[:, 0], 1e-1), c[:, 2], marker="o", ms=3, label=label)
    ax.axhline(args.target, color="grey", ls="--", lw=1, label=f"target error {args.target:.0%}")
    ax.set_xscale("log")
    ax.set_xlabel("training wall time [s] (2-core machine)")
    ax.set_ylabel("mean relative velocity error")
    top = max(max(e for _, _, e in results[n]) for n in ("ours", "ppo"))
    ax.set_ylim(0, min(2.5, max(1.2, 1.05 * top)))
    ax.set_title(f"{Path(args.scene).stem}: velocity tracking")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    from diffsim.io import atomic_path

    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=100)


if __name__ == "__main__":
    main()
