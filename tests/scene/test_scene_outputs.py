"""Every output format of `diffsim run` is written and reads back."""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from diffsim.cli import main
from diffsim.core import backend
from diffsim.io import read_mesh
from diffsim.scene import dump_scene, read_scene
from diffsim.scene.outputs import frame_indices, frame_stride, parse_formats

from ._helpers import PENDULUM, raw

backend.init(arch="cpu", precision="float64")

STEPS, EVERY = 12, 4
FRAMES = [0, 4, 8, 12]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    doc = raw(PENDULUM)
    doc["output"] = {"every": EVERY, "size": [96, 64], "fps": 10.0, "dir": "results"}
    scene = dump_scene(doc, tmp / "pendulum.toml")
    # no --out: [output] dir resolves relative to the scene file
    code = main(["run", str(scene), "--steps", str(STEPS), "--quiet",
                 "--format", "gif,mp4,png,vtu,ply,npz"])
    assert code == 0
    return tmp / "results"


def test_npz(run_dir):
    with np.load(run_dir / "trajectory.npz", allow_pickle=False) as z:
        assert z["x"].shape == (STEPS + 1, 1, 6, 2) and z["v"].shape == (STEPS + 1, 1, 6, 2)
        assert np.allclose(z["t"], np.arange(STEPS + 1) * 0.001) and z["dt"] == 0.001
        x0 = z["x"][0, 0]
    assert np.allclose(x0[:, 0], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    with np.load(run_dir / "model.npz", allow_pickle=False) as z:
        assert z["topology_spring_indices"].shape == (5, 2)
        assert np.allclose(z["param_particle_mass"][0], [100, .1, .1, .1, .1, .1])


def test_png(run_dir):
    files = sorted((run_dir / "frames").glob("*.png"))
    assert [f.name for f in files] == [f"frame_{i:05d}.png" for i in FRAMES]
    with Image.open(files[0]) as im:
        assert im.size == (96, 64)


def test_gif(run_dir):
    with Image.open(run_dir / "animation.gif") as im:
        assert im.size == (96, 64) and im.n_frames >= 2


def test_mp4(run_dir):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(run_dir / "animation.mp4"))
    meta = next(reader)
    frames = list(reader)
    assert tuple(meta["size"]) == (96, 64) and len(frames) == len(FRAMES)


def test_vtu_and_pvd(run_dir):
    files = sorted((run_dir / "vtu").glob("*.vtu"))
    assert len(files) == len(FRAMES)
    points, cells, data = read_mesh(files[-1])
    with np.load(run_dir / "trajectory.npz") as z:
        assert np.allclose(points[:, :2], z["x"][STEPS, 0]) and np.allclose(points[:, 2], 0)
        assert np.allclose(data["velocity"][:, :2], z["v"][STEPS, 0])
    assert cells["line"].shape == (5, 2) and data["velocity"].shape == (6, 3)
    assert np.allclose(data["mass"], [100, .1, .1, .1, .1, .1])
    root = ET.parse(run_dir / "trajectory.pvd").getroot()
    sets = root.findall("./Collection/DataSet")
    assert [d.get("file") for d in sets] == [f"vtu/frame_{i:05d}.vtu" for i in FRAMES]
    assert np.allclose([float(d.get("timestep")) for d in sets], np.array(FRAMES) * 0.001)


def test_ply(run_dir):
    files = sorted((run_dir / "ply").glob("*.ply"))
    assert len(files) == len(FRAMES)
    points, _, data = read_mesh(files[0])
    assert points.shape == (6, 3) and "velocity_1" in data


def test_scene_copy_and_summary(run_dir):
    spec = read_scene(run_dir / "scene.toml")
    assert spec["output"]["every"] == EVERY
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["steps"] == STEPS and summary["counts"]["particle"] == 6
    assert set(summary["formats"]) == {"gif", "mp4", "png", "vtu", "ply", "npz"}


def test_no_temporary_files_left(run_dir):
    leftovers = [p for p in run_dir.rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_helpers():
    assert parse_formats("gif, NPZ,gif") == ["gif", "npz"]
    with pytest.raises(ValueError, match="avi"):
        parse_formats("avi")
    assert frame_indices(10, 4) == [0, 4, 8, 9] and frame_indices(1, 5) == [0]
    spec = read_scene(PENDULUM)
    assert frame_stride(spec) == 33  # one frame per 1/30 s at dt = 1 ms
