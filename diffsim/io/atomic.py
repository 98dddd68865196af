"""Atomic file writes: a file either appears complete or not at all.

Every output of the engine (frames, meshes, trajectories, metrics) is first written to a
temporary file in the destination's own directory and then moved onto the final name with
``os.replace``. On POSIX and Windows that rename is atomic within one file system, so a run
killed mid-write (time limit, out of memory, Ctrl-C) leaves either the previous file or no
file, never a truncated one that a later resume or plot would read as valid. The temporary
lives in the same directory because a rename across file systems is a copy, not atomic.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

# Read the process umask once: mkstemp creates files with mode 0600, and without a chmod
# every output would be private to its owner, unlike a file opened with open().
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success.

    The temporary name keeps the final suffix (``.npz``, ``.png``, ...) so writers that pick
    a format from the extension behave as with the real name. Parent directories are
    created. If the body raises (any exception, KeyboardInterrupt included), the temporary
    is removed, the exception propagates and a pre-existing ``path`` is left untouched.

    Example::

        with atomic_path("out/frame.png") as tmp:
            image.save(tmp)
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{final.suffix}",
                                    dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"writer did not produce the temporary file {tmp}")
        mode = final.stat().st_mode & 0o7777 if final.exists() else 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        # Flush the data to disk before the rename: otherwise a power loss right after
        # the rename can leave the final name pointing at an empty file.
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` and atomically move its output onto ``path``.

    Returns the final path. See :func:`atomic_path` for the guarantees.
    """
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def save_npz_atomic(path: str | os.PathLike, /, **arrays) -> Path:
    """Save named arrays to an uncompressed ``.npz`` at exactly ``path``, atomically.

    Each value goes through ``np.asarray``; object arrays are refused (``TypeError``) because
    they would need pickle, so the file always loads with ``np.load(path,
    allow_pickle=False)``. ``path`` is positional-only, so an array may be called ``path``.
    """
    if not arrays:
        raise ValueError("save_npz_atomic needs at least one array")
    converted = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise TypeError(f"array {name!r} has dtype object, which needs pickle; "
                            "convert it to a numeric or string dtype")
        converted[name] = arr
    with atomic_path(path) as tmp:
        # The .npz layout np.savez writes (one .npy member per array, stored uncompressed),
        # written directly so that no array name can clash with np.savez's own ``file`` and
        # ``allow_pickle`` parameters, and ".npz" is never appended to the name.
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, arr in converted.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, arr, allow_pickle=False)
    return Path(path)


def _json_default(obj):
    # NumPy scalars and arrays are the usual non-JSON values in metrics and configs.
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def save_json_atomic(path: str | os.PathLike, obj, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as UTF-8 JSON at ``path``, atomically.

    NumPy arrays become nested lists and NumPy scalars plain numbers. Non-finite floats are
    written as ``NaN``/``Infinity`` (what Python's json module reads back), because a
    diverged loss is worth recording rather than crashing on.
    """
    # Serialise before touching the disk so an unserialisable object fails early.
    text = json.dumps(obj, indent=indent, default=_json_default, ensure_ascii=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)
