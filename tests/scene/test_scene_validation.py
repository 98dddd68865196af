"""Scene validation: every kind of mistake gives a SceneError with key, expected, found, hint.

These tests stop before any Taichi allocation (``read_scene`` / ``plan_scene``), so they
are fast and do not consume Taichi field trees.
"""

import copy

import numpy as np
import pytest

from diffsim.scene import SceneError, SceneFileNotFoundError, plan_scene, read_scene

from ._helpers import PENDULUM, WALKER, raw

BASE = raw(WALKER)


def _err(mutate, source=None, **kw) -> SceneError:
    doc = copy.deepcopy(source if source is not None else BASE)
    mutate(doc)
    with pytest.raises(SceneError) as info:
        read_scene(doc, **kw)
    return info.value


def test_scene_error_is_a_value_error():
    assert issubclass(SceneError, ValueError)
    assert issubclass(SceneFileNotFoundError, SceneError)
    assert issubclass(SceneFileNotFoundError, FileNotFoundError)


def test_valid_scene_is_normalised():
    spec = read_scene(WALKER)
    assert spec["solver"]["stiffness" if False else "drag"] == 15.0
    assert spec["solver"]["substeps"] == 1 and spec["solver"]["num_envs"] == 1  # defaults
    assert isinstance(spec["colliders"][0]["stiffness"], float)  # 2e4 stays float
    assert spec["materials"]["muscle"]["stiffness"] == 3e4
    assert spec["scene"]["name"] == "mass_spring_walker"


def test_misspelt_key_names_file_path_and_suggestion(tmp_path):
    text = WALKER.read_text().replace("cell_size = 0.05", "cell_sise = 0.05")
    path = tmp_path / "typo.toml"
    path.write_text(text)
    with pytest.raises(SceneError) as info:
        read_scene(path)
    e = info.value
    assert e.file == str(path) and e.key == "bodies[0].cell_sise"
    assert e.suggestion == "cell_size"
    assert str(path) in str(e) and "did you mean 'cell_size'" in str(e)


@pytest.mark.parametrize("mutate,key,fragment", [
    (lambda d: d["solver"].update(dt="fast"), "solver.dt", "found string 'fast'"),
    (lambda d: d["solver"].update(dt=float("nan")), "solver.dt", "finite"),
    (lambda d: d["solver"].update(dt=float("inf")), "solver.dt", "finite"),
    (lambda d: d["solver"].update(dt=True), "solver.dt", "boolean"),
    (lambda d: d["solver"].update(steps=10.0), "solver.steps", "an integer"),
    (lambda d: d["solver"].update(steps=0), "solver.steps", "found 0"),
    (lambda d: d["solver"].pop("steps"), "solver.steps", "missing required key"),
    (lambda d: d["solver"].update(gravity=[0.0, 1.0, 2.0]), "solver.gravity", "expected 2 items"),
    (lambda d: d["solver"].update(dim=4), "solver.dim", "in [2, 3]"),
    (lambda d: d["bodies"][0].update(cell_size=-1.0), "bodies[0].cell_size", "> 0"),
    (lambda d: d["bodies"][0].update(cells=[[0, 0]]), "bodies[0].cells[0]", "expected 3 items"),
    (lambda d: d["bodies"][0].update(cells=[[0, 0, 2]]), "bodies[0].cells[0]", "0 or 1"),
    (lambda d: d["bodies"][0].update(cells=[]), "bodies[0].cells", "at least 1"),
    (lambda d: d["bodies"][0].update(origin="here"), "bodies[0].origin", "array"),
    (lambda d: d["colliders"][0].update(friction=-0.5), "colliders[0].friction", "found -0.5"),
    (lambda d: d["colliders"].append({"type": "ground"}), "colliders", "at most 1"),
    (lambda d: d["output"].update(formats=["gif", "mp5"]), "output.formats[1]", "mp4"),
    (lambda d: d["output"].update(size=[10, 10]), "output.size[0]", "[16, 4096]"),
    (lambda d: d["output"].update(env=3), "output.env", "num_envs"),
    (lambda d: d.update(output=[1, 2]), "output", "a table"),
    (lambda d: d["free"][0].update(lower=10.0, upper=1.0), "free[0].upper", "> lower"),
    (lambda d: d["free"][1].update(scale="log", lower=-1.0), "free[1].lower", "scale = 'log'"),
    (lambda d: d["free"][0].update(init=1.0), "free[0].init", "in [1000, 100000]"),
    (lambda d: d["free"].append(dict(d["free"][0])), "free[2].name", "already free"),
    (lambda d: d["actuators"].update(drive="file"), "actuators.file", "missing required key"),
    (lambda d: d["actuators"].update(file="a.npy"), "actuators.file", "only used with"),
    (lambda d: d["actuators"].update(drive="sinus"), "actuators.drive", "'sine'"),
])
def test_bad_values(mutate, key, fragment):
    e = _err(mutate)
    assert key in [i.key for i in e.issues], str(e)
    assert fragment in str(e)


@pytest.mark.parametrize("mutate,key,suggestion", [
    (lambda d: d.update(bodys=d.pop("bodies")), "bodys", "bodies"),
    (lambda d: d["solver"].update(kind="mass_sprng"), "solver.kind", "mass_spring"),
    (lambda d: d["bodies"][0].update(type="grid_robo"), "bodies[0].type", "grid_robot"),
    (lambda d: d["bodies"][0].update(material="muscel"), "bodies[0].material", "muscle"),
    (lambda d: d["free"][0].update(name="spring_stifness"), "free[0].name", "spring_stiffness"),
    (lambda d: d["colliders"][0].update(frction=1.0), "colliders[0].frction", "friction"),
    (lambda d: d["solver"].update(drgs=1.0), "solver.drgs", "drag"),
])
def test_did_you_mean(mutate, key, suggestion):
    e = _err(mutate)
    issue = next(i for i in e.issues if i.key == key)
    assert issue.suggestion == suggestion


def test_unknown_kind_does_not_flag_its_keys():
    e = _err(lambda d: d["solver"].update(kind="mpm_nope"))
    assert [i.key for i in e.issues] == ["solver.kind"]


def test_all_problems_reported_together():
    def mutate(d):
        d["solver"].update(dt=-1.0, steps=0)
        d["output"]["formats"] = ["gif", "avi"]
    e = _err(mutate)
    assert {i.key for i in e.issues} == {"solver.dt", "solver.steps", "output.formats[1]"}
    assert "3 problems" in str(e)


def test_host_stage_errors():
    e = _err(lambda d: d["bodies"][0].update(actuation=0.0))
    assert e.key == "actuators.drive" and "no actuators" in str(e)
    e = _err(lambda d: d.update(colliders=[]))
    assert e.key == "free[1].name" and "ground" in str(e)
    e = _err(lambda d: d["solver"].update(window=10**7, steps=10**7))
    assert e.key == "solver.window" and "memory_mb" in str(e)
    e = _err(lambda d: d["solver"].update(num_envs=100_000) or d["bodies"].append(
        {"type": "lattice", "counts": [30, 30]}))
    assert e.key == "solver.num_envs" and "limit" in str(e)


def test_particles_body_checks():
    pend = raw(PENDULUM)
    e = _err(lambda d: d["bodies"][0].update(springs=[[0, 9]]), pend)
    assert e.key == "bodies[0].springs[0]" and "0..5" in str(e)
    e = _err(lambda d: d["bodies"][0].update(springs=[[2, 2]]), pend)
    assert e.key == "bodies[0].springs[0]"
    e = _err(lambda d: d["bodies"][0].update(masses=[1.0]), pend)
    assert e.key == "bodies[0].masses" and "6 entries" in str(e)
    e = _err(lambda d: d["bodies"][0].update(positions_file="p.npy"), pend)
    assert "exactly one" in str(e)
    e = _err(lambda d: d["bodies"][0].update(actuated=[7], actuation=0.1), pend)
    assert e.key == "bodies[0].actuated[0]"


def test_huge_arrays_are_refused_before_allocation():
    pend = raw(PENDULUM)
    e = _err(lambda d: d["bodies"][0].update(masses=[1.0] * 1_000_001), pend)
    assert e.key == "bodies[0].masses" and "at most 1000000" in str(e)
    e = _err(lambda d: d.update(bodies=[{"type": "lattice", "counts": [1000, 1000]}]))
    assert "at most 50000 cells" in str(e)


def test_toml_syntax_error_names_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[solver]\nkind = \"mass_spring\"\ndt = \n")
    with pytest.raises(SceneError) as info:
        read_scene(path)
    assert "invalid TOML" in str(info.value) and "line 3" in str(info.value)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"a = 1" + b"9" * 5000, b"[" * 5000])
def test_unreadable_scene_files(tmp_path, content):
    path = tmp_path / "x.toml"
    path.write_bytes(content)
    with pytest.raises(SceneError):
        read_scene(path)


def test_missing_scene_file(tmp_path):
    with pytest.raises(SceneFileNotFoundError) as info:
        read_scene(tmp_path / "nope.toml")
    assert "not found" in str(info.value)
    with pytest.raises(SceneError):
        read_scene(tmp_path)  # a directory


def _pend_with_file(tmp_path, name, content=None):
    doc = raw(PENDULUM)
    body = doc["bodies"][0]
    pos = np.asarray(body.pop("positions"))
    if content is None:
        np.save(tmp_path / name, pos)
    elif isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)
    else:
        np.save(tmp_path / name, content)
    body["positions_file"] = name
    return doc, pos


def test_assets_resolve_relative_to_scene_file(tmp_path):
    doc, pos = _pend_with_file(tmp_path, "chain.npy")
    plan = plan_scene(doc, base_dir=tmp_path)
    assert np.allclose(plan.initial_state["x"][0], pos)
    # the same through a file in that directory
    from diffsim.scene import dump_scene

    dump_scene(doc, tmp_path / "scene.toml")
    assert read_scene(tmp_path / "scene.toml")["bodies"][0]["positions_file"] == "chain.npy"


@pytest.mark.parametrize("name,content,fragment", [
    ("chain.npy", b"not a numpy file", "could not read asset file"),
    ("chain.npy", np.zeros((6, 3)), "shape [N, 2]"),
    ("chain.npy", np.full((6, 2), np.nan), "NaN"),
    ("chain.npy", np.array(["a", "b"]), "numeric"),
    ("chain.npz", b"PK\x03\x04 broken zip", "could not read asset file"),
    ("chain.csv", b"1,2\n3,x\n", "could not read asset file"),
])
def test_malformed_asset_files_are_named(tmp_path, name, content, fragment):
    doc, _ = _pend_with_file(tmp_path, name, content)
    with pytest.raises(SceneError) as info:
        read_scene(doc, base_dir=tmp_path)
    assert info.value.key == "bodies[0].positions_file"
    assert fragment in str(info.value) and name in str(info.value)


def test_missing_asset_file_is_named(tmp_path):
    doc = raw(PENDULUM)
    doc["bodies"][0].pop("positions")
    doc["bodies"][0]["positions_file"] = "missing/chain.npy"
    with pytest.raises(SceneError) as info:
        read_scene(doc, base_dir=tmp_path)
    assert "not found" in str(info.value) and str(tmp_path / "missing" / "chain.npy") in str(info.value)


def test_initial_file_and_drive_file(tmp_path):
    doc = copy.deepcopy(BASE)
    x = np.asarray(plan_scene(doc).initial_state["x"][0]) + 0.01
    np.savez(tmp_path / "init.npz", x=x)
    np.save(tmp_path / "acts.npy", np.zeros((682, 8)))
    doc["initial"] = {"file": "init.npz", "velocity": [0.5, 0.0]}
    doc["actuators"] = {"drive": "file", "file": "acts.npy"}
    plan = plan_scene(doc, base_dir=tmp_path)
    assert np.allclose(plan.initial_state["x"][0], x)
    assert np.allclose(plan.initial_state["v"][0], [0.5, 0.0])
    assert plan.drive_file.shape == (682, 1, 8)
    np.save(tmp_path / "acts.npy", np.zeros((10, 8)))
    with pytest.raises(SceneError, match="has 10 steps"):
        plan_scene(doc, base_dir=tmp_path)
    np.save(tmp_path / "acts.npy", np.full((682, 8), 2.0))
    with pytest.raises(SceneError, match=r"\[-1, 1\]"):
        plan_scene(doc, base_dir=tmp_path)
    np.savez(tmp_path / "init.npz", x=np.zeros((3, 2)))
    with pytest.raises(SceneError, match="initial.file"):
        plan_scene(doc, base_dir=tmp_path)


def test_num_envs_override_is_validated():
    assert plan_scene(WALKER, num_envs=3).spec["solver"]["num_envs"] == 3
    with pytest.raises(SceneError, match="num_envs"):
        plan_scene(WALKER, num_envs=0)
