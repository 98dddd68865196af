"""Load curves (stress vs stretch) through `diffsim sysid`: Treloar's rubber end to end, the
data errors, the FEM scene's roller / driven keys, and the reaction observable's gradient."""

import json
from pathlib import Path

import numpy as np
import pytest

from diffsim.cli import main
from diffsim.scene import SceneError, read_scene
from diffsim.sysid.data import DataError, load_load_curve

ROOT = Path(__file__).resolve().parents[2]
SCENE = ROOT / "scenes" / "sysid_treloar.toml"
DATA = next((p for p in (ROOT / "assets" / "treloar_rubber" / "treloar1944_uniaxial.csv",
                         Path("/work/shared/data/treloar_rubber/treloar1944_uniaxial.csv"))
             if p.exists()), None)


def _csv(tmp_path, text: str, name: str = "curve.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_load_curve_reads_units_and_rows(tmp_path):
    p = _csv(tmp_path, "# stress_unit: MPa\nstretch,P\n1.5,0.3\n2.0,0.5\n")
    c = load_load_curve(p, "stretch", "P")
    np.testing.assert_allclose(c.stress, [3e5, 5e5])
    assert c.rows.tolist() == [3, 4]
    rec = c.as_recording(1.0)
    assert rec.time.tolist() == [1.0, 2.0] and rec.values.shape == (2, 1, 1)
    # the scene's unit is only a fallback: the file's declaration wins
    assert load_load_curve(p, "stretch", "P", "default:Pa").stress[0] == pytest.approx(3e5)


@pytest.mark.parametrize("text, message", [
    ("stretch,P\n1.5,0.3\n", "no column 'nominal_stress' (columns: stretch, P)"),
    ("stretch,nominal_stress\n1.5,0.3\n1.7,abc\n", "row 3: column 'nominal_stress': expected a number, found 'abc'"),
    ("stretch,nominal_stress\n1.5,0.3\nnan,0.4\n", "row 3: column 'stretch': value is nan"),
    ("stretch,nominal_stress\n1.5,0.3\n1.4,0.4\n", "row 3: column 'stretch': stretch 1.4 does not increase "
     "(previous point: 1.5 at row 2)"),
    ("stretch,nominal_stress\n0.0,0.3\n1.4,0.4\n", "row 2: column 'stretch': stretch 0 is not positive"),
    ("# stress_unit: MPa\nstretch,nominal_stress\n1.5,0.3\n", "declares stress_unit = 'MPa' but 'kPa'"),
])
def test_load_curve_errors_name_file_row_column(tmp_path, text, message):
    p = _csv(tmp_path, text)
    with pytest.raises(DataError) as err:
        load_load_curve(p, stress_unit="kPa" if "MPa" in text else None)
    assert str(err.value).startswith(str(p)) and message in str(err.value)


def test_load_curve_needs_csv(tmp_path):
    with pytest.raises(DataError, match="read from a .csv table"):
        load_load_curve(_csv(tmp_path, "", "curve.npz"))


def _scene_dict(**body) -> dict:
    import tomllib

    doc = tomllib.loads(SCENE.read_text())
    doc["bodies"][0].update(body)
    doc["sysid"]["data"] = str(ROOT / "assets" / "treloar_rubber" / "treloar1944_uniaxial.csv")
    return doc


@pytest.mark.parametrize("body, key, message", [
    ({"roller_axes": [0, 1]}, "bodies[0].roller_axes", "expected one axis per roller region (3), found 2"),
    ({"driven_axes": [3]}, "bodies[0].driven_axes", "in [0, 2]"),
])
def test_axis_region_keys_are_validated(body, key, message):
    with pytest.raises(SceneError) as err:
        read_scene(_scene_dict(**body), base_dir=ROOT / "scenes")
    assert key in str(err.value) and message in str(err.value)


def test_sysid_keys_are_validated():
    doc = _scene_dict()
    doc["sysid"]["split"] = "trials"
    with pytest.raises(SceneError, match="load_curve data are one curve"):
        read_scene(doc, base_dir=ROOT / "scenes")
    doc["sysid"]["split"] = "stretch"
    del doc["sysid"]["heldout_above"]
    with pytest.raises(SceneError, match="split = 'stretch' needs heldout_above"):
        read_scene(doc, base_dir=ROOT / "scenes")


@pytest.fixture(scope="module")
def treloar_scene():
    from diffsim.scene import load_scene

    return load_scene(SCENE)


def test_driven_region_conflicts_with_a_roller():
    from diffsim.scene import load_scene

    doc = _scene_dict(roller_regions=[[0.00999, -1.0, -1.0, 1.0, 1.0, 1.0]], roller_axes=[0])
    with pytest.raises(SceneError, match=r"bodies\[0\]\.driven_regions\[0\].*already pinned"):
        load_scene(doc, base_dir=ROOT / "scenes")


@pytest.mark.skipif(DATA is None, reason="Treloar data not available")
def test_reaction_observable_gradient(treloar_scene):
    """The load-curve loss's dL/dz (observable VJP + quasi-static adjoint) against central
    differences, and the observable's own VJP in x and mu."""
    from diffsim.sysid.config import sysid_config
    from diffsim.sysid.params import ParamSpec
    from diffsim.sysid.pipeline import build_experiments
    from diffsim.sysid.problem import SysIDProblem

    scene = treloar_scene
    cfg = sysid_config(scene)
    train, held, _ = build_experiments(scene, cfg, SCENE.parent, DATA)
    assert [len(e.meta["stretch"]) for e in train + held] == [6, 21]
    problem = SysIDProblem(scene.solver, scene.dt, [ParamSpec.from_free(f) for f in scene.free_params],
                           train)
    z = np.array([[0.4]])
    ev = problem.evaluate(z)
    h = 1e-5
    fd = (problem.evaluate(z + h, grad=False).loss - problem.evaluate(z - h, grad=False).loss) / (2 * h)
    assert ev.grad[0, 0] == pytest.approx(fd, rel=1e-5)

    obs = train[0].terms[0].observable
    rng = np.random.default_rng(0)
    X = scene.initial_state["x"][0]
    x = (X * [1.8, 0.8, 0.75] + 1e-4 * rng.standard_normal(X.shape))[None]
    params = {n: scene.model.get(n)[0] for n in scene.model.params}
    gx, gp = obs.vjp({"x": x}, params, np.array([0]), np.ones((1, 1, 1)))
    dx = rng.standard_normal(x.shape) * 1e-7
    fd_x = (obs.predict({"x": x + dx}, params, [0]) - obs.predict({"x": x - dx}, params, [0])) / 2
    assert np.sum(gx["x"] * dx) == pytest.approx(float(fd_x.ravel()[0]), rel=1e-6)
    for name in ("element_mu", "element_lam"):
        dp = params[name] * 1e-6
        hi, lo = dict(params), dict(params)
        hi[name], lo[name] = params[name] + dp, params[name] - dp
        fd_p = (obs.predict({"x": x}, hi, [0]) - obs.predict({"x": x}, lo, [0])) / 2
        assert np.dot(gp[name], dp) == pytest.approx(float(fd_p.ravel()[0]), rel=1e-6)


@pytest.mark.skipif(DATA is None, reason="Treloar data not available")
def test_sysid_cli_treloar(tmp_path, capsys):
    """`diffsim sysid` on Treloar's data: mu ~ 0.30 MPa on stretch <= 3, and the neo-Hookean
    model's known failure above (-60 % at stretch 7.5) in the report's held-out error."""
    out = tmp_path / "fit"
    assert main(["sysid", str(SCENE), "--data", str(DATA), "--out", str(out), "--quiet"]) == 0
    assert "element_mu" in capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    mu = rep["parameters"]["element_mu"]
    assert mu["value"] == pytest.approx(0.298e6, rel=0.02) and mu["std"] < 0.02 * mu["value"]
    # the closed-form stress least squares of P = mu (l - l^-2) on the same rows: 0.2980 MPa
    lc = rep["load_curve"]
    lam, P = np.array(lc["train"]["stretch"]), np.array(lc["train"]["stress"])
    a = lam - lam ** -2
    assert mu["value"] == pytest.approx(a @ P / (a @ a), rel=0.01)
    assert rep["trials"] == {"train": ["curve"], "heldout": ["curve/heldout"]}
    assert len(lc["heldout"]["stretch"]) == 15 and min(lc["heldout"]["stretch"]) > 3.0
    assert rep["train"]["rmse"]["stress"] < 0.02e6                   # Pa
    assert 1.5e6 < rep["heldout"]["rmse"]["stress"] < 1.9e6         # strain stiffening
    assert lc["heldout"]["relative_error_at_max_stretch"] < -0.5
    assert rep["heldout"]["rmse"]["stress"] < rep["heldout_initial"]["rmse"]["stress"]
    for name in ("loss.png", "stress_stretch.png"):
        assert (out / name).stat().st_size > 1000


@pytest.mark.skipif(DATA is None, reason="Treloar data not available")
def test_sysid_cli_bad_load_curve(tmp_path, capsys):
    bad = _csv(tmp_path, "stretch,nominal_stress_MPa\n1.2,0.1\n1.1,0.2\n")
    assert main(["sysid", str(SCENE), "--data", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "curve.csv: row 3: column 'stretch': stretch 1.1 does not increase" in capsys.readouterr().err
