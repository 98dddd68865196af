"""Tiny FEM scenes and a rollout loss with gradients, shared by the tests in tests/fem."""

import numpy as np

from diffsim.autodiff import Rollout
from diffsim.solvers.fem import FEMBuilder, mesh

PARAM_GROUPS = ("element_mu", "element_lam", "element_density", "element_active_stress", "element_fiber",
                "damping_mass", "damping_stiffness", "gravity")


def tiny_scene(dim=3, material="stable_neo_hookean", ground=True, num_envs=1, kinematic=True):
    """A 1-cell box (6 tets) or a 2x1 rectangle (4 triangles) with every input switched on:
    a pinned vertex, a kinematic vertex, a nodal load, a traction facet, a muscle, Rayleigh
    damping and (optionally) smoothed ground contact."""
    b = FEMBuilder(dim, material=material)
    m = mesh.box((1, 1, 1), (0.1, 0.1, 0.1)) if dim == 3 else mesh.rectangle((2, 1), (0.2, 0.1))
    _, eids = b.add_mesh(m, density=500.0, youngs_modulus=2e4, poisson_ratio=0.3, offset=[0.0] * (dim - 1) + [0.01])
    X = m.vertices
    # Constraints that remove every rigid motion (the quasi-static solve needs it): one
    # corner held, a second one held across the x axis, a third driven vertically.
    corner = lambda p: int(np.argmin(np.linalg.norm(X - np.asarray(p, float), axis=1)))  # noqa: E731
    lo, hi = X.min(axis=0), X.max(axis=0)
    b.pin(corner(lo))
    b.pin(corner([hi[0]] + list(lo[1:])), axes=range(1, dim))
    if kinematic:
        b.add_kinematic(corner(hi if dim == 2 else [lo[0], hi[1], lo[2]]), axes=[dim - 1])
    b.add_load([1], [0.3] + [0.0] * (dim - 1))
    facets = m.select_facets(lambda x: x[:, 0] > X[:, 0].max() - 1e-9)
    b.add_traction(facets[:1], [50.0] + [20.0] * (dim - 1))
    b.add_muscle(eids[: len(eids) // 2], [1.0] + [0.3] * (dim - 1), 2e3)
    b.set_damping(mass=0.5, stiffness=2e-3)
    if ground:
        b.add_ground(height=0.012, stiffness=2e3, damping=5.0, friction=0.4, smoothing=1e-3,
                     friction_smoothing=0.05)
    return b.finalize(num_envs)


def make_inputs(model, solver, steps, rng, params=PARAM_GROUPS, ground=()):
    """Gradcheck inputs: parameters (perturbed off symmetry), initial state and controls."""
    inputs = {n: model.get(n) * (1 + 0.05 * rng.uniform(-1, 1, model.get(n).shape)) for n in params}
    for n in ground:
        inputs[n] = model.get(n)
    init = model.initial_state()
    inputs["x0"] = init["x"] + 1e-3 * rng.normal(size=init["x"].shape)
    inputs["v0"] = 0.05 * rng.normal(size=init["v"].shape)
    for n in solver.control_names:
        base = solver.default_controls(n)
        if n == "act":
            inputs[n] = 0.5 + 0.3 * rng.uniform(-1, 1, (steps,) + base.shape)
        else:
            scale = 1e-3 if n == "target" else 0.2 * (np.abs(base).max() or 1.0)
            inputs[n] = base[None] + scale * rng.normal(size=(steps,) + base.shape)
    return inputs


def rollout_loss(solver, steps, dt, weights):
    """``loss_and_grad(inputs)`` for :func:`diffsim.autodiff.gradcheck.gradcheck`:
    ``L = sum_t w_t . x_t + sum w_v . v_T`` through a :class:`Rollout`."""
    model = solver.model
    rollout = Rollout(solver, steps, dt, record=("x", "v"))

    def loss_and_grad(inputs):
        for n in model.params:
            if n in inputs:
                model.set(n, inputs[n])
        controls = {n: inputs[n] for n in solver.control_names if n in inputs}
        out = rollout.forward({"x": inputs["x0"], "v": inputs["v0"]}, controls=controls)
        loss = float(np.sum(weights["x"] * out["x"]) + np.sum(weights["v"] * out["v"][-1]))
        gv = np.zeros_like(out["v"])
        gv[-1] = weights["v"]
        g = rollout.backward({"x": weights["x"], "v": gv})
        grads = {"x0": g.initial["x"], "v0": g.initial["v"]}
        grads.update({n: g.params[n] for n in model.params if n in inputs})
        grads.update({n: g.controls[n] for n in controls})
        return loss, grads

    return loss_and_grad


def random_weights(rollout_shape_x, rng):
    return {"x": rng.normal(size=rollout_shape_x), "v": rng.normal(size=rollout_shape_x[1:])}


def directional(loss_and_grad, inputs, rng):
    """Reparametrise every group along one random direction: ``p_g = p_g0 + t_g d_g``.

    Returns ``(f, t0)`` for :func:`gradcheck`: ``f({name: t_g}) -> (loss, {name: dL/dt_g})``
    with ``dL/dt_g = <dL/dp_g, d_g>``. One scalar per group keeps a check of every group
    of every integrator to a few dozen rollouts; a random direction makes cancelling
    errors in the analytic gradient vanishingly unlikely to go unnoticed.
    """
    dirs = {}
    for name, value in inputs.items():
        scale = float(np.sqrt(np.mean(np.asarray(value) ** 2))) or 1.0
        d = rng.normal(size=np.shape(value))
        dirs[name] = scale * d / np.sqrt(np.mean(d * d))

    def f(t):
        probe = {n: inputs[n] + float(np.ravel(t[n])[0]) * dirs[n] for n in inputs}
        loss, grads = loss_and_grad(probe)
        return loss, {n: np.array([np.sum(grads[n] * dirs[n])]) for n in inputs}

    return f, {n: np.zeros(1) for n in inputs}
