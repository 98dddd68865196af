"""Scene files in, simulations out: :func:`read_scene`, :func:`load_scene`, :func:`dump_scene`.

Loading runs in stages; each raises :class:`~diffsim.scene.errors.SceneError` and nothing
else:

1. parse the TOML (``tomllib``; nothing is ever evaluated);
2. validate against the schema (:mod:`diffsim.scene.sections` and the solver kind's keys),
   giving the normalised ``spec``;
3. assemble the family's builder, read asset files, compute the initial state and the
   open-loop drive, check the free parameters and the size limits, all on the host;
4. (:func:`load_scene` only) finalize the :class:`~diffsim.core.model.Model` and build the
   solver: the first Taichi allocation.

:func:`read_scene` stops after stage 3, so ``diffsim validate`` checks a scene completely
without touching Taichi.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli is the same parser under its old name
    import tomli as tomllib

from ..core import backend
from . import inputs
from .assets import AssetLoader
from .errors import Issue, SceneError, SceneFileNotFoundError, did_you_mean, key_path
from .free import FreeParam
from .schema import Context, check_value
from .sections import SOLVER_COMMON, validate_document
from .solvers import SolverKind, collider_types, solver_kinds
from .toml_writer import dumps

MAX_SCENE_BYTES = 256 << 20       # a scene file larger than this is not a scene file
MAX_ENV_ELEMENTS = 20_000_000     # B * (particles + springs + actuators): parameter storage


@dataclass
class Plan:
    """Everything :func:`read_scene` works out on the host (stage 3)."""

    spec: dict
    file: str | None
    base_dir: Path
    kind: SolverKind
    builder: Any
    counts: dict
    initial_state: dict
    drive_file: Any
    free_params: list
    window: int


_SCALARS = (int, float, str, bool)


def _plain(obj):
    """Tuples -> lists and NumPy values -> Python ones, so Python-built specs validate."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [v if type(v) in _SCALARS else _plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def _parse(source, base_dir):
    """(raw document, file name or None, base directory, stem) of a path or a dict."""
    if isinstance(source, dict):
        return _plain(source), None, Path(base_dir or Path.cwd()), None
    path = Path(source)
    try:
        if not path.exists():
            raise SceneFileNotFoundError(f"scene file not found: {path}", None)
        if not path.is_file():
            raise SceneError(f"scene path is not a file: {path}")
        if path.stat().st_size > MAX_SCENE_BYTES:
            raise SceneError(f"scene file is larger than {MAX_SCENE_BYTES >> 20} MiB", path)
        text = path.read_bytes().decode("utf-8")
    except SceneError:
        raise
    except UnicodeDecodeError as exc:
        raise SceneError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    except OSError as exc:
        raise SceneError(f"cannot read the scene file: {exc.strerror or exc}", path) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SceneError(f"invalid TOML: {exc}", path) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. a 5000-digit integer
        raise SceneError(f"invalid TOML: {type(exc).__name__}: {exc}", path) from None
    base = Path(base_dir) if base_dir is not None else path.resolve().parent
    return raw, str(path), base, path.stem


def _override(spec: dict, name: str, value, ctx: Context) -> None:
    if value is not None:
        v = check_value(value, SOLVER_COMMON[name], ["solver", name], ctx)
        ctx.raise_if_any()
        spec["solver"][name] = v


def plan_scene(source, num_envs: int | None = None, window: int | None = None,
               base_dir=None) -> Plan:
    """Stages 1-3 (no Taichi). ``source`` is a path or a scene dict; see :func:`load_scene`."""
    raw, file, base, stem = _parse(source, base_dir)
    ctx = Context(file=file, base_dir=base, stem=stem)
    spec = validate_document(raw, ctx)
    ctx.raise_if_any()
    _override(spec, "num_envs", num_envs, ctx)
    _override(spec, "window", window, ctx)
    kind = solver_kinds()[spec["solver"]["kind"]]
    loader = AssetLoader(base, file)
    try:
        builder = kind.assemble(spec, loader)
    except SceneError:
        raise
    except Exception as exc:  # a builder check the schema missed: still the user's input
        raise SceneError(f"could not assemble the scene: {type(exc).__name__}: {exc}", file) from exc
    counts = kind.counts(builder)
    sol = spec["solver"]
    B = sol["num_envs"]
    size = B * (counts.get("particle", 0) + counts.get("spring", 0) + counts.get("actuator", 0))
    if size > MAX_ENV_ELEMENTS:
        raise SceneError([Issue("solver.num_envs", f"num_envs x (particles + springs + "
                                f"actuators) = {size} exceeds the limit {MAX_ENV_ELEMENTS}")], file)
    state = inputs.initial_state(spec, kind.initial_state(builder, B), B, loader)
    if spec["actuators"]["drive"] != "none" and counts.get("actuator", 0) == 0:
        raise SceneError([Issue("actuators.drive", f"drive = {spec['actuators']['drive']!r} "
                                "but the scene has no actuators")], file)
    drive_file = inputs.load_drive_file(spec, B, counts.get("actuator", 0), loader)
    free = _free_params(spec, kind.param_names(builder), file)
    return Plan(spec, file, base, kind, builder, counts, state, drive_file, free,
                _window(spec, kind, counts, file))


def _free_params(spec: dict, names, file) -> list[FreeParam]:
    colliders = collider_types()
    present = {c["type"] for c in spec["colliders"]}
    names = set(names)
    deferred = False  # a collider type that does not list its parameters: check after building
    for t in present:
        if colliders[t].params is None:
            deferred = True
        else:
            names.update(colliders[t].params)
    out, issues = [], []
    for i, f in enumerate(spec["free"]):
        key = key_path(["free", i, "name"])
        if f["name"] not in names and not deferred:
            issues.append(Issue(key, f"the model has no parameter {f['name']!r} (it has "
                                f"{', '.join(sorted(names))})", did_you_mean(f["name"], names)))
            continue
        for ct in colliders.values():
            if ct.param_prefix and f["name"].startswith(ct.param_prefix) and ct.name not in present:
                issues.append(Issue(key, f"{f['name']!r} belongs to a {ct.name!r} collider, "
                                    "and the scene has none"))
        out.append(FreeParam(f["name"], f["lower"], f["upper"], f["scale"], f.get("init"), f.get("index")))
    if issues:
        raise SceneError(issues, file)
    return out


def _window(spec: dict, kind: SolverKind, counts: dict, file) -> int:
    sol = spec["solver"]
    info = backend.info()
    itemsize = 4 if info is not None and info.precision == "float32" else 8
    slot = max(1, kind.bytes_per_slot(counts, sol["dim"], sol["num_envs"], itemsize))
    budget = sol["memory_mb"] * 2**20
    fits = int((budget / slot - 1) // sol["substeps"])
    if sol["window"] == 0:
        if fits < 1:
            raise SceneError([Issue("solver.memory_mb", f"one step needs {slot * sol['substeps'] / 2**20:.1f}"
                                    f" MiB, more than memory_mb = {sol['memory_mb']:g}")], file)
        return min(sol["steps"], fits)
    if sol["window"] > fits:
        raise SceneError([Issue("solver.window", f"a window of {sol['window']} steps needs "
                                f"{(sol['window'] * sol['substeps'] + 1) * slot / 2**20:.1f} MiB, "
                                f"more than memory_mb = {sol['memory_mb']:g}")], file)
    return sol["window"]


def read_scene(source, base_dir=None) -> dict:
    """Validate a scene completely without Taichi; returns the normalised spec.

    Args:
        source: path of a ``.toml`` file, or a scene dict.
        base_dir: directory relative asset paths resolve against (default: the file's
            directory; the working directory for a dict).
    Raises:
        SceneError: for any problem (``SceneFileNotFoundError`` for a missing file).
    """
    return plan_scene(source, base_dir=base_dir).spec


def load_scene(path, num_envs: int | None = None, window: int | None = None, *,
               base_dir=None):
    """Load a scene: validate it, build its model and solver.

    Args:
        path: a ``.toml`` scene file, or a scene dict.
        num_envs: override ``[solver] num_envs`` (B).
        window: override ``[solver] window`` (steps the solver holds for gradients).
        base_dir: see :func:`read_scene`.
    Returns:
        A :class:`~diffsim.scene.scene.Scene`.
    Raises:
        SceneError: for any problem with the scene (never a Taichi or NumPy error).
    """
    from .scene import Scene

    plan = plan_scene(path, num_envs, window, base_dir)
    spec = plan.spec
    try:
        model = plan.builder.finalize(num_envs=spec["solver"]["num_envs"])
    except Exception as exc:  # the plan was checked: what is left is e.g. out of memory
        raise SceneError(f"could not build the model: {type(exc).__name__}: {exc}", plan.file) from exc
    issues = []
    for i, fp in enumerate(plan.free_params):
        if fp.name not in model.params:  # param_names out of step with the builder
            issues.append(Issue(key_path(["free", i, "name"]), f"the model has no parameter "
                                f"{fp.name!r}", did_you_mean(fp.name, model.params)))
            continue
        fp.units, fp.shape = model.params[fp.name].units, model.params[fp.name].shape
        if fp.index is not None and not (len(fp.shape) > 1 and fp.index < fp.shape[1]):
            have = (f"components 0..{fp.shape[1] - 1}" if len(fp.shape) > 1 else
                    "no components (one value per environment)")
            issues.append(Issue(key_path(["free", i, "index"]), f"{fp.name} has {have}, "
                                f"found index {fp.index}"))
            continue
        if fp.init is not None:
            model.set(fp.name, fp.put(model.get(fp.name), fp.init))
        value = fp.entries(model.get(fp.name))
        if not np.all((value >= fp.lower) & (value <= fp.upper)):
            issues.append(Issue(key_path(["free", i]), f"the scene's {fp.label} "
                                f"(range {value.min():g}..{value.max():g}) lies outside "
                                f"[{fp.lower:g}, {fp.upper:g}]; widen the bounds or set init"))
    if issues:
        raise SceneError(issues, plan.file)
    try:
        solver = plan.kind.make_solver(model, spec, plan.window)
    except Exception as exc:
        raise SceneError(f"could not build the solver: {type(exc).__name__}: {exc}", plan.file) from exc
    return Scene(plan, model, solver)


def _rebase(old: Path, new: Path):
    def fn(value: str) -> str:
        p = Path(os.path.expanduser(value))
        if p.is_absolute():
            return value
        return Path(os.path.relpath((old / p).resolve(), new.resolve())).as_posix()
    return fn


def dumps_scene(spec: dict) -> str:
    """TOML text of a scene spec (validated first; ``SceneError`` if invalid)."""
    spec = _validated(spec, None)
    return dumps(spec)


def _validated(spec: dict, path_fn, file=None) -> dict:
    ctx = Context(file=file, path_fn=path_fn)
    out = validate_document(_plain(spec), ctx)
    ctx.raise_if_any()
    return out


def dump_scene(spec: dict, path, base_dir=None) -> Path:
    """Write a scene spec as a TOML file, atomically; returns the path.

    The spec is validated first. With ``base_dir`` (the directory the spec's relative
    paths were relative to), relative asset paths are rewritten relative to the new file,
    so the written scene finds the same assets. ``read_scene(path) == spec`` for a spec
    that came from :func:`read_scene` (when the paths need no rewriting).
    """
    from ..io.atomic import atomic_path

    path = Path(path)
    fn = _rebase(Path(base_dir), path.parent) if base_dir is not None else None
    text = dumps(_validated(spec, fn, str(path)))
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


__all__ = ["Plan", "plan_scene", "read_scene", "load_scene", "dump_scene", "dumps_scene"]
