"""An identification problem: experiments, free parameters, and loss with its gradient.

An :class:`Experiment` is one recorded trial made simulable: an initial state, a length,
its inputs (kinematic particles driven by data, solver controls, actuation) and its loss
terms (:mod:`.terms`). A :class:`SysIDProblem` binds experiments to one solver and a list
of :class:`~.params.ParamSpec`, and evaluates

    L(z) = sum_groups mean_{experiments e in group} sum_{terms} loss_term(e)

and ``dL/dz`` in unit coordinates. Gradients come from one
:class:`~diffsim.autodiff.Rollout` backward per batch: experiments are packed into the
solver's B environments (one kernel launch advances them all), padded to the batch's
longest experiment.

Two modes:

* ``shared=True`` (default): one parameter vector for every experiment (the usual fit
  of one specimen from several trials); ``z`` is ``[1, p]``;
* ``shared=False``: experiment b runs in environment b with its own parameters, ``z`` is
  ``[B, p]``: B independent fits in one rollout (a population, or repeated noisy draws
  for a coverage study). The loss is the sum of the independent losses, so the gradient's
  rows are the independent gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..autodiff import Rollout
from . import params as P
from .kinematic import KinematicDriver


@dataclass
class Experiment:
    """One trial to simulate and compare.

    Attributes:
        name: for reports.
        initial: ``{name: [N, ...]}`` initial state (e.g. ``x``, ``v``).
        steps: number of simulation steps T.
        terms: loss terms (:class:`~.terms.MarkerTerm`, ...).
        kinematic: ``[T + 1, K, dim]`` positions of the driven particles (mass-spring,
            with ``SysIDProblem(kinematic_particles=...)``).
        controls: ``{name: [T, count, ...]}`` solver controls (e.g. FEM ``target``).
        actions: ``[T, A]`` actuation.
        t0: data time [s] of frame 0 (plots use data time).
        meta: free-form (e.g. the trial's row range in the file).
    """

    name: str
    initial: dict
    steps: int
    terms: list
    kinematic: np.ndarray | None = None
    controls: dict | None = None
    actions: np.ndarray | None = None
    t0: float = 0.0
    meta: dict = field(default_factory=dict)


@dataclass
class Evaluation:
    """Result of :meth:`SysIDProblem.evaluate`.

    Attributes:
        loss: total loss; group_loss: ``[G]``; grad: ``[G, p]`` dL/dz (``None`` without).
        terms: ``{experiment name: [TermEval, ...]}``.
        trajectories: ``{experiment name: {state: [T + 1, N, ...]}}`` (when requested).
    """

    loss: float
    group_loss: np.ndarray
    grad: np.ndarray | None
    terms: dict
    trajectories: dict


class SysIDProblem:
    """Experiments + free parameters + a solver.

    Args:
        solver: a solver built on the model (its B is the batch size).
        dt: step [s] of every experiment.
        params: the free :class:`~.params.ParamSpec` list.
        experiments: the experiments (train, held-out: pass the ones to evaluate).
        record: state arrays the terms read (``x``, and ``v`` for force terms).
        shared: see the module docstring.
        kinematic_particles: ``[K]`` particles that experiments drive (mass-spring).
        heavy_mass: mass [kg] of the driven particles.
        driver: an existing :class:`~.kinematic.KinematicDriver` of ``solver`` instead of
            ``kinematic_particles`` (each new driver compiles its kernels once; problems
            that share a solver can share its driver).
    """

    def __init__(self, solver, dt: float, params: list, experiments: list, record=("x",),
                 shared: bool = True, kinematic_particles=None, heavy_mass: float = 1e9,
                 driver=None):
        self.solver, self.model, self.dt = solver, solver.model, float(dt)
        self.params = list(params)
        P.check_specs(self.model, self.params)
        self.experiments = list(experiments)
        if not self.experiments:
            raise ValueError("a problem needs at least one experiment")
        self.record = tuple(record)
        self.shared = bool(shared)
        self.B = self.model.num_envs
        if not self.shared and len(self.experiments) > self.B:
            raise ValueError(f"shared=False needs one environment per experiment: "
                             f"{len(self.experiments)} experiments, B = {self.B}")
        self.driver = driver
        if driver is not None and driver.solver is not solver:
            raise ValueError("the kinematic driver belongs to another solver")
        if driver is None and kinematic_particles is not None:
            self.driver = KinematicDriver(solver, kinematic_particles, heavy_mass)
        names = [e.name for e in self.experiments]
        if len(set(names)) != len(names):
            raise ValueError("experiment names must be unique")
        self._offset_index = next((j for j, s in enumerate(self.params) if s.name == P.TIME_OFFSET), None)

    # -- parameters ----------------------------------------------------------------------------
    @property
    def groups(self) -> int:
        return 1 if self.shared else self.B

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.params]

    def initial_unit(self) -> np.ndarray:
        """Start point ``[G, p]``: each spec's ``init`` or the model's value, in [0, 1]."""
        cur = P.current_values(self.model, self.params)
        z = np.empty((self.groups, len(self.params)))
        for j, s in enumerate(self.params):
            v = s.init if s.init is not None else cur[: self.groups, j]
            z[:, j] = np.clip(s.to_unit(np.clip(v, s.lower, s.upper)), 0.0, 1.0)
        return z

    def values(self, z: np.ndarray) -> np.ndarray:
        """Physical values ``[G, p]`` of unit coordinates ``z`` ``[G, p]``."""
        z = np.asarray(z, float).reshape(self.groups, len(self.params))
        return np.stack([s.from_unit(z[:, j]) for j, s in enumerate(self.params)], axis=1)

    def value_dict(self, z: np.ndarray) -> dict:
        v = self.values(z)
        return {s.label: (float(v[0, j]) if self.shared else v[:, j]) for j, s in enumerate(self.params)}

    def _env_values(self, z: np.ndarray) -> np.ndarray:
        v = self.values(z)
        return np.repeat(v, self.B, axis=0) if self.shared else v

    # -- evaluation ----------------------------------------------------------------------------
    def _batches(self, experiments):
        """``[(position of the first, experiments)]`` run together."""
        if self.shared:
            return [(i, experiments[i:i + self.B]) for i in range(0, len(experiments), self.B)]
        return [(0, experiments)]

    def _group_of(self, slot: int) -> int:
        return 0 if self.shared else slot

    def evaluate(self, z: np.ndarray, experiments: list | None = None, grad: bool = True,
                 keep_trajectories: bool = False) -> Evaluation:
        """Loss (and gradient) at unit coordinates ``z`` ``[G, p]``.

        Args:
            experiments: subset to evaluate (default: all; with ``shared=False`` the
                experiment at position b of :attr:`experiments` is always environment b).
            grad: also run the adjoint.
            keep_trajectories: return every experiment's simulated trajectory.
        """
        z = np.asarray(z, float).reshape(self.groups, len(self.params))
        exps = self.experiments if experiments is None else list(experiments)
        env_vals = self._env_values(z)
        P.apply_values(self.model, self.params, env_vals)
        offsets = env_vals[:, self._offset_index] if self._offset_index is not None else np.zeros(self.B)
        G = self.groups
        group_loss = np.zeros(G)
        gvals = np.zeros((self.B, len(self.params)))
        counts = np.zeros(G)
        for k, e in enumerate(exps):
            counts[self._group_of(self._slot(e, k))] += 1
        terms, trajs = {}, {}
        for start, batch in self._batches(exps):
            slots = [self._slot(e, start + k) for k, e in enumerate(batch)]
            out, rollout = self._forward(batch, slots)
            cot = {n: np.zeros_like(out[n]) for n in self.record}
            pgrads_direct: dict = {}
            param_cache = self._env_params(batch)
            for e, b in zip(batch, slots):
                g = self._group_of(b)
                traj = {n: out[n][: e.steps + 1, b] for n in self.record}
                evals = []
                for term in e.terms:
                    prm = {k: v[b] for k, v in param_cache.items()} if term.needs_params else None
                    ev = term.evaluate(traj, prm, float(offsets[b]), grad=grad)
                    evals.append(ev)
                    group_loss[g] += ev.loss / counts[g]
                    if grad:
                        for n, gt in ev.traj_grads.items():
                            cot[n][: e.steps + 1, b] += gt / counts[g]
                        for n, gp in ev.param_grads.items():
                            acc = pgrads_direct.setdefault(n, np.zeros((self.B,) + np.shape(gp)))
                            acc[b] += gp / counts[g]
                        if self._offset_index is not None:
                            gvals[b, self._offset_index] += ev.offset_grad / counts[g]
                terms[e.name] = evals
                if keep_trajectories:
                    trajs[e.name] = {n: v.copy() for n, v in traj.items()}
            if grad:
                rg = rollout.backward(cot)
                pg = dict(rg.params)
                for n, gp in pgrads_direct.items():
                    pg[n] = pg[n] + gp.reshape(pg[n].shape)
                gvals += P.chain_grads(self.model, self.params, env_vals, pg) * self._used(slots)[:, None]
        gz = None
        if grad:
            dz = np.stack([s.dvalue_dunit(z[:, j]) for j, s in enumerate(self.params)], axis=1)
            gv = gvals.sum(axis=0, keepdims=True) if self.shared else gvals
            gz = gv * dz
        return Evaluation(float(group_loss.sum()), group_loss, gz, terms, trajs)

    def loss_and_grad(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """``(L, dL/dz)`` over all experiments; ``z`` and the gradient are ``[G, p]``."""
        ev = self.evaluate(z)
        return ev.loss, ev.grad

    def residual_vectors(self, z: np.ndarray, experiments: list | None = None,
                         sources: bool = False):
        """Per-group residuals for least-squares methods.

        Returns:
            ``(r, w, slices, loss)``: ``r[g]`` and ``w[g]`` the whitened residuals and IRLS
            weights of group g, terms concatenated in name order; ``slices[g]`` maps each
            term name to its slice of ``r[g]``; ``loss`` the problem's loss at ``z``. With
            ``sources=True`` a fifth item: ``[G][n_g]`` the index (in ``experiments``) of
            the experiment each residual comes from (for cluster-robust covariances).
        """
        ev = self.evaluate(z, experiments, grad=False)
        exps = self.experiments if experiments is None else list(experiments)
        parts: dict = {}
        for k, e in enumerate(exps):
            g = self._group_of(self._slot(e, k))
            for term, t in zip(e.terms, ev.terms[e.name]):
                parts.setdefault(g, {}).setdefault(term.name, []).append((t.residuals, t.irls, k))
        r, w, slices, src = [], [], [], []
        for g in range(self.groups):
            rs, ws, ks, sl, at = [], [], [], {}, 0
            for name in sorted(parts.get(g, {})):
                rr = np.concatenate([a for a, _, _ in parts[g][name]])
                rs.append(rr)
                ws.append(np.concatenate([b for _, b, _ in parts[g][name]]))
                ks.append(np.concatenate([np.full(a.size, k) for a, _, k in parts[g][name]]))
                sl[name] = slice(at, at + rr.size)
                at += rr.size
            r.append(np.concatenate(rs) if rs else np.zeros(0))
            w.append(np.concatenate(ws) if ws else np.zeros(0))
            src.append(np.concatenate(ks) if ks else np.zeros(0, int))
            slices.append(sl)
        return (r, w, slices, ev.loss, src) if sources else (r, w, slices, ev.loss)

    def residuals(self, z: np.ndarray, experiments: list | None = None) -> dict:
        """Whitened residual vectors by (group, term name): ``{(g, term): (r, irls)}``."""
        ev = self.evaluate(z, experiments, grad=False)
        out: dict = {}
        exps = self.experiments if experiments is None else list(experiments)
        for k, e in enumerate(exps):
            g = self._group_of(self._slot(e, k))
            for term, t in zip(e.terms, ev.terms[e.name]):
                out.setdefault((g, term.name), []).append((t.residuals, t.irls))
        return {k: (np.concatenate([r for r, _ in v]), np.concatenate([w for _, w in v]))
                for k, v in out.items()}

    # -- internals -----------------------------------------------------------------------------
    def _slot(self, e: Experiment, position: int) -> int:
        """Environment of experiment ``e`` at ``position`` in the evaluated list."""
        if self.shared:
            return position % self.B
        try:
            return self._env_of[id(e)]
        except KeyError:
            raise ValueError(f"experiment {e.name!r} is not one of the problem's (with "
                             "shared=False each experiment owns an environment)") from None

    @property
    def experiments(self) -> list:
        """The problem's experiments (with ``shared=False``, experiment b runs in env b)."""
        return self._experiments

    @experiments.setter
    def experiments(self, value) -> None:
        self._experiments = list(value)
        self._env_of = {id(e): b for b, e in enumerate(self._experiments)}

    def _used(self, slots) -> np.ndarray:
        used = np.zeros(self.B)
        used[list(slots)] = 1.0
        return used

    def _env_params(self, batch) -> dict:
        if not any(t.needs_params for e in batch for t in e.terms):
            return {}
        return {n: self.model.get(n) for n in self.model.params}

    def _forward(self, batch, slots):
        s, B = self.solver, self.B
        T = max(e.steps for e in batch)
        fill = batch[0]
        by_slot = {b: e for e, b in zip(batch, slots)}
        envs = [by_slot.get(b, fill) for b in range(B)]
        initial = {n: np.stack([np.asarray(e.initial[n], float) for e in envs])
                   for n in fill.initial}

        def padded(arr, length):
            arr = np.asarray(arr, float)
            if len(arr) >= length:
                return arr[:length]
            return np.concatenate([arr, np.repeat(arr[-1:], length - len(arr), axis=0)])

        controls = {}
        if fill.controls:
            for n in fill.controls:
                controls[n] = np.stack([padded(e.controls[n], T) for e in envs], axis=1)
        actions = None
        if fill.actions is not None:
            actions = np.stack([padded(e.actions, T) for e in envs], axis=1)
        rollout = Rollout(s, T, self.dt, record=self.record, controller=self.driver)
        if self.driver is not None:
            if fill.kinematic is None:
                raise ValueError(f"experiment {fill.name!r} has no kinematic trajectory but the "
                                 "problem drives kinematic particles")
            pos = np.stack([padded(e.kinematic, T + 1) for e in envs], axis=1)
            self.driver.set_targets(pos, self.dt, actions)
            out = rollout.forward(initial, controls=controls or None)
        else:
            out = rollout.forward(initial, actions=actions, controls=controls or None)
        return out, rollout


class FunctionProblem:
    """A least-squares identification whose residuals come from a function, not a rollout.

    For models evaluated another way (a closed-form response, or a quasi-static solve per
    load step): ``residual_fn(values [p]) -> {term: whitened residuals [n_t]}``. The loss
    is ``sum_t 0.5 * mean(r_t^2)`` like an l2 :class:`~.terms.MarkerTerm`, its gradient
    comes from central differences (cheap for a few parameters), and :func:`~.fit.fit`
    (``lm`` best) and :func:`~.uncertainty.gauss_newton` work unchanged.

    Args:
        params: the free :class:`~.params.ParamSpec` list (their ``units`` are reported).
        residual_fn: see above.
        step: finite-difference step in unit coordinates.
    """

    shared, groups = True, 1

    def __init__(self, params: list, residual_fn, step: float = 1e-6):
        self.params, self.residual_fn, self.step = list(params), residual_fn, float(step)
        self.experiments: list = []

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.params]

    def initial_unit(self) -> np.ndarray:
        return np.array([[s.to_unit(s.init if s.init is not None else 0.5 * (s.lower + s.upper))
                          for s in self.params]])

    def values(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, float).reshape(1, len(self.params))
        return np.stack([s.from_unit(z[:, j]) for j, s in enumerate(self.params)], axis=1)

    def value_dict(self, z: np.ndarray) -> dict:
        return {s.label: float(v) for s, v in zip(self.params, self.values(z)[0])}

    def _terms(self, z) -> dict:
        return {k: np.asarray(v, float).ravel() for k, v in self.residual_fn(self.values(z)[0]).items()}

    def _loss(self, terms: dict) -> float:
        return float(sum(0.5 * np.mean(r ** 2) for r in terms.values()))

    def residual_vectors(self, z: np.ndarray, experiments=None, sources: bool = False):
        terms = self._terms(z)
        names = sorted(terms)
        r = np.concatenate([terms[n] for n in names])
        at, slices = 0, {}
        for n in names:
            slices[n] = slice(at, at + terms[n].size)
            at += terms[n].size
        out = [r], [np.ones_like(r)], [slices], self._loss(terms)
        return (*out, [np.zeros(r.size, int)]) if sources else out

    def loss_and_grad(self, z: np.ndarray):
        z = np.asarray(z, float).reshape(1, len(self.params))
        loss = self._loss(self._terms(z))
        g = np.zeros_like(z)
        for j in range(z.shape[1]):
            hi, lo = z.copy(), z.copy()
            hi[0, j], lo[0, j] = min(z[0, j] + self.step, 1.0), max(z[0, j] - self.step, 0.0)
            g[0, j] = (self._loss(self._terms(hi)) - self._loss(self._terms(lo))) / (hi[0, j] - lo[0, j])
        return loss, g
