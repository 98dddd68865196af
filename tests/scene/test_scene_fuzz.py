"""Property test: no input, however malformed, gets out of the loader as anything but SceneError.

Three generators: random TOML documents, random documents shaped like scenes (right
section names, random keys and values), and valid scenes mutated (wrong types, negative
sizes, missing keys, NaN/Inf, huge numbers, long arrays, misspelt names). Every case goes
through the real file path (written with the TOML writer, read by ``read_scene``), which
runs every host stage: parsing, schema, assets, builder, initial state, free parameters,
limits. The Taichi stage is exercised by the scene tests: allocating fields for hundreds of
random scenes would exhaust Taichi's SNode-tree limit in one test process.
"""

import copy
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffsim.scene import SceneError, read_scene
from diffsim.scene.sections import SECTIONS
from diffsim.scene.toml_writer import dumps

from ._helpers import LATTICE, PENDULUM, SCENE_FILES, WALKER, raw

WORKDIR = Path(tempfile.mkdtemp(prefix="diffsim-fuzz-"))
ALL = [raw(p) for p in SCENE_FILES]
# Mutations start from the mass-spring scenes of this package: a mutated scene that stays
# valid is assembled on the host, and some other scenes' assets (a mesh collider's signed
# distance grid) take seconds to build at a mutated resolution.
VALID = [raw(p) for p in (WALKER, PENDULUM, LATTICE)]
KEYS = sorted({k for doc in ALL for sec in doc.values() if isinstance(sec, dict) for k in sec}
              | {k for doc in ALL for sec in doc.values() if isinstance(sec, list)
                 for item in sec if isinstance(item, dict) for k in item})

nasty_numbers = st.sampled_from([0, -1, 1, -1.0, 0.0, 1e308, -1e308, 2**63 - 1, -(2**63),
                                 math.nan, math.inf, -math.inf, 1e-320, 3, 2, 4, 7])
scalars = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(),
                    st.text(max_size=12), nasty_numbers, st.sampled_from(KEYS))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=25)
long_arrays = st.integers(0, 1500).map(lambda n: [[0.0, 0.0]] * n) | st.integers(0, 1500).map(
    lambda n: [[1, 2, 1]] * n)


def _expect_only_scene_error(doc) -> None:
    fd, name = tempfile.mkstemp(suffix=".toml", dir=WORKDIR)
    path = Path(name)
    try:
        path.write_text(dumps(doc), encoding="utf-8")
        read_scene(path)
    except SceneError:
        pass
    finally:
        import os

        os.close(fd)
        path.unlink()


SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(st.dictionaries(st.sampled_from(SECTIONS) | st.text(max_size=8), values, max_size=6))
def test_random_documents(doc):
    _expect_only_scene_error(doc)


section_tables = st.dictionaries(st.sampled_from(KEYS), values, max_size=8)
scene_like = st.fixed_dictionaries({
    "solver": st.fixed_dictionaries({"kind": st.sampled_from(["mass_spring", "mass_sprng", "x"]),
                                     "dt": nasty_numbers, "steps": nasty_numbers}) | section_tables,
    "bodies": st.lists(st.fixed_dictionaries({"type": st.sampled_from(
        ["particles", "grid_robot", "lattice", "blob"])}).flatmap(
        lambda base: section_tables.map(lambda extra: {**extra, **base})), max_size=3),
}, optional={name: section_tables for name in ("materials", "initial", "actuators", "output")}
   | {"colliders": st.lists(section_tables, max_size=2), "free": st.lists(section_tables, max_size=2)})


@SETTINGS
@given(scene_like)
def test_scene_shaped_documents(doc):
    _expect_only_scene_error(doc)


def _paths(node, prefix=()):
    """Every (container, key) in a document, for mutation."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        yield prefix + (k,)
        if isinstance(v, (dict, list)):
            yield from _paths(v, prefix + (k,))


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def _mutate(doc, data):
    paths = list(_paths(doc))
    if not paths:
        return
    path = data.draw(st.sampled_from(paths))
    parent, key = _get(doc, path[:-1]), path[-1]
    op = data.draw(st.sampled_from(["replace", "delete", "rename", "wrap", "long", "insert"]))
    if op == "replace":
        parent[key] = data.draw(values)
    elif op == "delete":
        del parent[key]
    elif op == "rename" and isinstance(key, str):
        new = data.draw(st.sampled_from([key[:-1], key + "s", key[::-1], key.upper()]))
        if new:
            parent[new] = parent.pop(key)
    elif op == "wrap":
        parent[key] = [parent[key]]
    elif op == "long":
        parent[key] = data.draw(long_arrays)
    elif isinstance(parent, dict):
        parent[data.draw(st.sampled_from(KEYS))] = data.draw(values)


@SETTINGS
@given(st.data())
def test_mutated_valid_scenes(data):
    doc = copy.deepcopy(data.draw(st.sampled_from(VALID)))
    for _ in range(data.draw(st.integers(1, 4))):
        _mutate(doc, data)
    _expect_only_scene_error(doc)


@settings(max_examples=50, deadline=None, database=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_bytes(blob):
    fd, name = tempfile.mkstemp(suffix=".toml", dir=WORKDIR)
    path = Path(name)
    try:
        path.write_bytes(blob)
        read_scene(path)
    except SceneError:
        pass
    finally:
        import os

        os.close(fd)
        path.unlink()
