"""Tests for diffsim.io: atomic writes, every output format read back, and rendering."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

from diffsim.io import (
    atomic_path,
    atomic_write,
    plot_curves,
    read_mesh,
    render_frame_2d,
    render_frame_3d,
    save_json_atomic,
    save_npz_atomic,
    write_gif,
    write_mp4,
    write_ply,
    write_png,
    write_trajectory_npz,
    write_vtu,
)

WHITE = np.array([255, 255, 255])


def _is_white(pixel) -> bool:
    return bool(np.all(np.asarray(pixel, dtype=int) >= 250))


# ----------------------------------------------------------------------------- atomic


def test_atomic_write_failure_leaves_no_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.bin"

    def writer(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError, match="crash mid-write"):
        atomic_write(target, writer)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_failure_keeps_old_file_and_success_replaces_it(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".json"
            tmp.write_text("new but incomplete")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]

    atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["state.json"]


def test_atomic_new_file_mode_follows_umask_and_parents_are_created(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "a" / "b" / "f.txt", lambda t: t.write_text("x"))
    finally:
        os.umask(old)
    assert path.read_text() == "x"
    # mkstemp makes 0600 files; outputs must be readable like any other file.
    assert path.stat().st_mode & 0o777 == 0o666 & ~old


def test_failed_save_keeps_previous_file(tmp_path):
    target = tmp_path / "m.npz"
    save_npz_atomic(target, a=np.arange(3))
    with pytest.raises(TypeError, match="pickle"):
        save_npz_atomic(target, a=np.array([{"x": 1}], dtype=object))
    with np.load(target, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["a"], np.arange(3))


# ----------------------------------------------------------------------------- npz / json


def test_npz_round_trip_without_pickle_at_exact_path(tmp_path):
    target = tmp_path / "arrays.dat"  # no .npz suffix: must not be renamed
    arrays = {"x": np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32),
              "ids": np.arange(5, dtype=np.int64), "dt": 1e-3, "name": np.array("run-1"),
              # names that would collide with np.savez's own parameters
              "file": np.ones(2), "allow_pickle": np.zeros(2), "path": np.array([7])}
    assert save_npz_atomic(target, **arrays) == target
    assert os.listdir(tmp_path) == ["arrays.dat"]
    with np.load(target, allow_pickle=False) as data:
        assert set(data.files) == set(arrays)
        for key, value in arrays.items():
            np.testing.assert_array_equal(data[key], value)
            assert data[key].dtype == np.asarray(value).dtype


def test_trajectory_npz_checks_frame_count(tmp_path):
    x = np.zeros((10, 4, 2))
    path = write_trajectory_npz(tmp_path / "traj.npz", x=x, v=x + 1, loss=np.arange(10.0),
                                dt=0.01)
    with np.load(path, allow_pickle=False) as data:
        assert data["x"].shape == (10, 4, 2) and float(data["dt"]) == 0.01
    with pytest.raises(ValueError, match="frame count"):
        write_trajectory_npz(tmp_path / "bad.npz", x=x, v=x[:9])
    assert not (tmp_path / "bad.npz").exists()


def test_json_round_trip_with_numpy_values(tmp_path):
    obj = {"loss": np.float32(0.5), "grad": np.arange(3), "n": np.int64(7), "ok": True,
           "diverged": float("nan")}
    path = save_json_atomic(tmp_path / "metrics.json", obj)
    back = json.loads(path.read_text())
    assert back["loss"] == 0.5 and back["grad"] == [0, 1, 2] and back["n"] == 7
    assert back["ok"] is True and np.isnan(back["diverged"])
    with pytest.raises(TypeError):
        save_json_atomic(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists()


# ----------------------------------------------------------------------------- images


def test_png_round_trip(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    path = write_png(tmp_path / "f.png", img)
    with Image.open(path) as im:
        assert im.size == (50, 40) and im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), img)
    # floats in [0, 1] are accepted; wrong shapes are not
    write_png(tmp_path / "g.png", np.ones((8, 8)))
    with Image.open(tmp_path / "g.png") as im:
        assert np.asarray(im).min() == 255
    with pytest.raises(ValueError):
        write_png(tmp_path / "bad.png", np.zeros((8, 8, 2), dtype=np.uint8))


def _frames(count=6, shape=(32, 48)):
    return [np.full(shape + (3,), 30 * i, dtype=np.uint8) for i in range(count)]


def test_gif_frame_count(tmp_path):
    path = write_gif(tmp_path / "a.gif", _frames(6), fps=20)
    with Image.open(path) as im:
        assert im.n_frames == 6 and im.size == (48, 32)
        assert im.info["duration"] == 50
    with pytest.raises(ValueError, match="same size"):
        write_gif(tmp_path / "b.gif", [np.zeros((8, 8, 3)), np.zeros((9, 8, 3))])
    assert not (tmp_path / "b.gif").exists()


def _has_ffmpeg() -> bool:
    try:
        import imageio_ffmpeg
        imageio_ffmpeg.get_ffmpeg_exe()
        return True
    except (ImportError, RuntimeError):
        return False


@pytest.mark.skipif(not _has_ffmpeg(), reason="imageio-ffmpeg (bundled ffmpeg) not installed")
def test_mp4_round_trip_frame_count_size_and_content(tmp_path):
    import re
    import subprocess

    import imageio_ffmpeg

    frames = _frames(7, shape=(31, 45))
    path = write_mp4(tmp_path / "a.mp4", iter(frames), fps=10)  # a generator is fine
    assert os.listdir(tmp_path) == ["a.mp4"]
    # Decode with the bundled ffmpeg directly (imageio_ffmpeg.read_frames leaks its pipes).
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "info", "-i", str(path),
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True, timeout=60)
    # yuv420p needs even sizes: 45x31 is padded to 46x32 by repeating the edge pixels
    assert re.search(rb"Video: h264.*\b46x32\b", out.stderr)
    decoded = np.frombuffer(out.stdout, dtype=np.uint8).reshape(-1, 32, 46, 3)
    assert len(decoded) == 7
    np.testing.assert_allclose(decoded.reshape(7, -1).mean(axis=1), [30 * i for i in range(7)],
                               atol=4)


def test_mp4_without_ffmpeg_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # makes the import fail
    with pytest.raises(RuntimeError, match="imageio-ffmpeg"):
        write_mp4(tmp_path / "a.mp4", _frames(2))
    assert not (tmp_path / "a.mp4").exists()


def test_plot_curves_png(tmp_path):
    path = plot_curves(tmp_path / "loss.png", {"train": np.exp(-np.arange(30) / 5.0),
                                              "commanded": [1.0] * 30},
                       logy=True, title="loss", size=(320, 200))
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    assert arr.shape == (200, 320, 3)
    assert (arr < 200).any()  # axes, text and lines were drawn
    with pytest.raises(ValueError):
        plot_curves(tmp_path / "empty.png", {})
    with pytest.raises(ValueError, match="1D"):
        plot_curves(tmp_path / "bad.png", {"m": np.zeros((3, 3))})


# ----------------------------------------------------------------------------- meshes


def test_vtu_round_trip_points_cells_and_data(tmp_path):
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(5, 3))
    tets = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    pdata = {"mass": rng.random(5), "v": rng.normal(size=(5, 3)), "F": rng.normal(size=(5, 3, 3)),
             "id": np.arange(5), "fixed": np.array([True, False, False, False, True])}
    path = write_vtu(tmp_path / "f.vtu", pts, cells={"tetra": tets}, point_data=pdata,
                     cell_data={"J": np.array([1.5, 0.5])})
    points, cells, back = read_mesh(path)
    np.testing.assert_allclose(points, pts)
    np.testing.assert_array_equal(cells["tetra"], tets)
    np.testing.assert_allclose(back["mass"], pdata["mass"])
    np.testing.assert_allclose(back["v"], pdata["v"])
    np.testing.assert_allclose(back["F"].reshape(5, 3, 3), pdata["F"])  # stored as 9 comps
    np.testing.assert_array_equal(back["id"], pdata["id"])
    np.testing.assert_array_equal(back["fixed"], [1, 0, 0, 0, 1])
    import meshio
    assert np.allclose(meshio.read(path).cell_data["J"][0], [1.5, 0.5])


def test_vtu_2d_points_are_padded_and_get_vertex_cells(tmp_path):
    pts = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    points, cells, _ = read_mesh(write_vtu(tmp_path / "p.vtu", pts,
                                           point_data={"rho": [1.0, 2.0, 3.0]}))
    np.testing.assert_allclose(points, [[0, 1, 0], [2, 3, 0], [4, 5, 0]])
    np.testing.assert_array_equal(cells["vertex"].ravel(), [0, 1, 2])
    with pytest.raises(ValueError, match="out of range"):
        write_vtu(tmp_path / "bad.vtu", pts, cells={"line": np.array([[0, 3]])})
    with pytest.raises(ValueError, match="length 3"):
        write_vtu(tmp_path / "bad.vtu", pts, point_data={"rho": [1.0, 2.0]})
    assert not (tmp_path / "bad.vtu").exists()


def test_ply_round_trip_points_triangles_and_data(tmp_path):
    rng = np.random.default_rng(3)
    pts2 = rng.random((4, 2))
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    vel = rng.normal(size=(4, 2))
    path = write_ply(tmp_path / "s.ply", pts2, triangles=tris,
                     point_data={"pressure": rng.random(4), "vel": vel, "id": np.arange(4)})
    points, cells, back = read_mesh(path)
    np.testing.assert_allclose(points[:, :2], pts2)
    np.testing.assert_array_equal(points[:, 2], 0.0)
    np.testing.assert_array_equal(cells["triangle"], tris)
    np.testing.assert_allclose(back["vel_0"], vel[:, 0])
    np.testing.assert_allclose(back["vel_1"], vel[:, 1])
    np.testing.assert_array_equal(back["id"], np.arange(4))
    # a bare point cloud
    points, cells, _ = read_mesh(write_ply(tmp_path / "c.ply", rng.random((6, 3))))
    assert points.shape == (6, 3) and "triangle" not in cells


# ----------------------------------------------------------------------------- 2D render


def _px(img, x, y, bounds=(0.0, 1.0, 0.0, 1.0)):
    """Pixel at world (x, y) for a square image whose view is ``bounds``."""
    h, w = img.shape[:2]
    col = int((x - bounds[0]) / (bounds[1] - bounds[0]) * w)
    row = int((bounds[3] - y) / (bounds[3] - bounds[2]) * h)
    return img[row, col]


def test_render_2d_particle_lands_at_its_world_position():
    unit = (0.0, 1.0, 0.0, 1.0)
    blank = render_frame_2d(np.zeros((0, 2)), bounds=unit, size=(100, 100))
    assert blank.shape == (100, 100, 3) and blank.dtype == np.uint8
    assert (blank == 255).all()
    img = render_frame_2d(np.array([[0.25, 0.75]]), bounds=unit, size=(100, 100),
                          point_radius=4, colors=(1.0, 0.0, 0.0))
    hit = _px(img, 0.25, 0.75).astype(int)
    assert hit[0] > 200 and hit[1] < 60 and hit[2] < 60  # red where the particle is
    assert _is_white(_px(img, 0.75, 0.25))  # and nowhere else
    assert (img != 255).any(axis=2).sum() < 100  # only about pi * 4^2 pixels changed


def test_render_2d_view_keeps_aspect_and_auto_bounds_cover_data():
    # A wide window in a square image grows vertically to y in [0, 1], one world unit per
    # 100 px on both axes: a point at y = 0.9 is on screen and a circle stays round.
    img = render_frame_2d(np.array([[0.5, 0.9]]), bounds=(0, 1, 0.4, 0.6), size=(100, 100),
                          point_radius=3, colors="k",
                          colliders=[{"type": "sphere", "center": [0.5, 0.5], "radius": 0.1}])
    assert not _is_white(_px(img, 0.5, 0.9))
    solid = ~(img >= 250).all(axis=2)
    width, height = solid[50].sum(), solid[40:80, 50].sum()
    assert abs(width - 20) <= 2 and abs(height - 20) <= 2
    pts = np.array([[10.0, -5.0], [12.0, -4.0]])
    img = render_frame_2d(pts, size=(120, 120), point_radius=3, colors="k")
    dark = np.argwhere((img < 100).all(axis=2))
    assert len(dark) > 0 and dark.min() > 0 and dark.max() < 119  # inside, with margin


def test_render_2d_springs_colored_by_actuation_and_triangles_filled():
    pos = np.array([[0.1, 0.2], [0.9, 0.2], [0.1, 0.8], [0.9, 0.8], [0.5, 0.5]])
    img = render_frame_2d(pos, springs=np.array([[0, 1], [2, 3]]),
                          spring_colors=np.array([-1.0, 1.0]), bounds=(0, 1, 0, 1),
                          size=(100, 100), point_radius=0)
    low, high = _px(img, 0.5, 0.2).astype(int), _px(img, 0.5, 0.8).astype(int)
    assert low[2] > low[0] + 50  # -1: blue
    assert high[0] > high[2] + 50  # +1: red
    img = render_frame_2d(pos, triangles=np.array([[0, 1, 4]]), bounds=(0, 1, 0, 1),
                          size=(100, 100), point_radius=0)
    assert not _is_white(_px(img, 0.5, 0.3))  # inside the triangle
    assert _is_white(_px(img, 0.5, 0.7))  # outside it
    with pytest.raises(ValueError, match="out of range"):
        render_frame_2d(pos, springs=np.array([[0, 5]]))


def test_render_2d_colliders_are_drawn_where_they_are():
    unit = (0.0, 1.0, 0.0, 1.0)
    pts = np.zeros((0, 2))
    cases = [
        ({"type": "plane", "point": [0.0, 0.5], "normal": [0.0, 1.0]}, (0.5, 0.2), (0.5, 0.8)),
        ({"type": "box", "center": [0.5, 0.5], "half_extents": [0.3, 0.05], "angle": np.pi / 2},
         (0.5, 0.7), (0.7, 0.5)),
        ({"type": "sphere", "center": [0.7, 0.3], "radius": 0.1}, (0.7, 0.3), (0.3, 0.7)),
        ({"type": "capsule", "p0": [0.2, 0.5], "p1": [0.8, 0.5], "radius": 0.05},
         (0.5, 0.5), (0.5, 0.7)),
        ({"type": "capsule", "center": [0.5, 0.5], "half_length": 0.3, "radius": 0.05,
          "angle": np.pi / 2}, (0.5, 0.75), (0.75, 0.5)),
        ({"type": "heightfield", "x": [0.0, 0.5, 1.0], "height": [0.2, 0.6, 0.2]},
         (0.5, 0.4), (0.1, 0.5)),
    ]
    for collider, inside, outside in cases:
        img = render_frame_2d(pts, colliders=[collider], bounds=unit, size=(100, 100))
        assert not _is_white(_px(img, *inside)), collider
        assert _is_white(_px(img, *outside)), collider


def test_render_2d_unknown_or_malformed_collider_raises():
    pos = np.zeros((1, 2))
    with pytest.raises(ValueError, match="unknown collider type 'teapot'"):
        render_frame_2d(pos, colliders=[{"type": "teapot", "center": [0, 0]}])
    with pytest.raises(ValueError, match="unknown collider type None"):
        render_frame_2d(pos, colliders=[{"center": [0, 0]}])
    with pytest.raises(ValueError, match="radius"):
        render_frame_2d(pos, colliders=[{"type": "sphere", "center": [0, 0]}])
    with pytest.raises(ValueError, match="normal"):
        render_frame_2d(pos, colliders=[{"type": "plane", "point": [0, 0], "normal": [0, 0]}])
    with pytest.raises(ValueError, match="shape"):
        render_frame_2d(np.zeros((3, 3)))


# ----------------------------------------------------------------------------- 3D render


def test_render_3d_particle_and_scene():
    box = (0.0, 1.0, 0.0, 1.0, 0.0, 1.0)
    blank = render_frame_3d(np.zeros((0, 3)), bounds=box, size=(120, 100))
    assert blank.shape == (100, 120, 3) and blank.dtype == np.uint8
    assert (blank == 255).all()
    # the centre of the view box projects to the image centre whatever the camera angle
    img = render_frame_3d(np.array([[0.5, 0.5, 0.5]]), bounds=box, size=(120, 100),
                          point_radius=5, colors=(0.0, 0.0, 0.0), elev=35, azim=10)
    assert img[50, 60].max() < 60
    assert (img != 255).any(axis=2).sum() < 200

    verts = np.array([[0.2, 0.2, 0.2], [0.8, 0.2, 0.2], [0.5, 0.8, 0.2], [0.5, 0.5, 0.8]])
    colliders = [
        {"type": "plane", "point": [0, 0, 0], "normal": [0, 1, 0]},
        {"type": "box", "center": [0.5, 0.5, 0.5], "half_extents": [0.1, 0.2, 0.1],
         "rotation": np.eye(3)},
        {"type": "sphere", "center": [0.2, 0.8, 0.2], "radius": 0.1},
        {"type": "capsule", "p0": [0.6, 0.9, 0.1], "p1": [0.9, 0.7, 0.5], "radius": 0.05},
        {"type": "heightfield", "x": np.linspace(0, 1, 5), "z": np.linspace(0, 1, 4),
         "height": np.zeros((5, 4))},
    ]
    scene = render_frame_3d(verts, surface_triangles=np.array([[0, 1, 2], [0, 1, 3]]),
                            springs=np.array([[2, 3]]), colliders=colliders, size=(120, 100))
    assert (scene != 255).any(axis=2).sum() > 500
    z_up = render_frame_3d(verts[:, [0, 2, 1]], up="z", size=(120, 100))
    assert (z_up != 255).any()


def test_render_3d_unknown_collider_raises():
    with pytest.raises(ValueError, match="unknown collider type 'cylinder'"):
        render_frame_3d(np.zeros((1, 3)), colliders=[{"type": "cylinder"}])
    with pytest.raises(ValueError, match="2D only"):
        render_frame_3d(np.zeros((1, 3)), colliders=[{"type": "circle", "center": [0, 0, 0],
                                                      "radius": 1.0}])
