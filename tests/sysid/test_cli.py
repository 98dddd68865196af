"""`diffsim sysid` end to end on a synthetic motion-capture file, and its input errors."""

import json
import sys
from pathlib import Path

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
