"""torch.autograd.gradcheck (float64) of the three bridge ops on every scene of bridge_scenes.

Each op gets one full Jacobian check on the chain scene (with the outputs cut to a few
frames to keep it fast) and a fast-mode check (random projections) on every scene. Taichi's
CPU backend accumulates spring forces with parallel atomic adds, so two identical runs may
differ in the last bit: ``nondet_tol`` allows for that.
"""

import pytest
import torch
from bridge_scenes import SCENES, closed_loop_fn, get_scene, rollout_fn, step_fn

TOL = dict(eps=1e-6, atol=1e-6, rtol=1e-4, nondet_tol=1e-12)


@pytest.fixture(params=sorted(SCENES))
def scene(request):
    return get_scene(request.param)


def _step_inputs(scene):
    inputs = list(scene.inputs())
    n = len(scene.state_names)
    inputs[n] = inputs[n][0].detach().requires_grad_()  # one step's action [B, A]
    return tuple(inputs)


def _loop_inputs(scene, module):
    inputs = scene.inputs()
    n = len(scene.state_names)
    weights = (module.weight.detach().clone().requires_grad_(),
               module.bias.detach().clone().requires_grad_())
    return (*inputs[:n], *weights, *inputs[n + 1:])


def _first_and_last(f):
    """Only the first and last frames of every output: fewer backward calls in full mode."""
    return lambda *args: tuple(y[[0, -1]] for y in f(*args))


def test_rollout_op_full_jacobian():
    scene = get_scene("chain")
    # window 3 < 6 steps: the first segment is restored and recomputed in backward;
    # repeated and negative frames go through the scatter of the incoming gradient.
    f = rollout_fn(scene, window=3, record=("x",), frames=[-1, 2, 2])
    assert torch.autograd.gradcheck(f, scene.inputs(), **TOL)


def test_rollout_op(scene):
    assert torch.autograd.gradcheck(rollout_fn(scene, window=2), scene.inputs(), fast_mode=True, **TOL)


def test_step_op_full_jacobian():
    scene = get_scene("chain")
    assert torch.autograd.gradcheck(step_fn(scene), _step_inputs(scene), **TOL)


def test_step_op(scene):
    assert torch.autograd.gradcheck(step_fn(scene), _step_inputs(scene), fast_mode=True, **TOL)


def test_closed_loop_full_jacobian():
    scene = get_scene("chain")
    f, module = closed_loop_fn(scene, steps=3)
    assert torch.autograd.gradcheck(_first_and_last(f), _loop_inputs(scene, module), **TOL)


@pytest.mark.parametrize("checkpoint", [None, 2])
def test_closed_loop(scene, checkpoint):
    f, module = closed_loop_fn(scene, checkpoint=checkpoint, steps=5)
    assert torch.autograd.gradcheck(f, _loop_inputs(scene, module), fast_mode=True, **TOL)
