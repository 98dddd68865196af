"""scenes/contact_*.toml: one scene per collider type, mass-spring bodies falling on it.

Every scene validates and its collider drawings render (host only, no Taichi); one of
them (the mesh: loader, mesh signed distance grid, solver) is built and run: its state
stays finite and nothing goes through the collider. Running each of them is the scene
suite's job (tests/scene/test_scenes.py runs every file in scenes/): building a model
costs seconds of kernel compilation per scene. The collider types come from
:mod:`diffsim.contact.scene`, a plugin of the scene registry (``PLUGIN_MODULES``).
"""

from pathlib import Path

import numpy as np
import pytest

from diffsim.io import render_frame_2d, render_frame_3d
from diffsim.scene import SceneError, collider_types, load_scene, read_scene

SCENES = sorted((Path(__file__).resolve().parents[2] / "scenes").glob("contact_*.toml"))


def test_every_collider_type_has_a_scene():
    types = {c["type"] for p in SCENES for c in read_scene(p)["colliders"]}
    assert {"plane", "box", "sphere", "capsule", "cylinder", "heightfield", "mesh"} <= types


@pytest.mark.parametrize("path", SCENES, ids=lambda p: p.stem)
def test_contact_scene_validates_and_draws(path):
    spec = read_scene(path)
    dim = spec["solver"]["dim"]
    dicts = [collider_types()[c["type"]].drawing(c, dim) for c in spec["colliders"]]
    points = np.zeros((1, dim))
    render = render_frame_2d if dim == 2 else render_frame_3d
    img = render(points, colliders=dicts, size=(48, 48), **({} if dim == 2 else {"up": "z"}))
    assert img.shape == (48, 48, 3)


def test_mesh_scene_runs():
    scene = load_scene(next(p for p in SCENES if p.stem == "contact_mesh"), window=1)
    x = scene.rollout(steps=100, record=("x",))["x"]  # 0.2 s: the block lands on the step
    assert np.all(np.isfinite(x))
    dist = np.stack([scene.solver.colliders.query(x[f])[0] for f in range(0, 101, 5)])
    # bodies fall <= 0.25 m, hit at v <= 2.2 m/s and sink up to v / sqrt(k / m) = 7 mm
    assert dist.min() > -1e-2, float(dist.min())
    assert dist.min() < 2e-3  # and it did land on the mesh


def test_scene_errors_name_the_key():
    spec = read_scene(SCENES[0])
    spec["colliders"] = [{"type": "heightfield", "heights": [0.0, 0.1, 0.0], "ny": 2, "spacing": 0.1}]
    with pytest.raises(SceneError, match="ny"):
        read_scene(spec)
    spec["colliders"] = [{"type": "box", "half_extents": [0.1, -0.1]}]
    with pytest.raises(SceneError, match="half_extents"):
        read_scene(spec)
