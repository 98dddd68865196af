"""`diffsim train` drives an MPM robot the same way as a mass-spring one (a few short
iterations of scenes/mpm_robot_walker.toml: the controller reads the particles, writes the
muscles' activation, and gets a non-zero gradient through the MPM adjoint)."""

import json
from pathlib import Path

import numpy as np

from diffsim.cli import main
from diffsim.control.checkpoint import load_checkpoint

SCENE = Path(__file__).resolve().parents[2] / "scenes" / "mpm_robot_walker.toml"


def test_cli_trains_an_mpm_robot(tmp_path):
    args = ["train", str(SCENE), "--out", str(tmp_path), "--iters", "2", "--batch", "2",
            "--steps", "16", "--truncate", "0", "--quiet"]
    assert main(args) == 0
    assert load_checkpoint(tmp_path)["iteration"] == 2
    summary = json.loads((tmp_path / "train.json").read_text())
    assert summary["skipped"] == 0
    assert np.all(np.isfinite(summary["loss_history"]))
    state = load_checkpoint(tmp_path)
    norms = [h["grad_norm"] for h in state["history"]]
    assert all(n > 0 and np.isfinite(n) for n in norms), norms
