"""Every scene file in scenes/ validates, and runs a few steps through the `diffsim` command.

Parametrised over the glob, so scenes added later are covered without editing this file.
Each run is a separate `diffsim run` process (two at a time): it tests the installed entry
point, and keeps the models of a dozen scenes out of this process, whose Taichi runtime has
a fixed budget of field trees.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from diffsim.scene import read_scene

from ._helpers import ROOT, SCENE_FILES

STEPS = 8
EXE = Path(sys.executable).parent / "diffsim"


def _run(path: Path, out: Path) -> subprocess.CompletedProcess:
    cmd = [str(EXE), "run", str(path), "--steps", str(STEPS), "--format", "npz,png",
           "--out", str(out), "--arch", "cpu", "--quiet"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={**os.environ, "MPLBACKEND": "Agg"})


# One scene per solver family and every mass-spring scene run in `make test`; the other
# scenes (more colliders, materials and robots of the same families) in `make test-all`.
EVERYDAY = {"mass_spring_walker", "mass_spring_lattice_drop", "mass_spring_pendulum",
            "mass_spring_robot_c", "contact_plane", "contact_mesh", "mpm_walker_2d", "mpm_sand",
            "fem_drop", "sysid_spring_gripper"}
FAST = [p for p in SCENE_FILES if p.stem in EVERYDAY]
SLOW = [p for p in SCENE_FILES if p.stem not in EVERYDAY]


def _run_all(paths, base):
    """``{scene path: (completed process, output dir)}``, two processes at a time."""
    outs = {p: base / p.stem for p in paths}
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        done = dict(zip(paths, pool.map(lambda p: _run(p, outs[p]), paths)))
    return {p: (done[p], outs[p]) for p in paths}


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory):
    return _run_all(FAST, tmp_path_factory.mktemp("scenes"))


@pytest.fixture(scope="module")
def slow_runs(tmp_path_factory):
    return _run_all(SLOW, tmp_path_factory.mktemp("scenes_slow"))


def test_scenes_exist():
    names = {p.stem for p in SCENE_FILES}
    assert {"mass_spring_walker", "mass_spring_lattice_drop", "mass_spring_pendulum"} <= names
    assert EVERYDAY <= names


@pytest.mark.parametrize("path", FAST, ids=lambda p: p.stem)
def test_scene_validates_and_runs(path, fast_runs):
    _check_run(path, *fast_runs[path])


@pytest.mark.slow
@pytest.mark.parametrize("path", SLOW, ids=lambda p: p.stem)
def test_other_scene_validates_and_runs(path, slow_runs):
    _check_run(path, *slow_runs[path])


def _check_run(path, proc, out):
    spec = read_scene(path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    with np.load(out / "trajectory.npz", allow_pickle=False) as z:
        x, v = z["x"], z["v"]
    B = spec["solver"]["num_envs"]
    assert x.shape[:2] == (STEPS + 1, B) and x.shape[-1] == spec["solver"]["dim"]
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(v))
    frames = {p.name for p in (out / "frames").glob("*.png")}
    assert {"frame_00000.png", f"frame_{STEPS:05d}.png"} <= frames
    # the run's copy of the scene is the scene itself
    assert read_scene(out / "scene.toml")["solver"] == spec["solver"]
