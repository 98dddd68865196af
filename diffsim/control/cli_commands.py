"""``diffsim train`` and ``diffsim eval``, registered in the CLI's command registry.

::

    diffsim train scenes/mass_spring_robot_c.toml --out out/robot_c [--iters N] [--batch B] [--resume]
    diffsim eval scenes/mass_spring_robot_c.toml --controller out/robot_c/controller.npz

``train`` exits 0 when done and 130 after Ctrl-C (the checkpoint of the last completed
iteration is saved first; ``--resume`` continues it). ``eval`` writes ``eval.gif``,
``eval_tracking.png`` and ``eval.json`` and prints the tracking table.
"""

import argparse
import sys
from pathlib import Path

from ..cli import ARCH_CHOICES, EXIT_FAILURE, EXIT_OK, UsageError, command, init_backend

EXIT_INTERRUPTED = 130


def _backend(args):
    from ..core import backend

    if args.threads is not None and backend.info() is None:
        # the thread count is fixed when the engine starts
        return backend.init(arch=args.arch, precision=args.precision or "float32",
                            threads=args.threads)
    return init_backend(args.arch, args.precision)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", help="robot scene file (.toml with [controller] and [training])")
    p.add_argument("--arch", choices=ARCH_CHOICES, default="cpu", help="where kernels run (default cpu)")
    p.add_argument("--precision", choices=("float32", "float64"), help="real type (default float32)")
    p.add_argument("--threads", type=int, help="CPU threads (default: Taichi's, all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _train_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--out", required=True, help="output directory (checkpoints, controller.npz, loss.png)")
    p.add_argument("--iters", type=int, help="total iterations (default: [training] iters)")
    p.add_argument("--batch", type=int, help="environments per iteration (default: [training] batch)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    p.add_argument("--steps", type=int, help="rollout horizon (default: [training] steps)")
    p.add_argument("--truncate", type=int, help="cut the gradient every K steps (0: none)")


@command("train", "train a robot's controller by gradients through the simulation", _train_args)
def cmd_train(args) -> int:
    from .scene import read_robot_scene
    from .train import Trainer

    for name in ("iters", "batch", "steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be >= 1, got {value}")
    robot = read_robot_scene(args.scene)
    info = _backend(args)
    trainer = Trainer(robot, args.out, batch=args.batch, steps=args.steps, truncate=args.truncate,
                      progress=not args.quiet)
    if args.resume:
        try:
            trainer.resume()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        print(f"resuming {robot.name} at iteration {trainer.iteration}")
    print(f"{robot.name}: B={trainer.B}, T={trainer.T} steps of {trainer.scene.dt:g} s, "
          f"{trainer.ctrl.n_inputs} inputs -> {trainer.ctrl.H} hidden -> {trainer.ctrl.A} actuators, "
          f"commands {robot.command_names}, truncate {trainer.K or 'off'}, {info.arch} ({info.precision})")
    result = trainer.run(args.iters)
    if result.interrupted:
        print(f"interrupted at iteration {result.iteration}; checkpoint saved in {args.out}; "
              "continue with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    done = [h for h in result.history if "skipped" not in h]
    last = done[-1] if done else {}
    print(f"trained {result.iteration} iterations ({len(result.skipped)} skipped) in "
          f"{result.seconds:.1f} s; final loss {last.get('loss', float('nan')):.4g}"
          + (f", velocity error {last['rel_error']:.1%}" if last.get("rel_error") is not None else ""))
    print(f"wrote {Path(args.out) / 'controller.npz'}, checkpoint.json, loss.png, train.json")
    return EXIT_OK


def _eval_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--controller", required=True, help="controller.npz written by diffsim train")
    p.add_argument("--out", help="output directory (default: the controller's directory)")
    p.add_argument("--steps", type=int, help="rollout length (default: [training] eval_steps)")


@command("eval", "roll a trained controller out under changing commands; GIF and tracking plot",
         _eval_args)
def cmd_eval(args) -> int:
    from .evaluate import evaluate

    if args.steps is not None and args.steps < 2:
        raise UsageError(f"--steps must be >= 2, got {args.steps}")
    if not Path(args.controller).is_file():
        raise UsageError(f"controller file not found: {args.controller}")
    _backend(args)
    try:
        result = evaluate(args.scene, args.controller, args.out, args.steps)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    tab = result["tracking"]
    print(f"{'commanded [m/s]':>16}{'achieved [m/s]':>16}{'rel. error':>12}")
    for c, a, e in zip(tab["commanded"], tab["achieved"], tab["rel_error"]):
        print(f"{c:>16.3f}{a:>16.3f}{e:>12.1%}")
    print(f"mean relative error {tab['mean_rel_error']:.1%} over {len(tab['commanded'])} commands")
    out = Path(args.out) if args.out else Path(args.controller).parent
    print(f"wrote {out / 'eval.gif'}, {out / 'eval_tracking.png'}, {out / 'eval.json'}")
    return EXIT_OK
