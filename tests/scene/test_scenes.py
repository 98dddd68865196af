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


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``{scene path: (completed process, output dir)}`` for every scene, run in parallel."""
    base = tmp_path_factory.mktemp("scenes")
    outs = {p: base / p.stem for p in SCENE_FILES}
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        done = dict(zip(SCENE_FILES, pool.map(lambda p: _run(p, outs[p]), SCENE_FILES)))
    return {p: (done[p], outs[p]) for p in SCENE_FILES}


def test_scenes_exist():
    names = {p.stem for p in SCENE_FILES}
    assert {"mass_spring_walker", "mass_spring_lattice_drop", "mass_spring_pendulum"} <= names


@pytest.mark.parametrize("path", SCENE_FILES, ids=lambda p: p.stem)
def test_scene_validates_and_runs(path, runs):
    spec = read_scene(path)
    proc, out = runs[path]
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
