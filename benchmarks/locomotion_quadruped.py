"""One training iteration at the size of Complex Locomotion's 3D quadruped.

Fang et al. 2022 ("Complex Locomotion Skill Learning via Differentiable Physics") train a
3D mass-spring quadruped of 48 masses and 272 springs with batches of 32 environments and
1,000-step rollouts; their code runs one such iteration in about 22 s on this machine.
This script times ours on the same size (``scenes/mass_spring_robot_quadruped3d.toml``:
48 masses, 272 springs, a 64-unit controller, velocity and heading commands): forward
rollout of 32 environments x 1,000 steps, the locomotion losses, the backward pass through
every step and an Adam update, i.e. ``Trainer.step``.

Each configuration runs in its own process, pinned to one core (``taskset -c 0``) and
unpinned; the median over ``--iters`` iterations is reported (the first, which compiles,
is excluded and reported separately).

Usage:
    python benchmarks/locomotion_quadruped.py [--iters 3] [--batch 32] [--steps 1000]
        [--json benchmarks/results/locomotion_quadruped.json]
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT / "scenes" / "mass_spring_robot_quadruped3d.toml"
REFERENCE_SECONDS = 22.0  # Complex Locomotion's own code, one iteration, this machine


def worker(iters: int, batch: int, steps: int, precision: str) -> dict:
    t0 = time.perf_counter()
    from diffsim.core import backend

    backend.init(arch="cpu", precision=precision)
    from diffsim.control.train import Trainer

    out = tempfile.mkdtemp(prefix="quadruped_bench_")
    try:
        trainer = Trainer(SCENE, out, batch=batch, steps=steps, truncate=0, progress=False)
        counts = trainer.scene.counts
        t_build = time.perf_counter() - t0
        times = []
        for _ in range(iters + 1):
            t = time.perf_counter()
            entry = trainer.step()
            trainer.iteration += 1
            times.append(time.perf_counter() - t)
        times_sorted = sorted(times[1:])
        return {"particles": counts["particle"], "springs": counts["spring"],
                "actuators": counts["actuator"], "batch": batch, "steps": steps,
                "controller_inputs": trainer.ctrl.n_inputs, "hidden": trainer.ctrl.H,
                "precision": precision, "build_seconds": t_build, "first_iteration_seconds": times[0],
                "iteration_seconds": times_sorted[len(times_sorted) // 2], "all_seconds": times[1:],
                "loss": entry.get("loss")}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run(pinned: bool, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--iters", str(args.iters), "--batch",
           str(args.batch), "--steps", str(args.steps), "--precision", args.precision]
    if pinned:
        if shutil.which("taskset") is None:
            return {"error": "taskset not found"}
        cmd = ["taskset", "-c", "0"] + cmd
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--precision", default="float32", choices=("float32", "float64"))
    p.add_argument("--json", help="write the results here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.iters, args.batch, args.steps, args.precision)))
        return
    rows = {"pinned (taskset -c 0)": run(True, args), "unpinned": run(False, args)}
    print(f"one training iteration, 3D quadruped, B={args.batch}, T={args.steps} "
          f"(Complex Locomotion: {REFERENCE_SECONDS:.0f} s)")
    print(f"{'configuration':<24}{'s / iteration':>15}{'vs reference':>14}{'first (compile)':>17}")
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:<24}  failed: {r['error']}")
            continue
        print(f"{name:<24}{r['iteration_seconds']:>15.2f}{r['iteration_seconds'] / REFERENCE_SECONDS:>13.2f}x"
              f"{r['first_iteration_seconds']:>17.1f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"reference_seconds": REFERENCE_SECONDS, **rows}, indent=2))


if __name__ == "__main__":
    main()
