"""Signed distance grids of triangle meshes, precomputed on the host.

A mesh collider is stored as samples of its signed distance on a regular grid in the mesh's
own frame; the solvers interpolate them (bilinear in 2D, trilinear in 3D, see
:mod:`diffsim.contact.colliders`). Precomputing once keeps the per-step cost of a mesh
collider at eight loads, whatever its triangle count, and the samples are a differentiable
model parameter (``mesh_sdf``). The price is resolution: features smaller than a cell are
rounded off, and the interpolated distance is exact only to ``O(cell^2)`` on smooth parts.

* 3D: the unsigned distance is the exact point-triangle distance (closest point on the
  plane when its projection falls inside, else on an edge); the sign comes from the
  generalised winding number (sum of signed solid angles, Van Oosterom & Strackee 1983;
  Jacobson et al., SIGGRAPH 2013), which tolerates small holes; the triangles must be
  consistently oriented (either way round).
* 2D: the mesh is a set of triangles in the plane; the boundary is the edges used by one
  triangle only, the distance is to those segments and a point is inside when it lies in
  a triangle.
"""

import numpy as np

_CHUNK = 4096  # grid points per vectorised block: bounds memory at ~CHUNK * triangles * 24 B


def load_mesh(path, dim: int):
    """Read a triangle mesh with meshio.

    Args:
        path: any format meshio reads (``.obj``, ``.stl``, ``.ply``, ``.msh``, ``.vtk`` ...).
        dim: 2 or 3; a 2D mesh must lie in the plane ``z = 0`` (or have 2D points).
    Returns:
        ``(vertices [V, dim] float, triangles [T, 3] int)``.
    """
    import meshio  # optional dependency, imported where used

    mesh = meshio.read(str(path))
    tris = [c.data for c in mesh.cells if c.type == "triangle"]
    if not tris:
        raise ValueError(f"{path}: no triangle cells (found {[c.type for c in mesh.cells]})")
    pts = np.asarray(mesh.points, dtype=float)
    if dim == 2 and pts.shape[1] == 3:
        if not np.allclose(pts[:, 2], 0.0):
            raise ValueError(f"{path}: a 2D mesh collider must lie in the plane z = 0")
        pts = pts[:, :2]
    if pts.shape[1] != dim:
        raise ValueError(f"{path}: points have {pts.shape[1]} coordinates, expected {dim}")
    return pts, np.concatenate(tris).astype(np.int64)


def _dot(a, b):
    return np.einsum("...i,...i->...", a, b)


def _segment_distance(p, a, b):
    """Distance from points ``p [P, 1, d]`` to segments ``a, b [1, S, d]`` -> ``[P, S]``."""
    ab = b - a
    t = np.clip(_dot(p - a, ab) / np.maximum(_dot(ab, ab), 1e-300), 0.0, 1.0)
    e = p - (a + t[..., None] * ab)
    return np.sqrt(_dot(e, e))


def _triangle_distance(p, a, b, c):
    """Exact distance from points ``p [P, 1, 3]`` to triangles ``a, b, c [1, T, 3]``."""
    n = np.cross(b - a, c - a)
    area2 = np.sqrt(_dot(n, n))
    nh = n / np.maximum(area2, 1e-300)[..., None]
    inside = ((_dot(np.cross(b - a, p - a), n) >= 0) & (_dot(np.cross(c - b, p - b), n) >= 0)
              & (_dot(np.cross(a - c, p - c), n) >= 0) & (area2 > 1e-300))
    plane = np.abs(_dot(p - a, nh))
    edges = np.minimum(np.minimum(_segment_distance(p, a, b), _segment_distance(p, b, c)),
                       _segment_distance(p, c, a))
    return np.where(inside, plane, edges)


def _winding_number(p, a, b, c):
    """Generalised winding number of the triangles about points ``p [P, 1, 3]`` -> ``[P]``."""
    x, y, z = a - p, b - p, c - p
    lx, ly, lz = (np.sqrt(_dot(v, v)) for v in (x, y, z))
    num = _dot(x, np.cross(y, z))
    den = lx * ly * lz + _dot(x, y) * lz + _dot(x, z) * ly + _dot(y, z) * lx
    return (2.0 * np.arctan2(num, den)).sum(axis=1) / (4.0 * np.pi)


def _boundary_edges(triangles: np.ndarray) -> np.ndarray:
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    key = np.sort(e, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return e[counts[inverse.reshape(-1)] == 1]


def _inside_2d(p, a, b, c):
    """Whether points ``p [P, 1, 2]`` lie in any triangle ``a, b, c [1, T, 2]`` -> ``[P]``."""
    def cross(u, v):
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    s1, s2, s3 = cross(b - a, p - a), cross(c - b, p - b), cross(a - c, p - c)
    pos = (s1 >= 0) & (s2 >= 0) & (s3 >= 0)
    neg = (s1 <= 0) & (s2 <= 0) & (s3 <= 0)
    return (pos | neg).any(axis=1)


def signed_distance(points, vertices, triangles) -> np.ndarray:
    """Signed distance [m] of ``points [P, dim]`` to the mesh (negative inside), ``[P]``."""
    points = np.asarray(points, float)
    V, T = np.asarray(vertices, float), np.asarray(triangles, np.int64)
    dim = V.shape[1]
    out = np.empty(len(points))
    if dim == 2:
        edges = _boundary_edges(T)
        ea, eb = V[edges[:, 0]][None], V[edges[:, 1]][None]
    a, b, c = V[T[:, 0]][None], V[T[:, 1]][None], V[T[:, 2]][None]
    for s in range(0, len(points), _CHUNK):
        p = points[s:s + _CHUNK, None, :]
        if dim == 2:
            dist = _segment_distance(p, ea, eb).min(axis=1)
            inside = _inside_2d(p, a, b, c)
        else:
            dist = _triangle_distance(p, a, b, c).min(axis=1)
            inside = np.abs(_winding_number(p, a, b, c)) > 0.5
        out[s:s + _CHUNK] = np.where(inside, -dist, dist)
    return out


def signed_distance_grid(vertices, triangles, resolution: int = 32, padding: float | None = None):
    """Sample the mesh's signed distance on a regular grid around it.

    Args:
        vertices: ``[V, dim]`` in the mesh frame [m]; triangles: ``[T, 3]`` vertex indices.
        resolution: grid nodes along the longest side of the padded bounding box.
        padding: margin around the bounding box [m] (default: 10% of the largest extent,
            at least two cells), so that contact happens inside the sampled region.
    Returns:
        ``(values [n_0, ..., n_{dim-1}], origin [dim], cell)``: node ``i`` sits at
        ``origin + cell * i``.
    """
    V = np.asarray(vertices, float)
    if resolution < 2:
        raise ValueError(f"mesh SDF resolution must be >= 2, got {resolution}")
    lo, hi = V.min(axis=0), V.max(axis=0)
    extent = float(np.max(hi - lo))
    if extent <= 0:
        raise ValueError("mesh collider has zero extent")
    if padding is None:
        padding = 0.1 * extent
    cell = (extent + 2 * padding) / (resolution - 3)
    padding = max(padding, 2 * cell)
    origin = lo - padding
    shape = tuple(int(np.ceil((hi[i] - lo[i] + 2 * padding) / cell)) + 1 for i in range(V.shape[1]))
    axes = [origin[i] + cell * np.arange(n) for i, n in enumerate(shape)]
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, V.shape[1])
    values = signed_distance(nodes, V, triangles).reshape(shape)
    return values, origin, float(cell)
