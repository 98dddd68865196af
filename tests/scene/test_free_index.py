"""`[[free]] index`: one component of a vector parameter (gravity's z) is free, the others stay."""

import json

import numpy as np
import pytest

from diffsim.scene import SceneError, load_scene, read_scene


def _scene(tmp_path, free: list, data=None) -> dict:
    """A falling 3D pair of particles joined by a spring (the smallest mass-spring scene)."""
    doc = {
        "scene": {"name": "falling_pair"},
        "solver": {"kind": "mass_spring", "dim": 3, "dt": 0.01, "steps": 20, "substeps": 4,
                   "gravity": [0.0, 0.0, -9.81]},
        "bodies": [{"type": "particles", "positions": [[0.0, 0.0, 1.0], [0.1, 0.0, 1.0]],
                    "masses": [0.1, 0.1], "springs": [[0, 1]], "stiffness": 100.0, "damping": 0.1}],
        "free": free,
    }
    if data is not None:
        doc["sysid"] = {"data": str(data), "split": "none", "optimizer": "lm", "max_iter": 8}
    return doc


GZ = {"name": "gravity", "index": 2, "lower": -12.0, "upper": -8.0}


def test_index_parses_and_labels(tmp_path):
    spec = read_scene(_scene(tmp_path, [GZ, {"name": "gravity", "index": 0, "lower": -1.0, "upper": 1.0}]))
    assert [f.get("index") for f in spec["free"]] == [2, 0]
    scene = load_scene(_scene(tmp_path, [dict(GZ, init=-9.0)]))
    (fp,) = scene.free_params
    assert fp.label == "gravity[2]" and fp.index == 2
    np.testing.assert_allclose(scene.model.get("gravity")[0], [0.0, 0.0, -9.0])  # init: z only
    assert list(scene.free_values()) == ["gravity[2]"]
    scene.set_free({"gravity[2]": -10.0})
    np.testing.assert_allclose(scene.model.get("gravity")[0], [0.0, 0.0, -10.0])
    from diffsim.sysid.params import ParamSpec, apply_values

    spec = ParamSpec.from_free(fp)  # what `diffsim sysid` fits: the z component alone
    assert spec.label == "gravity[2]"
    apply_values(scene.model, [spec], np.array([[-11.0]]))
    np.testing.assert_allclose(scene.model.get("gravity")[0], [0.0, 0.0, -11.0])


@pytest.mark.parametrize("free, where, message", [
    ([dict(GZ, index=3)], "free[0].index", "gravity has components 0..2, found index 3"),
    ([{"name": "ground_friction", "index": 0, "lower": 0.0, "upper": 1.0}], "free[0].index",
     "ground_friction has no components (one value per environment), found index 0"),
    ([{"name": "spring_damping", "index": 1, "lower": 0.0, "upper": 1.0}], "free[0].index",
     "spring_damping has components 0..0, found index 1"),
])
def test_index_out_of_range_names_file_and_key(tmp_path, free, where, message):
    from diffsim.scene.toml_writer import dumps

    doc = _scene(tmp_path, free)
    doc["colliders"] = [{"type": "ground", "height": 0.0}]
    path = tmp_path / "scene.toml"
    path.write_text(dumps(doc))
    with pytest.raises(SceneError) as err:
        load_scene(path)
    text = str(err.value)
    assert str(path) in text and where in text and message in text


@pytest.mark.parametrize("second, clash", [
    ({"name": "gravity", "index": 2, "lower": -11.0, "upper": -9.0}, True),
    ({"name": "gravity", "lower": -11.0, "upper": -9.0}, True),
    ({"name": "gravity", "index": 1, "lower": -1.0, "upper": 1.0}, False),
])
def test_a_component_is_free_once(tmp_path, second, clash):
    doc = _scene(tmp_path, [GZ, second])
    if not clash:
        read_scene(doc)
        return
    with pytest.raises(SceneError, match=r"free\[1\]\.name.*already free in free\[0\]"):
        read_scene(doc)


def test_sysid_fits_gravity_z_only(tmp_path, capsys):
    """`diffsim sysid` with `index = 2` recovers g_z from the scene's own (noise-free)
    trajectory at g_z = -9.5 (the report's only parameter is gravity[2])."""
    from diffsim.cli import main
    from diffsim.scene.toml_writer import dumps
    from diffsim.sysid import Recording, save_markers_csv

    truth = load_scene(_scene(tmp_path, [dict(GZ, init=-9.5)]))
    x = truth.rollout()["x"][:, 0]                             # [T + 1, 2, 3]
    t = truth.dt * np.arange(len(x))
    rec = Recording("markers", t, x, ["a", "b"], np.ones(x.shape[:2], bool))
    data = save_markers_csv(tmp_path / "fall.csv", [rec])
    scene = tmp_path / "scene.toml"
    scene.write_text(dumps(_scene(tmp_path, [dict(GZ, init=-9.0)], data)))
    assert main(["sysid", str(scene), "--out", str(tmp_path / "fit"), "--quiet"]) == 0
    rep = json.loads((tmp_path / "fit" / "report.json").read_text())
    assert list(rep["parameters"]) == ["gravity[2]"]
    assert rep["parameters"]["gravity[2]"]["value"] == pytest.approx(-9.5, abs=1e-4)
    assert "gravity[2]" in capsys.readouterr().out
