"""The TOML writer and the scene round trip: read_scene(dump_scene(spec)) == spec."""

import datetime
import math
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffsim.scene import SceneError, dump_scene, dumps_scene, read_scene
from diffsim.scene.toml_writer import dumps

from ._helpers import PENDULUM, SCENE_FILES

keys = st.text(max_size=12)
scalars = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20),
    # no subnormals: once Taichi is initialised the CPU flushes them to zero (FTZ/DAZ),
    # and Python's own float parsing then reads 5e-324 back as 0.0
    st.floats(allow_nan=False, allow_subnormal=False), st.dates(),
    st.datetimes(min_value=datetime.datetime(1, 1, 1)).map(lambda d: d.replace(microsecond=0)),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=6), st.dictionaries(keys, inner, max_size=5)), max_leaves=40)
documents = st.dictionaries(keys, values, max_size=6)


@settings(max_examples=100, deadline=None, database=None)
@given(documents)
def test_writer_round_trips_any_toml_document(doc):
    assert tomllib.loads(dumps(doc)) == doc


def test_writer_special_values():
    doc = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "zero": -0.0,
           "s": 'quote " backslash \\ tab \t nl \n bell \x07 del \x7f é', "key with space": 1,
           "t": [{"a": 1}, {"b": [[1, 2], [3, 4]]}], "empty": {}, "elist": [],
           "long": [[float(i), float(i + 1)] for i in range(40)]}
    back = tomllib.loads(dumps(doc))
    assert math.isnan(back.pop("nan")) and back["inf"] == math.inf and back["ninf"] == -math.inf
    assert math.copysign(1.0, back["zero"]) == -1.0
    del doc["nan"]
    assert back == doc
    text = dumps(doc)
    assert "[[t]]" in text and "\n    [0.0, 1.0],\n" in text  # arrays of tables; long arrays split


@pytest.mark.parametrize("bad", [{1: 2}, {"a": object()}, {"a": 2**64}, {"a": None}])
def test_writer_refuses_non_toml(bad):
    with pytest.raises((TypeError, ValueError)):
        dumps(bad)


@pytest.mark.parametrize("path", SCENE_FILES, ids=lambda p: p.stem)
def test_scene_round_trip(path, tmp_path):
    spec = read_scene(path)
    out = dump_scene(spec, tmp_path / "copy.toml", base_dir=path.parent)
    assert read_scene(out) == spec or _paths_rebased(spec)
    # a second round trip is exact in every case
    again = read_scene(out)
    assert read_scene(dump_scene(again, tmp_path / "again.toml")) == again


def _paths_rebased(spec) -> bool:
    """Whether the scene names files, whose relative paths a copy elsewhere rewrites."""
    sysid = spec.get("sysid", {})
    return ("positions_file" in str(spec) or "file" in str(spec.get("initial", {}))
            or "data" in sysid or "force_data" in sysid)


def test_round_trip_rebases_asset_paths(tmp_path):
    import numpy as np

    from ._helpers import raw

    src = tmp_path / "src"
    src.mkdir()
    doc = raw(PENDULUM)
    np.save(src / "chain.npy", np.asarray(doc["bodies"][0].pop("positions")))
    doc["bodies"][0]["positions_file"] = "chain.npy"
    dump_scene(doc, src / "scene.toml")
    spec = read_scene(src / "scene.toml")
    moved = dump_scene(spec, tmp_path / "elsewhere" / "scene.toml", base_dir=src)
    spec2 = read_scene(moved)
    assert spec2["bodies"][0]["positions_file"] == "../src/chain.npy"
    spec2["bodies"][0]["positions_file"] = "chain.npy"
    assert spec2 == spec


def test_dump_validates_first(tmp_path):
    spec = read_scene(PENDULUM)
    spec["solver"]["dt"] = -1.0
    with pytest.raises(SceneError, match="solver.dt"):
        dump_scene(spec, tmp_path / "x.toml")
    assert not (tmp_path / "x.toml").exists()
    with pytest.raises(SceneError):
        dumps_scene({"solver": 3})


def test_python_values_are_accepted():
    import numpy as np

    spec = read_scene(PENDULUM)
    spec["solver"]["gravity"] = np.array([0.0, -1.0])
    spec["bodies"][0]["springs"] = [tuple(s) for s in spec["bodies"][0]["springs"]]
    spec["solver"]["steps"] = np.int64(5)
    back = tomllib.loads(dumps_scene(spec))
    assert back["solver"]["gravity"] == [0.0, -1.0] and back["solver"]["steps"] == 5
