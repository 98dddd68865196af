"""Per-frame mesh and point-cloud export for external viewers (ParaView, Blender, MeshLab).

One call writes one frame: the points, optional cells (tetrahedra, triangles, springs as
lines) and per-point or per-cell arrays. VTU keeps everything (any cell type, vector and
tensor data) and is the format to inspect a simulation in ParaView; PLY is a surface or
point-cloud format for renderers. Both go through meshio, imported lazily so the rest of
the engine does not pay for it. 2D points are padded with z = 0 because both formats, and
the viewers, are 3D. Trajectories (whole runs) go to ``.npz`` instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from diffsim.io.atomic import atomic_path, save_npz_atomic


def _points3(points) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] not in (2, 3):
        raise ValueError(f"points must have shape [N,2] or [N,3], got {pts.shape}")
    if pts.shape[1] == 2:
        pts = np.concatenate([pts, np.zeros((len(pts), 1))], axis=1)
    return pts


def _data_array(name: str, value, n: int, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape[:1] != (n,):
        raise ValueError(f"{what} {name!r} must have length {n} along axis 0, got {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)  # neither format has a boolean type
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what} {name!r} must be numeric, got {arr.dtype}")
    if arr.ndim >= 3:
        # [N,3,3] tensors are stored as 9 components (row-major), the layout ParaView reads
        # as a tensor; meshio would otherwise write them with a wrong length.
        arr = arr.reshape(n, -1)
    return arr


def write_vtu(path: str | os.PathLike, points, cells: Mapping | None = None,
              point_data: Mapping | None = None, cell_data: Mapping | None = None) -> Path:
    """Write one frame as a VTK unstructured grid (``.vtu``, binary), atomically.

    Args:
        points: [N, 2] or [N, 3] positions (2D padded with z = 0).
        cells: meshio cell type -> int connectivity, e.g. ``{"tetra": [T,4]}``,
            ``{"triangle": [T,3]}``, ``{"line": [S,2]}``. None writes one ``vertex`` cell
            per point, so a bare particle set is visible in ParaView (a VTU without cells
            shows nothing and does not read back).
        point_data: name -> [N], [N,k] or [N,3,3] (tensors stored as 9 components).
        cell_data: name -> one array per cell block, in ``cells`` order; with a single
            cell type a bare array [C] or [C,k] is accepted.
    """
    import meshio

    pts = _points3(points)
    n = len(pts)
    if cells is None:
        cells = {"vertex": np.arange(n).reshape(-1, 1)}
    blocks = []
    for kind, conn in cells.items():
        conn = np.asarray(conn)
        if conn.ndim != 2 or not np.issubdtype(conn.dtype, np.integer):
            raise ValueError(f"cells[{kind!r}] must be an integer array [C,k], got "
                             f"{conn.dtype} {conn.shape}")
        if conn.size and (conn.min() < 0 or conn.max() >= n):
            raise ValueError(f"cells[{kind!r}] index out of range for {n} points")
        blocks.append((kind, conn.astype(np.int64)))
    pdata = {k: _data_array(k, v, n, "point_data") for k, v in (point_data or {}).items()}
    cdata = {}
    for name, value in (cell_data or {}).items():
        per_block = [value] if len(blocks) == 1 and not isinstance(value, (list, tuple)) \
            else list(value)
        if len(per_block) != len(blocks):
            raise ValueError(f"cell_data {name!r} needs one array per cell block "
                             f"({len(blocks)}), got {len(per_block)}")
        cdata[name] = [_data_array(name, v, len(b[1]), "cell_data")
                       for v, b in zip(per_block, blocks)]
    mesh = meshio.Mesh(pts, blocks, point_data=pdata, cell_data=cdata)
    with atomic_path(path) as tmp:
        meshio.write(tmp, mesh, file_format="vtu")
    return Path(path)


def write_ply(path: str | os.PathLike, points, triangles=None,
              point_data: Mapping | None = None) -> Path:
    """Write points (and optionally a triangle surface) as binary PLY, atomically.

    Args:
        points: [N, 2] or [N, 3] positions (2D padded with z = 0).
        triangles: int [T, 3] vertex indices, or None for a point cloud.
        point_data: name -> [N] or [N,k]. PLY vertex properties are scalars, so a [N,k]
            array ``v`` is stored as ``v_0`` .. ``v_{k-1}``; 64-bit values are stored as
            32-bit (PLY has no 64-bit types).
    """
    import meshio

    pts = _points3(points)
    n = len(pts)
    blocks = []
    if triangles is not None:
        tri = np.asarray(triangles)
        if tri.ndim != 2 or tri.shape[1] != 3 or not np.issubdtype(tri.dtype, np.integer):
            raise ValueError(f"triangles must be an integer array [T,3], got "
                             f"{tri.dtype} {tri.shape}")
        if tri.size and (tri.min() < 0 or tri.max() >= n):
            raise ValueError(f"triangles index out of range for {n} points")
        blocks.append(("triangle", tri.astype(np.int32)))
    pdata = {}
    for name, value in (point_data or {}).items():
        arr = _data_array(name, value, n, "point_data")
        # PLY has no 64-bit integers; casting here (checked) rather than in meshio keeps
        # its "casting down" message out of the log and never wraps a value silently.
        if np.issubdtype(arr.dtype, np.integer) and arr.dtype.itemsize == 8:
            info = np.iinfo(np.int32)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise ValueError(f"point_data {name!r} does not fit in 32-bit integers")
            arr = arr.astype(np.int32)
        if arr.ndim == 1:
            pdata[name] = arr
        else:
            pdata.update({f"{name}_{i}": np.ascontiguousarray(arr[:, i])
                          for i in range(arr.shape[1])})
    mesh = meshio.Mesh(pts, blocks, point_data=pdata)
    with atomic_path(path) as tmp:
        meshio.write(tmp, mesh, file_format="ply", binary=True)
    return Path(path)


def read_mesh(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                   dict[str, np.ndarray]]:
    """Read a mesh file written by this module (or any format meshio knows).

    Returns:
        (points [N,3] float64, cells: type -> int array [C,k] (blocks of one type joined),
        point_data: name -> array [N] or [N,k]).
    """
    import meshio

    mesh = meshio.read(os.fspath(path))
    cells: dict[str, np.ndarray] = {}
    for block in mesh.cells:
        data = np.asarray(block.data)
        cells[block.type] = np.concatenate([cells[block.type], data]) \
            if block.type in cells else data
    points = np.asarray(mesh.points, dtype=np.float64)
    return points, cells, {k: np.asarray(v) for k, v in mesh.point_data.items()}


def write_trajectory_npz(path: str | os.PathLike, /, **arrays) -> Path:
    """Save a run's per-frame arrays, e.g. ``x=[T,N,d]``, ``v=[T,N,d]``, ``loss=[T]``.

    Every non-scalar array must share the leading frame count T, which catches a frame
    dropped from one array but not another; 0-d values (``dt``, a seed) are stored as
    metadata. Written atomically without pickle (load with ``allow_pickle=False``).
    """
    frame_counts = {name: np.shape(v)[0] for name, v in arrays.items() if np.ndim(v) > 0}
    if len(set(frame_counts.values())) > 1:
        raise ValueError(f"trajectory arrays disagree on the frame count: {frame_counts}")
    return save_npz_atomic(path, **arrays)
