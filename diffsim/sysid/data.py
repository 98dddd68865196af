"""Measured data in: marker trajectories, point clouds per frame and measured forces.

System identification starts from recordings made by instruments that know nothing of
the simulator: a motion-capture system writes marker positions in millimetres at an
irregular rate, a depth camera writes a point cloud per frame, a load cell writes forces
in newtons. This module reads them into plain NumPy containers in SI units, one per
*trial* (one experiment, with its own time axis), and refuses bad data with a
:class:`DataError` that names the file and the row:

* :func:`load_markers` / :func:`load_forces` -> list of :class:`Recording` (``values``
  ``[T, M, c]``: M named channels of c components each, e.g. a marker's x, y, z);
* :func:`load_point_clouds` -> list of :class:`PointCloudRecording` (ragged frames);
* :func:`load_rigid_poses` -> list of :class:`RigidPoseRecording` (tracked rigid-body
  pose and velocity per sample, e.g. a tossed cube);
* :func:`load_load_curve` -> :class:`LoadCurve` (nominal stress against stretch, a
  quasi-static material test without a time axis).

File formats (see docs/sysid.md for examples):

* **CSV**: optional comment lines ``# key: value`` declaring units (``length_unit``,
  ``time_unit``, ``force_unit``), then a header row. A ``time`` (or ``t``) column is
  required; an optional ``trial`` column splits the rows into trials. Channel columns are
  ``NAME.x``, ``NAME.y`` (, ``NAME.z``) (``NAME_x`` also works) or a bare ``NAME`` for a
  scalar channel. Point clouds use columns ``time, x, y(, z)``; consecutive rows with the
  same time form one frame.
* **NPZ** (always loaded with ``allow_pickle=False``): ``time`` ``[T]`` and ``positions``
  (markers) or ``forces`` ``[T, M, c]`` (``[T, M]`` and ``[T]`` are read as scalar
  channels), optional ``names`` ``[M]``, ``trial_offsets`` ``[K + 1]`` (trial k is rows
  ``trial_offsets[k]:trial_offsets[k + 1]``), ``trial_names`` ``[K]`` and unit strings
  ``length_unit`` / ``time_unit`` / ``force_unit``. Point clouds: ``time`` ``[F]``,
  ``points`` ``[P, dim]``, ``offsets`` ``[F + 1]``.

Units: a unit declared in the file wins; the caller's unit applies to a file that declares
none; a file and a caller that disagree raise :class:`DataError` (a silent 1000x error is
the most expensive bug in system identification). A caller's unit written
``"default:mm"`` is only a fallback and never conflicts (``[sysid] length_unit``).

Time must increase strictly within a trial (irregular spacing is fine: :mod:`.align`
resamples). NaN or Inf is an error unless ``missing="mask"``, which keeps the sample but
marks it invalid so that losses ignore it (occluded markers).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Conversion factors to SI. Keys are what a file or a caller may write.
LENGTH_UNITS = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "um": 1e-6, "km": 1e3, "in": 0.0254, "ft": 0.3048}
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0}
FORCE_UNITS = {"N": 1.0, "mN": 1e-3, "kN": 1e3, "lbf": 4.4482216152605}
STRESS_UNITS = {"Pa": 1.0, "kPa": 1e3, "MPa": 1e6, "GPa": 1e9, "N/mm^2": 1e6}
UNIT_TABLES = {"length_unit": LENGTH_UNITS, "time_unit": TIME_UNITS, "force_unit": FORCE_UNITS,
               "stress_unit": STRESS_UNITS}
COMPONENTS = ("x", "y", "z")
MAX_DATA_BYTES = 2 << 30  # a recording larger than this is refused before reading


class DataError(ValueError):
    """Bad measured data. Attributes: ``file``, ``row`` (1-based line or array index, or
    ``None``), ``column`` (or ``None``)."""

    def __init__(self, file, message: str, row: int | None = None, column: str | None = None):
        self.file, self.row, self.column = (str(file) if file is not None else None), row, column
        where = [self.file or "<data>"]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(": ".join(where) + ": " + message)


@dataclass
class Recording:
    """One trial of named, time-stamped channels (markers or forces), in SI units.

    Attributes:
        kind: ``"markers"`` (values [m]) or ``"forces"`` (values [N], or the declared
            ``unit_kind``'s SI unit).
        time: sample times [s], ``[T]``, strictly increasing (irregular spacing allowed).
        values: ``[T, M, c]``: M channels of c components (c = dim for markers).
        names: the M channel names.
        mask: ``[T, M]`` bool, True where the sample is valid (False: NaN in the file with
            ``missing="mask"``).
        source: file the data came from; trial: the trial's name; rows: ``[T]`` the row
            (CSV line, or NPZ index) of each sample, for error messages.
    """

    kind: str
    time: np.ndarray
    values: np.ndarray
    names: list[str]
    mask: np.ndarray
    source: str = ""
    trial: str = "0"
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, int))

    @property
    def dim(self) -> int:
        return self.values.shape[2]

    @property
    def duration(self) -> float:
        return float(self.time[-1] - self.time[0])

    def channel(self, name: str) -> int:
        """Index of channel ``name`` (``DataError`` naming the file if absent)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise DataError(self.source, f"no channel {name!r} in trial {self.trial!r} "
                            f"(channels: {', '.join(self.names)})") from None

    def select(self, names) -> "Recording":
        """A copy with only the channels ``names``, in that order."""
        idx = [self.channel(n) for n in names]
        return Recording(self.kind, self.time, self.values[:, idx], list(names), self.mask[:, idx],
                         self.source, self.trial, self.rows)


@dataclass
class PointCloudRecording:
    """One trial of point clouds, in metres.

    Attributes:
        time: frame times [s], ``[F]``, strictly increasing.
        points: ``[P, dim]`` every frame's points, concatenated.
        offsets: ``[F + 1]``: frame f is ``points[offsets[f]:offsets[f + 1]]``.
        source, trial: as in :class:`Recording`.
    """

    time: np.ndarray
    points: np.ndarray
    offsets: np.ndarray
    source: str = ""
    trial: str = "0"

    def frame(self, f: int) -> np.ndarray:
        return self.points[self.offsets[f]:self.offsets[f + 1]]

    def __len__(self) -> int:
        return len(self.time)


# ----------------------------------------------------------------------------- units


def unit_factor(table: str, unit: str, file=None) -> float:
    """SI factor of ``unit`` in ``table`` (``length_unit``, ``time_unit``, ...)."""
    units = UNIT_TABLES[table]
    if unit not in units:
        raise DataError(file, f"unknown {table.replace('_', ' ')} {unit!r} (known: {', '.join(units)})")
    return units[unit]


def _resolve_unit(table: str, declared: str | None, requested: str | None, file, default: str) -> float:
    if requested is not None and requested.startswith("default:"):
        # the caller's unit is only a fallback for files that declare none
        requested, default = None, requested[len("default:"):]
    if declared is not None and requested is not None and declared != requested:
        raise DataError(file, f"the file declares {table} = {declared!r} but {requested!r} was "
                        "requested; remove one of the two declarations")
    return unit_factor(table, declared or requested or default, file)


# ----------------------------------------------------------------------------- CSV


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise DataError(path, "file not found")
    if path.stat().st_size > MAX_DATA_BYTES:
        raise DataError(path, f"file is larger than {MAX_DATA_BYTES >> 30} GiB")


def _read_text(path: Path) -> str:
    _check_readable(path)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _parse_csv(path: Path):
    """(declarations, header, rows as lists of str, line number of each row)."""
    decl, header, rows, lines = {}, None, [], []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            body = text[1:].strip()
            for sep in (":", "="):
                if sep in body:
                    k, v = (s.strip() for s in body.split(sep, 1))
                    if k in UNIT_TABLES:
                        decl[k] = v.strip("'\"")
                    break
            continue
        cells = next(csv.reader(io.StringIO(line)))
        cells = [c.strip() for c in cells]
        if header is None:
            header = cells
            if len(set(header)) != len(header):
                dup = next(h for h in header if header.count(h) > 1)
                raise DataError(path, f"column {dup!r} appears twice in the header", lineno)
            continue
        if len(cells) != len(header):
            raise DataError(path, f"expected {len(header)} values (one per header column), "
                            f"found {len(cells)}", lineno)
        rows.append(cells)
        lines.append(lineno)
    if header is None or not rows:
        raise DataError(path, "no header and data rows found")
    return decl, header, rows, lines


def _float_column(path, header, rows, lines, col: int) -> np.ndarray:
    out = np.empty(len(rows))
    for r, cells in enumerate(rows):
        text = cells[col]
        try:
            out[r] = float(text) if text != "" else np.nan
        except ValueError:
            raise DataError(path, f"expected a number, found {text!r}", lines[r], header[col]) from None
    return out


def _time_column(header) -> int:
    for name in ("time", "t"):
        if name in header:
            return header.index(name)
    return -1


def _channel_columns(header, skip) -> list[tuple[str, list[int]]]:
    """Group columns ``NAME.x, NAME.y, ...`` into channels: [(name, [cols])]."""
    groups: dict[str, dict[str, int]] = {}
    order = []
    for col, h in enumerate(header):
        if col in skip:
            continue
        name, comp = h, ""
        for sep in (".", "_"):
            if sep in h and h.rsplit(sep, 1)[1].lower() in COMPONENTS:
                name, comp = h.rsplit(sep, 1)[0], h.rsplit(sep, 1)[1].lower()
                break
        if name not in groups:
            groups[name] = {}
            order.append(name)
        groups[name][comp] = col
    out = []
    for name in order:
        comps = groups[name]
        if "" in comps and len(comps) > 1:
            raise ValueError(f"channel {name!r} has both a bare column and component columns")
        if "" in comps:
            out.append((name, [comps[""]]))
            continue
        want = COMPONENTS[:len(comps)]
        if tuple(sorted(comps)) != tuple(sorted(want)):
            raise ValueError(f"channel {name!r} has components {sorted(comps)}; expected "
                             f"{', '.join(want)}")
        out.append((name, [comps[c] for c in want]))
    return out


def _split_trials(path, trial_col, rows, lines):
    """[(trial name, row indices)] in order of first appearance; rows of a trial must be
    contiguous so that a shuffled file is caught rather than silently merged."""
    if trial_col < 0:
        return [("0", np.arange(len(rows)))]
    names, starts = [], {}
    prev = None
    for r, cells in enumerate(rows):
        name = cells[trial_col]
        if name != prev:
            if name in starts:
                raise DataError(path, f"rows of trial {name!r} are not contiguous (the trial "
                                "started earlier in the file)", lines[r], "trial")
            starts[name] = r
            names.append(name)
            prev = name
    bounds = [starts[n] for n in names] + [len(rows)]
    return [(n, np.arange(bounds[k], bounds[k + 1])) for k, n in enumerate(names)]


def _check_time(path, time: np.ndarray, rows: np.ndarray, row_label: str = "row") -> None:
    bad = ~np.isfinite(time)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(path, f"time is {float(time[i])!r} (must be a finite number)", int(rows[i]), "time")
    if len(time) >= 2:
        step = np.diff(time)
        if np.any(step <= 0):
            i = int(np.argmax(step <= 0)) + 1
            raise DataError(path, f"time {time[i]:.9g} does not increase (previous sample: "
                            f"{time[i - 1]:.9g} at {row_label} {int(rows[i - 1])}); time must "
                            "increase strictly within a trial", int(rows[i]), "time")


def _check_values(path, values: np.ndarray, rows: np.ndarray, labels, missing: str) -> np.ndarray:
    """Mask ``[T, M]`` of valid samples; raise on NaN/Inf unless ``missing == "mask"``."""
    finite = np.isfinite(values)
    if missing not in ("error", "mask"):
        raise ValueError(f"missing must be 'error' or 'mask', got {missing!r}")
    if not finite.all() and missing == "error":
        t, m, c = (int(i[0]) for i in np.nonzero(~finite))
        raise DataError(path, f"value is {float(values[t, m, c])!r}; pass missing='mask' to treat "
                        "non-finite samples as missing", int(rows[t]), labels(m, c))
    return finite.all(axis=2)


def _channels_from_csv(path: Path, kind: str, unit_key: str, unit, time_unit, missing):
    decl, header, rows, lines = _parse_csv(path)
    tcol = _time_column(header)
    if tcol < 0:
        raise DataError(path, "no 'time' column in the header", lines[0] - 1)
    trial_col = header.index("trial") if "trial" in header else -1
    try:
        channels = _channel_columns(header, {tcol, trial_col})
    except ValueError as exc:
        raise DataError(path, str(exc)) from None
    if not channels:
        raise DataError(path, f"no {kind} columns besides time/trial")
    ts = _resolve_unit("time_unit", decl.get("time_unit"), time_unit, path, "s")
    vs = _resolve_unit(unit_key, decl.get(unit_key), unit, path, "m" if unit_key == "length_unit" else "N")
    ncomp = {len(cols) for _, cols in channels}
    if len(ncomp) != 1:
        raise DataError(path, "channels have different numbers of components: "
                        + ", ".join(f"{n}: {len(c)}" for n, c in channels))
    time_all = _float_column(path, header, rows, lines, tcol) * ts
    cols = [c for _, cs in channels for c in cs]
    vals_all = np.stack([_float_column(path, header, rows, lines, c) for c in cols], axis=1)
    c = ncomp.pop()
    vals_all = vals_all.reshape(len(rows), len(channels), c) * vs
    line_no = np.asarray(lines)
    out = []
    for trial, idx in _split_trials(path, trial_col, rows, lines):
        time, vals, rownums = time_all[idx], vals_all[idx], line_no[idx]
        _check_time(path, time, rownums)
        mask = _check_values(path, vals, rownums,
                             lambda m, k: header[channels[m][1][k]], missing)
        out.append(Recording(kind, time, vals, [n for n, _ in channels], mask, str(path), trial, rownums))
    return out


# ----------------------------------------------------------------------------- NPZ


def _load_npz(path: Path) -> dict:
    _check_readable(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:  # object arrays need pickle: refuse them
        raise DataError(path, f"cannot read without pickle ({exc}); store numeric and "
                        "string arrays only") from None
    except (OSError, EOFError) as exc:
        raise DataError(path, f"not a readable .npz file ({exc})") from None


def _npz_str(arrays: dict, key: str, path) -> str | None:
    if key not in arrays:
        return None
    v = arrays[key]
    if v.dtype.kind not in "US" or v.size != 1:
        raise DataError(path, f"array {key!r} must be one string, found dtype {v.dtype} shape {v.shape}")
    return str(v.reshape(()).item())


def _npz_trials(arrays: dict, n: int, path) -> list[tuple[str, np.ndarray]]:
    if "trial_offsets" not in arrays:
        return [("0", np.arange(n))]
    off = np.asarray(arrays["trial_offsets"])
    if off.dtype.kind not in "iu" or off.ndim != 1 or len(off) < 2 or off[0] != 0 or off[-1] != n \
            or np.any(np.diff(off) <= 0):
        raise DataError(path, f"trial_offsets must be increasing integers from 0 to {n} (the "
                        f"number of samples), found {off[:8].tolist()}{'...' if len(off) > 8 else ''}")
    names = arrays.get("trial_names")
    if names is not None and len(names) != len(off) - 1:
        raise DataError(path, f"trial_names has {len(names)} entries for {len(off) - 1} trials")
    return [(str(names[k]) if names is not None else str(k), np.arange(off[k], off[k + 1]))
            for k in range(len(off) - 1)]


def _channels_from_npz(path: Path, kind: str, key: str, unit_key: str, unit, time_unit, missing):
    arrays = _load_npz(path)
    for need in ("time", key):
        if need not in arrays:
            raise DataError(path, f"missing array {need!r} (has: {', '.join(sorted(arrays))})")
    time = np.asarray(arrays["time"], dtype=np.float64)
    vals = np.asarray(arrays[key])
    if vals.dtype.kind not in "fiu":
        raise DataError(path, f"array {key!r} must be numeric, found dtype {vals.dtype}")
    vals = vals.astype(np.float64)
    if time.ndim != 1:
        raise DataError(path, f"'time' must be 1-D, found shape {time.shape}")
    if vals.ndim == 1:
        vals = vals[:, None, None]
    elif vals.ndim == 2:
        vals = vals[:, :, None]
    if vals.ndim != 3 or len(vals) != len(time):
        raise DataError(path, f"{key!r} must be [T, M, c] with T = len(time) = {len(time)}, "
                        f"found shape {arrays[key].shape}")
    names = [str(s) for s in arrays["names"]] if "names" in arrays else [f"m{i}" for i in range(vals.shape[1])]
    if len(names) != vals.shape[1]:
        raise DataError(path, f"'names' has {len(names)} entries for {vals.shape[1]} channels")
    ts = _resolve_unit("time_unit", _npz_str(arrays, "time_unit", path), time_unit, path, "s")
    vs = _resolve_unit(unit_key, _npz_str(arrays, unit_key, path), unit, path,
                       "m" if unit_key == "length_unit" else "N")
    time, vals = time * ts, vals * vs
    out = []
    comp = COMPONENTS if vals.shape[2] <= 3 else [str(i) for i in range(vals.shape[2])]
    for trial, idx in _npz_trials(arrays, len(time), path):
        t, v = time[idx], vals[idx]
        _check_time(path, t, idx)
        mask = _check_values(path, v, idx, lambda m, c: f"{key}[:, {m}, {c}] ({names[m]}.{comp[c]})",
                             missing)
        out.append(Recording(kind, t, v, names, mask, str(path), trial, idx))
    return out


# ----------------------------------------------------------------------------- public


def _suffix(path: Path) -> str:
    s = path.suffix.lower()
    if s not in (".csv", ".npz"):
        raise DataError(path, f"unsupported data file type {s!r} (use .csv or .npz)")
    return s


def load_markers(path, length_unit: str | None = None, time_unit: str | None = None,
                 missing: str = "error") -> list[Recording]:
    """Marker trajectories, one :class:`Recording` per trial, positions in metres.

    Args:
        path: ``.csv`` or ``.npz`` (see the module docstring for the layout).
        length_unit / time_unit: units of a file that declares none (``"mm"``, ``"ms"``...).
        missing: ``"error"`` (default) or ``"mask"`` for NaN samples (occlusions).
    Raises:
        DataError: naming the file and row of the first problem.
    """
    path = Path(os.fspath(path))
    if _suffix(path) == ".csv":
        return _channels_from_csv(path, "markers", "length_unit", length_unit, time_unit, missing)
    return _channels_from_npz(path, "markers", "positions", "length_unit", length_unit,
                              time_unit, missing)


def load_forces(path, force_unit: str | None = None, time_unit: str | None = None,
                missing: str = "error", unit_kind: str = "force_unit") -> list[Recording]:
    """Measured forces (or, with ``unit_kind="stress_unit"``, stresses), one
    :class:`Recording` per trial, in SI units (N or Pa).

    Channels may be vectors (``NAME.x, NAME.y``) or scalars (``NAME``); NPZ key ``forces``.
    """
    path = Path(os.fspath(path))
    if unit_kind not in ("force_unit", "stress_unit"):
        raise ValueError(f"unit_kind must be force_unit or stress_unit, got {unit_kind!r}")
    if _suffix(path) == ".csv":
        recs = _channels_from_csv(path, "forces", unit_kind, force_unit, time_unit, missing)
    else:
        recs = _channels_from_npz(path, "forces", "forces", unit_kind, force_unit, time_unit, missing)
    return recs


def load_point_clouds(path, length_unit: str | None = None, time_unit: str | None = None
                      ) -> list[PointCloudRecording]:
    """Point clouds per frame, one :class:`PointCloudRecording` per trial, in metres.

    CSV: columns ``time, x, y(, z)`` and optional ``trial``; consecutive rows with equal
    time form a frame. NPZ: ``time`` ``[F]``, ``points`` ``[P, dim]``, ``offsets`` ``[F + 1]``.
    """
    path = Path(os.fspath(path))
    if _suffix(path) == ".npz":
        arrays = _load_npz(path)
        for need in ("time", "points", "offsets"):
            if need not in arrays:
                raise DataError(path, f"missing array {need!r} (has: {', '.join(sorted(arrays))})")
        ts = _resolve_unit("time_unit", _npz_str(arrays, "time_unit", path), time_unit, path, "s")
        ls = _resolve_unit("length_unit", _npz_str(arrays, "length_unit", path), length_unit, path, "m")
        time = np.asarray(arrays["time"], np.float64) * ts
        pts = np.asarray(arrays["points"], np.float64) * ls
        off = np.asarray(arrays["offsets"])
        if pts.ndim != 2 or pts.shape[1] not in (2, 3):
            raise DataError(path, f"'points' must be [P, 2] or [P, 3], found {pts.shape}")
        if off.ndim != 1 or len(off) != len(time) + 1 or off[0] != 0 or off[-1] != len(pts) \
                or np.any(np.diff(off) < 1):
            raise DataError(path, f"'offsets' must be [F + 1] = [{len(time) + 1}] increasing from "
                            f"0 to {len(pts)} with at least one point per frame")
        _check_time(path, time, np.arange(len(time)), "index")
        bad = ~np.isfinite(pts).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(path, f"point {pts[i].tolist()} is not finite (frame "
                            f"{int(np.searchsorted(off, i, 'right')) - 1})", i, "points")
        return [PointCloudRecording(time, pts, off.astype(np.int64), str(path))]
    decl, header, rows, lines = _parse_csv(path)
    tcol = _time_column(header)
    if tcol < 0:
        raise DataError(path, "no 'time' column in the header", lines[0] - 1)
    comps = [c for c in COMPONENTS if c in header]
    if comps not in (["x", "y"], ["x", "y", "z"]):
        raise DataError(path, f"point clouds need columns x, y (, z); header has {header}")
    ts = _resolve_unit("time_unit", decl.get("time_unit"), time_unit, path, "s")
    ls = _resolve_unit("length_unit", decl.get("length_unit"), length_unit, path, "m")
    time_all = _float_column(path, header, rows, lines, tcol) * ts
    pts_all = np.stack([_float_column(path, header, rows, lines, header.index(c)) for c in comps], 1) * ls
    trial_col = header.index("trial") if "trial" in header else -1
    out = []
    for trial, idx in _split_trials(path, trial_col, rows, lines):
        t, p, ln = time_all[idx], pts_all[idx], np.asarray(lines)[idx]
        bad = ~np.isfinite(p).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(path, f"point {p[i].tolist()} is not finite", int(ln[i]))
        starts = np.concatenate([[0], np.nonzero(np.diff(t) != 0)[0] + 1])
        _check_time(path, t[starts], ln[starts])
        off = np.concatenate([starts, [len(t)]])
        out.append(PointCloudRecording(t[starts], p, off, str(path), trial))
    return out


@dataclass
class RigidPoseRecording:
    """One trial of tracked rigid-body states, in SI units.

    Attributes:
        time: sample times [s], ``[T]``, strictly increasing.
        quat: ``[T, 4]`` orientation, unit quaternion (w, x, y, z).
        position: ``[T, 3]`` position of the body's reference point [m].
        omega_body: ``[T, 3]`` angular velocity in the body frame [rad/s].
        velocity: ``[T, 3]`` linear velocity of the reference point [m/s].
        source, trial, rows: as in :class:`Recording` (rows: index into ``states``).
    """

    time: np.ndarray
    quat: np.ndarray
    position: np.ndarray
    omega_body: np.ndarray
    velocity: np.ndarray
    source: str = ""
    trial: str = "0"
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, int))


def load_rigid_poses(path, length_unit: str | None = None, time_unit: str | None = None
                     ) -> list[RigidPoseRecording]:
    """Tracked rigid-body states, one :class:`RigidPoseRecording` per trial.

    NPZ only (``allow_pickle=False``): ``states`` ``[S, 13]`` in Drake's floating-body
    order ``qw qx qy qz | x y z | wx wy wz | vx vy vz`` (unit quaternion; position
    [length]; angular velocity in the *body* frame [rad/time]; linear velocity
    [length/time]); the time axis as ``time`` ``[S]`` or a scalar sample interval ``dt``;
    trials as ``trial_offsets`` (or ``offsets``) ``[K + 1]`` with optional ``trial_names``;
    optional unit strings ``length_unit`` / ``time_unit``. Non-finite values and
    quaternions whose norm is not 1 (to 1e-3) are errors naming the row.
    """
    path = Path(os.fspath(path))
    if _suffix(path) != ".npz":
        raise DataError(path, "rigid poses are read from .npz files only (states [S, 13])")
    arrays = _load_npz(path)
    if "states" not in arrays:
        raise DataError(path, f"missing array 'states' (has: {', '.join(sorted(arrays))})")
    st = np.asarray(arrays["states"])
    if st.dtype.kind not in "fiu" or st.ndim != 2 or st.shape[1] != 13:
        raise DataError(path, f"'states' must be numeric [S, 13] (quaternion, position, body "
                        f"angular velocity, linear velocity), found {st.dtype} {st.shape}")
    st = st.astype(np.float64)
    n = len(st)
    ts = _resolve_unit("time_unit", _npz_str(arrays, "time_unit", path), time_unit, path, "s")
    ls = _resolve_unit("length_unit", _npz_str(arrays, "length_unit", path), length_unit, path, "m")
    if "offsets" in arrays and "trial_offsets" not in arrays:
        arrays["trial_offsets"] = arrays["offsets"]
    trials = _npz_trials(arrays, n, path)
    if "time" in arrays:
        time = np.asarray(arrays["time"], np.float64)
        if time.shape != (n,):
            raise DataError(path, f"'time' must be [{n}] (one per state), found {time.shape}")
    elif "dt" in arrays and np.size(arrays["dt"]) == 1 and float(arrays["dt"]) > 0:
        time = np.empty(n)
        for _, idx in trials:
            time[idx] = float(arrays["dt"]) * np.arange(len(idx))
    else:
        raise DataError(path, "needs a time axis: 'time' [S] or a scalar sample interval 'dt' > 0")
    time = time * ts
    bad = ~np.isfinite(st).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(path, "non-finite state", i, f"states[:, {int(np.argmax(~np.isfinite(st[i])))}]")
    qn = np.linalg.norm(st[:, 0:4], axis=1)
    if np.any(np.abs(qn - 1.0) > 1e-3):
        i = int(np.argmax(np.abs(qn - 1.0) > 1e-3))
        raise DataError(path, f"quaternion norm {qn[i]:.6g} is not 1 (columns 0-3 must be a unit "
                        "quaternion w, x, y, z)", i, "states[:, 0:4]")
    out = []
    for trial, idx in trials:
        _check_time(path, time[idx], idx, "index")
        s = st[idx]
        out.append(RigidPoseRecording(time[idx], s[:, 0:4] / qn[idx, None], s[:, 4:7] * ls,
                                      s[:, 7:10] / ts, s[:, 10:13] * ls / ts, str(path), trial, idx))
    return out


def load_columns(path, columns) -> dict[str, np.ndarray]:
    """Named numeric columns of a CSV table without a time axis (e.g. stress vs stretch).

    Every named column must exist and every value must be a finite number; problems are
    :class:`DataError` naming the file, the line and the column.
    """
    path = Path(os.fspath(path))
    if path.suffix.lower() != ".csv":
        raise DataError(path, "expected a .csv table")
    return _finite_columns(path, *_parse_csv(path)[1:], columns)


def _finite_columns(path, header, rows, lines, columns) -> dict[str, np.ndarray]:
    out = {}
    for name in columns:
        if name not in header:
            raise DataError(path, f"no column {name!r} (columns: {', '.join(header)})", lines[0] - 1)
        col = _float_column(path, header, rows, lines, header.index(name))
        bad = ~np.isfinite(col)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(path, f"value is {float(col[i])!r}", lines[i], name)
        out[name] = col
    return out


@dataclass
class LoadCurve:
    """A quasi-static load curve: nominal stress against stretch, no time axis.

    Attributes:
        stretch: ``[n]`` stretches ``lambda = L / L0`` [-], strictly increasing (> 0).
        stress: ``[n]`` nominal (first Piola-Kirchhoff) stresses [Pa]: force over the
            reference area.
        rows: ``[n]`` CSV line of each point (for error messages); source: the file.
    """

    stretch: np.ndarray
    stress: np.ndarray
    rows: np.ndarray
    source: str = ""

    def as_recording(self, dt: float, select=None) -> Recording:
        """Load steps as a force-like recording: point k at time ``(k + 1) dt`` (frame
        k + 1 of a rollout whose step k applies it), one scalar channel ``stress`` [Pa]."""
        idx = np.arange(len(self.stretch)) if select is None else np.asarray(select)
        time = (idx + 1.0) * dt
        return Recording("forces", time, self.stress[idx, None, None], ["stress"],
                         np.ones((len(idx), 1), bool), self.source, "curve", self.rows[idx])


def load_load_curve(path, stretch_column: str = "stretch", stress_column: str = "nominal_stress",
                    stress_unit: str | None = None) -> LoadCurve:
    """A stress-stretch table (CSV, one row per point) as a :class:`LoadCurve` in Pa.

    Args:
        path: ``.csv`` with a header naming ``stretch_column`` and ``stress_column``; an
            optional ``# stress_unit: MPa`` comment declares the stress unit.
        stress_unit: unit of a file that declares none (``"default:MPa"`` never conflicts
            with a declaration; see the module docstring).
    Raises:
        DataError: naming the file, the line and the column: a missing column, a value that
            is not a finite number, a stretch <= 0, stretches that do not increase strictly.
    """
    path = Path(os.fspath(path))
    if path.suffix.lower() != ".csv":
        raise DataError(path, "a load curve is read from a .csv table (stretch, stress columns)")
    decl, header, cells, lines = _parse_csv(path)
    cols = _finite_columns(path, header, cells, lines, (stretch_column, stress_column))
    rows = np.asarray(lines)
    stretch = cols[stretch_column]
    scale = _resolve_unit("stress_unit", decl.get("stress_unit"), stress_unit, path, "Pa")
    if np.any(stretch <= 0):
        i = int(np.argmax(stretch <= 0))
        raise DataError(path, f"stretch {stretch[i]:g} is not positive (stretch = L / L0)",
                        int(rows[i]), stretch_column)
    step = np.diff(stretch)
    if np.any(step <= 0):
        i = int(np.argmax(step <= 0)) + 1
        raise DataError(path, f"stretch {stretch[i]:.9g} does not increase (previous point: "
                        f"{stretch[i - 1]:.9g} at row {int(rows[i - 1])}); a load curve is "
                        "applied in order, one load step per row: sort it by stretch",
                        int(rows[i]), stretch_column)
    return LoadCurve(stretch, cols[stress_column] * scale, rows, str(path))


def save_markers_npz(path, recordings: list[Recording], length_unit: str = "m") -> Path:
    """Write trials of markers (or forces) as one NPZ with ``trial_offsets`` (atomic).

    Values are converted from SI to ``length_unit`` and the unit is declared in the file.
    """
    from ..io.atomic import save_npz_atomic

    if not recordings:
        raise ValueError("save_markers_npz needs at least one recording")
    names = recordings[0].names
    if any(r.names != names for r in recordings):
        raise ValueError("every trial must have the same channels")
    key = "positions" if recordings[0].kind == "markers" else "forces"
    unit_key = "length_unit" if key == "positions" else "force_unit"
    scale = 1.0 / unit_factor(unit_key, length_unit)
    vals = np.concatenate([np.where(r.mask[..., None], r.values, np.nan) for r in recordings]) * scale
    offs = np.cumsum([0] + [len(r.time) for r in recordings])
    return save_npz_atomic(path, time=np.concatenate([r.time for r in recordings]), **{key: vals},
                           names=np.asarray(names), trial_offsets=offs,
                           trial_names=np.asarray([r.trial for r in recordings]),
                           **{unit_key: np.asarray(length_unit)}, time_unit=np.asarray("s"))


def save_markers_csv(path, recordings: list[Recording], length_unit: str = "m") -> Path:
    """Write trials as one CSV (``trial, time, NAME.x, ...``) with a unit declaration (atomic)."""
    from ..io.atomic import atomic_path

    key = "length_unit" if recordings[0].kind == "markers" else "force_unit"
    scale = 1.0 / unit_factor(key, length_unit)
    rec0 = recordings[0]
    comps = COMPONENTS[:rec0.dim] if rec0.dim > 1 else ("",)
    cols = [f"{n}.{c}" if c else n for n in rec0.names for c in comps]
    buf = io.StringIO()
    buf.write(f"# {key}: {length_unit}\n# time_unit: s\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "time"] + cols)
    for r in recordings:
        vals = np.where(r.mask[..., None], r.values, np.nan) * scale
        for t in range(len(r.time)):
            w.writerow([r.trial, repr(float(r.time[t]))] + [repr(float(v)) for v in vals[t].ravel()])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return Path(path)
