"""FEM benchmark: forward + backward time per step and peak memory, diffsim vs NVIDIA Newton.

For beam meshes of about 1e3, 1e4 and 1e5 linear tetrahedra (the same vertices and
tetrahedra for every engine), each configuration runs in its own process (so that peak
RSS is its own) and reports the median over repeats, after a warm-up that compiles:

* diffsim explicit: ``SolverFEMExplicit`` (stable neo-Hookean, symplectic Euler, one Taichi
  launch per step), a :class:`~diffsim.autodiff.Rollout` of T steps forward then backward
  (Taichi autodiff), float32, 2 CPU threads;
* diffsim implicit: ``SolverFEMImplicit`` (backward Euler, Newton + adjoint solve on the
  host, SciPy), float64, fewer steps;
* Newton: ``newton.solvers.SolverSemiImplicit`` (semi-implicit Euler, Smith et al.'s
  stable neo-Hookean tetrahedra) on Warp's CPU device, the same T steps recorded on a
  ``wp.Tape`` and replayed backward, float32. Newton runs in a separate venv
  (``NEWTON_PYTHON``, default ``/tmp/newton-venv/bin/python``; create it with
  ``python3 -m venv /tmp/newton-venv && /tmp/newton-venv/bin/pip install newton``).

The body falls freely under gravity from a slightly perturbed rest shape (no contact, no
damping), dt = 1e-4 s (stable for the finest mesh), loss = sum of final positions. Explicit
and Newton runs take 50 steps and the median of 5 timed repeats; above 5e4 tets, 10 steps
and 2 repeats; the implicit runs 3 steps of dt = 1e-2 s.

Usage:
    python benchmarks/fem.py                  # all sizes, table + benchmarks/results/fem.json
    python benchmarks/fem.py --sizes 1e3 1e4  # a subset
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"1e3": (10, 4, 4), "1e4": (26, 8, 8), "1e5": (66, 16, 16)}  # cells; 6 tets per cell
E_MOD, NU, RHO, DT = 1e5, 0.3, 1000.0, 1e-4
STEPS = {"explicit": 50, "implicit": 3, "newton": 50}
REPEATS = 5
LARGE = 50_000  # above this many tets: 10 steps and 2 timed repeats (Newton's CPU path is slow)


def _schedule(kind: str, tets: int):
    """``(steps, timed repeats)`` of a worker: fewer for the largest meshes."""
    if tets > LARGE:
        return min(STEPS[kind], 10), 2
    return STEPS[kind], REPEATS


def beam_arrays(cells):
    """Vertices [N, 3] and tetrahedra [E, 4] of a 0.1 m-square beam of the given cells (5 cm cells)."""
    sys.path.insert(0, str(ROOT))
    from diffsim.solvers.fem import mesh

    m = mesh.beam(0.05 * cells[0], 0.05 * cells[1], 0.05 * cells[2], cells)
    return m.vertices, m.elements


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- workers (each runs in its own process) ------------------------------------------------------
def run_diffsim(mesh_file: str, integrator: str) -> dict:
    from diffsim.core import backend

    backend.init(arch="cpu", precision="float32" if integrator == "explicit" else "float64", threads=2)
    from diffsim.autodiff import Rollout
    from diffsim.solvers.fem import FEMBuilder, FEMConfig, Mesh, SolverFEM

    with np.load(mesh_file) as z:
        verts, tets = z["vertices"], z["tets"]
    b = FEMBuilder(3, gravity=[0.0, 0.0, -9.81], material="stable_neo_hookean")
    b.add_mesh(Mesh(verts, tets), density=RHO, youngs_modulus=E_MOD, poisson_ratio=NU)
    model = b.finalize(1)
    T, repeats = _schedule(integrator, len(tets))
    dt = DT if integrator == "explicit" else 1e-2
    solver = SolverFEM(model, FEMConfig(integrator=integrator), window=T)
    rollout = Rollout(solver, T, dt, record=("x",))
    x0 = verts[None] + 1e-3 * np.sin(37 * verts)[None]
    times = []
    for rep in range(repeats + 1):  # the first repeat compiles
        t0 = time.perf_counter()
        out = rollout.forward({"x": x0})
        t1 = time.perf_counter()
        g = np.zeros_like(out["x"])
        g[-1] = 1.0
        rollout.backward({"x": g})
        t2 = time.perf_counter()
        if rep:
            times.append((t1 - t0, t2 - t1))
    fwd = statistics.median(t[0] for t in times) / T
    bwd = statistics.median(t[1] for t in times) / T
    return {"forward_ms": 1e3 * fwd, "backward_ms": 1e3 * bwd, "total_ms": 1e3 * (fwd + bwd),
            "steps": T, "dt": dt, "peak_mib": peak_mib(), "finite": bool(np.isfinite(out["x"]).all())}


def run_newton(mesh_file: str) -> dict:
    import newton
    import warp as wp

    wp.config.quiet = True
    wp.init()
    with np.load(mesh_file) as z:
        verts, tets = z["vertices"], z["tets"]
    mu = E_MOD / (2 * (1 + NU))
    lam = E_MOD * NU / ((1 + NU) * (1 - 2 * NU))
    with wp.ScopedDevice("cpu"):
        builder = newton.ModelBuilder(gravity=(0.0, 0.0, -9.81))
        builder.add_soft_mesh(pos=wp.vec3(0.0, 0.0, 0.0), rot=wp.quat_identity(), scale=1.0,
                              vel=wp.vec3(0.0, 0.0, 0.0), vertices=[wp.vec3(*p) for p in verts],
                              indices=tets.ravel().tolist(), density=RHO, k_mu=mu, k_lambda=lam,
                              k_damp=0.0)
        model = builder.finalize(requires_grad=True)
        solver = newton.solvers.SolverSemiImplicit(model)
        T, repeats = _schedule("newton", len(tets))
        states = [model.state(requires_grad=True) for _ in range(T + 1)]
        control = model.control()
        q0 = (verts + 1e-3 * np.sin(37 * verts)).astype(np.float32)
        loss = wp.zeros(1, dtype=float, requires_grad=True)

        @wp.kernel
        def total(q: wp.array(dtype=wp.vec3), out: wp.array(dtype=float)):
            i = wp.tid()
            p = q[i]
            wp.atomic_add(out, 0, p[0] + p[1] + p[2])

        times = []
        for rep in range(repeats + 1):  # the first repeat compiles
            states[0].particle_q.assign(q0)
            states[0].particle_qd.zero_()
            loss.zero_()
            tape = wp.Tape()
            t0 = time.perf_counter()
            with tape:
                for t in range(T):
                    states[t].clear_forces()
                    solver.step(states[t], states[t + 1], control, None, DT)
                wp.launch(total, dim=model.particle_count, inputs=[states[T].particle_q, loss])
            wp.synchronize()
            t1 = time.perf_counter()
            tape.backward(loss)
            wp.synchronize()
            t2 = time.perf_counter()
            tape.zero()
            if rep:
                times.append((t1 - t0, t2 - t1))
        final = states[T].particle_q.numpy()
    fwd = statistics.median(t[0] for t in times) / T
    bwd = statistics.median(t[1] for t in times) / T
    return {"forward_ms": 1e3 * fwd, "backward_ms": 1e3 * bwd, "total_ms": 1e3 * (fwd + bwd),
            "steps": T, "dt": DT, "peak_mib": peak_mib(), "finite": bool(np.isfinite(final).all()),
            "newton_version": newton.__version__, "warp_version": wp.config.version}


# -- driver ---------------------------------------------------------------------------------------
def _spawn(python: str, args: list[str], env=None) -> dict:
    proc = subprocess.run([python, __file__, *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=3600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--worker", choices=["explicit", "implicit", "newton"], help=argparse.SUPPRESS)
    ap.add_argument("--mesh", help=argparse.SUPPRESS)
    ap.add_argument("--skip-implicit-above", default="1e4",
                    help="largest size for the implicit solver (its direct solves grow fast)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fem.json"))
    args = ap.parse_args(argv)
    if args.worker:
        res = run_newton(args.mesh) if args.worker == "newton" else run_diffsim(args.mesh, args.worker)
        print("RESULT " + json.dumps(res))
        return 0

    newton_python = os.environ.get("NEWTON_PYTHON", "/tmp/newton-venv/bin/python")
    have_newton = Path(newton_python).exists()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            verts, tets = beam_arrays(SIZES[size])
            mesh_file = str(Path(tmp) / f"beam_{size}.npz")
            np.savez(mesh_file, vertices=verts, tets=tets)
            row = {"size": size, "tets": len(tets), "vertices": len(verts)}
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            row["diffsim_explicit"] = _spawn(sys.executable, ["--worker", "explicit", "--mesh", mesh_file], env)
            if float(size) <= float(args.skip_implicit_above):
                row["diffsim_implicit"] = _spawn(sys.executable, ["--worker", "implicit", "--mesh", mesh_file], env)
            if have_newton:
                row["newton"] = _spawn(newton_python, ["--worker", "newton", "--mesh", mesh_file],
                                       {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {"benchmark": "FEM forward+backward per step", "machine": os.uname().nodename,
              "cpu_count": os.cpu_count(), "newton_available": have_newton,
              "settings": {"E": E_MOD, "nu": NU, "rho": RHO, "dt_explicit": DT, "steps": STEPS,
                           "repeats": REPEATS, "large_tets": LARGE, "steps_repeats_large": [10, 2],
                           "material": "stable neo-Hookean", "threads_taichi": 2,
                           "newton_device": "cpu"}, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"wrote {out}")
    return 0


def table(report: dict) -> str:
    head = ("| tets | diffsim explicit fwd+bwd [ms/step] | peak [MiB] | Newton semi-implicit fwd+bwd "
            "[ms/step] | peak [MiB] | ratio diffsim/Newton | diffsim implicit fwd+bwd [ms/step] | peak [MiB] |")
    lines = [head, "|" + "---|" * 8]

    def cell(r, key):
        v = r.get(key)
        if v is None:
            return "-", "-"
        if "error" in v:
            return "error", "-"
        return f"{v['total_ms']:.2f} ({v['forward_ms']:.2f} + {v['backward_ms']:.2f})", f"{v['peak_mib']:.0f}"

    for r in report["rows"]:
        e, em = cell(r, "diffsim_explicit")
        n, nm = cell(r, "newton")
        i, im = cell(r, "diffsim_implicit")
        ratio = "-"
        if "total_ms" in r.get("diffsim_explicit", {}) and "total_ms" in r.get("newton", {}):
            ratio = f"{r['diffsim_explicit']['total_ms'] / r['newton']['total_ms']:.2f}x"
        lines.append(f"| {r['tets']} | {e} | {em} | {n} | {nm} | {ratio} | {i} | {im} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
