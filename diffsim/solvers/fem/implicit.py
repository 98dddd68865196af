"""Implicit FEM: backward Euler and quasi-static equilibrium, with adjoint gradients.

A step solves ``r(x'; x_n, v_n, theta) = grad Phi(x') = 0`` on the free DOFs (see
:mod:`.assembly` for the incremental potential ``Phi``) by Newton's method with a
backtracking (Armijo) line search on ``Phi``; pinned components keep their value and
kinematic ones are set to their target before the solve. The velocity out is
``v' = (x' - x_n) / h`` for every vertex.

Gradients do not unroll Newton. By the implicit function theorem (adjoint method; e.g.
Geilinger et al. 2020, "ADD"), with ``H = dr/dx'`` at the solution (exact, symmetric) and
``g = dL/dx' + dL/dv' / h``::

    H_ff lambda_f = g_f                   (one linear solve; lambda = 0 on fixed DOFs)
    dL/dq        += -lambda . dr/dq       for every input q of the step

so ``dL/dx_n = (M/h^2 + (alpha M + beta K0)/h) lambda - dL/dv'/h``, ``dL/dv_n = M lambda / h``,
a fixed component's ``dL/dx'_c = g_c - (H lambda)_c`` flows to the pinned start value or
the kinematic ``target``, and the parameters and controls receive ``-lambda . dr/dq``
(element terms through ``Lambda_e``, the gradient of ``lambda`` over element ``e``).
The Hessian is assembled on the host (NumPy/SciPy); ``B`` environments are solved one
after the other.

Ground contact here is a frictionless, undamped quadratic penalty
``k/2 max(z_g - x_up, 0)^2`` (the explicit solver's penalty without damping, friction or
smoothing). The SDF colliders of :mod:`diffsim.contact` (``add_collider_*``) are not
supported here: a model with any of them is refused (:class:`SolverFEMExplicit` takes them
all, with pose controls).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spla

from ...core import frames
from . import constitutive as cm
from .assembly import Pattern, Potential, element_gradients, gradient_matrix, scatter_forces
from .solver import FEMConfig, SolverFEM

_PARAMS = ("element_mu", "element_lam", "element_density", "element_active_stress", "element_fiber",
           "damping_mass", "damping_stiffness", "gravity", "ground_height", "ground_stiffness")


class FEMConvergenceError(RuntimeError):
    """Newton did not converge. Attributes: ``iterations``, ``update`` (last |dx|_inf [m])."""

    def __init__(self, iterations: int, update: float, detail: str = ""):
        self.iterations, self.update = iterations, update
        super().__init__(f"FEM Newton solve did not converge in {iterations} iterations (last update "
                         f"{update:.3e} m){detail}; try a smaller dt, more substeps, smaller load "
                         "increments, or a larger newton_max_iter")


class SolverFEMImplicit(SolverFEM):
    """Backward Euler (``integrator='implicit'``) or quasi-static (``'quasi_static'``) FEM.

    State ``x`` [m], ``v`` [m/s], ``[B, N, dim]`` (quasi-static: ``v`` is the rate
    ``(x' - x_n) / dt`` and does not feed back).
    """

    @dataclass(frozen=True)
    class Config(FEMConfig):
        integrator: str = "implicit"

    def __init__(self, model, config=None, window=None, memory_budget=None):
        if config is not None and config.integrator == "explicit":
            raise ValueError("SolverFEMImplicit needs integrator='implicit' or 'quasi_static'")
        if model.counts.get("collider", 0):
            types = sorted({d["type"] for d in model.meta["colliders"]})
            raise ValueError(f"the {(config or self.Config()).integrator} FEM integrator supports "
                             f"ground contact only (add_ground), and the model has colliders of type "
                             f"{types}; use integrator='explicit', which supports every collider type")
        super().__init__(model, config, window, memory_budget)
        self.quasi_static = self.config.integrator == "quasi_static"
        self.free = ~self.fixed_mask().ravel()
        self.driven = self.driven_mask()
        elements = model.topology["elements"]
        self.geo = {"elements": elements, "volume": self.rest_volume_np,
                    "G": gradient_matrix(self.gradient_operator_np),
                    "material": model.meta["material"],
                    "pattern": Pattern(elements, model.counts["vertex"], model.dim, self.free)}
        X = model.meta["rest_positions"]
        self.length_scale = float(np.linalg.norm(np.ptp(X, axis=0)))
        self.stats = {"newton_iterations": [], "line_search_halvings": 0, "projected_steps": 0}

    # -- inputs of a step -------------------------------------------------------------------------
    def _inputs(self, act_step: int):
        """Parameters ``{name: [B, ...]}`` and this step's controls ``{name: [B, count, ...]}``."""
        params = {n: self.model.get(n) for n in _PARAMS}
        ctrl = {n: frames.read_slot(f, act_step, np.float64) for n, f in self.control_fields.items()}
        return params, ctrl

    def _env(self, b: int, params: dict, ctrl: dict) -> dict:
        """The per-environment arrays :class:`Potential` reads."""
        m, c, d = self.model, self.model.counts, self.model.dim
        N = c["vertex"]
        mass = self.lumped_mass_np(b)
        act_id = m.topology["element_actuator"]
        u = np.where(act_id >= 0, ctrl["act"][b][np.maximum(act_id, 0)], 0.0) if c["actuator"] else 0.0
        f_ext = mass[:, None] * params["gravity"][b]
        if c["load"]:
            np.add.at(f_ext, m.topology["load_vertices"], ctrl["force"][b])
        if c["traction"]:
            share = ctrl["traction"][b] * (self.facet_area_np / d)[:, None]
            for k in range(d):
                np.add.at(f_ext, m.topology["traction_facets"][:, k], share)
        ground = None
        if m.meta["has_ground"]:
            ground = (float(params["ground_height"][b]), float(params["ground_stiffness"][b]))
        return {"mu": params["element_mu"][b], "lam": params["element_lam"][b],
                "s": params["element_active_stress"][b] * u, "u": u, "fiber": params["element_fiber"][b],
                "mass": mass, "alpha": float(params["damping_mass"][b]),
                "beta": float(params["damping_stiffness"][b]), "f_ext": f_ext, "ground": ground,
                "vertices": N}

    def _fixed_values(self, b: int, x_n: np.ndarray, ctrl: dict, remaining: int) -> np.ndarray:
        """Start positions with driven components moved a ``1/remaining`` of the way to target."""
        x = x_n.copy()
        kin = self.model.topology["vertex_kinematic"][: self.model.counts["vertex"]]
        rows = np.flatnonzero(kin >= 0)
        if len(rows):
            step = (ctrl["target"][b][kin[rows]] - x_n[rows]) / remaining
            x[rows] += np.where(self.driven[rows], step, 0.0)
        return x

    # -- linear algebra ------------------------------------------------------------------------------
    def _solve(self, A, rhs: np.ndarray) -> np.ndarray:
        method = self.config.linear_solver
        if method == "auto":
            method = "direct" if A.shape[0] <= self.config.direct_max_dofs else "cg"
        if method == "cg":
            diag = A.diagonal()
            if np.all(diag > 0):
                M = spla.LinearOperator(A.shape, matvec=lambda r: r / diag)
                sol, info = spla.cg(A, rhs, rtol=self.config.cg_tol, atol=0.0, M=M, maxiter=20 * A.shape[0])
                if info == 0:
                    return sol
        try:
            return spla.splu(A.tocsc(), permc_spec="MMD_AT_PLUS_A").solve(rhs)
        except RuntimeError as err:  # singular: no constraint removes the rigid motions
            raise FEMConvergenceError(0, np.inf, f" (singular system: {err}; pin or drive vertices, "
                                      "or add ground contact, to remove rigid motions)") from None

    # -- forward ----------------------------------------------------------------------------------------
    def step(self, state_in, state_out, control, dt):
        """Advance one step: ``substeps`` Newton solves on the host (never writes ``state_in``)."""
        self._check_step(state_in, state_out, control)
        h = dt / self.substeps
        s0 = state_in.frame * self.substeps
        params, ctrl = self._inputs(control.step)  # read once per step: launches are costly
        envs = [self._env(b, params, ctrl) for b in range(self.model.num_envs)]
        x = frames.read_slot(self.x, s0, np.float64)
        v = frames.read_slot(self.v, s0, np.float64)
        for k in range(self.substeps):
            x1 = np.empty_like(x)
            for b, env in enumerate(envs):
                pot = Potential(self.geo, env, x[b], v[b], None if self.quasi_static else h)
                guess = self._fixed_values(b, x[b], ctrl, self.substeps - k)
                if not self.quasi_static:
                    guess = np.where(self.free.reshape(guess.shape), x[b] + h * v[b], guess)
                x1[b] = self._newton(pot, guess)
            x, v = x1, (x1 - x) / h
            frames.write_slot(self.x, s0 + k + 1, x, self.dtype)
            frames.write_slot(self.v, s0 + k + 1, v, self.dtype)

    def _newton(self, pot: Potential, x: np.ndarray) -> np.ndarray:
        """Minimise ``pot`` over the free DOFs from ``x`` (fixed DOFs already set)."""
        free, pattern, cfg = self.free, self.geo["pattern"], self.config
        tol = cfg.newton_tol * self.length_scale
        phi = pot.energy(x)
        if not np.isfinite(phi):
            raise FEMConvergenceError(0, np.inf, " (the initial guess has inverted elements)")
        update, r0 = np.inf, None
        for it in range(1, cfg.newton_max_iter + 1):
            r = pot.gradient(x).ravel()[free]
            rnorm = float(np.max(np.abs(r))) if r.size else 0.0
            if r0 is None:
                r0 = rnorm
            elif rnorm <= 1e-9 * r0:  # residual at solver round-off (one step solves a quadratic Phi)
                self.stats["newton_iterations"].append(it - 1)
                return x
            H = pattern.free_block(pot.hessian_data(x))
            dx = self._solve(H, -r)
            slope = float(r @ dx)
            if not slope < 0 and cfg.project_hessian:  # indefinite: PSD-projected element Hessians
                H = pattern.free_block(pot.hessian_data(x, project=True))
                dx = self._solve(H, -r)
                slope = float(r @ dx)
                self.stats["projected_steps"] += 1
            if not slope < 0:  # still no descent direction: scaled steepest descent
                dx = -r / np.maximum(np.abs(H.diagonal()), 1e-300)
                slope = float(r @ dx)
            update = float(np.max(np.abs(dx))) if dx.size else 0.0
            flat = x.ravel().copy()
            if update <= tol:  # converged: take the (tiny) Newton step without a line search
                flat[free] += dx
                self.stats["newton_iterations"].append(it)
                return flat.reshape(x.shape)
            t = 1.0
            slack = 1e-12 * abs(phi)  # round-off floor of Phi near the minimum
            while True:
                trial = flat.copy()
                trial[free] += t * dx
                phi_t = pot.energy(trial.reshape(x.shape))
                if phi_t <= phi + 1e-4 * t * slope + slack or t < 1e-12:
                    break
                t *= 0.5
                self.stats["line_search_halvings"] += 1
            if not np.isfinite(phi_t):
                raise FEMConvergenceError(it, update, " (line search found no valid configuration)")
            x, phi = trial.reshape(x.shape), phi_t
        raise FEMConvergenceError(cfg.newton_max_iter, update)

    # -- adjoint -----------------------------------------------------------------------------------------
    def step_grad(self, state_in, state_out, control, dt):
        """Adjoint of :meth:`step`: one linear solve per substep, last substep first."""
        self._check_step(state_in, state_out, control)
        m = self.model
        h = dt / self.substeps
        s0 = state_in.frame * self.substeps
        params, ctrl = self._inputs(control.step)
        envs = [self._env(b, params, ctrl) for b in range(m.num_envs)]
        pgrad = {n: np.zeros_like(v) for n, v in params.items()}
        cgrad = {n: np.zeros_like(v) for n, v in ctrl.items()}
        S = self.substeps
        xs = [frames.read_slot(self.x, s0 + k, np.float64) for k in range(S + 1)]
        vs = [frames.read_slot(self.v, s0 + k, np.float64) for k in range(S)]
        gx = frames.read_slot(self.x.grad, s0 + S, np.float64)
        gv = frames.read_slot(self.v.grad, s0 + S, np.float64)
        for k in reversed(range(S)):
            gx, gv = self._substep_adjoint(xs[k], vs[k], xs[k + 1], gx, gv, h, S - k, envs, params,
                                           ctrl, pgrad, cgrad)
        gx += frames.read_slot(self.x.grad, s0, np.float64)
        gv += frames.read_slot(self.v.grad, s0, np.float64)
        frames.write_slot(self.x.grad, s0, gx, self.dtype)
        frames.write_slot(self.v.grad, s0, gv, self.dtype)
        for name, g in pgrad.items():
            p = m.param(name)
            p.field.grad.from_numpy((p.grad() + g).astype(self.dtype))
        for name, g in cgrad.items():
            f = self.control_fields[name].grad
            frames.write_slot(f, control.step, frames.read_slot(f, control.step, np.float64) + g, self.dtype)

    def _substep_adjoint(self, x_n, v_n, x1, gx1, gv1, dt, remaining, envs, params, ctrl, pgrad, cgrad):
        """Pull ``(dL/dx', dL/dv')`` of one substep back; returns ``(dL/dx_n, dL/dv_n)`` and
        accumulates parameter and control gradients into ``pgrad`` / ``cgrad``."""
        m, c = self.model, self.model.counts
        fixed = ~self.free.reshape(x_n.shape[1:])
        kin = m.topology["vertex_kinematic"][: c["vertex"]]
        rows = np.flatnonzero(kin >= 0)
        h = None if self.quasi_static else dt
        gx_n = -gv1 / dt
        gv_n = np.zeros_like(gv1)
        for b, env in enumerate(envs):
            pot = Potential(self.geo, env, x_n[b], v_n[b], h)
            data = pot.hessian_data(x1[b])  # exact Hessian at the solution (never projected)
            H = self.geo["pattern"].full(data)
            g = gx1[b] + gv1[b] / dt
            lam = np.zeros(g.size)
            lam[self.free] = self._solve(self.geo["pattern"].free_block(data), g.ravel()[self.free])
            # fixed components of x': explicit cotangent minus what the free equations absorb
            g_fixed = np.where(fixed, g - (H @ lam).reshape(g.shape), 0.0)
            lam = lam.reshape(g.shape)
            to_target = np.where(self.driven, g_fixed / remaining, 0.0)
            gx_n[b] += g_fixed - to_target
            if len(rows):
                np.add.at(cgrad["target"][b], kin[rows], to_target[rows])
            self._param_grads(b, env, x_n[b], v_n[b], x1[b], lam, params, pgrad, cgrad, h)
            if h is not None:
                D_lam = env["mass"][:, None] * (1.0 / (h * h) + env["alpha"] / h) * lam
                if env["beta"]:
                    D_lam += env["beta"] / h * self._rest_stiffness_times(lam, env)
                gx_n[b] += D_lam
                gv_n[b] += env["mass"][:, None] * lam / h
        return gx_n, gv_n

    def _rest_stiffness_times(self, u: np.ndarray, env: dict) -> np.ndarray:
        """``K0 u`` with ``K0`` the rest (small-strain) stiffness, ``[N, d]``."""
        geo = self.geo
        G = element_gradients(u, geo["elements"], geo["G"])
        return scatter_forces(cm.linear_stress(G, env["mu"], env["lam"]), geo["volume"], geo["elements"],
                              geo["G"], len(u))

    def _param_grads(self, b, env, x_n, v_n, x1, lam, params, pgrad, cgrad, h):
        """Accumulate ``-lambda . dr/dq`` into parameter and control gradients of env ``b``."""
        m, c, geo = self.model, self.model.counts, self.geo
        d, elements, V = m.dim, geo["elements"], geo["volume"]
        F = element_gradients(x1, elements, geo["G"])
        Lam = element_gradients(lam, elements, geo["G"])
        dmu, dlam = cm.param_derivatives(geo["material"], F, env["mu"], env["lam"])
        g_mu = -V * np.sum(dmu * Lam, axis=(1, 2))
        g_lam = -V * np.sum(dlam * Lam, axis=(1, 2))
        if h is not None:
            # d/dbeta exists at beta = 0 too (a scene without stiffness damping can fit one)
            G = element_gradients(x1 - x_n, elements, geo["G"])
            pgrad["damping_stiffness"][b] -= np.dot(V, np.sum(cm.linear_stress(G, env["mu"], env["lam"]) * Lam,
                                                             axis=(1, 2))) / h
            if env["beta"]:
                tr_G, tr_L = np.trace(G, axis1=1, axis2=2), np.trace(Lam, axis1=1, axis2=2)
                g_mu -= env["beta"] / h * V * np.sum((G + np.swapaxes(G, 1, 2)) * Lam, axis=(1, 2))
                g_lam -= env["beta"] / h * V * tr_G * tr_L
        pgrad["element_mu"][b] += g_mu
        pgrad["element_lam"][b] += g_lam
        d_s, d_a = cm.fiber_derivatives(F, env["fiber"], env["s"], Lam)
        pgrad["element_active_stress"][b] -= V * env["u"] * d_s
        pgrad["element_fiber"][b] -= V[:, None] * d_a
        if c["actuator"]:
            act_id = m.topology["element_actuator"]
            on = act_id >= 0
            sigma = params["element_active_stress"][b]
            np.add.at(cgrad["act"][b], act_id[on], -(V * sigma * d_s)[on])
        # masses enter through inertia, mass damping and gravity
        mass = env["mass"]
        dr_dm = -params["gravity"][b][None, :] * np.ones_like(x1)
        if h is not None:
            dr_dm = dr_dm + (x1 - x_n - h * v_n) / (h * h) + env["alpha"] * (x1 - x_n) / h
            pgrad["damping_mass"][b] -= np.sum(mass[:, None] * (x1 - x_n) * lam) / h
        g_mass = -np.sum(lam * dr_dm, axis=1)
        pgrad["element_density"][b] += V / (d + 1) * g_mass[elements].sum(axis=1)
        pgrad["gravity"][b] += mass @ lam
        if c["load"]:
            cgrad["force"][b] += lam[m.topology["load_vertices"]]
        if c["traction"]:
            facets = m.topology["traction_facets"]
            cgrad["traction"][b] += (self.facet_area_np / d)[:, None] * lam[facets].sum(axis=1)
        if env["ground"] is not None:
            height, k = env["ground"]
            depth = height - x1[:, -1]
            on = depth > 0
            pgrad["ground_stiffness"][b] += np.sum(lam[on, -1] * depth[on])
            pgrad["ground_height"][b] += k * np.sum(lam[on, -1])

    # -- host queries -----------------------------------------------------------------------------------
    def reaction_forces(self, frame: int) -> np.ndarray:
        """Static reaction on the fixed components at ``frame``, ``[B, N, d]`` [N].

        ``R = grad(sum_e V_e (Psi + Psi_active)) - f_ext`` (with the controls of step
        ``frame - 1``), zero on free components: the force the supports exert on the body
        in equilibrium (quasi-static; for dynamic steps it omits inertia and damping).
        """
        x = frames.read_slot(self.x, frame * self.substeps, np.float64)
        params, ctrl = self._inputs(max(frame - 1, 0))
        fixed = ~self.free.reshape(x.shape[1:])
        out = np.zeros_like(x)
        for b in range(self.model.num_envs):
            pot = Potential(self.geo, self._env(b, params, ctrl), x[b], x[b], None)
            out[b] = np.where(fixed, pot.gradient(x[b]), 0.0)
        return out


    def stiffness_matrix(self, frame: int = 0, env: int = 0, free_only: bool = True):
        """Tangent stiffness ``d^2/dx^2 (sum_e V_e (Psi + Psi_active)) + ground`` at ``frame``.

        Returns a SciPy CSR matrix over vertex-major DOFs ``i * dim + m`` (``free_only``:
        the free DOFs only, ``solver.free`` selects them). With :meth:`lumped_mass_np` it
        gives the modes: ``K phi = omega^2 M phi``.
        """
        x = frames.read_slot(self.x, frame * self.substeps, np.float64)[env]
        params, ctrl = self._inputs(max(frame - 1, 0))
        data = Potential(self.geo, self._env(env, params, ctrl), x, x, None).hessian_data(x)
        pattern = self.geo["pattern"]
        return pattern.free_block(data) if free_only else pattern.full(data)


class SolverFEMQuasiStatic(SolverFEMImplicit):
    """Quasi-static equilibrium per step: :class:`SolverFEMImplicit` with ``integrator='quasi_static'``."""

    @dataclass(frozen=True)
    class Config(FEMConfig):
        integrator: str = "quasi_static"
