"""Host-side inputs a scene defines besides the model: initial state and open-loop drive.

* :func:`initial_state` applies ``[initial]`` (file, offset, velocity, noise) to the
  bodies' state, giving ``{name: [B, N, dim]}``;
* :func:`drive` evaluates ``[actuators]`` into an actuation sequence ``[T, B, A]`` with
  every channel ``u_k(t)`` in [-1, 1] (``None`` for ``drive = "none"``).

Both are pure NumPy, computed before any Taichi allocation, so a bad initial-state or
actuation file is reported by ``diffsim validate`` too.
"""

from __future__ import annotations

import numpy as np

from .assets import AssetLoader, check_shape
from .errors import Issue, SceneError


def initial_state(spec: dict, base: dict[str, np.ndarray], num_envs: int,
                  loader: AssetLoader) -> dict[str, np.ndarray]:
    """The initial state ``{name: [B, N, dim]}`` (float64).

    Args:
        spec: validated scene spec. base: the bodies' state ``{name: [B, N, dim]}``.
        num_envs: B. loader: reads ``[initial] file``.
    """
    init = spec["initial"]
    state = {k: np.array(v, dtype=np.float64) for k, v in base.items()}
    if "file" in init:
        key = "initial.file"
        arrays = loader.arrays(init["file"], key, ("x", "v"))
        for name, arr in arrays.items():
            target = state[name].shape
            check_shape(arr, (target[1:], target), key, f"array {name!r}", loader.file)
            state[name] = np.broadcast_to(arr, target).copy()
    state["x"] += np.asarray(init["offset"], float)
    state["v"] += np.asarray(init["velocity"], float)
    if init["noise"] > 0:
        rng = np.random.default_rng(spec["solver"]["seed"])
        state["x"] += rng.normal(0.0, init["noise"], state["x"].shape)
    for name, arr in state.items():
        if not np.all(np.isfinite(arr)):
            raise SceneError([Issue("initial", f"initial {name!r} is not finite")], loader.file)
    return state


def load_drive_file(spec: dict, num_envs: int, actuators: int, loader: AssetLoader):
    """The ``[actuators] file`` array as ``[T, B, A]`` (``None`` unless ``drive = "file"``)."""
    act = spec["actuators"]
    if act["drive"] != "file":
        return None
    key = "actuators.file"
    arr = loader.arrays(act["file"], key, ("actions",))["actions"]
    check_shape(arr, ((None, actuators), (None, num_envs, actuators)), key, "array 'actions'",
                loader.file)
    steps = spec["solver"]["steps"]
    if len(arr) < steps:
        raise SceneError([Issue(key, f"array 'actions' has {len(arr)} steps, the scene runs "
                                f"{steps}")], loader.file)
    if np.abs(arr).max(initial=0.0) > 1.0:
        raise SceneError([Issue(key, "actuation values must lie in [-1, 1]")], loader.file)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, None, :], num_envs, axis=1)
    return arr


def drive(spec: dict, steps: int, num_envs: int, actuators: int, file_actions=None):
    """Actuation ``[steps, B, A]`` of ``[actuators]`` (``None`` for no drive or no actuators).

    ``sine``: ``u_k(t) = A sin(2 pi f t + phase + k phase_step)`` at ``t = i dt``, the start
    of step ``i``. ``file``: the file's first ``steps`` rows (``ValueError`` if it is
    shorter).
    """
    act = spec["actuators"]
    if act["drive"] == "none" or actuators == 0:
        return None
    shape = (steps, num_envs, actuators)
    if act["drive"] == "constant":
        return np.full(shape, act["value"])
    if act["drive"] == "sine":
        t = np.arange(steps) * spec["solver"]["dt"]
        phase = act["phase"] + act["phase_step"] * np.arange(actuators)
        u = act["amplitude"] * np.sin(2 * np.pi * act["frequency"] * t[:, None] + phase[None, :])
        return np.repeat(u[:, None, :], num_envs, axis=1)
    if file_actions is None or len(file_actions) < steps:
        raise ValueError(f"the actuation file has {0 if file_actions is None else len(file_actions)}"
                         f" steps, {steps} were asked for")
    return np.array(file_actions[:steps])
