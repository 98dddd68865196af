"""Parameter recovery and error-bar coverage on recordings made by the engine itself.

One scene holds two specimens, so one solver (one kernel compilation) serves every check:

* a strip of two braced cells hanging from a gripper that moves (its two top particles
  are *kinematic*, driven by the recorded gripper path): spring stiffness and damping;
* a block sliding on the ground from 1.5 m/s until friction stops it: the Coulomb
  coefficient.

Truth: k = 200 N/m, c = 1 N s/m, mu = 0.4. Noise: 1 mm on every
marker, 1 % of the 0.1 m cell size. The gripper path is given exactly (a robot's log);
docs/sysid.md explains why noisy *inputs* need smoothing.

Coverage: 20 independent noise draws are fitted at once (``shared=False``: draw b in
environment b, Levenberg-Marquardt with per-environment damping). For each parameter we count draws with ``|fitted - truth| < 2 std``.
If the standard deviations are right, that count is Binomial(20, 0.954): P(count <= 15)
= 0.2 %, so ``>= 16`` fails a correct method rarely. The count alone is weak against error
bars that are too small (2x too small: coverage 68 %, P(count >= 16) = 19 %), so we also
check the mean squared z-score: chi^2_20 / 20 for correct error bars (central 99.9 %
range [0.27, 2.37]; we accept [0.3, 2.3]), about 4 for error bars 2x too small, and
small for error bars several times too large.
"""

import numpy as np
import pytest

from diffsim.core.builder import MassSpringBuilder
from diffsim.solvers.mass_spring import SolverMassSpring
from diffsim.sysid import (
    Experiment,
    KinematicDriver,
    MarkerTerm,
    ParamSpec,
    SysIDProblem,
    fit,
    gauss_newton,
    map_explicit,
)
from diffsim.sysid.synthetic import noisy_recording

B, T, DT = 20, 45, 0.01
SIGMA = 1e-3
TRUTH = {"spring_stiffness": 200.0, "spring_damping": 1.0, "ground_friction": 0.4}


@pytest.fixture(scope="module")
def bench():
    b = MassSpringBuilder(dim=2, gravity=[0.0, -9.81])
    b.add_ground(height=0.0, stiffness=1000.0, damping=5.0,
                 friction=TRUTH["ground_friction"], smoothing=0.0, friction_smoothing=0.01)
    strip = b.add_grid_robot([(0, 0, 0), (0, 1, 0)], cell_size=0.1, origin=[0.0, 1.0],
                             stiffness=TRUTH["spring_stiffness"], damping=TRUTH["spring_damping"],
                             actuation=0.0, mass=0.1)
    n_strip_springs = len(b.springs)
    block = b.add_grid_robot([(0, 0, 0)], cell_size=0.1, origin=[1.0, 0.0], stiffness=500.0,
                             damping=1.0, actuation=0.0, mass=0.1)
    model = b.finalize(num_envs=B)
    solver = SolverMassSpring(model, SolverMassSpring.Config(substeps=2), window=T)
    x0 = model.initial_state()["x"][0]
    strip = np.asarray(strip)
    top = strip[np.isclose(x0[strip, 1], x0[strip, 1].max())]
    driver = KinematicDriver(solver, top)
    t = DT * np.arange(T + 1)
    kin = x0[top][None] + np.stack([0.05 * np.sin(2 * np.pi * 3.0 * t),
                                    0.03 * np.sin(2 * np.pi * 4.5 * t)], 1)[:, None, :]
    v0 = np.zeros_like(x0)
    v0[block, 0] = 1.5
    observed = np.setdiff1d(np.arange(len(x0)), top)
    mmap = map_explicit(observed, [f"p{i}" for i in observed], len(x0))
    strip_springs = (np.arange(n_strip_springs),)  # stiffness/damping free on the strip only
    specs = [ParamSpec("spring_stiffness", 50.0, 1000.0, "log", index=strip_springs),
             ParamSpec("spring_damping", 0.05, 5.0, "log", index=strip_springs),
             ParamSpec("ground_friction", 0.05, 1.5)]
    def exp(name, terms):
        return Experiment(name, {"x": x0, "v": v0}, T, terms, kinematic=kin)

    problem = SysIDProblem(solver, DT, specs, [exp(f"d{k}", []) for k in range(B)], shared=False,
                           driver=driver)
    z_true = np.tile([s.to_unit(TRUTH[s.name]) for s in specs], (B, 1))
    clean = problem.evaluate(z_true, grad=False, keep_trajectories=True).trajectories["d0"]["x"]
    rng = np.random.default_rng(2024)
    draws = [exp(f"d{k}", [MarkerTerm(noisy_recording(clean[:, observed], DT, mmap.names, SIGMA, rng,
                                                      trial=str(k)), mmap, DT, T, sigma=SIGMA)])
             for k in range(B)]
    problem.experiments = draws
    truth = np.array([TRUTH[s.name] for s in specs])
    # start from a prior guess: k = 142 N/m, c = 0.79 N s/m, mu = 0.2
    result = fit(problem, "lm", z0=np.tile([0.35, 0.6, 0.1], (B, 1)), max_iter=25, tol=1e-10,
                 progress=False)
    unc = gauss_newton(problem, result.z)
    return dict(problem=problem, result=result, unc=unc, truth=truth, clean=clean, kin=kin,
                top=top, x0=x0)


def test_kinematic_particles_follow_the_data(bench):
    x = bench["clean"]
    np.testing.assert_allclose(x[:, bench["top"]], bench["kin"], atol=1e-9)


def test_recovery_within_two_percent(bench):
    rel = np.abs(bench["result"].values / bench["truth"] - 1)
    print(f"\nLM iterations {bench['result'].iterations}, worst relative error per parameter "
          f"{np.round(rel.max(axis=0), 5)}, median relative std {np.median(bench['unc'].rel_std, axis=0)}")
    assert rel.max() < 0.02, f"largest relative error per parameter {rel.max(axis=0)}"


def test_standard_deviations_cover_the_truth(bench):
    unc, res, truth = bench["unc"], bench["result"], bench["truth"]
    assert not unc.warnings, unc.warnings
    z = (res.values - truth) / unc.std
    within = (np.abs(z) < 2).sum(axis=0)
    assert within.min() >= 16, f"draws within 2 sigma per parameter: {within} of {B}"
    msz = (z ** 2).mean(axis=0)
    print(f"\nwithin 2 sigma: {within} of {B}; mean squared z: {np.round(msz, 3)}; "
          f"estimated noise {np.median(unc.noise['markers']):.3e} m")
    assert np.all((msz > 0.3) & (msz < 2.3)), f"mean squared z-score {msz}"
    # the estimated noise level is the true one
    np.testing.assert_allclose(unc.noise["markers"], SIGMA, rtol=0.1)


def test_loss_gradient_matches_finite_differences(bench):
    """The adjoint of the whole sysid loss (Rollout backward through the kinematic driver,
    the marker map, the parameter scaling and a fitted time offset) against central
    differences, on the bench's solver (shared parameters, two experiments)."""
    from diffsim.autodiff.gradcheck import format_table, gradcheck

    base = bench["problem"]
    exps = base.experiments[:2]
    specs = base.params + [ParamSpec("time_offset", -0.02, 0.02)]
    prob = SysIDProblem(base.solver, DT, specs, exps, driver=base.driver)
    z0 = np.array([[0.4, 0.55, 0.2, 0.6]])

    def f(inp):
        loss, g = prob.loss_and_grad(inp["z"])
        return loss, {"z": g}

    rows = gradcheck(f, {"z": z0}, steps=(1e-4, 1e-5, 1e-6))
    print("\n" + format_table(rows))
    assert all(r.passed for r in rows)
