"""``diffsim sysid SCENE --data FILE --out DIR``: the identification subcommand.

Registered in the command registry of :mod:`diffsim.cli` when this module is imported.
Bad data (:class:`~.data.DataError`) exit with code 2 and one message naming the file and
row, like an invalid scene. The engine runs in float64 by default: the Gauss-Newton
covariance differentiates residuals by finite differences, which float32 round-off
would swamp.
"""

from __future__ import annotations

import sys

from ..cli import ARCH_CHOICES, EXIT_INPUT, EXIT_OK, command, init_backend


def _sysid_args(p) -> None:
    p.add_argument("scene", help="scene file (.toml) with [[free]] parameters and a [sysid] table")
    p.add_argument("--data", help="data file (.csv/.npz; default: [sysid] data)")
    p.add_argument("--out", default="out/sysid", help="output directory (default: out/sysid)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.json")
    p.add_argument("--max-iter", type=int, help="optimiser iterations (default: [sysid] max_iter)")
    p.add_argument("--optimizer", choices=("lbfgsb", "adam", "lm"), help="default: [sysid] optimizer")
    p.add_argument("--arch", choices=ARCH_CHOICES, default="cpu", help="where kernels run")
    p.add_argument("--precision", choices=("float32", "float64"), default="float64",
                   help="real type (default float64: the covariance needs it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command("sysid", "fit a scene's free parameters to measured data (report + plots)", _sysid_args)
def cmd_sysid(args) -> int:
    from .data import DataError
    from .pipeline import run_sysid

    if args.max_iter is not None and args.max_iter < 0:
        print(f"error: --max-iter must be >= 0, got {args.max_iter}", file=sys.stderr)
        return EXIT_INPUT
    init_backend(args.arch, args.precision)
    try:
        rep = run_sysid(args.scene, args.data, args.out, resume=args.resume,
                        progress=not args.quiet, max_iter=args.max_iter, optimizer=args.optimizer)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    for label, row in rep["parameters"].items():
        sd = f" +- {row['std']:.4g}" if "std" in row else ""
        print(f"  {label:<24} {row['value']:.6g}{sd} {row['units']}")
    for part in ("train", "heldout"):
        if rep.get(part):
            errs = ", ".join(f"{k} RMS {v:.4g}" for k, v in rep[part]["rmse"].items())
            print(f"  {part}: {rep[part]['experiments']} experiment(s), {errs}")
    print(f"report: {args.out}/report.json")
    return EXIT_OK
