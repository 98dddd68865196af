"""Contact: signed-distance colliders, penalty forces with friction, MPM grid conditions.

* :mod:`.spec` / :mod:`.builder`: colliders as the builder collects them
  (``ModelBuilder.add_collider_plane/box/sphere/capsule/cylinder/heightfield/mesh``) and
  how they are stored in a Model;
* :mod:`.sdf`: the analytic signed distance functions (Taichi);
* :mod:`.mesh_sdf`: signed distance grids of triangle meshes (host, meshio);
* :mod:`.colliders`: :class:`ColliderSet`, the Taichi side: poses from controls, ``sdf``,
  ``particle_force``, ``grid_collide``;
* :mod:`.penalty`: the penalty normal force and smoothed Coulomb friction;
* :mod:`.trajectory`: pose trajectories to controls (and back), drawable collider dicts;
* :mod:`.scene`: ``[[colliders]]`` types for scene files.

See docs/contact.md for the parameters, smoothing and what is differentiable.
"""

from .colliders import CONTROL_NAMES, ColliderSet, control_layout, default_controls
from .spec import BOUNDARIES, TYPES, ColliderSpec
from .trajectory import render_colliders, static_trajectory, trajectory_controls, trajectory_controls_grad

__all__ = ["BOUNDARIES", "CONTROL_NAMES", "TYPES", "ColliderSet", "ColliderSpec", "control_layout",
           "default_controls", "render_colliders", "static_trajectory", "trajectory_controls",
           "trajectory_controls_grad"]
