"""What the bridge promises beyond correct Jacobians: agreement with the engine, repeated
and combined backward passes, no state leaking between calls, partial use of outputs,
forward-only runs, batching, broadcasting, dtypes."""

import numpy as np
import pytest
import torch
from bridge_scenes import LinearTanh, get_scene

from diffsim import torch_bridge as tb
from diffsim.autodiff import Rollout
from diffsim.torch_bridge import loop as loop_mod
from diffsim.torch_bridge import rollout as rollout_mod


@pytest.fixture
def chain():
    return get_scene("chain")


def _grads(loss, tensors):
    return torch.autograd.grad(loss, tensors, retain_graph=True)


def _rollout(scene, window=3, **kw):
    return tb.RolloutOp(scene.solver(window), scene.steps, scene.dt, record=("x", "v"), **kw)


def _loop(scene, controller, **kw):
    return tb.ClosedLoop(scene.solver(1), scene.dt, controller, **kw)


def _rollout_case(scene, params=None):
    """(outputs, leaf inputs) of one open-loop call."""
    init, acts = scene.initial(True), scene.actions(requires_grad=True)
    prm = params if params is not None else scene.param_values(True)
    out = _rollout(scene)(initial=init, actions=acts, params=prm)
    return out, [init["x"], init["v"], acts, *prm.values()]


def _loop_case(scene, params=None, checkpoint=None):
    init = scene.initial(True)
    prm = params if params is not None else scene.param_values(True)
    ctrl = LinearTanh(scene.obs_dim(), scene.action_count)
    out = _loop(scene, ctrl, checkpoint=checkpoint)(scene.steps, init, prm)
    return out, [init["x"], init["v"], *ctrl.parameters(), *prm.values()]


CASES = {"rollout": _rollout_case, "closed_loop": _loop_case}


def _loss(out):
    return (out["x"] ** 2).sum() + (out["v"][-1] * out["x"][-1]).sum()


# -- agreement ---------------------------------------------------------------------------------
def test_rollout_op_matches_engine_rollout(chain):
    out, leaves = _rollout_case(chain)
    grads = _grads(_loss(out), leaves)
    s = chain.solver(3)
    r = Rollout(s, chain.steps, chain.dt, record=("x", "v"))
    ref = r.forward({k: v.detach().numpy() for k, v in chain.initial().items()},
                    actions=chain.actions().numpy())
    np.testing.assert_allclose(out["x"].detach().numpy(), ref["x"], rtol=1e-12, atol=1e-14)
    x, v = ref["x"], ref["v"]
    gx, gv = 2 * x, np.zeros_like(v)
    gx[-1] += v[-1]
    gv[-1] += x[-1]
    rg = r.backward({"x": gx, "v": gv})
    expected = [rg.initial["x"], rg.initial["v"], rg.actions, *(rg.params[n] for n in chain.params)]
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-10, atol=1e-12)


def test_step_chain_matches_rollout_op(chain):
    """T StepOps by hand and one RolloutOp: same trajectory and gradients."""
    out, leaves = _rollout_case(chain)
    ref = _grads(_loss(out), leaves)
    init, acts, prm = chain.initial(True), chain.actions(requires_grad=True), chain.param_values(True)
    step = tb.StepOp(chain.solver(1), chain.dt)
    state, xs, vs = dict(init), [init["x"]], [init["v"]]
    for t in range(chain.steps):
        state = step(state, acts[t], prm)
        xs.append(state["x"])
        vs.append(state["v"])
    out2 = {"x": torch.stack(xs), "v": torch.stack(vs)}
    torch.testing.assert_close(out2["x"], out["x"], rtol=1e-12, atol=1e-14)
    got = _grads(_loss(out2), [init["x"], init["v"], acts, *prm.values()])
    for g, e in zip(got, ref):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_closed_loop_actions_replay_open_loop(chain):
    out, _ = _loop_case(chain)
    init = chain.initial()
    replay = _rollout(chain)(initial=init, actions=out["act"].detach(), params=chain.param_values())
    torch.testing.assert_close(replay["x"], out["x"].detach(), rtol=1e-12, atol=1e-14)


def test_checkpointed_closed_loop_gives_same_gradients(chain):
    grads = []
    for checkpoint in (None, 2, 4):
        out, leaves = _loop_case(chain, checkpoint=checkpoint)
        grads.append(_grads(_loss(out), leaves))
    for other in grads[1:]:
        for g, e in zip(other, grads[0]):
            torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-14)


# -- repeated and combined backward passes --------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_backward_twice_with_retain_graph(chain, case):
    out, leaves = CASES[case](chain)
    loss = _loss(out)
    first = [g.clone() for g in _grads(loss, leaves)]
    loss.backward(retain_graph=True)
    loss.backward()
    for leaf, g in zip(leaves, first):
        torch.testing.assert_close(leaf.grad, 2 * g, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_calls_in_one_graph(chain, case):
    """Two calls on the same solver with different parameters, one loss: each gets the
    gradient it gets alone (the second forward overwrote the window and the parameters)."""
    p1, p2 = chain.param_values(True), chain.param_values(True)
    with torch.no_grad():
        p2["spring_stiffness"] *= 1.3
    alone = []
    for p in (p1, p2):
        out, _ = CASES[case](chain, params=p)
        alone.append(_grads(_loss(out), list(p.values())))
    o1, _ = CASES[case](chain, params=p1)
    o2, _ = CASES[case](chain, params=p2)
    both = _grads(_loss(o1) + 0.5 * _loss(o2), [*p1.values(), *p2.values()])
    k = len(p1)
    for g, e in zip(both[:k], alone[0]):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)
    for g, e in zip(both[k:], alone[1]):
        torch.testing.assert_close(g, 0.5 * e, rtol=1e-10, atol=1e-12)


# -- nothing leaks between calls -----------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_no_leak_between_calls(case):
    chain, other = get_scene("chain"), get_scene("cell_on_ground")
    before = {n: chain.model.get(n) for n in chain.model.params}
    out, leaves = CASES[case](chain)
    first = _grads(_loss(out), leaves)
    out, leaves = CASES[case](chain)
    second = _grads(_loss(out), leaves)
    o, lv = CASES[case](other)          # another scene's call in between
    _grads(_loss(o), lv)
    with torch.no_grad():               # a call with other parameter values in between
        p = chain.param_values()
        p["spring_damping"] += 1.0
        CASES[case](chain, params=p)
    out, leaves = CASES[case](chain)
    third = _grads(_loss(out), leaves)
    for a, b, c in zip(first, second, third):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(c, a, rtol=1e-12, atol=1e-14)
    p = chain.param_values(True)        # after a backward with other values, too
    with torch.no_grad():
        p["spring_stiffness"] *= 2.0
    out, _ = CASES[case](chain, params=p)
    _loss(out).backward()
    for n, v in before.items():         # the model holds the user's values again
        np.testing.assert_array_equal(chain.model.get(n), v)


# -- outputs used in part -------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_partial_and_strided_output_gradients(chain, case):
    out, leaves = CASES[case](chain)
    x = out["x"]
    mask = torch.zeros_like(x)
    mask[:, ::2] = 1.0
    reference = _grads((x * mask).sum(), leaves)
    strided = _grads(x[:, ::2].sum(), leaves)                       # strided incoming grad
    for g, e in zip(strided, reference):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-14)
    expanded = _grads(x[None].expand(3, *x.shape).sum(), leaves)    # stride-0 incoming grad
    plain = _grads(x.sum(), leaves)
    for g, e in zip(expanded, plain):
        torch.testing.assert_close(g, 3 * e, rtol=1e-12, atol=1e-14)
    w = torch.arange(float(x.numel()), dtype=x.dtype).reshape(x.shape[::-1])
    w = w.permute(*reversed(range(x.dim())))                        # non-contiguous weights
    weighted = _grads((x * w).sum(), leaves)
    dense = _grads((x * w.contiguous()).sum(), leaves)
    for g, e in zip(weighted, dense):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-14)
    only_v = _grads(out["v"][-1].sum(), leaves)                     # one output unused
    assert all(torch.isfinite(g).all() for g in only_v)


# -- forward only, and inputs without grad -----------------------------------------------------
def test_no_grad_runs_forward_only(chain, monkeypatch):
    def refuse(*args):
        raise AssertionError("an autograd Function ran under no_grad")
    monkeypatch.setattr(rollout_mod._RolloutFn, "apply", refuse)
    monkeypatch.setattr(loop_mod._StepFn, "apply", refuse)
    with torch.no_grad():
        out, _ = _rollout_case(chain)
        out2, _ = _loop_case(chain, checkpoint=2)
    for o in (*out.values(), *out2.values()):
        assert o.grad_fn is None and not o.requires_grad
    # nothing requiring grad: forward only as well, even with grad mode on
    out = _rollout(chain)(initial=chain.initial(), actions=chain.actions())
    assert out["x"].grad_fn is None


def test_inputs_that_do_not_require_grad_get_none(chain):
    init, acts, prm = chain.initial(), chain.actions(requires_grad=True), chain.param_values()
    prm["drag"].requires_grad_(True)
    out = _rollout(chain)(initial=init, actions=acts, params=prm)
    _loss(out).backward()
    assert acts.grad is not None and prm["drag"].grad is not None
    assert init["x"].grad is None and prm["spring_stiffness"].grad is None
    ctrl = LinearTanh(chain.obs_dim(), chain.action_count)
    ctrl.bias.requires_grad_(False)
    out = _loop(chain, ctrl)(chain.steps, init, prm)
    _loss(out).backward()
    assert ctrl.weight.grad is not None and ctrl.bias.grad is None
    assert init["v"].grad is None and prm["spring_damping"].grad is None


# -- batching, broadcasting, dtypes ------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_environments_are_independent(chain, case):
    """Env 0's outputs depend on env 0's inputs only (one launch serves both envs)."""
    out, leaves = CASES[case](chain)
    grads = _grads(_loss({k: v[:, :1] for k, v in out.items()}), leaves)
    for leaf, g in zip(leaves, grads):
        env_axis = 1 if leaf.dim() >= 3 and leaf.shape[0] == chain.steps else 0
        if leaf.shape[env_axis] == chain.model.num_envs:
            assert g.select(env_axis, 1).abs().max() == 0
            assert g.select(env_axis, 0).abs().max() > 0


def test_shared_parameter_broadcasts_over_environments(chain):
    k = torch.tensor(chain.model.get("spring_stiffness")[0], requires_grad=True)   # [S]
    per_env = k.detach().expand(chain.model.num_envs, -1).clone().requires_grad_(True)
    for p in (k, per_env):
        out = _rollout(chain)(initial=chain.initial(), actions=chain.actions(),
                              params={"spring_stiffness": p})
        _loss(out).backward()
    torch.testing.assert_close(k.grad, per_env.grad.sum(0), rtol=1e-12, atol=1e-14)


def test_float32_inputs_on_float64_engine(chain):
    init = {n: t.float().requires_grad_() for n, t in chain.initial().items()}
    acts = chain.actions().float().requires_grad_()
    out = _rollout(chain)(initial=init, actions=acts)
    assert out["x"].dtype == torch.float32
    _loss(out).backward()
    assert init["x"].grad.dtype == torch.float32 and acts.grad.dtype == torch.float32


def test_float64_gradients_refused_on_float32_engine():
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(TypeError, match="float32"):
        tb.check_dtype(x, "x", engine=torch.float32)
    tb.check_dtype(x.detach(), "x", engine=torch.float32)       # no grad: a plain cast
    tb.check_dtype(x.float(), "x", engine=torch.float32)


def test_bad_inputs_are_named(chain):
    op = _rollout(chain)
    with pytest.raises(ValueError, match="actions|act"):
        op(actions=torch.zeros(chain.steps + 1, 2, 1))
    with pytest.raises(KeyError, match="no parameter"):
        op(params={"stiffness": torch.ones(1)})
    with pytest.raises(ValueError, match="NaN"):
        op(params={"drag": torch.tensor([float("nan"), 0.0])})
    with pytest.raises(KeyError, match="state array"):
        op(initial={"q": torch.zeros(1)})
