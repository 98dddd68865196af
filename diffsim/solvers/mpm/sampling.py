"""Particle sampling of solids for MPM: boxes, balls and closed triangle meshes.

Particles sit at the cell centres of a regular lattice of spacing ``s`` clipped to the shape
(a box is divided into a whole number of cells, so its particles fill it exactly). Each
particle represents the volume of its cell, ``s^dim`` (in 2D an area, per unit thickness),
so the sampled mass is ``density * volume`` whatever the shape. An optional jitter moves
each particle uniformly within ``+- jitter * s / 2`` per axis, which breaks the lattice's
symmetry for granular flows.

A mesh is voxelised by an inside test on the lattice points: the sign of the mesh's signed
distance (generalised winding number in 3D, point-in-triangle in 2D; see
:mod:`diffsim.contact.mesh_sdf`).
"""

import numpy as np


def _lattice(lower, counts, cell):
    axes = [lower[k] + (np.arange(n) + 0.5) * cell[k] for k, n in enumerate(counts)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(counts))


def box(lower, size, spacing: float):
    """Particles filling the box ``[lower, lower + size]`` [m].

    Returns:
        ``(points [P, dim], volume [P])``: the box is cut into
        ``max(1, round(size / spacing))`` cells per axis, one particle per cell.
    """
    lower, size = np.asarray(lower, float), np.asarray(size, float)
    if lower.shape != size.shape or np.any(size <= 0):
        raise ValueError(f"box needs lower and a positive size of the same dimension, got {lower}, {size}")
    counts = np.maximum(1, np.round(size / spacing).astype(int))
    cell = size / counts
    pts = _lattice(lower, counts, cell)
    return pts, np.full(len(pts), float(np.prod(cell)))


def ball(center, radius: float, spacing: float):
    """Particles filling the disc (2D) or sphere (3D) of ``radius`` [m] about ``center``."""
    center = np.asarray(center, float)
    if radius <= 0:
        raise ValueError(f"ball radius must be positive, got {radius}")
    n = int(np.ceil(2 * radius / spacing))
    lower = center - 0.5 * n * spacing
    pts = _lattice(lower, [n] * len(center), [spacing] * len(center))
    pts = pts[np.sum((pts - center) ** 2, axis=1) <= radius ** 2]
    return pts, np.full(len(pts), spacing ** len(center))


def mesh(vertices, triangles, spacing: float):
    """Particles filling a closed triangle mesh (vertices ``[V, dim]`` [m], triangles ``[T, 3]``)."""
    from ...contact.mesh_sdf import signed_distance

    V = np.asarray(vertices, float)
    lo, hi = V.min(axis=0), V.max(axis=0)
    counts = np.maximum(1, np.ceil((hi - lo) / spacing).astype(int))
    lower = 0.5 * (lo + hi) - 0.5 * counts * spacing
    pts = _lattice(lower, counts, [spacing] * V.shape[1])
    pts = pts[signed_distance(pts, V, triangles) < 0]
    if len(pts) == 0:
        raise ValueError("no lattice point inside the mesh: use a smaller spacing or check the mesh")
    return pts, np.full(len(pts), spacing ** V.shape[1])


def jitter(points, spacing: float, amount: float, rng) -> np.ndarray:
    """Move each point uniformly within ``+- amount * spacing / 2`` per axis."""
    if amount <= 0:
        return points
    return points + (rng.random(points.shape) - 0.5) * amount * spacing
