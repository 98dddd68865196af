"""Data loaders: formats, units, trials, and bad data named by file and row."""

import numpy as np
import pytest

from diffsim.sysid import (
    DataError,
    Recording,
    load_forces,
    load_markers,
    load_point_clouds,
    save_markers_csv,
    save_markers_npz,
)


def _rec(trial="a", T=5, M=2, dim=3):
    t = np.linspace(0.0, 0.4, T) + np.r_[0, 0.01, 0, 0.02, 0][:T]  # irregular sampling
    vals = np.arange(T * M * dim, dtype=float).reshape(T, M, dim) * 1e-3
    return Recording("markers", t, vals, [f"m{i}" for i in range(M)], np.ones((T, M), bool), "", trial)


@pytest.mark.parametrize("fmt", ["csv", "npz"])
def test_roundtrip_units_and_trials(tmp_path, fmt):
    recs = [_rec("a"), _rec("b", T=4)]
    path = tmp_path / f"m.{fmt}"
    (save_markers_csv if fmt == "csv" else save_markers_npz)(path, recs, length_unit="mm")
    back = load_markers(path)
    assert [r.trial for r in back] == ["a", "b"]
    for r, orig in zip(back, recs):
        np.testing.assert_allclose(r.values, orig.values, rtol=1e-12, atol=1e-15)  # mm -> m
        np.testing.assert_allclose(r.time, orig.time)
        assert r.names == orig.names and r.mask.all()


def test_csv_declared_and_requested_units(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("time,a.x,a.y\n0,1,2\n0.5,3,4\n")
    r = load_markers(p, length_unit="cm", time_unit="ms")[0]
    np.testing.assert_allclose(r.values[1, 0], [0.03, 0.04])
    np.testing.assert_allclose(r.time, [0.0, 0.0005])
    p.write_text("# length_unit: mm\ntime,a.x,a.y\n0,1,2\n0.5,3,4\n")
    assert np.isclose(load_markers(p)[0].values[1, 0, 0], 0.003)
    with pytest.raises(DataError, match="declares length_unit = 'mm' but 'cm'"):
        load_markers(p, length_unit="cm")
    with pytest.raises(DataError, match="unknown length unit 'furlong'"):
        load_markers(_write(tmp_path, "# length_unit: furlong\ntime,a.x\n0,1\n"))


def _write(tmp_path, text, name="bad.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_bad_rows_are_named(tmp_path):
    p = _write(tmp_path, "time,a.x,a.y\n0,1,2\n0.1,nan,2\n")
    with pytest.raises(DataError, match=r"bad\.csv: row 3: column 'a\.x': value is nan") as e:
        load_markers(p)
    assert e.value.row == 3 and e.value.column == "a.x"
    assert load_markers(p, missing="mask")[0].mask.tolist() == [[True], [False]]
    p = _write(tmp_path, "# c\ntime,a.x\n0,1\n0.2,1\n0.1,1\n")
    with pytest.raises(DataError, match=r"row 5: column 'time': time 0.1 does not increase"):
        load_markers(p)
    with pytest.raises(DataError, match=r"row 3: column 'a\.x': expected a number, found 'oops'"):
        load_markers(_write(tmp_path, "time,a.x\n0,1\n0.1,oops\n"))
    with pytest.raises(DataError, match="row 3: expected 2 values"):
        load_markers(_write(tmp_path, "time,a.x\n0,1\n0.1,1,5\n"))
    with pytest.raises(DataError, match="no 'time' column"):
        load_markers(_write(tmp_path, "a.x,a.y\n0,1\n"))
    with pytest.raises(DataError, match="not contiguous"):
        load_markers(_write(tmp_path, "trial,time,a.x\n1,0,1\n2,0,1\n1,0.1,1\n"))
    with pytest.raises(DataError, match="file not found"):
        load_markers(tmp_path / "nope.csv")


def test_npz_errors_and_no_pickle(tmp_path):
    p = tmp_path / "m.npz"
    np.savez(p, time=np.array([0.0, 0.1, 0.1]), positions=np.zeros((3, 1, 2)))
    with pytest.raises(DataError, match=r"m\.npz: row 2: column 'time': time 0.1 does not increase"):
        load_markers(p)
    pos = np.zeros((3, 1, 2))
    pos[1, 0, 1] = np.inf
    np.savez(p, time=np.array([0.0, 0.1, 0.2]), positions=pos)
    with pytest.raises(DataError, match=r"row 1: column 'positions\[:, 0, 1\] \(m0.y\)'"):
        load_markers(p)
    np.savez(p, time=np.array([0.0, 0.1]), positions=np.array([[None], [None]], dtype=object))
    with pytest.raises(DataError, match="pickle"):
        load_markers(p)
    np.savez(p, time=np.array([0.0, 0.1]), positions=np.zeros((2, 1, 2)), length_unit=np.array("mm"),
             trial_offsets=np.array([0, 3]))
    with pytest.raises(DataError, match="trial_offsets"):
        load_markers(p)


def test_forces_scalar_and_vector(tmp_path):
    p = _write(tmp_path, "# force_unit: mN\ntime,cell,f.x,f.y\n0,1,2,3\n1,4,5,6\n")
    with pytest.raises(DataError, match="different numbers of components"):
        load_forces(p)
    p = _write(tmp_path, "# force_unit: mN\ntime,f.x,f.y\n0,2,3\n1,5,6\n")
    r = load_forces(p)[0]
    assert r.kind == "forces" and r.values.shape == (2, 1, 2)
    np.testing.assert_allclose(r.values[1, 0], [0.005, 0.006])
    q = tmp_path / "s.npz"
    np.savez(q, time=np.array([0.0, 1.0]), forces=np.array([1.0, 2.0]), stress_unit=np.array("MPa"))
    np.testing.assert_allclose(load_forces(q, unit_kind="stress_unit")[0].values[:, 0, 0], [1e6, 2e6])


def test_point_clouds(tmp_path):
    p = _write(tmp_path, "time,x,y\n0,0,0\n0,1,0\n0.1,0,1\n0.1,1,1\n0.1,2,1\n")
    (c,) = load_point_clouds(p, length_unit="mm")
    assert len(c) == 2 and c.frame(1).shape == (3, 2)
    np.testing.assert_allclose(c.frame(1)[2], [0.002, 0.001])
    q = tmp_path / "c.npz"
    np.savez(q, time=np.array([0.0, 0.1]), points=np.zeros((3, 3)), offsets=np.array([0, 2, 2]))
    with pytest.raises(DataError, match="offsets"):
        load_point_clouds(q)
    with pytest.raises(DataError, match=r"row 3: column 'time'"):
        load_point_clouds(_write(tmp_path, "time,x,y\n0.2,0,0\n0.1,1,0\n"))


def test_fallback_unit_never_conflicts(tmp_path):
    p = _write(tmp_path, "# length_unit: m\ntime,a.x\n0,1\n")
    assert load_markers(p, length_unit="default:mm")[0].values[0, 0, 0] == 1.0
    q = _write(tmp_path, "time,a.x\n0,1\n", "plain.csv")
    assert load_markers(q, length_unit="default:mm")[0].values[0, 0, 0] == 0.001
