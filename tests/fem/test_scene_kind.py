"""The ``fem`` scene kind: the bundled scenes assemble, and bad inputs give scene errors.

Host-only (no Taichi): :func:`diffsim.scene.plan_scene` validates and assembles the builder.
The scene files themselves are also run by tests/scene/test_scenes.py.
"""

from pathlib import Path

import pytest

from diffsim.scene import SceneError, plan_scene
from diffsim.scene.toml_writer import dumps

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, tets, actuators", [
    ("fem_drop", 162, 0), ("fem_cantilever", 480, 0), ("fem_muscle_robot", 72, 4), ("fem_colliders", 24, 0)])
def test_bundled_scenes_assemble(name, tets, actuators):
    plan = plan_scene(ROOT / "scenes" / f"{name}.toml")
    assert plan.counts["element"] == tets
    assert plan.counts["actuator"] == actuators


def scene(**body):
    return {"solver": {"kind": "fem", "dim": 3, "dt": 1e-3, "steps": 2},
            "bodies": [{"type": "box", "lower": [0, 0, 0], "size": [0.1, 0.1, 0.1],
                        "resolution": [2, 2, 2], **body}]}


def test_region_without_vertices_is_an_error():
    with pytest.raises(SceneError, match=r"bodies\[0\]\.pin_regions\[0\].*contains no vertex"):
        plan_scene(scene(pin_regions=[[5, 5, 5, 6, 6, 6]]))


def test_regions_select_pins_loads_and_muscles():
    plan = plan_scene(scene(pin_regions=[[-1, -1, -1, 0.001, 1, 1]],
                            load_regions=[[0.099, -1, -1, 1, 1, 1]], load_forces=[[0, 0, -9.0]],
                            muscle_regions=[[0, 0, 0, 0.05, 1, 1]], muscle_fibers=[[1, 0, 0]],
                            muscle_stresses=[1e3]))
    b = plan.builder
    assert len(b.fixed) == 9 and len(b.load_vertices) == 9
    assert sum(f[2] for f in b.load_values) == pytest.approx(-9.0)
    assert plan.counts["actuator"] == 1 and len(b.muscles) == 24


def test_mismatched_loads():
    with pytest.raises(SceneError, match="one force per load region"):
        plan_scene(scene(load_regions=[[0, 0, 0, 1, 1, 1]]))


def test_sdf_colliders_explicit_only(tmp_path):
    """The explicit integrator takes every collider type; the implicit ones the ground
    only, and the error names the file, the key and both facts."""
    spec = scene()
    spec["colliders"] = [{"type": "ground"}, {"type": "sphere", "position": [0, 0, -1], "radius": 0.1}]
    assert plan_scene(spec).builder.colliders[0].type == "sphere"
    path = tmp_path / "implicit.toml"
    spec["solver"]["integrator"] = "implicit"
    path.write_text(dumps(spec))
    with pytest.raises(SceneError) as err:
        plan_scene(path)
    assert err.value.key == "colliders[1].type"
    message = str(err.value)
    assert str(path) in message and "ground collider only" in message and "'explicit' supports every" in message


def test_mesh_body_from_assets():
    spec = scene()
    spec["bodies"] = [{"type": "mesh", "file": str(ROOT / "assets" / "fem" / "cube_3.vtu"), "scale": 2.0}]
    assert plan_scene(spec).counts["element"] == 162
