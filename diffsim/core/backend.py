"""The one place that talks to ``ti.init``.

Every choice that depends on the Taichi backend lives here: which architecture runs the
kernels (``auto`` picks a GPU when one exists and falls back to the CPU), which floating
point precision the engine's fields use, how many CPU threads, debug mode, and the offline
kernel cache. Keeping it in one module means a later switch of backend (or of Taichi fork)
touches one file.

Precision is fixed at initialisation: fields created afterwards use :func:`real` as their
dtype, so gradient checks run the whole engine in float64 and training runs in float32.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import taichi as ti

ARCHES = ("auto", "cpu", "gpu", "cuda", "vulkan", "metal")
PRECISIONS = ("float32", "float64")


@dataclass(frozen=True)
class BackendInfo:
    """What :func:`init` chose: architecture name, precision, thread count, debug flag."""

    arch: str
    precision: str
    threads: int | None
    debug: bool


_info: BackendInfo | None = None


def _resolve_arch(arch: str):
    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {ARCHES}, got {arch!r}")
    if arch == "cpu":
        return ti.cpu
    if arch == "auto":
        return _auto_arch()
    return {"gpu": ti.gpu, "cuda": ti.cuda, "vulkan": ti.vulkan, "metal": ti.metal}[arch]


def _auto_arch():
    """A GPU where a driver is visible, else the CPU, without a crashing probe.

    ``ti.gpu`` tries CUDA, Vulkan, Metal and then OpenGL; in Taichi 1.7.4 the OpenGL step
    crashes the process on machines with no GPU driver at all. So ``auto`` asks for CUDA
    only when its driver library is installed (Taichi falls back to the CPU when the device
    itself is unusable), Metal on macOS, and the full probe only when
    ``DIFFSIM_PROBE_GPU=1`` asks for it (Vulkan-only machines).
    """
    import ctypes.util
    import sys

    if os.environ.get("DIFFSIM_PROBE_GPU") == "1":
        return ti.gpu
    if sys.platform == "darwin":
        return ti.metal
    if ctypes.util.find_library("cuda"):
        return ti.cuda
    return ti.cpu


def init(arch: str = "auto", precision: str = "float32", threads: int | None = None,
         debug: bool = False, offline_cache: bool = True, quiet: bool = True,
         force: bool = False) -> BackendInfo:
    """Initialise Taichi once for the whole engine.

    Args:
        arch: ``auto`` (GPU if present, else CPU), ``cpu`` or ``gpu`` (or a named GPU API).
        precision: ``float32`` or ``float64``: dtype of every real field created afterwards.
        threads: CPU worker threads (``None``: Taichi's default, all cores).
        debug: Taichi debug mode (bounds checks; slow).
        offline_cache: keep compiled kernels on disk between runs (a cold 3D MPM compile can
            take minutes; a warm one seconds).
        quiet: lower Taichi's log level to warnings.
        force: re-initialise even when already initialised with other settings. Every field
            created before is invalidated, so solvers built earlier must be rebuilt.

    Returns:
        The :class:`BackendInfo` in force.
    """
    global _info
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    wanted = (arch, precision, threads, debug)
    if _info is not None and not force:
        if (_info.precision, _info.debug) != (precision, debug) or (
                arch not in ("auto", _info.arch) and not (arch == "gpu" and _info.arch != "cpu")):
            raise RuntimeError(
                f"diffsim backend already initialised as {_info}; asked for "
                f"arch={arch}, precision={precision}, debug={debug}. Pass force=True to "
                "re-initialise (this invalidates every solver built so far).")
        return _info
    kwargs = dict(arch=_resolve_arch(arch), default_fp=ti.f64 if precision == "float64" else ti.f32,
                  default_ip=ti.i32, debug=debug, offline_cache=offline_cache,
                  log_level=ti.WARN if quiet else ti.INFO, random_seed=0)
    if threads is not None:
        kwargs["cpu_max_num_threads"] = int(threads)
    cache_dir = os.environ.get("DIFFSIM_CACHE_DIR")
    if cache_dir:
        kwargs["offline_cache_file_path"] = cache_dir
    ti.init(**kwargs)
    chosen = ti.lang.impl.current_cfg().arch
    arch_name = "cpu" if chosen in (ti.x64, ti.arm64) else str(chosen).split(".")[-1]
    _info = BackendInfo(arch=arch_name, precision=precision, threads=threads, debug=debug)
    del wanted
    return _info


def ensure_init() -> BackendInfo:
    """Initialise with defaults (``DIFFSIM_ARCH``/``DIFFSIM_PRECISION`` env vars) if needed."""
    if _info is None:
        return init(arch=os.environ.get("DIFFSIM_ARCH", "auto"),
                    precision=os.environ.get("DIFFSIM_PRECISION", "float32"))
    return _info


def info() -> BackendInfo | None:
    """The settings in force, or ``None`` before :func:`init`."""
    return _info


def real():
    """Taichi dtype of the engine's real fields (``ti.f32`` or ``ti.f64``)."""
    return ti.f64 if ensure_init().precision == "float64" else ti.f32


def np_real():
    """NumPy dtype matching :func:`real`."""
    return np.float64 if ensure_init().precision == "float64" else np.float32


def on_gpu() -> bool:
    """Whether kernels run on a GPU backend."""
    return ensure_init().arch != "cpu"
