"""Shared contact test scenes: one "zoo" per dimension with every collider type.

Compiling a solver's forward and reverse kernels costs seconds, so the tests share one
solver per dimension: each collider sits in its own region with a two-particle "dumbbell"
(a stiff spring) that lands on it with some sliding, used by the gradient checks, and a
few free particles dropped on it, used by the penetration checks. The regions are far
enough apart that no particle touches a collider other than its own and the floor.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from diffsim.autodiff import Rollout
from diffsim.autodiff.gradcheck import format_table, gradcheck
from diffsim.contact import static_trajectory, trajectory_controls
from diffsim.core.builder import MassSpringBuilder
from diffsim.solvers import SolverMassSpring

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "contact"
DT = 1e-3
GRAD_STEPS = 60
MASS = 0.05          # kg per particle
CONTACT = dict(stiffness=2e3, damping=5.0, friction=0.4, smoothing=2e-3, friction_smoothing=0.02)
# Collider index -> (type, x of its region). The floor (a heightfield) and the wall (a
# tilted plane) are unbounded; the others sit at y = 0 above the floor at y ~ -0.4.
LAYOUT = {0: ("heightfield", 10.3), 1: ("plane", 12.9), 2: ("box", 0.0), 3: ("sphere", 2.0),
          4: ("capsule", 4.0), 5: ("cylinder", 6.0), 6: ("mesh", 8.0)}
TYPES = [LAYOUT[k][0] for k in sorted(LAYOUT)]


@dataclass
class Zoo:
    """A built zoo: model, solver, which particles belong to which collider."""

    dim: int
    model: object
    solver: object
    dumbbells: dict          # collider index -> (i, j) particle indices
    drops: dict              # collider index -> particle indices
    box_trajectory: dict = field(default_factory=dict)

    def k(self, typ: str) -> int:
        return TYPES.index(typ)


def _point(dim, x, up, y=0.0):
    p = np.zeros(dim)
    p[0], p[-1] = x, up
    if dim == 3:
        p[1] = y
    return p


def _add_colliders(b: MassSpringBuilder, dim: int) -> None:
    up = np.eye(dim)[-1]
    xs = np.linspace(-1.0, 13.0, 57)
    bumps = -0.4 + 0.05 * np.sin(2.0 * xs)
    if dim == 2:
        b.add_collider_heightfield(bumps, 0.25, position=_point(dim, 6.0, 0.0), name="floor", **CONTACT)
    else:
        ys = np.linspace(-1.0, 1.0, 9)
        b.add_collider_heightfield(bumps[:, None] + 0.03 * np.cos(3.0 * ys)[None, :], 0.25,
                                   position=_point(dim, 6.0, 0.0), name="floor", **CONTACT)
    wall = -np.eye(dim)[0] + 0.2 * up
    b.add_collider_plane(normal=wall, point=_point(dim, 13.0, 0.0), name="wall", **CONTACT)
    tilt = 0.15 if dim == 2 else [np.cos(0.075), 0.0, np.sin(0.075), 0.0]  # about y in 3D
    b.add_collider_box(np.full(dim, 0.1) + 0.2 * np.eye(dim)[0], position=_point(dim, 0.0, 0.0),
                       rotation=tilt, kinematic=True, name="pusher", **CONTACT)
    b.add_collider_sphere(0.25, position=_point(dim, 2.0, 0.0), **CONTACT)
    axis = _point(dim, 1.0, -0.2, y=0.3)
    b.add_collider_capsule(0.1, 0.25, position=_point(dim, 4.0, 0.0), axis=axis, **CONTACT)
    b.add_collider_cylinder(0.12, 0.3, position=_point(dim, 6.0, 0.0), axis=_point(dim, 1.0, 0.1), **CONTACT)
    mesh = ASSETS / ("step2d.obj" if dim == 2 else "ramp.obj")
    b.add_collider_mesh(str(mesh), position=_point(dim, 8.0, 0.0), resolution=24 if dim == 2 else 16,
                        **CONTACT)


def build_zoo(dim: int, drops_per_collider: int = 3, seed: int = 0) -> Zoo:
    """The zoo for ``dim``; the solver's window holds :data:`GRAD_STEPS` steps."""
    rng = np.random.default_rng(seed)
    b = MassSpringBuilder(dim=dim)
    _add_colliders(b, dim)
    dumbbells, drops = {}, {}
    # rough height of each collider's top (the dumbbells are then placed exactly)
    tops = {0: -0.35, 1: -0.1, 2: 0.1, 3: 0.25, 4: 0.1, 5: 0.12, 6: 0.15}
    ends = {"capsule": 0.22, "cylinder": 0.26}  # near an end, so that the length matters
    for k, (typ, x) in LAYOUT.items():
        # y = 0.03 in 3D keeps dumbbells off kinks: bilinear cell boundaries (y = 0), box edges
        base = _point(dim, x + ends.get(typ, 0.0), tops[k] + 0.05, y=0.03)
        v = _point(dim, 0.3, -0.4)
        if typ == "plane":
            base, v = _point(dim, x, -0.1, y=0.03), _point(dim, 3.0, -0.2)  # thrown at the wall
        sep = 0.06 * np.eye(dim)[0]
        i = b.add_particle(base - sep / 2, velocity=v, mass=MASS)
        j = b.add_particle(base + sep / 2, velocity=v, mass=MASS)
        b.add_spring(i, j, stiffness=500.0, damping=0.5)
        dumbbells[k] = (i, j)
        drops[k] = []
        for _ in range(drops_per_collider):
            lateral = rng.uniform(-0.15, 0.15, dim)
            lateral[-1] = 0.0
            h = rng.uniform(0.05, 0.3)
            if typ == "plane":  # thrown at the wall from its left
                p, v = _point(dim, x - 0.3, tops[k] + h) + lateral, _point(dim, 2.0, 0.0)
            else:
                p, v = _point(dim, x, tops[k] + h) + lateral, None
            drops[k].append(b.add_particle(p, velocity=v, mass=MASS))
    model = b.finalize()
    solver = SolverMassSpring(model, window=GRAD_STEPS)
    _settle_dumbbells(solver, model, dumbbells)
    return Zoo(dim, model, solver, dumbbells, drops)


def _settle_dumbbells(solver, model, dumbbells, gap: float = 0.012) -> None:
    """Lower each dumbbell (but the wall's) until it hangs ``gap`` above its collider."""
    x = model.meta["initial_state"]["x"]
    for _ in range(3):
        d = solver.colliders.query(x)[0]
        for k, (i, j) in dumbbells.items():
            if TYPES[k] != "plane":
                x[:, [i, j], -1] -= min(d[0, i, k], d[0, j, k]) - gap


def pusher_controls(zoo: Zoo, steps: int) -> dict:
    """Controls moving the kinematic box up at 0.2 m/s and turning it (2D: 0.5 rad/s)."""
    traj = static_trajectory(zoo.model, steps)
    k = zoo.k("box")
    t = DT * np.arange(steps + 1)
    traj["position"][:, 0, k, -1] += 0.2 * t
    if zoo.dim == 2:
        traj["rotation"][:, 0, k] += 0.5 * t
    else:
        half = 0.5 * (0.15 + 0.5 * t)  # about y, 0.5 rad/s
        traj["rotation"][:, 0, k] = np.stack([np.cos(half), 0 * t, np.sin(half), 0 * t], axis=1)
    return trajectory_controls(traj["position"], traj["rotation"], DT)


class Probe:
    """``loss_and_grad`` for :func:`diffsim.autodiff.gradcheck.gradcheck` on a zoo.

    The loss is a fixed random linear function of the final positions and velocities of
    the chosen particles. Groups are ``name -> (kind, array name, index)`` with ``kind``
    one of ``param`` (model parameter), ``control`` (``[T, B, K, ...]``) or ``initial``
    (initial state array); ``index`` selects the probed entries.
    """

    def __init__(self, zoo: Zoo, particles, steps: int = GRAD_STEPS, controls=None, seed: int = 1):
        self.zoo, self.steps = zoo, steps
        self.particles = list(particles)
        self.rollout = Rollout(zoo.solver, steps, DT, record=("x", "v"))
        s = zoo.solver
        self.controls = {n: np.broadcast_to(s.default_controls(n), (steps,) + s.control_shape(n)).copy()
                         for n in s.control_names if n != "act"}
        self.controls.update(controls or {})
        self.initial = zoo.model.initial_state()
        rng = np.random.default_rng(seed)
        self.weights = {n: rng.normal(size=(len(self.particles), zoo.dim)) for n in ("x", "v")}
        self.params0 = {n: zoo.model.get(n) for n in zoo.model.params}

    def reset(self) -> None:
        for n, v in self.params0.items():
            self.zoo.model.set(n, v)

    def _apply(self, groups, inputs):
        controls = {n: v.copy() for n, v in self.controls.items()}
        initial = {n: v.copy() for n, v in self.initial.items()}
        for g, (kind, name, index) in groups.items():
            if kind == "param":
                full = self.params0[name].copy()
                full[index] = inputs[g]
                self.zoo.model.set(name, full)
            elif kind == "control":
                controls[name][index] = inputs[g]
            else:
                initial[name][index] = inputs[g]
        return controls, initial

    def value(self, groups) -> dict:
        out = {}
        for g, (kind, name, index) in groups.items():
            src = self.params0 if kind == "param" else self.controls if kind == "control" else self.initial
            out[g] = np.array(src[name][index], dtype=float)
        return out

    def run(self, groups, inputs):
        """Forward only: ``(loss, recorded)``."""
        controls, initial = self._apply(groups, inputs)
        out = self.rollout.forward(initial, controls=controls)
        loss = sum(float(np.sum(self.weights[n] * out[n][-1, 0, self.particles])) for n in ("x", "v"))
        return loss, out

    def check(self, groups, label: str, required=("stiffness",)) -> list:
        """Gradcheck ``groups`` (positions stepped on the contact's length scale, 5 cm),
        restore the parameters, assert every row passes and that contact happened (the
        ``required`` groups have a non-zero gradient); returns the rows."""
        try:
            rows = gradcheck(self.loss_and_grad(groups), self.value(groups), steps=(1e-5,),
                             max_coords=3, scales={"x0": 0.05, "position": 0.05})
        finally:
            self.reset()
        table = format_table(rows)
        assert all(r.passed for r in rows), f"{label}\n{table}"
        for name in required:
            assert next(r for r in rows if r.name == name).analytic_norm > 1e-6, table
        return rows

    def loss_and_grad(self, groups):
        def fn(inputs):
            loss, out = self.run(groups, inputs)
            probe = self

            class LazyGrads(dict):
                # gradcheck reads the gradient of its first call only: run backward then
                def __missing__(self, key):
                    cot = {}
                    for n in ("x", "v"):
                        c = np.zeros_like(out[n])
                        c[-1, 0, probe.particles] = probe.weights[n]
                        cot[n] = c
                    g = probe.rollout.backward(cot)
                    for name, (kind, arr, index) in groups.items():
                        src = g.params if kind == "param" else g.controls if kind == "control" else g.initial
                        self[name] = np.array(src[arr][index], dtype=float)
                    return self[key]

            return loss, LazyGrads()
        return fn


def build_plane_lab(num_envs: int, window: int) -> tuple:
    """One particle over a ground plane (collider 0, normal up), ``num_envs`` environments.

    Collider 1 is a ceiling (normal down) parked at y = 1000 m, out of the way unless a
    test moves it. Tests vary per-environment parameters, poses (controls) and initial
    states. Returns ``(model, solver)``.
    """
    b = MassSpringBuilder(dim=2)
    contact = dict(stiffness=1e3, damping=2.0, friction=0.5, smoothing=0.0, friction_smoothing=1e-4)
    b.add_collider_plane(normal=[0.0, 1.0], point=[0.0, 0.0], name="ground", **contact)
    b.add_collider_plane(normal=[0.0, -1.0], point=[0.0, 1e3], name="ceiling", **contact)
    b.add_particle([0.0, 0.1], mass=MASS)
    model = b.finalize(num_envs=num_envs)
    return model, SolverMassSpring(model, window=window)
