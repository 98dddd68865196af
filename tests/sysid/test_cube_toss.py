"""Real data: the ContactNets cube tosses (assets/contactnets_cube_toss) load, convert to
particle states consistently, and run through the identification in a short mode."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "sysid"))
import cube_toss  # noqa: E402

if not cube_toss.DATA.exists():
    pytest.skip("cube toss data not in assets/", allow_module_level=True)


def test_asset_is_the_documented_data():
    tosses, dt, side, mass, inertia = cube_toss.load_tosses()
    assert len(tosses) == 550 and abs(dt - 1 / 148) < 1e-12
    assert (side, mass, inertia) == (0.1048, 0.37, 0.00081)
    assert (cube_toss.DATA.parent / "LICENSE").exists() and (cube_toss.DATA.parent / "README.txt").exists()
    assert cube_toss.DATA.stat().st_size < 4 << 20


def test_initial_states_match_the_tracked_motion():
    """Particle velocities from (pose, v, body-frame omega) equal the finite-differenced
    corner positions of consecutive poses (the convention the fit starts every rollout with)."""
    from diffsim.sysid.rigid import rigid_particles

    tosses, dt, side, mass, inertia = cube_toss.load_tosses()
    body, _ = cube_toss.cube_body(side, mass, inertia)
    errs, scale = [], []
    for st in tosses[:40]:
        x, v = rigid_particles(st[:3, 0:4], st[:3, 4:7], st[:3, 7:10], st[:3, 10:13], body)
        fd = (x[2] - x[0]) / (2 * dt)              # central difference at sample 1 (in flight)
        errs.append(np.abs(v[1] - fd).mean())
        scale.append(np.abs(v[1]).mean())
    assert np.median(errs) < 0.1 * np.median(scale), (np.median(errs), np.median(scale))


@pytest.mark.slow
def test_short_identification_run(tmp_path):
    assert cube_toss.main(["--short", "--out", str(tmp_path)]) == 0
    rep = json.loads((tmp_path / "report.json").read_text())
    assert set(rep["parameters"]) == {"ground_friction", "ground_stiffness", "ground_damping", "gravity[2]"}
    for label in ("prior", "fitted"):
        h = rep["heldout_whole_toss"][label]
        assert h["tosses"] == 2 and np.isfinite(h["position_rmse_m"])
    assert "std_cluster_robust" in rep["parameters"]["ground_friction"]
    assert (tmp_path / "heldout_error.png").exists()
