"""Small scenes for the torch bridge tests, and helpers that build the ops for any solver.

A :class:`Scene` names a model, its solver class and the parameters the tests differentiate.
MPM and FEM scenes join the parametrisation by adding a builder to ``SCENES``: the helpers
below use only the :class:`~diffsim.solvers.SolverBase` contract (state names from
``solver.state_names``, actuation ``act``), so every test then runs on them too.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from diffsim import torch_bridge as tb
from diffsim.core.builder import MassSpringBuilder
from diffsim.solvers import SolverMassSpring
from diffsim.solvers.fem import FEMBuilder, FEMConfig, SolverFEM, mesh
from diffsim.solvers.mpm import MPMBuilder, SolverMPM


@dataclass
class Scene:
    """A model, how to make its solver, and what to differentiate.

    Attributes:
        name: test id. model: the Model (B environments). solver_cls: its solver class.
        dt: step [s]. steps: rollout length T. params: names of the parameters checked.
        config: solver Config (``None``: defaults).
    """

    name: str
    model: object
    solver_cls: type
    dt: float
    steps: int
    params: tuple
    config: object = None
    _solvers: dict = field(default_factory=dict)

    def solver(self, window: int):
        """A solver of this window, built once per scene (kernels compile per instance)."""
        if window not in self._solvers:
            self._solvers[window] = self.solver_cls(self.model, self.config, window=window)
        return self._solvers[window]

    @property
    def state_names(self) -> tuple:
        return self.solver(1).state_names

    @property
    def action_count(self) -> int:
        return self.model.counts.get("actuator", 0)

    def initial(self, requires_grad=False, dtype=torch.float64) -> dict:
        return {n: torch.tensor(v, dtype=dtype, requires_grad=requires_grad)
                for n, v in self.model.initial_state().items()}

    def param_values(self, requires_grad=False, dtype=torch.float64) -> dict:
        return {n: torch.tensor(self.model.get(n), dtype=dtype, requires_grad=requires_grad)
                for n in self.params}

    def actions(self, seed=0, requires_grad=False, dtype=torch.float64) -> torch.Tensor:
        rng = np.random.default_rng(seed)
        a = 0.5 * rng.standard_normal((self.steps, self.model.num_envs, self.action_count))
        return torch.tensor(a, dtype=dtype, requires_grad=requires_grad)

    def inputs(self) -> tuple:
        """``(*initial states, actions, *params)``, float64, all requiring grad."""
        init = self.initial(True)
        return (*(init[n] for n in self.state_names), self.actions(requires_grad=True),
                *self.param_values(True).values())

    def obs_dim(self) -> int:
        return sum(int(np.prod(v.shape[1:])) for v in self.model.initial_state().values())


def chain(num_envs: int = 2) -> Scene:
    """Three particles, two damped springs (one actuated), gravity, drag; no contact.

    Environments differ in stiffness and damping so per-environment mistakes show up.
    """
    b = MassSpringBuilder(dim=2, gravity=[0.0, -9.81], drag=0.3)
    for k, p in enumerate(([0.0, 1.0], [0.12, 0.95], [0.25, 1.02])):
        b.add_particle(p, velocity=[0.1 * k, -0.2], mass=1.0 + 0.5 * k)
    b.add_spring(0, 1, stiffness=60.0, damping=0.4, rest_length=0.1)
    b.add_spring(1, 2, stiffness=40.0, damping=0.2, rest_length=0.14, actuation=0.2)
    m = b.finalize(num_envs)
    m.set("spring_stiffness", np.array([[60.0, 40.0], [75.0, 30.0]])[:num_envs])
    m.set("spring_damping", np.array([[0.4, 0.2], [0.3, 0.5]])[:num_envs])
    return Scene("chain", m, SolverMassSpring, dt=0.01, steps=6,
                 params=("spring_stiffness", "spring_damping", "spring_rest_length", "drag"))


def cell_on_ground(num_envs: int = 2) -> Scene:
    """One actuated grid cell on smoothed penalty ground with friction, already in contact."""
    b = MassSpringBuilder(dim=2, gravity=[0.0, -4.8], drag=1.0)
    b.add_grid_robot([(0, 0, 1)], cell_size=0.1, origin=[0.0, 0.002], stiffness=300.0,
                     damping=1.0, actuation=0.15, mass=0.5)
    b.add_ground(height=0.0, stiffness=500.0, damping=5.0, friction=0.8, smoothing=5e-3,
                 friction_smoothing=0.05)
    m = b.finalize(num_envs)
    x0 = m.initial_state()["x"]
    x0[..., 0] += 0.01 * np.arange(num_envs)[:, None]
    m.meta["initial_state"]["x"] = x0
    m.set("ground_friction", np.linspace(0.6, 1.0, num_envs))
    return Scene("cell_on_ground", m, SolverMassSpring, dt=0.005, steps=5,
                 params=("spring_stiffness", "ground_friction", "ground_stiffness", "gravity"))


def mpm_muscle(num_envs: int = 2) -> Scene:
    """2D MPM: a small actuated corotated block falling onto the ground, 16^2 grid."""
    b = MPMBuilder(dim=2, particle_spacing=1 / 32, seed=3)
    b.add_ground(height=0.25, friction=0.4)
    act = b.add_actuator_group(direction=[0.3, 1.0], strength=2e3)
    b.add_box([0.40, 0.27], [0.07, 0.07], material="corotated", youngs_modulus=1e4, density=1000,
              velocity=[0.3, -0.6], actuator=act, jitter=0.3)
    m = b.finalize(num_envs)
    m.set("youngs_modulus", m.get("youngs_modulus") * np.linspace(1.0, 1.3, num_envs)[:, None])
    return Scene("mpm_muscle", m, SolverMPM, dt=2e-3, steps=4,
                 params=("youngs_modulus", "particle_mass", "actuator_strength"),
                 config=SolverMPM.Config(grid_res=16, substeps=2))


def fem_muscle(num_envs: int = 2, integrator: str = "explicit") -> Scene:
    """3D FEM: one cube cell (6 tetrahedra), a corner pinned, half of it a muscle, on the ground."""
    b = FEMBuilder(3, material="stable_neo_hookean")
    cube = mesh.box((1, 1, 1), (0.1, 0.1, 0.1))
    _, elements = b.add_mesh(cube, density=500.0, youngs_modulus=2e4, poisson_ratio=0.3,
                             offset=[0.0, 0.0, 0.01], velocity=[0.05, 0.0, -0.1])
    b.pin(int(np.argmin(np.linalg.norm(cube.vertices, axis=1))))
    b.add_muscle(elements[:3], [1.0, 0.3, 0.2], 2e3)
    b.set_damping(mass=0.5, stiffness=2e-3)
    b.add_ground(height=0.012, stiffness=2e3, damping=5.0, friction=0.4, smoothing=1e-3,
                 friction_smoothing=0.05)
    m = b.finalize(num_envs)
    m.set("element_mu", m.get("element_mu") * np.linspace(1.0, 1.2, num_envs)[:, None])
    steps, dt = (4, 2e-3) if integrator == "explicit" else (2, 1e-2)
    return Scene(f"fem_{integrator}", m, SolverFEM, dt=dt, steps=steps,
                 params=("element_mu", "element_density", "damping_mass"),
                 config=FEMConfig(integrator=integrator, substeps=2))


SCENES = {"chain": chain, "cell_on_ground": cell_on_ground, "mpm_muscle": mpm_muscle,
          "fem_explicit": fem_muscle, "fem_implicit": lambda: fem_muscle(integrator="implicit")}
_cache: dict = {}


def get_scene(name: str) -> Scene:
    """The scene ``name``, built once per test session (its solvers compile once)."""
    if name not in _cache:
        _cache[name] = SCENES[name]()
    return _cache[name]


def rollout_fn(scene: Scene, window: int = 2, record=None, frames=None, segment=None):
    """``f(*initial states, actions, *params) -> recorded tensors`` through a
    :class:`RolloutOp`, the form ``torch.autograd.gradcheck`` takes. A window (or segment)
    shorter than the rollout exercises checkpoint recomputation."""
    names = scene.state_names
    record = tuple(record or names)
    op = tb.RolloutOp(scene.solver(window), scene.steps, scene.dt, record=record, frames=frames,
                      segment=segment)

    def f(*args):
        n = len(names)
        out = op(initial=dict(zip(names, args[:n])), actions=args[n],
                 params=dict(zip(scene.params, args[n + 1:])))
        return tuple(out[r] for r in record)
    return f


def step_fn(scene: Scene):
    """``f(*states, action [B, A], *params) -> next states`` through a :class:`StepOp`."""
    names = scene.state_names
    op = tb.StepOp(scene.solver(1), scene.dt)

    def f(*args):
        n = len(names)
        out = op(dict(zip(names, args[:n])), args[n], dict(zip(scene.params, args[n + 1:])))
        return tuple(out[r] for r in names)
    return f


class LinearTanh(torch.nn.Module):
    """A one-layer controller ``tanh(W o + b)``, small enough for gradcheck."""

    def __init__(self, obs_dim: int, act_dim: int, seed: int = 0, dtype=torch.float64):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(0.3 * torch.randn(act_dim, obs_dim, generator=g, dtype=dtype))
        self.bias = torch.nn.Parameter(0.1 * torch.randn(act_dim, generator=g, dtype=dtype))

    def forward(self, o):
        return torch.tanh(o @ self.weight.T + self.bias)


def closed_loop_fn(scene: Scene, checkpoint=None, steps=None):
    """``f(*initial states, weight, bias, *params) -> (*states [T+1, ...], act)`` of a
    :class:`ClosedLoop` whose controller is :class:`LinearTanh` with the weights given
    (``torch.func.functional_call``), and the module itself."""
    names = scene.state_names
    module = LinearTanh(scene.obs_dim(), scene.action_count)

    def f(*args):
        n = len(names)
        weight, bias = args[n], args[n + 1]

        def controller(o):
            return torch.func.functional_call(module, {"weight": weight, "bias": bias}, (o,))
        loop = tb.ClosedLoop(scene.solver(1), scene.dt, controller, record=names,
                             checkpoint=checkpoint)
        out = loop(steps or scene.steps, dict(zip(names, args[:n])),
                   dict(zip(scene.params, args[n + 2:])))
        return (*(out[r] for r in names), out["act"])
    return f, module
