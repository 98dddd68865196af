"""Building MPM scenes: bodies of particles with materials, muscles and boundaries.

:class:`MPMBuilder` samples bodies (boxes, balls, closed meshes, or explicit points; see
:mod:`.sampling`), each with one material and optionally one actuator group, and
``finalize(num_envs=B)`` freezes them into a :class:`~diffsim.core.model.Model` whose
per-particle material parameters are ``[B, N]`` fields with gradient:

* ``particle_mass`` [kg] ``= density * volume`` and ``particle_volume`` [m^dim] (in 2D per
  unit thickness, so densities stay in kg/m^3);
* ``youngs_modulus`` [Pa] and ``poisson_ratio`` [-] (the solver forms Lame's ``mu`` and
  ``lam`` in the kernel, so gradients reach ``E`` and ``nu`` directly);
* the extra parameters of the materials present, e.g. ``yield_stress`` [Pa],
  ``friction_angle`` [rad], ``hardening`` [-], ``bulk_modulus`` [Pa] (see
  ``extra_params`` of each class in :mod:`diffsim.materials`).

Actuator groups (:meth:`MPMBuilder.add_actuator_group`) add ``actuator_strength`` [Pa]
``[B, A]`` and the fibre direction ``actuator_direction`` ``[B, A, dim]``; the walls add
``wall_friction`` [-] ``[B]``; ground and colliders come from
:class:`~diffsim.core.builder.ModelBuilder`. Topology: ``particle_material`` (index into
``model.meta["materials"]``), ``particle_actuator`` (-1: none) and ``particle_body``.
"""

import numpy as np

from ...core.builder import ModelBuilder
from ...core.model import Model
from . import sampling
from .constitutive import mpm_material


class MPMBuilder(ModelBuilder):
    """Collects MPM bodies.

    Args:
        dim: 2 or 3.
        gravity: [m/s^2] (default ``-9.81`` along the last axis).
        particle_spacing: default lattice spacing of sampled bodies [m]; MLS-MPM wants about
            2 particles per grid cell per axis (``spacing = dx / 2``).
        seed: random seed of the jitter.
    """

    kind = "mpm"

    def __init__(self, dim: int = 2, gravity=None, particle_spacing: float = 0.01, seed: int = 0):
        super().__init__(dim, gravity)
        if particle_spacing <= 0:
            raise ValueError(f"particle_spacing must be positive, got {particle_spacing}")
        self.particle_spacing = float(particle_spacing)
        self.rng = np.random.default_rng(seed)
        self.bodies: list[dict] = []
        self.actuator_directions: list[np.ndarray] = []
        self.actuator_strengths: list[float] = []
        self.wall_friction = 0.0

    @property
    def particle_count(self) -> int:
        return sum(len(b["x"]) for b in self.bodies)

    # -- boundaries and muscles ---------------------------------------------------------------
    def set_walls(self, friction: float = 0.0) -> None:
        """Coulomb friction [-] of the domain walls (their type is ``SolverMPM.Config.boundary``)."""
        if friction < 0:
            raise ValueError(f"wall friction must be >= 0, got {friction}")
        self.wall_friction = float(friction)

    def add_actuator_group(self, direction=None, strength: float = 1.0) -> int:
        """A muscle: particles of this group add the Kirchhoff stress
        ``tau_act = a * strength * (F d)(F d)^T`` with ``a = act[step, b, group]``.

        ``a > 0`` pulls the material together along the fibre ``d`` (unit, rest frame;
        default: the up axis), ``a < 0`` pushes it apart. This is the ChainQueen / DiffTaichi
        diffmpm muscle (``F A F^T`` with ``A = a s d d^T``).

        Args:
            direction: fibre direction (normalised here).
            strength: stress per unit activation [Pa].
        Returns:
            The group's control channel (index into ``act``).
        """
        d = np.zeros(self.dim)
        d[-1] = 1.0
        if direction is not None:
            d = np.asarray(direction, float)
            if d.shape != (self.dim,) or np.linalg.norm(d) == 0:
                raise ValueError(f"actuator direction must be a non-zero {self.dim}-vector, got {direction}")
        self.actuator_directions.append(d / np.linalg.norm(d))
        self.actuator_strengths.append(float(strength))
        return self.add_actuator()

    # -- bodies ----------------------------------------------------------------------------------
    def add_particles(self, positions, velocity=None, volume=None, material: str = "corotated",
                      density: float = 1000.0, youngs_modulus: float = 1e5,
                      poisson_ratio: float = 0.3, actuator: int = -1, name: str | None = None,
                      **material_params) -> int:
        """Add a body from explicit particle positions; returns the body index.

        Args:
            positions: ``[P, dim]`` [m]. velocity: ``[dim]`` or ``[P, dim]`` [m/s].
            volume: per-particle volume [m^dim] (default ``particle_spacing ** dim``).
            material: a registered material name (``corotated``, ``neo_hookean``,
                ``linear``, ``von_mises``, ``snow``, ``drucker_prager``, ``fluid`` ...).
            density [kg/m^3], youngs_modulus [Pa], poisson_ratio [-].
            actuator: actuator group (from :meth:`add_actuator_group`) or -1.
            **material_params: the material's extra parameters (e.g. ``yield_stress``).
        """
        x = np.asarray(positions, float).reshape(-1, self.dim)
        P = len(x)
        if P == 0:
            raise ValueError("a body needs at least one particle")
        mat = mpm_material(material)
        unknown = set(material_params) - set(mat.extra_params)
        if unknown:
            raise ValueError(f"material {material!r} has no parameter(s) {sorted(unknown)}; "
                             f"it takes {sorted(mat.extra_params)}")
        if density <= 0 or youngs_modulus <= 0 or not -1 < poisson_ratio < 0.5:
            raise ValueError(f"need density > 0, youngs_modulus > 0 and -1 < poisson_ratio < 0.5, "
                             f"got {density}, {youngs_modulus}, {poisson_ratio}")
        if not -1 <= actuator < self.actuator_count:
            raise ValueError(f"actuator {actuator} does not exist (groups: {self.actuator_count})")
        vol = np.broadcast_to(np.asarray(self.particle_spacing ** self.dim if volume is None else volume,
                                         float), (P,)).copy()
        v = np.broadcast_to(np.zeros(self.dim) if velocity is None else np.asarray(velocity, float),
                            (P, self.dim)).copy()
        extras = {k: float(material_params.get(k, spec[1])) for k, spec in mat.extra_params.items()}
        self.bodies.append(dict(name=name or f"body{len(self.bodies)}", x=x, v=v, volume=vol,
                                material=material, density=float(density), E=float(youngs_modulus),
                                nu=float(poisson_ratio), actuator=int(actuator), extras=extras))
        return len(self.bodies) - 1

    def add_box(self, lower, size, spacing: float | None = None, jitter: float = 0.0, **body) -> int:
        """Box ``[lower, lower + size]`` [m] of particles (see :meth:`add_particles` for ``body``;
        a ``volume`` there overrides the sampled per-particle volume, e.g. for scenes in
        DiffTaichi's nondimensional units)."""
        s = spacing or self.particle_spacing
        pts, vol = sampling.box(lower, size, s)
        body.setdefault("volume", vol)
        return self.add_particles(sampling.jitter(pts, s, jitter, self.rng), **body)

    def add_ball(self, center, radius: float, spacing: float | None = None, jitter: float = 0.0,
                 **body) -> int:
        """Disc (2D) or sphere (3D) of ``radius`` [m] about ``center`` [m]."""
        s = spacing or self.particle_spacing
        pts, vol = sampling.ball(center, radius, s)
        body.setdefault("volume", vol)
        return self.add_particles(sampling.jitter(pts, s, jitter, self.rng), **body)

    def add_mesh(self, mesh, position=None, scale: float = 1.0, spacing: float | None = None,
                 jitter: float = 0.0, **body) -> int:
        """Closed triangle mesh filled with particles.

        Args:
            mesh: a file meshio reads (``.obj``, ``.ply``, ``.stl`` ...) or
                ``(vertices [V, dim], triangles [T, 3])``; in 2D the triangles cover the area.
            position: translation [m] applied after ``scale``.
        """
        from ...contact.mesh_sdf import load_mesh

        if isinstance(mesh, tuple):
            V, T = np.asarray(mesh[0], float), np.asarray(mesh[1], np.int64)
        else:
            V, T = load_mesh(mesh, self.dim)
        V = V * float(scale) + (0.0 if position is None else np.asarray(position, float))
        s = spacing or self.particle_spacing
        pts, vol = sampling.mesh(V, T, s)
        body.setdefault("volume", vol)
        return self.add_particles(sampling.jitter(pts, s, jitter, self.rng), **body)

    # -- host views (no Taichi) ------------------------------------------------------------------
    def material_names(self) -> list[str]:
        return sorted({b["material"] for b in self.bodies})

    def initial_state(self, num_envs: int = 1) -> dict[str, np.ndarray]:
        """``{x, v, C, F[, Jp]}`` of ``num_envs`` identical environments, each ``[B, N, ...]``."""
        B, D, N = num_envs, self.dim, self.particle_count
        x = np.concatenate([b["x"] for b in self.bodies])
        v = np.concatenate([b["v"] for b in self.bodies])
        state = {"x": np.repeat(x[None], B, 0), "v": np.repeat(v[None], B, 0),
                 "C": np.zeros((B, N, D, D)), "F": np.broadcast_to(np.eye(D), (B, N, D, D)).copy()}
        if any(mpm_material(n).plastic_state for n in self.material_names()):
            state["Jp"] = np.ones((B, N))
        return state

    def param_names(self) -> tuple[str, ...]:
        """Names of the parameters :meth:`finalize` creates (colliders excluded)."""
        ground = tuple(f"ground_{n}" for n in ("height", "stiffness", "damping", "friction",
                                               "smoothing", "friction_smoothing"))
        extras = []
        for name in self.material_names():
            extras += [k for k in mpm_material(name).extra_params if k not in extras]
        acts = ("actuator_strength", "actuator_direction") if self.actuator_count else ()
        return (("gravity",) + ground + ("particle_volume", "particle_mass", "youngs_modulus",
                                         "poisson_ratio") + tuple(extras) + ("wall_friction",) + acts)

    # -- freeze ------------------------------------------------------------------------------------
    def finalize(self, num_envs: int = 1) -> Model:
        """Freeze into a :class:`Model` with ``num_envs`` identical environments."""
        if not self.bodies:
            raise ValueError("an MPM model needs at least one body")
        B, D = num_envs, self.dim
        m = Model(self.kind, D, B)
        names = self.material_names()
        mats = [mpm_material(n) for n in names]
        N = self.particle_count
        m.counts.update(particle=N, material=len(names), body=len(self.bodies))
        self._finalize_common(m)

        def cat(fn):
            return np.concatenate([fn(b) for b in self.bodies])

        def per_env(values):
            a = np.asarray(values, float)
            return np.broadcast_to(a, (B,) + a.shape).copy()

        volume = cat(lambda b: b["volume"])
        m.add_param("particle_volume", per_env(volume), "m^dim", "rest volume per particle [B, N]")
        m.add_param("particle_mass", per_env(volume * cat(lambda b: np.full(len(b["x"]), b["density"]))),
                    "kg", "particle mass = density * volume [B, N]")
        m.add_param("youngs_modulus", per_env(cat(lambda b: np.full(len(b["x"]), b["E"]))), "Pa",
                    "Young's modulus per particle [B, N]")
        m.add_param("poisson_ratio", per_env(cat(lambda b: np.full(len(b["x"]), b["nu"]))), "-",
                    "Poisson's ratio per particle [B, N]")
        extra_specs = {}
        for mat in mats:
            extra_specs.update(mat.extra_params)
        for pname, (units, default, doc) in extra_specs.items():
            vals = cat(lambda b: np.full(len(b["x"]), b["extras"].get(pname, default)))
            m.add_param(pname, per_env(vals), units, f"{doc} per particle [B, N]")
        m.add_param("wall_friction", np.full((B,), self.wall_friction), "-", "domain wall friction [B]")
        A = self.actuator_count
        if A:
            m.add_param("actuator_strength", per_env(self.actuator_strengths), "Pa",
                        "muscle stress per unit activation [B, A]")
            m.add_param("actuator_direction", per_env(np.stack(self.actuator_directions)), "-",
                        "muscle fibre direction, unit, rest frame [B, A, dim]")
        m.add_topology("particle_material", cat(lambda b: np.full(len(b["x"]), names.index(b["material"]))))
        m.add_topology("particle_actuator", cat(lambda b: np.full(len(b["x"]), b["actuator"])))
        m.add_topology("particle_body", np.repeat(np.arange(len(self.bodies)), [len(b["x"]) for b in self.bodies]))
        m.meta["materials"] = tuple(names)
        start = np.cumsum([0] + [len(b["x"]) for b in self.bodies])
        m.meta["bodies"] = [dict(name=b["name"], material=b["material"], actuator=b["actuator"],
                                 start=int(start[i]), count=len(b["x"])) for i, b in enumerate(self.bodies)]
        m.meta["initial_state"] = self.initial_state(B)
        m.flush()  # every field declared: one SNode tree for the whole model
        return m
