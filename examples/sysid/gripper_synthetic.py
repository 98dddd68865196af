"""Synthetic end-to-end identification: make a motion-capture recording, then fit it.

The scene ``scenes/sysid_spring_gripper.toml`` describes a mass-spring strip held by a
gripper. This script plays the experimenter: it simulates four trials with the *true*
spring stiffness and damping (200 N/m, 0.5 N s/m) and a different gripper motion each,
adds 1 mm of noise to the strip's markers and 0.05 mm to the gripper's (a robot's encoders
are far more precise than motion capture, and noisy *inputs* bias a fit: see
docs/sysid.md), samples at an irregular ~100 Hz, writes the markers as a CSV in
millimetres (what a motion-capture export looks like), and then runs the same code as
``diffsim sysid`` on it. The report should recover the truth within its error bars.

    python examples/sysid/gripper_synthetic.py --out out/sysid_gripper
    python examples/sysid/gripper_synthetic.py --short      # the quick version the tests run
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCENE = ROOT / "scenes" / "sysid_spring_gripper.toml"
TRUTH = {"spring_stiffness": 200.0, "spring_damping": 0.5}


def gripper_path(t: np.ndarray, trial: int) -> np.ndarray:
    """Gripper displacement [m] ``[T, 2]`` of trial ``trial``: a mix of two sines."""
    rng = np.random.default_rng(100 + trial)
    amp, freq = rng.uniform(0.02, 0.05, 2), rng.uniform(0.8, 2.5, 2)
    ramp = np.minimum(t / 0.2, 1.0)  # start from rest
    return np.stack([amp[0] * np.sin(2 * np.pi * freq[0] * t),
                     amp[1] * np.sin(2 * np.pi * freq[1] * t)], 1) * ramp[:, None]


def make_data(out: Path, trials: int = 4, duration: float = 1.5, sigma: float = 1e-3,
              gripper_sigma: float = 5e-5, seed: int = 0) -> Path:
    """Simulate ``trials`` recordings with the true parameters; returns the CSV path."""
    from diffsim.scene import load_scene
    from diffsim.sysid import KinematicDriver, save_markers_csv
    from diffsim.sysid.synthetic import noisy_recording, simulate

    scene = load_scene(SCENE, num_envs=trials)
    for name, value in TRUTH.items():
        scene.model.set(name, value)
    x0 = scene.initial_state["x"][0]
    top = np.nonzero(np.isclose(x0[:, 1], x0[:, 1].max()))[0]
    dt, steps = scene.dt, int(round(duration / scene.dt))
    t = dt * np.arange(steps + 1)
    kin = np.stack([x0[top][None] + gripper_path(t, k)[:, None] for k in range(trials)], axis=1)
    driver = KinematicDriver(scene.solver, top)
    traj = simulate(scene.solver, dt, steps, {k: v for k, v in scene.initial_state.items()},
                    driver=driver, kinematic=kin)["x"]
    rng = np.random.default_rng(seed)
    names = [("g%d" % list(top).index(i)) if i in top else f"p{i}" for i in range(len(x0))]
    recs = []
    for k in range(trials):
        rec = noisy_recording(traj[:, k], dt, names, 0.0, rng, trial=f"trial{k}", jitter=0.5)
        noise = np.where(np.isin(np.arange(len(x0)), top)[:, None], gripper_sigma, sigma)
        rec.values = rec.values + rng.normal(0.0, 1.0, rec.values.shape) * noise
        recs.append(rec)
    return save_markers_csv(out / "markers.csv", recs, length_unit="mm")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="out/sysid_gripper")
    ap.add_argument("--short", action="store_true", help="two short trials, few iterations")
    args = ap.parse_args(argv)
    from diffsim.core import backend

    if backend.info() is None:
        backend.init(arch="cpu", precision="float64")
    from diffsim.sysid.pipeline import run_sysid

    out = Path(args.out)
    trials, duration = (2, 0.6) if args.short else (4, 1.5)
    data = make_data(out, trials, duration)
    rep = run_sysid(SCENE, data, out, progress=not args.short, max_iter=8 if args.short else None)
    for label, row in rep["parameters"].items():
        truth = TRUTH.get(label)
        print(f"{label:<18} fitted {row['value']:.5g} +- {row['std']:.2g}  (truth {truth:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
