"""What the FEM integrators share: configuration, state and control layouts, rest geometry.

``SolverFEM(model, FEMConfig(integrator=...))`` builds the integrator the configuration
names (:class:`~diffsim.solvers.fem.explicit.SolverFEMExplicit` for ``"explicit"``,
:class:`~diffsim.solvers.fem.implicit.SolverFEMImplicit` for ``"implicit"`` and
``"quasi_static"``). All of them hold the state ``x`` [m] and ``v`` [m/s], ``[B, N, dim]``,
in the windowed fields of :class:`~diffsim.solvers.base.SolverBase`, and read the same
per-step controls:

* ``act`` ``[B, A]``: muscle activations (see :meth:`FEMBuilder.add_muscle`);
* ``target`` ``[B, K, dim]``: positions [m] of the kinematic vertices at the end of the step;
* ``force`` ``[B, L, dim]``: nodal forces [N];
* ``traction`` ``[B, T, dim]``: surface tractions [Pa] per boundary facet;
* explicit only, with SDF colliders: ``collider_position``, ``collider_velocity``,
  ``collider_rotation``, ``collider_angular_velocity`` (see
  :mod:`diffsim.contact.colliders`; the implicit integrators refuse such models).

Rest geometry (linear simplices): ``Dm = [X_1 - X_0, ..., X_d - X_0]`` (columns),
``F = Ds Dm^-1``, rest volume ``V = |det Dm| / d!``. The gradient operator ``Bop``
``[E, d+1, d]`` gives ``F = sum_a x_a (x) Bop_a`` and the element force on vertex ``a`` is
``-V P Bop_a`` (Sifakis and Barbic, "FEM simulation of 3D deformable solids", SIGGRAPH 2012
course notes).
"""

from dataclasses import dataclass

import numpy as np

from ..base import SolverBase

INTEGRATORS = ("explicit", "implicit", "quasi_static")
LINEAR_SOLVERS = ("auto", "direct", "cg")


@dataclass(frozen=True)
class FEMConfig:
    """Options of the FEM solvers.

    Attributes:
        integrator: ``explicit`` (symplectic Euler, Taichi kernels), ``implicit`` (backward
            Euler, Newton on the incremental potential) or ``quasi_static`` (equilibrium).
        substeps: substeps per step (explicit: for stability; implicit: each one a solve).
        newton_tol: Newton stops when the largest displacement update is below
            ``newton_tol`` times the rest mesh's bounding-box diagonal.
        newton_max_iter: Newton iterations before :class:`FEMConvergenceError`.
        linear_solver: ``direct`` (SuperLU), ``cg`` (Jacobi-preconditioned conjugate
            gradients) or ``auto`` (direct up to ``direct_max_dofs`` free DOFs, else CG).
        direct_max_dofs: the ``auto`` threshold (measured in docs/benchmarks_fem.md).
        cg_tol: relative residual of CG solves.
        project_hessian: when the exact Hessian gives no descent direction, Newton retries
            with element Hessians projected to positive semi-definite (Teran et al. 2005);
            the adjoint always uses the exact Hessian.
    """

    integrator: str = "explicit"
    substeps: int = 1
    newton_tol: float = 1e-10
    newton_max_iter: int = 50
    linear_solver: str = "auto"
    direct_max_dofs: int = 60000
    cg_tol: float = 1e-12
    project_hessian: bool = True

    def __post_init__(self):
        if self.integrator not in INTEGRATORS:
            raise ValueError(f"integrator must be one of {INTEGRATORS}, got {self.integrator!r}")
        if self.linear_solver not in LINEAR_SOLVERS:
            raise ValueError(f"linear_solver must be one of {LINEAR_SOLVERS}, got {self.linear_solver!r}")


class SolverFEM(SolverBase):
    """FEM solver; ``SolverFEM(model, config)`` returns the integrator ``config`` names.

    Args:
        model: a model from :class:`~diffsim.solvers.fem.builder.FEMBuilder`.
        config: :class:`FEMConfig` (default: explicit, one substep).
        window / memory_budget: see :class:`~diffsim.solvers.base.SolverBase`.
    """

    Config = FEMConfig

    def __new__(cls, model=None, config=None, *args, **kwargs):
        if cls is SolverFEM:
            from .explicit import SolverFEMExplicit
            from .implicit import SolverFEMImplicit

            cfg = config if config is not None else FEMConfig()
            cls = SolverFEMExplicit if cfg.integrator == "explicit" else SolverFEMImplicit
        return super().__new__(cls)

    def __init__(self, model, config=None, window=None, memory_budget=None):
        if model.kind != "fem":
            raise ValueError(f"{type(self).__name__} needs a model of kind 'fem', got {model.kind!r}")
        super().__init__(model, config, window, memory_budget)
        self._rest_geometry()
        # Every window step starts with the builder's loads and targets, so that a bare
        # solver.step() sees them (a Rollout rewrites the controls of each segment anyway).
        self.write_controls({}, 0, self.window)

    # -- layouts ------------------------------------------------------------------------------
    def state_layout(self):
        n, d = self.model.counts["vertex"], self.model.dim
        return {"x": (n, (d,)), "v": (n, (d,))}

    def control_layout(self):
        c, d = self.model.counts, self.model.dim
        return {**super().control_layout(), "target": (c["kinematic"], (d,)),
                "force": (c["load"], (d,)), "traction": (c["traction"], (d,))}

    def default_controls(self, name):
        if name == "act":
            return super().default_controls(name)
        base = self.model.meta["default_controls"][name]
        shape = self.control_shape(name)
        if base.shape[0] == 0:  # an empty control keeps its one placeholder row at zero
            return np.zeros(shape, dtype=self.dtype)
        return np.broadcast_to(base.astype(self.dtype), shape).copy()

    # -- rest geometry ---------------------------------------------------------------------------
    def _rest_geometry(self) -> None:
        m = self.model
        X = m.meta["rest_positions"]
        elems = m.topology["elements"]
        d = m.dim
        Dm = np.swapaxes(X[elems[:, 1:]] - X[elems[:, :1]], 1, 2)
        self.rest_inverse_np = np.linalg.inv(Dm)                       # [E, d, d]
        self.rest_volume_np = np.abs(np.linalg.det(Dm)) / (6.0 if d == 3 else 2.0)  # [E]
        # Bop[e, a, j] = dF_mj / dx_am (same for every m): rows of Dm^-1, and minus their sum.
        Bop = np.empty((len(elems), d + 1, d))
        Bop[:, 1:] = self.rest_inverse_np
        Bop[:, 0] = -self.rest_inverse_np.sum(axis=1)
        self.gradient_operator_np = Bop
        facets = m.topology["traction_facets"][: m.counts["traction"]]
        if d == 3:
            p = X[facets]
            self.facet_area_np = 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
        else:
            self.facet_area_np = np.linalg.norm(X[facets[:, 1]] - X[facets[:, 0]], axis=1)

    def lumped_mass_np(self, b: int = 0) -> np.ndarray:
        """Vertex masses [kg] of environment ``b`` from the current densities, ``[N]``."""
        share = self.model.get("element_density")[b] * self.rest_volume_np / (self.model.dim + 1)
        return np.bincount(self.model.topology["elements"].ravel(), np.repeat(share, self.model.dim + 1),
                           minlength=self.model.counts["vertex"])

    def fixed_mask(self) -> np.ndarray:
        """``[N, dim]`` bool: which vertex components are held (pinned or kinematic)."""
        return self._bits("vertex_fixed")

    def driven_mask(self) -> np.ndarray:
        """``[N, dim]`` bool: which vertex components follow the ``target`` control."""
        return self._bits("vertex_driven")

    def _bits(self, name: str) -> np.ndarray:
        bits = self.model.topology[name][: self.model.counts["vertex"]]
        return (bits[:, None] >> np.arange(self.model.dim)) & 1 == 1
