"""Builders: collect a scene in Python lists, then ``finalize`` into a :class:`Model`.

:class:`ModelBuilder` holds what every solver family shares (dimension, gravity, ground
contact) and the bookkeeping of actuators; the family builders (mass-spring here, MPM and
FEM in their solver packages) add their bodies. ``finalize(num_envs=B)`` copies every
parameter to a ``[B, ...]`` field; per-environment values are set afterwards with
``model.set(name, value)``.
"""

from dataclasses import dataclass

import numpy as np

from ..contact.builder import ColliderBuilderMixin
from ..contact.spec import ColliderSpec, finalize_colliders
from .model import Model


@dataclass
class GroundContact:
    """Ground half-space ``x[dim-1] >= height`` with its contact model and parameters.

    Attributes:
        height: ground level [m]. stiffness: normal stiffness [N/m]. damping: normal damping
        [N s/m]. friction: Coulomb coefficient [-]. smoothing: depth smoothing length [m].
        friction_smoothing: velocity below which friction turns viscous [m/s].
        model: ``"penalty"`` (spring-damper normal force, smoothed Coulomb friction: uses the
            parameters above) or ``"sticky"`` (perfectly inelastic, no-slip impact at the
            time of impact, DiffTaichi's ``advance_toi``: uses ``height`` only; mass-spring
            solver only).
    """

    height: float = 0.0
    stiffness: float = 1e4
    damping: float = 10.0
    friction: float = 0.5
    smoothing: float = 0.0
    friction_smoothing: float = 1e-2
    model: str = "penalty"

    def __post_init__(self):
        if self.model not in GROUND_MODELS:
            raise ValueError(f"ground model must be one of {GROUND_MODELS}, got {self.model!r}")


GROUND_MODELS = ("penalty", "sticky")


class ModelBuilder(ColliderBuilderMixin):
    """Shared part of every builder.

    Colliders (``add_collider_plane/box/sphere/capsule/cylinder/heightfield/mesh``) come
    from :class:`~diffsim.contact.builder.ColliderBuilderMixin`.

    Args:
        dim: 2 or 3.
        gravity: acceleration [m/s^2], a vector of length ``dim`` (default ``-9.81`` on the
            last axis, which is "up").
    """

    kind = "generic"

    def __init__(self, dim: int = 2, gravity=None):
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        self.dim = dim
        g = np.zeros(dim)
        g[-1] = -9.81
        self.gravity = np.asarray(gravity if gravity is not None else g, dtype=float)
        if self.gravity.shape != (dim,):
            raise ValueError(f"gravity must have {dim} components, got {self.gravity.shape}")
        self.ground: GroundContact | None = None
        self.colliders: list[ColliderSpec] = []
        self.actuator_count = 0

    def add_ground(self, **params) -> GroundContact:
        """Add the ground half-space (see :class:`GroundContact` for the parameters)."""
        self.ground = GroundContact(**params)
        return self.ground

    def add_actuator(self) -> int:
        """Reserve one actuation channel; returns its index in ``Control``."""
        self.actuator_count += 1
        return self.actuator_count - 1

    def _finalize_common(self, model: Model) -> None:
        B = model.num_envs
        model.counts["actuator"] = self.actuator_count
        model.add_param("gravity", np.tile(self.gravity, (B, 1)), "m/s^2", "gravity vector")
        g = self.ground or GroundContact(height=-1e30, stiffness=0.0, damping=0.0, friction=0.0)
        model.meta["has_ground"] = self.ground is not None
        model.meta["ground_model"] = g.model
        for name, units in (("height", "m"), ("stiffness", "N/m"), ("damping", "N s/m"),
                            ("friction", "-"), ("smoothing", "m"), ("friction_smoothing", "m/s")):
            model.add_param(f"ground_{name}", np.full((B,), getattr(g, name)), units,
                            f"ground contact {name}")
        finalize_colliders(self.colliders, model)


class MassSpringBuilder(ModelBuilder):
    """Particles joined by (optionally actuated) damped springs.

    An actuated spring's rest length follows ``L(t) = L0 * (1 + a * u(t))`` with ``a`` its
    actuation amplitude and ``u(t)`` in [-1, 1] its actuator's control (DiffTaichi's
    mass-spring robots).
    """

    kind = "mass_spring"

    def __init__(self, dim: int = 2, gravity=None, drag: float = 0.0):
        super().__init__(dim, gravity)
        self.drag = float(drag)
        self.positions: list[np.ndarray] = []
        self.velocities: list[np.ndarray] = []
        self.masses: list[float] = []
        self.springs: list[tuple[int, int]] = []
        self.spring_rest: list[float] = []
        self.spring_stiffness: list[float] = []
        self.spring_damping: list[float] = []
        self.spring_amplitude: list[float] = []
        self.spring_actuator: list[int] = []
        self._spring_index: dict[tuple[int, int], int] = {}

    @property
    def particle_count(self) -> int:
        return len(self.positions)

    def add_particle(self, position, velocity=None, mass: float = 1.0) -> int:
        """Add a point mass [kg] at ``position`` [m]; returns its index."""
        p = np.asarray(position, dtype=float)
        if p.shape != (self.dim,):
            raise ValueError(f"particle position must have {self.dim} components, got {p.shape}")
        if mass <= 0:
            raise ValueError(f"particle mass must be positive, got {mass}")
        self.positions.append(p)
        self.velocities.append(np.zeros(self.dim) if velocity is None else np.asarray(velocity, float))
        self.masses.append(float(mass))
        return len(self.positions) - 1

    def add_spring(self, a: int, b: int, stiffness: float, damping: float = 0.0,
                   rest_length: float | None = None, actuation: float = 0.0,
                   actuator: int | None = None) -> int:
        """Spring between particles ``a`` and ``b``; returns its index.

        Args:
            stiffness: [N/m]; damping: along the spring [N s/m]; rest_length: [m] (default:
            current distance). actuation: amplitude ``a`` of the rest-length modulation;
            actuator: its control channel (default: a new channel if ``actuation != 0``).
        """
        n = self.particle_count
        if not (0 <= a < n and 0 <= b < n) or a == b:
            raise ValueError(f"spring endpoints must be two distinct particles in 0..{n - 1}, "
                             f"got ({a}, {b})")
        if rest_length is None:
            rest_length = float(np.linalg.norm(self.positions[a] - self.positions[b]))
        if actuator is None:
            actuator = self.add_actuator() if actuation != 0 else -1
        self.springs.append((a, b))
        self.spring_rest.append(rest_length)
        self.spring_stiffness.append(float(stiffness))
        self.spring_damping.append(float(damping))
        self.spring_amplitude.append(float(actuation))
        self.spring_actuator.append(int(actuator))
        self._spring_index[(min(a, b), max(a, b))] = len(self.springs) - 1
        return len(self.springs) - 1

    def has_spring(self, a: int, b: int) -> bool:
        return (min(a, b), max(a, b)) in self._spring_index

    def add_grid_robot(self, cells, cell_size: float = 0.05, origin=None,
                       stiffness: float = 3e4, damping: float = 0.0, actuation: float = 0.15,
                       mass: float = 1.0) -> list[int]:
        """A robot made of unit cells of a regular grid, every cell fully braced.

        Args:
            cells: iterable of ``(i, j[, k], actuated)``: cell indices and whether the
                cell's vertical edges are actuated (one control channel per such spring).
            cell_size: edge length [m]; origin: position of grid node (0, 0[, 0]) [m].
        Returns:
            Indices of the particles created, in grid-node order of first use.
        """
        origin = np.zeros(self.dim) if origin is None else np.asarray(origin, float)
        nodes: dict[tuple[int, ...], int] = {}
        created: list[int] = []

        def node(key):
            if key not in nodes:
                nodes[key] = self.add_particle(origin + cell_size * np.asarray(key, float), mass=mass)
                created.append(nodes[key])
            return nodes[key]

        up = self.dim - 1
        for cell in cells:
            *ijk, actuated = cell
            if len(ijk) != self.dim:
                raise ValueError(f"grid cell {cell} must have {self.dim} indices and a flag")
            corners = [tuple(int(c) + int(o) for c, o in zip(ijk, offs))
                       for offs in np.ndindex(*(2,) * self.dim)]
            ids = [node(c) for c in corners]
            for p in range(len(ids)):
                for q in range(p + 1, len(ids)):
                    a, b = ids[p], ids[q]
                    if self.has_spring(a, b):
                        continue
                    diff = np.abs(np.subtract(corners[p], corners[q]))
                    vertical_edge = diff[up] == 1 and diff.sum() == 1
                    amp = actuation if (actuated and vertical_edge) else 0.0
                    self.add_spring(a, b, stiffness, damping, actuation=amp)
        return created

    def finalize(self, num_envs: int = 1) -> Model:
        """Freeze into a :class:`Model` with ``num_envs`` identical environments."""
        if self.particle_count == 0:
            raise ValueError("a mass-spring model needs at least one particle")
        B, D = num_envs, self.dim
        m = Model(self.kind, D, B)
        N, S = self.particle_count, len(self.springs)
        m.counts.update(particle=N, spring=S)
        self._finalize_common(m)

        def per_env(values, shape_tail=()):
            arr = np.asarray(values, float).reshape((-1,) + shape_tail)
            return np.broadcast_to(arr, (B,) + arr.shape).copy()

        m.add_param("particle_mass", per_env(self.masses), "kg", "particle masses [B, N]")
        m.add_param("drag", np.full((B,), self.drag), "1/s", "velocity damping rate [B]")
        m.add_param("spring_stiffness", per_env(self.spring_stiffness), "N/m", "[B, S]")
        m.add_param("spring_damping", per_env(self.spring_damping), "N s/m", "[B, S]")
        m.add_param("spring_rest_length", per_env(self.spring_rest), "m", "[B, S]")
        m.add_param("spring_actuation", per_env(self.spring_amplitude), "-",
                    "actuation amplitude of the rest length [B, S]")
        m.add_topology("spring_indices", np.asarray(self.springs, np.int32).reshape(-1, 2))
        m.add_topology("spring_actuator", np.asarray(self.spring_actuator, np.int32))
        m.meta["initial_state"] = {"x": per_env(np.asarray(self.positions), (D,)),
                                   "v": per_env(np.asarray(self.velocities), (D,))}
        m.flush()  # every field declared: one SNode tree for the whole model
        return m
