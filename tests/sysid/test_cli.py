"""`diffsim sysid` end to end on a synthetic motion-capture file and on the real cube tosses,
and its input errors."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from diffsim.cli import main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "sysid"))
import gripper_synthetic  # noqa: E402

SCENE = ROOT / "scenes" / "sysid_spring_gripper.toml"


def test_sysid_cli_writes_report_and_resumes(tmp_path, capsys):
    data = gripper_synthetic.make_data(tmp_path, trials=2, duration=0.5)
    args = ["sysid", str(SCENE), "--data", str(data), "--out", str(tmp_path / "fit"), "--quiet"]
    assert main(args + ["--max-iter", "2"]) == 0
    ckpt = json.loads((tmp_path / "fit" / "checkpoint.json").read_text())
    assert ckpt["iteration"] == 2
    assert main(args + ["--max-iter", "6", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "spring_stiffness" in out and "heldout: 1 experiment(s)" in out
    rep = json.loads((tmp_path / "fit" / "report.json").read_text())
    assert set(rep["parameters"]) == {"spring_stiffness", "spring_damping"}
    assert rep["fit"]["iterations"] >= 3  # continued from the checkpoint
    k = rep["parameters"]["spring_stiffness"]
    assert {"value", "std", "ci95", "units"} <= set(k) and k["units"] == "N/m"
    assert rep["trials"] == {"train": ["trial0"], "heldout": ["trial1"]}
    # fitted beats the prior guess on data the fit never saw
    assert rep["heldout"]["rmse"]["markers"] < rep["heldout_initial"]["rmse"]["markers"]
    for name in ("loss.png", "markers.png", "heldout_error.png"):
        assert (tmp_path / "fit" / name).stat().st_size > 1000


def test_sysid_cli_bad_data(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,g0.x,g0.y\n0.0,0,200\n0.01,nan,200\n")
    assert main(["sysid", str(SCENE), "--data", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv: row 3: column 'g0.x'" in err
    missing = tmp_path / "far.csv"
    missing.write_text("# length_unit: m\ntime,g0.x,g0.y,zz.x,zz.y\n0,0,0.2,5,5\n0.01,0,0.2,5,5\n")
    assert main(["sysid", str(SCENE), "--data", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert "marker 'zz' maps to nothing" in capsys.readouterr().err


CUBE_SCENE = ROOT / "scenes" / "sysid_cube_toss.toml"
CUBE_DATA = ROOT / "assets" / "contactnets_cube_toss" / "cube_tosses.npz"


@pytest.mark.skipif(not CUBE_DATA.exists(), reason="cube toss data not in assets/")
def test_sysid_cli_cube_toss_real_data(tmp_path, capsys):
    """The real cube tosses (tracked rigid poses) through `diffsim sysid`: the shipped
    scene, restricted to three training and two held-out tosses, one LM iteration."""
    import tomllib

    from diffsim.scene.toml_writer import dumps

    doc = tomllib.loads(CUBE_SCENE.read_text())
    doc["sysid"].update(trials=["0", "1", "2", "400", "401"], heldout=["400", "401"])
    doc["sysid"].pop("data")  # relative to the shipped scene: pass --data instead
    text = dumps(doc)
    scene = tmp_path / "cube.toml"
    scene.write_text(text)
    out = tmp_path / "fit"
    assert main(["sysid", str(scene), "--data", str(CUBE_DATA), "--out", str(out), "--quiet",
                 "--max-iter", "1"]) == 0
    assert "ground_friction" in capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["parameters"]) == {"ground_friction", "ground_stiffness", "ground_damping"}
    for row in rep["parameters"].values():
        assert np.isfinite(row["value"]) and row["std"] > 0 and row["std_cluster_robust"] > 0
        assert row["lower"] <= row["value"] <= row["upper"]
    assert rep["trials"]["heldout"] == ["400", "401"]
    assert all(n.split("/")[0] in ("0", "1", "2") for n in rep["trials"]["train"])
    assert len(rep["trials"]["train"]) > 3  # windows of 20 steps, restarted from the data
    for part in ("train", "heldout", "train_initial", "heldout_initial"):
        assert 0.0 < rep[part]["rmse"]["markers"] < 0.2  # m, corner position error
    # the windows start from the measured state: the prior already tracks them to ~mm
    assert rep["train_initial"]["rmse"]["markers"] < 0.01
    assert rep["fit"]["loss_final"] <= rep["fit"]["loss_initial"]
    for name in ("loss.png", "markers.png", "heldout_error.png"):
        assert (out / name).stat().st_size > 1000


def test_sysid_cli_bad_rigid_poses(tmp_path, capsys):
    """Rigid-pose data that are not unit quaternions stop with the file and row."""
    states = np.zeros((6, 13))
    states[:, 0] = 1.0
    states[:, 6] = 0.2
    states[4, 0:4] = [0.5, 0.0, 0.0, 0.0]
    bad = tmp_path / "poses.npz"
    np.savez(bad, states=states, offsets=np.array([0, 3, 6]), dt=np.array(0.01))
    assert main(["sysid", str(CUBE_SCENE), "--data", str(bad), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "poses.npz: row 4: column 'states[:, 0:4]': quaternion norm 0.5 is not 1" in err
