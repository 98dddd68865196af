"""Resampling, marker maps, penalties, Chamfer and force observables (NumPy only)."""

import numpy as np
import pytest

from diffsim.sysid import DataError, Penalty, Recording, chamfer, resample
from diffsim.sysid.align import map_explicit, map_nearest_particle, map_nearest_surface, smooth
from diffsim.sysid.params import ParamSpec
from diffsim.sysid.problem import FunctionProblem
from diffsim.sysid.rigid import kabsch, quat_to_matrix, rigid_particles, rotation_angle


def _rec(t, values, mask=None):
    values = np.asarray(values, float)
    return Recording("markers", np.asarray(t, float), values, [f"m{i}" for i in range(values.shape[1])],
                     np.ones(values.shape[:2], bool) if mask is None else mask, "mem.csv")


def test_resample_linear_irregular_offset_and_mask():
    t = np.array([0.0, 0.03, 0.1, 0.22, 0.3])
    vals = np.stack([2.0 * t, -t], 1)[:, None, :]      # linear motion: exact interpolation
    r = resample(_rec(t, vals), dt=0.05, steps=6)
    assert r.frames.tolist() == [0, 1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(r.values[:, 0, 0], 2.0 * 0.05 * r.frames)
    np.testing.assert_allclose(r.slope[:, 0], np.tile([2.0, -1.0], (7, 1)))
    r = resample(_rec(t, vals), dt=0.05, steps=6, offset=0.02)   # frames past the end are dropped
    assert r.frames.tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(r.values[:, 0, 0], 2.0 * (0.05 * r.frames + 0.02))
    mask = np.ones((5, 1), bool)
    mask[2] = False                                       # a missing sample masks its neighbours
    r = resample(_rec(t, vals, mask), dt=0.05, steps=6)
    assert r.frames.tolist() == [0, 5, 6] and r.mask.all()  # 0.05..0.2 need sample 2


def test_resample_cubic_is_accurate_for_fast_motion():
    t = np.sort(np.r_[0.0, np.random.default_rng(0).uniform(0, 1, 60), 1.0])
    def f(s):
        return np.sin(9 * s)

    vals = np.stack([f(t), f(t)], 1)[:, None, :]
    lin = resample(_rec(t, vals), 0.01, 100)
    cub = resample(_rec(t, vals), 0.01, 100, method="cubic")
    exact = f(0.01 * lin.frames)
    err_lin = np.abs(lin.values[:, 0, 0] - exact).max()
    err_cub = np.abs(cub.values[:, 0, 0] - exact).max()
    assert err_cub < err_lin / 10


def test_smoothing_spline_discrepancy():
    t = np.linspace(0, 1, 101)
    rng = np.random.default_rng(1)
    clean = 0.05 * np.sin(2 * np.pi * 2 * t)
    noisy = clean + rng.normal(0, 1e-3, t.shape)
    s = smooth(_rec(t, noisy[:, None, None]), sigma=1e-3)
    assert np.sqrt(np.mean((s.values[:, 0, 0] - clean) ** 2)) < 0.85e-3  # closer than the data


def test_marker_maps_and_errors():
    ref = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    m = map_nearest_particle(ref, ref[[2, 0]] + 0.001, ["a", "b"], max_distance=0.01)
    assert m.indices[:, 0].tolist() == [2, 0]
    x = np.random.default_rng(0).normal(size=(4, 3, 2))
    np.testing.assert_allclose(m.apply(x), x[:, [2, 0]])
    g = np.random.default_rng(1).normal(size=(4, 2, 2))
    # adjoint: <W x, g> == <x, W^T g>
    assert np.isclose(np.sum(m.apply(x) * g), np.sum(x * m.adjoint(g, 3)))
    with pytest.raises(DataError, match=r"mem\.csv: column 'far': marker 'far' maps to nothing: "
                                        r"the nearest particle is 0\.5 m away"):
        map_nearest_particle(ref, np.array([[1.0, 0.5]]), ["far"], max_distance=0.01,
                             source="mem.csv")
    with pytest.raises(DataError, match="both map to particle 0"):
        map_nearest_particle(ref, np.zeros((2, 2)), ["a", "b"], 0.1, exclusive=True)
    with pytest.raises(DataError, match="outside 0..2"):
        map_explicit([0, 3], ["a", "b"], 3)


def test_nearest_surface_barycentric():
    X = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    facets = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])
    markers = np.array([[0.25, 0.25, -0.002], [0.0, 0.0, -0.001], [2.0, 0.0, 0.0]])
    with pytest.raises(DataError, match="'m2' maps to nothing"):
        map_nearest_surface(X, facets, markers, ["m0", "m1", "m2"], 0.01)
    m = map_nearest_surface(X, facets, markers[:2], ["m0", "m1"], 0.01)
    np.testing.assert_allclose(m.apply(X)[0], [0.25, 0.25, 0.0], atol=1e-12)   # face point
    np.testing.assert_allclose(m.apply(X)[1], [0.0, 0.0, 0.0], atol=1e-12)     # vertex
    np.testing.assert_allclose(m.weights.sum(axis=1), 1.0)


def test_penalties():
    r = np.linspace(-5, 5, 11)
    h = Penalty("huber", 2.0)
    np.testing.assert_allclose(h.value(r), np.where(np.abs(r) <= 2, 0.5 * r ** 2, 2 * (np.abs(r) - 1)))
    eps = 1e-6
    np.testing.assert_allclose(h.derivative(r + 0.3), (h.value(r + 0.3 + eps) - h.value(r + 0.3 - eps)) / (2 * eps),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(h.weight(np.array([1.0, 4.0])), [1.0, 0.5])
    with pytest.raises(ValueError):
        Penalty("l1")


@pytest.mark.parametrize("kind", ["l2", "huber"])
def test_chamfer_gradient(kind):
    rng = np.random.default_rng(3)
    pred, cloud = rng.normal(size=(7, 3)), rng.normal(size=(11, 3))
    pen = Penalty(kind, 0.8)
    c = chamfer(pred, cloud, sigma=0.5, penalty=pen)
    if kind == "l2":
        assert np.isclose(0.5 * np.sum(c.residuals ** 2), c.value)
    eps, fd = 1e-6, np.zeros_like(pred)
    for i in range(7):
        for k in range(3):
            p1, p2 = pred.copy(), pred.copy()
            p1[i, k] += eps
            p2[i, k] -= eps
            fd[i, k] = (chamfer(p1, cloud, 0.5, pen).value - chamfer(p2, cloud, 0.5, pen).value) / (2 * eps)
    np.testing.assert_allclose(c.grad, fd, rtol=1e-5, atol=1e-8)


def test_param_scaling():
    s = ParamSpec("k", 10.0, 1000.0, "log")
    assert np.isclose(s.from_unit(0.5), 100.0) and np.isclose(s.to_unit(100.0), 0.5)
    z = 0.3
    assert np.isclose(s.dvalue_dunit(z), (s.from_unit(z + 1e-7) - s.from_unit(z - 1e-7)) / 2e-7, rtol=1e-6)
    with pytest.raises(ValueError, match="lower > 0"):
        ParamSpec("k", 0.0, 1.0, "log")
    assert ParamSpec("gravity", -11, -9, index=2).label == "gravity[2]"


def test_function_problem_fit_and_covariance():
    """A straight-line fit: LM and the Gauss-Newton std equal the textbook formulas."""
    from diffsim.sysid import fit, gauss_newton

    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 50)
    y = 2.0 + 3.0 * x + rng.normal(0, 0.1, x.shape)
    specs = [ParamSpec("a", -10, 10, init=0.0), ParamSpec("b", -10, 10, init=0.0)]
    prob = FunctionProblem(specs, lambda v: {"y": v[0] + v[1] * x - y})
    res = fit(prob, "lm", max_iter=50, tol=1e-15, progress=False)
    A = np.stack([np.ones_like(x), x], 1)
    coef, rss, *_ = np.linalg.lstsq(A, y, rcond=None)
    np.testing.assert_allclose(res.values[0], coef, rtol=1e-6)
    unc = gauss_newton(prob, res.z, step=1e-6)
    s2 = rss[0] / (len(x) - 2)
    np.testing.assert_allclose(unc.std[0], np.sqrt(np.diag(s2 * np.linalg.inv(A.T @ A))), rtol=1e-4)


def test_rigid_round_trip():
    rng = np.random.default_rng(5)
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    body = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float) * 0.05
    x, v = rigid_particles(q, [0.1, 0.2, 0.3], [1.0, -2.0, 0.5], [0.0, 0.0, 1.0], body)
    R, t = kabsch(body, x)
    assert rotation_angle(R, quat_to_matrix(q)) < 1e-7
    np.testing.assert_allclose(t, [0.1, 0.2, 0.3], atol=1e-12)
    # velocities are those of a rigid motion: no stretching along any pair
    d = x[:, None] - x[None]
    dv = v[:, None] - v[None]
    np.testing.assert_allclose(np.sum(d * dv, axis=-1), 0.0, atol=1e-12)


def _fd_check(evaluate, traj, key, eps=1e-6, n=12, seed=0):
    """Compare ``evaluate(traj).traj_grads[key]`` with central differences on n entries."""
    rng = np.random.default_rng(seed)
    g = evaluate(traj).traj_grads[key]
    flat = rng.choice(traj[key].size, n, replace=False)
    for i in flat:
        hi = {k: v.copy() for k, v in traj.items()}
        lo = {k: v.copy() for k, v in traj.items()}
        hi[key].reshape(-1)[i] += eps
        lo[key].reshape(-1)[i] -= eps
        fd = (evaluate(hi).loss - evaluate(lo).loss) / (2 * eps)
        assert np.isclose(g.reshape(-1)[i], fd, rtol=1e-5, atol=1e-9), (key, i, g.reshape(-1)[i], fd)


def test_point_cloud_term_gradients():
    from diffsim.sysid import PointCloudRecording, PointCloudTerm

    rng = np.random.default_rng(0)
    T, N = 6, 5
    traj = {"x": rng.normal(size=(T + 1, N, 2))}
    times = np.array([0.013, 0.021, 0.047])
    clouds = [rng.normal(size=(k, 2)) for k in (7, 4, 9)]
    rec = PointCloudRecording(times, np.concatenate(clouds), np.r_[0, np.cumsum([len(c) for c in clouds])])
    term = PointCloudTerm(rec, np.arange(N), dt=0.01, steps=T, t0=0.0, sigma=0.5,
                          penalty=Penalty("huber", 1.0))
    _fd_check(lambda tr: term.evaluate(tr, offset=0.002), traj, "x")
    ev = term.evaluate(traj, offset=0.002)
    eps = 1e-7
    fd = (term.evaluate(traj, offset=0.002 + eps).loss - term.evaluate(traj, offset=0.002 - eps).loss) / (2 * eps)
    assert np.isclose(ev.offset_grad, fd, rtol=1e-4)


def test_marker_and_force_term_gradients():
    from diffsim.sysid import ForceTerm, MarkerTerm, SpringReactionForce

    rng = np.random.default_rng(1)
    T, N, dt = 8, 4, 0.01
    traj = {"x": rng.normal(size=(T + 1, N, 2)), "v": rng.normal(size=(T + 1, N, 2))}
    t = np.sort(rng.uniform(0, T * dt, 12))
    t[0] = 0.0
    rec = Recording("markers", t, rng.normal(size=(12, 2, 2)), ["a", "b"], np.ones((12, 2), bool))
    mmap = map_explicit([[1, 2], [3, 3]], ["a", "b"], N)
    term = MarkerTerm(rec, mmap, dt, T, sigma=0.3, penalty=Penalty("huber", 0.5))
    _fd_check(lambda tr: term.evaluate(tr, offset=0.003), traj, "x")

    class Stub:  # the two model attributes SpringReactionForce reads
        topology = {"spring_indices": np.array([[0, 1], [0, 2], [1, 2], [2, 3], [0, 3]])}
        counts = {"spring": 5}

    obs = SpringReactionForce(Stub(), held=[0, 1])
    params = {"spring_stiffness": rng.uniform(1, 2, 5), "spring_damping": rng.uniform(0.1, 0.2, 5),
              "spring_rest_length": rng.uniform(0.5, 1, 5)}
    frec = Recording("forces", t, rng.normal(size=(12, 1, 2)), ["cell"], np.ones((12, 1), bool))
    fterm = ForceTerm(frec, obs, dt, T, sigma=2.0)
    _fd_check(lambda tr: fterm.evaluate(tr, params), traj, "x")
    _fd_check(lambda tr: fterm.evaluate(tr, params), traj, "v")
    ev = fterm.evaluate(traj, params)
    for name, value in params.items():
        for s in range(5):
            hi = {k: v.copy() for k, v in params.items()}
            lo = {k: v.copy() for k, v in params.items()}
            hi[name][s] += 1e-6
            lo[name][s] -= 1e-6
            fd = (fterm.evaluate(traj, hi).loss - fterm.evaluate(traj, lo).loss) / 2e-6
            assert np.isclose(ev.param_grads[name][s], fd, rtol=1e-5, atol=1e-9), (name, s)
