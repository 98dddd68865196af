"""``add_collider_*`` methods of :class:`diffsim.core.builder.ModelBuilder`.

They live here, next to the collider kernels, and reach every builder through
:class:`ColliderBuilderMixin`, a base class of ``ModelBuilder``. Every method takes the
same contact keywords and returns the collider's index ``k`` (its slot in the ``[B, K]``
parameters and in the pose controls):

* ``position`` [m] and ``rotation`` (2D: angle [rad], counter-clockwise; 3D: quaternion
  ``(w, x, y, z)`` or a 3x3 matrix) place the collider's local frame (see
  :mod:`diffsim.contact.sdf` for each shape's frame);
* ``stiffness`` [N/m] and ``damping`` [N s/m] of the penalty normal force on a particle;
* ``friction``: Coulomb coefficient [-] (also the MPM grid friction);
* ``smoothing`` [m]: softplus width of the penetration depth (0: sharp contact);
* ``friction_smoothing`` [m/s]: slip speed below which friction turns viscous;
* ``kinematic``: the collider follows a pose trajectory given as controls (static
  colliders keep the pose given here);
* ``boundary``: MPM grid condition, ``sticky``, ``slip`` or ``separate``;
* ``name``: label used by scenes and plots.
"""

import numpy as np

from .mesh_sdf import load_mesh, signed_distance_grid
from .spec import ColliderSpec, rotation_between


class ColliderBuilderMixin:
    """Collider methods shared by every builder (expects ``self.dim``, ``self.colliders``)."""

    def _add_collider(self, type_, position, rotation, **kwargs) -> int:
        if position is None:
            position = np.zeros(self.dim)
        spec = ColliderSpec(type=type_, dim=self.dim, position=position, rotation=rotation, **kwargs)
        self.colliders.append(spec)
        return len(self.colliders) - 1

    def _axis_rotation(self, rotation, axis):
        if axis is None:
            return rotation
        if rotation is not None:
            raise ValueError("give either rotation or axis, not both")
        return rotation_between(np.eye(self.dim)[0], axis, self.dim)

    def add_collider_plane(self, normal=None, point=None, *, rotation=None, **contact) -> int:
        """Half-space below a plane: the solid is the side opposite ``normal``.

        Args:
            normal: outward normal (default: up, the last axis); point: a point on the
                plane [m] (default: the origin). ``rotation`` may replace ``normal`` (the
                local up axis is the normal).
        """
        if normal is not None:
            if rotation is not None:
                raise ValueError("give either normal or rotation, not both")
            rotation = rotation_between(np.eye(self.dim)[-1], normal, self.dim)
        return self._add_collider("plane", point, rotation, **contact)

    def add_collider_box(self, half_extents, position=None, rotation=None, **contact) -> int:
        """Box of ``half_extents`` [m] (``dim`` values) along its local axes."""
        h = np.asarray(half_extents, float)
        if h.shape != (self.dim,) or np.any(h <= 0):
            raise ValueError(f"box half_extents must be {self.dim} positive numbers, got {half_extents}")
        return self._add_collider("box", position, rotation, half_extents=h, **contact)

    def add_collider_sphere(self, radius: float, position=None, **contact) -> int:
        """Sphere (a disc in 2D) of ``radius`` [m]."""
        if radius <= 0:
            raise ValueError(f"sphere radius must be positive, got {radius}")
        return self._add_collider("sphere", position, None, radius=radius, **contact)

    def add_collider_capsule(self, radius: float, half_length: float, position=None,
                             rotation=None, axis=None, **contact) -> int:
        """Segment of half length ``half_length`` [m] on the local x axis, swept by ``radius``.

        ``axis`` (a direction) is a shortcut for the rotation taking local x onto it.
        """
        if radius <= 0 or half_length < 0:
            raise ValueError(f"capsule needs radius > 0 and half_length >= 0, got {radius}, {half_length}")
        return self._add_collider("capsule", position, self._axis_rotation(rotation, axis),
                                  radius=radius, half_length=half_length, **contact)

    def add_collider_cylinder(self, radius: float, half_length: float, position=None,
                              rotation=None, axis=None, **contact) -> int:
        """Flat-capped cylinder along local x (2D: the rectangle ``2 half_length x 2 radius``)."""
        if radius <= 0 or half_length <= 0:
            raise ValueError(f"cylinder needs radius > 0 and half_length > 0, got {radius}, {half_length}")
        return self._add_collider("cylinder", position, self._axis_rotation(rotation, axis),
                                  radius=radius, half_length=half_length, **contact)

    def add_collider_heightfield(self, heights, spacing, position=None, rotation=None,
                                 **contact) -> int:
        """Terrain: the solid lies below a sampled height profile (2D) or surface (3D).

        Args:
            heights: ``[n]`` in 2D, ``[nx, ny]`` in 3D [m], along the local up axis; the
                samples are centred on ``position``: sample ``i`` sits at local
                ``(i - (n - 1) / 2) * spacing``. Between samples the height is linear
                (bilinear in 3D); beyond the edges it stays at the edge value.
            spacing: distance between samples [m] (one value, or one per grid axis).
        """
        h = np.asarray(heights, float)
        if h.ndim != self.dim - 1 or min(h.shape) < 2 or not np.isfinite(h).all():
            raise ValueError(f"heightfield heights must be a finite {self.dim - 1}D array with "
                             f">= 2 samples per axis, got shape {h.shape}")
        sp = np.broadcast_to(np.asarray(spacing, float), (self.dim - 1,)).copy()
        if np.any(sp <= 0):
            raise ValueError(f"heightfield spacing must be positive, got {spacing}")
        origin = -0.5 * (np.asarray(h.shape) - 1) * sp
        return self._add_collider("heightfield", position, rotation, grid=h, spacing=sp,
                                  origin=origin, **contact)

    def add_collider_mesh(self, mesh, position=None, rotation=None, scale: float = 1.0,
                          resolution: int = 32, padding: float | None = None, **contact) -> int:
        """Closed triangle mesh, as a signed distance grid (see :mod:`diffsim.contact.mesh_sdf`).

        Args:
            mesh: a file meshio reads, or ``(vertices [V, dim], triangles [T, 3])`` in the
                collider's local frame [m]. In 2D the triangles cover the solid's area.
            scale: factor applied to the vertices. resolution: grid nodes along the longest
                side; padding: grid margin around the mesh [m].
        """
        if isinstance(mesh, tuple):
            vertices, triangles = (np.asarray(mesh[0], float), np.asarray(mesh[1], np.int64))
        else:
            vertices, triangles = load_mesh(mesh, self.dim)
        vertices = vertices * float(scale)
        if vertices.ndim != 2 or vertices.shape[1] != self.dim or triangles.ndim != 2 \
                or triangles.shape[1] != 3:
            raise ValueError(f"mesh needs vertices [V, {self.dim}] and triangles [T, 3]")
        values, origin, cell = signed_distance_grid(vertices, triangles, resolution, padding)
        return self._add_collider("mesh", position, rotation, grid=values,
                                  spacing=np.full(self.dim, cell), origin=origin,
                                  mesh=(vertices, triangles), **contact)

