"""``diffsim train``: locomotion controllers trained by gradients through the simulator.

Each iteration (Fang et al. 2022, "Complex Locomotion Skill Learning via Differentiable
Physics"; Hu et al. 2020, DiffTaichi):

1. draw a goal command per environment (velocity, height, heading: uniform in the
   ``[training]`` ranges; with probability ``switch`` a second command from mid-rollout);
2. roll out all B environments at once, the :class:`ControllerSineMLP` in the loop (one
   kernel launch per step for the network, one for the physics), recording ``x`` and ``v``;
3. score the locomotion losses (:mod:`diffsim.control.losses`), pull their cotangents back
   through every step, contact included (optionally truncated every K steps), to the
   network weights;
4. clip the global gradient norm and take an Adam step.

A NaN guard skips the update when the rollout or its gradient stops being finite and names
where it started (:class:`~diffsim.autodiff.SimulationError`, or a re-run of the backward
under a :class:`~diffsim.autodiff.GradientMonitor` for the first non-finite step). Nothing
is lost: a checkpoint (:mod:`diffsim.control.checkpoint`) is written every
``checkpoint_every`` iterations and on Ctrl-C, and ``resume=True`` continues it to the same
loss sequence as an uninterrupted run.
"""

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..autodiff import GradientError, GradientMonitor, Rollout, SimulationError
from ..core import backend
from ..io import plot_curves, save_json_atomic
from .checkpoint import load_checkpoint, save_checkpoint, save_controller_file
from .controller import ControllerSineMLP
from .evaluate import constant_commands
from .losses import (
    LossSpec,
    aggregate_speed_error,
    com_weights,
    effort,
    locomotion_loss,
    relative_speed_error,
)
from .optim import Adam, clip_by_global_norm
from .scene import RobotScene, read_robot_scene

TERMS = ("velocity", "height", "heading", "effort")


@dataclass
class TrainResult:
    """What :func:`train` did: ``history`` (one dict per iteration), ``iteration`` reached,
    ``interrupted`` (Ctrl-C), ``out_dir``, ``seconds`` of training in this call."""

    history: list
    iteration: int
    interrupted: bool
    out_dir: Path
    seconds: float
    skipped: list = field(default_factory=list)

    @property
    def losses(self) -> list[float]:
        return [h["loss"] for h in self.history]


def build_controller(robot: RobotScene, scene, command_steps: int = 1) -> ControllerSineMLP:
    """The scene's ``[controller]`` on ``scene.solver``: each command enters the network
    centred on the middle of its training range and scaled by ``command_gain`` over the
    half-width (Fang et al. repeat each command 30 times for the same effect: a command
    input as strong as the clock, whose weights learn as fast)."""
    c, tr = robot.controller, robot.training
    names = robot.command_names
    offset, scale = [], []
    for n in names:
        lo, hi = tr[f"{n}_range"]
        offset.append(0.5 * (lo + hi))
        scale.append(c["command_gain"] / max(0.5 * (hi - lo), 1e-3))
    x0 = scene.initial_state["x"][0]
    w = com_weights(scene.model.get("particle_mass"))[0]
    return ControllerSineMLP(
        scene.solver, hidden=c["hidden"], n_sin=c["n_sin"], omega=c["omega"],
        obs_scale=c["obs_scale"], sensors=c.get("sensors"), commands=len(names), dt=scene.dt,
        seed=c["seed"], init_scale=tuple(c["init_scale"]), activation=c["activation"],
        harmonics=c["harmonics"], relative_velocity=c["relative_velocity"],
        center_inputs=c["center_inputs"], center_scale=c["center_scale"],
        height_ref=float(w @ x0[:, -1]), command_steps=command_steps,
        command_scale=scale, command_offset=offset)


def loss_spec(robot: RobotScene, x0: np.ndarray) -> LossSpec:
    """The ``[training]`` loss weights; the heading axis splits the sensors front/back by
    their initial ``x`` (``x0`` ``[N, dim]``)."""
    tr = robot.training
    sensors = np.asarray(robot.controller.get("sensors", np.arange(len(x0))))
    xs = x0[sensors, 0]
    return LossSpec(velocity=tr["w_velocity"], height=tr["w_height"], heading=tr["w_heading"],
                    effort=tr["w_effort"], start=tr["loss_start"], windows=tr["loss_windows"],
                    velocity_scale=robot.velocity_scale(), height_scale=tr["height_scale"],
                    front=sensors[xs > np.median(xs)], back=sensors[xs < np.median(xs)])


def draw_commands(rng, robot: RobotScene, B: int, T: int) -> tuple[np.ndarray, bool]:
    """A command schedule ``[T, B, C]`` and whether it switches at mid-rollout.

    ``sampling = "stratified"`` draws each command once in each of B equal bins of its
    range (shuffled over environments): every batch covers the whole range, which lowers
    the variance of the batch gradient against independent uniform draws."""
    tr = robot.training

    def one():
        cols = []
        for n in robot.command_names:
            lo, hi = tr[f"{n}_range"]
            if tr["sampling"] == "stratified":
                # one draw in each of B equal bins, shuffled: every batch covers the range
                u = (rng.permutation(B) + rng.uniform(size=B)) / B
            else:
                u = rng.uniform(size=B)
            cols.append(lo + (hi - lo) * u)
        return np.stack(cols, axis=1) if cols else np.zeros((B, 0))

    first = one()
    schedule = np.repeat(first[None], T, axis=0)
    switched = tr["switch"] > 0 and rng.uniform() < tr["switch"]
    if switched:
        schedule[T // 2:] = one()[None]
    return schedule, bool(switched)


class Trainer:
    """Training state of one robot: scene, controller, rollout, optimiser, RNG, history.

    Args:
        robot: a :class:`~diffsim.control.scene.RobotScene` (or a path to one).
        out_dir: where checkpoints, ``controller.npz``, ``loss.png`` and ``train.json`` go.
        batch, steps, truncate: override ``[training]`` (B, horizon T, truncation K).
        progress: show a tqdm bar on stderr.
    """

    def __init__(self, robot, out_dir, batch: int | None = None, steps: int | None = None,
                 truncate: int | None = None, progress: bool = True):
        self.robot = robot if isinstance(robot, RobotScene) else read_robot_scene(robot)
        tr = self.robot.training
        self.out = Path(out_dir)
        self.B = int(batch or tr["batch"])
        self.T = int(steps or self.robot.steps())
        self.K = int(tr["truncate"] if truncate is None else truncate)
        self.progress = progress
        window = self.K if 0 < self.K < self.T else self.T
        self.scene = self.robot.load(self.B, window=window, steps=self.T)
        self.switching = tr["switch"] > 0
        self.ctrl = build_controller(self.robot, self.scene, self.T if self.switching else 1)
        self.rollout = Rollout(self.scene.solver, self.T, self.scene.dt, record=("x", "v"),
                               segment=window, controller=self.ctrl, truncate=0 < self.K < self.T)
        self.ctrl.set_effort(tr["w_effort"], self.T)
        self.init = self.scene.initial_state
        self.weights = com_weights(self.scene.model.get("particle_mass"))
        self.spec = loss_spec(self.robot, self.init["x"][0])
        self._initial_params = self.ctrl.get_params()
        self._validation = None
        self.reset()

    def reset(self, out_dir=None) -> None:
        """Start over (initial weights, fresh optimiser and command generator), optionally
        writing to another ``out_dir``; the compiled solver and controller are kept."""
        if out_dir is not None:
            self.out = Path(out_dir)
        tr = self.robot.training
        self.ctrl.set_params(self._initial_params)
        self.opt = Adam(lr=tr["lr"])
        self.rng = np.random.default_rng(tr["seed"])
        self.iteration = 0
        self.history: list[dict] = []
        self.best = {"eval_error": None, "iteration": 0, "params": None}
        self._snapshot = self._take_snapshot()

    # -- state -------------------------------------------------------------------------------
    def _take_snapshot(self) -> dict:
        return {"iteration": self.iteration, "params": self.ctrl.get_params(),
                "adam": copy.deepcopy(self.opt.state_dict()),
                "rng": copy.deepcopy(self.rng.bit_generator.state),
                "history": list(self.history), "best": dict(self.best)}

    def _meta(self) -> dict:
        return {"scene": str(self.robot.path), "controller": self.ctrl.config(),
                "commands": self.robot.command_names, "batch": self.B, "steps": self.T,
                "truncate": self.K, "precision": backend.info().precision}

    def save(self, snapshot: dict | None = None) -> Path:
        """Write the checkpoint (of the last completed iteration) and ``controller.npz``."""
        s = snapshot or self._snapshot
        best = {k: v for k, v in s["best"].items() if k != "params"}
        path = save_checkpoint(self.out, s["iteration"], s["params"], s["adam"], s["rng"],
                               s["history"], {**self._meta(), "best": best})
        save_controller_file(self.out / "controller.npz", self.ctrl.config(), s["params"],
                             {"commands": self.robot.command_names, "scene": str(self.robot.path),
                              "iteration": s["iteration"]})
        return path

    def resume(self) -> None:
        """Load the checkpoint in ``out_dir`` (same controller, batch and horizon required)."""
        ck = load_checkpoint(self.out)
        meta = self._meta()
        for key in ("controller", "batch", "steps", "truncate", "commands"):
            if ck.get(key) != meta[key]:
                raise ValueError(f"cannot resume: the checkpoint's {key} ({ck.get(key)!r}) differs "
                                 f"from this run's ({meta[key]!r})")
        self.ctrl.set_params(ck["params"])
        self.opt.load_state_dict(ck["adam"])
        self.rng.bit_generator.state = ck["rng"]
        self.iteration = int(ck["iteration"])
        self.history = list(ck["history"])
        self.best = {**ck.get("best", {"eval_error": None, "iteration": 0}), "params": None}
        self._snapshot = self._take_snapshot()

    # -- one iteration -------------------------------------------------------------------------
    def _lr(self) -> float:
        tr = self.robot.training
        lo, hi = tr.get("lr_final", tr["lr"]), tr["lr"]
        frac = min(1.0, self.iteration / max(1, tr["iters"] - 1))
        return lo + 0.5 * (hi - lo) * (1 + math.cos(math.pi * frac))

    def evaluate(self, schedule: np.ndarray) -> tuple[dict, dict, dict]:
        """Forward rollout under ``schedule`` ``[T, B, C]``: (record, loss terms, metrics)
        plus the cotangents in ``terms["_grads"]``."""
        self.ctrl.set_commands(schedule if self.switching else schedule[0])
        out = self.rollout.forward(self.init)
        terms, gx, gv, metrics = locomotion_loss(out["x"], out["v"], self.weights, schedule,
                                                 self.robot.command_names, self.spec)
        terms["effort"] = effort(out["actions"], self.spec.effort)
        terms["_grads"] = (gx, gv)
        return out, terms, metrics

    def step(self) -> dict:
        """One training iteration; returns its history entry (``skipped`` set on a NaN)."""
        t0 = time.perf_counter()
        schedule, switched = draw_commands(self.rng, self.robot, self.B, self.T)
        entry = {"iteration": self.iteration + 1, "switched": switched}
        try:
            out, terms, metrics = self.evaluate(schedule)
        except SimulationError as exc:
            return self._skip(entry, f"forward: {exc}", t0)
        gx, gv = terms.pop("_grads")
        loss = float(sum(terms.values()))
        entry.update(loss=loss, **{k: float(v) for k, v in terms.items()})
        if not math.isfinite(loss):
            return self._skip(entry, "loss is not finite", t0)
        grads = self.rollout.backward({"x": gx, "v": gv}).controller
        if not all(np.all(np.isfinite(g)) for g in grads.values()):
            return self._skip(entry, "gradient: " + self._locate_nan(gx, gv), t0)
        clip = self.robot.training["clip"] or None
        grads, norm = clip_by_global_norm(grads, clip)
        self.opt.lr = self._lr()
        self.ctrl.set_params(self.opt.step(self.ctrl.get_params(), grads))
        err = aggregate_speed_error(metrics, self.scene.dim)
        entry.update(grad_norm=norm, lr=self.opt.lr, rel_error=err if math.isfinite(err) else None,
                     seconds=time.perf_counter() - t0)
        return entry

    def _skip(self, entry: dict, reason: str, t0: float) -> dict:
        entry.update(skipped=reason, seconds=time.perf_counter() - t0)
        entry.setdefault("loss", float("nan"))
        return entry

    def _locate_nan(self, gx, gv) -> str:
        """Re-run the backward under a GradientMonitor to name the first non-finite step."""
        self.rollout.diagnostics = GradientMonitor()
        try:
            self.rollout.backward({"x": gx, "v": gv})
        except GradientError as exc:
            return str(exc)
        finally:
            self.rollout.diagnostics = None
        return "the controller's parameter gradient is not finite (state gradients are)"

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> float:
        """Mean relative velocity error of the current weights on the constant evaluation
        commands (``eval_velocities``), one forward rollout of the training horizon."""
        if self._validation is None:
            vs = self.robot.eval_velocities()
            scene = self.robot.load(len(vs), steps=self.T)
            ctrl = ControllerSineMLP.from_config(scene.solver, self.ctrl.config())
            cmd = constant_commands(self.robot.command_names, vs, self.robot.training)
            ctrl.set_commands(cmd)
            rollout = Rollout(scene.solver, self.T, scene.dt, record=("x", "v"), controller=ctrl)
            self._validation = (scene, ctrl, rollout, np.repeat(cmd[None], self.T, 0))
        scene, ctrl, rollout, schedule = self._validation
        ctrl.set_params(self.ctrl.get_params())
        try:
            out = rollout.forward(scene.initial_state)
        except SimulationError:
            return float("inf")
        spec = LossSpec(start=self.robot.training["loss_start"], windows=1)
        _, _, _, m = locomotion_loss(out["x"], out["v"], com_weights(scene.model.get("particle_mass")),
                                     schedule, self.robot.command_names, spec)
        return float(np.nanmean(relative_speed_error(m, scene.dim)[0]))

    def _maybe_validate(self, entry: dict) -> None:
        every = self.robot.training["eval_every"]
        if not every or self.iteration % every or "velocity" not in self.robot.command_names:
            return
        err = self.validate()
        entry["eval_error"] = err
        if self.best["eval_error"] is None or err < self.best["eval_error"]:
            self.best = {"eval_error": err, "iteration": self.iteration,
                         "params": self.ctrl.get_params()}
            save_controller_file(self.out / "controller_best.npz", self.ctrl.config(),
                                 self.best["params"],
                                 {"commands": self.robot.command_names, "scene": str(self.robot.path),
                                  "iteration": self.iteration, "eval_error": err})

    # -- the loop --------------------------------------------------------------------------------
    def plot(self) -> None:
        done = [h for h in self.history if "skipped" not in h]
        if not done:
            return
        curves = {"total": [h["loss"] for h in done]}
        for k in TERMS:
            vals = [h.get(k, 0.0) for h in done]
            if any(vals):
                curves[k] = vals
        x = [h["iteration"] for h in done]
        plot_curves(self.out / "loss.png", curves, x=x, logy=True,
                    title=f"{self.robot.name}: training loss (B={self.B}, T={self.T})")

    def run(self, iters: int | None = None) -> TrainResult:
        """Train up to ``iters`` total iterations (default ``[training] iters``)."""
        tr = self.robot.training
        total = int(iters or tr["iters"])
        self.out.mkdir(parents=True, exist_ok=True)
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=self.iteration, desc=f"train {self.robot.name}",
                       unit="it", dynamic_ncols=True)
        t_start = time.perf_counter()
        skipped, interrupted = [], False
        try:
            while self.iteration < total:
                entry = self.step()
                self.iteration += 1
                self._maybe_validate(entry)
                self.history.append(entry)
                self._snapshot = self._take_snapshot()
                if "skipped" in entry:
                    skipped.append(entry)
                    if bar is not None:
                        bar.write(f"iteration {entry['iteration']}: update skipped ({entry['skipped']})")
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(self._postfix(entry), refresh=False)
                if self.iteration % tr["checkpoint_every"] == 0 or self.iteration == total:
                    self.save()
                if self.iteration % tr["plot_every"] == 0 or self.iteration == total:
                    self.plot()
        except KeyboardInterrupt:
            interrupted = True
            self.save(self._snapshot)
            self.plot()
            msg = (f"interrupted: checkpoint of iteration {self._snapshot['iteration']} saved in "
                   f"{self.out}; continue with --resume")
            if bar is not None:
                bar.write(msg)
        finally:
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - t_start
        result = TrainResult(list(self.history), self._snapshot["iteration"], interrupted, self.out,
                             seconds, skipped)
        if not interrupted:
            self._write_summary(result)
        return result

    @staticmethod
    def _postfix(entry: dict) -> dict:
        if "skipped" in entry:
            return {"skipped": entry["skipped"][:40]}
        out = {"loss": f"{entry['loss']:.3g}"}
        for k in TERMS:
            if entry.get(k):
                out[k[:3]] = f"{entry[k]:.3g}"
        if entry.get("rel_error") is not None:
            out["rel_err"] = f"{entry['rel_error']:.1%}"
        if entry.get("eval_error") is not None:
            out["eval_err"] = f"{entry['eval_error']:.1%}"
        return out

    def _write_summary(self, result: TrainResult) -> None:
        done = [h for h in self.history if "skipped" not in h]
        secs = [h["seconds"] for h in done]
        save_json_atomic(self.out / "train.json", {
            **self._meta(), "iterations": self.iteration, "skipped": len(result.skipped),
            "final_loss": done[-1]["loss"] if done else None,
            "final_rel_error": done[-1].get("rel_error") if done else None,
            "best_eval_error": self.best["eval_error"], "best_iteration": self.best["iteration"],
            "seconds_per_iteration": float(np.median(secs)) if secs else None,
            "seconds_this_run": result.seconds, "loss_history": [h["loss"] for h in self.history]})


def train(scene_path, out_dir, iters: int | None = None, batch: int | None = None,
          resume: bool = False, steps: int | None = None, truncate: int | None = None,
          progress: bool = True) -> TrainResult:
    """Train the controller of a robot scene; see :class:`Trainer`.

    Args:
        scene_path: a robot scene file (``[controller]`` and ``[training]`` sections).
        out_dir: output directory. iters: total iterations (resume counts the done ones).
        batch: environments per iteration. resume: continue the checkpoint in ``out_dir``.
        steps: rollout horizon. truncate: gradient cut every K steps (0: none).
    """
    trainer = Trainer(scene_path, out_dir, batch=batch, steps=steps, truncate=truncate,
                      progress=progress)
    if resume:
        trainer.resume()
    return trainer.run(iters)
