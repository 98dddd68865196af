"""MPM benchmark: diffsim against DiffTaichi on DiffTaichi's own problems, side by side.

Cases (each runs in its own process, so peak memory and cold start are per case):

* ``walker2d``: DiffTaichi ``diffmpm.py``: its 2D robot (2,976 particles laid out as its
  ``add_rect`` does), 128^2 grid, dt = 1e-3, 1,023 steps, corotated with mu = lam = 10,
  unit particle mass and volume, gravity 3.8, muscle strength 4, floor friction 0.5; one
  iteration is a forward rollout plus the gradient of ``-mean x`` with respect to the
  actuation (checkpointed: ``--window`` steps on the device);
* ``robot3d``: DiffTaichi ``diffmpm3d.py``: its 3D robot (30,495 particles), 64^3 grid,
  dt = 2e-3, 511 steps, neo-Hookean, gravity 10, 16 muscles along z of strength 5;
* ``throughput``: particle-steps per second of a forward step and of a backward step
  (recomputation included) at 1e4 and 1e5 particles (2D block, 256^2 grid);
* ``coldstart``: time from process start to the first gradient of the 3D robot with an
  empty Taichi cache (compilation included);
* ``peer2d`` / ``peer3d``: DiffTaichi's scripts through ``/work/shared/peers/run_difftaichi.py``
  on a checkout given with ``--peer-dir`` (never part of this repository).

Every case uses float32 and 2 CPU threads. Results: a table on stdout, JSON in
``benchmarks/results/mpm.json``. Example::

    python benchmarks/mpm.py --peer-dir /tmp/difftaichi
    python benchmarks/mpm.py --cases walker2d,throughput --iters 3
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEER_RUNNER = Path("/work/shared/peers/run_difftaichi.py")
THREADS = 2


# ----------------------------------------------------------------------------- scenes

def _rect_2d(x, y, w, h, dx):
    """DiffTaichi's 2D ``add_rect`` layout: ``int(w / dx) * 2`` particles per row."""
    nw, nh = int(w / dx) * 2, int(h / dx) * 2
    i, j = np.meshgrid(np.arange(nw), np.arange(nh), indexing="ij")
    return np.stack([x + (i.ravel() + 0.5) * w / nw, y + (j.ravel() + 0.5) * h / nh], axis=1)


def _rect_3d(x, y, z, w, h, d, dx, density=3):
    n = [int(s / dx * density) for s in (w, h, d)]
    i, j, k = np.meshgrid(*[np.arange(c) for c in n], indexing="ij")
    return np.stack([x + (i.ravel() + 0.5) * w / n[0], y + (j.ravel() + 0.5) * h / n[1],
                     z + (k.ravel() + 0.5) * d / n[2]], axis=1)


def walker2d(window: int):
    from diffsim.solvers.mpm import MPMBuilder, SolverMPM

    dx = 1 / 128
    b = MPMBuilder(dim=2, gravity=[0.0, -3.8])
    b.set_walls(friction=0.5)  # DiffTaichi's floor: separate with Coulomb 0.5
    mat = dict(material="corotated", youngs_modulus=25.0, poisson_ratio=0.25, density=1.0, volume=1.0)
    ox, oy = 0.1, 0.03
    b.add_particles(_rect_2d(ox, oy + 0.1, 0.3, 0.1, dx), **mat)
    for lx in (0.0, 0.05, 0.2, 0.25):
        act = b.add_actuator_group(direction=[0.0, 1.0], strength=4.0)
        b.add_particles(_rect_2d(ox + lx, oy, 0.05, 0.1, dx), actuator=act, **mat)
    model = b.finalize(1)
    cfg = SolverMPM.Config(grid_res=128, substeps=1, boundary="separate", boundary_width=3)
    return model, SolverMPM(model, cfg, window=window), 1e-3, 1023, 20.0


def robot3d(window: int):
    from diffsim.solvers.mpm import MPMBuilder, SolverMPM

    dx, block = 1 / 64, 0.1
    b = MPMBuilder(dim=3, gravity=[0.0, -10.0, 0.0])
    b.set_walls(friction=1.5)
    mat = dict(material="neo_hookean", youngs_modulus=25.0, poisson_ratio=0.25, density=1.0, volume=1.0)
    off = np.array([0.1, 0.05, 0.3])
    for leg in range(4):
        lx, lz = leg // 2 * block * 2, leg % 2 * block * 2
        for i in range(4):
            act = b.add_actuator_group(direction=[0.0, 0.0, 1.0], strength=5.0)
            lo = off + [lx + block / 2 * (i // 2), 0.7 * block / 2 * (i % 2), lz]
            b.add_particles(_rect_3d(*lo, block / 2, 0.7 * block / 2, block, dx), actuator=act, **mat)
    for i in range(3):
        b.add_particles(_rect_3d(*(off + [block * i, 0.0, block]), block, block * 0.7, block, dx), **mat)
    model = b.finalize(1)
    cfg = SolverMPM.Config(grid_res=64, substeps=1, boundary="separate", boundary_width=3)
    return model, SolverMPM(model, cfg, window=window), 2e-3, 511, 40.0


def _sine_actions(steps, dt, actuators, omega, rng):
    w = 0.01 * rng.normal(size=(actuators, 4))
    t = np.arange(steps)[:, None] * dt
    basis = np.sin(omega * t + 2 * np.pi * np.arange(4)[None] / 4)
    return np.tanh(basis @ w.T)[:, None, :]


# ----------------------------------------------------------------------------- cases

def case_training(name: str, iters: int, window: int) -> dict:
    """Forward + backward iterations of DiffTaichi's problem; time and memory."""
    from diffsim.autodiff import Rollout

    t_start = time.perf_counter()
    model, solver, dt, steps, omega = {"walker2d": walker2d, "robot3d": robot3d}[name](window)
    rollout = Rollout(solver, steps, dt, record=())  # only the last frame is needed
    init = model.initial_state()
    N = model.counts["particle"]
    acts = _sine_actions(steps, dt, model.counts["actuator"], omega, np.random.default_rng(0))
    times, fwd, losses = [], [], []
    for it in range(iters):
        t0 = time.perf_counter()
        rollout.forward(init, actions=acts)
        last = steps - (len(rollout._segments()) - 1) * rollout.segment
        x = solver.read_frame(last, ("x",))["x"]
        losses.append(-float(x[0, :, 0].mean()))
        t1 = time.perf_counter()
        # dL/dx_T is zero but on the last frame; np.zeros pages stay unmapped elsewhere
        cot = np.zeros((steps + 1,) + x.shape, dtype=x.dtype)
        cot[-1, 0, :, 0] = -1.0 / N
        grads = rollout.backward({"x": cot})
        assert np.all(np.isfinite(grads.actions))
        times.append(time.perf_counter() - t0)
        fwd.append(t1 - t0)
        if it == 0:
            first = time.perf_counter() - t_start
    warm = times[1:] or times
    return {"case": name, "particles": N, "steps": steps, "window": solver.window,
            "iter_s": float(np.median(warm)), "forward_s": float(np.median(fwd[1:] or fwd)),
            "first_iter_incl_compile_s": first, "iters": iters, "losses": losses}


def case_throughput(iters: int) -> dict:
    from diffsim.solvers.mpm import MPMBuilder, SolverMPM

    out = {"case": "throughput", "rows": []}
    for n_target in (10_000, 100_000):
        side = int(np.ceil(np.sqrt(n_target)))
        b = MPMBuilder(dim=2, gravity=[0.0, -9.81], particle_spacing=1 / 512)
        b.add_box([0.1, 0.1], [side / 512, side / 512], material="corotated", youngs_modulus=1e5)
        model = b.finalize(1)
        steps = 20
        solver = SolverMPM(model, SolverMPM.Config(grid_res=256, substeps=1), window=steps)
        solver.write_frame(0, model.initial_state())
        dt = 1e-4
        for rep in range(2):  # the first repetition compiles
            t0 = time.perf_counter()
            for f in range(steps):
                solver.step(solver.state(f), solver.state(f + 1), solver.control(f), dt)
            solver.zero_window_grads()
            t1 = time.perf_counter()
            for f in reversed(range(steps)):
                solver.step_grad(solver.state(f), solver.state(f + 1), solver.control(f), dt)
            import taichi as ti
            ti.sync()
            t2 = time.perf_counter()
        N = model.counts["particle"]
        out["rows"].append({"particles": N, "forward_particle_steps_per_s": N * steps / (t1 - t0),
                            "backward_particle_steps_per_s": N * steps / (t2 - t1)})
    return out


def run_case(args) -> dict:
    from diffsim.core import backend

    backend.init(arch="cpu", precision="float32", threads=THREADS)
    if args.case in ("walker2d", "robot3d"):
        res = case_training(args.case, args.iters, args.window)
    elif args.case == "coldstart":
        res = case_training("robot3d", 1, args.window)
        res["case"] = "coldstart"
    else:
        res = case_throughput(args.iters)
    return res


# ----------------------------------------------------------------------------- driver

def _child(cmd, env=None):
    """Run ``cmd``; returns (stdout, stderr, peak RSS in MiB, wall seconds)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=ROOT,
                                env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own high-water mark
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{stderr[-3000:]}")
    return stdout, stderr, usage.ru_maxrss / 1024, wall


def ours(case, iters, window, cold=False):
    with tempfile.TemporaryDirectory() as tmp:
        res_path = Path(tmp) / "res.json"
        env = {"DIFFSIM_CACHE_DIR": str(Path(tmp) / "cache")} if cold else {}
        cmd = [sys.executable, __file__, "--run-case", case, "--iters", str(iters),
               "--window", str(window), "--result", str(res_path)]
        _, _, rss, wall = _child(cmd, env)
        res = json.loads(res_path.read_text())
    res.update(peak_rss_mib=rss, process_wall_s=wall)
    return res


def peer(example, iters, peer_dir: Path):
    script = peer_dir / "examples" / example
    with tempfile.TemporaryDirectory() as tmp:
        js = Path(tmp) / "peer.json"
        env = {"BENCH_THREADS": str(THREADS), "BENCH_JSON": str(js), "BENCH_MAX_TAPES": str(iters)}
        out, _, rss, wall = _child([sys.executable, str(PEER_RUNNER), str(script), "--iters", str(iters)], env)
        rec = json.loads(js.read_text()) if js.exists() else {"tapes": []}
    tapes = [t["total_s"] for t in rec.get("tapes", [])]
    if not tapes:  # diffmpm3d.py times its own iterations ("per iter X s")
        tapes = [float(line.split("per iter")[1].split("s")[0]) for line in out.splitlines() if "per iter" in line]
    warm = tapes[1:] or tapes
    return {"case": example, "iter_s": float(np.median(warm)), "iters": len(tapes),
            "first_iter_incl_compile_s": tapes[0] if tapes else None, "peak_rss_mib": rss,
            "process_wall_s": wall}


def table(results: dict) -> str:
    rows = ["| problem | engine | time / iteration [s] | ratio | peak memory [MiB] | ratio |",
            "|---|---|---|---|---|---|"]
    for ours_key, peer_key, label in (("walker2d", "peer2d", "diffmpm.py 2D walker"),
                                      ("robot3d", "peer3d", "diffmpm3d.py 3D robot")):
        o, p = results.get(ours_key), results.get(peer_key)
        if o:
            r_t = f"{o['iter_s'] / p['iter_s']:.2f}x" if p else "-"
            r_m = f"{o['peak_rss_mib'] / p['peak_rss_mib']:.2f}x" if p else "-"
            rows.append(f"| {label} ({o['particles']} particles, {o['steps']} steps) | diffsim "
                        f"(window {o['window']}) | {o['iter_s']:.2f} | {r_t} | {o['peak_rss_mib']:.0f} | {r_m} |")
        if p:
            rows.append(f"| {label} | DiffTaichi | {p['iter_s']:.2f} | 1 | {p['peak_rss_mib']:.0f} | 1 |")
    if "throughput" in results:
        rows += ["", "| particles | forward [particle-steps/s] | backward [particle-steps/s] |", "|---|---|---|"]
        for r in results["throughput"]["rows"]:
            rows.append(f"| {r['particles']} | {r['forward_particle_steps_per_s']:.3g} | "
                        f"{r['backward_particle_steps_per_s']:.3g} |")
    if "coldstart" in results:
        c = results["coldstart"]
        rows += ["", f"Cold start, 3D robot (empty cache, process start to first gradient): "
                 f"{c['first_iter_incl_compile_s']:.1f} s"]
        if "peer3d" in results and results["peer3d"].get("first_iter_incl_compile_s"):
            rows[-1] += f" (DiffTaichi: first iteration {results['peer3d']['first_iter_incl_compile_s']:.0f} s)"
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description="MPM benchmark against DiffTaichi")
    p.add_argument("--cases", default="walker2d,peer2d,robot3d,peer3d,throughput,coldstart")
    p.add_argument("--iters", type=int, default=4, help="training iterations (the first compiles)")
    p.add_argument("--iters-3d", type=int, default=3)
    p.add_argument("--window", type=int, default=64, help="2D checkpoint window [steps]")
    p.add_argument("--window-3d", type=int, default=48, help="3D checkpoint window [steps]")
    p.add_argument("--peer-dir", type=Path, help="checkout of taichi-dev/difftaichi")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mpm.json")
    p.add_argument("--run-case", help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run_case:
        args.case = args.run_case
        args.result.write_text(json.dumps(run_case(args)))
        return
    cases = args.cases.split(",")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.pop("table", None)
    for case in cases:
        print(f"running {case} ...", flush=True)
        if case == "walker2d":
            results[case] = ours(case, args.iters, args.window)
        elif case == "robot3d":
            results[case] = ours(case, args.iters_3d, args.window_3d)
        elif case == "coldstart":
            results[case] = ours(case, 1, args.window_3d, cold=True)
        elif case == "throughput":
            results[case] = ours(case, 1, 1)
        elif case in ("peer2d", "peer3d"):
            if args.peer_dir is None:
                print(f"  skipped {case}: no --peer-dir")
                continue
            results[case] = peer("diffmpm.py" if case == "peer2d" else "diffmpm3d.py",
                                 args.iters if case == "peer2d" else args.iters_3d, args.peer_dir)
        print(f"  {json.dumps(results.get(case), default=str)[:400]}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    results["table"] = table(results)
    args.out.write_text(json.dumps(results, indent=1))
    print(results["table"])


if __name__ == "__main__":
    main()
