"""Mass-spring training iteration: diffsim vs DiffTaichi, side by side in one run.

Problem (DiffTaichi ``examples/mass_spring.py``, robot 2): 682 steps of dt = 0.004 s, a
controller with 10 sine inputs plus the state (relative positions and velocities), 32
hidden units, tanh outputs; loss = -x of the centre; forward + backward + update per
iteration. Sizes: DiffTaichi's robot and blocks with ~10x and ~100x its springs.

Each configuration runs in its own process (peak memory is that process's max RSS),
unpinned and pinned to one core (``taskset -c 0``): small problems are launch-bound and
waking a second worker thread costs more than it saves.

Usage:
    python benchmarks/mass_spring.py [--peer-dir PATH_TO_DIFFTAICHI] [--iters 10]
        [--sizes robot2,x10,x100] [--json benchmarks/results/mass_spring.json]

Also measured: peak memory of a checkpointed 10,000-step gradient against a 1,000-step
one, and time to the first step of the demo with an empty and a warm kernel cache.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER_RUNNER = Path(os.environ.get("DIFFSIM_PEER_RUNNER", ROOT.parent / "shared" / "peers" / "run_difftaichi.py"))


# ------------------------------------------------------------------------------ worker
def worker(size: str, iters: int, steps: int, window: int | None, cache_dir: str | None) -> dict:
    """One configuration of ours in this process; returns timings (seconds)."""
    t0 = time.perf_counter()
    if cache_dir:
        os.environ["DIFFSIM_CACHE_DIR"] = cache_dir
    import numpy as np

    sys.path.insert(0, str(HERE))
    from _robots import cells

    from diffsim.autodiff import Rollout
    from diffsim.control import Adam, ControllerSineMLP, clip_by_global_norm
    from diffsim.core import backend
    from diffsim.core.builder import MassSpringBuilder
    from diffsim.solvers import SolverMassSpring

    backend.init(arch="cpu", precision="float32")
    b = MassSpringBuilder(dim=2, gravity=[0.0, -4.8], drag=15.0)
    b.add_ground(height=0.1, stiffness=2e4, damping=30.0, friction=1.0, smoothing=1e-3, friction_smoothing=0.3)
    b.add_grid_robot(cells(size), cell_size=0.05, origin=[0.1, 0.1], stiffness=3e4, actuation=0.15)
    model = b.finalize(1)
    solver = SolverMassSpring(model, window=window or steps)
    ctrl = ControllerSineMLP(solver, hidden=32, n_sin=10, dt=0.004)
    rollout = Rollout(solver, steps, 0.004, controller=ctrl)
    init = model.initial_state()
    n = model.counts["particle"]
    opt = Adam(lr=0.01)
    fwd, bwd, upd, first = [], [], [], None
    for it in range(iters + 1):  # iteration 0 compiles; it is reported apart
        ta = time.perf_counter()
        rec = rollout.forward(init)
        if first is None:
            first = time.perf_counter() - t0
        tb = time.perf_counter()
        gx = np.zeros_like(rec["x"])
        gx[-1, :, :, 0] = -1.0 / n
        grads = rollout.backward({"x": gx}).controller
        tc = time.perf_counter()
        grads, _ = clip_by_global_norm(grads, 1.0)
        ctrl.set_params(opt.step(ctrl.get_params(), grads))
        td = time.perf_counter()
        if it > 0:
            fwd.append(tb - ta)
            bwd.append(tc - tb)
            upd.append(td - tc)
    med = lambda a: float(np.median(a)) if a else float("nan")  # noqa: E731
    return {"particles": n, "springs": model.counts["spring"], "fwd_s": med(fwd), "bwd_s": med(bwd),
            "update_s": med(upd), "fwd_bwd_s": med([f + g for f, g in zip(fwd, bwd)]),
            "iteration_s": med([f + g + u for f, g, u in zip(fwd, bwd, upd)]),
            "first_forward_s": first, "window": solver.window, "steps": steps,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# ------------------------------------------------------------------------------ driver
def _run(cmd, pinned: bool, env=None, timeout=1800) -> tuple[str, float]:
    if pinned:
        cmd = ["taskset", "-c", "0"] + cmd
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return p.stdout, time.perf_counter() - t


def ours(size, iters, pinned, steps=682, window=None, cache_dir=None) -> dict:
    cmd = [sys.executable, __file__, "--worker", size, "--iters", str(iters), "--steps", str(steps)]
    if window:
        cmd += ["--window", str(window)]
    if cache_dir:
        cmd += ["--cache-dir", cache_dir]
    out, _ = _run(cmd, pinned)
    return json.loads(out.strip().splitlines()[-1])


def peer(size, iters, pinned, peer_dir) -> dict:
    """DiffTaichi's own mass_spring.py on the same robot, timed per Tape block."""
    with tempfile.TemporaryDirectory() as tmp:
        js = Path(tmp) / "peer.json"
        env = {"BENCH_JSON": str(js), "BENCH_MAX_TAPES": str(iters + 1), "BENCH_ITERS": str(iters + 1),
               "BENCH_THREADS": "2", "BENCH_OFFLINE_CACHE": "1", "DIFFSIM_PEER_RUNNER": str(PEER_RUNNER)}
        cmd = [sys.executable, "-c",
               "import resource,runpy,sys,atexit,json;"
               "atexit.register(lambda: print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss));"
               f"sys.argv=['w', {size!r}, {str(Path(peer_dir) / 'examples' / 'mass_spring.py')!r}];"
               f"runpy.run_path({str(HERE / '_difftaichi_robot.py')!r}, run_name='__main__')"]
        out, wall = _run(cmd, pinned, env)
        rec = json.loads(js.read_text())
    tapes = rec["tapes"][1:]  # the first Tape compiles
    rss = [line for line in out.splitlines() if line.startswith("RSS")]
    import numpy as np
    return {"fwd_s": float(np.median([t["fwd_s"] for t in tapes])),
            "bwd_s": float(np.median([t["bwd_s"] for t in tapes])),
            "fwd_bwd_s": float(np.median([t["total_s"] for t in tapes])),
            "first_tape_s": rec["tapes"][0]["total_s"],
            "peak_rss_mib": int(rss[-1].split()[1]) / 1024 if rss else float("nan")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--steps", type=int, default=682)
    ap.add_argument("--window", type=int)
    ap.add_argument("--cache-dir")
    ap.add_argument("--peer-dir", help="checkout of taichi-dev/difftaichi (never committed)")
    ap.add_argument("--sizes", default="robot2,x10,x100")
    ap.add_argument("--json", default=str(HERE / "results" / "mass_spring.json"))
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.iters, args.steps, args.window, args.cache_dir)))
        return

    results = {"rows": [], "machine": os.uname().nodename, "cores": os.cpu_count()}
    lines = ["| robot | particles / springs | pinned | diffsim fwd+bwd [s] | DiffTaichi fwd+bwd [s] | ratio | diffsim iteration incl. update [s] | diffsim peak MiB | DiffTaichi peak MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for size in args.sizes.split(","):
        for pinned in (True, False):
            iters = args.iters if size != "x100" else max(2, args.iters // 3)
            o = ours(size, iters, pinned)
            row = {"size": size, "pinned": pinned, "ours": o}
            if args.peer_dir:
                try:
                    row["peer"] = peer(size, iters, pinned, args.peer_dir)
                    row["ratio"] = o["fwd_bwd_s"] / row["peer"]["fwd_bwd_s"]
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    row["peer_error"] = str(e)[-500:]
            results["rows"].append(row)
            p = row.get("peer", {})
            lines.append(f"| {size} | {o['particles']} / {o['springs']} | {'yes' if pinned else 'no'} | "
                         f"{o['fwd_bwd_s']:.3f} | {p.get('fwd_bwd_s', float('nan')):.3f} | "
                         f"{row.get('ratio', float('nan')):.2f} | {o['iteration_s']:.3f} | "
                         f"{o['peak_rss_mib']:.0f} | {p.get('peak_rss_mib', float('nan')):.0f} |")
            print(lines[-1], flush=True)

    if not args.skip_memory:
        mem = {}
        for steps in (1000, 10000):
            mem[steps] = ours("robot2", 1, False, steps=steps, window=100)
        results["checkpoint_memory"] = {str(k): v for k, v in mem.items()}
        lines += ["", "| steps (window 100) | fwd+bwd [s] | peak MiB |", "|---|---|---|"]
        lines += [f"| {k} | {v['fwd_bwd_s']:.2f} | {v['peak_rss_mib']:.0f} |" for k, v in mem.items()]
        lines.append(f"\npeak memory ratio 10,000 / 1,000 steps: "
                     f"{mem[10000]['peak_rss_mib'] / mem[1000]['peak_rss_mib']:.2f}")
        cache = tempfile.mkdtemp(prefix="diffsim-cache-")
        try:
            cold = ours("robot2", 0, False, cache_dir=cache)
            warm = ours("robot2", 0, False, cache_dir=cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        results["first_step"] = {"cold_s": cold["first_forward_s"], "warm_s": warm["first_forward_s"]}
        lines.append(f"time to the first rollout (process start to end of first 682-step forward): "
                     f"cold cache {cold['first_forward_s']:.1f} s, warm cache {warm['first_forward_s']:.1f} s")
    table = "\n".join(lines)
    print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    results["table"] = table
    Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
