"""Gradient check of a whole scene (``diffsim gradcheck``).

The loss is a fixed random linear functional of the final positions,
``L = sum(W * x_T)`` with ``W`` standard normal (seeded), so every particle and axis
contributes and no special structure hides a wrong gradient. With actuators, the
actuation is a fixed random sequence in [-0.5, 0.5] and its gradient is checked too.
Checked groups: the initial positions ``x0`` and velocities ``v0``, the actuation, and
either the scene's free parameters or every model parameter (ground parameters only when
the scene has a ground). Run it in float64.
"""

from __future__ import annotations

import numpy as np

from ..autodiff.gradcheck import gradcheck


def param_groups(scene, free: bool = True) -> list[str]:
    """Parameter groups to check: the free ones (when ``free`` and any), else all."""
    if free and scene.free_params:
        return [f.name for f in scene.free_params]
    has = {c["type"] for c in scene.spec["colliders"]}
    out = []
    for name in scene.model.params:
        if name.startswith("ground_") and "ground" not in has:
            continue  # a placeholder ground far away: no gradient, meaningless step size
        out.append(name)
    return out


def scene_gradcheck(scene, steps: int | None = None, seed: int = 0, params=None,
                    max_coords: int = 8, rtol: float = 1e-3, cos_tol: float = 1e-4):
    """Compare the scene's analytic gradients with central differences.

    Args:
        scene: a loaded :class:`~diffsim.scene.scene.Scene` (float64 backend).
        steps: rollout length (default: the scene's).
        seed: seed of ``W`` and of the actuation.
        params: parameter groups (default: free params, else all model parameters).
        max_coords, rtol, cos_tol: see :func:`diffsim.autodiff.gradcheck.gradcheck`.
    Returns:
        List of :class:`~diffsim.autodiff.gradcheck.GradcheckRow`.
    """
    steps = int(steps or scene.steps)
    rng = np.random.default_rng(seed)
    model = scene.model
    init = scene.initial_state
    weights = rng.standard_normal(init["x"].shape)
    A = scene.counts.get("actuator", 0)
    inputs = {"x0": init["x"].copy(), "v0": init["v"].copy()}
    if A:
        inputs["actions"] = rng.uniform(-0.5, 0.5, (steps, scene.num_envs, A))
    names = list(params) if params is not None else param_groups(scene)
    original = {n: model.get(n) for n in names}
    inputs.update({n: original[n].copy() for n in names})
    # window = steps would hold the whole run; the scene's window checkpoints longer runs
    rollout = scene.make_rollout(steps, record=("x",),
                                 segment=min(steps, scene.solver.window))

    def evaluate(inp, with_grad: bool):
        for n in names:
            model.set(n, inp[n])
        # the scene's other state arrays (MPM's F, C, Jp) start as the scene says
        out = rollout.forward({**init, "x": inp["x0"], "v": inp["v0"]}, inp.get("actions"))
        loss = float(np.sum(weights * out["x"][-1]))
        if not with_grad:
            return loss, {}
        cot = np.zeros_like(out["x"])
        cot[-1] = weights
        g = rollout.backward({"x": cot})
        grads = {"x0": g.initial["x"], "v0": g.initial["v"]}
        if A:
            grads["actions"] = g.actions
        grads.update({n: g.params[n] for n in names})
        return loss, grads

    # gradcheck evaluates the analytic gradient once, at the unperturbed inputs, and then
    # only the losses of its probes: run the backward pass for that first call only.
    first = [evaluate(inputs, True)]

    def loss_and_grad(inp):
        return first.pop() if first else evaluate(inp, False)

    try:
        return gradcheck(loss_and_grad, inputs, max_coords=max_coords, rtol=rtol,
                         cos_tol=cos_tol, seed=seed)
    finally:
        for n, v in original.items():
            model.set(n, v)
