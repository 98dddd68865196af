"""FEM scene builder: simplicial meshes, materials, boundary conditions, loads, muscles.

:class:`FEMBuilder` collects one or more meshes (linear tetrahedra in 3D, linear triangles
in 2D, plane strain) and finalises them into a :class:`~diffsim.core.model.Model` of kind
``"fem"``. Parameters (per environment ``B``, differentiable):

* ``element_mu``, ``element_lam`` [B, E]: Lame parameters [Pa];
* ``element_density`` [B, E]: mass density [kg/m^3], lumped (each vertex gets 1/(d+1) of
  an element's mass);
* ``element_active_stress`` [B, E]: peak active fibre stress sigma [Pa] (muscles);
* ``element_fiber`` [B, E, d]: fibre direction ``a`` in the rest shape (muscles);
* ``damping_mass`` [B]: Rayleigh alpha [1/s]; ``damping_stiffness`` [B]: Rayleigh beta [s];
* ``gravity`` [B, d] and ``ground_*`` [B] from :class:`~diffsim.core.builder.ModelBuilder`,
  and the ``collider_*`` parameters of its ``add_collider_*`` methods (SDF colliders,
  :mod:`diffsim.contact`; explicit integrator only).

Boundary conditions are per vertex and per axis: a *pinned* component keeps its value,
a *kinematic* component follows the per-step control ``target`` (differentiable). Loads
are per-step controls too: nodal forces ``force`` [N] on chosen vertices and surface
tractions ``traction`` [Pa] (force per unit rest area) on chosen boundary facets; the
builder's values are the controls' defaults.

Young's modulus ``E`` and Poisson's ratio ``nu`` map to Lame's parameters with
:func:`diffsim.materials.lame`; :func:`set_elasticity` and :func:`elasticity_grads` do the
same (and its chain rule) on a finalised model.
"""

import numpy as np

from ...core.builder import ModelBuilder
from ...core.model import Model
from ...materials import lame
from .mesh import Mesh, boundary_facets, check_elements

# Hyperelastic models with a stress(F, mu, lam) and a host tangent (see constitutive.py).
MATERIALS = ("stable_neo_hookean", "neo_hookean", "corotated", "linear")


class FEMBuilder(ModelBuilder):
    """Builder of FEM soft bodies.

    Args:
        dim: 3 (tetrahedra) or 2 (triangles, plane strain).
        gravity: acceleration [m/s^2] (default -9.81 along the last axis).
        material: a registered material name: ``stable_neo_hookean`` (default: defined for
            inverted elements), ``neo_hookean``, ``corotated`` or ``linear``.
    """

    kind = "fem"

    def __init__(self, dim: int = 3, gravity=None, material: str = "stable_neo_hookean"):
        super().__init__(dim, gravity)
        if material not in MATERIALS:
            raise KeyError(f"unknown material {material!r} for FEM; known: {list(MATERIALS)}")
        self.material = material
        self.vertices: list[np.ndarray] = []
        self.velocities: list[np.ndarray] = []
        self.elements: list[np.ndarray] = []
        self.mu: list[np.ndarray] = []
        self.lam: list[np.ndarray] = []
        self.density: list[np.ndarray] = []
        self.damping = (0.0, 0.0)
        self._vertex_count = 0
        self._element_count = 0
        self.fixed: dict[int, int] = {}       # vertex -> bitmask of held axes (pinned or driven)
        self.driven: dict[int, int] = {}      # vertex -> bitmask of axes that follow `target`
        self.kinematic: dict[int, int] = {}   # vertex -> index in the `target` control
        self.kinematic_vertices: list[int] = []
        self.load_vertices: list[int] = []
        self.load_values: list[np.ndarray] = []
        self.traction_facets: list[np.ndarray] = []
        self.traction_values: list[np.ndarray] = []
        self.muscles: dict[int, tuple[int, float, np.ndarray]] = {}  # element -> (actuator, sigma, a)

    # -- bodies ------------------------------------------------------------------------------
    @property
    def vertex_count(self) -> int:
        return self._vertex_count

    @property
    def element_count(self) -> int:
        return self._element_count

    def add_mesh(self, mesh: Mesh, density: float = 1000.0, youngs_modulus: float = 1e5,
                 poisson_ratio: float = 0.3, offset=None, velocity=None):
        """Add a body; returns ``(vertex indices [N_b], element indices [E_b])`` in the model.

        Args:
            mesh: a :class:`~diffsim.solvers.fem.mesh.Mesh` of this builder's dimension.
            density: [kg/m^3]. youngs_modulus: [Pa]. poisson_ratio: in (-1, 0.5).
            offset: translation of the rest shape [m]. velocity: initial velocity [m/s].
        """
        if mesh.dim != self.dim:
            raise ValueError(f"{mesh.name}: a {mesh.dim}D mesh cannot go into a {self.dim}D builder")
        if density <= 0:
            raise ValueError(f"density must be positive, got {density}")
        verts = mesh.vertices + (0.0 if offset is None else np.asarray(offset, float))
        check_elements(verts, mesh.elements, mesh.name)
        mu, lam = lame(youngs_modulus, poisson_ratio)
        n, e = mesh.vertex_count, mesh.element_count
        vel = np.zeros(self.dim) if velocity is None else np.asarray(velocity, float)
        self.vertices.append(verts)
        self.velocities.append(np.broadcast_to(vel, (n, self.dim)).copy())
        self.elements.append(mesh.elements + self._vertex_count)
        self.mu.append(np.full(e, float(mu)))
        self.lam.append(np.full(e, float(lam)))
        self.density.append(np.full(e, float(density)))
        vids = np.arange(self._vertex_count, self._vertex_count + n)
        eids = np.arange(self._element_count, self._element_count + e)
        self._vertex_count += n
        self._element_count += e
        return vids, eids

    def set_damping(self, mass: float = 0.0, stiffness: float = 0.0) -> None:
        """Rayleigh damping ``C = alpha M + beta K0`` (``K0``: rest-shape stiffness).

        Args:
            mass: alpha [1/s] (damps absolute velocity, like air drag).
            stiffness: beta [s] (damps strain rate: a Kelvin-Voigt viscous stress
                ``beta (mu (Fdot + Fdot^T) + lam tr(Fdot) I)``).
        """
        if mass < 0 or stiffness < 0:
            raise ValueError("damping coefficients must be non-negative")
        self.damping = (float(mass), float(stiffness))

    # -- boundary conditions and loads ---------------------------------------------------------
    def _axes_mask(self, axes) -> int:
        axes = range(self.dim) if axes is None else axes
        mask = 0
        for a in axes:
            if not 0 <= int(a) < self.dim:
                raise ValueError(f"axis {a} outside 0..{self.dim - 1}")
            mask |= 1 << int(a)
        return mask

    def _vertex_ids(self, vertices) -> np.ndarray:
        ids = np.atleast_1d(np.asarray(vertices, dtype=np.int64))
        if ids.size and (ids.min() < 0 or ids.max() >= self._vertex_count):
            raise ValueError(f"vertex index out of range 0..{self._vertex_count - 1}")
        return ids

    def pin(self, vertices, axes=None) -> None:
        """Hold the given axes (default: all) of these vertices at their current value."""
        mask = self._axes_mask(axes)
        for v in self._vertex_ids(vertices):
            v = int(v)
            if self.driven.get(v, 0) & mask:
                raise ValueError(f"vertex {v}: an axis in {list(axes or range(self.dim))} is already "
                                 "kinematic; it cannot also be pinned")
            self.fixed[v] = self.fixed.get(v, 0) | mask

    def add_kinematic(self, vertices, axes=None) -> np.ndarray:
        """Drive the given axes of these vertices by the per-step control ``target`` [m].

        ``target[step, b, k]`` is where kinematic vertex ``k`` is at the end of the step
        (reached linearly over the substeps); its default is the rest position. Other axes
        of the vertex stay free or pinned. Returns the indices ``k`` in ``target``.
        """
        mask = self._axes_mask(axes)
        out = []
        for v in self._vertex_ids(vertices):
            v = int(v)
            if (self.fixed.get(v, 0) & ~self.driven.get(v, 0)) & mask:
                raise ValueError(f"vertex {v}: an axis in {list(axes or range(self.dim))} is already "
                                 "pinned; it cannot also be kinematic")
            if v not in self.kinematic:
                self.kinematic[v] = len(self.kinematic_vertices)
                self.kinematic_vertices.append(v)
            self.fixed[v] = self.fixed.get(v, 0) | mask
            self.driven[v] = self.driven.get(v, 0) | mask
            out.append(self.kinematic[v])
        return np.asarray(out, dtype=np.int64)

    def add_load(self, vertices, force) -> np.ndarray:
        """Nodal forces [N] (one vector for all, or ``[n, dim]``); default of control ``force``.

        Returns the indices of these loads in ``force``.
        """
        ids = self._vertex_ids(vertices)
        f = np.broadcast_to(np.asarray(force, float), (len(ids), self.dim))
        start = len(self.load_vertices)
        self.load_vertices.extend(int(v) for v in ids)
        self.load_values.extend(f.copy())
        return np.arange(start, start + len(ids))

    def add_traction(self, facets, traction) -> np.ndarray:
        """Surface traction [Pa] on boundary facets (triangles in 3D, edges in 2D).

        The traction is a force per unit *rest* area (a nominal, dead load); each facet
        vertex receives ``traction * area / dim``. Returns the indices in control ``traction``.
        """
        facets = np.atleast_2d(np.asarray(facets, dtype=np.int64))
        if facets.shape[1] != self.dim:
            raise ValueError(f"facets must have {self.dim} vertices each, got {facets.shape}")
        self._vertex_ids(facets.ravel())
        t = np.broadcast_to(np.asarray(traction, float), (len(facets), self.dim))
        start = len(self.traction_facets)
        self.traction_facets.extend(facets)
        self.traction_values.extend(t.copy())
        return np.arange(start, start + len(facets))

    def add_muscle(self, elements, direction, stress: float, actuator: int | None = None) -> int:
        """Make elements active fibres driven by actuation channel ``actuator``.

        The active energy density is ``Psi_a = sigma u |F a|``: a tension ``sigma u`` [Pa]
        along the deformed fibre ``F a``, with ``u = act[step, b, actuator]`` the control
        (``u > 0`` contracts the fibre, ``u < 0`` extends it). The first Piola-Kirchhoff
        stress added is ``P_a = sigma u (F a) a^T / |F a|`` (a Hill-type active stress with
        constant force-length; Blemker et al. 2005 use the same fibre stress form).

        Args:
            elements: element indices. direction: fibre direction ``a`` in the rest shape
                (normalised here), one vector or ``[n, dim]``. stress: sigma [Pa].
            actuator: channel (default: a new one).
        Returns:
            The actuator channel.
        """
        ids = np.atleast_1d(np.asarray(elements, dtype=np.int64))
        if ids.size and (ids.min() < 0 or ids.max() >= self._element_count):
            raise ValueError(f"element index out of range 0..{self._element_count - 1}")
        a = np.broadcast_to(np.asarray(direction, float), (len(ids), self.dim))
        norm = np.linalg.norm(a, axis=1, keepdims=True)
        if np.any(norm == 0):
            raise ValueError("fibre direction must be non-zero")
        if actuator is None:
            actuator = self.add_actuator()
        elif not 0 <= actuator < self.actuator_count:
            raise ValueError(f"actuator {actuator} not reserved (have {self.actuator_count})")
        for e, ae in zip(ids, a / norm):
            self.muscles[int(e)] = (int(actuator), float(stress), ae)
        return actuator

    # -- finalisation ------------------------------------------------------------------------------
    def finalize(self, num_envs: int = 1) -> Model:
        """Freeze into a :class:`Model` of kind ``"fem"`` with ``num_envs`` identical environments."""
        if self._element_count == 0:
            raise ValueError("an FEM model needs at least one mesh with elements")
        B, D = num_envs, self.dim
        X = np.concatenate(self.vertices)
        elements = np.concatenate(self.elements)
        N, E = len(X), len(elements)
        orphan = np.setdiff1d(np.arange(N), elements)
        if len(orphan):
            raise ValueError(f"{len(orphan)} vertices belong to no element (e.g. {orphan[0]}): "
                             "they would have no mass")
        m = Model(self.kind, D, B)
        K, L, T = len(self.kinematic_vertices), len(self.load_vertices), len(self.traction_facets)
        m.counts.update(vertex=N, element=E, kinematic=K, load=L, traction=T)
        self._finalize_common(m)

        def per_env(values, tail=()):
            arr = np.asarray(values, float).reshape((-1,) + tail)
            return np.broadcast_to(arr, (B,) + arr.shape).copy()

        actuator = np.full(E, -1, np.int32)
        sigma = np.zeros(E)
        fiber = np.zeros((E, D))
        fiber[:, 0] = 1.0
        for e, (k, s, a) in self.muscles.items():
            actuator[e], sigma[e], fiber[e] = k, s, a
        m.add_param("element_mu", per_env(np.concatenate(self.mu)), "Pa", "Lame mu [B, E]")
        m.add_param("element_lam", per_env(np.concatenate(self.lam)), "Pa", "Lame lambda [B, E]")
        m.add_param("element_density", per_env(np.concatenate(self.density)), "kg/m^3", "[B, E]")
        m.add_param("element_active_stress", per_env(sigma), "Pa", "peak active fibre stress [B, E]")
        m.add_param("element_fiber", per_env(fiber, (D,)), "-", "rest fibre direction [B, E, dim]")
        m.add_param("damping_mass", np.full(B, self.damping[0]), "1/s", "Rayleigh alpha [B]")
        m.add_param("damping_stiffness", np.full(B, self.damping[1]), "s", "Rayleigh beta [B]")
        fixed = np.zeros(N, np.int32)
        driven = np.zeros(N, np.int32)
        kin = np.full(N, -1, np.int32)
        for v, mask in self.fixed.items():
            fixed[v] = mask
        for v, mask in self.driven.items():
            driven[v] = mask
        for v, k in self.kinematic.items():
            kin[v] = k
        m.add_topology("elements", elements.astype(np.int32))
        m.add_topology("element_actuator", actuator)
        m.add_topology("vertex_fixed", fixed)
        m.add_topology("vertex_driven", driven)
        m.add_topology("vertex_kinematic", kin)
        m.add_topology("load_vertices", np.asarray(self.load_vertices, np.int32))
        m.add_topology("traction_facets", np.asarray(self.traction_facets, np.int32).reshape(-1, D))
        m.meta.update(
            material=self.material,
            rest_positions=X,
            surface=boundary_facets(elements),
            kinematic_vertices=np.asarray(self.kinematic_vertices, np.int64),
            default_controls={
                "target": X[self.kinematic_vertices].reshape(K, D),
                "force": np.asarray(self.load_values, float).reshape(L, D),
                "traction": np.asarray(self.traction_values, float).reshape(T, D)},
            initial_state={"x": per_env(X, (D,)), "v": per_env(np.concatenate(self.velocities), (D,))})
        m.flush()  # every field declared: one SNode tree for the whole model
        return m


def set_elasticity(model: Model, youngs_modulus, poisson_ratio) -> None:
    """Set ``element_mu`` / ``element_lam`` from Young's modulus [Pa] and Poisson's ratio
    (scalars, ``[B]`` or ``[B, E]``)."""
    shape = model.param("element_mu").shape
    mu, lam = lame(_per_element(youngs_modulus, shape), _per_element(poisson_ratio, shape))
    model.set("element_mu", mu)
    model.set("element_lam", lam)


def _per_element(value, shape) -> np.ndarray:
    """Broadcast a scalar, ``[B]`` or ``[B, E]`` value to ``[B, E]``."""
    v = np.asarray(value, float)
    return np.broadcast_to(v[:, None] if v.ndim == 1 else v, shape)


def elasticity_grads(model: Model):
    """Chain rule from ``(dL/dmu, dL/dlam)`` to ``(dL/dE, dL/dnu)`` per element ``[B, E]``.

    Uses the model's current parameters: ``E = mu (3 lam + 2 mu) / (lam + mu)``,
    ``nu = lam / (2 (lam + mu))``.
    """
    mu, lam = model.get("element_mu"), model.get("element_lam")
    gmu, glam = model.param("element_mu").grad(), model.param("element_lam").grad()
    Y = mu * (3 * lam + 2 * mu) / (lam + mu)
    nu = lam / (2 * (lam + mu))
    # mu = Y / (2 (1 + nu)), lam = Y nu / ((1 + nu)(1 - 2 nu))
    dmu_dY, dmu_dnu = 1 / (2 * (1 + nu)), -Y / (2 * (1 + nu) ** 2)
    dlam_dY = nu / ((1 + nu) * (1 - 2 * nu))
    dlam_dnu = Y * (1 + 2 * nu ** 2) / ((1 + nu) ** 2 * (1 - 2 * nu) ** 2)
    return gmu * dmu_dY + glam * dlam_dY, gmu * dmu_dnu + glam * dlam_dnu
