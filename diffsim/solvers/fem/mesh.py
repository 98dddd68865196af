"""Simplicial meshes for FEM: linear tetrahedra (3D) and linear triangles (2D).

A :class:`Mesh` is a vertex array ``[N, dim]`` [m] and an element array ``[E, dim + 1]``
(vertex indices) whose elements all have positive signed volume
``det[x1 - x0, x2 - x0, (x3 - x0)] / dim!``. This module

* generates structured meshes: :func:`box` splits every hexahedral cell of a regular grid
  into the six tetrahedra around its main diagonal (Kuhn's triangulation, conforming across
  cells because every cell is split the same way); :func:`rectangle` splits every square
  into two triangles; :func:`beam` is a box along x; :func:`voxels` keeps chosen cells of
  a grid (one connected body, e.g. a robot);
* loads files through meshio (``.msh``, ``.vtk``, ``.vtu``, ``.mesh`` and whatever else
  meshio reads), keeps only the vertices the elements use, and refuses meshes with no
  elements of the wanted kind or with inverted or degenerate elements, naming the file;
* extracts the boundary (outward-oriented triangles in 3D, edges in 2D) for rendering,
  export and surface loads.

meshio is imported inside the functions that need it (optional dependency at the edge).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Outward faces of a positively oriented tetrahedron (a, b, c, d): each triple's normal
# (x1 - x0) x (x2 - x0) points away from the fourth vertex.
_TET_FACES = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
# Edges of a counter-clockwise triangle; the outward normal is to the right of each edge.
_TRI_EDGES = np.array([[0, 1], [1, 2], [2, 0]])


@dataclass
class Mesh:
    """A simplicial mesh.

    Attributes:
        vertices: rest positions [m], shape ``[N, dim]``.
        elements: vertex indices, shape ``[E, dim + 1]`` (tetrahedra or triangles), each
            with positive signed volume.
        name: where it came from (file name or generator), used in error messages.
    """

    vertices: np.ndarray
    elements: np.ndarray
    name: str = "mesh"

    def __post_init__(self):
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float64)
        self.elements = np.ascontiguousarray(self.elements, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] not in (2, 3):
            raise ValueError(f"{self.name}: vertices must be [N, 2] or [N, 3], got {self.vertices.shape}")
        if self.elements.ndim != 2 or self.elements.shape[1] != self.dim + 1:
            raise ValueError(f"{self.name}: elements must be [E, {self.dim + 1}] for {self.dim}D, "
                             f"got {self.elements.shape}")

    @property
    def dim(self) -> int:
        return self.vertices.shape[1]

    @property
    def vertex_count(self) -> int:
        return len(self.vertices)

    @property
    def element_count(self) -> int:
        return len(self.elements)

    def volumes(self) -> np.ndarray:
        """Signed element volumes [m^3] (areas [m^2] in 2D), shape ``[E]``."""
        return signed_volumes(self.vertices, self.elements)

    def surface(self) -> np.ndarray:
        """Boundary facets, outward oriented: triangles ``[F, 3]`` (3D) or edges ``[F, 2]`` (2D)."""
        return boundary_facets(self.elements)

    def surface_vertices(self) -> np.ndarray:
        """Sorted indices of the vertices on the boundary."""
        return np.unique(self.surface())

    def select(self, predicate) -> np.ndarray:
        """Indices of the vertices where ``predicate(vertices) -> bool [N]`` holds."""
        mask = np.asarray(predicate(self.vertices), dtype=bool)
        if mask.shape != (self.vertex_count,):
            raise ValueError(f"predicate must return a boolean array of shape [{self.vertex_count}]")
        return np.flatnonzero(mask)

    def select_facets(self, predicate) -> np.ndarray:
        """Boundary facets all of whose vertices satisfy ``predicate(vertices) -> bool [N]``."""
        mask = np.asarray(predicate(self.vertices), dtype=bool)
        facets = self.surface()
        return facets[mask[facets].all(axis=1)]

    def translated(self, offset) -> Mesh:
        return Mesh(self.vertices + np.asarray(offset, float), self.elements.copy(), self.name)

    def save(self, path) -> Path:
        """Write the mesh with meshio (format from the suffix: .msh, .vtk, .vtu, .mesh, ...)."""
        import meshio

        kind = "tetra" if self.dim == 3 else "triangle"
        pts = self.vertices if self.dim == 3 else np.c_[self.vertices, np.zeros(self.vertex_count)]
        path = Path(path)
        cell_data, kwargs = {}, {}
        if path.suffix == ".msh":
            # gmsh 2.2 ASCII, with the physical/geometrical tags gmsh itself writes.
            tags = [np.ones(self.element_count, dtype=np.int32)]
            cell_data = {"gmsh:physical": tags, "gmsh:geometrical": tags}
            kwargs = {"file_format": "gmsh22", "binary": False}
        meshio.write(path, meshio.Mesh(pts, [(kind, self.elements)], cell_data=cell_data), **kwargs)
        return path


def signed_volumes(vertices: np.ndarray, elements: np.ndarray) -> np.ndarray:
    """Signed volumes ``det(Dm) / dim!`` of the elements, shape ``[E]``."""
    x = vertices[elements]
    Dm = np.swapaxes(x[:, 1:] - x[:, :1], 1, 2)  # columns x_k - x_0
    return np.linalg.det(Dm) / (6.0 if vertices.shape[1] == 3 else 2.0)


def boundary_facets(elements: np.ndarray) -> np.ndarray:
    """Facets that belong to exactly one element, keeping the element's outward orientation."""
    local = _TET_FACES if elements.shape[1] == 4 else _TRI_EDGES
    facets = elements[:, local].reshape(-1, local.shape[1])
    key = np.sort(facets, axis=1)
    _, first, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
    return facets[np.sort(first[counts == 1])]


def check_elements(vertices: np.ndarray, elements: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` if an element is inverted, degenerate or out of range."""
    if elements.size and (elements.min() < 0 or elements.max() >= len(vertices)):
        raise ValueError(f"{name}: element vertex index out of range 0..{len(vertices) - 1}")
    vol = signed_volumes(vertices, elements)
    scale = float(np.ptp(vertices, axis=0).max()) ** vertices.shape[1] if len(vertices) else 1.0
    tiny = 1e-14 * max(scale, 1e-300)
    inverted = np.flatnonzero(vol < -tiny)
    if len(inverted):
        raise ValueError(f"{name}: {len(inverted)} of {len(vol)} elements are inverted (negative "
                         f"volume), e.g. element {inverted[0]} with vertices {elements[inverted[0]].tolist()}; "
                         "reorder their vertices (swap two) or fix the mesh generator")
    degenerate = np.flatnonzero(np.abs(vol) <= tiny)
    if len(degenerate):
        raise ValueError(f"{name}: {len(degenerate)} elements have zero volume, e.g. element "
                         f"{degenerate[0]} with vertices {elements[degenerate[0]].tolist()}")


def _lattice(resolution, size, origin) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells per axis ``n`` [d], the lattice points ``[prod(n + 1), d]`` [m] and their
    indices arranged as the lattice ``[n_0 + 1, ..., n_{d-1} + 1]``."""
    n = np.asarray(resolution, int)
    d = len(origin)
    if n.shape != (d,) or np.any(n < 1):
        raise ValueError(f"resolution must be {d} positive integers, got {resolution}")
    axes = [np.linspace(o, o + s, k + 1) for o, s, k in zip(origin, size, n)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
    return n, grid, np.arange(grid.shape[0]).reshape(n + 1)


def box(resolution=(4, 2, 2), size=(1.0, 0.5, 0.5), origin=(0.0, 0.0, 0.0)) -> Mesh:
    """A box of ``nx * ny * nz`` hexahedral cells, each split into 6 tetrahedra.

    Args:
        resolution: cells per axis ``(nx, ny, nz)``.
        size: edge lengths [m]. origin: the corner with the smallest coordinates [m].
    Returns:
        A :class:`Mesh` with ``(nx+1)(ny+1)(nz+1)`` vertices and ``6 nx ny nz`` tetrahedra.
    """
    n, grid, node = _lattice(resolution, size, origin)
    cells = np.stack(np.meshgrid(*[np.arange(k) for k in n], indexing="ij"), -1).reshape(-1, 3)
    tets = []
    for perm in itertools.permutations(range(3)):
        # Path from corner (0,0,0) to (1,1,1) stepping along the axes in `perm` order.
        corners = [np.zeros(3, int)]
        for axis in perm:
            corners.append(corners[-1] + np.eye(3, dtype=int)[axis])
        ids = [node[tuple((cells + c).T)] for c in corners]
        tets.append(np.stack(ids, axis=1))
    tets = np.concatenate(tets)
    return _oriented(Mesh(grid, tets, f"box{tuple(n)}"))


def voxels(cells, cell_size: float = 0.05, origin=None) -> Mesh:
    """Occupied cells of a regular grid, each split like :func:`box` (6 tets, or 2 triangles).

    Neighbouring cells share their vertices, so the mesh is one connected body (robots
    made of cells, like DiffTaichi's grid robots).

    Args:
        cells: integer cell indices ``[n, dim]``. cell_size: edge length [m].
        origin: position of grid node ``(0, 0[, 0])`` [m].
    """
    cells = np.atleast_2d(np.asarray(cells, dtype=np.int64))
    dim = cells.shape[1]
    if dim not in (2, 3) or len(cells) == 0:
        raise ValueError(f"cells must be a non-empty [n, 2] or [n, 3] integer array, got {cells.shape}")
    if len(np.unique(cells, axis=0)) != len(cells):
        raise ValueError("cells must not repeat")
    lo = cells.min(axis=0)
    shape = tuple(cells.max(axis=0) - lo + 1)
    unit = box(shape, shape, lo.astype(float)) if dim == 3 else rectangle(shape, shape, lo.astype(float))
    # keep the simplices whose centroid lies in an occupied cell
    centroid_cell = np.floor(unit.vertices[unit.elements].mean(axis=1)).astype(np.int64)
    occupied = {tuple(c) for c in cells}
    keep = np.array([tuple(c) in occupied for c in centroid_cell])
    used, elements = np.unique(unit.elements[keep], return_inverse=True)
    origin = np.zeros(dim) if origin is None else np.asarray(origin, float)
    return Mesh(origin + cell_size * unit.vertices[used], elements.reshape(-1, dim + 1), f"voxels({len(cells)})")


def beam(length: float = 1.0, width: float = 0.1, height: float = 0.1, resolution=(10, 1, 1),
         origin=(0.0, 0.0, 0.0)) -> Mesh:
    """A beam along x: :func:`box` of size ``(length, width, height)`` [m]."""
    mesh = box(resolution, (length, width, height), origin)
    mesh.name = f"beam{tuple(resolution)}"
    return mesh


def rectangle(resolution=(4, 2), size=(1.0, 0.5), origin=(0.0, 0.0)) -> Mesh:
    """A rectangle of ``nx * ny`` squares, each split into two counter-clockwise triangles."""
    n, grid, node = _lattice(resolution, size, origin)
    i, j = [a.ravel() for a in np.meshgrid(np.arange(n[0]), np.arange(n[1]), indexing="ij")]
    a, b, c, d = node[i, j], node[i + 1, j], node[i + 1, j + 1], node[i, j + 1]
    tris = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return _oriented(Mesh(grid, tris, f"rectangle{tuple(n)}"))


def _oriented(mesh: Mesh) -> Mesh:
    """Swap two vertices of every negatively oriented element (generators only)."""
    neg = mesh.volumes() < 0
    mesh.elements[neg, :2] = mesh.elements[neg, 1::-1]
    return mesh


def load_mesh(path, dim: int = 3) -> Mesh:
    """Read a tetrahedral (``dim=3``) or triangular (``dim=2``) mesh with meshio.

    Every cell block of the wanted kind is kept (``tetra`` / ``triangle``); other cells
    (surface triangles of a volume mesh, lines, points) are ignored, and vertices that no
    element uses are dropped (they would have no mass). For ``dim=2`` the z coordinate
    must be constant and is dropped.

    Raises:
        ValueError naming the file when it has no such elements, only higher-order ones,
        or inverted or degenerate elements.
    """
    import meshio

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"mesh file not found: {path}")
    try:
        raw = meshio.read(path)
    except Exception as err:  # meshio raises several unrelated types for unreadable files
        raise ValueError(f"{path}: meshio could not read it ({err})") from err
    kind = "tetra" if dim == 3 else "triangle"
    blocks = [c.data for c in raw.cells if c.type == kind]
    if not blocks:
        found = sorted({c.type for c in raw.cells})
        higher = [t for t in found if t.startswith(kind)]
        extra = (f"; only higher-order {higher} found, which this solver does not support"
                 if higher else "")
        raise ValueError(f"{path}: no {'tetrahedra' if dim == 3 else 'triangles'} "
                         f"('{kind}' cells) in the mesh; cell types found: {found}{extra}")
    elements = np.concatenate(blocks).astype(np.int64)
    points = np.asarray(raw.points, dtype=np.float64)
    if dim == 2:
        if points.shape[1] == 3:
            if np.ptp(points[:, 2]) > 1e-12 * max(np.ptp(points).max(), 1.0):
                raise ValueError(f"{path}: a 2D mesh must lie in a plane z = const")
            points = points[:, :2]
    elif points.shape[1] != 3:
        raise ValueError(f"{path}: a tetrahedral mesh needs 3D points, got {points.shape[1]}D")
    used, elements = np.unique(elements, return_inverse=True)
    elements = elements.reshape(-1, dim + 1)
    points = points[used]
    check_elements(points, elements, str(path))
    return Mesh(points, elements, str(path))
