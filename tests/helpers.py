"""Small scenes and gradient-check glue shared by the tests."""

import numpy as np

from diffsim.autodiff import Rollout
from diffsim.core.builder import MassSpringBuilder


def tiny_walker(num_envs=1, dim=2, ground=True, smoothing=1e-3, ground_model="penalty"):
    """Two braced cells, one actuated, starting just above a penalty (or sticky) ground."""
    b = MassSpringBuilder(dim=dim, gravity=[0.0] * (dim - 1) + [-9.81], drag=0.5)
    if ground:
        b.add_ground(height=0.0, stiffness=2e3, damping=5.0, friction=0.6, smoothing=smoothing,
                     friction_smoothing=0.05, model=ground_model)
    cells = [(0, 0, True), (1, 0, False)] if dim == 2 else [(0, 0, 0, True)]
    b.add_grid_robot(cells, cell_size=0.1, origin=[0.0] * (dim - 1) + [0.01], stiffness=500.0,
                     damping=1.0, actuation=0.2, mass=0.1)
    return b.finalize(num_envs)


def rollout_loss_fn(model, rollout, weights, names, x0=None, v0=None, actions=None):
    """``f(inputs) -> (loss, grads)`` for :func:`gradcheck`: loss = sum(w * x_T).

    ``inputs`` may hold ``x0``, ``v0``, ``actions`` and any model parameter names.
    """
    init = model.initial_state()

    def f(inp):
        for n in names:
            if n in model.params:
                model.set(n, inp[n])
        out = rollout.forward({"x": inp.get("x0", init["x"] if x0 is None else x0),
                               "v": inp.get("v0", init["v"] if v0 is None else v0)},
                              inp.get("actions", actions))
        gx = np.zeros_like(out["x"])
        gx[-1] = weights
        g = rollout.backward({"x": gx})
        grads = {"x0": g.initial["x"], "v0": g.initial["v"], "actions": g.actions, **g.params}
        return float(np.sum(out["x"][-1] * weights)), {n: grads[n] for n in names}

    return f


def make_rollout(solver_cls, model, steps, dt, segment=None, **kw):
    solver = solver_cls(model, window=segment or steps)
    return solver, Rollout(solver, steps, dt, record=("x", "v"), **kw)


def energy_gradient_fd(energy, F: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """``dPsi/dF`` [Pa] of ``energy(F) -> Psi`` by central differences, entry by entry.

    The reference equation of hyperelasticity: the first Piola-Kirchhoff stress
    ``P = dPsi/dF``.
    """
    P = np.zeros_like(F)
    for i in range(F.shape[0]):
        for j in range(F.shape[1]):
            E = np.zeros_like(F)
            E[i, j] = h
            P[i, j] = (energy(F + E) - energy(F - E)) / (2 * h)
    return P
