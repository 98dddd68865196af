"""Every scenes/mpm_*.toml loads and runs a few steps (a few environments' worth of checks).

The ``mpm`` kind is registered by importing :mod:`diffsim.solvers.mpm.scene` (the scene
registry also imports it on discovery once it is listed in its plugin modules).
"""

from pathlib import Path

import numpy as np
import pytest

import diffsim.solvers.mpm.scene  # noqa: F401  (registers [solver] kind = "mpm")
from diffsim.scene import load_scene, read_scene

SCENES = sorted((Path(__file__).resolve().parents[2] / "scenes").glob("mpm_*.toml"))


def test_the_five_scenes_exist():
    assert {p.stem for p in SCENES} >= {"mpm_walker_2d", "mpm_robot_3d", "mpm_snow", "mpm_sand", "mpm_fluid"}


@pytest.mark.slow  # tests/scene/test_scenes.py runs every scene file through the CLI
@pytest.mark.parametrize("path", SCENES, ids=lambda p: p.stem)
def test_scene_runs(path):
    spec = read_scene(path)
    assert spec["solver"]["kind"] == "mpm"
    scene = load_scene(path, window=4)
    traj = scene.rollout(steps=4)
    x = traj["x"]
    assert x.shape[0] == 5 and np.all(np.isfinite(x))
    assert np.abs(x[-1] - x[0]).max() > 0  # something moved
