"""Mass-spring physics against analytic references (float64, CPU)."""

import numpy as np

from diffsim.autodiff import Rollout
from diffsim.core.builder import MassSpringBuilder
from diffsim.solvers import SolverMassSpring
from tests.helpers import tiny_walker


def run(model, steps, dt, initial=None, actions=None, substeps=1, window=None):
    solver = SolverMassSpring(model, SolverMassSpring.Config(substeps=substeps), window=window or steps)
    out = Rollout(solver, steps, dt, record=("x", "v")).forward(initial or model.initial_state(), actions)
    return out["x"], out["v"]


def test_free_fall_matches_kinematics():
    # Reference: x(t) = x0 + v0 t + g t^2 / 2. Symplectic Euler gives exactly
    # x_n = x0 + v0 t + g t^2 / 2 + g t dt / 2 (its O(dt) bias), so check both.
    g = np.array([0.3, -9.81, 1.2])
    b = MassSpringBuilder(dim=3, gravity=g)
    b.add_particle([0.0, 10.0, 0.0], velocity=[1.0, 2.0, -0.5], mass=2.0)
    dt, n = 1e-3, 500
    x, _ = run(b.finalize(1), n, dt)
    t = n * dt
    x0, v0 = np.array([0.0, 10.0, 0.0]), np.array([1.0, 2.0, -0.5])
    exact = x0 + v0 * t + 0.5 * g * t * t
    np.testing.assert_allclose(x[-1, 0, 0], exact + 0.5 * g * t * dt, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(x[-1, 0, 0], exact, atol=abs(g).max() * t * dt)


def test_spring_period():
    # Two equal masses m joined by a spring k oscillate with the reduced mass m/2:
    # T = 2 pi sqrt((m/2) / k). Required within 1%.
    m, k = 0.5, 200.0
    b = MassSpringBuilder(dim=2, gravity=[0.0, 0.0])
    a = b.add_particle([0.0, 0.0], mass=m)
    c = b.add_particle([1.0, 0.0], mass=m)
    b.add_spring(a, c, stiffness=k, rest_length=0.9)
    dt, n = 1e-4, 6000
    x, _ = run(b.finalize(1), n, dt)
    stretch = np.linalg.norm(x[:, 0, 1] - x[:, 0, 0], axis=-1) - 0.9
    crossings = np.where(np.diff(np.sign(stretch)) != 0)[0]
    # linear interpolation of the zero crossings; a period spans two half-periods
    times = [(i + stretch[i] / (stretch[i] - stretch[i + 1])) * dt for i in crossings]
    period = 2 * np.mean(np.diff(times))
    expected = 2 * np.pi * np.sqrt((m / 2) / k)
    assert abs(period - expected) / expected < 0.01, (period, expected)


def lattice_energy(model, x, v):
    """Kinetic + spring potential energy per frame: sum m v^2/2 + sum k (l - L)^2 / 2."""
    m = model.get("particle_mass")[0]
    k = model.get("spring_stiffness")[0]
    L = model.get("spring_rest_length")[0]
    ij = model.topology["spring_indices"]
    kin = 0.5 * np.sum(m[None, :, None] * v[:, 0] ** 2, axis=(1, 2))
    length = np.linalg.norm(x[:, 0, ij[:, 1]] - x[:, 0, ij[:, 0]], axis=-1)
    return kin + 0.5 * np.sum(k * (length - L) ** 2, axis=1)


def test_undamped_lattice_energy_does_not_drift():
    # Symplectic Euler conserves a shadow energy: the true energy oscillates by O(dt) but
    # does not drift. Bound: over 10^4 steps the mean energy of the last 1000 steps is
    # within 0.5% of the first 1000, and no frame departs by more than 5% (the O(dt) oscillation).
    b = MassSpringBuilder(dim=2, gravity=[0.0, 0.0])
    b.add_grid_robot([(i, j, False) for i in range(3) for j in range(2)], cell_size=0.1,
                     stiffness=100.0, actuation=0.0, mass=0.05)
    model = b.finalize(1)
    init = model.initial_state()
    rng = np.random.default_rng(3)
    init["v"] = rng.normal(scale=0.2, size=init["v"].shape)
    n = 10_000
    x, v = run(model, n, 1e-3, initial=init, window=1000)
    e = lattice_energy(model, x, v)
    assert abs(e[-1000:].mean() - e[:1000].mean()) / e[0] < 0.005
    assert np.max(np.abs(e - e[0])) / e[0] < 0.05


def test_resting_block_penetration_matches_contact_stiffness():
    # At rest the ground carries the weight: k * sum(d_i) = M g, so the mean penetration of
    # the bottom particles is d = M g / (n_bottom k); the block is not rigid, so each one
    # sinks within a few percent of that mean.
    k_ground, mass, g = 5e3, 0.1, 9.81
    b = MassSpringBuilder(dim=2, gravity=[0.0, -g], drag=2.0)
    b.add_ground(height=0.0, stiffness=k_ground, damping=20.0, friction=0.5)
    b.add_grid_robot([(0, 0, False), (1, 0, False)], cell_size=0.1, origin=[0.0, 0.0],
                     stiffness=5e3, damping=2.0, actuation=0.0, mass=mass)
    model = b.finalize(1)
    x, v = run(model, 4000, 1e-3, window=500)
    n_particles = model.counts["particle"]
    bottom = np.where(model.initial_state()["x"][0, :, 1] == 0.0)[0]
    expected = n_particles * mass * g / (len(bottom) * k_ground)
    depth = -x[-1, 0, bottom, 1]
    np.testing.assert_allclose(depth.mean(), expected, rtol=1e-3)
    np.testing.assert_allclose(depth, expected, rtol=0.05)
    assert np.abs(v[-1]).max() < 1e-3


def test_batched_environments_equal_separate_runs():
    # B = 3 environments with different stiffness, gravity and actions in one launch give
    # the same trajectories as three single-environment runs.
    batched = tiny_walker(3)
    k = batched.get("spring_stiffness") * np.array([[1.0], [0.7], [1.4]])
    grav = batched.get("gravity") * np.array([[1.0], [0.5], [1.5]])
    batched.set("spring_stiffness", k)
    batched.set("gravity", grav)
    rng = np.random.default_rng(5)
    acts = rng.uniform(-1, 1, (50, 3, batched.counts["actuator"]))
    xb, _ = run(batched, 50, 5e-3, actions=acts)
    for e in range(3):
        single = tiny_walker(1)
        single.set("spring_stiffness", k[e:e + 1])
        single.set("gravity", grav[e:e + 1])
        xs, _ = run(single, 50, 5e-3, actions=acts[:, e:e + 1])
        np.testing.assert_allclose(xb[:, e], xs[:, 0], rtol=1e-12, atol=1e-12)
