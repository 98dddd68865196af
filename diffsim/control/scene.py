"""``[controller]`` and ``[training]``: the scene sections of a trainable robot.

A robot scene file is an ordinary scene (``[solver]``, ``[[bodies]]``, ``[[colliders]]``
...) plus two tables read by ``diffsim train`` and ``diffsim eval``:

``[controller]``: the :class:`~diffsim.control.ControllerSineMLP` architecture (hidden
units, activation, clock, observed sensors, which goal commands it takes);
``[training]``: the optimiser, the batch, the command ranges drawn each iteration, the
loss weights and windows, truncation and clipping, checkpoint cadence.

Both are validated with the scene schema's own :class:`~diffsim.scene.schema.Key` tables
(types, bounds, units, did-you-mean), and errors are raised as
:class:`~diffsim.scene.SceneError` naming the key. The scene loader's section list is
closed (an unknown section is an error), so :func:`load_robot_scene` takes these two
tables out of the document and hands the rest to :func:`diffsim.scene.load_scene`.
"""

import copy
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..scene import SceneError, load_scene
from ..scene.schema import OPTIONAL, Context, Key, Table, validate_table

COMMANDS = ("velocity", "height", "heading")
CONTROL_SECTIONS = ("controller", "training")


def _check_controller(values: dict, path, ctx: Context) -> None:
    cmds = values["commands"]
    if "heading" in cmds and ctx.dim != 3:
        ctx.add(path + ["commands"], "the heading command needs a 3D scene ([solver] dim = 3)")


CONTROLLER = Table({
    "hidden": Key("int", "hidden units H", 64, "-", lo=1, hi=4096),
    "activation": Key("str", "hidden activation", "tanh", choices=("tanh", "sin")),
    "n_sin": Key("int", "clock sines sin(omega t + 2 pi k / n_sin)", 10, "-", lo=0, hi=256),
    "harmonics": Key("int", "sin/cos phase pairs of the clock (k omega t, k = 1..harmonics)", 0,
                     "-", lo=0, hi=64),
    "omega": Key("float", "clock angular frequency", 10.0, "rad/s", positive=True, hi=1e4),
    "obs_scale": Key("float", "factor on the proprioceptive inputs", 0.05, "-", lo=0.0, hi=1e6),
    "sensors": Key("array", "observed particle indices (default: all)", OPTIONAL, "-", lo=0,
                   hi=10**7, shape=("*",), dtype="int", min_items=1),
    "relative_velocity": Key("bool", "observe velocities relative to the centre's", False),
    "center_inputs": Key("bool", "observe the centre's velocity and height", True),
    "center_scale": Key("float", "factor on the centre inputs", 1.0, "-", lo=0.0, hi=1e6),
    "commands": Key("strings", "goal commands the controller takes", ["velocity"],
                    choices=COMMANDS),
    "command_gain": Key("float", "a command enters the network as gain * (c - mid) / half-width "
                        "of its training range", 3.0, "-", positive=True, hi=1e4),
    "init_scale": Key("array", "gains of the two layers' initial weights", [2.0, 3.0], "-",
                      lo=0.0, hi=100.0, shape=(2,)),
    "seed": Key("int", "weight initialisation seed", 0, "-", lo=0, hi=2**32 - 1),
}, "The neural controller (diffsim.control.ControllerSineMLP).", _check_controller)


def _check_range(name):
    def check(values: dict, path, ctx: Context) -> None:
        r = values.get(name)
        if r is not None and r[0] > r[1]:
            ctx.add(path + [name], f"expected [low, high] with low <= high, found {r}")
    return check


def _check_training(values: dict, path, ctx: Context) -> None:
    for name in ("velocity_range", "height_range", "heading_range"):
        _check_range(name)(values, path, ctx)
    if values["truncate"] and values.get("steps") and values["truncate"] > values["steps"]:
        ctx.add(path + ["truncate"], f"expected at most steps ({values['steps']})")


TRAINING = Table({
    "iters": Key("int", "training iterations", 200, "-", lo=1, hi=10**7),
    "batch": Key("int", "environments per iteration (B), each with its own command", 16, "-",
                 lo=1, hi=100_000),
    "steps": Key("int", "rollout horizon (default: [solver] steps)", OPTIONAL, "-", lo=2,
                 hi=10**7),
    "lr": Key("float", "Adam step size", 0.01, "-", positive=True, hi=10.0),
    "lr_final": Key("float", "step size at the last iteration (cosine decay; default: lr)",
                    OPTIONAL, "-", positive=True, hi=10.0),
    "clip": Key("float", "global gradient-norm clip (0: none)", 1.0, "-", lo=0.0, hi=1e12),
    "truncate": Key("int", "cut the gradient every K steps (0: full backpropagation)", 0, "-",
                    lo=0, hi=10**7),
    "velocity_range": Key("array", "commanded forward velocity drawn uniformly", [0.0, 0.2],
                          "m/s", lo=-100.0, hi=100.0, shape=(2,)),
    "height_range": Key("array", "commanded COM height drawn uniformly", [0.1, 0.2], "m",
                        lo=-1e3, hi=1e3, shape=(2,)),
    "heading_range": Key("array", "commanded heading (3D) drawn uniformly", [-0.5, 0.5], "rad",
                         lo=-10.0, hi=10.0, shape=(2,)),
    "sampling": Key("str", "command draws: uniform, or stratified (one per B equal bins)",
                    "stratified", choices=("uniform", "stratified")),
    "switch": Key("float", "probability that an iteration's commands change at mid-rollout",
                  0.0, "-", lo=0.0, hi=1.0),
    "w_velocity": Key("float", "weight of the velocity-tracking loss", 1.0, "-", lo=0.0, hi=1e9),
    "w_height": Key("float", "weight of the height-tracking loss", 0.0, "-", lo=0.0, hi=1e9),
    "w_heading": Key("float", "weight of the heading loss (3D)", 0.0, "-", lo=0.0, hi=1e9),
    "w_effort": Key("float", "weight of the actuation effort mean(act^2)", 0.0, "-", lo=0.0,
                    hi=1e9),
    "loss_start": Key("float", "fraction of each command phase after which tracking is scored",
                      0.5, "-", lo=0.0, hi=0.95),
    "loss_windows": Key("int", "velocity windows per phase", 4, "-", lo=1, hi=1000),
    "velocity_scale": Key("float", "normalises velocity errors (default: the largest |command|)",
                          OPTIONAL, "m/s", positive=True, hi=1e3),
    "height_scale": Key("float", "normalises height errors", 0.05, "m", positive=True, hi=1e3),
    "checkpoint_every": Key("int", "iterations between checkpoints", 20, "-", lo=1, hi=10**7),
    "plot_every": Key("int", "iterations between loss-curve updates", 10, "-", lo=1, hi=10**7),
    "seed": Key("int", "seed of the command draws", 0, "-", lo=0, hi=2**32 - 1),
    "eval_velocities": Key("array", "commanded velocities `diffsim eval` scores (default: 5 "
                           "across velocity_range, zero left out)", OPTIONAL, "m/s", lo=-100.0,
                           hi=100.0, shape=("*",), min_items=1),
    "eval_every": Key("int", "iterations between validations on eval_velocities (0: none); the "
                      "best weights go to controller_best.npz", 10, "-", lo=0, hi=10**7),
    "eval_steps": Key("int", "horizon of `diffsim eval` (default: 3x the training steps)",
                      OPTIONAL, "-", lo=2, hi=10**7),
}, "Training of the controller by gradients through the simulation.", _check_training)


@dataclass
class RobotScene:
    """A scene file's simulation part plus its control sections.

    Attributes:
        path: the scene file. raw: the parsed TOML without the control sections.
        controller: the validated ``[controller]`` dict. training: ``[training]``.
        dim: spatial dimension. name: scene name.
    """

    path: Path
    raw: dict
    controller: dict
    training: dict
    dim: int
    name: str

    def load(self, num_envs: int, window: int | None = None, steps: int | None = None):
        """The :class:`~diffsim.scene.Scene` with ``num_envs`` environments, a solver window
        of ``window`` steps and a horizon of ``steps`` (default: ``[solver] steps``)."""
        raw = copy.deepcopy(self.raw)
        if steps is not None:
            raw["solver"]["steps"] = int(steps)
        return load_scene(raw, num_envs=num_envs, window=window, base_dir=self.path.parent)

    @property
    def command_names(self) -> list[str]:
        return list(self.controller["commands"])

    def steps(self) -> int:
        return int(self.training.get("steps") or self.raw["solver"]["steps"])

    def velocity_scale(self) -> float:
        return float(self.training.get("velocity_scale")
                     or max(np.abs(self.training["velocity_range"]).max(), 1e-3))

    def eval_velocities(self) -> list[float]:
        if "eval_velocities" in self.training:
            return [float(v) for v in self.training["eval_velocities"]]
        lo, hi = self.training["velocity_range"]
        vs = np.linspace(lo, hi, 6)
        vs = vs[np.abs(vs) > 1e-9][-5:]
        return [float(v) for v in vs]


def read_robot_scene(path) -> RobotScene:
    """Parse a robot scene file and validate its ``[controller]`` and ``[training]`` tables.

    Raises :class:`~diffsim.scene.SceneError` for problems in those tables; the rest of
    the file is validated when :meth:`RobotScene.load` builds it.
    """
    path = Path(path)
    if not path.is_file():
        raise SceneError(f"scene file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SceneError(f"invalid TOML: {exc}", str(path)) from None
    sol = raw.get("solver", {}) if isinstance(raw.get("solver"), dict) else {}
    dim = sol.get("dim", 2) if sol.get("dim", 2) in (2, 3) else 2
    ctx = Context(file=str(path), base_dir=path.parent, dim=dim, stem=path.stem)
    controller = validate_table(raw.pop("controller", {}), CONTROLLER, ["controller"], ctx) or {}
    training = validate_table(raw.pop("training", {}), TRAINING, ["training"], ctx) or {}
    ctx.raise_if_any()
    raw.setdefault("scene", {}).setdefault("name", path.stem)
    return RobotScene(path, raw, controller, training, dim, raw["scene"]["name"])
