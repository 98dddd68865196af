"""Headless rendering of simulation states to images, videos and plots.

Everything here works from plain NumPy arrays (positions, index arrays, collider
descriptions as dicts) and knows nothing about solvers, so any solver's state can be drawn.
Drawing uses matplotlib's object API (``Figure`` + ``FigureCanvasAgg``) and never pyplot:
no global backend is selected, no window opens, and a caller's own pyplot figures are not
disturbed. Images are ``uint8`` arrays of shape ``[H, W, 3]``; every file is written
atomically (see :mod:`diffsim.io.atomic`).

Collider dicts (world units, the same as positions):

* ``{"type": "plane", "point": p, "normal": n}``: the solid is the side opposite ``n``.
* ``{"type": "box", "center": c, "half_extents": h}`` plus, in 2D, ``"angle"`` (rad,
  counter-clockwise) or, in 3D, ``"rotation"`` (3x3 matrix whose columns are the box axes).
* ``{"type": "sphere", "center": c, "radius": r}`` (``"circle"`` is accepted in 2D).
* ``{"type": "capsule", "p0": a, "p1": b, "radius": r}``, or ``"center"`` and
  ``"half_length"`` with the axis given by ``"angle"`` (2D) or ``"axis"`` (3D, default x).
* ``{"type": "heightfield", "x": xs, "height": hs}`` in 2D (height along y); in 3D a grid
  ``"x"`` [nx], ``"z"`` [nz] (``"y"`` when ``up="z"``) and ``"height"`` [nx, nz] along the
  up axis.

An unknown ``type`` raises ``ValueError``: silently skipping a collider would make a
picture of a wrong scene look right.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from diffsim.io.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

# matplotlib is imported inside the functions (project rule): importing diffsim must not
# pay matplotlib's start-up cost when nothing is drawn.

_DPI = 100  # pixel sizes below are converted to points with this; 1 pt = DPI/72 px
_POINT_COLOR = "#1f77b4"
_SPRING_COLOR = "#555555"
_MESH_FACE = "#aec7e8"
_MESH_EDGE = "#4a6a8a"
_SOLID_FACE = "#c8c8c8"
_SOLID_EDGE = "#505050"
_KNOWN_COLLIDERS = ("plane", "box", "sphere", "circle", "capsule", "heightfield")


# ----------------------------------------------------------------------------- helpers


def _px_to_pt(px: float) -> float:
    return px * 72.0 / _DPI


def _new_canvas(size: tuple[int, int]) -> tuple[Figure, FigureCanvasAgg]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w, h = (int(s) for s in size)
    if w < 16 or h < 16:
        raise ValueError(f"size must be at least 16x16 pixels, got {size}")
    fig = Figure(figsize=(w / _DPI, h / _DPI), dpi=_DPI, facecolor="white")
    return fig, FigureCanvasAgg(fig)


def _canvas_to_image(canvas: FigureCanvasAgg) -> np.ndarray:
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def _point_colors(colors, n: int):
    """[N,4] RGBA from None, a colour name or tuple (one colour), [N] values (viridis), or
    [N,3|4] RGB(A)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    if colors is None or isinstance(colors, (str, tuple)):
        # Expand one colour to [N,4]: scatter would read an RGB tuple as 3 values to
        # colour-map when N == 3.
        return np.tile(to_rgba(_POINT_COLOR if colors is None else colors), (n, 1))
    arr = np.asarray(colors, dtype=float)
    if arr.shape == (n,):
        lo, hi = np.nanmin(arr), np.nanmax(arr)
        return colormaps["viridis"]((arr - lo) / (hi - lo) if hi > lo else np.zeros(n))
    if arr.ndim == 2 and arr.shape[0] == n and arr.shape[1] in (3, 4):
        return np.clip(arr, 0.0, 1.0)
    raise ValueError(f"colors must be a colour, [N] values or [N,3|4] RGB(A) with N={n}, "
                     f"got shape {arr.shape}")


def _indices(arr, width: int, n: int, name: str) -> np.ndarray:
    idx = np.asarray(arr)
    if idx.size == 0:
        return np.zeros((0, width), dtype=np.int64)
    if idx.ndim != 2 or idx.shape[1] != width or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array [K,{width}], got "
                         f"{idx.dtype} {idx.shape}")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"{name} index out of range for {n} points")
    return idx


def _positions(positions, dim: int) -> np.ndarray:
    pos = np.asarray(positions, dtype=float)
    if pos.ndim != 2 or pos.shape[1] != dim:
        raise ValueError(f"positions must have shape [N,{dim}], got {pos.shape}")
    return pos


def _field(c: Mapping, key: str, dim: int | None = None) -> np.ndarray:
    if key not in c:
        raise ValueError(f"{c.get('type')!r} collider needs a {key!r} entry")
    value = np.asarray(c[key], dtype=float)
    if dim is not None and value.shape != (dim,):
        raise ValueError(f"collider entry {key!r} must have shape ({dim},), got {value.shape}")
    return value


def _collider_type(c: Mapping) -> str:
    kind = c.get("type") if isinstance(c, Mapping) else None
    if kind not in _KNOWN_COLLIDERS:
        raise ValueError(f"unknown collider type {kind!r}; known types: {_KNOWN_COLLIDERS}")
    return kind


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    norm = np.linalg.norm(v)
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"{what} must be a non-zero finite vector, got {v}")
    return v / norm


def _rot2(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _capsule_ends(c: Mapping, dim: int) -> tuple[np.ndarray, np.ndarray]:
    if "p0" in c or "p1" in c:
        return _field(c, "p0", dim), _field(c, "p1", dim)
    center, half = _field(c, "center", dim), float(_field(c, "half_length"))
    if dim == 2:
        axis = _rot2(float(c.get("angle", 0.0)))[:, 0]
    else:
        axis = _unit(np.asarray(c.get("axis", (1.0, 0.0, 0.0)), dtype=float), "capsule axis")
    return center - half * axis, center + half * axis


def _box_corners(c: Mapping, dim: int) -> np.ndarray:
    """Corners [2^dim, dim] of a box collider, in the order of ``itertools.product``."""
    center, half = _field(c, "center", dim), _field(c, "half_extents", dim)
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * dim, indexing="ij")).reshape(dim, -1).T
    if dim == 2:
        rot = _rot2(float(c.get("angle", 0.0)))
    else:
        rot = np.asarray(c.get("rotation", np.eye(3)), dtype=float)
        if rot.shape != (3, 3):
            raise ValueError(f"box rotation must be 3x3, got {rot.shape}")
    return center + (signs * half) @ rot.T


def _extent_points(pos: np.ndarray, colliders: Sequence[Mapping], dim: int) -> np.ndarray:
    """Points the automatic view must contain: finite particles and finite colliders.

    Planes contribute their anchor point (so a ground plane stays in view); heightfields
    contribute nothing, since their grid is often far wider than the scene of interest.
    """
    pts = [pos[np.all(np.isfinite(pos), axis=1)]]
    for c in colliders:
        kind = _collider_type(c)
        if kind == "plane":
            pts.append(_field(c, "point", dim)[None])
        elif kind in ("sphere", "circle"):
            center, r = _field(c, "center", dim), float(_field(c, "radius"))
            pts.append(np.stack([center - r, center + r]))
        elif kind == "box":
            pts.append(_box_corners(c, dim))
        elif kind == "capsule":
            r = float(_field(c, "radius"))
            ends = np.stack(_capsule_ends(c, dim))
            pts.append(np.concatenate([ends - r, ends + r]))
    return np.concatenate(pts)


def _auto_bounds(pts: np.ndarray, dim: int) -> np.ndarray:
    """[dim, 2] lower/upper bounds around ``pts`` with a 10% margin (of the largest span)."""
    if len(pts) == 0:
        return np.tile([-1.0, 1.0], (dim, 1))
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = float(np.max(hi - lo))
    margin = 0.1 * span if span > 0 else 0.5
    return np.stack([lo - margin, hi + margin], axis=1)


def _check_bounds(bounds, dim: int) -> np.ndarray:
    b = np.asarray(bounds, dtype=float).reshape(-1)
    if b.shape != (2 * dim,) or not np.all(np.isfinite(b)):
        raise ValueError(f"bounds must be {2 * dim} finite numbers (min, max per axis), "
                         f"got {bounds}")
    b = b.reshape(dim, 2)
    if np.any(b[:, 1] <= b[:, 0]):
        raise ValueError(f"bounds must have max > min on every axis, got {bounds}")
    return b


# ----------------------------------------------------------------------------- 2D


def _fit_aspect(b: np.ndarray, w: int, h: int) -> np.ndarray:
    """Grow the 2D view symmetrically so one world unit spans as many pixels in x as in y."""
    scale = max((b[0, 1] - b[0, 0]) / w, (b[1, 1] - b[1, 0]) / h)
    mid = b.mean(axis=1)
    half = 0.5 * scale * np.array([w, h])
    return np.stack([mid - half, mid + half], axis=1)


def _collider_patch_2d(c: Mapping, view: np.ndarray):
    from matplotlib.patches import Circle, Polygon

    kind = _collider_type(c)
    style = dict(facecolor=_SOLID_FACE, edgecolor=_SOLID_EDGE, linewidth=_px_to_pt(1.5),
                 zorder=1)
    far = 4.0 * float(np.max(view[:, 1] - view[:, 0]))  # "infinity" well outside the view
    if kind == "plane":
        p, n = _field(c, "point", 2), _unit(_field(c, "normal", 2), "plane normal")
        # Distance from the anchor to the view centre, so a far-away anchor still covers it.
        far += float(np.linalg.norm(view.mean(axis=1) - p))
        t = np.array([-n[1], n[0]])
        return Polygon([p + far * t, p - far * t, p - far * t - far * n,
                        p + far * t - far * n], closed=True, **style)
    if kind in ("sphere", "circle"):
        return Circle(_field(c, "center", 2), float(_field(c, "radius")), **style)
    if kind == "box":
        corners = _box_corners(c, 2)
        return Polygon(corners[[0, 1, 3, 2]], closed=True, **style)  # product order -> loop
    if kind == "capsule":
        a, b = _capsule_ends(c, 2)
        r = float(_field(c, "radius"))
        d = b - a
        phi = np.arctan2(d[1], d[0]) if np.any(d) else 0.0
        arc = np.linspace(-np.pi / 2, np.pi / 2, 24)
        outline = np.concatenate([
            b + r * np.stack([np.cos(phi + arc), np.sin(phi + arc)], axis=1),
            a + r * np.stack([np.cos(phi + np.pi + arc), np.sin(phi + np.pi + arc)], axis=1)])
        return Polygon(outline, closed=True, **style)
    # heightfield: fill from the height curve down to far below the view
    x, hgt = _field(c, "x"), _field(c, "height")
    if x.ndim != 1 or x.shape != hgt.shape or len(x) < 2:
        raise ValueError(f"2D heightfield needs 1D 'x' and 'height' of equal length >= 2, "
                         f"got {x.shape} and {hgt.shape}")
    bottom = min(view[1, 0], float(hgt.min())) - far
    outline = np.concatenate([np.stack([x, hgt], axis=1), [[x[-1], bottom], [x[0], bottom]]])
    return Polygon(outline, closed=True, **style)


def render_frame_2d(positions, *, springs=None, spring_colors=None, triangles=None,
                    colliders=None, bounds=None, size=(480, 480), point_radius=3.0,
                    colors=None, title=None) -> np.ndarray:
    """Draw a 2D state and return it as an image.

    Args:
        positions: [N, 2] particle/vertex positions (world units).
        springs: int [S, 2] vertex index pairs, drawn as line segments.
        spring_colors: [S] values in [-1, 1] (e.g. actuation), blue (-1) to red (+1) via the
            ``coolwarm`` colormap; values outside are clipped, NaN draws grey.
        triangles: int [T, 3] vertex indices, drawn as a filled mesh.
        colliders: list of collider dicts (see the module docstring).
        bounds: (xmin, xmax, ymin, ymax) world window, or None for the data (particles,
            finite colliders, plane anchors) plus a 10% margin. The window is grown about
            its centre to the image's aspect ratio so circles stay round.
        size: (width, height) in pixels.
        point_radius: particle radius in pixels (0 hides the particles).
        colors: particle colours: a colour name or tuple, [N] values (viridis, min to max)
            or [N, 3|4] RGB(A) in [0, 1].
        title: text drawn at the top centre.

    Returns:
        uint8 array [height, width, 3].
    """
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection, PolyCollection

    pos = _positions(positions, 2)
    n = len(pos)
    colliders = list(colliders or [])
    w, h = (int(s) for s in size)
    fig, canvas = _new_canvas((w, h))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    b = _check_bounds(bounds, 2) if bounds is not None else _auto_bounds(
        _extent_points(pos, colliders, 2), 2)
    view = _fit_aspect(b, w, h)
    ax.set_xlim(*view[0])
    ax.set_ylim(*view[1])

    for c in colliders:
        ax.add_patch(_collider_patch_2d(c, view))
    if triangles is not None:
        tri = _indices(triangles, 3, n, "triangles")
        ax.add_collection(PolyCollection(pos[tri], facecolors=_MESH_FACE, edgecolors=_MESH_EDGE,
                                         linewidths=_px_to_pt(0.5), zorder=2))
    if springs is not None:
        sp = _indices(springs, 2, n, "springs")
        seg_colors = _SPRING_COLOR
        if spring_colors is not None:
            val = np.asarray(spring_colors, dtype=float)
            if val.shape != (len(sp),):
                raise ValueError(f"spring_colors must have shape ({len(sp)},), got {val.shape}")
            seg_colors = colormaps["coolwarm"]((np.clip(val, -1.0, 1.0) + 1.0) / 2.0)
            seg_colors[np.isnan(val)] = (0.6, 0.6, 0.6, 1.0)
        ax.add_collection(LineCollection(pos[sp], colors=seg_colors,
                                         linewidths=_px_to_pt(2.0), zorder=3))
    if n and point_radius > 0:
        ax.scatter(pos[:, 0], pos[:, 1], s=_px_to_pt(2.0 * point_radius) ** 2,
                   c=_point_colors(colors, n), linewidths=0, zorder=4)
    if title:
        fig.text(0.5, 0.99, str(title), ha="center", va="top", fontsize=10)
    return _canvas_to_image(canvas)


# ----------------------------------------------------------------------------- 3D


def _sphere_segments(center: np.ndarray, r: float, n: int = 12) -> list[np.ndarray]:
    """Latitude and longitude circles of a sphere, each a closed polyline [2n+1, 3]."""
    t = np.linspace(0.0, 2.0 * np.pi, 2 * n + 1)
    cos, sin = np.cos(t)[:, None], np.sin(t)[:, None]
    ey = np.array([0.0, 1.0, 0.0])
    lines = []
    for lat in np.linspace(-np.pi / 2, np.pi / 2, n // 2 + 1)[1:-1]:
        ring = np.cos(lat) * (cos * [1.0, 0.0, 0.0] + sin * [0.0, 0.0, 1.0])
        lines.append(center + r * (ring + np.sin(lat) * ey))
    for lon in np.linspace(0.0, np.pi, n // 2, endpoint=False):
        u = np.array([np.cos(lon), 0.0, np.sin(lon)])
        lines.append(center + r * (cos * u + sin * ey))
    return lines


def _tangents(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e = np.eye(3)[np.argmin(np.abs(n))]
    t1 = np.cross(n, e)
    t1 /= np.linalg.norm(t1)
    return t1, np.cross(n, t1)


def _collider_3d(c: Mapping, view: np.ndarray, up: int):
    """(polylines [k,3] list, faces [m,3] list) in world coordinates for one collider."""
    kind = _collider_type(c)
    if kind == "circle":
        raise ValueError("collider type 'circle' is 2D only; use 'sphere' in 3D")
    if kind == "plane":
        p, n = _field(c, "point", 3), _unit(_field(c, "normal", 3), "plane normal")
        mid, half = view.mean(axis=1), 0.5 * (view[:, 1] - view[:, 0])
        center = mid - np.dot(mid - p, n) * n
        t1, t2 = _tangents(n)
        # Half-size along each tangent: the view box's support, so an axis-aligned ground
        # plane's grid exactly covers the view.
        r1, r2 = float(np.abs(t1) @ half), float(np.abs(t2) @ half)
        s = np.linspace(-1.0, 1.0, 11)
        lines = [np.stack([center + a * r1 * t1 - r2 * t2, center + a * r1 * t1 + r2 * t2])
                 for a in s]
        lines += [np.stack([center - r1 * t1 + a * r2 * t2, center + r1 * t1 + a * r2 * t2])
                  for a in s]
        quad = np.stack([center + sa * r1 * t1 + sb * r2 * t2
                         for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
        return lines, [quad]
    if kind == "sphere":
        return _sphere_segments(_field(c, "center", 3), float(_field(c, "radius"))), []
    if kind == "box":
        k = _box_corners(c, 3)
        edges = [(i, j) for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count("1") == 1]
        faces = [k[[0, 1, 3, 2]], k[[4, 5, 7, 6]], k[[0, 1, 5, 4]], k[[2, 3, 7, 6]],
                 k[[0, 2, 6, 4]], k[[1, 3, 7, 5]]]
        return [k[[i, j]] for i, j in edges], faces
    if kind == "capsule":
        a, b = _capsule_ends(c, 3)
        r = float(_field(c, "radius"))
        t1, t2 = _tangents(_unit(b - a, "capsule axis"))
        ang = np.linspace(0.0, 2.0 * np.pi, 25)
        ring = r * (np.outer(np.cos(ang), t1) + np.outer(np.sin(ang), t2))
        lines = [a + ring, b + ring] + _sphere_segments(a, r, 8) + _sphere_segments(b, r, 8)
        lines += [np.stack([a + q, b + q]) for q in ring[:-1:3]]
        return lines, []
    # heightfield over the two ground axes, height along the up axis
    ground = [i for i in range(3) if i != up]
    names = "xyz"
    g0, g1 = _field(c, names[ground[0]]), _field(c, names[ground[1]])
    hgt = _field(c, "height")
    if g0.ndim != 1 or g1.ndim != 1 or hgt.shape != (len(g0), len(g1)):
        raise ValueError(f"3D heightfield needs 1D {names[ground[0]]!r}, {names[ground[1]]!r} "
                         f"and 'height' of shape [n{names[ground[0]]}, n{names[ground[1]]}]")
    grid = np.zeros(hgt.shape + (3,))
    grid[..., ground[0]] = g0[:, None]
    grid[..., ground[1]] = g1[None, :]
    grid[..., up] = hgt
    return [grid[i] for i in range(len(g0))] + [grid[:, j] for j in range(len(g1))], []


def render_frame_3d(positions, *, surface_triangles=None, springs=None, colliders=None,
                    bounds=None, size=(480, 480), elev=20.0, azim=-60.0, colors=None,
                    point_radius=2.0, up="y", title=None) -> np.ndarray:
    """Draw a 3D state with an orthographic camera and return it as an image.

    Args:
        positions: [N, 3] particle/vertex positions (world units).
        surface_triangles: int [T, 3] boundary triangles, drawn as an opaque, Lambert-shaded
            surface (shading makes the shape readable without a light set-up).
        springs: int [S, 2] vertex index pairs, drawn as line segments.
        colliders: list of collider dicts (see the module docstring).
        bounds: (xmin, xmax, ymin, ymax, zmin, zmax) or None for the data plus a 10% margin.
            Axes keep equal scale, so the box is drawn with its true proportions.
        size: (width, height) in pixels.
        elev, azim: camera elevation and azimuth in degrees (matplotlib's convention, with
            the world's up axis as matplotlib's vertical).
        colors: as in :func:`render_frame_2d`.
        point_radius: particle radius in pixels (0 hides the particles).
        up: world axis pointing up, ``"y"`` (Taichi's usual convention) or ``"z"``.
        title: text drawn at the top centre.

    Returns:
        uint8 array [height, width, 3].
    """
    from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

    if up not in ("y", "z"):
        raise ValueError(f"up must be 'y' or 'z', got {up!r}")
    up_axis = "xyz".index(up)
    # World -> matplotlib coordinates (matplotlib's z is vertical). For y-up this is a
    # rotation (x, y, z) -> (x, -z, y), not a mirror, so handedness is preserved.
    to_plot = np.eye(3) if up == "z" else np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])

    pos = _positions(positions, 3)
    n = len(pos)
    colliders = list(colliders or [])
    fig, canvas = _new_canvas(size)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0), projection="3d")
    ax.set_axis_off()
    ax.set_proj_type("ortho")
    ax.view_init(elev=elev, azim=azim)
    view = _check_bounds(bounds, 3) if bounds is not None else _auto_bounds(
        _extent_points(pos, colliders, 3), 3)
    plot_view = np.sort(to_plot @ view, axis=1)
    ax.set_xlim(*plot_view[0])
    ax.set_ylim(*plot_view[1])
    ax.set_zlim(*plot_view[2])
    ax.set_box_aspect(plot_view[:, 1] - plot_view[:, 0])

    for c in colliders:
        lines, faces = _collider_3d(c, view, up_axis)
        if faces:
            ax.add_collection3d(Poly3DCollection([f @ to_plot.T for f in faces],
                                                 facecolors=_SOLID_FACE, edgecolors="none",
                                                 alpha=0.35))
        ax.add_collection3d(Line3DCollection([ln @ to_plot.T for ln in lines],
                                             colors=_SOLID_EDGE, linewidths=_px_to_pt(0.8)))
    if surface_triangles is not None:
        tri = _indices(surface_triangles, 3, n, "surface_triangles")
        verts = pos[tri] @ to_plot.T
        normals = np.cross(verts[:, 1] - verts[:, 0], verts[:, 2] - verts[:, 0])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)
        light = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
        shade = 0.45 + 0.55 * np.abs(normals @ light)  # two-sided: orientation-agnostic
        base = np.array([0.45, 0.62, 0.85])
        ax.add_collection3d(Poly3DCollection(verts, facecolors=shade[:, None] * base,
                                             edgecolors=(0.2, 0.25, 0.35, 0.5),
                                             linewidths=_px_to_pt(0.3)))
    if springs is not None:
        sp = _indices(springs, 2, n, "springs")
        ax.add_collection3d(Line3DCollection(pos[sp] @ to_plot.T, colors=_SPRING_COLOR,
                                             linewidths=_px_to_pt(1.0)))
    if n and point_radius > 0:
        p = pos @ to_plot.T
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], s=_px_to_pt(2.0 * point_radius) ** 2,
                   c=_point_colors(colors, n), linewidths=0, depthshade=False)
    if title:
        fig.text(0.5, 0.99, str(title), ha="center", va="top", fontsize=10)
    return _canvas_to_image(canvas)


# ----------------------------------------------------------------------------- files


def _as_uint8(image, *, rgb: bool = False) -> np.ndarray:
    """Validate an image [H,W], [H,W,3] or [H,W,4] (uint8, or float in [0,1]) as uint8.

    With ``rgb=True`` grey is expanded and alpha dropped, giving [H,W,3] (video formats).
    """
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"image must be [H,W], [H,W,3] or [H,W,4], got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            arr = np.round(np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0).astype(np.uint8)
        elif np.issubdtype(arr.dtype, np.integer) and arr.min() >= 0 and arr.max() <= 255:
            arr = arr.astype(np.uint8)
        else:
            raise ValueError(f"image must be uint8, integers in 0..255 or floats in [0,1], "
                             f"got {arr.dtype}")
    if rgb:
        arr = np.repeat(arr[:, :, None], 3, axis=2) if arr.ndim == 2 else arr[:, :, :3]
    return np.ascontiguousarray(arr)


def _check_fps(fps: float) -> float:
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    return float(fps)


def write_png(path: str | os.PathLike, image) -> Path:
    """Write an image ([H,W], [H,W,3] or [H,W,4]; uint8 or float in [0,1]) as PNG."""
    from PIL import Image

    img = Image.fromarray(_as_uint8(image))
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def write_gif(path: str | os.PathLike, frames: Iterable, fps: float = 30) -> Path:
    """Write frames (images as for :func:`write_png`, all the same size) as a looping GIF.

    GIF stores delays in 1/100 s, so ``fps`` above 50 plays slower than asked, and Pillow
    merges consecutive identical frames into one longer frame (total time is unchanged).
    """
    from PIL import Image

    delay_ms = 1000.0 / _check_fps(fps)
    imgs = [Image.fromarray(_as_uint8(f, rgb=True)) for f in frames]
    if not imgs:
        raise ValueError("write_gif needs at least one frame")
    if any(im.size != imgs[0].size for im in imgs):
        raise ValueError("all GIF frames must have the same size")
    with atomic_path(path) as tmp:
        imgs[0].save(tmp, format="GIF", save_all=True, append_images=imgs[1:],
                     duration=delay_ms, loop=0)
    return Path(path)


def _ffmpeg():
    """The imageio-ffmpeg module, or a RuntimeError saying how to get it."""
    try:
        import imageio_ffmpeg
        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise RuntimeError(
            "write_mp4 needs an ffmpeg executable: install the 'imageio-ffmpeg' package "
            "(pip install imageio-ffmpeg, which bundles ffmpeg), or set IMAGEIO_FFMPEG_EXE "
            "to an ffmpeg binary. Use write_gif for a dependency-free animation."
        ) from exc
    return imageio_ffmpeg


def write_mp4(path: str | os.PathLike, frames: Iterable, fps: float = 30,
              quality: float = 7) -> Path:
    """Write frames (same-size images as for :func:`write_png`) as an H.264 MP4.

    Frames are streamed to ffmpeg one at a time, so a long generator is never held in
    memory. Odd widths/heights are padded by one edge pixel because the yuv420p pixel
    format (the one players accept everywhere) needs even sizes. ``quality`` is 0..10.

    Raises:
        RuntimeError: when imageio-ffmpeg (or an ffmpeg binary) is not available.
    """
    ffmpeg = _ffmpeg()
    fps = _check_fps(fps)
    with atomic_path(path) as tmp:
        writer = None
        shape = None
        try:
            for frame in frames:
                img = _as_uint8(frame, rgb=True)
                if shape is None:
                    shape = img.shape
                    h2, w2 = shape[0] + shape[0] % 2, shape[1] + shape[1] % 2
                    writer = ffmpeg.write_frames(str(tmp), (w2, h2), fps=fps, quality=quality,
                                                 codec="libx264", macro_block_size=2,
                                                 output_params=["-movflags", "+faststart"])
                    writer.send(None)  # start ffmpeg
                elif img.shape != shape:
                    raise ValueError(f"frame of shape {img.shape} differs from the first "
                                     f"frame's {shape}")
                img = np.pad(img, ((0, h2 - shape[0]), (0, w2 - shape[1]), (0, 0)), mode="edge")
                writer.send(np.ascontiguousarray(img))
            if writer is None:
                raise ValueError("write_mp4 needs at least one frame")
        finally:
            if writer is not None:
                writer.close()  # waits for ffmpeg to finish the file
    return Path(path)


def plot_curves(path: str | os.PathLike, curves: Mapping[str, Sequence[float]], *,
                xlabel: str = "iteration", ylabel: str = "loss", logy: bool = False,
                title: str | None = None, x=None, size=(640, 400)) -> Path:
    """Plot named 1D series (loss curves, commanded vs achieved, ...) to a PNG.

    Args:
        curves: name -> 1D values; each is plotted against its index, or against ``x``.
        x: optional shared abscissa, the same length as every curve.
        logy: logarithmic y axis (non-positive values are left out of the plot).
        size: (width, height) in pixels.
    """
    if not curves:
        raise ValueError("plot_curves needs at least one curve")
    fig, canvas = _new_canvas(size)
    ax = fig.add_subplot()
    xs = None if x is None else np.asarray(x, dtype=float)
    for name, values in curves.items():
        y = np.asarray(values, dtype=float)
        if y.ndim != 1:
            raise ValueError(f"curve {name!r} must be 1D, got shape {y.shape}")
        if xs is not None and xs.shape != y.shape:
            raise ValueError(f"x has shape {xs.shape} but curve {name!r} has {y.shape}")
        ax.plot(np.arange(len(y)) if xs is None else xs, y, label=str(name), linewidth=1.5)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        canvas.print_png(tmp)
    return Path(path)
