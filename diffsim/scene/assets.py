"""Reading the array files a scene refers to (positions, initial states, actuation).

Paths resolve relative to the scene file's directory. A missing file, an unreadable or
malformed one, a wrong shape or a NaN inside all become a
:class:`~diffsim.scene.errors.SceneError` naming the key and the file, so NumPy's own
errors never reach the user. Supported: ``.npy`` (no pickle), ``.npz`` (named arrays),
``.csv`` (comma separated) and ``.txt`` (whitespace separated).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import Issue, SceneError

MAX_FILE_BYTES = 1 << 30  # 1 GiB: larger assets are almost certainly a wrong file
ARRAY_SUFFIXES = (".npy", ".npz", ".csv", ".txt")


class AssetLoader:
    """Reads asset files for one scene.

    Args:
        base_dir: directory relative paths resolve against (the scene file's).
        file: the scene file, for error messages.
    """

    def __init__(self, base_dir, file=None):
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.file = file

    def resolve(self, value: str) -> Path:
        """Absolute path of a scene path value."""
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.base_dir / p)

    def fail(self, key: str, message: str):
        raise SceneError([Issue(key, message)], self.file)

    def _open(self, value: str, key: str) -> Path:
        path = self.resolve(value)
        try:
            if not path.is_file():
                self.fail(key, f"asset file not found: {path}" if not path.exists()
                          else f"asset path is not a file: {path}")
            size = path.stat().st_size
        except OSError as exc:
            self.fail(key, f"cannot access asset file {path}: {exc.strerror or exc}")
        if size > MAX_FILE_BYTES:
            self.fail(key, f"asset file {path} is {size} bytes (limit {MAX_FILE_BYTES})")
        return path

    def arrays(self, value: str, key: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Arrays ``names`` from an asset file (at least one must be present).

        A ``.npz`` file provides arrays by name; a ``.npy``, ``.csv`` or ``.txt`` file holds
        one array, returned under ``names[0]``.
        """
        path = self._open(value, key)
        suffix = path.suffix.lower()
        try:
            if suffix == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    found = {n: np.array(z[n]) for n in names if n in z.files}
                    if not found:
                        self.fail(key, f"{path} has none of the arrays {list(names)} "
                                  f"(it has {z.files[:8]})")
            elif suffix == ".npy":
                found = {names[0]: np.load(path, allow_pickle=False)}
            elif suffix in (".csv", ".txt"):
                found = {names[0]: np.loadtxt(path, delimiter="," if suffix == ".csv" else None,
                                              dtype=np.float64, ndmin=2, comments="#")}
            else:
                self.fail(key, f"unsupported asset format {suffix!r} "
                          f"(use one of {', '.join(ARRAY_SUFFIXES)})")
        except SceneError:
            raise
        except Exception as exc:  # any reader failure is a malformed file for the user
            self.fail(key, f"could not read asset file {path}: {type(exc).__name__}: {exc}")
        for name, arr in found.items():
            if arr.dtype.kind not in "iuf":
                self.fail(key, f"array {name!r} in {path} must be numeric, found dtype {arr.dtype}")
            if not np.all(np.isfinite(arr)):
                self.fail(key, f"array {name!r} in {path} contains NaN or Inf")
        return {n: a.astype(np.float64) for n, a in found.items()}

    def array(self, value: str, key: str, name: str, shapes: tuple) -> np.ndarray:
        """One array, whose shape must match one of ``shapes`` (``None`` = any length)."""
        arr = self.arrays(value, key, (name,))[name]
        check_shape(arr, shapes, key, f"array {name!r} in {self.resolve(value)}", self.file)
        return arr


def check_shape(arr: np.ndarray, shapes: tuple, key: str, what: str, file=None) -> None:
    """Raise SceneError unless ``arr.shape`` matches one of ``shapes`` (``None`` = any)."""
    for shape in shapes:
        if len(shape) == arr.ndim and all(s is None or s == a for s, a in zip(shape, arr.shape)):
            return
    text = " or ".join("[" + ", ".join("N" if s is None else str(s) for s in sh) + "]"
                       for sh in shapes)
    raise SceneError([Issue(key, f"{what} must have shape {text}, found {list(arr.shape)}")], file)
