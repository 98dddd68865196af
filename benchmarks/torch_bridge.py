"""Benchmark of the torch bridge: overhead over the engine, batching, closed-loop memory modes.

1. Overhead: ``RolloutOp`` (forward + backward, gradients to the actions and the spring
   stiffness) against the engine's own ``Rollout.forward`` + ``backward`` on the same
   solver, for DiffTaichi's walker and for a robot of 10x the cells. Target: < 10%.
2. Batching: time per environment-step for B = 1, 8, 64 environments, open loop
   (``RolloutOp``) and closed loop (``ClosedLoop`` with a 64-unit MLP).
3. Closed-loop memory modes: keeping every step's inputs vs ``torch.utils.checkpoint``
   over segments; time per iteration and bytes autograd keeps outside checkpoints.

Overheads are medians of per-pair time ratios over 25 alternating engine/bridge runs (the
estimate least disturbed by other load on a shared machine); other times are minima over
repeats. Wall clock and process CPU time are both recorded.

    python benchmarks/torch_bridge.py --threads 1                 # unpinned
    taskset -c 0 python benchmarks/torch_bridge.py --threads 1    # pinned to one core

Prints a table and merges its results into benchmarks/results/torch_bridge.json under
``pinned`` or ``unpinned`` (from the process's CPU affinity).
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "torch_bridge"))

from diffsim import torch_bridge as tb  # noqa: E402
from diffsim.autodiff import Rollout  # noqa: E402
from diffsim.core import backend  # noqa: E402

DT = 0.004


def walker(num_envs, scale, window):
    from walker_closed_loop import build_walker
    model, _ = build_walker(num_envs, scale)
    from diffsim.solvers import SolverMassSpring
    return model, SolverMassSpring(model, window=window)


def timed(fn, repeats, warmup=None):
    """Shortest wall time and shortest process CPU time [s] of ``repeats`` calls of
    ``fn()`` after a warm-up call (of ``warmup`` if given). The minimum is the estimate
    least disturbed by other load; CPU time (all of the process's threads) is less
    disturbed by a busy machine than wall time, as long as Taichi runs one thread."""
    (warmup or fn)()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return float(np.min(wall)), float(np.min(cpu))


def paired(engine, bridge, pairs):
    """Run ``engine`` and ``bridge`` alternately ``pairs`` times (order swapped every pair,
    after one warm-up each). Load on a shared machine drifts slowly, so the median of the
    per-pair time ratios is its most robust estimate of the overhead; the minima are given
    too. Times in seconds, wall clock and process CPU time."""
    engine(), bridge()
    rows = []
    for i in range(pairs):
        row = {}
        for name, fn in ((("engine", engine), ("bridge", bridge)) if i % 2 == 0
                         else (("bridge", bridge), ("engine", engine))):
            w, c = time.perf_counter(), time.process_time()
            fn()
            row[name] = (time.perf_counter() - w, time.process_time() - c)
        rows.append(row)
    e_wall, e_cpu = np.array([r["engine"] for r in rows]).T
    b_wall, b_cpu = np.array([r["bridge"] for r in rows]).T
    return {"engine_s": float(e_wall.min()), "bridge_s": float(b_wall.min()),
            "engine_cpu_s": float(e_cpu.min()), "bridge_cpu_s": float(b_cpu.min()),
            "overhead_median": float(np.median(b_wall / e_wall) - 1),
            "overhead_cpu_median": float(np.median(b_cpu / e_cpu) - 1),
            "overhead_min": float(b_wall.min() / e_wall.min() - 1)}


def overhead(scale, steps, window, pairs):
    model, solver = walker(1, scale, window)
    A = model.counts["actuator"]
    rng = np.random.default_rng(0)
    acts = (0.5 * rng.standard_normal((steps, 1, A))).astype(solver.dtype)
    init = model.initial_state()
    rollout = Rollout(solver, steps, DT, record=("x",))

    def engine():
        out = rollout.forward(init, actions=acts)
        rollout.backward({"x": np.ones_like(out["x"])})

    op = tb.RolloutOp(solver, steps, DT, record=("x",))
    a = torch.tensor(acts, requires_grad=True)
    k = torch.tensor(model.get("spring_stiffness"), requires_grad=True)

    def bridge():
        out = op(actions=a, params={"spring_stiffness": k})
        out["x"].sum().backward()

    def engine_fwd():
        rollout.forward(init, actions=acts)

    def bridge_fwd():
        with torch.no_grad():
            op(actions=a, params={"spring_stiffness": k})

    fwd, both = paired(engine_fwd, bridge_fwd, pairs), paired(engine, bridge, pairs)
    return {"robot": f"walker x{scale}", "particles": model.counts["particle"],
            "springs": model.counts["spring"], "steps": steps, "window": window,
            **{f"{k}": v for k, v in both.items()}, **{f"fwd_{k}": v for k, v in fwd.items()}}


def batching(num_envs, steps, closed_steps, repeats):
    from walker_closed_loop import N_SIN, make_controller, observe
    model, solver = walker(num_envs, 1, steps)
    A, N = model.counts["actuator"], model.counts["particle"]
    op = tb.RolloutOp(solver, steps, DT, record=("x",))
    a = torch.zeros((steps, num_envs, A), requires_grad=True)

    def open_loop():
        op(actions=a)["x"].sum().backward()

    from diffsim.solvers import SolverMassSpring
    loop = tb.ClosedLoop(SolverMassSpring(model, window=1), DT,
                         make_controller(2 * N * 2 + N_SIN, A), obs=observe, record=("x",))

    def closed_loop():
        loop(closed_steps)["x"][-1].sum().backward()

    (t_open, c_open), (t_closed, c_closed) = timed(open_loop, repeats), timed(closed_loop, repeats)
    return {"B": num_envs, "open_s": t_open, "closed_s": t_closed,
            "open_us_per_env_step": 1e6 * t_open / (num_envs * steps),
            "closed_us_per_env_step": 1e6 * t_closed / (num_envs * closed_steps),
            "open_cpu_us_per_env_step": 1e6 * c_open / (num_envs * steps),
            "closed_cpu_us_per_env_step": 1e6 * c_closed / (num_envs * closed_steps)}


def memory_modes(steps, num_envs, repeats):
    from walker_closed_loop import N_SIN, make_controller, observe

    from diffsim.solvers import SolverMassSpring
    model, _ = walker(num_envs, 1, 1)
    solver = SolverMassSpring(model, window=1)
    A, N = model.counts["actuator"], model.counts["particle"]
    controller = make_controller(2 * N * 2 + N_SIN, A, hidden=256)
    rows = []
    for checkpoint in (None, 10, 50):
        loop = tb.ClosedLoop(solver, DT, controller, obs=observe, record=("x",),
                             checkpoint=checkpoint)
        seen = {}

        def pack(t):
            seen[(t.untyped_storage().data_ptr(), t.dtype)] = t.untyped_storage().nbytes()
            return t

        def run(steps=steps):
            seen.clear()
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out = loop(steps)
            out["x"][-1].sum().backward()

        t, c = timed(run, repeats, warmup=lambda: run(2 * (checkpoint or 1)))
        rows.append({"checkpoint": checkpoint, "steps": steps, "B": num_envs, "s": t, "cpu_s": c,
                     "saved_MB": sum(seen.values()) / 2 ** 20})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="Taichi CPU threads (default: Taichi's, all cores)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "torch_bridge.json"))
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    pairs = 3 if args.quick else 25
    steps = 50 if args.quick else 200
    backend.init(arch="cpu", precision="float32", threads=args.threads)
    pinned = len(os.sched_getaffinity(0)) == 1
    load_start = os.getloadavg()
    # Per-step tensors and the controller are tiny: torch's intra-op threads only add
    # synchronisation (50+ ms per closed-loop step at B = 8 on a busy machine instead of 2).
    torch.set_num_threads(1)

    res = {"overhead": [], "batching": [], "memory": []}
    for scale in (1, 10):
        for window in (steps, steps // 4):
            r = overhead(scale, steps, window, pairs)
            res["overhead"].append(r)
            print(f"overhead {r['robot']:>11} N={r['particles']:4d} S={r['springs']:4d} T={steps} "
                  f"W={window:3d}: engine {r['engine_s'] * 1e3:7.1f} ms  bridge "
                  f"{r['bridge_s'] * 1e3:7.1f} ms (min)  overhead: median "
                  f"{100 * r['overhead_median']:+.1f}%, CPU {100 * r['overhead_cpu_median']:+.1f}%,"
                  f" min {100 * r['overhead_min']:+.1f}%;  forward only: median "
                  f"{100 * r['fwd_overhead_median']:+.1f}%, CPU "
                  f"{100 * r['fwd_overhead_cpu_median']:+.1f}%", flush=True)
    for B in (1, 8, 64):
        r = batching(B, steps, steps // 2, repeats)
        res["batching"].append(r)
        print(f"batching B={B:3d}: open loop {r['open_us_per_env_step']:8.2f} us/env-step "
              f"(CPU {r['open_cpu_us_per_env_step']:8.2f})  closed loop "
              f"{r['closed_us_per_env_step']:8.2f} us/env-step (CPU "
              f"{r['closed_cpu_us_per_env_step']:8.2f})", flush=True)
    for r in memory_modes(steps, 8, max(1, repeats // 2)):
        res["memory"].append(r)
        print(f"closed loop T={r['steps']} B={r['B']} checkpoint={str(r['checkpoint']):>4}: "
              f"{r['s']:.3f} s/iteration (CPU {r['cpu_s']:.3f} s), autograd keeps "
              f"{r['saved_MB']:.2f} MB", flush=True)

    res["meta"] = {"pinned": pinned, "cpus": sorted(os.sched_getaffinity(0)),
                   "machine": platform.machine(), "python": platform.python_version(),
                   "torch": torch.__version__, "precision": "float32", "quick": args.quick,
                   "taichi_threads": args.threads, "torch_threads": 1, "repeats": repeats,
                   "loadavg_at_start": load_start, "loadavg_at_end": os.getloadavg(),
                   "date": time.strftime("%Y-%m-%d %H:%M")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged["pinned" if pinned else "unpinned"] = res
    out.write_text(json.dumps(merged, indent=1))
    print(f"wrote {out} [{'pinned' if pinned else 'unpinned'}]")


if __name__ == "__main__":
    main()
