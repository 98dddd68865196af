"""The ``diffsim`` command line: run, validate and gradient-check scene files.

Subcommands live in one registry, :data:`COMMANDS`; adding one (``train``, ``eval``,
``sysid``) is one function, here or in a module listed in :data:`COMMAND_MODULES`::

    def _train_args(p):
        p.add_argument("scene")

    @command("train", "train a controller for a scene", _train_args)
    def cmd_train(args) -> int:
        ...
        return EXIT_OK

Exit codes: 0 success, 1 the simulation (or a check, or writing an output) failed,
2 bad input (an invalid scene, a missing file, a bad option). Errors the user can act on
are printed as one message, never as a traceback; anything else is a bug and shows one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

EXIT_OK, EXIT_FAILURE, EXIT_INPUT = 0, 1, 2
ARCH_CHOICES = ("auto", "cpu", "gpu")
LONG_RUN = 100  # steps from which a progress bar is shown


class UsageError(Exception):
    """Bad command-line input that argparse cannot catch (exit code 2)."""


@dataclass(frozen=True)
class Command:
    """A subcommand: ``configure(parser)`` adds its arguments, ``run(args)`` returns the exit code."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}

# Modules elsewhere in the engine that register subcommands with @command when imported.
# A module that does not exist is skipped; one that fails to import raises (a bug there).
COMMAND_MODULES = ("diffsim.control.cli_commands", "diffsim.sysid.cli_commands")


def command(name: str, help: str, configure: Callable | None = None):
    """Register the decorated ``fn(args) -> int`` as subcommand ``name``."""
    def deco(fn):
        COMMANDS[name] = Command(name, help, configure or (lambda p: None), fn)
        return fn
    return deco


def init_backend(arch: str = "auto", precision: str | None = None):
    """Initialise the engine (or accept an earlier, compatible initialisation).

    ``precision=None`` means float32 unless the backend is already initialised (an
    embedding program or the test suite chose). Raises :class:`UsageError` on a conflict.
    """
    from .core import backend

    info = backend.info()
    if info is not None:
        if precision is not None and info.precision != precision:
            raise UsageError(f"the engine already runs in {info.precision}; {precision} was asked for")
        precision = info.precision
    try:
        return backend.init(arch=arch, precision=precision or "float32")
    except (RuntimeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _progress_wanted(args, steps: int) -> bool:
    return not getattr(args, "quiet", False) and steps >= LONG_RUN


# ----------------------------------------------------------------------------- run


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", help="scene file (.toml)")
    p.add_argument("--steps", type=int, help="number of steps (default: the scene's)")
    p.add_argument("--out", help="output directory (default: [output] dir, else out/<scene name>)")
    p.add_argument("--arch", choices=ARCH_CHOICES, default="auto", help="where kernels run")
    p.add_argument("--format", dest="formats",
                   help="comma-separated subset of gif,mp4,png,vtu,ply,npz (default: [output] formats)")
    p.add_argument("--num-envs", type=int, help="environments B (default: the scene's)")
    p.add_argument("--precision", choices=("float32", "float64"), help="real type (default float32)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _out_dir(args, scene) -> Path:
    if args.out:
        return Path(args.out)
    if "dir" in scene.spec["output"]:
        p = Path(os.path.expanduser(scene.spec["output"]["dir"]))
        return p if p.is_absolute() else scene.base_dir / p
    return Path("out") / scene.name


@command("run", "simulate a scene and write its outputs", _run_args)
def cmd_run(args) -> int:
    from .io import save_json_atomic
    from .scene import load_scene
    from .scene.outputs import parse_formats, write_outputs

    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    try:
        formats = parse_formats(args.formats) if args.formats is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    info = init_backend(args.arch, args.precision)
    scene = load_scene(args.scene, num_envs=args.num_envs)
    steps = args.steps or scene.steps
    formats = formats if formats is not None else scene.spec["output"]["formats"]
    out = _out_dir(args, scene)
    print(f"{scene.name}: {scene.kind.name}, {scene.dim}D, B={scene.num_envs}, "
          + ", ".join(f"{n} {k}s" for k, n in scene.counts.items())
          + f"; {steps} steps of {scene.dt:g} s on {info.arch} ({info.precision})")
    t0 = time.perf_counter()
    actions = scene.actions(steps)
    traj = scene.rollout(steps, actions=actions, progress=_progress_wanted(args, steps))
    sim_time = time.perf_counter() - t0
    written = write_outputs(scene, traj, out, formats, actions=actions,
                            progress=_progress_wanted(args, steps))
    summary = {"scene": scene.name, "file": scene.path, "steps": steps, "dt": scene.dt,
               "num_envs": scene.num_envs, "counts": scene.counts, "arch": info.arch,
               "precision": info.precision, "simulation_seconds": round(sim_time, 3),
               "formats": formats, "files": [str(p) for p in written]}
    written.append(save_json_atomic(out / "run.json", summary))
    print(f"simulated in {sim_time:.2f} s; wrote {len(written)} outputs to {out}/")
    for p in written:
        print(f"  {p}")
    return EXIT_OK


# ----------------------------------------------------------------------------- validate


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenes", nargs="+", help="scene files (.toml)")


@command("validate", "check scene files (schema, assets, free parameters) without simulating",
         _validate_args)
def cmd_validate(args) -> int:
    from .scene import SceneError, plan_scene

    failed = 0
    for path in args.scenes:
        try:
            plan = plan_scene(path)
        except SceneError as exc:
            failed += 1
            print(f"FAIL {exc}", file=sys.stderr)
            continue
        sol = plan.spec["solver"]
        counts = ", ".join(f"{n} {k}s" for k, n in plan.counts.items())
        print(f"ok   {path}: {sol['kind']} {sol['dim']}D, {counts}, {sol['steps']} x {sol['dt']:g} s"
              + (f", {len(plan.free_params)} free" if plan.free_params else ""))
    return EXIT_INPUT if failed else EXIT_OK


# ----------------------------------------------------------------------------- gradcheck


def _gradcheck_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", help="scene file (.toml)")
    p.add_argument("--steps", type=int, default=20, help="rollout length (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the loss weights and actuation")
    p.add_argument("--all-params", action="store_true",
                   help="check every model parameter even when the scene has [[free]] ones")
    p.add_argument("--arch", choices=ARCH_CHOICES, default="cpu", help="where kernels run")


@command("gradcheck", "compare a scene's gradients with finite differences (float64)",
         _gradcheck_args)
def cmd_gradcheck(args) -> int:
    from .autodiff.gradcheck import format_table
    from .scene import load_scene
    from .scene.checks import param_groups, scene_gradcheck

    if args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    init_backend(args.arch, "float64")
    scene = load_scene(args.scene, num_envs=1)
    if args.steps > scene.solver.window:
        # the window bounds the checkpoint segment, not the length: longer runs recompute
        print(f"note: {args.steps} steps run in segments of {scene.solver.window}")
    rows = scene_gradcheck(scene, steps=args.steps, seed=args.seed,
                           params=param_groups(scene, free=not args.all_params))
    print(f"{scene.name}: loss = random linear functional of x after {args.steps} steps")
    print(format_table(rows))
    bad = [r.name for r in rows if not r.passed]
    if bad:
        print(f"FAILED: {', '.join(bad)}", file=sys.stderr)
        return EXIT_FAILURE
    print("all gradients agree with finite differences")
    return EXIT_OK


# ----------------------------------------------------------------------------- info


def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", choices=ARCH_CHOICES, default="auto", help="architecture to probe")


@command("info", "versions, architecture and threads", _info_args)
def cmd_info(args) -> int:
    import platform
    from importlib import metadata

    import numpy
    import taichi as ti

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    info = init_backend(args.arch, None)
    cfg = ti.lang.impl.current_cfg()
    rows = [("diffsim", version("diffsim")),
            ("taichi", ".".join(map(str, ti.__version__))),
            ("numpy", numpy.__version__),
            ("torch", version("torch")),
            ("python", platform.python_version()),
            ("platform", platform.platform()),
            ("arch", info.arch),
            ("precision", info.precision),
            ("cpu threads", f"{getattr(cfg, 'cpu_max_num_threads', '?')} of {os.cpu_count()} cores")]
    for k, v in rows:
        print(f"{k:<12} {v}")
    return EXIT_OK


# ----------------------------------------------------------------------------- demo


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="out/demo", help="output directory (default out/demo)")
    p.add_argument("--iters", type=int, default=None, help="training iterations (default: the demo's)")
    p.add_argument("--arch", choices=ARCH_CHOICES, default="auto", help="where kernels run")


@command("demo", "train the walker and write its pictures (the `make demo` target)", _demo_args)
def cmd_demo(args) -> int:
    try:
        from .control.demo import run_demo
    except ImportError as exc:
        print(f"error: the demo is not available in this build ({exc})", file=sys.stderr)
        return EXIT_FAILURE
    if args.iters is not None and args.iters < 1:
        raise UsageError(f"--iters must be >= 1, got {args.iters}")
    init_backend(args.arch, None)  # before the demo loads its scene (auto-detection is safe here)
    kwargs = {"out_dir": args.out}
    if args.iters is not None:
        kwargs["iters"] = args.iters
    result = run_demo(**kwargs)
    return result if isinstance(result, int) else EXIT_OK


# ----------------------------------------------------------------------------- main


def load_command_modules() -> dict[str, Command]:
    """Import :data:`COMMAND_MODULES` (registering their subcommands); returns the registry."""
    import importlib

    for module in COMMAND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return COMMANDS


def build_parser() -> argparse.ArgumentParser:
    load_command_modules()
    parser = argparse.ArgumentParser(
        prog="diffsim", description="Differentiable physics: run, check and inspect scene files.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.set_defaults(_command=cmd)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``diffsim`` script; returns the exit code."""
    args = build_parser().parse_args(argv)
    from .autodiff import GradientError, SimulationError
    from .scene import SceneError
    from .scene.outputs import OutputError

    try:
        return int(args._command.run(args))
    except SceneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except FileNotFoundError as exc:
        print(f"error: file not found: {exc.filename or exc}", file=sys.stderr)
        return EXIT_INPUT
    except (SimulationError, GradientError) as exc:
        print(f"simulation failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
