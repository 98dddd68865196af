"""Host-side description of colliders: what the builder collects and the Model stores.

A collider is a solid given by a signed distance function (SDF) in its own frame, placed
by a pose (position and rotation). The builder's ``add_collider_*`` methods create a
:class:`ColliderSpec`; :func:`finalize_colliders` turns the list into

* differentiable parameters with a leading environment axis (``[B, K]`` per collider:
  ``collider_stiffness`` [N/m], ``collider_damping`` [N s/m], ``collider_friction`` [-],
  ``collider_smoothing`` [m], ``collider_friction_smoothing`` [m/s], ``collider_radius``
  [m], ``collider_half_length`` [m]; ``collider_half_extents`` [B, K, dim] [m]; the
  heightfield samples ``heightfield_height`` [B, H] [m] and the mesh distance samples
  ``mesh_sdf`` [B, G] [m] when such colliders exist);
* ``model.meta["colliders"]``: one host descriptor per collider (type, name, kinematic,
  grid sizes, initial pose), read at compile time by :class:`~diffsim.contact.colliders.ColliderSet`.

Poses are not model parameters: they are per-step controls of the solver (see
:mod:`diffsim.contact.colliders`), whose default is the pose given here.
"""

from dataclasses import dataclass, field

import numpy as np

TYPES = ("plane", "box", "sphere", "capsule", "cylinder", "heightfield", "mesh")
BOUNDARIES = ("sticky", "slip", "separate")


@dataclass
class ColliderSpec:
    """One collider as the builder collects it.

    Attributes:
        type: one of :data:`TYPES`. name: label for scenes and plots.
        position: [dim] [m]. rotation: angle [rad] in 2D, quaternion ``(w, x, y, z)`` in 3D.
        stiffness [N/m], damping [N s/m], friction [-], smoothing [m] (depth smoothing
        length), friction_smoothing [m/s] (slip speed below which friction is viscous).
        kinematic: whether the pose is meant to follow a trajectory (controls).
        boundary: MPM grid condition, ``sticky``, ``slip`` or ``separate``.
        radius, half_length [m]: sphere, capsule, cylinder. half_extents [dim] [m]: box.
        grid: heightfield heights ``[n]`` (2D) / ``[nx, ny]`` (3D) or mesh SDF samples.
        spacing: heightfield sample spacing per grid axis [m] / mesh grid cell [m].
        origin: local position of grid node 0 [m] (heightfield and mesh).
        mesh: ``(vertices, triangles)`` of a mesh collider, for drawing.
    """

    type: str
    dim: int
    position: np.ndarray
    rotation: object
    stiffness: float = 1e4
    damping: float = 10.0
    friction: float = 0.5
    smoothing: float = 0.0
    friction_smoothing: float = 1e-2
    kinematic: bool = False
    boundary: str = "separate"
    name: str = ""
    radius: float = 0.0
    half_length: float = 0.0
    half_extents: np.ndarray | None = None
    grid: np.ndarray | None = None
    spacing: np.ndarray | None = None
    origin: np.ndarray | None = None
    mesh: tuple | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"unknown collider type {self.type!r}; known: {TYPES}")
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"collider boundary must be one of {BOUNDARIES}, got {self.boundary!r}")
        for name in ("stiffness", "damping", "friction", "smoothing", "friction_smoothing",
                     "radius", "half_length"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"collider {name} must be finite and >= 0, got {v}")
            setattr(self, name, v)
        self.position = _vector(self.position, self.dim, "collider position")
        self.rotation = as_rotation(self.rotation, self.dim)


def _vector(v, dim: int, what: str) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if a.shape != (dim,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be {dim} finite numbers, got {v}")
    return a


def as_rotation(rotation, dim: int):
    """Normalise a rotation: 2D angle [rad] (float); 3D quaternion ``(w, x, y, z)`` [4].

    A 3D rotation may also be given as a 3x3 rotation matrix; ``None`` is the identity.
    """
    if dim == 2:
        if rotation is None:
            return 0.0
        a = np.asarray(rotation, dtype=float)
        if a.shape not in ((), (1,)) or not np.isfinite(a).all():
            raise ValueError(f"a 2D collider rotation is one angle [rad], got {rotation}")
        return float(a.reshape(()))
    if rotation is None:
        return np.array([1.0, 0.0, 0.0, 0.0])
    a = np.asarray(rotation, dtype=float)
    if a.shape == (3, 3):
        a = matrix_to_quat(a)
    if a.shape != (4,) or not np.isfinite(a).all() or np.linalg.norm(a) == 0:
        raise ValueError(f"a 3D collider rotation is a quaternion (w, x, y, z) or a 3x3 "
                         f"matrix, got {rotation}")
    return a / np.linalg.norm(a)


def matrix_to_quat(R) -> np.ndarray:
    """Quaternion ``(w, x, y, z)`` of a rotation matrix (Shepperd's method)."""
    R = np.asarray(R, float)
    t = np.trace(R)
    if t > 0:
        s = 2.0 * np.sqrt(1.0 + t)
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + R[i, i] - R[j, j] - R[k, k])
        q = np.zeros(4)
        q[0] = (R[k, j] - R[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (R[j, i] + R[i, j]) / s
        q[1 + k] = (R[k, i] + R[i, k]) / s
    q = np.asarray(q, float)
    return q if q[0] >= 0 else -q


def quat_to_matrix(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def rotation_matrix(rotation, dim: int) -> np.ndarray:
    """``[dim, dim]`` matrix of a 2D angle or a 3D quaternion."""
    if dim == 2:
        c, s = np.cos(rotation), np.sin(rotation)
        return np.array([[c, -s], [s, c]])
    return quat_to_matrix(rotation)


def rotation_between(a, b, dim: int):
    """Rotation taking unit direction ``a`` to unit direction ``b`` (angle or quaternion)."""
    a = np.asarray(a, float) / np.linalg.norm(a)
    b = _vector(b, dim, "direction")
    nb = np.linalg.norm(b)
    if nb == 0:
        raise ValueError("direction must be non-zero")
    b = b / nb
    if dim == 2:
        return float(np.arctan2(a[0] * b[1] - a[1] * b[0], a @ b))
    c = float(a @ b)
    if c < -1 + 1e-12:  # opposite: half turn about any axis orthogonal to a
        axis = np.cross(a, np.eye(3)[int(np.argmin(np.abs(a)))])
        return np.concatenate([[0.0], axis / np.linalg.norm(axis)])
    q = np.concatenate([[1.0 + c], np.cross(a, b)])
    return q / np.linalg.norm(q)


_PER_COLLIDER = ("stiffness", "damping", "friction", "smoothing", "friction_smoothing", "radius",
                 "half_length")


def param_names(specs: list) -> tuple:
    """Names of the model parameters :func:`finalize_colliders` creates for ``specs``."""
    if not specs:
        return ()
    names = tuple(f"collider_{n}" for n in _PER_COLLIDER) + ("collider_half_extents",)
    types = {s.type for s in specs}
    return names + (("heightfield_height",) if "heightfield" in types else ()) \
        + (("mesh_sdf",) if "mesh" in types else ())


def finalize_colliders(specs: list, model) -> None:
    """Store ``specs`` in ``model`` as parameters and descriptors (see the module docstring)."""
    K = len(specs)
    model.counts["collider"] = K
    model.meta["colliders"] = []
    if K == 0:
        return
    B, D = model.num_envs, model.dim

    def per_env(values):
        a = np.asarray(values, float)
        return np.broadcast_to(a, (B,) + a.shape).copy()

    docs = {"stiffness": ("N/m", "penalty stiffness"), "damping": ("N s/m", "penalty damping"),
            "friction": ("-", "Coulomb friction coefficient"),
            "smoothing": ("m", "depth smoothing length"),
            "friction_smoothing": ("m/s", "slip speed below which friction is viscous"),
            "radius": ("m", "sphere / capsule / cylinder radius"),
            "half_length": ("m", "capsule segment / cylinder half length")}
    for name in _PER_COLLIDER:
        units, doc = docs[name]
        model.add_param(f"collider_{name}", per_env([getattr(s, name) for s in specs]), units,
                        f"{doc} per collider [B, K]")
    ext = np.zeros((K, D))
    for k, s in enumerate(specs):
        if s.type == "box":
            ext[k] = s.half_extents
    model.add_param("collider_half_extents", per_env(ext), "m", "box half extents [B, K, dim]")

    descriptors, heights, sdfs = [], [], []
    h_off = g_off = 0
    for k, s in enumerate(specs):
        d = {"type": s.type, "name": s.name or f"{s.type}{k}", "kinematic": s.kinematic,
             "boundary": s.boundary, "position": s.position.copy(),
             "rotation": np.array(s.rotation, float)}
        if s.type in ("heightfield", "mesh"):
            grid = np.asarray(s.grid, float)
            d.update(shape=tuple(int(n) for n in grid.shape), spacing=tuple(float(x) for x in s.spacing),
                     origin=tuple(float(x) for x in s.origin))
            if s.type == "heightfield":
                d["offset"] = h_off
                heights.append(grid.ravel())
                h_off += grid.size
            else:
                d["offset"] = g_off
                d["vertices"], d["triangles"] = s.mesh
                sdfs.append(grid.ravel())
                g_off += grid.size
        descriptors.append(d)
    if heights:
        model.add_param("heightfield_height", per_env(np.concatenate(heights)), "m",
                        "heightfield samples, all heightfields concatenated row-major [B, H]")
    if sdfs:
        model.add_param("mesh_sdf", per_env(np.concatenate(sdfs)), "m",
                        "mesh signed distance samples, all meshes concatenated row-major [B, G]")
    model.meta["colliders"] = descriptors
